//! Token scopes and the token request's query (or OAuth2 form body).
//!
//! Clients ask the mirror's token endpoint for scopes in the names they pull
//! by: `repository:busybox:pull`, `repository:ghcr.io/owner/image:pull`. The
//! upstream's token server knows `library/busybox` and `owner/image`, so every
//! `scope` parameter is decoded, each resource scope in it (containerd sends
//! several parameters, the OAuth2 form joins several with spaces) is mapped
//! to the upstream's name (`names`), and encoded again.
//!
//! Scopes are pull-only: every action but `pull` is removed and a scope left
//! with no action is dropped, so no token obtained through the mirror can
//! write, whatever credentials are used. A route's allow list drops the
//! repositories it does not serve; a request left with none of those it
//! asked for is refused. `service` becomes the route's service when the table
//! names it (a shared host hands out one challenge for several routes).
//! Every other parameter (`account`, `client_id`, `grant_type`, credentials)
//! is copied byte for byte.
//!
//! Only the route's own realm is ever asked; a scope naming another
//! registry goes there too, for it to refuse.

use crate::Put;
use crate::names::{allowed, upstream_name};
use crate::routes::{by_name, Route};

/// Most `scope` parameters accepted in one token request. containerd sends a
/// handful; a hundred is an abuse, not a pull.
pub const MAX_SCOPES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// A `%` not followed by two hex digits, or an escape that decodes to
    /// something other than UTF-8.
    BadEscape,
    TooManyScopes,
    /// Scopes for repositories of different routes in one request.
    Mixed,
    /// Every repository asked for is outside the route's allow list.
    Denied,
}

impl QueryError {
    /// The client's answer (`crate::messages`).
    pub fn msg(self) -> crate::messages::Msg {
        use crate::messages::Msg;
        match self {
            QueryError::BadEscape => Msg::ScopeEscape,
            QueryError::TooManyScopes => Msg::ScopeTooMany,
            QueryError::Mixed => Msg::ScopeMixed,
            QueryError::Denied => Msg::Denied,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.msg().text()
    }
}

/// The parts of a resource scope, `type:name:actions`, where the name is
/// what lies between the first and the last colon (so `host:port/name`
/// stays whole).
fn split_scope(item: &str) -> Option<(&str, &str, &str)> {
    let b = item.as_bytes();
    let first = b.iter().position(|&c| c == b':')?;
    let last = b.iter().rposition(|&c| c == b':')?;
    if first == last {
        return None;
    }
    Some((item.get(..first)?, item.get(first + 1..last)?, item.get(last + 1..)?))
}

fn is_repository(kind: &str) -> bool {
    kind == "repository" || kind.starts_with("repository(")
}

/// What rewriting the scopes found.
#[derive(Debug, Default)]
pub struct Found {
    /// Repository scopes written.
    pub kept: usize,
    /// The first repository the allow list refused (client's name).
    pub denied: Option<String>,
}

/// Rewrites one decoded scope value (space-separated resource scopes):
///
/// ```text
/// scope         := resourcescope [ ' ' resourcescope ]*
/// resourcescope := resourcetype ":" resourcename ":" action [ ',' action ]*
/// resourcetype  := resourcetypevalue [ '(' resourcetypevalue ')' ]
/// ```
///
/// Each kept scope is written as `type:name:pull`; one without `pull`, or
/// that does not parse, is dropped. With `host`, a repository that another
/// route serves on that host is an error (the request was routed by its
/// scopes).
pub fn rewrite_scope(scope: &str, route: &Route, host: Option<&str>, found: &mut Found, out: &mut String) -> Result<(), QueryError> {
    let start = out.len();
    for item in crate::split(scope, b' ') {
        let Some((kind, name, actions)) = split_scope(item) else { continue };
        if !crate::split(actions, b',').any(|a| a == "pull") {
            continue;
        }
        let (asked, mut name) = (name, name);
        if is_repository(kind) {
            if let Some(h) = host {
                if by_name(h, name).map(|(i, _)| i) != Some(route.id) {
                    return Err(QueryError::Mixed);
                }
            }
            if let Some(rest) = route.prefix.and_then(|p| crate::strip_prefix_then(name, p, b'/')) {
                name = rest;
            }
            if !allowed(route, name) {
                found.denied.get_or_insert_with(|| asked.to_string());
                continue;
            }
            found.kept += 1;
        }
        if out.len() > start {
            out.put(b' ');
        }
        out.push_str(kind);
        out.put(b':');
        if is_repository(kind) {
            upstream_name(route, name, out);
        } else {
            out.push_str(name);
        }
        out.push_str(":pull");
    }
    Ok(())
}

/// The first repository name in a token query or form, decoded: what routes
/// a `/token` request on a shared host.
pub fn first_repository(params: &str) -> Option<String> {
    for pair in crate::split(params, b'&') {
        let Some(value) = pair.strip_prefix("scope=") else { continue };
        let decoded = percent_decode(value, false).ok()?;
        for item in crate::split(&decoded, b' ') {
            if let Some((kind, name, _)) = split_scope(item) {
                if is_repository(kind) {
                    return Some(name.to_string());
                }
            }
        }
    }
    None
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space).
///
/// Only ASCII comes out (scopes, names and the secrets the mirror reads are
/// ASCII): a non-ASCII byte is an error, or with `lossy` a `?`. Then the
/// bytes are a string without a UTF-8 check (core's validator is the
/// largest single function the wasm would carry for it).
pub fn percent_decode(s: &str, lossy: bool) -> Result<String, QueryError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hi = b.get(i + 1).copied().and_then(hex).ok_or(QueryError::BadEscape)?;
                let lo = b.get(i + 2).copied().and_then(hex).ok_or(QueryError::BadEscape)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
        if let Some(last) = out.last_mut().filter(|b| !b.is_ascii()) {
            if !lossy {
                return Err(QueryError::BadEscape);
            }
            *last = b'?';
        }
    }
    // SAFETY: every byte is ASCII (checked above), so the bytes are UTF-8.
    Ok(unsafe { String::from_utf8_unchecked(out) })
}

