//! `WWW-Authenticate` challenges: parsed by parameter name, rewritten by
//! replacing only the Bearer realm.
//!
//! An upstream's 401 carries the realm of its token server. The mirror must
//! point clients at its own token endpoint instead, and keep everything else
//! the upstream said (`service`, `scope`, `error`, any parameter it adds), so
//! that clients ask for the right token and people see the upstream's reason.
//! Challenges are read per RFC 7235, not by position: parameters in any order,
//! quoted strings with `\` escapes, commas inside quotes, several challenges in
//! one header.
//!
//! Writing puts one challenge on each header line with every value quoted and
//! parameter names as the upstream sent them: the form all common clients
//! accept (containers/image stops at an empty value; realms must be quoted).
//! The `scope` of a Bearer challenge is mapped back to the names the client
//! used (a path prefix, `?ns=`), so it asks the mirror for what it pulls.
//!
//! It does not validate what a realm points at; the realm written is always
//! the mirror's, built from a checked Host.

use crate::Put;
use std::borrow::Cow;

/// One auth-param; the value is unescaped.
pub type Param<'a> = (&'a str, Cow<'a, str>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    pub scheme: &'a str,
    /// `token68` form (`Negotiate abc==`), kept as written.
    pub token68: Option<&'a str>,
    pub params: Vec<Param<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    Empty,
    /// Not an auth-scheme token where a challenge should start.
    BadScheme,
    /// An auth-param without `=` and a value, or with a bad token.
    BadParam,
    /// A quoted string without its closing quote.
    Unterminated,
    /// A Bearer challenge without a realm: clients could not get a token.
    NoRealm,
}

impl ChallengeError {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeError::Empty => "the upstream answered 401 without a WWW-Authenticate challenge",
            ChallengeError::BadScheme => "the upstream's WWW-Authenticate challenge does not start with an auth scheme",
            ChallengeError::BadParam => "the upstream's WWW-Authenticate challenge has a malformed parameter",
            ChallengeError::Unterminated => "the upstream's WWW-Authenticate challenge has an unterminated quoted string",
            ChallengeError::NoRealm => "the upstream's Bearer challenge names no realm",
        }
    }
}

/// `tchar` (RFC 7230 §3.2.6).
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// `token68` characters, less the trailing `=` padding.
fn t68char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ows_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.i;
        while matches!(self.peek(), Some(b) if f(b)) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or("")
    }
    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE`, cursor on
    /// the opening quote. Borrows when there is no escape.
    fn quoted(&mut self) -> Result<Cow<'a, str>, ChallengeError> {
        self.i += 1;
        let start = self.i;
        let mut run = start;
        let mut owned: Option<String> = None;
        loop {
            match self.peek() {
                None => return Err(ChallengeError::Unterminated),
                Some(b'"') => {
                    let raw = self.s.get(start..self.i).unwrap_or("");
                    let tail = self.s.get(run..self.i).unwrap_or("");
                    self.i += 1;
                    return Ok(match owned {
                        Some(mut o) => {
                            o.push_str(tail);
                            Cow::Owned(o)
                        }
                        None => Cow::Borrowed(raw),
                    });
                }
                Some(b) if b < 0x20 && b != b'\t' || b == 0x7f => return Err(ChallengeError::BadParam),
                Some(b'\\') => {
                    // The escaped byte is kept; the run before it is copied
                    // whole (a run always ends at an ASCII byte, so it is a
                    // whole string).
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(self.s.get(run..self.i).unwrap_or(""));
                    run = self.i + 1;
                    match self.s.as_bytes().get(run) {
                        None => return Err(ChallengeError::Unterminated),
                        Some(&b) if b < 0x20 && b != b'\t' || b == 0x7f => return Err(ChallengeError::BadParam),
                        Some(_) => self.i += 2,
                    }
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

/// Parses a `WWW-Authenticate` value (several header lines joined by `, `
/// are one list).
///
/// ```text
/// WWW-Authenticate = 1#challenge
/// challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
/// auth-param = token BWS "=" BWS ( token / quoted-string )
/// token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
/// ```
///
/// After a comma, a token followed by `=` continues the current challenge's
/// parameters; a token followed by anything else starts the next challenge.
/// Leniency: empty list elements (`,,`) are skipped, as RFC 7230 §7 asks.
pub fn parse(header: &str) -> Result<Vec<Challenge<'_>>, ChallengeError> {
    let mut c = Cursor { s: header, i: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_ows_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme = c.take_while(tchar);
        if scheme.is_empty() {
            return Err(ChallengeError::BadScheme);
        }
        let mut ch = Challenge { scheme, token68: None, params: Vec::new() };
        c.skip_ows();
        // token68: a run of token68 characters, `=` padding, then the end or a comma.
        let save = c.i;
        let t = c.take_while(t68char);
        let pad = c.take_while(|b| b == b'=');
        c.skip_ows();
        if !t.is_empty() && matches!(c.peek(), None | Some(b',')) {
            let end = save + t.len() + pad.len();
            ch.token68 = header.get(save..end);
            out.push(ch);
            continue;
        }
        c.i = save;
        // auth-params until the next challenge or the end.
        loop {
            c.skip_ows_commas();
            let start = c.i;
            let name = c.take_while(tchar);
            if name.is_empty() {
                if c.peek().is_none() {
                    break;
                }
                return Err(ChallengeError::BadParam);
            }
            c.skip_ows();
            if c.peek() != Some(b'=') {
                // The next challenge's scheme.
                c.i = start;
                break;
            }
            c.i += 1;
            c.skip_ows();
            let value = match c.peek() {
                Some(b'"') => c.quoted()?,
                _ => {
                    let v = c.take_while(tchar);
                    if v.is_empty() {
                        return Err(ChallengeError::BadParam);
                    }
                    Cow::Borrowed(v)
                }
            };
            ch.params.push((name, value));
            c.skip_ows();
            match c.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(ChallengeError::BadParam),
            }
        }
        out.push(ch);
    }
    if out.is_empty() {
        return Err(ChallengeError::Empty);
    }
    Ok(out)
}

