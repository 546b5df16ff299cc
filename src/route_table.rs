//! The route-table compiler: reads `routes.toml` and writes the Rust table the
//! worker `include!`s.
//!
//! This file is not a module of the worker. `build.rs` and the tests include it
//! with `#[path]`, so the wasm never carries a TOML reader and the tests can
//! assert the exact error text and line numbers a user sees.
//!
//! The `toml` crate reads the file (without serde: this walks the crate's
//! spanned document), so any TOML is accepted as TOML: comments, quoted and
//! dotted keys, inline tables, multi-line strings and arrays. What this module
//! adds is the table's meaning: which keys exist (`ROUTE_KEYS`, `TOP_KEYS`),
//! what type each holds, and the checks on the values. A value of the wrong
//! type (a number, a date, a table where a string belongs) is refused with
//! the key, its line and what to write instead, never converted.
//!
//! Errors name the file and the 1-based line (computed from the crate's byte
//! spans) and say how to fix the table: TOML syntax errors carry the crate's
//! message and column; then unknown keys, missing or malformed upstreams and
//! realms, plain http without `insecure = true`, duplicate hosts or routes,
//! more than one default. It does not look at the network: whether an
//! upstream answers is for the worker to find out.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

/// One route after validation. Host names are lower case, `{domain}` expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub name: String,
    /// Line of the `[routes.NAME]` header.
    pub line: usize,
    pub hosts: Vec<String>,
    /// `scheme://authority`, no trailing slash.
    pub upstream: String,
    pub realm: Option<String>,
    pub service: Option<String>,
    pub library: bool,
    pub follow_redirects: bool,
    pub default: bool,
    /// Path components selecting the route on its hosts (`ghcr.io`).
    pub prefix: Option<String>,
    /// The name clients use for the upstream (containerd's `ns`); defaults
    /// to the upstream's authority.
    pub registry: String,
    /// Upstream path components in front of every name.
    pub repository: Option<String>,
    /// The Worker secret holding `user:token` for the upstream.
    pub credentials: Option<String>,
    /// Repository patterns served (empty: all).
    pub allow: Vec<String>,
}

/// A whole table: its routes and the settings above them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub routes: Vec<RouteSpec>,
    /// Serve the browser page on `GET /` (`page = false` turns it off).
    pub page: bool,
    /// One JSON line per request on the Workers log.
    pub log: bool,
    /// Include the client's address in those lines.
    pub log_client: bool,
}

/// A table error: 1-based line and a message that says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub line: usize,
    pub message: String,
}

impl TableError {
    /// `file:line: message`, the form the build prints.
    pub fn render(&self, file: &str) -> String {
        format!("{}:{}: {}", file, self.line, self.message)
    }
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, TableError> {
    Err(TableError { line, message: message.into() })
}

// ---- the keys ----

/// What a key's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    /// An array of strings.
    List,
}

/// A key the table may hold: its name, its type and how the type is said
/// in an error ("hosts must be WANT, found an integer").
struct Key {
    name: &'static str,
    kind: Kind,
    want: &'static str,
}

impl Key {
    const fn string(name: &'static str) -> Key {
        Key { name, kind: Kind::Str, want: "a string" }
    }
    const fn flag(name: &'static str) -> Key {
        Key { name, kind: Kind::Bool, want: "true or false" }
    }
    const fn list(name: &'static str, want: &'static str) -> Key {
        Key { name, kind: Kind::List, want }
    }
}

/// The keys of a `[routes.NAME]` section, in the order error messages list
/// them. A new key is a row here and its use in `validate`.
const ROUTE_KEYS: &[Key] = &[
    Key::list("hosts", "an array of host names, like [\"docker.mirror.example.com\"]"),
    Key::string("upstream"),
    Key::string("realm"),
    Key::string("service"),
    Key::flag("library"),
    Key::string("redirects"),
    Key::flag("default"),
    Key::flag("insecure"),
    Key::string("prefix"),
    Key::string("registry"),
    Key::string("repository"),
    Key::string("credentials"),
    Key::list("allow", "an array of repository patterns, like [\"library/*\", \"myorg/app\"]"),
];

/// The keys above the first `[routes.NAME]`, besides `routes` itself.
const TOP_KEYS: &[Key] = &[Key::string("domain"), Key::flag("page"), Key::flag("log"), Key::flag("log_client")];

