//! Fallback sources over the shipped table: Docker Hub's route asks
//! mirror.gcr.io, then ECR Public's copy of the official images, for a
//! manifest or blob its upstream throttled or failed. Each upstream answer
//! is given to the planner as the entry gives it; what it does next is the
//! whole of the behaviour (the e2e suite runs it with real clients).

use edge_mirror::fallback::{token, NO_TOKEN, OTHER_DIGEST, TOKEN};
use edge_mirror::messages::Msg;
use edge_mirror::plan::{step, step_logged, Action, Fetch, Phase, Request, Upstream, RESUME_401, RESUME_429, RESUME_5XX, RESUME_ALL, RESUME_ERR, RESUME_TOKEN};

const H: &str = "https://docker.mirror.example.com";
const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const E: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn fetch(a: &Action) -> &Fetch {
    match a {
        Action::Fetch(f) => f,
        other => panic!("expected a fetch, got {other:?}"),
    }
}

fn client(url: &str) -> Request<'_> {
    Request { authorization: true, ..Request::new("GET", url) }
}

fn answer<'a>(phase: Phase, status: u16, trail: &'a str) -> Upstream<'a> {
    Upstream { phase: Some(phase), status, trail, ..Upstream::default() }
}

/// The first fallback fetch after the route's own answer `up`.
fn first(url: &str, up: Upstream<'_>) -> Fetch {
    match step(&client(url), Some(&up)) {
        Action::Fetch(f) => f,
        other => panic!("{url}: expected a fallback fetch, got {other:?}"),
    }
}

#[test]
fn the_normal_path_is_unchanged() {
    let url = format!("{H}/v2/busybox/manifests/latest");
    let f = fetch(&step(&client(&url), None)).clone_parts();
    assert_eq!(f, ("https://registry-1.docker.io/v2/library/busybox/manifests/latest".into(), Phase::Api, RESUME_401 | RESUME_429 | RESUME_5XX));
    // Only manifests and blobs: pings, tags and tokens never come back on a 5xx.
    for u in [format!("{H}/v2/"), format!("{H}/v2/busybox/tags/list"), format!("{H}/token?scope=repository:busybox:pull")] {
        let a = step(&client(&u), None);
        assert_eq!(fetch(&a).resume & RESUME_5XX, 0, "{u}");
    }
    // Answers that are the upstream's to give go to the client as always.
    for status in [200, 206, 304, 400, 401, 403, 404, 500] {
        let up = Upstream { www_authenticate: "Bearer realm=\"https://auth.docker.io/token\"", ..answer(Phase::Api, status, "") };
        match step(&client(&url), Some(&up)) {
            Action::Relay { source: None, held: false, error: None, .. } => {}
            other => panic!("{status}: {other:?}"),
        }
    }
    // A route without fallbacks: its 503 is the client's, as it always was.
    let ghcr = "https://ghcr.mirror.example.com/v2/o/i/manifests/1";
    assert_eq!(fetch(&step(&client(ghcr), None)).resume & RESUME_5XX, 0);
}

trait Parts {
    fn clone_parts(&self) -> (String, Phase, u8);
}

impl Parts for Fetch {
    fn clone_parts(&self) -> (String, Phase, u8) {
        (self.url.clone(), self.phase, self.resume)
    }
}

#[test]
fn a_throttled_or_failed_upstream_sends_the_same_request_to_the_first_fallback() {
    let url = format!("{H}/v2/busybox/manifests/latest");
    let failures: [(u16, &str, &str); 6] = [
        (429, "", "429"),
        (502, "", "502"),
        (503, "", "503"),
        (504, "", "504"),
        (0, "TypeError: Network connection lost.", "unreachable"),
        (0, "TimeoutError: The operation was aborted due to timeout", "timed out"),
    ];
    for (status, error, said) in failures {
        let f = first(&url, Upstream { error, ..answer(Phase::Api, status, "") });
        // The same name mapped by the fallback's settings (library/ kept).
        assert_eq!(f.url, "https://mirror.gcr.io/v2/library/busybox/manifests/latest");
        assert_eq!((f.phase, f.head, f.follow, f.hold), (Phase::Fallback, false, true, true), "{status}");
        // The client's allow-listed headers, but not its Authorization, and
        // nothing of the mirror's.
        assert!(f.client_headers && f.anonymous && f.authorization.is_none() && !f.credentials && f.form.is_none());
        // Back on any error; a success goes to the client, naming its source.
        assert_eq!(f.resume, RESUME_ERR);
        assert_eq!(f.source.as_deref(), Some(format!("mirror.gcr.io (fallback: docker.io {said})").as_str()));
    }
    // HEAD stays HEAD; a blob and a short name by digest map the same way.
    let f = first(&url, answer(Phase::Api, 429, ""));
    assert!(!f.head);
    let head = Request { method: "HEAD", ..client(&url) };
    let Action::Fetch(f) = step(&head, Some(&answer(Phase::Api, 429, ""))) else { panic!() };
    assert!(f.head);
    let blob = format!("{H}/v2/library/busybox/blobs/{D}");
    assert_eq!(first(&blob, answer(Phase::Api, 503, "")).url, format!("https://mirror.gcr.io/v2/library/busybox/blobs/{D}"));
    // By path prefix on the shared host (the name without it), and by ns.
    for shared in ["https://mirror.example.com/v2/docker.io/bitnami/redis/manifests/7", "https://mirror.example.com/v2/bitnami/redis/manifests/7?ns=docker.io"] {
        assert_eq!(first(shared, answer(Phase::Api, 429, "")).url, "https://mirror.gcr.io/v2/bitnami/redis/manifests/7", "{shared}");
    }
}

