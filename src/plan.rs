//! The request state machine: facts in, the next action out.
//!
//! This is the whole decision the worker makes about a request, as a pure,
//! synchronous function in the sans-IO style (h11, quinn-proto): it is given
//! what is known about the client's request and, after a fetch, what the
//! upstream answered, and it returns one [`Action`] for the edge to carry out:
//! answer locally, read the request body or a secret, fetch a URL, or relay
//! the upstream's response (with its challenge, `Location` or body
//! rewritten). It never does I/O and keeps nothing between calls: the edge
//! hands back the [`Phase`] it was given with the upstream's answer, and
//! [`step`] re-derives everything else from the request, which costs less
//! than carrying it.
//!
//! Every URL in a `Fetch` starts with a route's `upstream` or `realm` from the
//! compiled table, or is the realm the upstream's own challenge names. No
//! query parameter, header or path can name another host: `?ns=` and
//! `/token/<registry>` pick among the table's routes by name. Redirect
//! targets are the runtime's to follow on routes that follow (it drops
//! Authorization on a cross-origin hop); on routes that pass redirects the
//! client gets them, pointed back at the mirror when they stay on the
//! upstream.
//!
//! It does not touch bodies other than the OAuth2 token form and an
//! upstream's 429 answer, headers beyond the facts listed in [`Request`] and
//! [`Upstream`], or the network.

pub use crate::action::{
    Action, Fetch, Phase, Reply, Request, Secret, Upstream, MAX_FORM, MAX_URL, RESUME_401, RESUME_3XX, RESUME_429, RESUME_5XX,
    RESUME_ALL, RESUME_ERR, RESUME_TOKEN,
};
use crate::action::{credentials, failure, limit, outcome, reply, upstream_error, Ask, Seen};
use crate::Put;
use crate::challenge;
use crate::host::{parse_authority, Authority};
use crate::location::{is_redirect, origin, resolve};
use crate::names::{allowed, client_name, upstream_name};
use crate::messages::Msg;
use crate::path::{classify, Endpoint, Kind};
use crate::routes::{self, by_host, by_name, by_registry, Route};
use crate::scope::{first_repository, rewrite_token_params};

fn not_allowed(allow: &'static str, msg: Msg) -> Action {
    Action::Reply(Reply { msg, subject: String::new(), challenge: None, allow: Some(allow) })
}

fn denied(name: &str) -> Action {
    reply(Msg::Denied, name)
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

/// The value of the first `name=` pair of a query, as written.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    crate::split(query, b'&').find_map(|p| crate::strip_prefix_then(p, name, b'='))
}

/// Where the client reached the mirror: `scheme://host[:port]` of the
/// request's own (checked) authority, written only when an answer names the
/// mirror.
struct Base<'a> {
    scheme: &'a str,
    authority: Authority<'a>,
}

impl Base<'_> {
    fn write(&self, out: &mut String) {
        out.push_str(self.scheme);
        out.push_str("://");
        self.authority.write(out);
    }
}

/// The mirror's token endpoint for a route: `/token` when the host alone
/// leads to it, `/token/<registry>` when the client reached it by a prefix or
/// `?ns=` (a shared host).
fn mirror_realm(base: &Base<'_>, route: Option<&Route>) -> String {
    let mut realm = String::with_capacity(base.authority.host.len() + 48);
    base.write(&mut realm);
    realm.push_str("/token");
    if let Some(r) = route {
        realm.put(b'/');
        realm.push_str(r.registry);
    }
    realm
}

/// Why an exchange failed, as the client's 502/504 naming what failed.
fn failed(subject: &str, up: &Upstream<'_>) -> Action {
    reply(failure(outcome(up)), origin(subject))
}

/// Plans the next step of one request: `up` is `None` when the request has
/// just arrived, or the upstream's answer to the last [`Action::Fetch`].
pub fn step(req: &Request<'_>, up: Option<&Upstream<'_>>) -> Action {
    decide(req, up, &mut Seen::default())
}

