//! Reading the table: the TOML document, the keys it may hold and their
//! types. What the values mean is `check.rs`'s job.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use super::{err, TableError};

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
    Key::list("fallback", "an array of other routes' registry names, like [\"mirror.gcr.io\"]"),
    Key::string("search"),
];

/// The keys above the first `[routes.NAME]`, besides `routes` itself.
const TOP_KEYS: &[Key] = &[
    Key::string("domain"),
    Key::flag("page"),
    Key::flag("log"),
    Key::flag("log_client"),
    Key::string("access"),
    Key::list("clients", "an array of addresses, ranges or countries, like [\"203.0.113.0/24\", \"2001:db8::/32\", \"country:DE\"]"),
    Key::list("deny_agents", "an array of User-Agent substrings, like [\"netcraft\"] ([] denies none)"),
    Key::string("rate_limit"),
];

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
pub(crate) struct Section {
    keys: BTreeMap<&'static str, Entry>,
}

impl Section {
    pub fn line(&self, key: &str) -> Option<usize> {
        self.keys.get(key).map(|e| e.line)
    }
    pub fn str(&self, key: &str) -> Option<(&str, usize)> {
        match self.keys.get(key) {
            Some(Entry { line, value: Value::Str(s) }) => Some((s, *line)),
            _ => None,
        }
    }
    pub fn flag(&self, key: &str) -> Option<bool> {
        match self.keys.get(key) {
            Some(Entry { value: Value::Bool(b), .. }) => Some(*b),
            _ => None,
        }
    }
    pub fn list(&self, key: &str) -> &[(String, usize)] {
        match self.keys.get(key) {
            Some(Entry { value: Value::List(items), .. }) => items,
            _ => &[],
        }
    }
}

/// One `[routes.NAME]` section, typed but not yet checked.
pub(crate) struct RawRoute {
    pub name: String,
    /// Line of the section's header.
    pub line: usize,
    pub section: Section,
}

// ---- reading the document ----

/// The settings above the first route, as written.
pub(crate) struct Top {
    /// `domain`, not yet checked, and its line.
    pub domain: Option<(String, usize)>,
    pub page: bool,
    pub log: bool,
    pub log_client: bool,
    pub log_client_line: usize,
    /// `access`, `rate_limit`: not yet checked, with their lines.
    pub access: Option<(String, usize)>,
    pub rate_limit: Option<(String, usize)>,
    /// `clients` with its line, when set.
    pub clients: Option<(Vec<(String, usize)>, usize)>,
    /// `deny_agents`, when set (else the default list).
    pub deny_agents: Option<Vec<(String, usize)>>,
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

pub(crate) fn read(src: &str) -> Result<(Top, Vec<RawRoute>), TableError> {
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
    let top = Top {
        domain: top.str("domain").map(|(d, line)| (d.to_string(), line)),
        page: top.flag("page").unwrap_or(true),
        log: top.flag("log").unwrap_or(false),
        log_client: top.flag("log_client").unwrap_or(false),
        log_client_line: top.line("log_client").unwrap_or(1),
        access: top.str("access").map(|(v, line)| (v.to_string(), line)),
        rate_limit: top.str("rate_limit").map(|(v, line)| (v.to_string(), line)),
        clients: top.line("clients").map(|line| (top.list("clients").to_vec(), line)),
        deny_agents: top.line("deny_agents").map(|_| top.list("deny_agents").to_vec()),
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

