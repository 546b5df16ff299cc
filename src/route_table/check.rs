//! Checking the table: what each value means and how routes fit together.
//! Host names, upstream and realm URLs (plain http only with `insecure =
//! true`), prefixes and repositories, allow patterns, credentials secret
//! names; across routes, a host served twice without distinct prefixes, a
//! registry name used twice, more than one default.

use std::collections::BTreeMap;

use super::policy::{self as admission, Admission};
use super::read::{RawRoute, Top};
use super::{err, RouteSpec, Table, TableError};

/// Checks every route and the table as a whole.
pub(crate) fn table(top: Top, raw: Vec<RawRoute>) -> Result<Table, TableError> {
    let domain = match top.domain {
        Some((d, line)) => Some((host_name(&d, None, line)?, line)),
        None => None,
    };
    let mut routes: Vec<RouteSpec> = Vec::new();
    // (host, prefix) -> (route, line): a host may be shared by routes with
    // different prefixes.
    let mut host_owner: BTreeMap<(String, Option<String>), (String, usize)> = BTreeMap::new();
    let mut registry_owner: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut default_owner: Option<(String, usize)> = None;
    // Each route's fallbacks with their lines, checked once every registry
    // name is known (a fallback may be declared after the route naming it).
    let mut fallbacks: Vec<Vec<(String, usize)>> = Vec::new();
    for r in raw {
        let spec = validate(&r, domain.as_ref())?;
        fallbacks.push(r.section.list("fallback").to_vec());
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
    check_fallbacks(&routes, &fallbacks)?;
    let text: usize = routes
        .iter()
        .map(|r| {
            let opts = [&r.prefix, &r.realm, &r.service, &r.repository, &r.credentials, &r.search];
            r.name.len()
                + r.registry.len()
                + r.upstream.len()
                + opts.iter().map(|o| o.as_ref().map_or(0, String::len)).sum::<usize>()
                + r.hosts.iter().chain(&r.allow).map(String::len).sum::<usize>()
        })
        .sum();
    let hosts: usize = routes.iter().map(|r| r.hosts.len()).sum();
    let allow: usize = routes.iter().map(|r| r.allow.len()).sum();
    if text > MAX_TOTAL || hosts > MAX_TOTAL || allow > MAX_TOTAL {
        return err(1, "the table is larger than the compiled table holds (64 KiB of text, 65535 hosts and allow patterns); split it into several workers");
    }
    if top.log_client && !top.log {
        return err(top.log_client_line, "log_client = true adds the client's address to the request log, which is off; set log = true too");
    }
    let admission = Admission {
        access: top.access.map(|(v, line)| admission::access(&v, line)).transpose()?,
        clients: match &top.clients {
            Some((list, line)) => admission::clients(list, *line)?,
            None => Vec::new(),
        },
        deny_agents: match &top.deny_agents {
            Some(list) => admission::deny_agents(list)?,
            None => admission::DEFAULT_DENY_AGENTS.iter().map(|s| s.to_string()).collect(),
        },
        rate_limit: top.rate_limit.map(|(v, line)| admission::rate_limit(&v, line)).transpose()?,
    };
    Ok(Table { routes, domain: domain.map(|(d, _)| d), page: top.page, log: top.log, log_client: top.log_client, admission })
}

/// Most fallbacks a route may name: each one tried costs up to three
/// subrequests (the fallback, a token, the retry).
const MAX_FALLBACKS: usize = 8;

/// Every route's `fallback` list names other routes of the table, each once;
/// a route without hosts (and not the default) is reachable only as a
/// fallback, so some route must name it.
fn check_fallbacks(routes: &[RouteSpec], fallbacks: &[Vec<(String, usize)>]) -> Result<(), TableError> {
    for (r, list) in routes.iter().zip(fallbacks) {
        for (i, (name, line)) in list.iter().enumerate() {
            if list[..i].iter().any(|(n, _)| n == name) {
                return err(*line, format!("fallback \"{}\" is listed twice in route \"{}\"; remove one", name, r.name));
            }
            if *name == r.registry {
                return err(
                    *line,
                    format!("fallback \"{}\" is route \"{}\"'s own registry; a route cannot fall back to itself, name another route's registry", name, r.name),
                );
            }
            let Some(at) = routes.iter().position(|o| o.registry == *name) else {
                let known: Vec<&str> = routes.iter().filter(|o| o.name != r.name).map(|o| o.registry.as_str()).collect();
                return err(
                    *line,
                    format!(
                        "fallback \"{}\" names no route of this table; name another route by its registry ({}), or add a [routes.NAME] with registry = \"{}\"",
                        name,
                        known.join(", "),
                        name
                    ),
                );
            };
            if at > usize::from(u8::MAX) {
                return err(*line, format!("fallback \"{}\" is route number {}; a route named as a fallback must be among the table's first 256 routes, move it up", name, at + 1));
            }
        }
        if list.len() > MAX_FALLBACKS {
            let line = list.get(MAX_FALLBACKS).map_or(r.line, |item| item.1);
            return err(
                line,
                format!("route \"{}\" names {} fallbacks; at most {} (each one tried costs up to three subrequests)", r.name, list.len(), MAX_FALLBACKS),
            );
        }
    }
    for r in routes.iter().filter(|r| r.hosts.is_empty() && !r.default) {
        if !routes.iter().any(|o| o.fallback.contains(&r.registry)) {
            return err(
                r.line,
                format!(
                    "route \"{}\" has no hosts; add hosts = [\"NAME.mirror.example.com\"] (or default = true, or name its registry \"{}\" in another route's fallback)",
                    r.name, r.registry
                ),
            );
        }
    }
    Ok(())
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

/// The compiled table stores a string's length and a list's length in one
/// byte, and offsets into its text and lists in two (render.rs).
const MAX_STRING: usize = 255;
const MAX_TOTAL: usize = 65535;

/// Every string and list of a route within what the compiled table holds.
fn fits(r: &RawRoute) -> Result<(), TableError> {
    let long = |what: String, n: usize, line: usize| {
        err(line, format!("{} is {} bytes long; the compiled table holds strings of at most {} bytes", what, n, MAX_STRING))
    };
    if r.name.len() > MAX_STRING {
        return long(format!("the route name \"{}...\"", &r.name[..r.name.floor_char_boundary(32)]), r.name.len(), r.line);
    }
    for key in ["upstream", "realm", "service", "prefix", "registry", "repository", "credentials", "search"] {
        if let Some((v, line)) = r.section.str(key).filter(|(v, _)| v.len() > MAX_STRING) {
            return long(key.to_string(), v.len(), line);
        }
    }
    for key in ["hosts", "allow"] {
        let items = r.section.list(key);
        if let Some((v, line)) = items.iter().find(|(v, _)| v.len() > MAX_STRING) {
            return long(format!("an item of {}", key), v.len(), *line);
        }
        if items.len() > MAX_STRING {
            let line = r.section.line(key).unwrap_or(r.line);
            return err(line, format!("{} has {} items; a route holds at most {}", key, items.len(), MAX_STRING));
        }
    }
    Ok(())
}

fn validate(r: &RawRoute, domain: Option<&(String, usize)>) -> Result<RouteSpec, TableError> {
    fits(r)?;
    // The compiled table's text is ASCII (the planner reads it without a
    // UTF-8 validator); every other string is checked to be ASCII below.
    if !r.name.is_ascii() {
        return err(r.line, format!("route name \"{}\" is not ASCII; name routes with ASCII letters, digits, '-' and '_'", r.name));
    }
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
        Some((v, line)) if !v.is_ascii() => {
            return err(line, format!("service \"{}\" is not ASCII; write it as the upstream's challenge names it, which is ASCII", v))
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
    let search = match s.str("search") {
        Some((v, line)) => Some(origin(v, line, "search", insecure, false)?),
        None => None,
    };
    let prefix = match s.str("prefix") {
        Some((_, line)) if hosts.is_empty() => {
            return err(
                line,
                format!("route \"{}\" has a prefix but no hosts, so no request can select it by prefix; add hosts, or remove the prefix", r.name),
            )
        }
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
            if !admission::binding_name(v) {
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
            // Without a realm the secret goes only to a discovered realm on
            // the upstream's own domain (location::discovered_realm), which an
            // IP address or a single-label host does not have.
            let host = upstream.split_once("://").map_or("", |p| p.1);
            let host = host.strip_prefix('[').map_or_else(|| host.split(':').next().unwrap_or(""), |_| "");
            if realm.is_none() && (!host.contains('.') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.')) {
                return err(
                    line,
                    format!(
                        "route \"{}\" has credentials and no realm, and its upstream {} has no domain a discovered realm could be checked against, so the secret would go to whatever realm its challenge names; add realm = \"...\" with the upstream's token endpoint",
                        r.name, upstream
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
        fallback: s.list("fallback").iter().map(|(f, _)| f.clone()).collect(),
        search,
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

/// Checks `http(s)://authority[/path]`. The upstream may not have a path (the
/// worker appends `/v2/...`); a realm may have a path and a query.
fn origin(s: &str, line: usize, key: &str, insecure: bool, path_ok: bool) -> Result<String, TableError> {
    let example = match key {
        "realm" => "https://auth.docker.io/token",
        "search" => "https://index.docker.io",
        _ => "https://registry-1.docker.io",
    };
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

