//! Upstream redirects: where a `Location` points, and who may get credentials.
//!
//! Registries redirect blobs to CDNs and storage buckets (Docker Hub, ghcr.io,
//! gcr.io), and registry.k8s.io redirects even manifests to regional hosts;
//! Artifact Registry may send a relative `Location`. The worker follows these
//! itself so clients stay on the mirror. This module resolves a `Location`
//! against the URL that answered (RFC 3986 §5.2, without dot-segment removal,
//! which the runtime's URL parser does) and refuses anything but http(s).
//!
//! Credentials go only to the origin the client's request was meant for:
//! [`same_origin`] is the check. A CDN never sees the client's Authorization.
//! A realm an upstream's challenge names is called only as
//! [`discovered_realm`] allows.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationError {
    Missing,
    /// A scheme other than http or https (`ftp:`, `file:`, `javascript:`...).
    Scheme,
    /// Spaces, control characters or a backslash: not a URL reference.
    Malformed,
}

impl LocationError {
    /// The client's answer (a 502: `crate::messages`).
    pub fn msg(self) -> crate::messages::Msg {
        use crate::messages::Msg;
        match self {
            LocationError::Missing => Msg::LocationMissing,
            LocationError::Scheme => Msg::LocationScheme,
            LocationError::Malformed => Msg::LocationMalformed,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.msg().text()
    }
}

/// Statuses the worker treats as redirects.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Length of `s` up to the first byte in `set`.
fn upto(s: &str, set: &[u8]) -> usize {
    s.as_bytes().iter().position(|b| set.contains(b)).unwrap_or(s.len())
}

/// `scheme://authority` of an absolute URL (empty if it has none).
pub fn origin(url: &str) -> &str {
    let Some(i) = crate::find(url, "://") else { return "" };
    let end = upto(url.get(i + 3..).unwrap_or(""), b"/?#");
    url.get(..i + 3 + end).unwrap_or("")
}

/// Whether two absolute URLs share scheme, host and port.
pub fn same_origin(a: &str, b: &str) -> bool {
    let (a, b) = (origin(a), origin(b));
    !a.is_empty() && a.eq_ignore_ascii_case(b)
}

/// Resolves `location` against the absolute `base` it came from.
pub fn resolve(base: &str, location: &str) -> Result<String, LocationError> {
    let loc = location.trim_ascii();
    if loc.is_empty() {
        return Err(LocationError::Missing);
    }
    if loc.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'\\') {
        return Err(LocationError::Malformed);
    }
    let loc = crate::split(loc, b'#').next().unwrap_or("");
    // A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) before the first ':'
    // that comes before any '/', '?' or '#'.
    let i = upto(loc, b":/?");
    if loc.as_bytes().get(i) == Some(&b':') {
        let scheme = loc.get(..i).unwrap_or("");
        if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            if !loc.get(i..).unwrap_or("").starts_with("://") || origin(loc).len() <= i + 3 {
                return Err(LocationError::Malformed);
            }
            return Ok(loc.to_string());
        }
        return Err(LocationError::Scheme);
    }
    let base_origin = origin(base);
    let scheme_end = crate::find(base, "://").unwrap_or(0);
    let mut out = String::with_capacity(base.len() + loc.len());
    if loc.starts_with("//") {
        out.push_str(base.get(..scheme_end + 1).unwrap_or(""));
        out.push_str(loc);
        if origin(&out).len() <= scheme_end + 3 {
            return Err(LocationError::Malformed);
        }
    } else if loc.starts_with("/") {
        out.push_str(base_origin);
        out.push_str(loc);
    } else {
        let path_and_query = base.get(base_origin.len()..).unwrap_or("");
        let path = path_and_query.get(..upto(path_and_query, b"?#")).unwrap_or("");
        out.push_str(base_origin);
        if loc.starts_with("?") {
            out.push_str(if path.is_empty() { "/" } else { path });
        } else {
            let dir = crate::rfind_byte(path, b'/').map_or("/", |i| path.get(..=i).unwrap_or("/"));
            out.push_str(dir);
        }
        out.push_str(loc);
    }
    Ok(out)
}

/// `host[:port]` of an absolute URL ("" if it has none).
fn authority(url: &str) -> &str {
    let o = origin(url);
    crate::find(o, "://").and_then(|i| o.get(i + 3..)).unwrap_or("")
}

/// The realm an upstream's challenge names, as the worker itself may call
/// it: resolved against the upstream's `/v2/` (where a relative one is
/// relative to); https (plain http only for an http upstream, a route
/// marked `insecure`); no user info; and without its own query (the mirror
/// writes the query: the scopes it allows and the service). With the
/// route's own credentials (`secret`), only on the upstream's domain: its
/// host, or the domain its host is under when that has a dot of its own
/// (`registry-1.docker.io` -> `docker.io`, which `auth.docker.io` is
/// under; `ghcr.io` -> itself), so a discovered realm elsewhere never gets
/// them (the build refuses credentials without a realm where that domain
/// would be a public suffix, an address or a single label). Else the
/// client's message.
pub fn discovered_realm(upstream: &str, realm: &str, secret: bool) -> Result<String, crate::messages::Msg> {
    let mut v2 = String::with_capacity(upstream.len() + 4);
    v2.push_str(upstream);
    v2.push_str("/v2/");
    let r = resolve(&v2, realm).map_err(LocationError::msg)?;
    let (host, up) = (authority(&r), authority(upstream));
    let domain = match crate::split_at_byte(up, b'.') {
        Some((_, parent)) if crate::has(parent, b'.') => parent,
        _ => up,
    };
    let on_domain = host.strip_suffix(domain).is_some_and(|sub| sub.is_empty() || sub.ends_with("."));
    if !(r.starts_with("https:") || upstream.starts_with("http:")) || (secret && !on_domain) || crate::has(host, b'@') {
        return Err(crate::messages::Msg::RealmRefused);
    }
    Ok(r.get(..upto(&r, b"?#")).unwrap_or("").to_string())
}
