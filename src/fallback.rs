//! Fallback sources: the same content from another route when a route's
//! upstream throttles or fails.
//!
//! A route's `fallback` names other routes of the table. When the route's
//! upstream answers a manifest or blob request (GET or HEAD) with 429, 502,
//! 503 or 504, cannot be reached, or sends no headers in time, the planner
//! asks each fallback in turn for the same method, reference and content
//! headers, with the name mapped by the fallback route's own settings
//! (`library`, `repository`, `allow`: a fallback whose allow list does not
//! serve the name is skipped). Nothing else goes there: not the client's
//! Authorization (the entry leaves it out, `Fetch::anonymous`), nor cookies
//! or other headers beyond the allow-list, nor the first route's
//! credentials. A fallback that challenges gets the mirror's own token
//! request: pull-only, for that one repository, to the fallback route's
//! `realm` or else the realm its challenge names, anonymous or with the
//! fallback route's own `credentials`; the token is read from the JSON by
//! hand, and the request is sent once more with it. Every other request,
//! and every answer the upstream gives besides those, takes the path it
//! always took, without a subrequest or a step more.
//!
//! The first success (2xx, 206, 304) is the client's answer, with an
//! `X-Mirror-Source` header naming the fallback and why it was asked; a
//! manifest asked for by digest is served only when its
//! `Docker-Content-Digest` is that digest. When no fallback has it, the
//! client gets the route's own answer (its 429 with `Retry-After` and body),
//! after a message that says what each fallback answered.
//!
//! The planner keeps nothing between calls, so what the request has been
//! through rides in the fetch's `trail`, which the entry hands back with
//! the answer: `PRIMARY.MSG.TRIED`, where PRIMARY is the route's own
//! `outcome`, MSG the message the client gets if no fallback has the
//! content (chosen from the route's own answer, which the entry keeps: the
//! fetch that starts the fallbacks says `hold`) and TRIED what each fallback
//! before the one being asked came to, in the route's order, each followed
//! by `,` (empty for one whose allow list does not serve the name), so the
//! number of commas is the position of the one being asked. An outcome is a
//! status, or `UNREACHABLE`,
//! `TIMED_OUT`, `REDIRECT_LOOP` (`crate::action`), [`OTHER_DIGEST`], [`NO_SECRET`],
//! [`NO_TOKEN`], or a token request's status plus [`TOKEN`].
//!
//! Cost: nothing until the route's upstream fails; then up to three
//! subrequests per fallback asked (the request, a token, the request again),
//! and the redirects the runtime follows. One level only: a fallback's own
//! fallbacks are not asked.

use crate::messages::Msg;
use crate::action::{
    credentials, failure, limit, outcome, reply, upstream_error, Action, Ask, Fetch, Phase, Request, Seen, Upstream,
    REDIRECT_LOOP, RESUME_ALL, RESUME_TOKEN, RESUME_ERR, TIMED_OUT, UNREACHABLE,
};
use crate::routes::{self, Route};
use crate::Put;

/// The answer to a manifest by digest carried another digest.
pub const OTHER_DIGEST: u16 = 3;
/// The fallback route's credentials secret is not set, or not `user:token`.
pub const NO_SECRET: u16 = 4;
/// The fallback challenged without a Bearer realm, or its token answer held
/// no token.
pub const NO_TOKEN: u16 = 5;
/// Added to the status of a token request that was refused.
pub const TOKEN: u16 = 1000;

/// How many fallbacks a trail's TRIED has passed (one `,` each).
fn passed(tried: &str) -> usize {
    crate::split(tried, b',').count() - 1
}

