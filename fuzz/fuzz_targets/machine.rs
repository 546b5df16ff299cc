//! The request state machine, driven through its transitions at the wire
//! level (the bytes src/edge.js exchanges with it, built as the entry builds
//! them): a request, then upstream answers chosen by the fuzzer for every
//! fetch it plans, over the shipped table (Docker Hub's route has fallbacks).
//!
//! Properties, at every step:
//! - every fetched URL's origin is a compiled upstream, realm or search
//!   index (docker search: anonymous, never the client's Authorization), or a realm
//!   an upstream's own challenge named: during discovery (the route's) or to
//!   a fallback asked for a manifest or blob (that fallback's);
//! - the client's Authorization is planned only for a route's own upstream
//!   (API requests) and its realm (token requests): never for a fallback,
//!   its token request or a discovery request, which carry no Authorization
//!   of the client's; the mirror's own Authorization on a fallback is only
//!   the token that fallback's realm gave; a secret is presented (the
//!   CREDENTIALS bit) only on a token request;
//! - no action depends on the secret's value (the same step with another
//!   secret of the same form gives the same bytes), so none carries it;
//! - local answers are 4xx (or the page), 5xx only after an upstream answer;
//! - relayed challenges carry only the mirror's realm; a relayed Location is
//!   absolute http(s).
//!
//! Input: a flags byte, then NUL-separated fields: method, URL, body, then
//! (status, WWW-Authenticate, third, upstream body) per upstream answer.
#![no_main]
use edge_mirror::challenge::{bearer_realm, parse};
use edge_mirror::location::{origin, resolve};
use edge_mirror::messages::Msg;
use edge_mirror::routes::routes;
use edge_mirror::wire::{self, step, Input, ANONYMOUS, CLIENT_HEADERS, CREDENTIALS};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "canary-user:canary-secret-9f31";
const OTHER_SECRET: &str = "someone:else-entirely";

/// The input's fields, owned (the fuzzer's strings), as the entry keeps them.
#[derive(Default)]
struct In {
    flags: u8,
    method: u8,
    phase: u8,
    status: u16,
    fields: [String; 7],
}

impl In {
    fn bytes(&self) -> Vec<u8> {
        let f = &self.fields;
        Input {
            flags: self.flags,
            method: self.method,
            phase: self.phase,
            status: self.status,
            url: &f[0],
            trail: &f[1],
            challenge: &f[2],
            third: &f[3],
            secret: &f[4],
            upstream: &f[5],
            body: &f[6],
        }
        .bytes()
    }
}

struct Out {
    op: u8,
    arg: u8,
    num: u16,
    fields: Vec<String>,
}

