//! Token scopes and the token request's query (or OAuth2 form body).
//!
//! Clients ask the mirror's token endpoint for scopes in the names they pull
//! by: `repository:busybox:pull`. On a Docker Hub route the upstream only
//! knows `library/busybox`, so every `scope` parameter is rewritten in place
//! (containerd sends several, and the OAuth2 form joins several with spaces).
//! Every other parameter (`service`, `account`, `client_id`, `grant_type`,
//! credentials) is copied byte for byte.
//!
//! It does not judge scopes: a scope naming another registry, or an action the
//! upstream will refuse, goes to the upstream's token server, which answers
//! for itself. Only the upstream's own realm is ever asked.

use crate::path::repository_name;

/// Most `scope` parameters accepted in one token request. containerd sends a
/// handful; a hundred is an abuse, not a pull.
pub const MAX_SCOPES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// A `%` not followed by two hex digits, or an escape that decodes to
    /// something other than UTF-8.
    BadEscape,
    TooManyScopes,
}

impl QueryError {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryError::BadEscape => "the token request's scope parameter is not valid percent-encoded UTF-8",
            QueryError::TooManyScopes => "the token request has more than 64 scope parameters",
        }
    }
}

/// Rewrites one decoded scope value (space-separated resource scopes):
///
/// ```text
/// scope         := resourcescope [ ' ' resourcescope ]*
/// resourcescope := resourcetype ":" resourcename ":" action [ ',' action ]*
/// resourcetype  := resourcetypevalue [ '(' resourcetypevalue ')' ]
/// ```
///
/// With `library`, a `repository` scope whose name is one valid path
/// component gets `library/` in front. The name is what lies between the
/// first and the last colon, so a `host:port/name` name stays whole. Anything
/// that does not parse is copied unchanged for the upstream to judge.
pub fn rewrite_scope(scope: &str, library: bool, out: &mut String) {
    for (i, item) in scope.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match (item.find(':'), crate::rfind_byte(item, b':')) {
            (Some(a), Some(b)) if library && a < b => {
                let kind = item.get(..a).unwrap_or("");
                let name = item.get(a + 1..b).unwrap_or("");
                let is_repo = kind == "repository" || kind.starts_with("repository(");
                if is_repo && !name.contains('/') && repository_name(name).is_ok() {
                    out.push_str(kind);
                    out.push_str(":library/");
                    out.push_str(item.get(a + 1..).unwrap_or(""));
                } else {
                    out.push_str(item);
                }
            }
            _ => out.push_str(item),
        }
    }
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
pub fn percent_decode(s: &str) -> Result<String, QueryError> {
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
    }
    String::from_utf8(out).map_err(|_| QueryError::BadEscape)
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
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(crate::hex_digit(b >> 4));
            out.push(crate::hex_digit(b));
        }
    }
}

/// Rewrites a token query string or form body: each `scope=` value is
/// decoded, rewritten by [`rewrite_scope`] and encoded again; all other pairs
/// are copied as they are. Without `library` the input comes back unchanged.
pub fn rewrite_token_params(params: &str, library: bool, out: &mut String) -> Result<(), QueryError> {
    let mut scopes = 0;
    let mut first = true;
    for pair in params.split('&') {
        if pair.is_empty() {
            continue;
        }
        if !first {
            out.push('&');
        }
        first = false;
        match pair.strip_prefix("scope=") {
            Some(value) => {
                scopes += 1;
                if scopes > MAX_SCOPES {
                    return Err(QueryError::TooManyScopes);
                }
                if !library {
                    out.push_str(pair);
                    continue;
                }
                let decoded = percent_decode(value)?;
                let mut rewritten = String::with_capacity(decoded.len() + 8);
                rewrite_scope(&decoded, true, &mut rewritten);
                out.push_str("scope=");
                percent_encode(&rewritten, out);
            }
            None => out.push_str(pair),
        }
    }
    Ok(())
}