/// Continues a request of `ask` with the upstream's answer `up`, when that
/// answer is one to ask a fallback about or a fallback's own; `None` for
/// every other answer, which the caller handles as it always has.
#[inline(never)]
pub(crate) fn answer(ask: &Ask<'_>, req: &Request<'_>, up: &Upstream<'_>, seen: &mut Seen) -> Option<Action> {
    let code = outcome(up);
    let (primary, msg, mut tried);
    if up.phase == Some(Phase::Api) {
        if !matches!(code, UNREACHABLE | TIMED_OUT | REDIRECT_LOOP | 429 | 502..=504) {
            return None;
        }
        primary = code;
        msg = if code >= 429 { limit(code, up.body) } else { failure(code) };
        tried = String::new();
    } else {
        let (p, rest) = crate::split_at_byte(up.trail, b'.')?;
        let (m, t) = crate::split_at_byte(rest, b'.')?;
        primary = crate::number(p) as u16;
        msg = Msg::from_number(crate::number(m) as usize)?;
        let fb = fallback(ask.route, passed(t))?;
        let failed = match (up.phase, up.status) {
            (Some(Phase::FallbackToken), 200..=299) => match token(up.body) {
                Some(t) => {
                    let mut bearer = String::with_capacity(t.len() + 8);
                    bearer.push_str("Bearer ");
                    bearer.push_str(t);
                    return Some(attempt(ask, &fb, up.trail.to_string(), primary, Phase::FallbackRetry, Some(bearer), false, seen));
                }
                None => NO_TOKEN,
            },
            (Some(Phase::FallbackToken), 1..) => TOKEN + up.status,
            (Some(Phase::Fallback), 401) => match token_request(ask, req, up, &fb) {
                Ok(action) => return Some(action),
                Err(code) => code,
            },
            // Back only for a manifest by digest: it must be that digest.
            (_, 200..=299) if by_digest(ask).is_some_and(|d| d != up.digest) => OTHER_DIGEST,
            (_, 200..=399) => {
                seen.source = fb.registry;
                let source = Some(source(ask, &fb, primary));
                return Some(Action::Relay { challenges: None, location: None, error: None, source, held: false });
            }
            _ => code,
        };
        tried = String::with_capacity(t.len() + 8);
        tried.push_str(t);
        crate::push_number(&mut tried, usize::from(failed));
        tried.put(b',');
    }
    // The next fallback that serves the name (one skipped leaves an empty
    // entry). The first keeps the route's own answer for the end.
    while let Some(fb) = fallback(ask.route, passed(&tried)) {
        if crate::names::allowed(&fb, ask.name) {
            let mut trail = String::with_capacity(tried.len() + 8);
            crate::push_number(&mut trail, usize::from(primary));
            trail.put(b'.');
            crate::push_number(&mut trail, msg as usize);
            trail.put(b'.');
            trail.push_str(&tried);
            return Some(attempt(ask, &fb, trail, primary, Phase::Fallback, None, up.phase == Some(Phase::Api), seen));
        }
        tried.put(b',');
    }
    // None left: the route's own answer, saying what each fallback said.
    let mut say = String::new();
    for (pos, failed) in crate::split(&tried, b',').enumerate().filter(|(_, f)| !f.is_empty()) {
        say.push_str(if say.is_empty() { "; fallbacks tried: " } else { ", " });
        say.push_str(fallback(ask.route, pos).map_or("", |r| r.registry));
        say.put(b' ');
        describe(crate::number(failed) as u16, &mut say);
    }
    if primary >= 429 {
        // Relayed with its status and headers: the response a fallback
        // fetch kept, or the last one when no fallback was asked.
        return Some(upstream_error(ask.route, msg, &say, up.phase != Some(Phase::Api)));
    }
    let mut subject = String::with_capacity(ask.route.upstream.len() + say.len());
    subject.push_str(crate::location::origin(ask.route.upstream));
    subject.push_str(&say);
    Some(reply(msg, &subject))
}

/// The fallback at `pos` of the route's list.
fn fallback(route: &Route, pos: usize) -> Option<Route> {
    route.fallback.get(pos).and_then(|&i| routes::get(usize::from(i)))
}

/// The digest a manifest request asks for, if it asks by digest.
fn by_digest<'a>(ask: &Ask<'a>) -> Option<&'a str> {
    ask.rest.strip_prefix("/manifests/").filter(|r| crate::has(r, b':'))
}