fn names(keys: &[Key]) -> String {
    keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// A value of the type its key asks for; list items keep their own lines.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    List(Vec<(String, usize)>),
}

struct Entry {
    line: usize,
    value: Value,
}

/// The keys of one section, typed but not yet validated.
struct Section {
    keys: BTreeMap<&'static str, Entry>,
}

impl Section {
    fn line(&self, key: &str) -> Option<usize> {
        self.keys.get(key).map(|e| e.line)
    }
    fn str(&self, key: &str) -> Option<(&str, usize)> {
        match self.keys.get(key) {
            Some(Entry { line, value: Value::Str(s) }) => Some((s, *line)),
            _ => None,
        }
    }
    fn flag(&self, key: &str) -> Option<bool> {
        match self.keys.get(key) {
            Some(Entry { value: Value::Bool(b), .. }) => Some(*b),
            _ => None,
        }
    }
    fn list(&self, key: &str) -> &[(String, usize)] {
        match self.keys.get(key) {
            Some(Entry { value: Value::List(items), .. }) => items,
            _ => &[],
        }
    }
}

struct RawRoute {
    name: String,
    line: usize,
    section: Section,
}

// ---- validation ----

/// Parses and validates a route table.
pub fn parse(src: &str) -> Result<Table, TableError> {
    let (top, raw) = read(src)?;
    let domain = top.domain;
    let mut routes: Vec<RouteSpec> = Vec::new();
    // (host, prefix) -> (route, line): a host may be shared by routes with
    // different prefixes.
    let mut host_owner: BTreeMap<(String, Option<String>), (String, usize)> = BTreeMap::new();
    let mut registry_owner: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut default_owner: Option<(String, usize)> = None;
    for r in raw {
        let spec = validate(&r, domain.as_ref())?;
        let lines = r.section.list("hosts");
        for (i, h) in spec.hosts.iter().enumerate() {
            let line = lines.get(i).map_or(r.line, |item| item.1);
            if spec.hosts[..i].contains(h) {
                return err(line, format!("host \"{}\" is listed twice in route \"{}\"; remove one", h, spec.name));
            }
            let key = (h.clone(), spec.prefix.clone());
            if let Some((other, other_line)) = host_owner.get(&key) {
                let message = match &spec.prefix {
                    None => format!(
                        "host \"{}\" is already served by route \"{}\" (line {}) without a prefix; a host has at most one route without a prefix, give one of them a prefix or remove the host",
                        h, other, other_line
                    ),
                    Some(p) => format!(
                        "host \"{}\" already serves prefix \"{}\" for route \"{}\" (line {}); give each route on a shared host its own prefix",
                        h, p, other, other_line
                    ),
                };
                return err(line, message);
            }
            host_owner.insert(key, (spec.name.clone(), line));
        }
        let registry_line = r.section.line("registry").unwrap_or(r.line);
        if let Some((other, other_line)) = registry_owner.get(&spec.registry) {
            return err(
                registry_line,
                format!(
                    "registry name \"{}\" is already route \"{}\"'s (line {}); clients pick routes by it (containerd's ns), so set registry = \"...\" to a name of its own on one of them",
                    spec.registry, other, other_line
                ),
            );
        }
        registry_owner.insert(spec.registry.clone(), (spec.name.clone(), registry_line));
        if spec.default {
            let line = r.section.line("default").unwrap_or(r.line);
            if let Some((other, other_line)) = &default_owner {
                return err(
                    line,
                    format!(
                        "route \"{}\" is marked default but route \"{}\" (line {}) already is; at most one route may be the default",
                        spec.name, other, other_line
                    ),
                );
            }
            default_owner = Some((spec.name.clone(), line));
        }
        routes.push(spec);
    }
    if routes.is_empty() {
        return err(1, "the table declares no routes; add a [routes.NAME] section with hosts and upstream");
    }
    if top.log_client && !top.log {
        return err(top.log_client_line, "log_client = true adds the client's address to the request log, which is off; set log = true too");
    }
    Ok(Table { routes, page: top.page, log: top.log, log_client: top.log_client })
}

/// Repository path components: `a/b`, each one lower-case letters and digits
/// with `.`, `_`, `__` or `-` inside (the distribution name grammar).
fn components(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|c| {
            let b = c.as_bytes();
            let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
            !b.is_empty()
                && alnum(b[0])
                && alnum(b[b.len() - 1])
                && !c.contains("..")
                && !c.contains("___")
                && !c.contains("._")
                && !c.contains("_.")
                && b.iter().all(|&x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
        })
}

