//! Upstream credentials from a Worker secret (`user:token`).
//!
//! A route with `credentials = "NAME"` asks the entry for the secret NAME
//! when an anonymous client wants a token, and presents it to the
//! upstream's realm as the distribution token protocol allows: HTTP Basic
//! on a GET, or `username`/`password` in an OAuth2 form POST. The value goes
//! into that one subrequest and nowhere else: no answer, error or log line
//! the mirror writes contains it.
//!
//! It does not fall back to anonymous: a missing or malformed secret is the
//! operator's to fix, and the planner answers 503 naming it.

use crate::Put;
use crate::scope::{percent_decode, percent_encode};

/// The secret as the entry passes it (`encodeURIComponent`, which leaves no
/// `+`), split at the first colon into a user and a token, both non-empty
/// and free of control characters. Returns the value and the colon's index.
pub fn parse(encoded: &str) -> Option<(String, usize)> {
    let value = percent_decode(encoded, false).ok()?;
    let colon = value.as_bytes().iter().position(|&b| b == b':')?;
    let ok = colon > 0 && colon + 1 < value.len() && !value.bytes().any(|b| b < 0x20 || b == 0x7f);
    ok.then_some((value, colon))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `Basic base64(user:token)`.
pub fn basic(value: &str) -> String {
    let mut out = String::with_capacity(8 + value.len() * 4 / 3);
    out.push_str("Basic ");
    for chunk in value.as_bytes().chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = b(0) << 16 | b(1) << 8 | b(2);
        for i in 0..4 {
            let c = if i <= chunk.len() { B64.get((n >> (18 - 6 * i) & 63) as usize).copied().unwrap_or(b'=') } else { b'=' };
            out.put(c);
        }
    }
    out
}

/// `&username=...&password=...` for an OAuth2 form.
pub fn form_fields(value: &str, colon: usize, out: &mut String) {
    out.push_str("&username=");
    percent_encode(value.get(..colon).unwrap_or(""), out);
    out.push_str("&password=");
    percent_encode(value.get(colon + 1..).unwrap_or(""), out);
}