/// Bytes a scope value keeps unescaped in a query: RFC 3986 unreserved plus
/// the characters scopes are made of (`:` `/` `,` `(` `)` `@` `*`).
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b',' | b'(' | b')' | b'@' | b'*')
}

/// Percent-encodes for a query or form value; a space becomes `%20`, which
/// both query and form parsers read as a space.
pub fn percent_encode(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if keep(b) {
            out.put(b);
        } else {
            out.put(b'%');
            out.put(crate::hex_digit(b >> 4));
            out.put(crate::hex_digit(b));
        }
    }
}

/// Rewrites a token query string or form body for `route`: each `scope=`
/// value by [`rewrite_scope`] (a value left empty is dropped), `service=`
/// to the route's service (dropped when the route names a realm but no
/// service); all other pairs are copied as they are. What the
/// scopes held comes back in [`Found`]: a request whose repositories were
/// all refused is for the caller to refuse ([`QueryError::Denied`]).
pub fn rewrite_token_params(params: &str, route: &Route, host: Option<&str>, out: &mut String) -> Result<Found, QueryError> {
    let mut found = Found::default();
    let mut scopes = 0;
    for pair in crate::split(params, b'&') {
        if pair.is_empty() {
            continue;
        }
        let sep = if out.is_empty() { "" } else { "&" };
        if let Some(value) = pair.strip_prefix("scope=") {
            scopes += 1;
            if scopes > MAX_SCOPES {
                return Err(QueryError::TooManyScopes);
            }
            let decoded = percent_decode(value, false)?;
            let mut rewritten = String::with_capacity(decoded.len() + 8);
            rewrite_scope(&decoded, route, host, &mut found, &mut rewritten)?;
            if !rewritten.is_empty() {
                out.push_str(sep);
                out.push_str("scope=");
                percent_encode(&rewritten, out);
            }
        } else if let (Some(service), true) = (route.service, pair.starts_with("service=")) {
            out.push_str(sep);
            out.push_str("service=");
            percent_encode(service, out);
        } else if route.realm.is_some() && pair.starts_with("service=") {
            // A realm the table names without a service (nvcr.io's) gets
            // none: the client's came from another route's challenge.
        } else {
            out.push_str(sep);
            out.push_str(pair);
        }
    }
    Ok(found)
}