/// A path-components key (`prefix`, `repository`), or the error saying what
/// is wrong with it.
fn path_key(key: &str, v: &str, line: usize, example: &str) -> Result<String, TableError> {
    if v.starts_with('/') || v.ends_with('/') || v.contains("//") {
        return err(
            line,
            format!("{} \"{}\" has a slash in the wrong place; write path components separated by single slashes, like \"{}\"", key, v, example),
        );
    }
    if !components(v) {
        return err(
            line,
            format!(
                "{} \"{}\" is not a repository path; use lower-case letters and digits with '.', '_' or '-' inside components, like \"{}\"",
                key, v, example
            ),
        );
    }
    Ok(v.to_string())
}

/// An allow pattern: a repository name, optionally ending in `/*` (one or
/// more components under it), or `*` alone.
fn allow_pattern(p: &str, line: usize) -> Result<String, TableError> {
    let name = p.strip_suffix("/*").unwrap_or(p);
    if p == "*" || components(name) {
        return Ok(p.to_string());
    }
    err(
        line,
        format!(
            "allow pattern \"{}\" is not a repository pattern; write a repository (\"owner/image\"), everything under a path (\"myorg/*\", \"library/*\") or \"*\"; '*' stands only at the end, for whole components",
            p
        ),
    )
}

fn validate(r: &RawRoute, domain: Option<&(String, usize)>) -> Result<RouteSpec, TableError> {
    let s = &r.section;
    let mut hosts = Vec::new();
    for (h, line) in s.list("hosts") {
        hosts.push(host_name(h, domain, *line)?);
    }
    let insecure = s.flag("insecure").unwrap_or(false);
    let default = s.flag("default").unwrap_or(false);
    let service = match s.str("service") {
        Some((v, line)) if v.is_empty() || v.bytes().any(|b| b < 0x20 || b == 0x7f) => {
            return err(line, "service must be a non-empty string without control characters")
        }
        other => other.map(|(v, _)| v.to_string()),
    };
    let follow_redirects = match s.str("redirects") {
        None | Some(("follow", _)) => true,
        Some(("pass", _)) => false,
        Some((v, line)) => {
            return err(
                line,
                format!("redirects is \"{}\"; write \"follow\" (the worker follows upstream redirects) or \"pass\" (clients get them)", v),
            )
        }
    };
    let upstream = match s.str("upstream") {
        Some((v, line)) => origin(v, line, "upstream", insecure, false)?,
        None => {
            return err(
                r.line,
                format!("route \"{}\" has no upstream; add upstream = \"https://registry.example.com\"", r.name),
            )
        }
    };
    let realm = match s.str("realm") {
        Some((v, line)) => Some(origin(v, line, "realm", insecure, true)?),
        None => None,
    };
    if hosts.is_empty() && !default {
        return err(
            r.line,
            format!("route \"{}\" has no hosts; add hosts = [\"NAME.mirror.example.com\"] (or default = true)", r.name),
        );
    }
    let prefix = match s.str("prefix") {
        Some((v, line)) => Some(path_key("prefix", v, line, "ghcr.io")?),
        None => None,
    };
    let repository = match s.str("repository") {
        Some((v, line)) => Some(path_key("repository", v, line, "my-project")?),
        None => None,
    };
    let registry = match s.str("registry") {
        Some((v, line)) => registry_name(v, line)?,
        None => upstream.split_once("://").map_or(upstream.as_str(), |p| p.1).to_string(),
    };
    let mut allow = Vec::new();
    for (p, line) in s.list("allow") {
        allow.push(allow_pattern(p, *line)?);
    }
    if let Some(line) = s.line("allow").filter(|_| allow.is_empty()) {
        return err(line, "allow is empty, which would refuse every repository; list the repositories to serve, or remove allow to serve all");
    }
    let credentials = match s.str("credentials") {
        Some((v, line)) => {
            let b = v.as_bytes();
            let ok = !b.is_empty() && !b[0].is_ascii_digit() && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'_');
            if !ok {
                return err(
                    line,
                    format!("credentials \"{}\" is not a secret name; name the Worker secret (letters, digits, '_'), like \"DOCKERHUB_CREDENTIALS\"", v),
                );
            }
            if allow.is_empty() {
                return err(
                    line,
                    format!(
                        "route \"{}\" has credentials but no allow list, so the mirror would serve everything the account can read to anyone; add allow = [\"library/*\", ...] with the repositories to serve",
                        r.name
                    ),
                );
            }
            Some(v.to_string())
        }
        None => None,
    };
    Ok(RouteSpec {
        name: r.name.clone(),
        line: r.line,
        hosts,
        upstream,
        realm,
        service,
        library: s.flag("library").unwrap_or(false),
        follow_redirects,
        default,
        prefix,
        registry,
        repository,
        credentials,
        allow,
    })
}

