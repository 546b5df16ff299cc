//! The text the JavaScript entry (`src/edge.js`) and the planner exchange:
//! one field per line, read and written here so both ends stay trivial.
//!
//! The entry writes the request's facts, and after a fetch the upstream's,
//! into the wasm's I/O buffer and calls `step` once; the answer is one
//! action. No field but the last can hold a line break: URLs and header
//! values cannot, and the runtime's error text, a secret and an upstream
//! body come percent-encoded (`encodeURIComponent`).
//!
//! ```text
//! in:  FLAGS \n METHOD \n URL \n STATE \n WWW-AUTHENTICATE \n LOCATION-ERROR-or-DIGEST
//!        \n SECRET \n UPSTREAM-BODY [\n BODY]
//!      FLAGS   1 = the request has Authorization, 2 = Accept mentions text/html
//!      STATE   empty, or after a fetch: PHASE STATUS, PHASE being the F
//!              action's (a letter, and for a fallback its trail and `;`).
//!              The upstream's WWW-AUTHENTICATE comes with a 401 only, its
//!              Location with a 3xx, the runtime's error when the fetch
//!              failed (status 0), Docker-Content-Digest with a 2xx: nothing
//!              else reads them
//!      SECRET  empty (not read), "-" (not set) or "=" and the value: the
//!              secret the last E named, passed until the next fetch only
//!      BODY    the request body, present once a B action asked for it
//! out: A MSG \n CHALLENGE \n ALLOW \n PROBE \n LOG \n SUBJECT
//!                                                             answer locally with an OCI error:
//!                                                             `crate::messages` has MSG's status,
//!                                                             code and text
//!      P LOG                                                  answer with the browser page
//!      B MAX                                                  read at most MAX+1 bytes of body, call again
//!      E NAME                                                 read the secret NAME, call again
//!      F BITS \n PHASE \n METHOD \n URL \n AUTHORIZATION \n LOG \n FORM \n SOURCE
//!                                                             fetch, then call again or pass the
//!                                                             response on (BITS: below)
//!      R LOCATION \n LOG \n ERROR \n SOURCE \n CHALLENGE*     relay the response, replacing those;
//!                                                             ERROR (MSG SUBJECT) puts the mirror's
//!                                                             error before the upstream's errors
//!      H (as R)                                               the same for the response held (HOLD)
//! ```
//!
//! After an `E` or `B` the entry calls again with the same STATE and
//! upstream fields: a fallback's token request may need a secret.
//!
//! It holds no state: the phase of an `F` comes back with the answer, and
//! everything else is read again from the request.

use crate::Put;
use crate::plan::{step_logged, Action, Phase, Request, Secret, Upstream, MAX_FORM};

/// `F` bits.
pub const CLIENT_HEADERS: usize = 1;
pub const FOLLOW: usize = 2;
/// The resume bits of [`crate::plan::Fetch::resume`] sit at bit 2 and up:
/// 401 = 4, 3xx = 8, every status = 16, 429 with its body = 64, 502-504
/// with its body = 128, 400 and up = 256, with 16 KiB of body = 512.
pub const RESUME_SHIFT: usize = 2;
pub const FORM: usize = 32;
/// The client's headers without its Authorization.
pub const ANONYMOUS: usize = 1024;
/// Keep the last response for an `H` action.
pub const HOLD: usize = 2048;

/// Splits off fields at line breaks.
struct Fields<'a>(Option<&'a str>);

impl<'a> Fields<'a> {
    fn next(&mut self) -> &'a str {
        let s = self.0.unwrap_or("");
        match crate::split_at_byte(s, b'\n') {
            Some((field, rest)) => {
                self.0 = Some(rest);
                field
            }
            None => {
                self.0 = None;
                s
            }
        }
    }
}

