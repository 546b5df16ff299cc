//! The planner with every route-table key in use: credentials, allow lists,
//! repository prefixes, routes that pass redirects, request logs, the page
//! turned off. Every test runs on `tests/routes.every-key.toml`, installed
//! on its thread by the `step` wrappers below.

mod tables;

use edge_mirror::oci::error_body;
use edge_mirror::plan::{Action, Fetch, Phase, Request, Secret, Upstream, RESUME_ALL};
use edge_mirror::routes::{by_registry, get, log, log_client, page};

const TABLE: &str = "tests/routes.every-key.toml";

fn step(r: &Request<'_>, u: Option<&Upstream<'_>>) -> Action {
    tables::use_table(TABLE);
    edge_mirror::plan::step(r, u)
}

fn step_logged(r: &Request<'_>, u: Option<&Upstream<'_>>) -> (Action, Option<String>) {
    tables::use_table(TABLE);
    edge_mirror::plan::step_logged(r, u)
}

const M: &str = "https://mirror.example.com";
const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn req(method: &'static str, url: &str) -> Action {
    step(&Request::new(method, url), None)
}

fn fetch(a: &Action) -> &Fetch {
    match a {
        Action::Fetch(f) => f,
        other => panic!("expected a fetch, got {other:?}"),
    }
}

/// (status, code, message) of a local answer, as the entry writes it.
fn answered(a: &Action) -> (u16, String, String) {
    match a {
        Action::Reply(r) => {
            let j = error_body(r.msg, &r.subject);
            let parts: Vec<&str> = j.split('"').collect();
            (r.status(), parts[5].to_string(), parts[9].to_string())
        }
        other => panic!("expected a local answer, got {other:?}"),
    }
}

fn up(phase: Phase, status: u16, www_authenticate: &'static str, location: &'static str) -> Upstream<'static> {
    Upstream { phase: Some(phase), status, www_authenticate, location, ..Upstream::default() }
}

#[test]
fn the_table_uses_every_key() {
    tables::use_table(TABLE);
    assert!(log() && log_client() && !page());
    let docker = by_registry("docker.io").and_then(get).expect("docker route");
    assert!(docker.credentials.is_some() && !docker.allow.is_empty() && docker.prefix.is_some());
    assert!(by_registry("gcr.io").and_then(get).is_some_and(|r| r.repository.is_some()));
}

#[test]
fn allow_list_refuses_other_repositories_before_any_subrequest() {
    for (path, ok) in [
        ("/v2/busybox/manifests/1", true),
        ("/v2/library/busybox/manifests/1", true),
        ("/v2/docker.io/busybox/manifests/1", true),
        ("/v2/myorg/app/manifests/1", true),
        ("/v2/myorg/team/app/manifests/1", true),
        ("/v2/owner/exact/manifests/1", true),
        ("/v2/owner/other/manifests/1", false),
        ("/v2/myorgx/app/manifests/1", false),
        ("/v2/docker.io/evil/app/manifests/1", false),
    ] {
        let a = req("GET", &format!("{M}{path}"));
        if ok {
            assert_eq!(fetch(&a).phase, Phase::Api, "{path}");
        } else {
            let (status, code, message) = answered(&a);
            assert_eq!((status, code.as_str()), (403, "DENIED"), "{path}");
            let name = path.trim_start_matches("/v2/").trim_end_matches("/manifests/1");
            assert_eq!(message, format!("this mirror does not serve the repository: {name}"));
        }
    }
    assert_eq!(answered(&req("GET", &format!("{M}/v2/_catalog"))).0, 403);
    // Token scopes: the allowed ones go, the others are dropped; none allowed is a 403.
    let a = step(
        &Request { authorization: true, ..Request::new("GET", &format!("{M}/token?scope=repository:busybox:pull&scope=repository:evil/x:pull")) },
        None,
    );
    assert_eq!(fetch(&a).url, "https://auth.docker.io/token?scope=repository:library/busybox:pull");
    let a = step(&Request { authorization: true, ..Request::new("GET", &format!("{M}/token?scope=repository:evil/x:pull&service=s")) }, None);
    assert_eq!(answered(&a), (403, "DENIED".into(), "this mirror does not serve the repository: evil/x".into()));
}