/// A registry name: a host name, optionally with a port, as containerd
/// sends it in `ns` (`docker.io`, `ghcr.io`, `localhost:5000`).
fn registry_name(v: &str, line: usize) -> Result<String, TableError> {
    let (host, port) = v.rsplit_once(':').map_or((v, None), |(h, p)| (h, Some(p)));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    match host_name(host, None, line) {
        Ok(h) if port_ok && !v.ends_with('.') => Ok(match port {
            Some(p) => format!("{}:{}", h, p),
            None => h,
        }),
        _ => err(
            line,
            format!("registry \"{}\" is not a host name; write the name clients use for the upstream, like \"docker.io\" or \"ghcr.io\"", v),
        ),
    }
}

// ---- reading the document ----

type Domain = Option<(String, usize)>;

/// The settings above the first route.
struct Top {
    domain: Domain,
    page: bool,
    log: bool,
    log_client: bool,
    log_client_line: usize,
}
type Item<'a> = (&'a Spanned<DeString<'a>>, &'a Spanned<DeValue<'a>>);

/// 1-based line of a byte offset.
fn line_of(src: &str, at: usize) -> usize {
    let b = src.as_bytes();
    1 + b[..at.min(b.len())].iter().filter(|&&c| c == b'\n').count()
}

/// 1-based column (in characters) of a byte offset.
fn column_of(src: &str, at: usize) -> usize {
    let b = &src.as_bytes()[..at.min(src.len())];
    let start = b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    1 + b[start..].iter().filter(|&&c| c & 0xc0 != 0x80).count()
}

/// A table's entries in the order they appear in the file (the crate keeps
/// them sorted by name).
fn in_order<'a>(t: &'a DeTable<'a>) -> Vec<Item<'a>> {
    let mut items: Vec<Item<'a>> = t.iter().collect();
    items.sort_by_key(|(k, _)| k.span().start);
    items
}

/// Whether the value was opened by a `[header]` or `[[header]]` (which
/// contains its own key), rather than by `key = value` or a dotted key.
fn is_header(key: &Range<usize>, value: &Range<usize>) -> bool {
    value.start < key.start && key.end <= value.end
}

