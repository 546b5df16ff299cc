//! The compiled table as the planner reads it, whatever its bytes: reading
//! it never panics and never reads outside it; a table it accepts has a
//! route, each route reads back, and the requests the planner plans on it
//! fetch only from that table's upstreams and realms (or, for a damaged
//! table's empty upstream, a relative URL no runtime fetches); a table it refuses
//! leaves every request answered 500, with nothing fetched.
#![no_main]
use edge_mirror::messages::Msg;
use edge_mirror::plan::{step, Action, Request};
use edge_mirror::routes::{install, routes};
use libfuzzer_sys::fuzz_target;

const URLS: &[&str] = &[
    "https://mirror.example.com/v2/",
    "https://mirror.example.com/v2/library/busybox/manifests/latest",
    "https://x.workers.dev/v2/ghcr.io/o/i/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "https://a.test/token?scope=repository:a/b:pull&service=x",
    "https://a.test/v2/x/y/tags/list?ns=a.test",
];

fuzz_target!(|data: &[u8]| {
    let loaded = install(data);
    let all: Vec<_> = routes().collect();
    assert_eq!(loaded, !all.is_empty());
    let mut origins = Vec::new();
    for r in &all {
        for h in r.hosts {
            let _ = h.is("a.test");
        }
        for p in r.allow {
            let _ = p.get();
        }
        for &f in r.fallback {
            let _ = edge_mirror::routes::get(usize::from(f));
        }
        origins.push(r.upstream);
        origins.extend(r.realm);
    }
    let _ = edge_mirror::routes::default_route();
    for url in URLS {
        for method in ["GET", "HEAD"] {
            let a = step(&Request { authorization: true, ..Request::new(method, url) }, None);
            match a {
                Action::Fetch(f) => {
                    assert!(loaded);
                    // A damaged table's empty upstream gives a relative URL,
                    // which the runtime refuses to fetch: no host either way.
                    let own = origins.iter().any(|o| !o.is_empty() && f.url.starts_with(o));
                    assert!(own || f.url.starts_with("/v2/"), "{} is no route's", f.url);
                }
                Action::Reply(r) if !loaded => assert_eq!(r.msg, Msg::TableUnusable),
                other => assert!(loaded, "{other:?}"),
            }
        }
    }
});