#[test]
fn credentials_are_used_only_for_anonymous_token_requests() {
    let url = format!("{M}/token?scope=repository:busybox:pull&service=registry.docker.io");
    let anon = Request::new("GET", &url);
    assert_eq!(step(&anon, None), Action::ReadSecret("DOCKERHUB_CREDENTIALS"));
    // user:token: the entry presents it (HTTP Basic on the GET, the e2e
    // suite checks the header the realm gets); the action does not carry it.
    let a = step(&Request { secret: Secret::Value("u:p+w/x"), ..anon }, None);
    let f = fetch(&a);
    assert_eq!((f.credentials, f.authorization.as_deref()), (true, None));
    assert_eq!((f.head, f.client_headers, f.form.as_deref()), (false, true, None));
    // Unset or not user:token: 503 naming the secret, never an anonymous fallback.
    for secret in [Secret::Unset, Secret::Value("nocolon"), Secret::Value(":token"), Secret::Value("user:"), Secret::Value("u:p\n"), Secret::Value("ü:p")] {
        let (status, code, message) = answered(&step(&Request { secret, ..anon }, None));
        assert_eq!((status, code.as_str()), (503, "UNAVAILABLE"), "{secret:?}");
        assert!(message.ends_with(": DOCKERHUB_CREDENTIALS") && message.contains("wrangler secret put"), "{message}");
    }
    // A client with its own credentials uses them: no secret is read.
    let own = step(&Request { authorization: true, ..anon }, None);
    assert_eq!((fetch(&own).authorization.as_deref(), fetch(&own).credentials), (None, false));
    // An anonymous OAuth2 form gets the account's username and password; a
    // form with a username of its own keeps it.
    let form = "grant_type=password&scope=repository%3Abusybox%3Apull&service=s";
    let token_url = format!("{M}/token");
    let post = Request { body: Some(form), secret: Secret::Value("u:p&w"), ..Request::new("POST", &token_url) };
    let a = step(&post, None);
    assert_eq!(fetch(&a).form.as_deref(), Some("grant_type=password&scope=repository:library/busybox:pull&service=registry.docker.io"));
    assert_eq!((fetch(&a).authorization.as_deref(), fetch(&a).credentials), (None, true), "the entry appends username and password");
    let mine = "grant_type=password&username=me&password=pw&scope=repository%3Abusybox%3Apull";
    let a = step(&Request { body: Some(mine), ..post }, None);
    assert_eq!(fetch(&a).form.as_deref(), Some("grant_type=password&username=me&password=pw&scope=repository:library/busybox:pull"));
    assert!(!fetch(&a).credentials);
    // No secret on a route without credentials.
    let a = req("GET", "https://gcr.mirror.example.com/token?scope=repository:app:pull");
    assert!(matches!(a, Action::Fetch(_) | Action::Reply(_)));
}