fn kind_of(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Checks a value against its key's type.
fn typed(src: &str, key: &Key, line: usize, v: &Spanned<DeValue>) -> Result<Value, TableError> {
    let wrong = |line: usize, found: &str| err(line, format!("{} must be {}, found {}", key.name, key.want, found));
    match (key.kind, v.get_ref()) {
        (Kind::Str, DeValue::String(s)) => Ok(Value::Str(s.to_string())),
        (Kind::Bool, DeValue::Boolean(b)) => Ok(Value::Bool(*b)),
        (Kind::List, DeValue::Array(items)) => {
            let mut out = Vec::new();
            for item in items.iter() {
                let item_line = line_of(src, item.span().start);
                match item.get_ref() {
                    DeValue::String(s) => out.push((s.to_string(), item_line)),
                    other => return wrong(item_line, &format!("{} in the array", kind_of(other))),
                }
            }
            Ok(Value::List(out))
        }
        (_, other) => wrong(line, kind_of(other)),
    }
}

/// Reads the keys of one section; a key not in `keys` is refused with the
/// error `unknown` makes of it.
fn section<'a>(
    src: &str,
    items: Vec<Item<'a>>,
    keys: &[Key],
    unknown: impl Fn(Item<'a>) -> TableError,
) -> Result<Section, TableError> {
    let mut out = Section { keys: BTreeMap::new() };
    for (k, v) in items {
        let line = line_of(src, k.span().start);
        let key = match keys.iter().find(|key| key.name == k.get_ref().as_ref()) {
            Some(key) => key,
            None => return Err(unknown((k, v))),
        };
        let value = typed(src, key, line, v)?;
        out.keys.insert(key.name, Entry { line, value });
    }
    Ok(out)
}

const ARRAY_OF_TABLES: &str = "arrays of tables ([[...]]) are not used here; declare each route as [routes.NAME]";

/// The first `[header]` at or below a value, for naming an unknown table.
fn first_header(key: &Range<usize>, v: &Spanned<DeValue>) -> Option<Range<usize>> {
    if is_header(key, &v.span()) {
        return Some(v.span());
    }
    match v.get_ref() {
        DeValue::Table(t) => in_order(t).into_iter().find_map(|(k, v)| first_header(&k.span(), v)),
        _ => None,
    }
}

/// An unknown key above the routes: a table of its own (`[mirrors]`) or a
/// stray key.
fn unknown_top(src: &str, (k, v): Item) -> TableError {
    match first_header(&k.span(), v) {
        Some(h) => TableError {
            line: line_of(src, h.start),
            message: format!(
                "unknown table [{}]; routes are declared as [routes.NAME]",
                src.get(h).unwrap_or_default().trim_matches(['[', ']']).trim()
            ),
        },
        None => TableError {
            line: line_of(src, k.span().start),
            message: format!(
                "unknown top-level key \"{}\"; only {} may stand above the first [routes.NAME]",
                k.get_ref(),
                names(TOP_KEYS)
            ),
        },
    }
}

fn read(src: &str) -> Result<(Top, Vec<RawRoute>), TableError> {
    let doc = DeTable::parse(src).map_err(|e| syntax(src, &e))?;
    let (mut routes, mut top) = (None, Vec::new());
    for (k, v) in in_order(doc.get_ref()) {
        match k.get_ref().as_ref() {
            "routes" => routes = Some((k, v)),
            _ => top.push((k, v)),
        }
    }
    // The top-level keys first, so `{domain}` is known whatever the order.
    let top = section(src, top, TOP_KEYS, |item| unknown_top(src, item))?;
    let domain = match top.str("domain") {
        Some((d, line)) => Some((host_name(d, None, line)?, line)),
        None => None,
    };
    let top = Top {
        domain,
        page: top.flag("page").unwrap_or(true),
        log: top.flag("log").unwrap_or(false),
        log_client: top.flag("log_client").unwrap_or(false),
        log_client_line: top.line("log_client").unwrap_or(1),
    };
    let mut out = Vec::new();
    let (k, v) = match routes {
        Some(r) => r,
        None => return Ok((top, out)),
    };
    let table = match v.get_ref() {
        DeValue::Table(t) => t,
        DeValue::Array(_) if is_header(&k.span(), &v.span()) => return err(line_of(src, k.span().start), ARRAY_OF_TABLES),
        other => {
            return err(
                line_of(src, k.span().start),
                format!("routes must hold [routes.NAME] sections, found {}; write [routes.NAME] and the route's keys under it", kind_of(other)),
            )
        }
    };
    for (name, v) in in_order(table) {
        let line = line_of(src, name.span().start);
        let t = match v.get_ref() {
            DeValue::Table(t) => t,
            DeValue::Array(_) if is_header(&name.span(), &v.span()) => return err(line, ARRAY_OF_TABLES),
            other => {
                return err(
                    line,
                    format!(
                        "route \"{}\" must be a [routes.{}] section with hosts and upstream, found {}",
                        name.get_ref(),
                        name.get_ref(),
                        kind_of(other)
                    ),
                )
            }
        };
        let section = section(src, in_order(t), ROUTE_KEYS, |(k, _)| TableError {
            line: line_of(src, k.span().start),
            message: format!("unknown key \"{}\" in [routes.{}]; the keys are {}", k.get_ref(), name.get_ref(), names(ROUTE_KEYS)),
        })?;
        out.push(RawRoute { name: name.get_ref().to_string(), line, section });
    }
    Ok((top, out))
}

// ---- syntax errors ----

/// A TOML syntax error from the crate: its message on one line, at the line
/// and column it points to.
fn syntax(src: &str, e: &toml::de::Error) -> TableError {
    let at = e.span().unwrap_or(0..0);
    if e.message() == "duplicate key" {
        if let Some(d) = duplicate(src, &at) {
            return d;
        }
    }
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    TableError {
        line: line_of(src, at.start),
        message: format!("{} at column {}; fix the TOML syntax", message, column_of(src, at.start)),
    }
}

/// The crate reports a key or table defined twice at the second definition.
/// This finds the first, in the document up to the second's line, and says
/// which route or key it is. `None` where that cannot be made out (the
/// caller then gives the crate's message).
fn duplicate(src: &str, at: &Range<usize>) -> Option<TableError> {
    let line_start = src.get(..at.start)?.rfind('\n').map_or(0, |i| i + 1);
    let before = DeTable::parse(src.get(..line_start)?).ok()?;
    let head = src.get(line_start..at.end)?.trim_start();
    let path = match head.strip_prefix('[') {
        Some(header) => key_path(header.trim_start_matches('['))?,
        None => {
            // A key under the last header (or above the first).
            let mut path = last_header(before.get_ref(), &[]).map_or(Vec::new(), |h| h.1);
            path.extend(key_path(head)?);
            path
        }
    };
    let first = line_of(src, find(before.get_ref(), &path)?.start);
    let message = match path.as_slice() {
        [t] if t == "routes" => {
            format!("the routes table is defined twice (first on line {}); write each route as its own [routes.NAME] section", first)
        }
        [t, name] if t == "routes" => {
            format!("route \"{}\" is declared twice (first on line {}); give each route its own name", name, first)
        }
        [t, name, key] if t == "routes" => format!("key \"{}\" is set twice in [routes.{}] (first on line {})", key, name, first),
        _ => format!("key \"{}\" is set twice (first on line {}); remove one", path.join("."), first),
    };
    Some(TableError { line: line_of(src, at.start), message })
}

/// The names in a dotted key as written (`a."b.c"` is `a`, `b.c`).
fn key_path(text: &str) -> Option<Vec<String>> {
    let line = format!("{} = 0", text);
    let doc = DeTable::parse(&line).ok()?;
    let mut path = Vec::new();
    let mut t = doc.get_ref();
    loop {
        let (k, v) = t.iter().next()?;
        path.push(k.get_ref().to_string());
        match v.get_ref() {
            DeValue::Table(inner) => t = inner,
            _ => return Some(path),
        }
    }
}

/// The path of the last `[header]` in a table, with the header's start;
/// `None` if it has none.
fn last_header(t: &DeTable, path: &[String]) -> Option<(usize, Vec<String>)> {
    t.iter()
        .filter_map(|(k, v)| match v.get_ref() {
            DeValue::Table(inner) => {
                let p = [path, &[k.get_ref().to_string()]].concat();
                let here = is_header(&k.span(), &v.span()).then(|| (v.span().start, p.clone()));
                here.into_iter().chain(last_header(inner, &p)).max_by_key(|h| h.0)
            }
            _ => None,
        })
        .max_by_key(|h| h.0)
}

/// The span of the key at `path`.
fn find(t: &DeTable, path: &[String]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (k, v) = t.iter().find(|(k, _)| k.get_ref() == first)?;
    match (rest.is_empty(), v.get_ref()) {
        (true, _) => Some(k.span()),
        (false, DeValue::Table(inner)) => find(inner, rest),
        (false, _) => None,
    }
}

/// Checks `http(s)://authority[/path]`. The upstream may not have a path (the
/// worker appends `/v2/...`); a realm may have a path and a query.
fn origin(s: &str, line: usize, key: &str, insecure: bool, path_ok: bool) -> Result<String, TableError> {
    let example = if key == "realm" { "https://auth.docker.io/token" } else { "https://registry-1.docker.io" };
    let (scheme, rest) = match s.split_once("://") {
        Some(p) => p,
        None => return err(line, format!("{} \"{}\" is not an absolute http(s) URL; write it like \"{}\"", key, s, example)),
    };
    if scheme != "https" && scheme != "http" {
        return err(line, format!("{} \"{}\" is not an absolute http(s) URL; write it like \"{}\"", key, s, example));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // host [":" port], where host may be an IPv6 literal in brackets.
    let split = if authority.starts_with('[') {
        authority.find(']').map(|i| i + 1)
    } else {
        Some(authority.rfind(':').unwrap_or(authority.len()))
    };
    let (host, port) = match split {
        Some(i) => authority.split_at(i),
        None => (authority, ""),
    };
    if let Some(p) = port.strip_prefix(':') {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u32>().map_or(true, |n| n == 0 || n > 65535) {
            return err(line, format!("{} \"{}\" has an invalid port; ports are 1 to 65535", key, s));
        }
    } else if !port.is_empty() {
        return err(line, format!("{} \"{}\" has no valid host name; write it like \"{}\"", key, s, example));
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.len() > 1 && inner.ends_with(']') && inner[..inner.len() - 1].bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    if !host_ok || authority.contains('@') {
        return err(line, format!("{} \"{}\" has no valid host name; write it like \"{}\"", key, s, example));
    }
    if tail.contains('#') || tail.bytes().any(|b| b <= 0x20 || b == b'"' || b == b'\\' || b >= 0x7f) {
        return err(line, format!("{} \"{}\" contains characters a URL cannot hold unescaped", key, s));
    }
    if !(path_ok || tail.is_empty() || tail == "/") {
        return err(
            line,
            format!("{} \"{}\" has a path; write only scheme and host (the worker adds /v2/...), like \"{}\"", key, s, example),
        );
    }
    if scheme == "http" && !insecure {
        return err(
            line,
            format!("{} \"{}\" uses plain http; use https, or set insecure = true in this route if that is intended (local test upstreams)", key, s),
        );
    }
    let out = if path_ok { s } else { s.trim_end_matches('/') };
    Ok(lower_prefix(out, scheme.len() + 3 + authority.len()))
}

/// Lower-cases the first `n` bytes (scheme and authority), keeps the rest
/// (the path) as written.
fn lower_prefix(s: &str, n: usize) -> String {
    let n = n.min(s.len());
    let mut out = s[..n].to_ascii_lowercase();
    out.push_str(&s[n..]);
    out
}

fn host_name(raw: &str, domain: Option<&(String, usize)>, line: usize) -> Result<String, TableError> {
    let h = if raw.contains("{domain}") {
        match domain {
            Some((d, _)) => raw.replace("{domain}", d),
            None => return err(line, format!("host \"{}\" uses {{domain}} but the table sets no domain; add domain = \"mirror.example.com\" at the top", raw)),
        }
    } else {
        raw.to_string()
    };
    let h = h.to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h).to_string();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return err(
            line,
            format!("\"{}\" is not a host name; hosts are names like \"docker.mirror.example.com\" (letters, digits, '-', '_', dots; no scheme, port or path)", raw),
        );
    }
    Ok(h)
}

// ---- code generation ----

fn lit(s: &str) -> String {
    format!("{:?}", s)
}

fn opt(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("Some({})", lit(s)),
        None => "None".to_string(),
    }
}

