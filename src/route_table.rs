//! The route-table compiler: reads `routes.toml` and writes the Rust table the
//! worker `include!`s.
//!
//! This file is not a module of the worker. `build.rs` and the tests include it
//! with `#[path]`, so the wasm never carries a TOML reader and the tests can
//! assert the exact error text and line numbers a user sees.
//!
//! It reads the subset of TOML a route table needs: comments, `key = value`
//! lines, `[routes.NAME]` headers, basic and literal strings, booleans and
//! arrays of strings (which may span lines). Anything else (inline tables,
//! dotted keys, numbers, dates) is refused with the line it is on and what to
//! write instead, rather than guessed at.
//!
//! Errors name the file and the 1-based line and say how to fix the table:
//! unknown keys, missing or malformed upstreams and realms, plain http without
//! `insecure = true`, duplicate hosts or routes, more than one default.

use std::collections::BTreeMap;

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

const KEYS: &str = "hosts, upstream, realm, service, library, redirects, default, insecure";

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Array(Vec<String>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::Array(_) => "an array",
        }
    }
}

struct Entry {
    line: usize,
    value: Value,
}

struct RawRoute {
    name: String,
    line: usize,
    keys: BTreeMap<String, Entry>,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, TableError> {
    Err(TableError { line, message: message.into() })
}

/// Parses and validates a route table.
pub fn parse(src: &str) -> Result<Vec<RouteSpec>, TableError> {
    let (domain, raw) = read(src)?;
    let mut routes = Vec::new();
    let mut host_owner: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut default_owner: Option<(String, usize)> = None;
    for r in raw {
        let spec = validate(&r, domain.as_ref())?;
        for (i, h) in spec.hosts.iter().enumerate() {
            let line = r.keys.get("hosts").map_or(r.line, |e| e.line);
            if spec.hosts[..i].contains(h) {
                return err(line, format!("host \"{}\" is listed twice in route \"{}\"; remove one", h, spec.name));
            }
            if let Some((other, other_line)) = host_owner.get(h) {
                return err(
                    line,
                    format!(
                        "host \"{}\" is already served by route \"{}\" (line {}); each host belongs to one route, remove one of them",
                        h, other, other_line
                    ),
                );
            }
            host_owner.insert(h.clone(), (spec.name.clone(), line));
        }
        if spec.default {
            let line = r.keys.get("default").map_or(r.line, |e| e.line);
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
    Ok(routes)
}

fn validate(r: &RawRoute, domain: Option<&(String, usize)>) -> Result<RouteSpec, TableError> {
    let mut hosts = Vec::new();
    let mut upstream = None;
    let mut realm = None;
    let mut service = None;
    let mut library = false;
    let mut follow_redirects = true;
    let mut default = false;
    let mut insecure = false;
    for (key, e) in &r.keys {
        let want = |kind: &str| -> TableError {
            TableError {
                line: e.line,
                message: format!("{} must be {}, found {}", key, kind, e.value.kind()),
            }
        };
        match (key.as_str(), &e.value) {
            ("hosts", Value::Array(items)) => {
                for h in items {
                    hosts.push(host_name(h, domain, e.line)?);
                }
            }
            ("hosts", _) => return Err(want("an array of host names, like [\"docker.mirror.example.com\"]")),
            ("upstream", Value::Str(s)) => upstream = Some((s.clone(), e.line)),
            ("realm", Value::Str(s)) => realm = Some((s.clone(), e.line)),
            ("service", Value::Str(s)) => {
                if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
                    return err(e.line, "service must be a non-empty string without control characters");
                }
                service = Some(s.clone());
            }
            ("library", Value::Bool(b)) => library = *b,
            ("default", Value::Bool(b)) => default = *b,
            ("insecure", Value::Bool(b)) => insecure = *b,
            ("redirects", Value::Str(s)) => {
                follow_redirects = match s.as_str() {
                    "follow" => true,
                    "pass" => false,
                    _ => {
                        return err(
                            e.line,
                            format!("redirects is \"{}\"; write \"follow\" (the worker follows upstream redirects) or \"pass\" (clients get them)", s),
                        )
                    }
                }
            }
            ("upstream" | "realm" | "service" | "redirects", _) => return Err(want("a string")),
            ("library" | "default" | "insecure", _) => return Err(want("true or false")),
            _ => {
                return err(
                    e.line,
                    format!("unknown key \"{}\" in [routes.{}]; the keys are {}", key, r.name, KEYS),
                )
            }
        }
    }
    let (upstream, up_line) = match upstream {
        Some(u) => u,
        None => {
            return err(
                r.line,
                format!("route \"{}\" has no upstream; add upstream = \"https://registry.example.com\"", r.name),
            )
        }
    };
    let upstream = origin(&upstream, up_line, "upstream", insecure, false)?;
    let realm = match realm {
        Some((s, line)) => Some(origin(&s, line, "realm", insecure, true)?),
        None => None,
    };
    if hosts.is_empty() && !default {
        return err(
            r.line,
            format!("route \"{}\" has no hosts; add hosts = [\"NAME.mirror.example.com\"] (or default = true)", r.name),
        );
    }
    Ok(RouteSpec {
        name: r.name.clone(),
        line: r.line,
        hosts,
        upstream,
        realm,
        service,
        library,
        follow_redirects,
        default,
    })
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

// ---- the TOML subset reader ----

type Domain = Option<(String, usize)>;

fn read(src: &str) -> Result<(Domain, Vec<RawRoute>), TableError> {
    let lines: Vec<&str> = src.lines().collect();
    let mut routes: Vec<RawRoute> = Vec::new();
    let mut domain: Domain = None;
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = strip_comment(lines[i]).trim();
        i += 1;
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            if line.starts_with("[[") {
                return err(line_no, "arrays of tables ([[...]]) are not used here; declare each route as [routes.NAME]");
            }
            let inner = match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                Some(x) => x.trim(),
                None => return err(line_no, "a table header must end with ']'; write [routes.NAME]"),
            };
            let name = match inner.strip_prefix("routes.") {
                Some(n) => unquote_key(n.trim(), line_no)?,
                None => {
                    return err(
                        line_no,
                        format!("unknown table [{}]; routes are declared as [routes.NAME]", inner),
                    )
                }
            };
            if let Some(prev) = routes.iter().find(|r| r.name == name) {
                return err(
                    line_no,
                    format!("route \"{}\" is declared twice (first on line {}); give each route its own name", name, prev.line),
                );
            }
            routes.push(RawRoute { name, line: line_no, keys: BTreeMap::new() });
            continue;
        }
        let (key, rest) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => return err(line_no, format!("expected key = value or [routes.NAME], found \"{}\"", line)),
        };
        let key = unquote_key(key, line_no)?;
        if key.contains('.') {
            return err(line_no, format!("dotted key \"{}\" is not supported; put the key inside its [routes.NAME] section", key));
        }
        // Arrays may continue over following lines until the closing bracket.
        let mut text = rest.to_string();
        if text.starts_with('[') {
            while !array_closed(&text) {
                if i >= lines.len() {
                    return err(line_no, format!("the array for \"{}\" is not closed; add ']'", key));
                }
                text.push(' ');
                text.push_str(strip_comment(lines[i]).trim());
                i += 1;
            }
        }
        let value = parse_value(&text, line_no)?;
        match routes.last_mut() {
            None => {
                if key == "domain" {
                    match value {
                        Value::Str(s) => {
                            let d = host_name(&s, None, line_no)?;
                            domain = Some((d, line_no));
                        }
                        other => return err(line_no, format!("domain must be a string, found {}", other.kind())),
                    }
                } else {
                    return err(
                        line_no,
                        format!("unknown top-level key \"{}\"; only domain may stand above the first [routes.NAME]", key),
                    );
                }
            }
            Some(r) => {
                if let Some(prev) = r.keys.get(&key) {
                    return err(line_no, format!("key \"{}\" is set twice in [routes.{}] (first on line {})", key, r.name, prev.line));
                }
                r.keys.insert(key, Entry { line: line_no, value });
            }
        }
    }
    Ok((domain, routes))
}