#[test]
fn a_fallback_that_challenges_gets_the_mirrors_own_pull_token_then_the_request_again() {
    let url = format!("{H}/v2/busybox/manifests/latest");
    let f = first(&url, answer(Phase::Api, 429, ""));
    // mirror.gcr.io's table entry names no realm: the challenge's, with its service.
    let ch = "Bearer realm=\"https://mirror.gcr.io/v2/token\",service=\"mirror.gcr.io\",scope=\"repository:library/busybox:pull\"";
    let up = Upstream { www_authenticate: ch, ..answer(Phase::Fallback, 401, &f.trail) };
    let t = step(&client(&url), Some(&up));
    let t = fetch(&t);
    assert_eq!(t.url, "https://mirror.gcr.io/v2/token?scope=repository:library/busybox:pull&service=mirror.gcr.io");
    assert_eq!((t.phase, t.head, t.form.as_deref()), (Phase::FallbackToken, false, None));
    // Nothing of the client's, no credentials (this fallback has none).
    assert!(!t.client_headers && t.authorization.is_none() && !t.credentials);
    assert_eq!(t.resume, RESUME_ALL | RESUME_TOKEN);
    assert_eq!(t.trail, f.trail, "the trail rides along unchanged");
    // A relative realm is relative to the fallback's /v2/.
    let up = Upstream { www_authenticate: "Bearer realm=\"/v2/token\"", ..answer(Phase::Fallback, 401, &f.trail) };
    assert_eq!(fetch(&step(&client(&url), Some(&up))).url, "https://mirror.gcr.io/v2/token?scope=repository:library/busybox:pull");
    // The token answer (its token, as the entry read it from the JSON): the
    // request again, with that token and still without the client's
    // Authorization.
    let up = Upstream { body: "t0k.en", ..answer(Phase::FallbackToken, 200, &f.trail) };
    let r = step(&client(&url), Some(&up));
    let r = fetch(&r);
    assert_eq!((r.url.as_str(), r.phase), ("https://mirror.gcr.io/v2/library/busybox/manifests/latest", Phase::FallbackRetry));
    assert_eq!(r.authorization.as_deref(), Some("Bearer t0k.en"));
    assert!(r.client_headers && r.anonymous && !r.hold && r.resume == RESUME_ERR);
    // ECR Public's table realm is used whatever its challenge says.
    let trail = format!("429.{}.404,", Msg::PullLimit as u8);
    let up = Upstream { www_authenticate: "Bearer realm=\"https://elsewhere.example/t\",service=\"public.ecr.aws\"", ..answer(Phase::Fallback, 401, &trail) };
    let t = step(&client(&url), Some(&up));
    assert_eq!(fetch(&t).url, "https://public.ecr.aws/token/?scope=repository:docker/library/busybox:pull&service=public.ecr.aws");
}

