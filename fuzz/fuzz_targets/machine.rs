//! The request state machine, driven through its transitions at the wire
//! level (the text src/edge.js exchanges with it): a request, then upstream
//! answers chosen by the fuzzer for every fetch it plans.
//!
//! Properties, at every step:
//! - every fetched URL's origin is a compiled upstream or realm, or the realm
//!   an upstream's own challenge named during discovery;
//! - the client's headers (Authorization among them) are planned only for a
//!   route's upstream (API requests), a route's realm or that discovered
//!   realm (token requests), never for the discovery request itself;
//! - local answers are 4xx (or the page), 5xx only after an upstream answer;
//! - relayed challenges carry only the mirror's realm; a relayed Location is
//!   absolute http(s).
//!
//! Input: a flags byte, then NUL-separated fields: method, URL, body, and
//! (status, WWW-Authenticate, Location) per upstream answer.
#![no_main]
use edge_mirror::challenge::{bearer_realm, parse};
use edge_mirror::location::{origin, resolve};
use edge_mirror::routes::routes;
use edge_mirror::wire::step;
use libfuzzer_sys::fuzz_target;

fn line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    let mut f = s.split('\0');
    let method = line(f.next().unwrap_or("GET"));
    let url = line(f.next().unwrap_or(""));
    let body = f.next().unwrap_or("").to_string();
    let base = format!("{}\n{method}\n{url}\n", flags % 4);
    let mut allowed: Vec<String> = routes()
        .flat_map(|r| [Some(r.upstream), r.realm])
        .flatten()
        .map(|u| origin(u).to_ascii_lowercase())
        .collect();
    let mut tail = String::new();
    let mut secret = String::new();
    let mut out = step(&format!("{base}\n\n\n\n"), "");
    let mut answered = false;
    let mut discovered: Option<String> = None;
    for _ in 0..8 {
        let mut parts = out.split('\n');
        let head = parts.next().unwrap_or("");
        match head.as_bytes().first() {
            Some(b'A') => {
                let status: u16 = head[1..].parse().expect("status");
                // 503: a route's credentials secret is not set (the fuzzer never sets one).
                let ok = (400..500).contains(&status) || status == 503 || (answered && matches!(status, 502 | 504));
                assert!(ok, "{status} for {base:?} {out:?}");
                let body = parts.nth(4).unwrap_or("");
                assert!(body.starts_with("{\"errors\":[{\"code\":\""), "{out:?}");
                return;
            }
            Some(b'P') => return,
            Some(b'B') => {
                tail = format!("\n{body}");
                out = step(&format!("{base}\n\n\n{secret}\n{tail}"), "");
            }
            Some(b'E') => {
                secret = "-".to_string();
                out = step(&format!("{base}\n\n\n{secret}\n{tail}"), "");
            }
            Some(b'F') => {
                let bits: u32 = head[1..].parse().expect("bits");
                let phase = parts.next().unwrap_or("");
                let _method = parts.next();
                let target = parts.next().unwrap_or("");
                let authorization = parts.next().unwrap_or("");
                let o = origin(target).to_ascii_lowercase();
                assert!(allowed.contains(&o), "fetch outside the table: {target} for {base:?}");
                if bits & 1 != 0 || !authorization.is_empty() {
                    let own = match phase {
                        "a" => routes().any(|r| origin(r.upstream).eq_ignore_ascii_case(&o)),
                        "t" => routes().any(|r| r.realm.is_some_and(|x| origin(x).eq_ignore_ascii_case(&o))) || discovered.as_deref() == Some(o.as_str()),
                        _ => false,
                    };
                    assert!(own, "credentials planned for {target} in phase {phase:?}");
                }
                // The fuzzer answers.
                let status: u16 = f.next().and_then(|s| s.trim().parse().ok()).unwrap_or(0) % 600;
                let wa = line(f.next().unwrap_or(""));
                let loc = line(f.next().unwrap_or(""));
                answered = true;
                let resume = (bits >> 2) & 7;
                let again = status == 0 || resume & 4 != 0 || (resume & 1 != 0 && status == 401) || (resume & 2 != 0 && (300..400).contains(&status));
                if !again {
                    return;
                }
                if phase == "d" {
                    if let Some(realm) = bearer_realm(&wa) {
                        let upstream = origin(target).to_string();
                        if let Ok(r) = resolve(&format!("{upstream}/v2/"), &realm) {
                            allowed.push(origin(&r).to_ascii_lowercase());
                            discovered = Some(origin(&r).to_ascii_lowercase());
                        }
                    }
                }
                let err = if status == 0 { "Error%3A%20x" } else { "" };
                let third = if status == 0 { err.to_string() } else { loc };
                out = step(&format!("{base}{phase}{status}\n{wa}\n{third}\n{secret}\nslow%20down{tail}"), "");
            }
            Some(b'R') => {
                let location = &head[1..];
                let _log = parts.next();
                let _body = parts.next();
                assert!(location.is_empty() || location.starts_with("http://") || location.starts_with("https://"), "{location:?}");
                for ch in parts {
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
                return;
            }
            _ => panic!("unknown action {out:?}"),
        }
    }
});