/// [`step`], and when the table logs, what the request was about for its
/// log line, for every action that can end the request (a local answer, a
/// relay, or a fetch whose response the entry may pass on): the route's
/// name, the kind of request, the fallback that answers (or nothing) and
/// the repository, tab-separated (the repository last: a token request's
/// scope can carry any byte, a tab among them). The entry adds what it
/// sees itself (status, upstream status, whether the runtime followed a
/// redirect, milliseconds until upstream headers, the client's address) and
/// writes the line as JSON.
pub fn step_logged(req: &Request<'_>, up: Option<&Upstream<'_>>) -> (Action, Option<String>) {
    let mut seen = Seen::default();
    let action = decide(req, up, &mut seen);
    if !routes::log() || matches!(action, Action::ReadBody | Action::ReadSecret(_)) {
        return (action, None);
    }
    let mut line = String::with_capacity(64 + seen.repository.len());
    line.push_str(seen.route);
    line.put(b'\t');
    line.push_str(seen.kind);
    line.put(b'\t');
    line.push_str(seen.source);
    line.put(b'\t');
    // Last, as it is: the entry takes everything after the third tab, and
    // JSON-escapes it.
    line.push_str(&seen.repository);
    (action, Some(line))
}

fn decide(req: &Request<'_>, up: Option<&Upstream<'_>>, seen: &mut Seen) -> Action {
    if !routes::loaded() {
        return reply(Msg::TableUnusable, "");
    }
    if req.url.len() > MAX_URL {
        return reply(Msg::UrlTooLong, "");
    }
    // The runtime hands over a parsed, percent-encoded URL; anything else is
    // refused rather than forwarded.
    if req.url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return reply(Msg::UrlBytes, "");
    }
    let Some((scheme, authority, path, query)) = split_url(req.url) else {
        return reply(Msg::UrlNotAbsolute, "");
    };
    if scheme != "http" && scheme != "https" {
        return reply(Msg::Scheme, "");
    }
    let authority = match parse_authority(authority) {
        Ok(a) => a,
        Err(e) => return reply(e.msg(), ""),
    };
    let host = authority.route_host();
    let endpoint = match classify(path) {
        Ok(e) => e,
        Err(e) => return reply(e.msg(), ""),
    };
    let base = Base { scheme, authority };
    if let Endpoint::Token(registry) = endpoint {
        seen.kind = "token";
        return token(req, up, host, registry, query, seen);
    }
    // docker search's term (`q`, decoded) picks the route as a name does.
    let search = endpoint == Endpoint::Search;
    let term = match query_param(query, "q").filter(|_| search).map(|q| crate::scope::percent_decode(q, false)) {
        Some(Ok(t)) if t.len() <= 256 => t,
        _ if search => return reply(Msg::SearchQuery, ""),
        _ => String::new(),
    };
    let named = match endpoint {
        Endpoint::Repo { name, .. } => Some(name),
        Endpoint::Search => Some(term.as_str()),
        _ => None,
    };
    // containerd names the registry it pulls from; only the table's routes
    // answer to it.
    let ns = query_param(query, "ns");
    let (i, name, prefixed) = match (ns, named) {
        (Some(ns), _) => match by_registry(ns) {
            Some(r) => (r, None, false),
            None => return reply(Msg::NsUnknown, ns),
        },
        (None, Some(name)) => match by_name(host, name) {
            Some((r, rest)) => (r, rest, rest.is_some()),
            None => return reply(Msg::NameNoRoute, name),
        },
        (None, None) => match by_host(host) {
            Some(r) => (r, None, false),
            None => return reply(Msg::HostNoRoute, host),
        },
    };
    let Some(route) = routes::get(i) else { return reply(Msg::HostNoRoute, host) };
    seen.route = route.name;
    match endpoint {
        // Like the distribution registry in read-only mode: 405 without
        // Allow (no method is allowed here, and the runtime drops an empty
        // header value).
        Endpoint::Repo { kind: Kind::Upload, .. } => {
            return reply(Msg::ReadOnly, "")
        }
        _ if !matches!(req.method, "GET" | "HEAD") => {
            return not_allowed("GET, HEAD", Msg::PullOnly)
        }
        Endpoint::Root if req.accept_html && routes::page() => {
            seen.kind = "page";
            return Action::Page;
        }
        _ => {}
    }
    // The mirror's realm for this route (for a challenge): `/token` when
    // the host alone leads to the route, `/token/<registry>` when the client
    // reached it by a prefix or `?ns=`.
    let by_path = prefixed || ns.is_some();
    let mut url = String::with_capacity(route.upstream.len() + path.len() + query.len() + 32);
    url.push_str(route.upstream);
    // A manifest or blob request on a route with fallbacks.
    let mut ask = None;
    match endpoint {
        Endpoint::Repo { name: full, rest, kind } => {
            let name = name.unwrap_or(full);
            seen.kind = match kind {
                Kind::Manifest => "manifest",
                Kind::Blob => "blob",
                Kind::Tags => "tags",
                _ => "referrers",
            };
            url.push_str("/v2/");
            let start = url.len();
            upstream_name(&route, name, &mut url);
            if routes::log() {
                seen.repository.push_str(url.get(start..).unwrap_or(""));
            }
            if !allowed(&route, name) {
                return denied(full);
            }
            url.push_str(rest);
            if !route.fallback.is_empty() && matches!(kind, Kind::Manifest | Kind::Blob) {
                ask = Some(Ask { route: &route, name, rest, head: req.method == "HEAD" });
            }
        }
        // docker search: to the route's index, anonymously, the query
        // rebuilt from `q` (the term, its prefix removed, encoded again),
        // `n` and `page` (numbers only); its answer streams back.
        Endpoint::Search => {
            seen.kind = "search";
            let Some(index) = route.search else { return reply(Msg::SearchNone, route.registry) };
            let term = name.unwrap_or(&term);
            if routes::log() {
                seen.repository.push_str(term);
            }
            url.clear();
            url.push_str(index);
            url.push_str("/v1/search?q=");
            crate::scope::percent_encode(term, &mut url);
            for key in ["&n=", "&page="] {
                if let Some(v) = query_param(query, key.get(1..key.len() - 1).unwrap_or("")) {
                    if (1..=4).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
                        url.push_str(key);
                        url.push_str(v);
                    }
                }
            }
        }
        Endpoint::Catalog if !route.allow.is_empty() => return denied("_catalog"),
        Endpoint::Catalog => {
            seen.kind = "catalog";
            url.push_str("/v2/_catalog");
        }
        _ => {
            seen.kind = "ping";
            if !req.authorization && route.realm.is_some() && up.is_none() {
                let mut ch = String::with_capacity(base.authority.host.len() + 64);
                challenge::mirror_challenge(&mirror_realm(&base, by_path.then_some(&route)), route.service, &mut ch);
                return Action::Reply(Reply { msg: Msg::AuthRequired, subject: String::new(), challenge: Some(ch), allow: None });
            }
            url.push_str("/v2/");
        }
    }
    if let Some(up) = up {
        if let Some(a) = ask.as_ref().and_then(|ask| crate::fallback::answer(ask, req, up, seen)) {
            return a;
        }
        return api_answer(&route, &base, ns, prefixed, up, if search { route.search.unwrap_or("") } else { route.upstream });
    }
    if !query.is_empty() && !search {
        url.put(b'?');
        url.push_str(query);
    }
    let resume = RESUME_401
        | RESUME_429
        | if route.follow_redirects { 0 } else { RESUME_3XX }
        | if ask.is_some() { RESUME_5XX } else { 0 };
    Action::Fetch(Fetch {
        head: req.method == "HEAD",
        url,
        resume,
        follow: route.follow_redirects,
        anonymous: search,
        ..Fetch::new(Phase::Api)
    })
}

