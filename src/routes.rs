//! The compiled route table and the lookups that pick a route.
//!
//! `build.rs` turns `routes.toml` (or `$ROUTES`) into `OUT_DIR/routes.rs`,
//! included here: a static slice, the default route and the table-wide
//! settings. There is no runtime configuration, KV lookup or query parameter
//! that adds a route, so the worker can only ever contact the upstreams and
//! realms listed here (and the targets of their redirects).
//!
//! A request finds its route one of three ways:
//! - containerd's `?ns=<registry>` (and the mirror's own `/token/<registry>`)
//!   name a route by its `registry`, among every route of the table;
//! - a path `/v2/<prefix>/<name>/...` on a host a prefixed route serves;
//! - otherwise the host: its route without a prefix, or the only route it
//!   has, or else the table's default route.
//!
//! The `USES_*` constants say whether any route sets a key, so the code for
//! a key no route uses compiles away.

/// One mirror route, as compiled from the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    pub name: &'static str,
    /// Lower-case host names, no trailing dot.
    pub hosts: &'static [&'static str],
    /// Path components that select this route on its hosts (`ghcr.io`).
    pub prefix: Option<&'static str>,
    /// The name clients use for the upstream (containerd's `ns`).
    pub registry: &'static str,
    /// `scheme://authority` of the upstream registry.
    pub upstream: &'static str,
    /// The upstream's token endpoint, when the table names it.
    pub realm: Option<&'static str>,
    pub service: Option<&'static str>,
    /// Docker Hub rule: single-component names get `library/`.
    pub library: bool,
    pub follow_redirects: bool,
    /// Upstream path components in front of every name (`my-project`).
    pub repository: Option<&'static str>,
    /// The Worker secret (`user:token`) for anonymous token requests.
    pub credentials: Option<&'static str>,
    /// Repository patterns served; empty means all.
    pub allow: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/routes.rs"));

fn serves(r: &Route, host: &str) -> bool {
    r.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// The route a registry name (`?ns=`, `/token/<registry>`) names.
pub fn by_registry(name: &str) -> Option<&'static Route> {
    let name = name.strip_suffix(".").unwrap_or(name);
    ROUTES.iter().find(|r| r.registry.eq_ignore_ascii_case(name))
}

/// The route for names without a prefix on `host` (port already removed, a
/// trailing dot and case ignored): its route without a prefix, or the only
/// route it has, or the default route.
pub fn by_host(host: &str) -> Option<&'static Route> {
    let host = host.strip_suffix(".").unwrap_or(host);
    let mut on_host = ROUTES.iter().filter(|r| serves(r, host));
    let first = on_host.clone().next();
    if let Some(r) = on_host.clone().find(|r| r.prefix.is_none()) {
        return Some(r);
    }
    match (first, on_host.nth(1)) {
        (Some(r), None) => Some(r),
        _ => DEFAULT_ROUTE.and_then(|i| ROUTES.get(i)),
    }
}

/// The route for repository `name` on `host`, and the name with the route's
/// prefix removed (`None` when no prefix was used).
///
/// On a host several routes share, a name whose first component looks like
/// a registry (it has a `.` or `:`, or is `localhost`, as in Docker's
/// reference grammar) but is no route's prefix names a registry this mirror
/// does not serve: `None`, rather than the default route's upstream asked
/// for a repository it cannot have (Docker Hub namespaces have no dots).
pub fn by_name<'a>(host: &str, name: &'a str) -> Option<(&'static Route, Option<&'a str>)> {
    if USES_PREFIX {
        let host = host.strip_suffix(".").unwrap_or(host);
        let mut shared = 0;
        for r in ROUTES.iter().filter(|r| serves(r, host)) {
            if let Some(rest) = r.prefix.and_then(|p| crate::strip_prefix_then(name, p, b'/')) {
                return Some((r, Some(rest)));
            }
            shared += 1;
        }
        let first = crate::before(name, b'/');
        if shared > 1 && name.len() > first.len() && (crate::has(first, b'.') || crate::has(first, b':') || first == "localhost") {
            return None;
        }
    }
    by_host(host).map(|r| (r, None))
}