/// One call of the entry: the input text in, the action text out. `probe`
/// goes into local answers' PROBE field (test builds report linear memory
/// there; release builds pass "").
pub fn step(input: &str, probe: &str) -> String {
    let mut f = Fields(Some(input));
    let flags = f.next().bytes().next().unwrap_or(b'0');
    let method = f.next();
    let url = f.next();
    let state = f.next();
    let www_authenticate = f.next();
    let location = f.next();
    let secret = f.next();
    let upstream_body = f.next();
    let req = Request {
        method,
        url,
        authorization: flags & 1 != 0,
        accept_html: flags & 2 != 0,
        secret: match secret.as_bytes().first() {
            None => Secret::NotRead,
            Some(b'=') => Secret::Value(secret.get(1..).unwrap_or("")),
            Some(_) => Secret::Unset,
        },
        body: f.0,
    };
    let up = state.bytes().next().and_then(Phase::from_byte).map(|phase| {
        // A fallback's phase carries its trail up to the last `;`.
        let (trail, status) = match crate::rfind_byte(state, b';') {
            Some(i) => (state.get(1..i).unwrap_or(""), state.get(i + 1..)),
            None => ("", state.get(1..)),
        };
        let status = crate::number(status.unwrap_or("")) as u16;
        let (error, location, digest) = match status {
            0 => (location, "", ""),
            200..=299 => ("", "", location),
            _ => ("", location, ""),
        };
        Upstream { phase: Some(phase), status, error, www_authenticate, location, digest, body: upstream_body, trail }
    });
    let (action, log) = step_logged(&req, up.as_ref());
    encode(&action, log.as_deref().unwrap_or(""), probe)
}

/// The answer when the input did not fit the I/O buffer (or was not UTF-8,
/// which the entry's encoder never produces).
pub fn too_large() -> String {
    encode(&crate::plan::reply(crate::messages::Msg::TooLarge, ""), "", "")
}

/// The text of an action, with the request's log line when it ends one.
pub fn encode(action: &Action, log: &str, probe: &str) -> String {
    let mut out = String::with_capacity(256);
    match action {
        Action::Page => {
            out.put(b'P');
            out.push_str(log);
        }
        Action::Reply(r) => {
            out.put(b'A');
            crate::push_number(&mut out, r.msg as usize);
            for field in [r.challenge.as_deref().unwrap_or(""), r.allow.unwrap_or(""), probe, log, &r.subject] {
                out.put(b'\n');
                out.push_str(field);
            }
        }
        Action::ReadBody => {
            out.put(b'B');
            crate::push_number(&mut out, MAX_FORM);
        }
        Action::ReadSecret(name) => {
            out.put(b'E');
            out.push_str(name);
        }
        Action::Fetch(f) => {
            let bits = usize::from(f.client_headers) * CLIENT_HEADERS
                + usize::from(f.follow) * FOLLOW
                + usize::from(f.form.is_some()) * FORM
                + (usize::from(f.resume) << RESUME_SHIFT)
                + usize::from(f.anonymous) * ANONYMOUS
                + usize::from(f.hold) * HOLD;
            out.put(b'F');
            crate::push_number(&mut out, bits);
            out.put(b'\n');
            out.put(f.phase.as_byte());
            if !f.trail.is_empty() {
                out.push_str(&f.trail);
                out.put(b';');
            }
            for field in [f.method, &f.url, f.authorization.as_deref().unwrap_or(""), log, f.form.as_deref().unwrap_or(""), f.source.as_deref().unwrap_or("")] {
                out.put(b'\n');
                out.push_str(field);
            }
        }
        Action::Relay { challenges, location, error, source, held } => {
            out.put(if *held { b'H' } else { b'R' });
            out.push_str(location.as_deref().unwrap_or(""));
            out.put(b'\n');
            out.push_str(log);
            out.put(b'\n');
            if let Some((msg, subject)) = error {
                crate::push_number(&mut out, *msg as usize);
                out.put(b' ');
                out.push_str(subject);
            }
            out.put(b'\n');
            out.push_str(source.as_deref().unwrap_or(""));
            if let Some(c) = challenges {
                out.put(b'\n');
                out.push_str(c);
            }
        }
    }
    out
}
