//! The thin edge: converts between the runtime's web types and the pure
//! planner, carries out the plan with `fetch`, and streams answers back.
//!
//! Everything that decides is elsewhere (`plan`, `challenge`, `scope`,
//! `location`); this module only moves values across the JS boundary, and
//! keeps the crossings few. It works on `web_sys::Request`/`Response` rather
//! than `worker::Request`, which would pull in URL parsing and formatting.
//!
//! What it deliberately does not do: read a manifest or blob body into wasm
//! memory (bodies are passed as streams), keep state between requests, send
//! the client's Authorization to any origin but the one the plan named, or
//! return an upstream `Set-Cookie`.

use std::convert::Infallible;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, Response};
use worker::{event, js_sys, Context, Env};

use crate::challenge;
use crate::location::{is_redirect, origin, resolve, same_origin, LocationError};
use crate::oci::{error_body, Code};
use crate::plan::{plan, Body, Forward, Incoming, Plan, Reply, Token};
use crate::routes::Route;
use crate::scope::rewrite_token_params;

/// Redirect hops the worker follows for one request.
const MAX_HOPS: usize = 5;
/// How long an upstream may take to send response headers.
const UPSTREAM_TIMEOUT_MS: u32 = 20_000;
/// Largest OAuth2 token form accepted.
const MAX_FORM: usize = 16 * 1024;

// src/edge.js: host calls batched into one crossing each. The request-header
// allow-list and the dropped response headers live there.
#[wasm_bindgen(module = "/src/edge.js")]
extern "C" {
    fn describe(request: &Request) -> String;
    #[wasm_bindgen(js_name = forwardedHeaders)]
    fn forwarded_headers(request: &Request) -> Headers;
    #[wasm_bindgen(catch)]
    fn send(url: &str, method: &str, headers: &Headers, body: Option<String>, drop_authorization: bool, ms: u32)
        -> Result<js_sys::Promise, JsValue>;
    fn header(response: &Response, name: &str) -> Option<String>;
    #[wasm_bindgen(js_name = takeLocation)]
    fn take_location(response: &Response) -> String;
    fn relay(response: &Response, challenges: Option<String>, location: Option<String>) -> Response;
    fn reply(status: u16, body: &str, content_type: &str, challenge: Option<String>, allow: Option<String>) -> Response;
}

#[event(fetch)]
async fn main(req: Request, _env: Env, _ctx: Context) -> Result<Response, Infallible> {
    Ok(handle(req).await)
}

/// Why an upstream exchange failed, for the client's 502/504.
enum Fail {
    Unreachable,
    Timeout,
    TooManyRedirects,
    Location(LocationError),
    Challenge(challenge::ChallengeError),
    NoToken,
}

fn fail_reply(fail: Fail, url: &str) -> Response {
    let host = origin(url);
    let (status, message) = match fail {
        Fail::Unreachable => (502, "the upstream registry could not be reached"),
        Fail::Timeout => (504, "the upstream registry did not answer in time"),
        Fail::TooManyRedirects => (502, "the upstream redirected too many times"),
        Fail::Location(e) => (502, e.as_str()),
        Fail::Challenge(e) => (502, e.as_str()),
        Fail::NoToken => (404, "the upstream registry does not use token authentication"),
    };
    local(Reply { status, body: Body::Json(error_body(Code::Unavailable, message, host)), challenge: None, allow: None })
}

async fn handle(req: Request) -> Response {
    // "METHOD FLAGS URL" in one crossing.
    let described = describe(&req);
    let mut parts = described.splitn(3, ' ');
    let method = parts.next().unwrap_or("");
    let flags = parts.next().unwrap_or("0");
    let url = parts.next().unwrap_or("");
    let incoming = Incoming {
        method,
        url,
        authorization: matches!(flags, "1" | "3"),
        accept_html: matches!(flags, "2" | "3"),
    };
    let resp = match plan(&incoming) {
        Plan::Reply(r) => local(r),
        Plan::Forward(f) => forward(&req, f).await,
        Plan::Token(t) => token(&req, t).await,
    };
    #[cfg(feature = "memory-probe")]
    probe(&resp);
    resp
}

/// Test builds: the linear-memory size in 64 KiB pages, as a header.
#[cfg(feature = "memory-probe")]
fn probe(resp: &Response) {
    let mut pages = core::arch::wasm32::memory_size(0);
    let mut digits = [b'0'; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (pages % 10) as u8;
        }
        pages /= 10;
        if pages == 0 || i == 0 {
            break;
        }
    }
    let text = core::str::from_utf8(digits.get(i..).unwrap_or(b"0")).unwrap_or("0");
    let _ = resp.headers().set("x-wasm-memory-pages", text);
}

/// A local answer as a Response.
fn local(r: Reply) -> Response {
    let (ctype, body) = match &r.body {
        Body::Json(s) => ("application/json", s.as_str()),
        Body::Html(s) => ("text/html; charset=utf-8", *s),
    };
    reply(r.status, body, ctype, r.challenge, r.allow.map(str::to_string))
}

