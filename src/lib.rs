//! A registry mirror at the edge: a Cloudflare Worker that lets people
//! `docker pull` through their own host names.
//!
//! For each request the worker picks a route from a table compiled at build
//! time (`routes.toml`, handed over as `table.bin`), rewrites the path
//! (Docker Hub's `library/`), token scopes and the auth realm, forwards to
//! the route's upstream and streams the answer back. It stores nothing and keeps no state between
//! requests.
//!
//! The logic lives in pure modules tested natively: [`plan`] is the request
//! state machine (facts in, the next action out, never any I/O), [`wire`]
//! reads and writes the bytes the JavaScript entry (`src/edge.js`)
//! exchanges with it, [`routes`] reads the compiled table, [`challenge`],
//! [`scope`], [`path`], [`host`] and [`location`] parse and rewrite, [`oci`]
//! writes error bodies. `edge` (wasm only) is the synchronous exports the
//! entry calls.
//!
//! What is deliberately absent: the `worker` crate, async code in wasm,
//! serde, the `url` crate and `format!` (size and CPU: size-report.md has the
//! figures), runtime configuration of routes (no open proxy), caching and
//! push.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod action;
pub mod challenge;
pub mod fallback;
pub mod host;
pub mod location;
pub mod messages;
pub mod names;
pub mod oci;
pub mod path;
pub mod plan;
pub mod routes;
pub mod scope;
pub mod secret;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod edge;

/// Position of `needle` in `hay`. A plain byte scan: core's `str::find(&str)`
/// brings the Two-Way searcher, several KB of wasm for strings this short.
pub(crate) fn find(hay: &str, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    if n.is_empty() {
        return Some(0);
    }
    hay.as_bytes().windows(n.len()).position(|w| w == n)
}

/// `s` split around the first `b`, which is not included (byte scan).
pub(crate) fn split_at_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.as_bytes().iter().position(|&x| x == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Whether `s` holds the byte `b` (a plain scan; `<[u8]>::contains` brings
/// a word-at-a-time memchr).
#[allow(clippy::manual_contains)]
pub(crate) fn has(s: &str, b: u8) -> bool {
    s.as_bytes().iter().any(|&x| x == b)
}

/// `s` up to the first `b`, or all of it.
pub(crate) fn before(s: &str, b: u8) -> &str {
    split_at_byte(s, b).map_or(s, |(head, _)| head)
}

/// Position of the last `b` in `s` (a byte scan, no `memrchr`).
pub(crate) fn rfind_byte(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().rposition(|&x| x == b)
}

/// The upper-case hex digit for the low four bits of `n`.
pub(crate) fn hex_digit(n: u8) -> u8 {
    let n = n & 15;
    if n < 10 {
        b'0' + n
    } else {
        b'A' + n - 10
    }
}

/// Appending one ASCII byte. `String::push(char)` brings UTF-8 encoding
/// code along; every byte the planner writes this way is ASCII (the mask
/// keeps that true whatever a caller passes).
pub(crate) trait Put {
    fn put(&mut self, b: u8);
}

impl Put for String {
    fn put(&mut self, b: u8) {
        // SAFETY: a byte below 0x80 is a whole UTF-8 character.
        unsafe { self.as_mut_vec() }.push(b & 0x7f);
    }
}

/// The decimal number at the start of `s` (at most 9 digits; the planner
/// reads only numbers it or the entry wrote, so any other byte counts as a
/// digit rather than being checked).
pub(crate) fn number(s: &str) -> u32 {
    s.bytes().take(9).fold(0u32, |n, b| n * 10 + u32::from(b.wrapping_sub(b'0') % 10))
}

/// Appends `n` in decimal.
pub(crate) fn push_number(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or(b"0") {
        out.put(d);
    }
}

/// `s` split at every `sep` byte, like `str::split(char)` without the char
/// searcher (a few hundred bytes of wasm).
pub(crate) fn split(s: &str, sep: u8) -> Split<'_> {
    Split { rest: Some(s), sep }
}

pub(crate) struct Split<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match split_at_byte(s, self.sep) {
            Some((head, tail)) => {
                self.rest = Some(tail);
                Some(head)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// `s` without a leading `prefix` byte string and then a `sep` byte.
pub(crate) fn strip_prefix_then<'a>(s: &'a str, prefix: &str, sep: u8) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        Some(&b) if b == sep => rest.get(1..),
        _ => None,
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "wee_alloc")))]
mod alloc;

#[cfg(all(target_arch = "wasm32", not(feature = "wee_alloc")))]
#[global_allocator]
static ALLOC: alloc::Bump = alloc::Bump::new();

/// Size measurement only (`--features wee_alloc`, size-report.md).
#[cfg(all(target_arch = "wasm32", feature = "wee_alloc"))]
#[global_allocator]
static ALLOC: wee_alloc::WeeAlloc = wee_alloc::WeeAlloc::INIT;
