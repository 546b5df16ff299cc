//! The request state machine over the shipped route table: what each request
//! becomes, and what each upstream answer leads to. Built with the default
//! `routes.toml` (the test script does not set ROUTES for the native tests).

use edge_mirror::plan::{split_url, step, Action, Fetch, Phase, Reply, Request, Upstream, MAX_FORM, MAX_URL, RESUME_3XX, RESUME_401, RESUME_ALL};
use edge_mirror::location::origin;
use edge_mirror::routes::{lookup, ROUTES};

fn request<'a>(method: &'a str, url: &'a str) -> Request<'a> {
    Request { method, url, authorization: false, accept_html: false, body: None }
}

fn req(method: &'static str, url: &str) -> Action {
    step(&request(method, url), None)
}

fn fetch(a: &Action) -> &Fetch {
    match a {
        Action::Fetch(f) => f,
        other => panic!("expected a fetch, got {other:?}"),
    }
}

fn forwarded(a: &Action) -> (&str, bool) {
    let f = fetch(a);
    assert_eq!(f.phase, Phase::Api);
    assert!(f.client_headers && f.form.is_none());
    (f.url.as_str(), f.method == "HEAD")
}

/// (status, OCI code) of a local answer.
fn answered(a: &Action) -> (u16, String) {
    match a {
        Action::Reply(r) => {
            let code = match &r.body {
                Some(j) => j.split('"').nth(5).unwrap_or("").to_string(),
                None => "page".to_string(),
            };
            (r.status, code)
        }
        other => panic!("expected a local answer, got {other:?}"),
    }
}

fn message(a: &Action) -> String {
    match a {
        Action::Reply(Reply { body: Some(j), .. }) => j.split('"').nth(9).unwrap_or("").to_string(),
        other => panic!("expected an error body, got {other:?}"),
    }
}

fn upstream(phase: Phase, status: u16, www_authenticate: &'static str, location: &'static str) -> Upstream<'static> {
    Upstream { phase, status, error: "", www_authenticate, location }
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
        let (got, got_head) = forwarded(&p);
        assert_eq!(got, want, "{method} {url}");
        assert_eq!(got_head, head, "{method} {url}");
        // Routes that follow let the runtime follow; only a 401 comes back.
        let f = fetch(&p);
        assert!(f.follow && f.resume == RESUME_401, "{method} {url}");
    }
}

