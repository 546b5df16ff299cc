//! The compiled route table and the lookup by host name.
//!
//! `build.rs` turns `routes.toml` (or `$ROUTES`) into `OUT_DIR/routes.rs`,
//! included here: a static slice and a default index. There
//! is no runtime configuration, KV lookup or query parameter that adds a
//! route, so the worker can only ever contact the upstreams and realms listed
//! here (and the targets of their redirects).

/// One mirror route, as compiled from the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    pub name: &'static str,
    /// Lower-case host names, no trailing dot.
    pub hosts: &'static [&'static str],
    /// `scheme://authority` of the upstream registry.
    pub upstream: &'static str,
    /// The upstream's token endpoint, when the table names it.
    pub realm: Option<&'static str>,
    pub service: Option<&'static str>,
    /// Docker Hub rule: single-component names get `library/`.
    pub library: bool,
    pub follow_redirects: bool,
}

include!(concat!(env!("OUT_DIR"), "/routes.rs"));

/// The route for a host name (port already removed; a trailing dot and case
/// are ignored), or the default route, if the table has one.
pub fn lookup(host: &str) -> Option<&'static Route> {
    let host = host.strip_suffix('.').unwrap_or(host);
    ROUTES
        .iter()
        .find(|r| r.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
        .or_else(|| DEFAULT_ROUTE.and_then(|i| ROUTES.get(i)))
}
