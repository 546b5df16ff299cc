//! The text the JavaScript entry (`src/edge.js`) and the planner exchange:
//! one field per line, read and written here so both ends stay trivial.
//!
//! The entry writes the request's facts, and after a fetch the upstream's,
//! into the wasm's I/O buffer and calls `step` once; the answer is one
//! action. No field but the last can hold a line break: URLs and header
//! values cannot, and the runtime's error text comes percent-encoded.
//!
//! ```text
//! in:  FLAGS \n METHOD \n URL \n [PHASE STATUS] \n WWW-AUTHENTICATE \n LOCATION-or-ERROR [\n BODY]
//!      FLAGS: 1 = the request has Authorization, 2 = Accept mentions text/html
//!      BODY: present once a B action asked for it
//! out: A STATUS \n CHALLENGE \n ALLOW \n PROBE \n JSON     answer locally
//!      P                                                  answer with the browser page
//!      B MAX                                              read at most MAX+1 bytes of body, call again
//!      F BITS \n PHASE \n METHOD \n URL \n FORM            fetch (BITS: see below), then
//!                                                         call again or pass the response on
//!      R LOCATION [\n CHALLENGE]*                         relay the response, replacing those
//! ```
//!
//! It holds no state: the phase of an `F` comes back with the answer, and
//! everything else is read again from the request.

use crate::plan::{step as plan_step, Action, Phase, Request, Upstream, MAX_FORM};

/// `F` bits.
pub const CLIENT_HEADERS: u8 = 1;
pub const FOLLOW: u8 = 2;
pub const FORM: u8 = 32;
/// The resume bits of [`crate::plan::Fetch::resume`] sit at bit 2 and up.
pub const RESUME_SHIFT: u8 = 2;

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

fn number(s: &str) -> u16 {
    s.bytes().take(5).fold(0u16, |n, b| n.wrapping_mul(10).wrapping_add(u16::from(b.wrapping_sub(b'0') % 10)))
}

/// Appends `n` in decimal.
pub fn push_number(out: &mut String, n: usize) {
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
    out.push_str(core::str::from_utf8(digits.get(i..).unwrap_or(b"0")).unwrap_or("0"));
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
    let req = Request {
        method,
        url,
        authorization: flags & 1 != 0,
        accept_html: flags & 2 != 0,
        body: f.0,
    };
    let up = state.bytes().next().and_then(Phase::from_byte).map(|phase| {
        let status = number(state.get(1..).unwrap_or(""));
        Upstream {
            phase,
            status,
            error: if status == 0 { location } else { "" },
            www_authenticate,
            location: if status == 0 { "" } else { location },
        }
    });
    encode(&plan_step(&req, up.as_ref()), probe)
}

/// The answer when the input did not fit the I/O buffer (or was not UTF-8,
/// which the entry's encoder never produces).
pub fn too_large() -> String {
    let body = crate::oci::error_body(
        crate::oci::Code::Unsupported,
        "the request, or the upstream's answer to it, is larger than the mirror handles",
        "",
    );
    encode(&Action::Reply(crate::plan::Reply { status: 400, body: Some(body), challenge: None, allow: None }), "")
}

/// The text of an action.
pub fn encode(action: &Action, probe: &str) -> String {
    let mut out = String::with_capacity(256);
    match action {
        Action::Reply(r) => match &r.body {
            None => out.push('P'),
            Some(body) => {
                out.push('A');
                push_number(&mut out, usize::from(r.status));
                out.push('\n');
                out.push_str(r.challenge.as_deref().unwrap_or(""));
                out.push('\n');
                out.push_str(r.allow.unwrap_or(""));
                out.push('\n');
                out.push_str(probe);
                out.push('\n');
                out.push_str(body);
            }
        },
        Action::ReadBody => {
            out.push('B');
            push_number(&mut out, MAX_FORM);
        }
        Action::Fetch(f) => {
            let bits = usize::from(f.client_headers) * usize::from(CLIENT_HEADERS)
                + usize::from(f.follow) * usize::from(FOLLOW)
                + usize::from(f.form.is_some()) * usize::from(FORM)
                + (usize::from(f.resume) << RESUME_SHIFT);
            out.push('F');
            push_number(&mut out, bits);
            out.push('\n');
            out.push(char::from(f.phase.as_byte()));
            out.push('\n');
            out.push_str(f.method);
            out.push('\n');
            out.push_str(&f.url);
            out.push('\n');
            out.push_str(f.form.as_deref().unwrap_or(""));
        }
        Action::Relay { challenges, location } => {
            out.push('R');
            out.push_str(location.as_deref().unwrap_or(""));
            if let Some(c) = challenges {
                out.push('\n');
                out.push_str(c);
            }
        }
    }
    out
}