/// What an outcome was, in words.
fn describe(code: u16, out: &mut String) {
    let (words, status) = match code {
        UNREACHABLE => ("unreachable", 0),
        TIMED_OUT => ("timed out", 0),
        REDIRECT_LOOP => ("redirect loop", 0),
        OTHER_DIGEST => ("another digest", 0),
        NO_SECRET => ("credentials secret unset", 0),
        NO_TOKEN => ("no token", 0),
        TOKEN.. => ("token ", code - TOKEN),
        _ => ("", code),
    };
    out.push_str(words);
    if status != 0 {
        crate::push_number(out, usize::from(status));
    }
}

/// `X-Mirror-Source`: the fallback, and why it was asked.
fn source(ask: &Ask<'_>, fb: &Route, primary: u16) -> String {
    let mut out = String::with_capacity(96);
    out.push_str(fb.registry);
    out.push_str(" (fallback: ");
    out.push_str(ask.route.registry);
    out.put(b' ');
    describe(primary, &mut out);
    out.put(b')');
    out
}

/// The request to fallback `fb`: the client's method, reference and
/// allow-listed headers without its Authorization (`authorization`: the
/// mirror's token for the retry). Back on any error, and on success too
/// for a manifest by digest (to check the digest).
#[allow(clippy::too_many_arguments)]
fn attempt(ask: &Ask<'_>, fb: &Route, trail: String, primary: u16, phase: Phase, authorization: Option<String>, hold: bool, seen: &mut Seen) -> Action {
    let mut url = String::with_capacity(fb.upstream.len() + ask.name.len() + ask.rest.len() + 24);
    url.push_str(fb.upstream);
    url.push_str("/v2/");
    crate::names::upstream_name(fb, ask.name, &mut url);
    url.push_str(ask.rest);
    seen.source = fb.registry;
    Action::Fetch(Fetch {
        head: ask.head,
        url,
        authorization,
        resume: RESUME_ERR | if by_digest(ask).is_some() { RESUME_ALL } else { 0 },
        trail,
        anonymous: true,
        hold,
        source: Some(source(ask, fb, primary)),
        ..Fetch::new(phase)
    })
}

/// The mirror's own token request for a fallback that challenged: to the
/// fallback route's realm or else the Bearer realm of its challenge (relative
/// to its `/v2/`, as `discovered_realm` allows it), for pulling that one repository, with the challenge's
/// service (or the route's), anonymous or with the fallback route's own
/// credentials. Nothing of the client's goes with it.
#[inline(never)]
fn token_request(ask: &Ask<'_>, req: &Request<'_>, up: &Upstream<'_>, fb: &Route) -> Result<Action, u16> {
    let bearer = |name| crate::challenge::bearer_param(up.www_authenticate, name);
    let basic = match credentials(fb, req) {
        Ok(basic) => basic,
        Err(read @ Action::ReadSecret(_)) => return Ok(read),
        Err(_) => return Err(NO_SECRET),
    };
    // The realm the challenge names only as `discovered_realm` allows (the
    // fallback route's secret only on its upstream's domain).
    let realm = match fb.realm {
        Some(r) => r.to_string(),
        None => bearer("realm").and_then(|r| crate::location::discovered_realm(fb.upstream, &r, basic).ok()).ok_or(NO_TOKEN)?,
    };
    let mut url = realm;
    url.put(if crate::has(&url, b'?') { b'&' } else { b'?' });
    url.push_str("scope=repository:");
    crate::names::upstream_name(fb, ask.name, &mut url);
    url.push_str(":pull");
    let service = bearer("service");
    if let Some(service) = service.as_deref().or(fb.service) {
        url.push_str("&service=");
        crate::scope::percent_encode(service, &mut url);
    }
    Ok(Action::Fetch(Fetch {
        url,
        client_headers: false,
        credentials: basic,
        resume: RESUME_ALL | RESUME_TOKEN,
        trail: up.trail.to_string(),
        ..Fetch::new(Phase::FallbackToken)
    }))
}

/// The token the entry read from a token endpoint's JSON answer
/// ([`RESUME_TOKEN`]: its string member `token`, or `access_token`), when
/// it is one a header can carry: a JWT or token68 string, with no space,
/// control byte, quote, backslash or non-ASCII byte.
pub fn token(t: &str) -> Option<&str> {
    (!t.is_empty() && t.bytes().all(|x| x > b' ' && x < 0x7f && x != b'\\' && x != b'"')).then_some(t)
}
