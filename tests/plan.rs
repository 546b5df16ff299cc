//! The request state machine over the shipped route table: what each request
//! becomes, and what each upstream answer leads to. Built with the default
//! `routes.toml` (the test script does not set ROUTES for these tests; the
//! keys the shipped table does not use are tested in tests/every_key.rs).

mod tables;

use edge_mirror::location::origin;
use edge_mirror::messages::Msg;
use edge_mirror::oci::error_body;
use edge_mirror::plan::{split_url, step, Action, Fetch, Phase, Request, Upstream, MAX_FORM, MAX_URL, RESUME_401, RESUME_429, RESUME_5XX, RESUME_ALL};
use edge_mirror::routes::{by_host, by_name, by_registry, get, routes};

fn request<'a>(method: &'a str, url: &'a str) -> Request<'a> {
    Request::new(method, url)
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
    assert!(f.client_headers && f.form.is_none() && f.authorization.is_none());
    (f.url.as_str(), f.head)
}

/// (status, OCI code) of a local answer, as the entry writes it.
fn answered(a: &Action) -> (u16, String) {
    match a {
        Action::Reply(r) => (r.status(), r.msg.code().as_str().to_string()),
        Action::Page => (200, "page".to_string()),
        other => panic!("expected a local answer, got {other:?}"),
    }
}

/// The message of a local answer's error body, as the entry writes it.
fn message(a: &Action) -> String {
    match a {
        Action::Reply(r) => {
            let body = error_body(r.msg, &r.subject);
            body.split('"').nth(9).unwrap_or("").to_string()
        }
        other => panic!("expected an error body, got {other:?}"),
    }
}

fn upstream(phase: Phase, status: u16, www_authenticate: &'static str, location: &'static str) -> Upstream<'static> {
    Upstream { phase: Some(phase), status, www_authenticate, location, ..Upstream::default() }
}

fn relayed_challenge(a: Action) -> String {
    match a {
        Action::Relay { challenges: Some(c), location: None, error: None, source: None, held: false } => c,
        other => panic!("expected a relayed challenge, got {other:?}"),
    }
}

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const M: &str = "https://mirror.example.com";

