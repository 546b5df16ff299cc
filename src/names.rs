//! Repository names as clients say them and as upstreams know them.
//!
//! A client names a repository the way it reached the mirror:
//! `mirror.example.com/ghcr.io/owner/image` (the route's prefix, then the
//! name), `docker.mirror.example.com/busybox` (Docker Hub's short form), or
//! `owner/image` with containerd's `?ns=`. The upstream knows
//! `owner/image`, `library/busybox`, or with a route's `repository`
//! `my-project/app` (and with both, `docker/library/busybox`). Everything that carries a name is mapped here, one way
//! for paths and token scopes, the other way for the scope in an upstream's
//! challenge, so the client asks for the name it used.
//!
//! The allow list is checked on the name as the upstream's namespace shows
//! it before `repository` is added (`library/busybox`, `myorg/app`).
//!
//! It does not validate names: paths are checked by `path`, and a scope
//! name that is not a repository name is left for the upstream to refuse.

use crate::Put;
use crate::routes::Route;

/// Appends the upstream's name for `name` (prefix already removed): the
/// route's `repository` first, then `library/` for a single-component name
/// on a Docker Hub-style route (both, for a copy of Docker Hub's official
/// images under a path: ECR Public's `docker/library/NAME`).
pub fn upstream_name(route: &Route, name: &str, out: &mut String) {
    if let Some(repo) = route.repository {
        out.push_str(repo);
        out.put(b'/');
    }
    if route.library && !crate::has(name, b'/') {
        out.push_str("library/");
    }
    out.push_str(name);
}

/// `pattern` against `name`: equal, or `prefix/*` matching one or more
/// components under `prefix`, or `*` matching everything.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix("*") {
        Some(head) => head.is_empty() || (name.len() > head.len() && name.starts_with(head)),
        None => pattern == name,
    }
}

/// Whether the route serves `name` (prefix already removed).
pub fn allowed(route: &Route, name: &str) -> bool {
    if route.allow.is_empty() {
        return true;
    }
    let library = route.library && !crate::has(name, b'/');
    route.allow.iter().any(|p| {
        let p = p.get();
        if library {
            p.strip_prefix("library/").is_some_and(|p| matches(p, name)) || p == "*"
        } else {
            matches(p, name)
        }
    })
}

/// Appends the client's name for the upstream's `name`: the route's
/// `repository` removed, its prefix put back when the client used it.
/// Returns false (writing nothing) for a name outside the route's
/// `repository`, which has no client name.
pub fn client_name(route: &Route, name: &str, prefixed: bool, out: &mut String) -> bool {
    let mut name = name;
    if let Some(repo) = route.repository {
        match crate::strip_prefix_then(name, repo, b'/') {
            Some(n) => name = n,
            None => return false,
        }
    }
    if let Some(p) = route.prefix.filter(|_| prefixed) {
        out.push_str(p);
        out.put(b'/');
    }
    out.push_str(name);
    true
}