fn decode(b: &[u8]) -> Out {
    let d = wire::decode(b).expect("an action whose fields end where it does");
    Out { op: d.op, arg: d.arg, num: d.num, fields: d.fields.iter().map(|x| x.to_string()).collect() }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    let mut f = s.split('\0');
    let method = match f.next().unwrap_or("GET") {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        _ => 3,
    };
    let mut input = In { flags: flags & 3, method, ..In::default() };
    input.fields[0] = f.next().unwrap_or("").to_string();
    let body = f.next().unwrap_or("").to_string();
    let mut allowed: Vec<String> = routes()
        .flat_map(|r| [Some(r.upstream), r.realm, r.search])
        .flatten()
        .map(|u| origin(u).to_ascii_lowercase())
        .collect();
    let upstreams: Vec<String> = routes().map(|r| origin(r.upstream).to_ascii_lowercase()).collect();
    let realms: Vec<String> = routes().filter_map(|r| r.realm).map(|u| origin(u).to_ascii_lowercase()).collect();
    let mut discovered: Option<String> = None;
    let mut fallback_realms: Vec<String> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut answered = false;
    let mut out = run(&mut input);
    for _ in 0..12 {
        match out.op {
            b'A' => {
                let msg = Msg::from_number(usize::from(out.arg)).expect("a message of the table");
                let status = msg.status();
                // 503: a route's credentials secret is not set or not user:token.
                let ok = (400..500).contains(&status) || status == 503 || (answered && matches!(status, 502 | 504));
                assert!(ok, "{status} for {:?}", input.fields[0]);
                assert_eq!(out.fields.len(), 5);
                return;
            }
            b'P' => return,
            b'B' => {
                input.flags |= 4;
                input.fields[6] = body.clone();
            }
            b'E' => {
                // Set (the canary) or not, as the fuzzer's flags say.
                input.flags = input.flags & !24 | if flags & 8 != 0 { 24 } else { 8 };
                input.fields[4] = if flags & 8 != 0 { SECRET.to_string() } else { String::new() };
            }
            b'F' => {
                let bits = out.num;
                let phase = out.arg;
                let target = &out.fields[0];
                let authorization = &out.fields[1];
                let o = origin(target).to_ascii_lowercase();
                assert!(allowed.contains(&o), "fetch outside the table: {target}");
                if bits & CLIENT_HEADERS != 0 && bits & ANONYMOUS == 0 {
                    // The client's Authorization goes only to its route's upstream or realm.
                    let own = match phase {
                        b'a' => upstreams.contains(&o),
                        b't' => realms.contains(&o) || discovered.as_deref() == Some(o.as_str()),
                        _ => false,
                    };
                    assert!(own, "the client's headers planned for {target} in phase {}", char::from(phase));
                }
                match phase {
                    b'f' | b'r' | b'k' | b'd' => assert!(bits & CLIENT_HEADERS == 0 || bits & ANONYMOUS != 0, "client Authorization on {target}"),
                    _ => {}
                }
                match phase {
                    b'r' => assert!(tokens.iter().any(|t| *authorization == format!("Bearer {t}")), "{authorization:?}"),
                    b'f' | b'k' | b'd' => assert!(authorization.is_empty(), "{authorization:?} on {target}"),
                    _ => {}
                }
                if bits & CREDENTIALS != 0 {
                    assert!(matches!(phase, b't' | b'k'), "credentials on {target} in phase {}", char::from(phase));
                    if phase == b'k' {
                        assert!(fallback_realms.contains(&o) || realms.contains(&o), "fallback credentials to {target}");
                    }
                }
                // The fuzzer answers.
                let status: u16 = f.next().and_then(|s| s.trim().parse().ok()).unwrap_or(0) % 600;
                let wa = f.next().unwrap_or("").to_string();
                let third = f.next().unwrap_or("").to_string();
                let upstream = f.next().unwrap_or("").to_string();
                answered = true;
                let resume = (bits >> 2) & 0xff;
                let again = status == 0
                    || resume & 4 != 0
                    || (resume & 1 != 0 && status == 401)
                    || (resume & 2 != 0 && (300..400).contains(&status))
                    || (resume & 16 != 0 && status == 429)
                    || (resume & 32 != 0 && (502..=504).contains(&status))
                    || (resume & 64 != 0 && status >= 400);
                if !again {
                    return;
                }
                // Realms an upstream named: for discovery, and for a fallback's token.
                if let Some(realm) = bearer_realm(&wa) {
                    let base = format!("{}/v2/", origin(target));
                    if let Ok(r) = resolve(&base, &realm) {
                        let r = origin(&r).to_ascii_lowercase();
                        match phase {
                            b'd' => {
                                allowed.push(r.clone());
                                discovered = Some(r);
                            }
                            b'f' => {
                                allowed.push(r.clone());
                                fallback_realms.push(r);
                            }
                            _ => {}
                        }
                    }
                }
                if phase == b'k' {
                    if let Some(t) = edge_mirror::fallback::token(&upstream) {
                        tokens.push(t.to_string());
                    }
                }
                input.phase = phase;
                input.status = status;
                input.fields[1] = out.fields[5].clone();
                input.fields[2] = if status == 401 { wa } else { String::new() };
                input.fields[3] = third;
                input.fields[5] = upstream;
                // The secret goes to the calls before a fetch only.
                input.flags &= !24;
                input.fields[4].clear();
            }
            b'R' | b'H' => {
                let location = &out.fields[0];
                assert!(location.is_empty() || location.starts_with("http://") || location.starts_with("https://"), "{location:?}");
                for ch in out.fields[4].split('\n').filter(|c| !c.is_empty()) {
                    let list = parse(ch).expect("a relayed challenge parses");
                    for c in list.iter().filter(|c| c.is_bearer()) {
                        let realm = c.param("realm").expect("bearer realm");
                        // The mirror's own token endpoint: /token, or /token/<registry> of a route.
                        let (_, rest) = realm.split_once("://").expect("absolute realm");
                        let path = &rest[rest.find('/').expect("a path")..];
                        let ok = path == "/token" || routes().any(|r| path == format!("/token/{}", r.registry));
                        assert!(ok && (realm.starts_with("http://") || realm.starts_with("https://")), "{realm}");
                    }
                }
                if out.arg != 255 {
                    assert!(Msg::from_number(usize::from(out.arg)).is_some());
                }
                return;
            }
            other => panic!("unknown action {other}"),
        }
        out = run(&mut input);
    }
});

/// One step; with a secret in the input, the same step with another secret
/// of the same form must give the same bytes: no action depends on (so none
/// can carry) the secret's value.
fn run(input: &mut In) -> Out {
    let bytes = step(&input.bytes(), "");
    if input.flags & 24 == 24 {
        let mine = std::mem::replace(&mut input.fields[4], OTHER_SECRET.to_string());
        assert_eq!(step(&input.bytes(), ""), bytes, "an action depends on the secret's value");
        input.fields[4] = mine;
    }
    decode(&bytes)
}
