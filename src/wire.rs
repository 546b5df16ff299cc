//! The bytes the JavaScript entry (`src/edge.js`) and the planner exchange
//! through the wasm's I/O buffer: a fixed header of numbers, then fields,
//! each a little-endian `u16` length and that many bytes (UTF-8). Numbers
//! are read and written as bytes and no field is escaped, so neither side
//! builds, splits or parses text to talk to the other: the entry writes a
//! request's URL straight into the buffer and turns into strings only the
//! fields it hands to the runtime.
//!
//! ```text
//! in:  0 FLAGS   1 the request has Authorization, 2 its Accept mentions
//!                text/html, 4 BODY is the request body (a B action asked
//!                for it), 8 SECRET was read (an E action asked for it),
//!                16 the secret is set
//!      1 METHOD  0 GET, 1 HEAD, 2 POST, 3 any other
//!      2 PHASE   the last fetch's (its F action's), 0 before any
//!      4 STATUS  u16, what the upstream answered; 0 when the fetch failed
//!      6 seven u16 lengths, then the fields:
//!        URL        the request's (`request.url`)
//!        TRAIL      the last F action's, handed back
//!        CHALLENGE  the upstream's WWW-Authenticate, with a 401 only
//!        THIRD      its Location with a 3xx, its Docker-Content-Digest
//!                   with a 2xx, the runtime's error when the fetch failed
//!        SECRET     the value of the secret the last E named: given to the
//!                   calls before the next fetch only
//!        UPSTREAM   the upstream's body: a 429's or 502-504's (4 KiB at
//!                   most); for a RESUME_TOKEN fetch, the token of its
//!                   JSON answer (16 KiB at most), as the entry read it
//!        BODY       the request body
//! out: 0 OP, 1 ARG, 2 NUM (u16), then fields:
//!      A  ARG = message (`crate::messages`)     CHALLENGE ALLOW PROBE LOG SUBJECT   answer locally
//!      P                                        LOG                                 the browser page
//!      B  NUM = most bytes to read                                                  read the body, call again
//!      E                                        NAME                                read the secret, call again
//!      F  ARG = phase, NUM = bits (below)       URL AUTHORIZATION LOG FORM SOURCE TRAIL
//!                                               fetch; call again on the statuses the bits name, else pass
//!                                               the response on (with X-Mirror-Source: SOURCE if set)
//!      R  ARG = message or 255                  LOCATION LOG SUBJECT SOURCE CHALLENGES
//!                                               relay the response, replacing what is set; the message
//!                                               (and SUBJECT) goes before the upstream's own errors
//!      H  as R, for the response the last HOLD fetch kept
//! ```
//!
//! After an `E` or `B` the entry calls again with the same PHASE, STATUS and
//! upstream fields: a fallback's token request may need a secret. It holds
//! no state: the phase and trail of an `F` come back with the answer, and
//! everything else is read again from the request.

use crate::action::{Action, Phase, Request, Secret, Upstream};
use crate::plan::step_logged;

/// `F` bits.
pub const CLIENT_HEADERS: u16 = 1;
pub const FOLLOW: u16 = 2;
/// The resume bits of [`crate::action::Fetch::resume`] sit at bit 2 and up:
/// 401 = 4, 3xx = 8, every status = 16, 429 with its body = 64, 502-504
/// with its body = 128, 400 and up = 256, with the token of its JSON answer = 512.
pub const RESUME_SHIFT: u16 = 2;
/// POST the FORM field as an OAuth2 form (otherwise GET, or HEAD).
pub const FORM: u16 = 32;
/// The client's headers without its Authorization.
pub const ANONYMOUS: u16 = 1024;
/// Keep the last response for an `H` action.
pub const HOLD: u16 = 2048;
/// HEAD.
pub const HEAD: u16 = 4096;
/// Present the secret just read: `Authorization: Basic`, or with FORM the
/// form's `username` and `password`.
pub const CREDENTIALS: u16 = 8192;

/// Bytes before the input's fields.
pub const IN_HEADER: usize = 20;

/// The field `s` of a buffer, as text. The entry writes each field as
/// ASCII or with `TextEncoder.encodeInto`, which writes whole characters of
/// UTF-8 only; in the worker that is trusted rather than checked (core's
/// validator is the largest single function the wasm would carry). Native
/// builds (tests, fuzzing) check.
fn text(b: &[u8]) -> &str {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as above: the entry writes only UTF-8, field by field.
    return unsafe { core::str::from_utf8_unchecked(b) };
    #[cfg(not(target_arch = "wasm32"))]
    return core::str::from_utf8(b).unwrap_or("");
}

fn u16_at(b: &[u8], i: usize) -> usize {
    usize::from(b.get(i).copied().unwrap_or(0)) | usize::from(b.get(i + 1).copied().unwrap_or(0)) << 8
}