impl Challenge<'_> {
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    /// The value of a parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

/// Appends `"value"` with `"` and `\` escaped.
fn write_quoted(v: &str, out: &mut String) {
    out.put(b'"');
    let mut run = 0;
    for (i, &b) in v.as_bytes().iter().enumerate() {
        if b == b'"' || b == b'\\' {
            out.push_str(v.get(run..i).unwrap_or(""));
            out.put(b'\\');
            run = i;
        }
    }
    out.push_str(v.get(run..).unwrap_or(""));
    out.put(b'"');
}

/// Writes one challenge; with `realm`, a Bearer challenge's realm is
/// replaced, and with `scope`, its scope value is passed through it.
pub fn write(ch: &Challenge<'_>, realm: Option<&str>, scope: Option<&dyn Fn(&str, &mut String)>, out: &mut String) {
    out.push_str(ch.scheme);
    if let Some(t) = ch.token68 {
        out.put(b' ');
        out.push_str(t);
        return;
    }
    let bearer = ch.is_bearer();
    for (i, (name, value)) in ch.params.iter().enumerate() {
        out.put(if i == 0 { b' ' } else { b',' });
        out.push_str(name);
        out.put(b'=');
        let mut mapped = String::new();
        let v = match (bearer, realm, scope) {
            (true, Some(r), _) if name.eq_ignore_ascii_case("realm") => r,
            (true, _, Some(f)) if name.eq_ignore_ascii_case("scope") => {
                f(value, &mut mapped);
                &mapped
            }
            _ => value.as_ref(),
        };
        write_quoted(v, out);
    }
}

/// Rewrites an upstream's challenges for the client: each Bearer realm becomes
/// `realm` and each Bearer scope goes through `scope` (the client's names for
/// the repositories); everything else is kept. One challenge per line (one
/// header line each), separated by `\n`.
pub fn rewrite(header: &str, realm: &str, scope: &dyn Fn(&str, &mut String)) -> Result<String, ChallengeError> {
    let list = parse(header)?;
    let mut out = String::with_capacity(header.len() + realm.len() + 8);
    for (i, ch) in list.iter().enumerate() {
        if ch.is_bearer() && ch.param("realm").is_none() {
            return Err(ChallengeError::NoRealm);
        }
        if i > 0 {
            out.put(b'\n');
        }
        write(ch, Some(realm), Some(scope), &mut out);
    }
    Ok(out)
}

/// The realm of the first Bearer challenge, as the upstream wrote it.
pub fn bearer_realm(header: &str) -> Option<String> {
    let list = parse(header).ok()?;
    list.iter().find(|c| c.is_bearer()).and_then(|c| c.param("realm")).map(str::to_string)
}

/// Writes the mirror's own challenge: `Bearer realm="...",service="..."`.
pub fn mirror_challenge(realm: &str, service: Option<&str>, out: &mut String) {
    out.push_str("Bearer realm=");
    write_quoted(realm, out);
    if let Some(s) = service {
        out.push_str(",service=");
        write_quoted(s, out);
    }
}