fn list(items: &[String]) -> String {
    items.iter().map(|h| lit(h)).collect::<Vec<_>>().join(", ")
}

/// Writes the Rust source of the compiled table: `ROUTES`, `DEFAULT_ROUTE`,
/// the table-wide settings, and `USES_*`, which say whether any route sets a
/// key (code for a key no route uses compiles away).
pub fn render(table: &Table, file: &str) -> String {
    let routes = &table.routes;
    let mut out = String::new();
    out.push_str("// @generated by build.rs from ");
    out.push_str(file);
    out.push_str(". Do not edit; edit the table and rebuild.\n\n");
    out.push_str("pub static ROUTES: &[Route] = &[\n");
    for r in routes {
        out.push_str(&format!("    // {}:{}\n", file, r.line));
        out.push_str(&format!(
            "    Route {{ name: {}, hosts: &[{}], prefix: {}, registry: {}, upstream: {}, realm: {}, service: {}, library: {}, follow_redirects: {}, repository: {}, credentials: {}, allow: &[{}] }},\n",
            lit(&r.name),
            list(&r.hosts),
            opt(&r.prefix),
            lit(&r.registry),
            lit(&r.upstream),
            opt(&r.realm),
            opt(&r.service),
            r.library,
            r.follow_redirects,
            opt(&r.repository),
            opt(&r.credentials),
            list(&r.allow),
        ));
    }
    out.push_str("];\n\n");
    let default = routes.iter().position(|r| r.default);
    out.push_str(&format!(
        "pub const DEFAULT_ROUTE: Option<usize> = {};\n",
        default.map_or("None".to_string(), |i| format!("Some({})", i))
    ));
    out.push_str(&format!("pub const PAGE: bool = {};\n", table.page));
    out.push_str(&format!("pub const LOG: bool = {};\n", table.log));
    out.push_str(&format!("pub const LOG_CLIENT: bool = {};\n", table.log_client));
    out.push_str(&format!("pub const USES_PREFIX: bool = {};\n", routes.iter().any(|r| r.prefix.is_some())));
    out.push_str(&format!("pub const USES_REPOSITORY: bool = {};\n", routes.iter().any(|r| r.repository.is_some())));
    out.push_str(&format!("pub const USES_CREDENTIALS: bool = {};\n", routes.iter().any(|r| r.credentials.is_some())));
    out.push_str(&format!("pub const USES_ALLOW: bool = {};\n", routes.iter().any(|r| !r.allow.is_empty())));
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The hosts a route is reached on without a prefix: where it has none, is
/// the host's only route, or is the default on a host whose routes all have
/// prefixes (the worker's `routes::by_host`).
fn unprefixed_hosts<'a>(table: &'a Table, r: &'a RouteSpec) -> Vec<&'a str> {
    r.hosts
        .iter()
        .map(String::as_str)
        .filter(|h| {
            let on_host: Vec<&RouteSpec> = table.routes.iter().filter(|o| o.hosts.iter().any(|x| x == h)).collect();
            r.prefix.is_none() || on_host.len() == 1 || (r.default && !on_host.iter().any(|o| o.prefix.is_none()))
        })
        .collect()
}

/// The page a browser gets for `GET /`: for the table's own host names, the
/// `docker pull` lines and each client's configuration (daemon.json, one
/// containerd hosts.toml per registry, registries.conf, k3s
/// registries.yaml). Built here; the entry (src/edge.js) carries it as a
/// string, so it costs no wasm.
pub fn index_html(table: &Table) -> String {
    let e = html_escape;
    let mut pulls = String::new();
    let (mut hosts_toml, mut conf, mut k3s) = (String::new(), String::new(), String::from("mirrors:\n"));
    let mut daemon = None;
    for r in &table.routes {
        let example = if r.library { "busybox" } else { "OWNER/IMAGE" };
        let plains = unprefixed_hosts(table, r);
        let plain = plains.first().copied();
        let mut refs: Vec<String> = plains.iter().map(|h| format!("{}/{}", h, example)).collect();
        if let Some(p) = &r.prefix {
            refs.extend(r.hosts.iter().take(1).map(|h| format!("{}/{}/{}", h, p, example)));
        }
        for reference in &refs {
            pulls.push_str(&format!("<tr><td>{}</td><td><code>docker pull {}</code></td></tr>\n", e(&r.registry), e(reference)));
        }
        let Some(first) = r.hosts.first() else { continue };
        if r.registry == "docker.io" {
            daemon = daemon.or(plain);
        }
        hosts_toml.push_str(&format!(
            "# /etc/containerd/certs.d/{}/hosts.toml\nserver = \"{}\"\n[host.\"https://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\n",
            e(&r.registry),
            e(&r.upstream),
            e(first)
        ));
        let mirror = match (&r.prefix, plain) {
            (Some(p), _) => format!("{}/{}", first, p),
            (None, Some(h)) => h.to_string(),
            (None, None) => first.clone(),
        };
        conf.push_str(&format!(
            "[[registry]]\nlocation = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\n\n",
            e(&r.registry),
            e(&mirror)
        ));
        k3s.push_str(&format!("  \"{}\":\n    endpoint:\n      - \"https://{}\"\n", e(&r.registry), e(first)));
    }
    let daemon = match daemon {
        Some(h) => format!(
            "<h2>Docker (daemon.json)</h2><p>dockerd mirrors Docker Hub only; other registries are pulled by the names above.</p>\
<pre>{{\"registry-mirrors\": [\"https://{}\"]}}</pre>\n",
            e(h)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Registry mirror</title>\
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}}\
td{{padding:.3em 1em .3em 0}}code,pre{{background:#eee;padding:.1em .3em}}pre{{padding:.6em;overflow:auto}}</style></head>\
<body><h1>Registry mirror</h1><p>Pull through this mirror by naming it in the image reference:</p>\
<table><tr><th align=left>Registry</th><th align=left>Pull</th></tr>\n{}</table>\n{}\
<h2>containerd, nerdctl, Kubernetes nodes (hosts.toml)</h2><pre>{}</pre>\n\
<h2>Podman, Buildah, Skopeo (/etc/containers/registries.conf)</h2><pre>{}</pre>\n\
<h2>k3s (/etc/rancher/k3s/registries.yaml)</h2><pre>{}</pre>\n</body></html>\n",
        pulls,
        daemon,
        hosts_toml.trim_end(),
        conf.trim_end(),
        k3s.trim_end()
    )
}
