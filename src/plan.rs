//! The request state machine: facts in, the next action out.
//!
//! This is the whole decision the worker makes about a request, as a pure,
//! synchronous function in the sans-IO style (h11, quinn-proto): it is given
//! what is known about the client's request and, after a fetch, what the
//! upstream answered, and it returns one [`Action`] for the edge to carry out:
//! answer locally, read the request body, fetch a URL, or relay the upstream's
//! response (with its challenge or `Location` rewritten). It never does I/O and
//! keeps nothing between calls: the edge hands back the [`Phase`] it was given
//! with the upstream's answer, and [`step`] re-derives everything else from the
//! request, which costs less than carrying it.
//!
//! Every URL in a `Fetch` starts with a route's `upstream` or `realm` from the
//! compiled table, or is the realm the upstream's own challenge names. No
//! query parameter, header or path can name another host. Redirect targets are
//! the runtime's to follow on routes that follow (it drops Authorization on a
//! cross-origin hop); on routes that pass redirects the client gets them.
//!
//! It does not touch bodies other than the OAuth2 token form, headers beyond
//! the facts listed in [`Request`] and [`Upstream`], or the network.

use crate::challenge;
use crate::host::{parse_authority, Authority};
use crate::location::{is_redirect, resolve};
use crate::oci::{error_body, Code};
use crate::path::{classify, Endpoint, Kind, PathError};
use crate::routes::{lookup, Route};
use crate::scope::rewrite_token_params;

/// Longest request URL accepted (scheme, host, path and query).
pub const MAX_URL: usize = 8192;
/// Largest OAuth2 token form accepted.
pub const MAX_FORM: usize = 16 * 1024;

/// What the planner reads about the client's request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The absolute URL as the runtime gives it (`request.url`).
    pub url: &'a str,
    pub authorization: bool,
    /// `Accept` mentions `text/html`: a browser.
    pub accept_html: bool,
    /// The body, once [`Action::ReadBody`] asked for it.
    pub body: Option<&'a str>,
}

/// Which exchange an upstream answer belongs to: the continuation the edge
/// hands back with the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A registry API request to the route's upstream.
    Api,
    /// The upstream's `/v2/`, asked for its challenge to learn the realm.
    Discover,
    /// A token request to the realm.
    Token,
}

impl Phase {
    pub fn as_byte(self) -> u8 {
        match self {
            Phase::Api => b'a',
            Phase::Discover => b'd',
            Phase::Token => b't',
        }
    }

    pub fn from_byte(b: u8) -> Option<Phase> {
        match b {
            b'a' => Some(Phase::Api),
            b'd' => Some(Phase::Discover),
            b't' => Some(Phase::Token),
            _ => None,
        }
    }
}

/// What the upstream answered, for [`step`] to continue with.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    pub phase: Phase,
    /// The response status; 0 when the fetch failed, with the runtime's
    /// error, percent-encoded, as `error` (`AbortError%3A...` when the
    /// edge's timer fired, `TypeError%3A%20Too%20many%20redirects...`).
    pub status: u16,
    pub error: &'a str,
    pub www_authenticate: &'a str,
    pub location: &'a str,
}

/// The next thing the edge does.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer without any subrequest.
    Reply(Reply),
    /// Read the request body (at most [`MAX_FORM`] bytes) and call again with it.
    ReadBody,
    Fetch(Fetch),
    /// Send the upstream response on, body untouched. With `challenges`
    /// (one per line), they replace its `WWW-Authenticate`; with `location`,
    /// it replaces its `Location`.
    Relay { challenges: Option<String>, location: Option<String> },
}

/// A local answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// An OCI error body (JSON), or `None` for the browser page.
    pub body: Option<String>,
    /// `WWW-Authenticate` value.
    pub challenge: Option<String>,
    /// `Allow` value for 405.
    pub allow: Option<&'static str>,
}

/// Statuses after which the edge calls [`step`] again (bits of [`Fetch::resume`]).
pub const RESUME_401: u8 = 1;
pub const RESUME_3XX: u8 = 2;
pub const RESUME_ALL: u8 = 4;

/// One upstream request.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetch {
    pub method: &'static str,
    pub url: String,
    /// Send the client's allow-listed headers (Authorization among them).
    pub client_headers: bool,
    /// An OAuth2 form body (`application/x-www-form-urlencoded`).
    pub form: Option<String>,
    /// Let the runtime follow redirects; otherwise they come back here.
    pub follow: bool,
    /// When to call [`step`] with the response; otherwise it goes to the
    /// client as it is.
    pub resume: u8,
    pub phase: Phase,
}

fn reply(status: u16, code: Code, message: &str, subject: &str) -> Action {
    Action::Reply(Reply { status, body: Some(error_body(code, message, subject)), challenge: None, allow: None })
}

fn not_allowed(allow: &'static str, message: &str) -> Action {
    Action::Reply(Reply {
        status: 405,
        body: Some(error_body(Code::Unsupported, message, "")),
        challenge: None,
        allow: Some(allow),
    })
}

