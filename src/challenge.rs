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
//! parameter names and escapes as the upstream wrote them: the form all
//! common clients accept (containers/image stops at an empty value; realms
//! must be quoted). The `scope` of a Bearer challenge is mapped back to the
//! names the client used (a path prefix, `?ns=`), so it asks the mirror for
//! what it pulls.
//!
//! One walker reads the grammar and reports each part as it goes; the
//! rewriter writes as it reads (no list of challenges is built at run time),
//! and [`parse`] collects the parts for tests and callers that want them.
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
    /// The client's answer (a 502: `crate::messages`).
    pub fn msg(self) -> crate::messages::Msg {
        use crate::messages::Msg;
        match self {
            ChallengeError::Empty => Msg::ChallengeEmpty,
            ChallengeError::BadScheme => Msg::ChallengeScheme,
            ChallengeError::BadParam => Msg::ChallengeParam,
            ChallengeError::Unterminated => Msg::ChallengeQuote,
            ChallengeError::NoRealm => Msg::ChallengeRealm,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.msg().text()
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
    /// the opening quote. Returns the text between the quotes as written
    /// (escapes kept). `qdtext` and `quoted-pair` exclude control bytes
    /// other than HTAB (RFC 7230 §3.2.6): a line break inside a value would
    /// split the rewritten header.
    fn quoted(&mut self) -> Result<&'a str, ChallengeError> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                None => return Err(ChallengeError::Unterminated),
                Some(b'"') => {
                    let raw = self.s.get(start..self.i).unwrap_or("");
                    self.i += 1;
                    return Ok(raw);
                }
                Some(b) if ctl(b) => return Err(ChallengeError::BadParam),
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        None => return Err(ChallengeError::Unterminated),
                        Some(b) if ctl(b) => return Err(ChallengeError::BadParam),
                        Some(_) => self.i += 1,
                    }
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

fn ctl(b: u8) -> bool {
    b < 0x20 && b != b'\t' || b == 0x7f
}

/// A part of a challenge list, as the walker meets it.
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// A challenge starts with its auth-scheme.
    Scheme(&'a str),
    Token68(&'a str),
    /// An auth-param: `raw` is the value as written, inside the quotes (with
    /// its escapes) when quoted, else the token.
    Param { name: &'a str, raw: &'a str, quoted: bool },
}

/// Walks a `WWW-Authenticate` value (several header lines joined by `, `
/// are one list), reporting each part to `f`.
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
pub fn walk<'a>(header: &'a str, f: &mut dyn FnMut(Part<'a>)) -> Result<(), ChallengeError> {
    let mut c = Cursor { s: header, i: 0 };
    let mut any = false;
    loop {
        c.skip_ows_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme = c.take_while(tchar);
        if scheme.is_empty() {
            return Err(ChallengeError::BadScheme);
        }
        any = true;
        f(Part::Scheme(scheme));
        c.skip_ows();
        // token68: a run of token68 characters, `=` padding, then the end or a comma.
        let save = c.i;
        let t = c.take_while(t68char);
        let pad = c.take_while(|b| b == b'=');
        c.skip_ows();
        if !t.is_empty() && matches!(c.peek(), None | Some(b',')) {
            f(Part::Token68(header.get(save..save + t.len() + pad.len()).unwrap_or("")));
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
            let quoted = c.peek() == Some(b'"');
            let raw = if quoted { c.quoted()? } else { c.take_while(tchar) };
            if raw.is_empty() && !quoted {
                return Err(ChallengeError::BadParam);
            }
            f(Part::Param { name, raw, quoted });
            c.skip_ows();
            match c.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(ChallengeError::BadParam),
            }
        }
    }
    if !any {
        return Err(ChallengeError::Empty);
    }
    Ok(())
}

/// A quoted value's text with its escapes removed (a token as it is).
pub fn unescape(raw: &str) -> Cow<'_, str> {
    if !crate::has(raw, b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut run = 0;
    let b = raw.as_bytes();
    let mut i = 0;
    while let Some(&x) = b.get(i) {
        if x == b'\\' {
            // Everything before the backslash, then the escaped byte starts
            // the next run (a run always starts and ends at ASCII bytes).
            out.push_str(raw.get(run..i).unwrap_or(""));
            run = i + 1;
            i += 1;
        }
        i += 1;
    }
    out.push_str(raw.get(run..).unwrap_or(""));
    Cow::Owned(out)
}

/// Parses a `WWW-Authenticate` value into its challenges, values unescaped.
pub fn parse(header: &str) -> Result<Vec<Challenge<'_>>, ChallengeError> {
    let mut out: Vec<Challenge<'_>> = Vec::new();
    walk(header, &mut |part| match part {
        Part::Scheme(scheme) => out.push(Challenge { scheme, token68: None, params: Vec::new() }),
        Part::Token68(t) => {
            if let Some(c) = out.last_mut() {
                c.token68 = Some(t);
            }
        }
        Part::Param { name, raw, quoted } => {
            if let Some(c) = out.last_mut() {
                c.params.push((name, if quoted { unescape(raw) } else { Cow::Borrowed(raw) }));
            }
        }
    })?;
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

/// Rewrites an upstream's challenges for the client: each Bearer realm becomes
/// `realm` and each Bearer scope goes through `scope` (the client's names for
/// the repositories); everything else is kept as written. One challenge per
/// line (one header line each), separated by `\n`.
pub fn rewrite(header: &str, realm: &str, scope: &dyn Fn(&str, &mut String)) -> Result<String, ChallengeError> {
    let mut out = String::with_capacity(header.len() + realm.len() + 8);
    // (a Bearer challenge is open, it has named a realm, params so far)
    let (mut bearer, mut has_realm, mut params) = (false, true, 0);
    let mut missing = false;
    walk(header, &mut |part| match part {
        Part::Scheme(s) => {
            missing |= bearer && !has_realm;
            if !out.is_empty() {
                out.put(b'\n');
            }
            out.push_str(s);
            bearer = s.eq_ignore_ascii_case("bearer");
            has_realm = false;
            params = 0;
        }
        Part::Token68(t) => {
            out.put(b' ');
            out.push_str(t);
        }
        Part::Param { name, raw, quoted } => {
            out.put(if params == 0 { b' ' } else { b',' });
            params += 1;
            out.push_str(name);
            out.put(b'=');
            if bearer && name.eq_ignore_ascii_case("realm") {
                has_realm = true;
                write_quoted(realm, &mut out);
            } else if bearer && name.eq_ignore_ascii_case("scope") {
                let mut mapped = String::new();
                scope(&if quoted { unescape(raw) } else { Cow::Borrowed(raw) }, &mut mapped);
                write_quoted(&mapped, &mut out);
            } else {
                // A quoted value as written (its escapes are already right);
                // a token has nothing to escape.
                out.put(b'"');
                out.push_str(raw);
                out.put(b'"');
            }
        }
    })?;
    if missing || (bearer && !has_realm) {
        return Err(ChallengeError::NoRealm);
    }
    Ok(out)
}

/// The realm of the first Bearer challenge, as the upstream wrote it.
pub fn bearer_realm(header: &str) -> Option<String> {
    bearer_param(header, "realm")
}

/// The parameter `param` (a lower-case name) of the first Bearer challenge
/// that has it, unescaped.
pub fn bearer_param(header: &str, param: &str) -> Option<String> {
    let (mut bearer, mut found) = (false, None);
    walk(header, &mut |part| match part {
        Part::Scheme(s) => bearer = s.eq_ignore_ascii_case("bearer"),
        Part::Param { name, raw, quoted } if bearer && found.is_none() && name.eq_ignore_ascii_case(param) => {
            found = Some(if quoted { unescape(raw).into_owned() } else { raw.to_string() });
        }
        _ => {}
    })
    .ok()?;
    found
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