/// One call of the entry: the input bytes in, the action bytes out. `probe`
/// goes into local answers' PROBE field (test builds report linear memory
/// there; release builds pass "").
pub fn step(input: &[u8], probe: &str) -> Vec<u8> {
    let byte = |i: usize| input.get(i).copied().unwrap_or(0);
    let mut fields = [""; 7];
    let mut at = IN_HEADER;
    for (k, f) in fields.iter_mut().enumerate() {
        let end = at + u16_at(input, 6 + 2 * k);
        *f = text(input.get(at..end).unwrap_or(&[]));
        at = end;
    }
    let [url, trail, challenge, third, secret, upstream, body] = fields;
    let flags = byte(0);
    let req = Request {
        method: match byte(1) {
            0 => "GET",
            1 => "HEAD",
            2 => "POST",
            _ => "",
        },
        url,
        authorization: flags & 1 != 0,
        accept_html: flags & 2 != 0,
        secret: match flags & 24 {
            24 => Secret::Value(secret),
            8 => Secret::Unset,
            _ => Secret::NotRead,
        },
        body: (flags & 4 != 0).then_some(body),
    };
    let up = Phase::from_byte(byte(2)).map(|phase| {
        let status = u16_at(input, 4) as u16;
        let (error, location, digest) = match status {
            0 => (third, "", ""),
            200..=299 => ("", "", third),
            _ => ("", third, ""),
        };
        Upstream { phase: Some(phase), status, error, www_authenticate: challenge, location, digest, body: upstream, trail }
    });
    let (action, log) = step_logged(&req, up.as_ref());
    encode(&action, log.as_deref().unwrap_or(""), probe)
}

/// The answer when the input did not fit the I/O buffer.
pub fn too_large() -> Vec<u8> {
    encode(&crate::action::reply(crate::messages::Msg::TooLarge, ""), "", "")
}

/// Appends fields: each its length, then its bytes. (A field longer than
/// the I/O buffer makes the whole action too large, which the caller
/// answers with [`too_large`], so the `u16` never wraps in an action that
/// is used.)
fn fields(out: &mut Vec<u8>, list: &[&str]) {
    for s in list {
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
}

/// An input as the entry writes it: for tests and tools, which build inputs
/// the way `src/edge.js` does (the worker only reads them).
#[derive(Debug, Default, Clone, Copy)]
pub struct Input<'a> {
    pub flags: u8,
    pub method: u8,
    pub phase: u8,
    pub status: u16,
    pub url: &'a str,
    pub trail: &'a str,
    pub challenge: &'a str,
    pub third: &'a str,
    pub secret: &'a str,
    pub upstream: &'a str,
    pub body: &'a str,
}

impl Input<'_> {
    pub fn bytes(&self) -> Vec<u8> {
        let fields = [self.url, self.trail, self.challenge, self.third, self.secret, self.upstream, self.body];
        let mut out = Vec::with_capacity(IN_HEADER + fields.iter().map(|f| f.len()).sum::<usize>());
        out.extend_from_slice(&[self.flags, self.method, self.phase, 0]);
        out.extend_from_slice(&self.status.to_le_bytes());
        for f in fields {
            out.extend_from_slice(&(f.len().min(0xffff) as u16).to_le_bytes());
        }
        for f in fields {
            out.extend_from_slice(f.as_bytes());
        }
        out
    }
}

/// An action read back: OP, ARG, NUM and its fields (for tests and tools;
/// the entry reads its own). `None` when the bytes are not one action.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub op: u8,
    pub arg: u8,
    pub num: u16,
    pub fields: Vec<&'a str>,
}

pub fn decode(b: &[u8]) -> Option<Decoded<'_>> {
    let mut fields = Vec::new();
    let mut i = 4;
    while i < b.len() {
        let end = i + 2 + u16_at(b, i);
        fields.push(core::str::from_utf8(b.get(i + 2..end)?).ok()?);
        i = end;
    }
    Some(Decoded { op: *b.first()?, arg: *b.get(1)?, num: u16_at(b, 2) as u16, fields })
}

/// The bytes of an action, with the request's log line when it ends one.
pub fn encode(action: &Action, log: &str, probe: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut head = |op: u8, arg: u8, num: u16, list: &[&str]| {
        out.extend_from_slice(&[op, arg]);
        out.extend_from_slice(&num.to_le_bytes());
        fields(&mut out, list);
    };
    match action {
        Action::Reply(r) => head(b'A', r.msg as u8, 0, &[r.challenge.as_deref().unwrap_or(""), r.allow.unwrap_or(""), probe, log, &r.subject]),
        Action::Page => head(b'P', 0, 0, &[log]),
        Action::ReadBody => head(b'B', 0, crate::action::MAX_FORM as u16, &[]),
        Action::ReadSecret(name) => head(b'E', 0, 0, &[name]),
        Action::Fetch(f) => {
            let bits = u16::from(f.client_headers) * CLIENT_HEADERS
                + u16::from(f.follow) * FOLLOW
                + u16::from(f.form.is_some()) * FORM
                + (u16::from(f.resume) << RESUME_SHIFT)
                + u16::from(f.anonymous) * ANONYMOUS
                + u16::from(f.hold) * HOLD
                + u16::from(f.head) * HEAD
                + u16::from(f.credentials) * CREDENTIALS;
            let fields =
                [&*f.url, f.authorization.as_deref().unwrap_or(""), log, f.form.as_deref().unwrap_or(""), f.source.as_deref().unwrap_or(""), &f.trail];
            head(b'F', f.phase.as_byte(), bits, &fields)
        }
        Action::Relay { challenges, location, error, source, held } => head(
            if *held { b'H' } else { b'R' },
            error.as_ref().map_or(255, |e| e.0 as u8),
            0,
            &[
                location.as_deref().unwrap_or(""),
                log,
                error.as_ref().map_or("", |e| &e.1),
                source.as_deref().unwrap_or(""),
                challenges.as_deref().unwrap_or(""),
            ],
        ),
    }
    out
}