fn path_error(e: PathError) -> Action {
    let (status, code) = match e {
        PathError::NotFound => (404, Code::Unsupported),
        PathError::NameInvalid | PathError::NameTooLong => (400, Code::NameInvalid),
        PathError::TagInvalid => (400, Code::TagInvalid),
        PathError::DigestInvalid => (400, Code::DigestInvalid),
    };
    reply(status, code, e.as_str(), "")
}

/// `(scheme, authority, path, query)` of an absolute URL; the fragment is
/// dropped and a missing path is `/`.
pub fn split_url(url: &str) -> Option<(&str, &str, &str, &str)> {
    let i = crate::find(url, "://")?;
    let (scheme, rest) = (url.get(..i)?, url.get(i + 3..)?);
    let rest = crate::before(rest, b'#');
    let (before_query, query) = crate::split_at_byte(rest, b'?').unwrap_or((rest, ""));
    let (authority, path) = match before_query.as_bytes().iter().position(|&b| b == b'/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, "/"),
    };
    Some((scheme, authority, path, query))
}

/// `scheme://host[:port]/token` for the request's own (checked) authority.
pub fn mirror_realm(scheme: &str, authority: &Authority<'_>) -> String {
    let mut realm = String::with_capacity(scheme.len() + authority.host.len() + 16);
    realm.push_str(scheme);
    realm.push_str("://");
    authority.write(&mut realm);
    realm.push_str("/token");
    realm
}

/// Why an exchange failed, as the client's 502/504 naming what failed.
fn failed(subject: &str, up: &Upstream<'_>, message: Option<&str>) -> Action {
    let (status, message) = match message {
        Some(m) => (502, m),
        None if up.error.starts_with("AbortError") => (504, "the upstream registry did not answer in time"),
        None if crate::find(up.error, "Too%20many%20redirects").is_some() => (502, "the upstream redirected too many times"),
        None => (502, "the upstream registry could not be reached, or redirected to a URL that cannot be fetched"),
    };
    reply(status, Code::Unavailable, message, crate::location::origin(subject))
}

/// The token request: the realm (from the table or discovered) with every
/// scope of the client's query or form rewritten for the upstream.
fn token_fetch(route: &Route, realm: &str, query: &str, req: &Request<'_>) -> Action {
    let mut url = String::with_capacity(realm.len() + query.len() + 16);
    url.push_str(realm);
    let mut params = String::with_capacity(query.len() + 16);
    if let Err(e) = rewrite_token_params(query, route.library, &mut params) {
        return reply(400, Code::Unsupported, e.as_str(), "");
    }
    if !params.is_empty() {
        url.push_str(if crate::find(realm, "?").is_some() { "&" } else { "?" });
        url.push_str(&params);
    }
    let form = match req.body {
        Some(body) if req.method == "POST" => {
            let mut form = String::with_capacity(body.len() + 16);
            if let Err(e) = rewrite_token_params(body, route.library, &mut form) {
                return reply(400, Code::Unsupported, e.as_str(), "");
            }
            Some(form)
        }
        _ => None,
    };
    Action::Fetch(Fetch {
        method: if form.is_some() { "POST" } else { "GET" },
        url,
        client_headers: true,
        form,
        follow: true,
        resume: 0,
        phase: Phase::Token,
    })
}