#[test]
fn forwards_with_library_query_and_method_kept() {
    let h = "https://docker.mirror.example.com";
    let cases: Vec<(&'static str, String, String, bool)> = vec![
        ("GET", format!("{h}/v2/busybox/manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest".into(), false),
        ("HEAD", format!("{h}/v2/busybox/manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest".into(), true),
        ("GET", format!("{h}/v2/library/busybox/blobs/{D}"), format!("https://registry-1.docker.io/v2/library/busybox/blobs/{D}"), false),
        ("GET", format!("{h}/v2/user/app/tags/list?n=10&last=b"), "https://registry-1.docker.io/v2/user/app/tags/list?n=10&last=b".into(), false),
        ("GET", format!("{h}/v2/_catalog?n=5"), "https://registry-1.docker.io/v2/_catalog?n=5".into(), false),
        ("GET", format!("{h}/v2/busybox/referrers/{D}?artifactType=x"), format!("https://registry-1.docker.io/v2/library/busybox/referrers/{D}?artifactType=x"), false),
        // ghcr: no library rule; upper-case host and trailing dot still route.
        ("GET", "https://GHCR.mirror.example.com./v2/owner/image/manifests/v1".into(), "https://ghcr.io/v2/owner/image/manifests/v1".into(), false),
        ("GET", "https://ghcr.mirror.example.com/v2/busybox/manifests/v1".into(), "https://ghcr.io/v2/busybox/manifests/v1".into(), false),
        // On a host of its own a route also takes its prefixed names.
        ("GET", "https://ghcr.mirror.example.com/v2/ghcr.io/owner/image/manifests/v1".into(), "https://ghcr.io/v2/owner/image/manifests/v1".into(), false),
        ("GET", format!("{h}/v2/busybox/manifests/latest#frag"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest".into(), false),
    ];
    for (method, url, want, head) in cases {
        let p = req(method, &url);
        let (got, got_head) = forwarded(&p);
        assert_eq!(got, want, "{method} {url}");
        assert_eq!(got_head, head, "{method} {url}");
        // Routes that follow let the runtime follow; a 401 and a 429 come
        // back, and on Docker Hub's route (which has fallbacks) a manifest or
        // blob's 502-504 too.
        let f = fetch(&p);
        let fallbacks = want.starts_with("https://registry-1.docker.io") && (want.contains("/manifests/") || want.contains("/blobs/"));
        let resume = RESUME_401 | RESUME_429 | if fallbacks { RESUME_5XX } else { 0 };
        assert!(f.follow && f.resume == resume, "{method} {url}");
    }
}

#[test]
fn one_host_for_every_registry_by_prefix_ns_or_default() {
    let cases: Vec<(String, &str)> = vec![
        // dockerd's registry-mirrors: plain names go to the default route, Docker Hub.
        (format!("{M}/v2/library/busybox/manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest"),
        (format!("{M}/v2/busybox/manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest"),
        // Path prefixes, Docker Hub's library rule composing with its prefix.
        (format!("{M}/v2/docker.io/busybox/manifests/1"), "https://registry-1.docker.io/v2/library/busybox/manifests/1"),
        (format!("{M}/v2/docker.io/library/nginx/manifests/1.27"), "https://registry-1.docker.io/v2/library/nginx/manifests/1.27"),
        (format!("{M}/v2/ghcr.io/owner/image/manifests/v1"), "https://ghcr.io/v2/owner/image/manifests/v1"),
        (format!("{M}/v2/registry.k8s.io/pause/manifests/3.9"), "https://registry.k8s.io/v2/pause/manifests/3.9"),
        (format!("{M}/v2/quay.io/org/app/blobs/{D}"), format!("https://quay.io/v2/org/app/blobs/{D}").leak()),
        // containerd's ns picks the route by registry name, on any host; the query goes on.
        (format!("{M}/v2/owner/image/manifests/v1?ns=ghcr.io"), "https://ghcr.io/v2/owner/image/manifests/v1?ns=ghcr.io"),
        (format!("{M}/v2/library/busybox/manifests/1?ns=docker.io"), "https://registry-1.docker.io/v2/library/busybox/manifests/1?ns=docker.io"),
        ("https://docker.mirror.example.com/v2/pause/manifests/3.9?ns=registry.k8s.io".into(), "https://registry.k8s.io/v2/pause/manifests/3.9?ns=registry.k8s.io"),
        (format!("{M}/v2/?ns=quay.io"), "https://quay.io/v2/?ns=quay.io"),
        // On a host of its own a route takes any name, dotted first components included.
        ("https://ghcr.mirror.example.com/v2/quay.io/x/manifests/1".into(), "https://ghcr.io/v2/quay.io/x/manifests/1"),
    ];
    for (url, want) in cases {
        let a = step(&Request { authorization: true, ..request("GET", &url) }, None);
        assert_eq!(forwarded(&a).0, want, "{url}");
    }
    // A prefix no route has, on the shared host: 404 naming the name.
    let a = req("GET", &format!("{M}/v2/nope.io/x/manifests/1"));
    assert_eq!(answered(&a), (404, "NAME_UNKNOWN".into()));
    assert!(message(&a).ends_with(": nope.io/x"), "{}", message(&a));
    // An ns that no route names: 404 naming it, never a subrequest.
    for ns in ["evil.example", "127.0.0.66:15066", "docker.io.evil"] {
        let url = format!("{M}/v2/library/busybox/manifests/1?ns={ns}");
        let a = req("GET", &url);
        assert_eq!(answered(&a), (404, "NAME_UNKNOWN".into()), "{ns}");
        assert!(message(&a).ends_with(&format!(": {ns}")), "{}", message(&a));
    }
    // Host lookups: a shared host's plain names go to the default route; a
    // host of one route to it; an unknown host to the default route.
    assert_eq!(by_host("mirror.example.com").and_then(get).map(|r| r.registry), Some("docker.io"));
    assert_eq!(by_host("GHCR.mirror.example.com.").and_then(get).map(|r| r.registry), Some("ghcr.io"));
    assert_eq!(by_host("unknown.example").and_then(get).map(|r| r.registry), Some("docker.io"));
    assert_eq!(by_name("mirror.example.com", "ghcr.io/a/b").map(|(i, n)| (get(i).map(|r| r.registry), n)), Some((Some("ghcr.io"), Some("a/b"))));
    // A registry-like first component that is no route's prefix, on the shared host: no route.
    assert_eq!(by_name("mirror.example.com", "ghcr.iox/a").map(|(i, n)| (get(i).map(|r| r.registry), n)), None);
    assert_eq!(by_name("mirror.example.com", "localhost/a").map(|(i, n)| (get(i).map(|r| r.registry), n)), None);
    assert_eq!(by_name("mirror.example.com", "team/app").map(|(i, n)| (get(i).map(|r| r.registry), n)), Some((Some("docker.io"), None)));
    // On a host of one route, names are that route's (gcr.io/google.com/... exists).
    assert_eq!(by_name("gcr.mirror.example.com", "google.com/cloudsdktool/cloud-sdk").map(|(i, n)| (get(i).map(|r| r.registry), n)), Some((Some("gcr.io"), None)));
    assert_eq!(by_registry("GHCR.IO").and_then(get).map(|r| r.registry), Some("ghcr.io"));
    assert_eq!(by_registry("registry-1.docker.io"), None);
}

#[test]
fn upstream_401_gets_the_mirror_realm_and_the_clients_names() {
    let ch = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull",error="insufficient_scope""#;
    let cases = [
        // The host alone leads to the route: the host's /token.
        ("http://Docker.Mirror.Example.COM:8787/v2/busybox/manifests/latest", "http://docker.mirror.example.com:8787/token", "repository:library/busybox:pull"),
        ("https://docker.mirror.example.com./v2/busybox/manifests/latest", "https://docker.mirror.example.com/token", "repository:library/busybox:pull"),
        // By prefix: the realm names the route and the scope gets the prefix back.
        ("https://mirror.example.com/v2/docker.io/busybox/manifests/1", "https://mirror.example.com/token/docker.io", "repository:docker.io/library/busybox:pull"),
        // By ns: the realm names the route; the client's names carry no prefix.
        ("https://mirror.example.com/v2/library/busybox/manifests/1?ns=docker.io", "https://mirror.example.com/token/docker.io", "repository:library/busybox:pull"),
    ];
    for (url, realm, scope) in cases {
        let got = relayed_challenge(step(&request("GET", url), Some(&upstream(Phase::Api, 401, ch, ""))));
        assert_eq!(got, format!(r#"Bearer realm="{realm}",service="registry.docker.io",scope="{scope}",error="insufficient_scope""#), "{url}");
    }
    let ghcr = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/i:pull repository:o/j:pull""#;
    let got = relayed_challenge(step(&request("GET", "https://mirror.example.com/v2/ghcr.io/o/i/manifests/1"), Some(&upstream(Phase::Api, 401, ghcr, ""))));
    assert_eq!(got, r#"Bearer realm="https://mirror.example.com/token/ghcr.io",service="ghcr.io",scope="repository:ghcr.io/o/i:pull repository:ghcr.io/o/j:pull""#);
    // Two challenges: one line each; only the Bearer realm changes.
    let up = upstream(Phase::Api, 401, r#"Basic realm="x", Bearer realm="https://a/t",service="s""#, "");
    assert_eq!(
        relayed_challenge(step(&request("GET", "https://ghcr.mirror.example.com/v2/o/i/manifests/1"), Some(&up))),
        "Basic realm=\"x\"\nBearer realm=\"https://ghcr.mirror.example.com/token\",service=\"s\""
    );
    // An unreadable or realm-less challenge is the upstream's fault: 502 naming it.
    for bad in ["", "Bearer realm=\"unterminated", "Bearer service=\"s\""] {
        let a = step(&request("GET", "https://docker.mirror.example.com/v2/busybox/manifests/latest"), Some(&upstream(Phase::Api, 401, bad, "")));
        assert_eq!(answered(&a), (502, "UNAVAILABLE".into()), "{bad:?}");
        assert!(message(&a).ends_with(": https://registry-1.docker.io"), "{}", message(&a));
    }
}

#[test]
fn upstream_429_says_which_limit_in_front_of_the_upstreams_errors() {
    // (A route without fallbacks: tests/fallback.rs has the others.)
    let url = "https://ghcr.mirror.example.com/v2/o/i/manifests/latest";
    // Docker Hub's pull limit (its body as the entry reads it): the message
    // says so and names the route's registry; the entry puts it in front of
    // the upstream's own errors (tests/e2e/test_protocol.py).
    let pull = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit."}]}"#;
    let up = Upstream { body: pull, ..upstream(Phase::Api, 429, "", "") };
    let a = step(&request("GET", url), Some(&up));
    assert_eq!(a, Action::Relay { challenges: None, location: None, error: Some((Msg::PullLimit, "ghcr.io".into())), source: None, held: false });
    assert!(Msg::PullLimit.text().contains("a credentials secret, of a paid account, lifts it"));
    // Not the pull-rate limit (another limit, or no body at all).
    for body in ["Too Many Requests\n", ""] {
        let up = Upstream { body, ..upstream(Phase::Api, 429, "", "") };
        let Action::Relay { error: Some((msg, _)), .. } = step(&request("GET", url), Some(&up)) else { panic!() };
        assert_eq!((msg, msg.code().as_str()), (Msg::AddressLimit, "TOOMANYREQUESTS"));
    }
    // The token endpoint's own 429 gets the same treatment.
    let up = Upstream { body: pull, ..upstream(Phase::Token, 429, "", "") };
    let a = step(&request("GET", "https://docker.mirror.example.com/token?scope=repository:busybox:pull"), Some(&up));
    assert!(matches!(a, Action::Relay { error: Some((Msg::PullLimit, _)), .. }));
}

#[test]
fn failed_fetches_become_502_or_504_naming_the_upstream() {
    let url = "https://ghcr.mirror.example.com/v2/o/i/manifests/latest";
    let cases = [
        ("TimeoutError: The operation was aborted due to timeout", 504, "the upstream registry did not answer in time: https://ghcr.io"),
        // Only the entry's header timeout is a 504; any other abort is a failed fetch.
        ("AbortError: The operation was aborted", 502, "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: https://ghcr.io"),
        ("TypeError: Too many redirects.http://a", 502, "the upstream redirected too many times: https://ghcr.io"),
        ("Error: Network connection lost.", 502, "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: https://ghcr.io"),
        ("", 502, "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: https://ghcr.io"),
    ];
    for (error, status, msg) in cases {
        let up = Upstream { error, ..upstream(Phase::Api, 0, "", "") };
        let a = step(&request("GET", url), Some(&up));
        assert_eq!(answered(&a), (status, "UNAVAILABLE".into()), "{error}");
        assert_eq!(message(&a), msg);
    }
    // A token request that fails names the realm.
    let up = Upstream { error: "Error", ..upstream(Phase::Token, 0, "", "") };
    let a = step(&request("GET", "https://docker.mirror.example.com/token?scope=x"), Some(&up));
    assert_eq!(message(&a), "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: https://auth.docker.io");
}

#[test]
fn ping_is_answered_locally_when_the_realm_is_known() {
    for (url, realm) in [
        ("https://docker.mirror.example.com/v2/", "https://docker.mirror.example.com/token"),
        // A shared host hands out its own /token; token requests are routed by their scopes.
        ("https://mirror.example.com/v2/", "https://mirror.example.com/token"),
        ("https://mirror.example.com/v2/?ns=ghcr.io", "https://mirror.example.com/token/ghcr.io"),
    ] {
        match req("GET", url) {
            Action::Reply(r) => {
                assert_eq!(r.status(), 401);
                assert!(r.challenge.as_deref().is_some_and(|c| c.starts_with(&format!("Bearer realm=\"{realm}\",service="))), "{url}: {r:?}");
            }
            other => panic!("{other:?}"),
        }
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
}

#[test]
fn the_page_lists_every_clients_configuration_for_the_tables_hosts() {
    let html = tables::page("routes.toml");
    for want in [
        "<code>docker pull mirror.example.com/busybox</code>",
        "<code>docker pull mirror.example.com/ghcr.io/OWNER/IMAGE</code>",
        "<code>docker pull ghcr.mirror.example.com/OWNER/IMAGE</code>",
        "{\"registry-mirrors\": [\"https://mirror.example.com\"]}",
        "# /etc/containerd/certs.d/registry.k8s.io/hosts.toml\nserver = \"https://registry.k8s.io\"\n[host.\"https://mirror.example.com\"]\n  capabilities = [\"pull\", \"resolve\"]",
        "[[registry]]\nlocation = \"ghcr.io\"\n[[registry.mirror]]\nlocation = \"mirror.example.com/ghcr.io\"",
        "  \"quay.io\":\n    endpoint:\n      - \"https://mirror.example.com\"",
        // Each route's fallbacks, in order.
        "<td>docker.io</td><td><code>docker pull mirror.example.com/busybox</code></td><td>mirror.gcr.io, ecr-public-library</td>",
        "<td>ghcr.io</td><td><code>docker pull ghcr.mirror.example.com/OWNER/IMAGE</code></td><td></td>",
    ] {
        assert!(html.contains(want), "the page lacks {want:?}");
    }
    // Routes that are only fallbacks are not pulled from by name.
    assert!(!html.contains("docker pull mirror.gcr.io") && !html.contains("certs.d/mirror.gcr.io"));
}

/// Names and references that cannot exist (tests/impossible-names.tsv, which
/// the e2e suite also holds against the worker and the real registry): the
/// spec's answer, locally, without a fetch, whatever the method.
#[test]
fn impossible_names_get_the_specs_answers_locally() {
    let rows: Vec<&str> = include_str!("impossible-names.tsv").lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(rows.len() >= 10);
    for row in rows {
        let f: Vec<&str> = row.split('\t').collect();
        let (method, path, status, code) = (f[0], f[1], f[2].parse::<u16>().expect("status"), f[3]);
        for host in ["https://docker.mirror.example.com", "https://mirror.example.com"] {
            let a = req(if method == "HEAD" { "HEAD" } else { "GET" }, &format!("{host}{path}"));
            assert_eq!(answered(&a), (status, code.to_string()), "{method} {host}{path}");
        }
    }
}

/// docker search: to the route's index, the query rebuilt, anonymously; the
/// route picked by ns, the term's prefix or the host; a route without
/// `search` says so.
#[test]
fn docker_search_goes_to_the_routes_index_anonymously() {
    let cases: Vec<(String, &str)> = vec![
        (format!("{M}/v1/search?q=nginx&n=25"), "https://index.docker.io/v1/search?q=nginx&n=25"),
        ("https://docker.mirror.example.com/v1/search?q=nginx&n=25".into(), "https://index.docker.io/v1/search?q=nginx&n=25"),
        // Only q, n and page, in that order, re-encoded; n and page numbers only.
        (format!("{M}/v1/search?page=2&x=evil&n=10&q=a+b%2Fc&is_official=true"), "https://index.docker.io/v1/search?q=a%20b/c&n=10&page=2"),
        (format!("{M}/v1/search?q=nginx&n=abc&page=99999"), "https://index.docker.io/v1/search?q=nginx"),
        // A prefix in the term picks the route on a shared host, and is removed.
        (format!("{M}/v1/search?q=docker.io%2Fnginx&n=25"), "https://index.docker.io/v1/search?q=nginx&n=25"),
        (format!("{M}/v1/search?q=nginx&ns=docker.io"), "https://index.docker.io/v1/search?q=nginx"),
        // On a host no route names: the default route.
        ("https://edge.someone.workers.dev/v1/search?q=redis".into(), "https://index.docker.io/v1/search?q=redis"),
    ];
    for (url, want) in cases {
        let a = step(&Request { authorization: true, ..request("GET", &url) }, None);
        let f = fetch(&a);
        assert_eq!(f.url, want, "{url}");
        assert!(f.anonymous && f.client_headers && f.follow && !f.head, "{url}: anonymous, with the other allowed headers");
        assert_eq!((f.resume & RESUME_429, f.phase), (RESUME_429, Phase::Api));
    }
    // Routes without search: 404 naming the key, no fetch.
    for url in [format!("{M}/v1/search?q=ghcr.io%2Fowner"), "https://ghcr.mirror.example.com/v1/search?q=x".into(), format!("{M}/v1/search?q=x&ns=quay.io")] {
        let a = req("GET", &url);
        assert_eq!(answered(&a), (404, "NAME_UNKNOWN".into()), "{url}");
        assert!(message(&a).contains("search = 'https://index.docker.io'"), "{}", message(&a));
    }
    for (url, code) in [(format!("{M}/v1/search?q=x&ns=nope.io"), "NAME_UNKNOWN"), (format!("{M}/v1/search?q={}", "x".repeat(257)), "UNSUPPORTED")] {
        assert_eq!(answered(&req("GET", &url)).1, code, "{url}");
    }
    assert_eq!(answered(&req("POST", &format!("{M}/v1/search?q=x"))), (405, "UNSUPPORTED".into()));
    // The index's 429 gets the mirror's message; a failure names the index.
    let r = request("GET", "https://mirror.example.com/v1/search?q=nginx");
    match step(&r, Some(&upstream(Phase::Api, 429, "", ""))) {
        Action::Relay { error: Some((msg, subject)), .. } => assert_eq!((msg, subject.as_str()), (Msg::AddressLimit, "docker.io")),
        other => panic!("{other:?}"),
    }
    let failed = step(&r, Some(&Upstream { phase: Some(Phase::Api), status: 0, error: "TypeError", ..Upstream::default() }));
    assert_eq!(answered(&failed), (502, "UNAVAILABLE".into()));
    assert!(message(&failed).ends_with(": https://index.docker.io"), "{}", message(&failed));
    assert_eq!(step(&r, Some(&upstream(Phase::Api, 200, "", ""))), Action::Relay { challenges: None, location: None, error: None, source: None, held: false });
}

/// nvcr.io names one realm before a token and another after it expires
/// (NVIDIA/nvidia-container-toolkit issue 1945): the client gets the
/// mirror's realm for both, with the rest of each challenge kept, and its
/// token request goes to the realm the table names, without a service.
#[test]
fn nvcr_challenges_before_and_after_a_token_expires_both_lead_to_the_mirrors_token() {
    let first = "Bearer realm=\"https://nvcr.io/proxy_auth\",scope=\"repository:nvidia/k8s-device-plugin:pull\"";
    let expired = "Bearer realm=\"https://authn.nvidia.com/token\",service=\"registry\",scope=\"repository:nvidia/k8s-device-plugin:pull\",error=\"invalid_token\"";
    for (host, path, realm, scope) in [
        ("nvcr.mirror.example.com", "/v2/nvidia/k8s-device-plugin/manifests/v0.19.0", "https://nvcr.mirror.example.com/token", "nvidia/k8s-device-plugin"),
        ("mirror.example.com", "/v2/nvcr.io/nvidia/k8s-device-plugin/manifests/v0.19.0", "https://mirror.example.com/token/nvcr.io", "nvcr.io/nvidia/k8s-device-plugin"),
    ] {
        let url = format!("https://{host}{path}");
        let r = Request { authorization: true, ..request("GET", &url) };
        assert_eq!(forwarded(&step(&r, None)).0, "https://nvcr.io/v2/nvidia/k8s-device-plugin/manifests/v0.19.0");
        let c = relayed_challenge(step(&r, Some(&upstream(Phase::Api, 401, first, ""))));
        assert_eq!(c, format!("Bearer realm=\"{realm}\",scope=\"repository:{scope}:pull\""));
        let c = relayed_challenge(step(&r, Some(&upstream(Phase::Api, 401, expired, ""))));
        assert_eq!(c, format!("Bearer realm=\"{realm}\",service=\"registry\",scope=\"repository:{scope}:pull\",error=\"invalid_token\""));
        // The client follows either: its token comes from nvcr.io/proxy_auth.
        let t = req("GET", &format!("{realm}?scope=repository:{scope}:pull&service=registry"));
        assert_eq!(fetch(&t).url, "https://nvcr.io/proxy_auth?scope=repository:nvidia/k8s-device-plugin:pull");
    }
}

/// The registries added to the shipped table, each by its host and by its
/// prefix on the shared host, to its own upstream.
#[test]
fn the_shipped_registries_resolve_by_host_and_by_prefix() {
    for (name, registry, upstream) in [
        ("nvcr", "nvcr.io", "https://nvcr.io"),
        ("mcr", "mcr.microsoft.com", "https://mcr.microsoft.com"),
        ("elastic", "docker.elastic.co", "https://docker.elastic.co"),
        ("gitlab", "registry.gitlab.com", "https://registry.gitlab.com"),
        ("ghcr", "ghcr.io", "https://ghcr.io"),
        ("quay", "quay.io", "https://quay.io"),
    ] {
        for url in [format!("https://{name}.mirror.example.com/v2/a/b/manifests/1"), format!("{M}/v2/{registry}/a/b/manifests/1")] {
            let a = step(&Request { authorization: true, ..request("GET", &url) }, None);
            assert_eq!(forwarded(&a).0, format!("{upstream}/v2/a/b/manifests/1"), "{url}");
        }
        assert_eq!(by_registry(registry).and_then(get).map(|r| r.upstream), Some(upstream));
    }
    // Realms and services as the upstreams' challenges name them.
    for (registry, realm, service) in [
        ("nvcr.io", Some("https://nvcr.io/proxy_auth"), None),
        ("mcr.microsoft.com", None, None),
        ("docker.elastic.co", Some("https://docker-auth.elastic.co/auth"), Some("token-service")),
        ("registry.gitlab.com", Some("https://gitlab.com/jwt/auth"), Some("container_registry")),
    ] {
        let r = by_registry(registry).and_then(get).expect("a route");
        assert_eq!((r.realm, r.service), (realm, service), "{registry}");
    }
    // MCR needs no token: the ping goes upstream.
    assert_eq!(forwarded(&req("GET", "https://mcr.mirror.example.com/v2/")).0, "https://mcr.microsoft.com/v2/");
}

#[test]
fn token_get_goes_to_the_table_realm_with_scopes_rewritten() {
    let a = req("GET", "https://docker.mirror.example.com/token?scope=repository:busybox:pull&scope=repository%3Ateam%2Fapp%3Apull,push&service=registry.docker.io");
    let f = fetch(&a);
    assert_eq!(f.url, "https://auth.docker.io/token?scope=repository:library/busybox:pull&scope=repository:team/app:pull&service=registry.docker.io");
    assert_eq!((f.head, f.phase, f.client_headers, f.follow, f.resume, f.form.as_deref()), (false, Phase::Token, true, true, RESUME_429, None));
    assert_eq!((f.authorization.as_deref(), f.credentials), (None, false), "no credentials on this route");
    // A realm with a query of its own gets '&'.
    let a = req("GET", "https://ecr.mirror.example.com/token?scope=repository:a/b:pull");
    assert_eq!(fetch(&a).url, "https://public.ecr.aws/token/?scope=repository:a/b:pull");
    assert_eq!(answered(&req("PUT", "https://ghcr.mirror.example.com/token")), (405, "UNSUPPORTED".into()));
    assert_eq!(answered(&req("GET", "https://docker.mirror.example.com/token?scope=%zz")), (400, "UNSUPPORTED".into()));
}

/// A first deploy lands on NAME.ACCOUNT.workers.dev, a host the shipped
/// table does not name: every route is still reached by its prefix there,
/// plain names go to the default route, a registry-like first component no
/// route has is 404, and the mirror's realm names the host asked.
#[test]
fn a_host_no_route_names_reaches_every_route_by_its_prefix() {
    let w = "https://edge-mirror.someone.workers.dev";
    let cases: Vec<(String, String)> = vec![
        (format!("{w}/v2/busybox/manifests/latest"), "https://registry-1.docker.io/v2/library/busybox/manifests/latest".into()),
        (format!("{w}/v2/docker.io/library/nginx/manifests/1"), "https://registry-1.docker.io/v2/library/nginx/manifests/1".into()),
        (format!("{w}/v2/ghcr.io/owner/image/manifests/v1"), "https://ghcr.io/v2/owner/image/manifests/v1".into()),
        (format!("{w}/v2/quay.io/org/app/blobs/{D}"), format!("https://quay.io/v2/org/app/blobs/{D}")),
        (format!("{w}/v2/registry.k8s.io/pause/manifests/3.9"), "https://registry.k8s.io/v2/pause/manifests/3.9".into()),
        (format!("{w}/v2/gcr.io/p/i/tags/list"), "https://gcr.io/v2/p/i/tags/list".into()),
        (format!("{w}/v2/public.ecr.aws/a/b/manifests/1"), "https://public.ecr.aws/v2/a/b/manifests/1".into()),
        // An IP address or a port of its own is a host no route names too.
        ("https://203.0.113.7:8443/v2/ghcr.io/o/i/manifests/1".into(), "https://ghcr.io/v2/o/i/manifests/1".into()),
    ];
    for (url, want) in cases {
        let a = step(&Request { authorization: true, ..request("GET", &url) }, None);
        assert_eq!(forwarded(&a).0, want, "{url}");
    }
    // Registry-like first components no route has as a prefix: 404, never
    // Docker Hub; nor the routes that are only fallbacks.
    for name in ["nope.io/x", "mirror.gcr.io/library/busybox", "localhost/x"] {
        let a = req("GET", &format!("{w}/v2/{name}/manifests/1"));
        assert_eq!(answered(&a), (404, "NAME_UNKNOWN".into()), "{name}");
    }
    // The ping names this host's /token; a token request there is routed by
    // its scope's prefix, and a challenge for a prefixed route names
    // /token/<registry> on this host.
    let ping = req("GET", &format!("{w}/v2/"));
    match &ping {
        Action::Reply(r) => assert_eq!(r.challenge.as_deref(), Some("Bearer realm=\"https://edge-mirror.someone.workers.dev/token\",service=\"registry.docker.io\"")),
        other => panic!("{other:?}"),
    }
    let t = req("GET", &format!("{w}/token?scope=repository:ghcr.io/o/i:pull&service=registry.docker.io"));
    assert_eq!(fetch(&t).url, "https://ghcr.io/token?scope=repository:o/i:pull&service=ghcr.io");
    let r = request("GET", "https://edge-mirror.someone.workers.dev/v2/ghcr.io/o/i/manifests/1");
    let c = relayed_challenge(step(&r, Some(&upstream(Phase::Api, 401, "Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\",scope=\"repository:o/i:pull\"", ""))));
    assert_eq!(c, "Bearer realm=\"https://edge-mirror.someone.workers.dev/token/ghcr.io\",service=\"ghcr.io\",scope=\"repository:ghcr.io/o/i:pull\"");
}

#[test]
fn token_on_a_shared_host_is_routed_by_its_path_or_its_scopes() {
    let cases = [
        // /token/<registry>, as realms for prefix and ns routes say.
        ("/token/ghcr.io?scope=repository:ghcr.io/o/i:pull&service=x", "https://ghcr.io/token?scope=repository:o/i:pull&service=ghcr.io"),
        ("/token/ghcr.io?scope=repository:o/i:pull&service=x", "https://ghcr.io/token?scope=repository:o/i:pull&service=ghcr.io"),
        // /token (what the shared host's ping hands out): the scopes' names lead.
        ("/token?scope=repository:ghcr.io/o/i:pull&service=registry.docker.io", "https://ghcr.io/token?scope=repository:o/i:pull&service=ghcr.io"),
        ("/token?scope=repository:library/busybox:pull&service=registry.docker.io", "https://auth.docker.io/token?scope=repository:library/busybox:pull&service=registry.docker.io"),
        ("/token?scope=repository:docker.io/busybox:pull", "https://auth.docker.io/token?scope=repository:library/busybox:pull"),
        // No scope at all (docker login): the host's route.
        ("/token?service=registry.docker.io&account=me", "https://auth.docker.io/token?service=registry.docker.io&account=me"),
    ];
    for (path, want) in cases {
        let url = format!("{M}{path}");
        assert_eq!(fetch(&req("GET", &url)).url, want, "{path}");
    }
    // A route that cannot be identified, or scopes that lead to two routes: 4xx, no subrequest.
    let a = req("GET", &format!("{M}/token/evil.example?scope=repository:a/b:pull"));
    assert_eq!(answered(&a), (404, "NAME_UNKNOWN".into()));
    assert!(message(&a).ends_with(": evil.example"));
    let a = req("GET", &format!("{M}/token?scope=repository:ghcr.io/a/b:pull&scope=repository:quay.io/c/d:pull"));
    assert_eq!(answered(&a), (400, "UNSUPPORTED".into()));
    assert_eq!(answered(&req("GET", &format!("{M}/token/"))), (404, "UNSUPPORTED".into()));
}

#[test]
fn token_post_reads_the_form_then_posts_it_rewritten() {
    let url = "https://docker.mirror.example.com/token";
    assert_eq!(req("POST", url), Action::ReadBody);
    let form = "grant_type=password&username=u&password=p%26q&scope=repository%3Abusybox%3Apull+repository%3Aa%2Fb%3Apull%2Cpush&service=registry.docker.io";
    let a = step(&Request { body: Some(form), ..request("POST", url) }, None);
    let f = fetch(&a);
    assert_eq!((f.form.is_some(), f.url.as_str(), f.phase), (true, "https://auth.docker.io/token", Phase::Token));
    assert_eq!(
        f.form.as_deref(),
        Some("grant_type=password&username=u&password=p%26q&scope=repository:library/busybox:pull%20repository:a/b:pull&service=registry.docker.io")
    );
    let big = "a".repeat(MAX_FORM + 1);
    assert_eq!(answered(&step(&Request { body: Some(&big), ..request("POST", url) }, None)), (400, "UNSUPPORTED".into()));
    // On a shared host the form's scopes route it.
    let form = "grant_type=password&username=u&password=p&scope=repository%3Aghcr.io%2Fo%2Fi%3Apull&service=s";
    let a = step(&Request { body: Some(form), ..request("POST", "https://mirror.example.com/token") }, None);
    assert_eq!(fetch(&a).url, "https://ghcr.io/token");
    assert_eq!(fetch(&a).form.as_deref(), Some("grant_type=password&username=u&password=p&scope=repository:o/i:pull&service=ghcr.io"));
}

#[test]
fn token_without_a_table_realm_discovers_it_from_the_upstream_challenge() {
    let url = "https://cloudsmith.mirror.example.com/token?scope=repository:o/i:pull&service=x";
    let r = request("GET", url);
    let ping = step(&r, None);
    let f = fetch(&ping);
    // The discovery carries none of the client's headers and always comes back.
    assert_eq!((f.url.as_str(), f.phase, f.client_headers, f.resume), ("https://docker.cloudsmith.io/v2/", Phase::Discover, false, RESUME_ALL));
    // The discovered realm's own query is dropped: the mirror writes the query.
    let up = upstream(Phase::Discover, 401, r#"Bearer realm="https://auth.cloudsmith.io/t?x=1&scope=repository:evil:push",service="x""#, "");
    let f2 = step(&r, Some(&up));
    assert_eq!(fetch(&f2).url, "https://auth.cloudsmith.io/t?scope=repository:o/i:pull&service=x");
    assert_eq!(fetch(&f2).phase, Phase::Token);
    // Plain http on an https route, or user info: not called.
    for realm in ["http://auth.cloudsmith.io/t", "https://user:pw@auth.cloudsmith.io/t", "https://@evil.example/t"] {
        let ch = format!("Bearer realm=\"{realm}\"");
        let a = step(&r, Some(&Upstream { www_authenticate: &ch, ..upstream(Phase::Discover, 401, "", "") }));
        assert_eq!(answered(&a), (502, "UNAVAILABLE".into()), "{realm}");
        assert!(message(&a).contains("realm the mirror does not call"), "{}", message(&a));
    }
    // Without the route's credentials, another domain's realm is the
    // upstream's to name (the client's own login goes there, as it would
    // without the mirror).
    let up = upstream(Phase::Discover, 401, r#"Bearer realm="https://auth.elsewhere.example/t""#, "");
    assert_eq!(fetch(&step(&r, Some(&up))).url, "https://auth.elsewhere.example/t?scope=repository:o/i:pull&service=x");
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
fn local_errors_have_the_right_status_and_code() {
    let long_url = format!("https://docker.mirror.example.com/v2/a/manifests/latest?{}", "q".repeat(MAX_URL));
    let cases: Vec<(&'static str, String, u16, &str)> = vec![
        ("GET", "https://evil\".example/v2/".into(), 400, "NAME_INVALID"),
        ("GET", "https://a..b/v2/".into(), 400, "NAME_INVALID"),
        ("GET", "https://docker.mirror.example.com:99999/v2/".into(), 400, "NAME_INVALID"),
        ("GET", "ftp://docker.mirror.example.com/v2/".into(), 400, "UNSUPPORTED"),
        ("GET", "/v2/".into(), 400, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/a/manifests/b?x=1 2".into(), 400, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/a/manifests/b\r\nX: y".into(), 400, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/ä/manifests/b".into(), 400, "UNSUPPORTED"),
        ("GET", long_url, 414, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v2/../../etc/passwd/manifests/x".into(), 404, "NAME_INVALID"),
        ("GET", "https://docker.mirror.example.com/v2/a%2Fb/manifests/x".into(), 404, "NAME_INVALID"),
        ("GET", "https://docker.mirror.example.com/v2/busybox/manifests/-bad".into(), 404, "MANIFEST_UNKNOWN"),
        ("GET", "https://docker.mirror.example.com/v2/busybox/blobs/sha256:12".into(), 400, "DIGEST_INVALID"),
        ("GET", "https://docker.mirror.example.com/v1/_ping".into(), 404, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v1/search".into(), 400, "UNSUPPORTED"),
        ("GET", "https://docker.mirror.example.com/v1/search?q=%zz".into(), 400, "UNSUPPORTED"),
        ("GET", "https://mirror.example.com/v2/busybox/manifests/1?ns=nope.example".into(), 404, "NAME_UNKNOWN"),
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
    // page, or a body read), or a fetch whose origin is a route's upstream or realm.
    let hosts = ["docker.mirror.example.com", "mirror.example.com", "ghcr.mirror.example.com", "k8s.mirror.example.com", "x.example", "[::1]:1", "a_b"];
    let paths = ["/", "/v2/", "/v2/a/manifests/b", "/v2/ghcr.io/a/manifests/b", "/v2/a/b/blobs/", "//evil.example/v2/", "/token", "/token/ghcr.io", "/token/evil.example", "/v2/_catalog", "/@evil.example/"];
    let queries = ["", "?ns=evil.example", "?ns=ghcr.io", "?scope=repository:evil.example/x:pull", "?url=http://evil.example/"];
    for h in hosts {
        for p in paths {
            for q in queries {
                for m in ["GET", "HEAD", "POST"] {
                    let url = format!("https://{h}{p}{q}");
                    let r = Request { body: Some("scope=x"), ..request(m, &url) };
                    match step(&r, None) {
                        Action::Reply(r) => assert!((400..500).contains(&r.status()), "{m} {url}: {}", r.status()),
                        Action::Page => {}
                        Action::Fetch(f) => {
                            let o = origin(&f.url);
                            let ok = routes().any(|r| origin(r.upstream) == o || r.realm.map(origin) == Some(o));
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
fn url_splitting() {
    assert_eq!(split_url("https://h:1/p/q?x=1#f"), Some(("https", "h:1", "/p/q", "x=1")));
    assert_eq!(split_url("https://h"), Some(("https", "h", "/", "")));
    assert_eq!(split_url("https://h?x"), Some(("https", "h", "/", "x")));
    assert_eq!(split_url("nothing"), None);
}