/// The upstream's answer to a registry API request: a 401 gets the mirror's
/// realm and the client's names in its scope (everything else in the
/// challenge is kept); a 429 says which limit; a redirect passed to the
/// client gets an absolute `Location`, back through the mirror when it stays
/// on the upstream's registry API.
/// `from` is what a failure names: the upstream (the index, for a search).
#[inline(never)]
fn api_answer(route: &Route, base: &Base<'_>, ns: Option<&str>, prefixed: bool, up: &Upstream<'_>, from: &str) -> Action {
    if up.status == 0 || up.phase != Some(Phase::Api) {
        return failed(from, up);
    }
    if up.status == 401 {
        let scope = |value: &str, out: &mut String| map_scope(route, value, prefixed, out);
        let realm = mirror_realm(base, (prefixed || ns.is_some()).then_some(route));
        return match challenge::rewrite(up.www_authenticate, &realm, &scope) {
            Ok(lines) => relay(Some(lines), None),
            Err(e) => reply(e.msg(), origin(route.upstream)),
        };
    }
    if up.status == 429 {
        return upstream_error(route, limit(429, up.body), "", false);
    }
    if is_redirect(up.status) && !up.location.is_empty() {
        // Relative to the URL that answered, which for a passed redirect is
        // the first one: under the route's upstream.
        let loc = match resolve(route.upstream, up.location) {
            Ok(loc) => loc,
            Err(e) => return reply(e.msg(), origin(route.upstream)),
        };
        let location = match loc.strip_prefix(route.upstream).zip(split_url(&loc)) {
            Some((rest, (_, _, path, query))) if rest.starts_with("/v2/") => back_to_mirror(route, base, path, query, ns, prefixed),
            _ => None,
        };
        return relay(None, Some(location.unwrap_or(loc)));
    }
    relay(None, None)
}