#[test]
fn upstream_401_gets_the_mirror_realm_built_from_the_checked_host() {
    let cases = [
        ("http://Docker.Mirror.Example.COM:8787/v2/busybox/manifests/latest", "http://docker.mirror.example.com:8787/token"),
        ("https://docker.mirror.example.com./v2/busybox/manifests/latest", "https://docker.mirror.example.com/token"),
    ];
    for (url, realm) in cases {
        let up = upstream(Phase::Api, 401, r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull",error="insufficient_scope""#, "");
        let want = format!(r#"Bearer realm="{realm}",service="registry.docker.io",scope="repository:library/busybox:pull",error="insufficient_scope""#);
        assert_eq!(step(&request("GET", url), Some(&up)), Action::Relay { challenges: Some(want), location: None }, "{url}");
    }
    // Two challenges: one line each; only the Bearer realm changes.
    let up = upstream(Phase::Api, 401, r#"Basic realm="x", Bearer realm="https://a/t",service="s""#, "");
    assert_eq!(
        step(&request("GET", "https://ghcr.mirror.example.com/v2/o/i/manifests/1"), Some(&up)),
        Action::Relay { challenges: Some("Basic realm=\"x\"\nBearer realm=\"https://ghcr.mirror.example.com/token\",service=\"s\"".into()), location: None }
    );
    // An unreadable or realm-less challenge is the upstream's fault: 502 naming it.
    for bad in ["", "Bearer realm=\"unterminated", "Bearer service=\"s\""] {
        let a = step(&request("GET", "https://docker.mirror.example.com/v2/busybox/manifests/latest"), Some(&upstream(Phase::Api, 401, bad, "")));
        assert_eq!(answered(&a), (502, "UNAVAILABLE".into()), "{bad:?}");
        assert!(message(&a).ends_with(": https://registry-1.docker.io"), "{}", message(&a));
    }
}

#[test]
fn failed_fetches_become_502_or_504_naming_the_upstream() {
    let url = "https://docker.mirror.example.com/v2/busybox/manifests/latest";
    let cases = [
        ("AbortError%3A%20The%20operation%20was%20aborted", 504, "the upstream registry did not answer in time: https://registry-1.docker.io"),
        ("TypeError%3A%20Too%20many%20redirects.http%3A%2F%2Fa", 502, "the upstream redirected too many times: https://registry-1.docker.io"),
        ("Error%3A%20Network%20connection%20lost.", 502, "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: https://registry-1.docker.io"),
        ("", 502, "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: https://registry-1.docker.io"),
    ];
    for (error, status, msg) in cases {
        let up = Upstream { phase: Phase::Api, status: 0, error, www_authenticate: "", location: "" };
        let a = step(&request("GET", url), Some(&up));
        assert_eq!(answered(&a), (status, "UNAVAILABLE".into()), "{error}");
        assert_eq!(message(&a), msg);
    }
    // A token request that fails names the realm.
    let up = Upstream { phase: Phase::Token, status: 0, error: "Error", www_authenticate: "", location: "" };
    let a = step(&request("GET", "https://docker.mirror.example.com/token?scope=x"), Some(&up));
    assert_eq!(message(&a), "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: https://auth.docker.io");
}

#[test]
fn ping_is_answered_locally_when_the_realm_is_known() {
    match req("GET", "https://docker.mirror.example.com/v2/") {
        Action::Reply(r) => {
            assert_eq!(r.status, 401);
            assert_eq!(r.challenge.as_deref(), Some(r#"Bearer realm="https://docker.mirror.example.com/token",service="registry.docker.io""#));
        }
        other => panic!("{other:?}"),
    }
    // With credentials the upstream decides.
    let p = step(&Request { authorization: true, ..request("GET", "https://docker.mirror.example.com/v2/") }, None);
    assert_eq!(forwarded(&p).0, "https://registry-1.docker.io/v2/");
    // Without a known realm (registry.k8s.io) the ping goes upstream.
    assert_eq!(forwarded(&req("GET", "https://k8s.mirror.example.com/v2/")).0, "https://registry.k8s.io/v2/");
    // `/` from a client answers as /v2/ does; from a browser it is the page.
    assert_eq!(answered(&req("GET", "https://docker.mirror.example.com/")), (401, "UNAUTHORIZED".into()));
    let page = step(&Request { accept_html: true, ..request("GET", "https://docker.mirror.example.com/") }, None);
    assert_eq!(answered(&page), (200, "page".into()));
    // The page itself is generated at build time for the entry to carry.
    let html = edge_mirror_page();
    assert!(html.contains("<code>docker pull docker.mirror.example.com/busybox</code>"));
    assert!(html.contains("<code>docker pull ghcr.mirror.example.com/OWNER/IMAGE</code>"));
}

fn edge_mirror_page() -> String {
    std::fs::read_to_string(concat!(env!("OUT_DIR"), "/page.html")).expect("build.rs wrote the page")
}

#[test]
fn token_get_goes_to_the_table_realm_with_scopes_rewritten() {
    let a = req("GET", "https://docker.mirror.example.com/token?scope=repository:busybox:pull&scope=repository%3Ateam%2Fapp%3Apull&service=registry.docker.io");
    let f = fetch(&a);
    assert_eq!(f.url, "https://auth.docker.io/token?scope=repository:library/busybox:pull&scope=repository:team/app:pull&service=registry.docker.io");
    assert_eq!((f.method, f.phase, f.client_headers, f.follow, f.resume, f.form.as_deref()), ("GET", Phase::Token, true, true, 0, None));
    // A realm with a query of its own gets '&'.
    let a = req("GET", "https://ecr.mirror.example.com/token?scope=repository:a/b:pull");
    assert_eq!(fetch(&a).url, "https://public.ecr.aws/token/?scope=repository:a/b:pull");
    assert_eq!(answered(&req("PUT", "https://ghcr.mirror.example.com/token")), (405, "UNSUPPORTED".into()));
    assert_eq!(answered(&req("GET", "https://docker.mirror.example.com/token?scope=%zz")), (400, "UNSUPPORTED".into()));
}

#[test]
fn token_post_reads_the_form_then_posts_it_rewritten() {
    let url = "https://docker.mirror.example.com/token";
    assert_eq!(req("POST", url), Action::ReadBody);
    let form = "grant_type=password&username=u&password=p%26q&scope=repository%3Abusybox%3Apull+repository%3Aa%2Fb%3Apull&service=registry.docker.io";
    let a = step(&Request { body: Some(form), ..request("POST", url) }, None);
    let f = fetch(&a);
    assert_eq!((f.method, f.url.as_str(), f.phase), ("POST", "https://auth.docker.io/token", Phase::Token));
    assert_eq!(
        f.form.as_deref(),
        Some("grant_type=password&username=u&password=p%26q&scope=repository:library/busybox:pull%20repository:a/b:pull&service=registry.docker.io")
    );
    let big = "a".repeat(MAX_FORM + 1);
    assert_eq!(answered(&step(&Request { body: Some(&big), ..request("POST", url) }, None)), (400, "UNSUPPORTED".into()));
}

#[test]
fn token_without_a_table_realm_discovers_it_from_the_upstream_challenge() {
    let url = "https://cloudsmith.mirror.example.com/token?scope=repository:o/i:pull&service=x";
    let r = request("GET", url);
    let ping = step(&r, None);
    let f = fetch(&ping);
    // The discovery carries none of the client's headers and always comes back.
    assert_eq!((f.url.as_str(), f.phase, f.client_headers, f.resume), ("https://docker.cloudsmith.io/v2/", Phase::Discover, false, RESUME_ALL));
    let up = upstream(Phase::Discover, 401, r#"Bearer realm="https://auth.cloudsmith.io/t?x=1",service="x""#, "");
    let f2 = step(&r, Some(&up));
    assert_eq!(fetch(&f2).url, "https://auth.cloudsmith.io/t?x=1&scope=repository:o/i:pull&service=x");
    assert_eq!(fetch(&f2).phase, Phase::Token);
    // A relative realm is resolved against the upstream.
    let up = upstream(Phase::Discover, 401, r#"Bearer realm="/token""#, "");
    assert_eq!(fetch(&step(&r, Some(&up))).url, "https://docker.cloudsmith.io/token?scope=repository:o/i:pull&service=x");
    // No Bearer challenge: the upstream does not do tokens.
    for (status, ch) in [(200, ""), (401, "Basic realm=\"r\""), (401, "")] {
        let a = step(&r, Some(&upstream(Phase::Discover, status, ch, "")));
        assert_eq!(answered(&a), (404, "UNAVAILABLE".into()), "{status} {ch}");
    }
    // A realm that is not http(s) is refused.
    let a = step(&r, Some(&upstream(Phase::Discover, 401, r#"Bearer realm="file:///etc/passwd""#, "")));
    assert_eq!(answered(&a), (502, "UNAVAILABLE".into()));
}

#[test]
fn routes_that_pass_redirects_get_them_back_with_an_absolute_location() {
    // The shipped table has no pass route; the e2e table does. Here: any
    // route, a 3xx answer resolves the Location against its upstream.
    let r = request("GET", "https://gcr.mirror.example.com/v2/p/i/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    let cases = [
        ("https://storage.example/b?sig=1", "https://storage.example/b?sig=1"),
        ("/artifacts-downloads/x", "https://gcr.io/artifacts-downloads/x"),
    ];
    for (loc, want) in cases {
        let a = step(&r, Some(&upstream(Phase::Api, 302, "", loc)));
        assert_eq!(a, Action::Relay { challenges: None, location: Some(want.into()) });
    }
    assert_eq!(answered(&step(&r, Some(&upstream(Phase::Api, 302, "", "ftp://x/y")))), (502, "UNAVAILABLE".into()));
    // Anything else (a 304, say) goes on as it is.
    assert_eq!(step(&r, Some(&upstream(Phase::Api, 304, "", ""))), Action::Relay { challenges: None, location: None });
    let _ = RESUME_3XX;
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
fn every_fetch_goes_to_a_table_host() {
    // The planner's property over a spread of inputs: a local 4xx (or the
    // page), or a fetch whose origin is a route's upstream or realm.
    let hosts = ["docker.mirror.example.com", "ghcr.mirror.example.com", "k8s.mirror.example.com", "x.example", "[::1]:1", "a_b"];
    let paths = ["/", "/v2/", "/v2/a/manifests/b", "/v2/a/b/blobs/", "//evil.example/v2/", "/token", "/v2/_catalog", "/@evil.example/"];
    let queries = ["", "?ns=evil.example", "?scope=repository:evil.example/x:pull", "?url=http://evil.example/"];
    for h in hosts {
        for p in paths {
            for q in queries {
                for m in ["GET", "HEAD", "POST"] {
                    let url = format!("https://{h}{p}{q}");
                    let r = Request { body: Some("scope=x"), ..request(m, &url) };
                    match step(&r, None) {
                        Action::Reply(r) => assert!((400..500).contains(&r.status) || r.body.is_none(), "{m} {url}: {}", r.status),
                        Action::Fetch(f) => {
                            let o = origin(&f.url);
                            let ok = ROUTES.iter().any(|r| origin(r.upstream) == o || r.realm.map(origin) == Some(o));
                            assert!(ok, "{m} {url} -> {}", f.url);
                        }
                        other => panic!("{m} {url}: {other:?}"),
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
