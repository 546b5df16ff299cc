//! The request planner: method, URL and two facts about the headers in; what
//! to answer or where to forward out.
//!
//! This is the whole decision the worker makes about a request, as a pure
//! function tested natively. Every outcome is either a local answer (a page, a
//! challenge, or an OCI error) or a request to the route's upstream or realm,
//! which come only from the compiled table. No query parameter, header or
//! path can name another host.
//!
//! It does not touch bodies, headers beyond those facts, or the network:
//! `edge.rs` carries out the plan.

use crate::challenge;
use crate::host::{parse_authority, Authority};
use crate::oci::{error_body, Code};
use crate::path::{classify, Endpoint, Kind, PathError};
use crate::routes::{lookup, Route, INDEX_HTML};

/// Longest request URL accepted (scheme, host, path and query).
pub const MAX_URL: usize = 8192;

/// The parts of a request the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The absolute URL as the runtime gives it (`request.url`).
    pub url: &'a str,
    pub authorization: bool,
    /// `Accept` mentions `text/html`: a browser.
    pub accept_html: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Reply(Reply),
    Forward(Forward),
    Token(Token),
}

/// A local answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Body,
    /// `WWW-Authenticate` value.
    pub challenge: Option<String>,
    /// `Allow` value for 405.
    pub allow: Option<&'static str>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    Json(String),
    Html(&'static str),
}

/// A registry API request for the upstream.
#[derive(Debug, PartialEq, Eq)]
pub struct Forward {
    pub route: &'static Route,
    pub url: String,
    pub head: bool,
    /// The mirror's token endpoint, for rewriting a 401's realm.
    pub realm: String,
}

/// A token request for the upstream's realm.
#[derive(Debug, PartialEq, Eq)]
pub struct Token {
    pub route: &'static Route,
    /// OAuth2 form POST (the body is rewritten by `scope::rewrite_token_params`).
    pub post: bool,
    /// The request's query, to be rewritten the same way.
    pub query: String,
}

/// `(scheme, authority, path, query)` of an absolute URL; the fragment is
/// dropped and a missing path is `/`.
pub fn split_url(url: &str) -> Option<(&str, &str, &str, &str)> {
    let i = crate::find(url, "://")?;
    let (scheme, rest) = (url.get(..i)?, url.get(i + 3..)?);
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, "/"),
    };
    Some((scheme, authority, path, query))
}

fn error(status: u16, code: Code, message: &str, subject: &str) -> Plan {
    Plan::Reply(Reply { status, body: Body::Json(error_body(code, message, subject)), challenge: None, allow: None })
}

fn not_allowed(allow: &'static str) -> Plan {
    let message = if allow == "GET, POST" {
        "the token endpoint takes GET or an OAuth2 form POST"
    } else {
        "this mirror only pulls: registry API paths take GET and HEAD"
    };
    Plan::Reply(Reply {
        status: 405,
        body: Body::Json(error_body(Code::Unsupported, message, "")),
        challenge: None,
        allow: Some(allow),
    })
}

fn path_error(e: PathError) -> Plan {
    let (status, code) = match e {
        PathError::NotFound => (404, Code::Unsupported),
        PathError::NameInvalid | PathError::NameTooLong => (400, Code::NameInvalid),
        PathError::TagInvalid => (400, Code::TagInvalid),
        PathError::DigestInvalid => (400, Code::DigestInvalid),
    };
    error(status, code, e.as_str(), "")
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

/// Plans one request.
pub fn plan(req: &Incoming<'_>) -> Plan {
    if req.url.len() > MAX_URL {
        return error(414, Code::Unsupported, "the request URL is longer than 8192 bytes", "");
    }
    // The runtime hands over a parsed, percent-encoded URL; anything else is
    // refused rather than forwarded.
    if req.url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return error(400, Code::Unsupported, "the request URL has spaces, control characters or raw non-ASCII bytes", "");
    }
    let Some((scheme, authority, path, query)) = split_url(req.url) else {
        return error(400, Code::Unsupported, "the request URL is not absolute", "");
    };
    if scheme != "http" && scheme != "https" {
        return error(400, Code::Unsupported, "the mirror serves http and https only", "");
    }
    let authority = match parse_authority(authority) {
        Ok(a) => a,
        Err(e) => return error(400, Code::NameInvalid, e.as_str(), ""),
    };
    let Some(route) = lookup(authority.route_host()) else {
        return error(404, Code::NameUnknown, "no mirror is configured for this host", authority.route_host());
    };
    let endpoint = match classify(path) {
        Ok(e) => e,
        Err(e) => return path_error(e),
    };
    let get_or_head = matches!(req.method, "GET" | "HEAD");
    let head = req.method == "HEAD";
    match endpoint {
        Endpoint::Token => {
            return match req.method {
                "GET" | "POST" => Plan::Token(Token { route, post: req.method == "POST", query: query.to_string() }),
                _ => not_allowed("GET, POST"),
            };
        }
        Endpoint::Repo { kind: Kind::Upload, .. } => {
            // Like the distribution registry in read-only mode: 405 without
            // Allow (no method is allowed here, and the runtime drops an
            // empty header value).
            return error(405, Code::Unsupported, "this mirror is read-only; push to the upstream registry itself", "");
        }
        _ if !get_or_head => return not_allowed("GET, HEAD"),
        Endpoint::Root if req.accept_html => {
            return Plan::Reply(Reply { status: 200, body: Body::Html(INDEX_HTML), challenge: None, allow: None });
        }
        _ => {}
    }
    let realm = mirror_realm(scheme, &authority);
    let mut url = String::with_capacity(route.upstream.len() + path.len() + query.len() + 16);
    url.push_str(route.upstream);
    match endpoint {
        Endpoint::Root | Endpoint::Base => {
            if !req.authorization && route.realm.is_some() {
                let mut ch = String::with_capacity(realm.len() + 48);
                challenge::mirror_challenge(&realm, route.service, &mut ch);
                return Plan::Reply(Reply {
                    status: 401,
                    body: Body::Json(error_body(Code::Unauthorized, "authentication required", "")),
                    challenge: Some(ch),
                    allow: None,
                });
            }
            url.push_str("/v2/");
        }
        Endpoint::Catalog => url.push_str("/v2/_catalog"),
        Endpoint::Repo { name, rest, .. } => {
            url.push_str("/v2/");
            if route.library && !name.contains('/') {
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
    Plan::Forward(Forward { route, url, head, realm })
}
