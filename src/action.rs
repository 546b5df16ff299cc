//! What the planner is told and what it answers: the request's facts
//! ([`Request`]), the upstream's answer to the last fetch ([`Upstream`] and
//! its [`Phase`]), and the [`Action`] the edge carries out next, with the
//! answers that both the request machine (`plan.rs`) and the fallbacks
//! (`fallback.rs`) give.
//!
//! The vocabulary only: no decision is made here beyond turning an outcome
//! into its message. Kept apart so that `plan.rs` and `fallback.rs` both
//! stand on it and neither looks up to the other.

use crate::messages::Msg;
use crate::routes::Route;

/// Longest request URL accepted (scheme, host, path and query).
pub const MAX_URL: usize = 8192;
/// Largest OAuth2 token form accepted.
pub const MAX_FORM: usize = 16 * 1024;

/// A Worker secret, as far as the planner has asked for it: the one the
/// last [`Action::ReadSecret`] named. The entry passes it to the call right
/// after reading it and to the calls before its next fetch, never later, so
/// a secret read for one route (a fallback's) is never taken for another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret<'a> {
    NotRead,
    /// The binding does not exist (or is not a string).
    Unset,
    /// Its value.
    Value(&'a str),
}

/// What the planner reads about the client's request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The absolute URL as the runtime gives it (`request.url`).
    pub url: &'a str,
    pub authorization: bool,
    /// `Accept` mentions `text/html`: a browser.
    pub accept_html: bool,
    /// The route's credentials, once [`Action::ReadSecret`] asked for them.
    pub secret: Secret<'a>,
    /// The body, once [`Action::ReadBody`] asked for it.
    pub body: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A request with nothing read yet.
    pub fn new(method: &'a str, url: &'a str) -> Request<'a> {
        Request { method, url, authorization: false, accept_html: false, secret: Secret::NotRead, body: None }
    }
}

/// Which exchange an upstream answer belongs to: the continuation the edge
/// hands back with the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// A registry API request to the route's upstream.
    Api = b'a',
    /// The upstream's `/v2/`, asked for its challenge to learn the realm.
    Discover = b'd',
    /// A token request to the realm.
    Token = b't',
    /// A manifest or blob request to a fallback route's upstream
    /// (`crate::fallback`; the fetch's `trail` says which and what happened
    /// before).
    Fallback = b'f',
    /// The mirror's own token request to a fallback's realm.
    FallbackToken = b'k',
    /// The fallback request again, with that token.
    FallbackRetry = b'r',
}

impl Phase {
    /// Its byte on the wire (`crate::wire`): its discriminant.
    pub fn as_byte(self) -> u8 {
        self as u8
    }

    pub fn from_byte(b: u8) -> Option<Phase> {
        match b {
            b'a' => Some(Phase::Api),
            b'd' => Some(Phase::Discover),
            b't' => Some(Phase::Token),
            b'f' => Some(Phase::Fallback),
            b'k' => Some(Phase::FallbackToken),
            b'r' => Some(Phase::FallbackRetry),
            _ => None,
        }
    }
}

/// What the upstream answered, for `plan::step` to continue with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Upstream<'a> {
    pub phase: Option<Phase>,
    /// The response status; 0 when the fetch failed, with the runtime's
    /// error, percent-encoded, as `error` (`TimeoutError%3A...` when the
    /// edge's header timeout fired, `TypeError%3A%20Too%20many%20redirects...`).
    pub status: u16,
    pub error: &'a str,
    pub www_authenticate: &'a str,
    pub location: &'a str,
    /// `Docker-Content-Digest` of a 2xx (read when a fallback's answer to a
    /// manifest by digest comes back).
    pub digest: &'a str,
    /// The response body, read for a 429 (and a 502-504 on a route with
    /// fallbacks) only; for a [`RESUME_TOKEN`] fetch, the token the entry
    /// read from the answer instead.
    pub body: &'a str,
    /// A fallback's continuation, as the fetch's `trail` wrote it.
    pub trail: &'a str,
}

/// The next thing the edge does.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer without any subrequest, with an OCI error.
    Reply(Reply),
    /// Answer with the browser page.
    Page,
    /// Read the request body (at most [`MAX_FORM`] bytes) and call again with it.
    ReadBody,
    /// Read the Worker secret of this name and call again with it.
    ReadSecret(&'static str),
    Fetch(Fetch),
    /// Send the upstream response on. With `challenges` (one per line), they
    /// replace its `WWW-Authenticate`; with `location`, its `Location`; with
    /// `error`, its body becomes that OCI error (the message and what it
    /// names) followed by the upstream's own errors; with `source`, it gets
    /// `X-Mirror-Source`. `held`: the response the fetch marked `hold` kept
    /// (the route's own answer, after its fallbacks failed), not the last one.
    Relay { challenges: Option<String>, location: Option<String>, error: Option<(Msg, String)>, source: Option<String>, held: bool },
}

/// A local answer: an OCI error, status and text from `crate::messages`.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub msg: Msg,
    /// What the message names (a host, a repository), written after it.
    pub subject: String,
    /// `WWW-Authenticate` value.
    pub challenge: Option<String>,
    /// `Allow` value for 405.
    pub allow: Option<&'static str>,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.msg.status()
    }
}