/// The entry reads the token out of the JSON answer (src/token_answer.js,
/// with its own table in tests/entry/); the planner takes it only when a
/// header can carry it.
#[test]
fn a_token_is_taken_only_when_a_header_can_carry_it() {
    for (t, ok) in [
        ("a.b-c_d", true),
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", true),
        ("dckr_jwt_abc+/=", true),
        ("", false),
        ("with space", false),
        ("esc\"aped", false),
        ("back\\slash", false),
        ("tab\tbed", false),
        ("line\nbreak", false),
        ("caf\u{e9}", false),
        ("del\u{7f}", false),
    ] {
        assert_eq!(token(t), ok.then_some(t), "{t:?}");
    }
    // The token comes back as the UPSTREAM field and goes out as Bearer.
    let url = format!("{H}/v2/busybox/manifests/latest");
    let trail = format!("429.{}.,", Msg::PullLimit as u8);
    let retry = step(&client(&url), Some(&Upstream { body: "tok.en", ..answer(Phase::FallbackToken, 200, &trail) }));
    assert_eq!(fetch(&retry).authorization.as_deref(), Some("Bearer tok.en"));
    let none = step(&client(&url), Some(&Upstream { body: "to ken", ..answer(Phase::FallbackToken, 200, &trail) }));
    assert!(!matches!(none, Action::Fetch(ref f) if f.authorization.is_some()), "{none:?}");
}