/// Removes a `#` comment that is not inside a string.
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) => {
                if c == b'\\' && q == b'"' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == b'"' || c == b'\'' {
                    quote = Some(c);
                } else if c == b'#' {
                    return &line[..i];
                }
            }
        }
        i += 1;
    }
    line
}

fn array_closed(text: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) => {
                if c == b'\\' && q == b'"' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'"' | b'\'' => quote = Some(c),
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    false
}

fn unquote_key(k: &str, line: usize) -> Result<String, TableError> {
    if k.starts_with('"') || k.starts_with('\'') {
        let (s, rest) = parse_string(k, line)?;
        if !rest.trim().is_empty() {
            return err(line, format!("unexpected text after key: \"{}\"", rest.trim()));
        }
        return Ok(s);
    }
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
        return err(line, format!("\"{}\" is not a valid key; keys are letters, digits, '_' and '-'", k));
    }
    Ok(k.to_string())
}

fn parse_value(text: &str, line: usize) -> Result<Value, TableError> {
    let t = text.trim();
    let (v, rest) = if t == "true" || t.starts_with("true ") {
        (Value::Bool(true), &t[4..])
    } else if t == "false" || t.starts_with("false ") {
        (Value::Bool(false), &t[5..])
    } else if t.starts_with('"') || t.starts_with('\'') {
        let (s, rest) = parse_string(t, line)?;
        (Value::Str(s), rest)
    } else if let Some(mut body) = t.strip_prefix('[') {
        let mut items = Vec::new();
        loop {
            body = body.trim_start();
            if let Some(r) = body.strip_prefix(']') {
                break (Value::Array(items), r);
            }
            if !(body.starts_with('"') || body.starts_with('\'')) {
                return err(line, "arrays here hold strings only, like [\"a.example.com\", \"b.example.com\"]");
            }
            let (s, r) = parse_string(body, line)?;
            items.push(s);
            body = r.trim_start();
            if let Some(r) = body.strip_prefix(',') {
                body = r;
            } else if !body.starts_with(']') {
                return err(line, "expected ',' or ']' in the array");
            }
        }
    } else if t.starts_with('{') {
        return err(line, "inline tables are not supported; write the route as a [routes.NAME] section");
    } else if t.is_empty() {
        return err(line, "missing value after '='");
    } else {
        return err(
            line,
            format!("unsupported value \"{}\"; values are \"strings\", true/false or [\"arrays\", \"of strings\"]", t),
        );
    };
    if !rest.trim().is_empty() {
        return err(line, format!("unexpected text after the value: \"{}\"", rest.trim()));
    }
    Ok(v)
}