/// The last upstream response for the client, with its challenges or its
/// Location replaced when given.
pub(crate) fn relay(challenges: Option<String>, location: Option<String>) -> Action {
    Action::Relay { challenges, location, error: None, source: None, held: false }
}

/// A redirect to the upstream's own registry API, as a mirror URL with the
/// client's name (and `ns` when the client used it).
fn back_to_mirror(route: &Route, base: &Base<'_>, path: &str, query: &str, ns: Option<&str>, prefixed: bool) -> Option<String> {
    let Ok(Endpoint::Repo { name, rest, .. }) = classify(path) else { return None };
    let mut out = String::with_capacity(base.authority.host.len() + path.len() + query.len() + 48);
    base.write(&mut out);
    out.push_str("/v2/");
    if !client_name(route, name, prefixed, &mut out) {
        return None;
    }
    out.push_str(rest);
    let mut sep = b'?';
    if !query.is_empty() {
        out.put(b'?');
        out.push_str(query);
        sep = b'&';
    }
    if let Some(ns) = ns.filter(|_| query_param(query, "ns").is_none()) {
        out.put(sep);
        out.push_str("ns=");
        out.push_str(ns);
    }
    Some(out)
}

/// The scope of an upstream challenge in the client's names.
fn map_scope(route: &Route, value: &str, prefixed: bool, out: &mut String) {
    for (i, item) in crate::split(value, b' ').enumerate() {
        if i > 0 {
            out.put(b' ');
        }
        let b = item.as_bytes();
        let first = b.iter().position(|&c| c == b':');
        let last = b.iter().rposition(|&c| c == b':');
        if let (Some(f), Some(l)) = (first, last) {
            let (kind, name, tail) = (item.get(..=f).unwrap_or(""), item.get(f + 1..l).unwrap_or(""), item.get(l..).unwrap_or(""));
            if kind.starts_with("repository") && f < l {
                let mark = out.len();
                out.push_str(kind);
                if client_name(route, name, prefixed, out) {
                    out.push_str(tail);
                    continue;
                }
                out.truncate(mark);
            }
        }
        out.push_str(item);
    }
}