#[test]
fn when_no_fallback_has_it_the_client_gets_the_routes_own_answer_saying_what_each_said() {
    let url = format!("{H}/v2/busybox/manifests/latest");
    let f = first(&url, Upstream { body: "You have reached your unauthenticated pull rate limit", ..answer(Phase::Api, 429, "") });
    // mirror.gcr.io: 404. Next: ECR Public.
    let g = fetch(&step(&client(&url), Some(&answer(Phase::Fallback, 404, &f.trail)))).clone_parts();
    assert_eq!((g.0.as_str(), g.1), ("https://public.ecr.aws/v2/docker/library/busybox/manifests/latest", Phase::Fallback));
    let g = match step(&client(&url), Some(&answer(Phase::Fallback, 404, &f.trail))) {
        Action::Fetch(g) => g,
        other => panic!("{other:?}"),
    };
    assert!(!g.hold, "only the first fallback fetch keeps the route's answer");
    // Its token request refused: the route's own 429 (held), with the list.
    let a = step(&client(&url), Some(&answer(Phase::FallbackToken, 401, &g.trail)));
    let want = format!("docker.io; fallbacks tried: mirror.gcr.io 404, ecr-public-library token {}", 401);
    assert_eq!(a, Action::Relay { challenges: None, location: None, error: Some((Msg::PullLimit, want)), source: None, held: true });
    assert_eq!(TOKEN + 401, 1401);
    // Every fallback throttled too: still the route's 429.
    let g2 = step(&client(&url), Some(&answer(Phase::Fallback, 429, &f.trail)));
    let a = step(&client(&url), Some(&answer(Phase::Fallback, 429, &fetch(&g2).trail)));
    assert!(matches!(&a, Action::Relay { error: Some((Msg::PullLimit, s)), held: true, .. } if s.ends_with("mirror.gcr.io 429, ecr-public-library 429")), "{a:?}");
    // A 503 from the route: its own status and body, after the mirror's word.
    let f = first(&url, answer(Phase::Api, 503, ""));
    let g = step(&client(&url), Some(&Upstream { error: "TypeError: x", ..answer(Phase::Fallback, 0, &f.trail) }));
    let a = step(&client(&url), Some(&answer(Phase::Fallback, 500, &fetch(&g).trail)));
    assert_eq!(a, Action::Relay {
        challenges: None,
        location: None,
        error: Some((Msg::UpstreamDown, "docker.io; fallbacks tried: mirror.gcr.io unreachable, ecr-public-library 500".into())),
        source: None,
        held: true
    });
    // An upstream that could not be reached: the mirror's own 502 (or 504),
    // naming it and what the fallbacks said.
    let f = first(&url, Upstream { error: "TimeoutError: aborted", ..answer(Phase::Api, 0, "") });
    let g = step(&client(&url), Some(&answer(Phase::Fallback, 404, &f.trail)));
    let a = step(&client(&url), Some(&answer(Phase::Fallback, 404, &fetch(&g).trail)));
    match a {
        Action::Reply(r) => {
            assert_eq!((r.msg, r.status()), (Msg::TimedOut, 504));
            assert_eq!(r.subject, "https://registry-1.docker.io; fallbacks tried: mirror.gcr.io 404, ecr-public-library 404");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fallback_whose_allow_list_does_not_serve_the_name_is_not_asked() {
    // ECR Public's copy has official images only (allow = ["library/*"]).
    let url = format!("{H}/v2/grafana/grafana/manifests/10");
    let f = first(&url, answer(Phase::Api, 429, ""));
    assert_eq!(f.url, "https://mirror.gcr.io/v2/grafana/grafana/manifests/10");
    let a = step(&client(&url), Some(&answer(Phase::Fallback, 404, &f.trail)));
    assert!(matches!(&a, Action::Relay { error: Some((_, s)), held: true, .. } if s == "docker.io; fallbacks tried: mirror.gcr.io 404"), "{a:?}");
}

#[test]
fn a_manifest_by_digest_is_served_only_with_that_digest() {
    let url = format!("{H}/v2/busybox/manifests/{D}");
    let f = first(&url, answer(Phase::Api, 429, ""));
    assert_eq!(f.resume, RESUME_ERR | RESUME_ALL, "a success comes back to be checked");
    // Another digest: not served; the next fallback is asked.
    let up = Upstream { digest: E, ..answer(Phase::Fallback, 200, &f.trail) };
    let g = step(&client(&url), Some(&up));
    assert_eq!(fetch(&g).url, format!("https://public.ecr.aws/v2/docker/library/busybox/manifests/{D}"));
    assert!(fetch(&g).trail.ends_with(&format!("{OTHER_DIGEST},")));
    // None at all: not served either.
    let up = Upstream { digest: "", ..answer(Phase::Fallback, 200, &fetch(&g).trail) };
    let a = step(&client(&url), Some(&up));
    assert!(matches!(&a, Action::Relay { error: Some((_, s)), .. } if s.ends_with("mirror.gcr.io another digest, ecr-public-library another digest")), "{a:?}");
    // The digest asked for: the client gets it, with its source.
    let up = Upstream { digest: D, ..answer(Phase::Fallback, 200, &f.trail) };
    assert_eq!(
        step(&client(&url), Some(&up)),
        Action::Relay { challenges: None, location: None, error: None, source: Some("mirror.gcr.io (fallback: docker.io 429)".into()), held: false }
    );
    // A tag is served as the copy has it (it may lag): no check, no return.
    let tag = first(&format!("{H}/v2/busybox/manifests/latest"), answer(Phase::Api, 429, ""));
    assert_eq!(tag.resume & RESUME_ALL, 0);
}

#[test]
fn a_token_answer_without_a_token_moves_on() {
    let url = format!("{H}/v2/busybox/blobs/{D}");
    let f = first(&url, answer(Phase::Api, 429, ""));
    let up = Upstream { body: r#"{"errors":[]}"#, ..answer(Phase::FallbackToken, 200, &f.trail) };
    let g = step(&client(&url), Some(&up));
    assert!(fetch(&g).trail.ends_with(&format!("{NO_TOKEN},")));
    // A challenge without a Bearer realm: no token to ask for.
    let up = Upstream { www_authenticate: "Basic realm=\"x\"", ..answer(Phase::Fallback, 401, &f.trail) };
    let g = step(&client(&url), Some(&up));
    assert!(fetch(&g).trail.ends_with(&format!("{NO_TOKEN},")));
    assert_eq!(fetch(&g).phase, Phase::Fallback);
}

#[test]
fn fallback_only_routes_serve_no_request_of_their_own() {
    for ns in ["mirror.gcr.io", "ecr-public-library"] {
        let a = step(&client(&format!("https://mirror.example.com/v2/library/busybox/manifests/1?ns={ns}")), None);
        assert!(matches!(&a, Action::Reply(r) if r.msg == Msg::NsUnknown), "{ns}: {a:?}");
        let a = step(&client(&format!("https://mirror.example.com/token/{ns}?scope=repository:busybox:pull")), None);
        assert!(matches!(&a, Action::Reply(r) if r.msg == Msg::TokenRegistry), "{ns}: {a:?}");
    }
}

#[test]
fn the_log_line_names_the_fallback_that_answers() {
    let url = format!("{H}/v2/busybox/manifests/latest");
    let (a, about) = step_logged(&client(&url), Some(&answer(Phase::Api, 429, "")));
    assert_eq!(fetch(&a).phase, Phase::Fallback);
    // Logging is off in the shipped table; the planner says nothing then.
    assert_eq!(about, None);
}

#[test]
fn a_trail_that_is_not_the_planners_is_a_failed_exchange_not_a_panic() {
    let url = format!("{H}/v2/busybox/manifests/latest");
    for trail in ["", "x", "429", "429.x.", "429.200.", "429.1.,,,,,,,,,,,,,,,,", "99999999999.1.404,"] {
        for phase in [Phase::Fallback, Phase::FallbackToken, Phase::FallbackRetry] {
            let a = step(&client(&url), Some(&answer(phase, 404, trail)));
            assert!(matches!(a, Action::Reply(_) | Action::Relay { .. } | Action::Fetch(_)), "{trail:?}: {a:?}");
        }
    }
}