#[test]
fn repository_prefix_maps_names_both_ways() {
    let a = step(&Request { authorization: true, ..Request::new("GET", "https://gcr.mirror.example.com/v2/app/manifests/1") }, None);
    assert_eq!(fetch(&a).url, "https://gcr.io/v2/my-project/app/manifests/1");
    // The upstream's challenge names my-project/app; the client asked for app.
    let ch = r#"Bearer realm="https://gcr.io/v2/token",scope="repository:my-project/app:pull repository:other/x:pull""#;
    let a = step(&Request::new("GET", "https://gcr.mirror.example.com/v2/app/manifests/1"), Some(&up(Phase::Api, 401, ch, "")));
    match a {
        Action::Relay { challenges: Some(c), .. } => {
            assert_eq!(c, r#"Bearer realm="https://gcr.mirror.example.com/token",scope="repository:app:pull repository:other/x:pull""#)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn passed_redirects_point_back_at_the_mirror_when_they_stay_on_the_upstream() {
    let path = format!("/v2/pass.example/team/app/blobs/{D}");
    let url = format!("{M}{path}");
    let r = Request::new("GET", &url);
    let f = step(&r, None);
    assert_eq!(fetch(&f).url, format!("http://127.0.0.1:5000/v2/team/app/blobs/{D}"));
    assert!(!fetch(&f).follow);
    let cases = [
        // Another host (a CDN): as it is, made absolute.
        ("https://cdn.example/b?sig=1", "https://cdn.example/b?sig=1".to_string()),
        // The upstream's own API: back through the mirror, with the client's name.
        ("/v2/team/app/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", format!("{M}/v2/pass.example/team/app/blobs/{D}")),
        ("http://127.0.0.1:5000/v2/team/app/manifests/x?a=1", format!("{M}/v2/pass.example/team/app/manifests/x?a=1")),
        // The upstream, but not its registry API: as it is.
        ("/storage/x", "http://127.0.0.1:5000/storage/x".to_string()),
    ];
    for (loc, want) in cases {
        match step(&r, Some(&up(Phase::Api, 307, "", loc))) {
            Action::Relay { location: Some(l), challenges: None, error: None, source: None, held: false } => assert_eq!(l, want, "{loc}"),
            other => panic!("{loc}: {other:?}"),
        }
    }
    // Reached by ns: the Location keeps ns so the client stays on the route.
    let r = Request::new("GET", "https://docker.mirror.example.com/v2/team/app/manifests/1?ns=pass.example");
    match step(&r, Some(&up(Phase::Api, 302, "", "/v2/team/app/manifests/2"))) {
        Action::Relay { location: Some(l), .. } => assert_eq!(l, "https://docker.mirror.example.com/v2/team/app/manifests/2?ns=pass.example"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_page_off_answers_like_the_registry_root() {
    let a = step(&Request { accept_html: true, ..Request::new("GET", &format!("{M}/")) }, None);
    assert_eq!(answered(&a).0, 401);
}

#[test]
fn says_what_each_request_was_about_for_its_log_line() {
    // A logged fetch does not come back for its line: the entry writes it
    // from what the action said and what it saw.
    let url = format!("{M}/v2/busybox/blobs/{D}");
    let r = Request { authorization: true, ..Request::new("GET", &url) };
    let (action, about) = step_logged(&r, None);
    assert_eq!(fetch(&action).resume & RESUME_ALL, 0);
    assert_eq!(about.as_deref(), Some("docker\tblob\t\tlibrary/busybox"));
    // A local answer says it too; so does a relay after a fetch came back.
    let evil = format!("{M}/v2/evil/x/manifests/1");
    let local = Request::new("GET", &evil);
    let (action, about) = step_logged(&local, None);
    assert_eq!(answered(&action).0, 403);
    assert_eq!(about.as_deref(), Some("docker\tmanifest\t\tevil/x"));
    let (action, about) = step_logged(&r, Some(&up(Phase::Api, 401, "Bearer realm=\"https://auth.docker.io/token\"", "")));
    assert!(matches!(action, Action::Relay { challenges: Some(_), .. }));
    assert_eq!(about.as_deref(), Some("docker\tblob\t\tlibrary/busybox"));
    // A token request with the account's secret: neither reading the secret
    // nor the fetch that carries it says anything of it.
    let url = format!("{M}/token?scope=repository:busybox:pull");
    let (action, about) = step_logged(&Request::new("GET", &url), None);
    assert!(matches!(action, Action::ReadSecret(_)) && about.is_none(), "reading a secret does not end the request");
    let t = Request { secret: Secret::Value("u:secret-token"), ..Request::new("GET", &url) };
    let (action, about) = step_logged(&t, None);
    assert!(matches!(action, Action::Fetch(_)));
    assert!(!format!("{action:?}").contains("secret-token"), "the secret is the entry's to present");
    let about = about.expect("what the fetch is about");
    assert_eq!(about, "docker\ttoken\t\tbusybox");
    // A repository name the entry escapes for JSON (tests/e2e) comes as it
    // is, control bytes and tabs included: it is the last field.
    let q = format!("{M}/token?scope=repository%3Amyorg%2F%22x%5C%09y%3Apull");
    let (_, about) = step_logged(&Request { authorization: true, ..Request::new("GET", &q) }, None);
    assert_eq!(about.as_deref(), Some("docker\ttoken\t\tmyorg/\"x\\\ty"));
}

#[test]
fn a_fallback_presents_its_own_credentials_never_the_routes_or_the_clients() {
    let url = format!("{M}/v2/busybox/manifests/1");
    let c = Request { authorization: true, ..Request::new("GET", &url) };
    // Docker Hub (with an account of its own) throttles: the first fallback,
    // a copy under a path, pulled with an account of its own.
    let (a, about) = step_logged(&c, Some(&up(Phase::Api, 429, "", "")));
    let f = fetch(&a);
    assert_eq!(f.url, "https://backup.example/v2/mirror/library/busybox/manifests/1");
    assert!(f.anonymous && !f.credentials && f.authorization.is_none());
    assert_eq!(about.as_deref(), Some("docker\tmanifest\tbackup.example\tlibrary/busybox"), "the log names the source");
    let trail = f.trail.clone();
    // It challenges: its secret is read (not Docker Hub's), then presented
    // on the mirror's token request, which carries nothing of the client's.
    let ch = "Bearer realm=\"https://backup.example/auth\",service=\"backup\"";
    let at_401 = Upstream { www_authenticate: ch, trail: &trail, ..up(Phase::Fallback, 401, "", "") };
    assert_eq!(step(&c, Some(&at_401)), Action::ReadSecret("BACKUP_CREDENTIALS"));
    let t = step(&Request { secret: Secret::Value("bot:pw"), ..c }, Some(&at_401));
    let t = fetch(&t);
    assert_eq!(t.url, "https://backup.example/auth?scope=repository:mirror/library/busybox:pull&service=backup");
    assert!(t.credentials && !t.client_headers && t.authorization.is_none());
    // Its secret unset: that fallback is passed over (no 503: the client's
    // answer is the route's own or another fallback's), and the next one,
    // a route of its own, is asked with its mapping (gcr.io's repository).
    let g = step(&Request { secret: Secret::Unset, ..c }, Some(&at_401));
    assert_eq!(fetch(&g).url, "https://gcr.io/v2/my-project/busybox/manifests/1");
    assert!(fetch(&g).trail.ends_with("4,"), "{}", fetch(&g).trail);
    let (_, about) = step_logged(&Request { secret: Secret::Unset, ..c }, Some(&at_401));
    assert_eq!(about.as_deref(), Some("docker\tmanifest\tgcr.io\tlibrary/busybox"));
    // A fallback only: no request selects it.
    assert_eq!(by_registry("backup.example"), None);
    assert!(by_registry("gcr.io").is_some());
}

/// A route's secret goes only to its own realm, or a discovered one on its
/// upstream's registrable domain, over https, without user info, with the
/// mirror's query only: a challenge naming anything else gets no secret,
/// and that fallback is passed over.
#[test]
fn a_secret_goes_only_to_a_realm_on_its_upstreams_domain() {
    let url = format!("{M}/v2/busybox/manifests/1");
    let c = Request { authorization: true, ..Request::new("GET", &url) };
    let trail = fetch(&step(&c, Some(&up(Phase::Api, 429, "", "")))).trail.clone();
    let with_secret = Request { secret: Secret::Value("bot:pw"), ..c };
    for (realm, called) in [
        ("https://backup.example/auth", Some("https://backup.example/auth")),
        ("https://auth.backup.example/token?scope=x&extra=1", Some("https://auth.backup.example/token")),
        ("/token", Some("https://backup.example/token")),
        ("https://backup.example.evil.example/auth", None),
        ("https://evil.example/auth", None),
        ("http://backup.example/auth", None),
        ("https://bot@backup.example/auth", None),
        ("https://backup.example@evil.example/auth", None),
    ] {
        let ch = format!("Bearer realm=\"{realm}\",service=\"backup\"");
        let at_401 = Upstream { www_authenticate: &ch, trail: &trail, ..up(Phase::Fallback, 401, "", "") };
        let a = step(&with_secret, Some(&at_401));
        let f = fetch(&a);
        match called {
            Some(to) => {
                assert_eq!(f.url, format!("{to}?scope=repository:mirror/library/busybox:pull&service=backup"), "{realm}");
                assert!(f.credentials, "{realm}");
            }
            // Passed over: the next fallback, asked without any secret.
            None => {
                assert_eq!(f.url, "https://gcr.io/v2/my-project/busybox/manifests/1", "{realm}");
                assert!(!f.credentials && f.trail.ends_with("5,"), "{realm}: {}", f.trail);
            }
        }
    }
}
