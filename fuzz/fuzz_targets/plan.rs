//! The planner, over any method, URL and header facts: it answers locally
//! with a 4xx (or the browser page), or it forwards to a URL under one of the
//! compiled upstreams, or hands a token request to a compiled route. Never
//! anything else, never a panic.
#![no_main]
use edge_mirror::plan::{plan, Body, Incoming, Plan};
use edge_mirror::routes::ROUTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    let (method, url) = s.split_once(' ').unwrap_or(("GET", s));
    let req = Incoming { method, url, authorization: flags & 1 != 0, accept_html: flags & 2 != 0 };
    match plan(&req) {
        Plan::Reply(r) => match r.body {
            Body::Html(_) => assert_eq!(r.status, 200),
            Body::Json(j) => {
                assert!((400..500).contains(&r.status), "{} for {s:?}", r.status);
                assert!(j.starts_with("{\"errors\":[{\"code\":\""));
                if let Some(c) = r.challenge {
                    assert!(!c.contains(['\r', '\n']));
                }
            }
        },
        Plan::Forward(f) => {
            assert!(ROUTES.iter().any(|r| std::ptr::eq(r, f.route)));
            let rest = f.url.strip_prefix(f.route.upstream).expect("under the upstream");
            assert!(rest.starts_with("/v2/"), "{}", f.url);
            assert!(!f.url.contains(['\r', '\n', ' ', '#']));
            assert!(f.realm.ends_with("/token") && !f.realm.contains(['"', '\\', ',', '\r', '\n']));
        }
        Plan::Token(t) => assert!(ROUTES.iter().any(|r| std::ptr::eq(r, t.route))),
    }
});