/// Plans the next step of one request: `up` is `None` when the request has
/// just arrived, or the upstream's answer to the last [`Action::Fetch`].
pub fn step(req: &Request<'_>, up: Option<&Upstream<'_>>) -> Action {
    if req.url.len() > MAX_URL {
        return reply(414, Code::Unsupported, "the request URL is longer than 8192 bytes", "");
    }
    // The runtime hands over a parsed, percent-encoded URL; anything else is
    // refused rather than forwarded.
    if req.url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return reply(400, Code::Unsupported, "the request URL has spaces, control characters or raw non-ASCII bytes", "");
    }
    let Some((scheme, authority, path, query)) = split_url(req.url) else {
        return reply(400, Code::Unsupported, "the request URL is not absolute", "");
    };
    if scheme != "http" && scheme != "https" {
        return reply(400, Code::Unsupported, "the mirror serves http and https only", "");
    }
    let authority = match parse_authority(authority) {
        Ok(a) => a,
        Err(e) => return reply(400, Code::NameInvalid, e.as_str(), ""),
    };
    let Some(route) = lookup(authority.route_host()) else {
        return reply(404, Code::NameUnknown, "no mirror is configured for this host", authority.route_host());
    };
    let endpoint = match classify(path) {
        Ok(e) => e,
        Err(e) => return path_error(e),
    };
    let get_or_head = matches!(req.method, "GET" | "HEAD");
    match endpoint {
        Endpoint::Token => return token(route, query, req, up),
        // Like the distribution registry in read-only mode: 405 without
        // Allow (no method is allowed here, and the runtime drops an empty
        // header value).
        Endpoint::Repo { kind: Kind::Upload, .. } => {
            return reply(405, Code::Unsupported, "this mirror is read-only; push to the upstream registry itself", "")
        }
        _ if !get_or_head => {
            return not_allowed("GET, HEAD", "this mirror only pulls: registry API paths take GET and HEAD")
        }
        Endpoint::Root if req.accept_html => {
            return Action::Reply(Reply { status: 200, body: None, challenge: None, allow: None })
        }
        _ => {}
    }
    let realm = mirror_realm(scheme, &authority);
    if let Some(up) = up {
        return api_answer(route, &realm, up);
    }
    let mut url = String::with_capacity(route.upstream.len() + path.len() + query.len() + 16);
    url.push_str(route.upstream);
    match endpoint {
        Endpoint::Root | Endpoint::Base => {
            if !req.authorization && route.realm.is_some() {
                let mut ch = String::with_capacity(realm.len() + 48);
                challenge::mirror_challenge(&realm, route.service, &mut ch);
                return Action::Reply(Reply {
                    status: 401,
                    body: Some(error_body(Code::Unauthorized, "authentication required", "")),
                    challenge: Some(ch),
                    allow: None,
                });
            }
            url.push_str("/v2/");
        }
        Endpoint::Catalog => url.push_str("/v2/_catalog"),
        Endpoint::Repo { name, rest, .. } => {
            url.push_str("/v2/");
            if route.library && !name.as_bytes().contains(&b'/') {
                url.push_str("library/");
            }
            url.push_str(name);
            url.push_str(rest);
        }
        Endpoint::Token => {}
    }
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    Action::Fetch(Fetch {
        method: if req.method == "HEAD" { "HEAD" } else { "GET" },
        url,
        client_headers: true,
        form: None,
        follow: route.follow_redirects,
        resume: if route.follow_redirects { RESUME_401 } else { RESUME_401 | RESUME_3XX },
        phase: Phase::Api,
    })
}

/// The upstream's answer to a registry API request: a 401 gets the mirror's
/// realm (everything else in the challenge is kept); a redirect passed to the
/// client gets an absolute `Location`.
fn api_answer(route: &Route, realm: &str, up: &Upstream<'_>) -> Action {
    if up.status == 0 || up.phase != Phase::Api {
        return failed(route.upstream, up, None);
    }
    if up.status == 401 {
        return match challenge::rewrite(up.www_authenticate, realm) {
            Ok(lines) => Action::Relay { challenges: Some(lines), location: None },
            Err(e) => failed(route.upstream, up, Some(e.as_str())),
        };
    }
    if is_redirect(up.status) && !up.location.is_empty() {
        // Relative to the URL that answered, which for a passed redirect is
        // the first one: under the route's upstream.
        return match resolve(route.upstream, up.location) {
            Ok(loc) => Action::Relay { challenges: None, location: Some(loc) },
            Err(e) => failed(route.upstream, up, Some(e.as_str())),
        };
    }
    Action::Relay { challenges: None, location: None }
}

/// `/token`: GET, or the OAuth2 form POST (read first). Straight to the
/// table's realm, or to the realm the upstream's `/v2/` challenge names.
fn token(route: &'static Route, query: &str, req: &Request<'_>, up: Option<&Upstream<'_>>) -> Action {
    match req.method {
        "GET" => {}
        "POST" if req.body.is_none() => return Action::ReadBody,
        "POST" if req.body.map_or(0, str::len) > MAX_FORM => {
            return reply(400, Code::Unsupported, "the token form is larger than 16 KiB", "")
        }
        "POST" => {}
        _ => return not_allowed("GET, POST", "the token endpoint takes GET or an OAuth2 form POST"),
    }
    if let Some(up) = up.filter(|u| u.status == 0 || u.phase == Phase::Token) {
        // A failed fetch always comes back, whatever `resume` said.
        return failed(route.realm.unwrap_or(route.upstream), up, None);
    }
    if let Some(realm) = route.realm {
        return token_fetch(route, realm, query, req);
    }
    let Some(up) = up else {
        let mut ping = String::with_capacity(route.upstream.len() + 4);
        ping.push_str(route.upstream);
        ping.push_str("/v2/");
        return Action::Fetch(Fetch {
            method: "GET",
            url: ping,
            client_headers: false,
            form: None,
            follow: true,
            resume: RESUME_ALL,
            phase: Phase::Discover,
        });
    };
    let realm = match challenge::bearer_realm(up.www_authenticate) {
        Some(r) if up.status == 401 => r,
        _ => return reply(404, Code::Unavailable, "the upstream registry does not use token authentication", route.upstream),
    };
    // A relative realm is relative to the upstream's /v2/.
    let mut base = String::with_capacity(route.upstream.len() + 4);
    base.push_str(route.upstream);
    base.push_str("/v2/");
    match resolve(&base, &realm) {
        Ok(realm) => token_fetch(route, &realm, query, req),
        Err(e) => failed(route.upstream, up, Some(e.as_str())),
    }
}