/// `/token` and `/token/<registry>`: GET, or the OAuth2 form POST (read
/// first). The route is the one the path names, or on a shared host the one
/// the scopes' repositories lead to. Straight to the table's realm, or to the
/// realm the upstream's `/v2/` challenge names.
#[inline(never)]
fn token(req: &Request<'_>, up: Option<&Upstream<'_>>, host: &str, registry: Option<&str>, query: &str, seen: &mut Seen) -> Action {
    let form = match req.method {
        "GET" => None,
        "POST" => match req.body {
            None => return Action::ReadBody,
            Some(b) if b.len() > MAX_FORM => return reply(Msg::FormTooLarge, ""),
            Some(b) => Some(b),
        },
        _ => return not_allowed("GET, POST", Msg::TokenMethod),
    };
    // The first scope's repository routes the request on a shared host, and
    // names it in the log line.
    seen.repository = first_repository(form.unwrap_or(query)).unwrap_or_default();
    let (i, by_scope) = match registry {
        Some(name) => match by_registry(name) {
            Some(r) => (r, false),
            None => return reply(Msg::TokenRegistry, name),
        },
        None => match Some(seen.repository.as_str()).filter(|n| !n.is_empty()).and_then(|n| by_name(host, n).map(|(r, _)| r)) {
            Some(r) => (r, true),
            None => match by_host(host) {
                Some(r) => (r, false),
                None => return reply(Msg::HostNoRoute, host),
            },
        },
    };
    let Some(route) = routes::get(i) else { return reply(Msg::HostNoRoute, host) };
    seen.route = route.name;
    if let Some(up) = up.filter(|u| u.status == 0 || u.phase == Some(Phase::Token)) {
        return match up.status {
            // A failed fetch always comes back, whatever `resume` said.
            0 => failed(route.realm.unwrap_or(route.upstream), up),
            429 => upstream_error(&route, limit(429, up.body), "", false),
            _ => relay(None, None),
        };
    }
    // The route's credentials, for a client that brings none.
    let secret = match credentials(&route, req) {
        Ok(s) => s && !req.authorization,
        Err(a) if !req.authorization => return a,
        Err(_) => false,
    };
    let scope_host = by_scope.then_some(host);
    let realm = match (route.realm, up) {
        (Some(r), _) => r.to_string(),
        (None, None) => {
            let mut ping = String::with_capacity(route.upstream.len() + 4);
            ping.push_str(route.upstream);
            ping.push_str("/v2/");
            return Action::Fetch(Fetch { url: ping, client_headers: false, resume: RESUME_ALL, ..Fetch::new(Phase::Discover) });
        }
        (None, Some(up)) => {
            let found = challenge::bearer_realm(up.www_authenticate);
            let Some(realm) = found.filter(|_| up.status == 401) else {
                return reply(Msg::NoTokenAuth, route.upstream);
            };
            match crate::location::discovered_realm(route.upstream, &realm, secret) {
                Ok(r) => r,
                Err(m) => return reply(m, origin(route.upstream)),
            }
        }
    };
    let mut url = realm;
    let mut params = String::with_capacity(query.len() + 32);
    let mut found = match rewrite_token_params(query, &route, scope_host, &mut params) {
        Ok(f) => f,
        Err(e) => return reply(e.msg(), ""),
    };
    if !params.is_empty() {
        url.put(if crate::has(&url, b'?') { b'&' } else { b'?' });
        url.push_str(&params);
    }
    let mut body = None;
    if let Some(form) = form {
        let mut rewritten = String::with_capacity(form.len() + 64);
        match rewrite_token_params(form, &route, scope_host, &mut rewritten) {
            Ok(f) => {
                found.kept += f.kept;
                found.denied = found.denied.or(f.denied);
            }
            Err(e) => return reply(e.msg(), ""),
        }
        body = Some(rewritten);
    }
    if let (0, Some(name)) = (found.kept, &found.denied) {
        return reply(Msg::Denied, name);
    }
    Action::Fetch(Fetch {
        url,
        // A form that names its user keeps it.
        credentials: secret && form.is_none_or(|f| query_param(f, "username").is_none()),
        form: body,
        ..Fetch::new(Phase::Token)
    })
}