/// Statuses after which the edge calls `plan::step` again (bits of [`Fetch::resume`]).
pub const RESUME_401: u8 = 1;
pub const RESUME_3XX: u8 = 2;
pub const RESUME_ALL: u8 = 4;
/// A 429 comes back with its body.
pub const RESUME_429: u8 = 16;
/// A 502, 503 or 504 comes back with its body (a route with fallbacks).
pub const RESUME_5XX: u8 = 32;
/// Any status from 400 up comes back (a fallback's answer).
pub const RESUME_ERR: u8 = 64;
/// Whatever comes back brings the token of its JSON answer, as the entry
/// reads it (a token answer: the string member `token`, else `access_token`,
/// of at most 16 KiB of JSON).
pub const RESUME_TOKEN: u8 = 128;

/// One upstream request.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetch {
    /// HEAD rather than GET (a fetch with a `form` is a POST).
    pub head: bool,
    pub url: String,
    /// Send the client's allow-listed headers (Authorization among them).
    pub client_headers: bool,
    /// An `Authorization` of the mirror's own (a fallback's token).
    pub authorization: Option<String>,
    /// Present the secret just read (a route's credentials): HTTP Basic, or
    /// in the form.
    pub credentials: bool,
    /// An OAuth2 form body (`application/x-www-form-urlencoded`).
    pub form: Option<String>,
    /// Let the runtime follow redirects; otherwise they come back here.
    pub follow: bool,
    /// When to call `plan::step` with the response; otherwise it goes to the
    /// client as it is. A failed fetch always comes back.
    pub resume: u8,
    pub phase: Phase,
    /// A fallback's continuation, handed back with the answer.
    pub trail: String,
    /// Leave the client's Authorization out of its headers (a fallback is
    /// another party).
    pub anonymous: bool,
    /// Keep the last response (the route's own answer) for a `held` relay.
    pub hold: bool,
    /// `X-Mirror-Source` for the client when the response passes on.
    pub source: Option<String>,
}

/// What a request was about, for its log line.
#[derive(Default)]
pub(crate) struct Seen {
    /// The route's name (for the log line).
    pub(crate) route: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) repository: String,
    /// The fallback whose answer the client gets, if one does.
    pub(crate) source: &'static str,
}

pub(crate) fn reply(msg: Msg, subject: &str) -> Action {
    Action::Reply(Reply { msg, subject: subject.to_string(), challenge: None, allow: None })
}

/// What an exchange came to, as one number: the status, or for a failed
/// fetch [`UNREACHABLE`], [`TIMED_OUT`] or [`REDIRECT_LOOP`] by the
/// runtime's error.
pub(crate) fn outcome(up: &Upstream<'_>) -> u16 {
    match up.status {
        0 if up.error.starts_with("TimeoutError") => TIMED_OUT,
        0 if crate::find(up.error, "Too many redirects").is_some() => REDIRECT_LOOP,
        s => s,
    }
}

pub(crate) const UNREACHABLE: u16 = 0;
pub(crate) const TIMED_OUT: u16 = 1;
pub(crate) const REDIRECT_LOOP: u16 = 2;

/// The message for a failed exchange's [`outcome`].
pub(crate) fn failure(outcome: u16) -> Msg {
    match outcome {
        TIMED_OUT => Msg::TimedOut,
        REDIRECT_LOOP => Msg::RedirectLoop,
        _ => Msg::Unreachable,
    }
}

/// The message in front of an upstream's 429 (which limit it is, when the
/// upstream's body says so) or, on a route with fallbacks, its 502-504.
pub(crate) fn limit(status: u16, body: &str) -> Msg {
    match status {
        429 if body.as_bytes().windows(15).any(|w| w.eq_ignore_ascii_case(b"pull rate limit")) => Msg::PullLimit,
        429 => Msg::AddressLimit,
        _ => Msg::UpstreamDown,
    }
}

/// An upstream's 429 (or 502-504) for the client: its status, headers
/// (`Retry-After`) and errors, after the mirror's `msg` naming the route's
/// registry and what else was tried (`tried`, empty when nothing was).
/// `held`: the response to relay is the one a fallback fetch kept.
pub(crate) fn upstream_error(route: &Route, msg: Msg, tried: &str, held: bool) -> Action {
    let mut subject = String::with_capacity(route.registry.len() + tried.len());
    subject.push_str(route.registry);
    subject.push_str(tried);
    Action::Relay { challenges: None, location: None, error: Some((msg, subject)), source: None, held }
}

/// A manifest or blob request on a route with fallbacks: what a fallback
/// needs to ask for the same content.
pub(crate) struct Ask<'a> {
    pub route: &'a Route,
    /// The client's name, the route's prefix removed.
    pub name: &'a str,
    /// `/manifests/REFERENCE` or `/blobs/DIGEST`.
    pub rest: &'a str,
    pub head: bool,
}

impl Fetch {
    /// A GET with the client's headers that the runtime follows, coming
    /// back on a 429 (the fields the callers change are set after).
    pub(crate) fn new(phase: Phase) -> Fetch {
        Fetch {
            head: false,
            url: String::new(),
            client_headers: true,
            authorization: None,
            credentials: false,
            form: None,
            follow: true,
            resume: RESUME_429,
            phase,
            trail: String::new(),
            anonymous: false,
            hold: false,
            source: None,
        }
    }
}

/// Whether the route has credentials to present (its secret, read and
/// `user:token`): `Err` with the action to read the secret first, or the
/// 503 for a secret that is not set or not `user:token`.
pub(crate) fn credentials(route: &Route, req: &Request<'_>) -> Result<bool, Action> {
    let Some(name) = route.credentials else { return Ok(false) };
    match req.secret {
        Secret::NotRead => Err(Action::ReadSecret(name)),
        Secret::Value(v) if crate::secret::valid(v) => Ok(true),
        _ => Err(reply(Msg::SecretUnset, name)),
    }
}
