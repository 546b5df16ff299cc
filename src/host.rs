//! The request's authority (`host[:port]`), checked before it is used.
//!
//! The host picks the route, and host and port go into the realm the mirror
//! hands to clients (`http(s)://HOST[:PORT]/token`). workerd refuses the worst
//! Host headers itself (quotes, commas, `%`, `@`, non-ASCII), but upper case, a
//! trailing dot, `_`, IP literals and odd ports reach the worker; this module
//! decides what is a host and what is not, so nothing unchecked is ever written
//! into a challenge.
//!
//! It does not resolve names, apply IDNA or decide whether an IP literal is
//! routable: hosts either match the compiled table or fall to the default
//! route.

use crate::Put;

/// A checked authority: `host` as sent (case kept), `port` without the colon
/// (empty when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority<'a> {
    pub host: &'a str,
    pub port: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    Empty,
    TooLong,
    BadChar,
    EmptyLabel,
    BadPort,
    BadLiteral,
}

impl HostError {
    /// The client's answer (`crate::messages`).
    pub fn msg(self) -> crate::messages::Msg {
        use crate::messages::Msg;
        match self {
            HostError::Empty => Msg::HostEmpty,
            HostError::TooLong => Msg::HostTooLong,
            HostError::BadChar => Msg::HostChar,
            HostError::EmptyLabel => Msg::HostLabel,
            HostError::BadPort => Msg::HostPort,
            HostError::BadLiteral => Msg::HostLiteral,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.msg().text()
    }
}

/// reg-name characters a mirror host may use (RFC 3986 `unreserved` less `~`).
fn name_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_')
}

/// Parses `host [":" port]` (RFC 3986 §3.2.2–3.2.3), where host is a name of
/// dot-separated labels (one trailing dot allowed), or an IPv6 literal in
/// brackets. Leniency: `_` is accepted in labels, as DNS tooling does.
pub fn parse_authority(a: &str) -> Result<Authority<'_>, HostError> {
    if a.is_empty() {
        return Err(HostError::Empty);
    }
    let (host, port) = if a.starts_with("[") {
        let end = a.as_bytes().iter().position(|&b| b == b']').ok_or(HostError::BadLiteral)?;
        let (h, rest) = a.split_at(end + 1);
        let inner = h.get(1..end).unwrap_or("");
        if inner.len() < 2 || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(HostError::BadLiteral);
        }
        (h, rest)
    } else {
        let end = a.as_bytes().iter().position(|&b| b == b':').unwrap_or(a.len());
        let (h, rest) = a.split_at(end);
        if h.is_empty() {
            return Err(HostError::Empty);
        }
        if h.len() > 254 || (h.len() == 254 && !h.ends_with(".")) {
            return Err(HostError::TooLong);
        }
        if !h.bytes().all(name_byte) {
            return Err(HostError::BadChar);
        }
        let trimmed = h.strip_suffix(".").unwrap_or(h);
        if trimmed.is_empty() || crate::split(trimmed, b'.').any(|l| l.is_empty() || l.len() > 63) {
            return Err(HostError::EmptyLabel);
        }
        (h, rest)
    };
    let port = match port.strip_prefix(":") {
        None if port.is_empty() => "",
        None => return Err(HostError::BadLiteral),
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HostError::BadPort);
            }
            let n = p.bytes().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
            if n == 0 || n > 65535 {
                return Err(HostError::BadPort);
            }
            p
        }
    };
    Ok(Authority { host, port })
}

impl Authority<'_> {
    /// The host as routes compare it: trailing dot removed (case is compared
    /// insensitively by the route lookup).
    pub fn route_host(&self) -> &str {
        self.host.strip_suffix(".").unwrap_or(self.host)
    }

    /// Appends `host[:port]` in lower case, trailing dot removed.
    pub fn write(&self, out: &mut String) {
        for &b in self.route_host().as_bytes() {
            out.put(b.to_ascii_lowercase());
        }
        if !self.port.is_empty() {
            out.put(b':');
            out.push_str(self.port);
        }
    }
}