/// Fetches `first`, following redirects when the route says so. Returns the
/// final response and the URL that gave it. The client's Authorization goes
/// only to the origin of `first`: it is removed before any other hop.
async fn fetch_upstream(
    route: &Route,
    first: &str,
    method: &str,
    headers: &Headers,
    body: Option<String>,
) -> Result<(Response, String), (Fail, String)> {
    let mut url = first.to_string();
    let mut hops = 0;
    loop {
        let Ok(pending) = send(&url, method, headers, body.clone(), !same_origin(&url, first), UPSTREAM_TIMEOUT_MS) else {
            return Err((Fail::Unreachable, url));
        };
        let resp: Response = match JsFuture::from(pending).await {
            Ok(v) if v.is_undefined() => return Err((Fail::Timeout, url)),
            Ok(v) => v.unchecked_into(),
            Err(_) => return Err((Fail::Unreachable, url)),
        };
        if !(route.follow_redirects && is_redirect(resp.status())) {
            return Ok((resp, url));
        }
        hops += 1;
        if hops > MAX_HOPS {
            return Err((Fail::TooManyRedirects, url));
        }
        let loc = take_location(&resp);
        url = match resolve(&url, &loc) {
            Ok(next) => next,
            Err(e) => return Err((Fail::Location(e), url)),
        };
    }
}

/// Streams an upstream response to the client. On a 401 with `realm`, the
/// challenge is rewritten; a passed-through redirect gets an absolute
/// Location.
fn relay_upstream(up: Response, url: &str, realm: Option<&str>) -> Result<Response, Fail> {
    let status = up.status();
    let mut challenges = None;
    let mut location = None;
    if status == 401 {
        if let Some(realm) = realm {
            let value = header(&up, "www-authenticate").unwrap_or_default();
            let lines = challenge::rewrite(&value, realm).map_err(Fail::Challenge)?;
            challenges = Some(lines.join("\n"));
        }
    } else if is_redirect(status) {
        if let Some(loc) = header(&up, "location") {
            location = Some(resolve(url, &loc).map_err(Fail::Location)?);
        }
    }
    Ok(relay(&up, challenges, location))
}

async fn forward(req: &Request, f: Forward) -> Response {
    let headers = forwarded_headers(req);
    let method = if f.head { "HEAD" } else { "GET" };
    match fetch_upstream(f.route, &f.url, method, &headers, None).await {
        Ok((up, url)) => relay_upstream(up, &url, Some(&f.realm)).unwrap_or_else(|e| fail_reply(e, &url)),
        Err((e, url)) => fail_reply(e, &url),
    }
}

/// The upstream's realm: from the table, or from its `/v2/` challenge.
async fn realm_of(route: &Route) -> Result<String, (Fail, String)> {
    if let Some(r) = route.realm {
        return Ok(r.to_string());
    }
    let mut ping = String::with_capacity(route.upstream.len() + 4);
    ping.push_str(route.upstream);
    ping.push_str("/v2/");
    let empty = Headers::new().map_err(|_| (Fail::Unreachable, ping.clone()))?;
    let (resp, url) = fetch_upstream(route, &ping, "GET", &empty, None).await?;
    if resp.status() != 401 {
        return Err((Fail::NoToken, url));
    }
    let value = header(&resp, "www-authenticate").unwrap_or_default();
    let realm = challenge::bearer_realm(&value).ok_or((Fail::NoToken, url.clone()))?;
    resolve(&url, &realm).map_err(|e| (Fail::Location(e), url))
}

fn bad_request(message: &str) -> Response {
    local(Reply { status: 400, body: Body::Json(error_body(Code::Unsupported, message, "")), challenge: None, allow: None })
}

async fn token(req: &Request, t: Token) -> Response {
    let mut url = match realm_of(t.route).await {
        Ok(r) => r,
        Err((e, url)) => return fail_reply(e, &url),
    };
    let mut query = String::with_capacity(t.query.len() + 16);
    if let Err(e) = rewrite_token_params(&t.query, t.route.library, &mut query) {
        return bad_request(e.as_str());
    }
    if !query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query);
    }
    let headers = forwarded_headers(req);
    let mut body = None;
    if t.post {
        let too_big = req
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .is_some_and(|n| n.len() > 6 || n.parse::<usize>().map_or(true, |n| n > MAX_FORM));
        if too_big {
            return bad_request("the token form is larger than 16 KiB");
        }
        let text = match req.text().map(JsFuture::from) {
            Ok(p) => p.await.ok().and_then(|v| v.as_string()).unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.len() > MAX_FORM {
            return bad_request("the token form is larger than 16 KiB");
        }
        let mut form = String::with_capacity(text.len() + 16);
        if let Err(e) = rewrite_token_params(&text, t.route.library, &mut form) {
            return bad_request(e.as_str());
        }
        let _ = headers.set("content-type", "application/x-www-form-urlencoded");
        body = Some(form);
    }
    let method = if t.post { "POST" } else { "GET" };
    match fetch_upstream(t.route, &url, method, &headers, body).await {
        Ok((up, url)) => relay_upstream(up, &url, None).unwrap_or_else(|e| fail_reply(e, &url)),
        Err((e, url)) => fail_reply(e, &url),
    }
}