/// Reads a basic ("...", with escapes) or literal ('...') string at the start
/// of `t`; returns it and the text after it.
fn parse_string(t: &str, line: usize) -> Result<(String, &str), TableError> {
    let q = t.as_bytes()[0];
    if t.starts_with("\"\"\"") || t.starts_with("'''") {
        return err(line, "multi-line strings are not supported; write the value on one line");
    }
    let mut out = String::new();
    let mut chars = t[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c as u32 == q as u32 {
            return Ok((out, &t[1 + i + 1..]));
        }
        if c == '\\' && q == b'"' {
            match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, e)) => return err(line, format!("unsupported escape \\{} in a string", e)),
                None => break,
            }
            continue;
        }
        if (c as u32) < 0x20 && c != '\t' {
            return err(line, "control character in a string");
        }
        out.push(c);
    }
    err(line, "string is not closed; add the closing quote")
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

/// Writes the Rust source of the compiled table: `ROUTES` and `DEFAULT_ROUTE`.
pub fn render(routes: &[RouteSpec], file: &str) -> String {
    let mut out = String::new();
    out.push_str("// @generated by build.rs from ");
    out.push_str(file);
    out.push_str(". Do not edit; edit the table and rebuild.\n\n");
    out.push_str("pub static ROUTES: &[Route] = &[\n");
    for r in routes {
        out.push_str(&format!("    // {}:{}\n", file, r.line));
        out.push_str(&format!(
            "    Route {{ name: {}, hosts: &[{}], upstream: {}, realm: {}, service: {}, library: {}, follow_redirects: {} }},\n",
            lit(&r.name),
            r.hosts.iter().map(|h| lit(h)).collect::<Vec<_>>().join(", "),
            lit(&r.upstream),
            opt(&r.realm),
            opt(&r.service),
            r.library,
            r.follow_redirects,
        ));
    }
    out.push_str("];\n\n");
    let default = routes.iter().position(|r| r.default);
    out.push_str(&format!(
        "pub const DEFAULT_ROUTE: Option<usize> = {};\n\n",
        default.map_or("None".to_string(), |i| format!("Some({})", i))
    ));
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page a browser gets for `GET /`: each mirror host with a `docker pull`
/// line to copy. Built here; the entry (src/edge.js) carries it as a string,
/// so it costs no wasm.
pub fn index_html(routes: &[RouteSpec]) -> String {
    let mut rows = String::new();
    for r in routes {
        let upstream_host = r.upstream.split_once("://").map_or(r.upstream.as_str(), |p| p.1);
        for h in &r.hosts {
            let example = if r.library { "busybox" } else { "OWNER/IMAGE" };
            rows.push_str(&format!(
                "<tr><td>{}</td><td><code>docker pull {}/{}</code></td></tr>\n",
                html_escape(upstream_host),
                html_escape(h),
                example
            ));
        }
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Registry mirror</title>\
<style>body{{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}}\
td{{padding:.3em 1em .3em 0}}code{{user-select:all;background:#eee;padding:.1em .3em}}</style></head>\
<body><h1>Registry mirror</h1><p>Pull through this mirror with the host name of the registry you want:</p>\
<table><tr><th align=left>Upstream</th><th align=left>Pull</th></tr>\n{}</table></body></html>\n",
        rows
    )
}
