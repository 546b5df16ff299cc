//! Upstream credentials from a Worker secret (`user:token`).
//!
//! A route with `credentials = "NAME"` asks the entry for the secret NAME
//! when an anonymous client wants a token (or, for a fallback route, when
//! the mirror needs a token of its own), checks its form here, and has the
//! entry present it to the realm as the distribution token protocol allows:
//! HTTP Basic on a GET, or `username`/`password` in an OAuth2 form POST
//! (the `CREDENTIALS` bit of the fetch: the entry, which read the secret,
//! writes it into that one subrequest). The value goes nowhere else: no
//! answer, error, action or log line contains it.
//!
//! It does not fall back to anonymous: a missing or malformed secret is the
//! operator's to fix, and the planner answers 503 naming it.

/// Whether the secret is `user:token`: a colon with a non-empty user before
/// it and a non-empty token after it, and only printable ASCII (what HTTP
/// Basic and a form can carry as it is).
pub fn valid(value: &str) -> bool {
    let b = value.as_bytes();
    let colon = b.iter().position(|&x| x == b':');
    matches!(colon, Some(c) if c > 0 && c + 1 < b.len()) && b.iter().all(|&x| (b' '..0x7f).contains(&x))
}
