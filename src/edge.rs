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
use web_sys::{AbortController, Headers, Request, RequestInit, RequestRedirect, Response, ResponseInit};
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

/// Request headers passed to the upstream; everything else (cookies, `cf-*`,
/// `x-forwarded-*`, hop-by-hop headers) stays behind. `authorization` is
/// removed again before any hop to another origin.
const FORWARDED: &[&str] = &[
    "accept",
    "authorization",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "range",
    "user-agent",
];

/// Response headers never passed to the client.
const DROPPED: &[&str] = &["set-cookie", "connection", "keep-alive", "proxy-authenticate", "trailer", "upgrade"];

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn js_fetch(url: &str, init: &RequestInit) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(js_namespace = scheduler, js_name = wait)]
    fn scheduler_wait(ms: u32) -> js_sys::Promise;
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
    local(&Reply { status, body: Body::Json(error_body(Code::Unavailable, message, host)), challenge: None, allow: None })
}

async fn handle(req: Request) -> Response {
    let url = req.url();
    let method = req.method();
    let headers = req.headers();
    let authorization = headers.has("authorization").unwrap_or(false);
    let accept_html = headers.get("accept").ok().flatten().is_some_and(|a| crate::find(&a, "text/html").is_some());
    let incoming = Incoming { method: &method, url: &url, authorization, accept_html };
    let resp = match plan(&incoming) {
        Plan::Reply(r) => local(&r),
        Plan::Forward(f) => forward(&headers, f).await,
        Plan::Token(t) => token(&req, &headers, t).await,
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

fn new_headers() -> Headers {
    // `new Headers()` does not throw; the fallback keeps this total.
    Headers::new().unwrap_or_else(|_| JsValue::UNDEFINED.unchecked_into())
}

/// A local answer as a Response.
fn local(r: &Reply) -> Response {
    let h = new_headers();
    let (ctype, body) = match &r.body {
        Body::Json(s) => ("application/json", s.as_str()),
        Body::Html(s) => ("text/html; charset=utf-8", *s),
    };
    let _ = h.set("content-type", ctype);
    let _ = h.set("docker-distribution-api-version", "registry/2.0");
    if let Some(c) = &r.challenge {
        let _ = h.set("www-authenticate", c);
    }
    if let Some(a) = r.allow {
        let _ = h.set("allow", a);
    }
    let init = ResponseInit::new();
    init.set_status(r.status);
    init.set_headers(&h);
    Response::new_with_opt_str_and_init(Some(body), &init)
        .unwrap_or_else(|_| JsValue::UNDEFINED.unchecked_into())
}

/// Fetches `first`, following redirects when the route says so. Returns the
/// final response and the URL that gave it.
async fn fetch_upstream(
    route: &Route,
    first: &str,
    method: &str,
    headers: &Headers,
    body: Option<&str>,
) -> Result<(Response, String), (Fail, String)> {
    let mut url = first.to_string();
    let mut hops = 0;
    loop {
        if !same_origin(&url, first) {
            let _ = headers.delete("authorization");
        }
        let init = RequestInit::new();
        init.set_method(method);
        init.set_headers(headers);
        init.set_redirect(RequestRedirect::Manual);
        if let Some(b) = body {
            init.set_body(&JsValue::from_str(b));
        }
        let controller = AbortController::new().ok();
        if let Some(c) = &controller {
            init.set_signal(Some(&c.signal()));
        }
        let Ok(pending) = js_fetch(&url, &init) else { return Err((Fail::Unreachable, url)) };
        let race = js_sys::Promise::race(&js_sys::Array::of2(&pending, &scheduler_wait(UPSTREAM_TIMEOUT_MS)));
        let resp: Response = match JsFuture::from(race).await {
            Ok(v) if v.is_undefined() => {
                if let Some(c) = controller {
                    c.abort();
                }
                return Err((Fail::Timeout, url));
            }
            Ok(v) => v.unchecked_into(),
            Err(_) => return Err((Fail::Unreachable, url)),
        };
        let status = resp.status();
        if !(route.follow_redirects && is_redirect(status)) {
            return Ok((resp, url));
        }
        hops += 1;
        if hops > MAX_HOPS {
            return Err((Fail::TooManyRedirects, url));
        }
        let loc = resp.headers().get("location").ok().flatten().unwrap_or_default();
        if let Some(b) = resp.body() {
            let _ = b.cancel();
        }
        url = match resolve(&url, &loc) {
            Ok(next) => next,
            Err(e) => return Err((Fail::Location(e), url)),
        };
    }
}

/// Copies the allow-listed request headers.
fn upstream_headers(client: &Headers) -> Headers {
    let h = new_headers();
    for name in FORWARDED {
        if let Ok(Some(v)) = client.get(name) {
            let _ = h.append(name, &v);
        }
    }
    h
}

/// Streams an upstream response to the client. On a 401 with `realm`, the
/// challenge is rewritten; a passed-through redirect gets an absolute
/// Location.
fn relay(up: Response, url: &str, realm: Option<&str>) -> Result<Response, Fail> {
    let status = up.status();
    // `new Response(body, response)`: the upstream response is a valid init
    // (status, statusText, headers), and the copy's headers are mutable.
    let out = Response::new_with_opt_readable_stream_and_init(up.body().as_ref(), up.unchecked_ref::<ResponseInit>())
        .map_err(|_| Fail::Unreachable)?;
    let h = out.headers();
    for name in DROPPED {
        let _ = h.delete(name);
    }
    if status == 401 {
        if let Some(realm) = realm {
            let value = h.get("www-authenticate").ok().flatten().unwrap_or_default();
            let lines = challenge::rewrite(&value, realm).map_err(Fail::Challenge)?;
            let _ = h.delete("www-authenticate");
            for line in &lines {
                let _ = h.append("www-authenticate", line);
            }
            let _ = h.set("docker-distribution-api-version", "registry/2.0");
        }
    } else if is_redirect(status) {
        if let Ok(Some(loc)) = h.get("location") {
            let abs = resolve(url, &loc).map_err(Fail::Location)?;
            let _ = h.set("location", &abs);
        }
    }
    Ok(out)
}

async fn forward(client: &Headers, f: Forward) -> Response {
    let headers = upstream_headers(client);
    let method = if f.head { "HEAD" } else { "GET" };
    match fetch_upstream(f.route, &f.url, method, &headers, None).await {
        Ok((up, url)) => relay(up, &url, Some(&f.realm)).unwrap_or_else(|e| fail_reply(e, &url)),
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
    let (resp, url) = fetch_upstream(route, &ping, "GET", &new_headers(), None).await?;
    if resp.status() != 401 {
        return Err((Fail::NoToken, url));
    }
    let value = resp.headers().get("www-authenticate").ok().flatten().unwrap_or_default();
    let realm = challenge::bearer_realm(&value).ok_or((Fail::NoToken, url.clone()))?;
    resolve(&url, &realm).map_err(|e| (Fail::Location(e), url))
}

fn bad_request(message: &str) -> Response {
    local(&Reply { status: 400, body: Body::Json(error_body(Code::Unsupported, message, "")), challenge: None, allow: None })
}

async fn token(req: &Request, client: &Headers, t: Token) -> Response {
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
    let headers = upstream_headers(client);
    let mut form = String::new();
    if t.post {
        let too_big = client
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
        if let Err(e) = rewrite_token_params(&text, t.route.library, &mut form) {
            return bad_request(e.as_str());
        }
        let _ = headers.set("content-type", "application/x-www-form-urlencoded");
    }
    let method = if t.post { "POST" } else { "GET" };
    let body = if t.post { Some(form.as_str()) } else { None };
    match fetch_upstream(t.route, &url, method, &headers, body).await {
        Ok((up, url)) => relay(up, &url, None).unwrap_or_else(|e| fail_reply(e, &url)),
        Err((e, url)) => fail_reply(e, &url),
    }
}
