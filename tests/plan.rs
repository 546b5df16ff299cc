//! The planner over the shipped route table: what each request becomes.
//! Built with the default `routes.toml` (the test script does not set ROUTES
//! for the native tests).

use edge_mirror::plan::{plan, split_url, Body, Incoming, Plan, MAX_URL};
use edge_mirror::routes::{lookup, ROUTES};

fn req(method: &'static str, url: &str) -> Plan {
    plan(&Incoming { method, url, authorization: false, accept_html: false })
}

fn forwarded(p: &Plan) -> (&str, &str, bool) {
    match p {
        Plan::Forward(f) => (f.url.as_str(), f.realm.as_str(), f.head),
        other => panic!("expected a forward, got {other:?}"),
    }
}

/// (status, OCI code) of a local answer.
fn answered(p: &Plan) -> (u16, String) {
    match p {
        Plan::Reply(r) => {
            let code = match &r.body {
                Body::Json(j) => j.split('"').nth(5).unwrap_or("").to_string(),
                Body::Html(_) => "html".to_string(),
            };
            (r.status, code)
        }
        other => panic!("expected a local answer, got {other:?}"),
    }
}

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn forwards_with_library_query_and_method_kept() {
    let h = "https://docker.mirror.example.com";
    let cases: Vec<(&'static str, String, String, bool)> = vec![
        ("GET", format!("{h}/v2/busybox/manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest".into(), false),
        ("HEAD", format!("{h}/v2/busybox/manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest".into(), true),
        ("GET", format!("{h}/v2/library/busybox/blobs/{D}"), format!("https://registry-1.docker.io/v2/library/busybox/blobs/{D}"), false),
        ("GET", format!("{h}/v2/user/app/tags/list?n=10&last=b"), "https://registry-1.docker.io/v2/user/app/tags/list?n=10&last=b".into(), false),
        ("GET", format!("{h}/v2/nginx/manifests/1.25?ns=docker.io"), "https://registry-1.docker.io/v2/library/nginx/manifests/1.25?ns=docker.io".into(), false),
        ("GET", format!("{h}/v2/_catalog?n=5"), "https://registry-1.docker.io/v2/_catalog?n=5".into(), false),
        ("GET", format!("{h}/v2/busybox/referrers/{D}?artifactType=x"), format!("https://registry-1.docker.io/v2/library/busybox/referrers/{D}?artifactType=x"), false),
        // ghcr: no library rule; upper-case host and trailing dot still route.
        ("GET", "https://GHCR.mirror.example.com./v2/owner/image/manifests/v1".into(), "https://ghcr.io/v2/owner/image/manifests/v1".into(), false),
        ("GET", "https://ghcr.mirror.example.com/v2/busybox/manifests/v1".into(), "https://ghcr.io/v2/busybox/manifests/v1".into(), false),
        // A query naming another registry changes nothing about the host.
        ("GET", "https://quay.mirror.example.com/v2/a/b/manifests/x?ns=evil.example&host=evil.example".into(), "https://quay.io/v2/a/b/manifests/x?ns=evil.example&host=evil.example".into(), false),
        ("GET", format!("{h}/v2/busybox/manifests/latest#frag"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest".into(), false),
    ];
    for (method, url, want, head) in cases {
        let p = req(method, &url);
        let (got, _, got_head) = forwarded(&p);
        assert_eq!(got, want, "{method} {url}");
        assert_eq!(got_head, head, "{method} {url}");
    }
}

#[test]
fn realm_is_built_from_the_checked_host() {
    let p = req("GET", "http://Docker.Mirror.Example.COM:8787/v2/busybox/manifests/latest");
    assert_eq!(forwarded(&p).1, "http://docker.mirror.example.com:8787/token");
    let p = req("GET", "https://docker.mirror.example.com./v2/busybox/manifests/latest");
    assert_eq!(forwarded(&p).1, "https://docker.mirror.example.com/token");
}

#[test]
fn ping_is_answered_locally_when_the_realm_is_known() {
    match req("GET", "https://docker.mirror.example.com/v2/") {
        Plan::Reply(r) => {
            assert_eq!(r.status, 401);
            assert_eq!(r.challenge.as_deref(), Some(r#"Bearer realm="https://docker.mirror.example.com/token",service="registry.docker.io""#));
        }
        other => panic!("{other:?}"),
    }
    // With credentials the upstream decides.
    let p = plan(&Incoming { method: "GET", url: "https://docker.mirror.example.com/v2/", authorization: true, accept_html: false });
    assert_eq!(forwarded(&p).0, "https://registry-1.docker.io/v2/");
    // Without a known realm (registry.k8s.io) the ping goes upstream.
    assert_eq!(forwarded(&req("GET", "https://k8s.mirror.example.com/v2/")).0, "https://registry.k8s.io/v2/");
    // `/` from a client answers as /v2/ does; from a browser it is the page.
    assert_eq!(answered(&req("GET", "https://docker.mirror.example.com/")), (401, "UNAUTHORIZED".into()));
    let page = plan(&Incoming { method: "GET", url: "https://docker.mirror.example.com/", authorization: false, accept_html: true });
    match page {
        Plan::Reply(r) => match r.body {
            Body::Html(h) => {
                assert_eq!(r.status, 200);
                assert!(h.contains("<code>docker pull docker.mirror.example.com/busybox</code>"));
                assert!(h.contains("<code>docker pull ghcr.mirror.example.com/OWNER/IMAGE</code>"));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn token_requests_go_to_the_token_plan() {
    match req("GET", "https://docker.mirror.example.com/token?scope=repository:busybox:pull&service=registry.docker.io") {
        Plan::Token(t) => {
            assert_eq!(t.route.name, "docker");
            assert!(!t.post);
            assert_eq!(t.query, "scope=repository:busybox:pull&service=registry.docker.io");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(req("POST", "https://ghcr.mirror.example.com/token"), Plan::Token(t) if t.post && t.route.name == "ghcr"));
    assert_eq!(answered(&req("PUT", "https://ghcr.mirror.example.com/token")), (405, "UNSUPPORTED".into()));
}

#[test]
fn local_errors_have_the_right_status_and_code() {
    let long_url = format!("https://docker.mirror.example.com/v2/a/manifests/latest?{}", "q".repeat(MAX_URL));
    let cases: Vec<(&'static str, String, u16, &str)> = vec![
        ("GET", "https://unknown.example/v2/".into(), 404, "NAME_UNKNOWN"),
        ("GET", "https://mirror.example.com/v2/".into(), 404, "NAME_UNKNOWN"),
        ("GET", "https://evil\".example/v2/".into(), 400, "NAME_INVALID"),
        ("GET", "https://a..b/v2/".into(), 400, "NAME_INVALID"),
        ("GET", "https://docker.mirror.example.com:99999/v2/".into(), 400, "NAME_INVALID"),
        ("GET", "ftp://docker.mirror.example.com/v2/".into(), 400, "UNSUPPORTED"),
        ("GET", "/v2/".into(), 400, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/a/manifests/b?x=1 2".into(), 400, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/a/manifests/b\r\nX: y".into(), 400, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/ä/manifests/b".into(), 400, "UNSUPPORTED"),
        ("GET", long_url, 414, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/../../etc/passwd/manifests/x".into(), 400, "NAME_INVALID"),
        ("GET", "https://docker.mirror.example.com/v2/a%2Fb/manifests/x".into(), 400, "NAME_INVALID"),
        ("GET", "https://docker.mirror.example.com/v2/busybox/manifests/-bad".into(), 400, "TAG_INVALID"),
        ("GET", "https://docker.mirror.example.com/v2/busybox/blobs/sha256:12".into(), 400, "DIGEST_INVALID"),
        ("GET", "https://docker.mirror.example.com/v1/search".into(), 404, "UNSUPPORTED"),
        ("POST", "https://docker.mirror.example.com/v2/busybox/blobs/uploads/".into(), 405, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/busybox/blobs/uploads/abc".into(), 405, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/v2/a/x/blobs/uploads/uuds/%uia/b/mdobs".into(), 405, "UNSUPPORTED"),
        ("PUT", "https://docker.mirror.example.com/v2/busybox/manifests/latest".into(), 405, "UNSUPPORTED"),
        ("DELETE", format!("https://docker.mirror.example.com/v2/busybox/blobs/{D}"), 405, "UNSUPPORTED"),
        ("PATCH", "https://docker.mirror.example.com/v2/".into(), 405, "UNSUPPORTED"),
        ("OPTIONS", "https://docker.mirror.example.com/v2/".into(), 405, "UNSUPPORTED"),
        ("BREW", "https://docker.mirror.example.com/".into(), 405, "UNSUPPORTED"),
    ];
    for (method, url, status, code) in cases {
        assert_eq!(answered(&req(method, &url)), (status, code.to_string()), "{method} {url:.80}");
    }
}

#[test]
fn every_forward_goes_to_a_table_host() {
    // The planner's property over a spread of inputs: a local 4xx, or an
    // upstream URL whose origin is the chosen route's upstream.
    let hosts = ["docker.mirror.example.com", "ghcr.mirror.example.com", "k8s.mirror.example.com", "x.example", "[::1]:1", "a_b"];
    let paths = ["/", "/v2/", "/v2/a/manifests/b", "/v2/a/b/blobs/", "//evil.example/v2/", "/token", "/v2/_catalog", "/@evil.example/"];
    let queries = ["", "?ns=evil.example", "?scope=repository:evil.example/x:pull", "?url=http://evil.example/"];
    for h in hosts {
        for p in paths {
            for q in queries {
                for m in ["GET", "HEAD", "POST"] {
                    let url = format!("https://{h}{p}{q}");
                    match req(m, &url) {
                        Plan::Reply(r) => assert!((400..500).contains(&r.status), "{m} {url}: {}", r.status),
                        Plan::Forward(f) => {
                            let upstream = f.route.upstream;
                            assert!(f.url.starts_with(upstream) && f.url[upstream.len()..].starts_with('/'), "{m} {url} -> {}", f.url);
                            assert!(ROUTES.iter().any(|r| r.upstream == upstream));
                        }
                        Plan::Token(t) => assert!(ROUTES.iter().any(|r| std::ptr::eq(r, t.route))),
                    }
                }
            }
        }
    }
}

#[test]
fn url_splitting_and_lookup() {
    assert_eq!(split_url("https://h:1/p/q?x=1#f"), Some(("https", "h:1", "/p/q", "x=1")));
    assert_eq!(split_url("https://h"), Some(("https", "h", "/", "")));
    assert_eq!(split_url("https://h?x"), Some(("https", "h", "/", "x")));
    assert_eq!(split_url("nothing"), None);
    assert_eq!(lookup("DOCKER.mirror.example.com.").map(|r| r.name), Some("docker"));
    assert_eq!(lookup("mirror.example.com"), None, "the shipped table has no default route");
}
