//! Token scope and token-query rewriting, table-driven.

use edge_mirror::routes::{by_registry, get, Route};
use edge_mirror::scope::{first_repository, percent_decode, percent_encode, rewrite_scope, rewrite_token_params, Found, QueryError, MAX_SCOPES};

fn route(registry: &str) -> Route {
    by_registry(registry).and_then(get).expect("the shipped table has the route")
}

fn scope(input: &str, registry: &str) -> String {
    let mut out = String::new();
    rewrite_scope(input, &route(registry), None, &mut Found::default(), &mut out).expect("rewrites");
    out
}

#[test]
fn scopes_get_library_only_for_single_component_repositories() {
    let cases = [
        ("repository:busybox:pull", "repository:library/busybox:pull"),
        ("repository:library/busybox:pull", "repository:library/busybox:pull"),
        ("repository(plugin):busybox:pull", "repository(plugin):library/busybox:pull"),
        // host:port names keep their colon; not a single component, not rewritten.
        ("repository:localhost:5000/foo:pull", "repository:localhost:5000/foo:pull"),
        ("repository:evil.example:pull", "repository:library/evil.example:pull"),
        // Space-separated list (OAuth2 form), each item on its own.
        ("repository:a:pull repository:b/c:pull", "repository:library/a:pull repository:b/c:pull"),
        // The route's prefix is the client's, not the upstream's.
        ("repository:docker.io/busybox:pull", "repository:library/busybox:pull"),
        ("repository:docker.io/library/busybox:pull", "repository:library/busybox:pull"),
        ("repository:docker.io/team/app:pull", "repository:team/app:pull"),
        ("", ""),
    ];
    for (input, want) in cases {
        assert_eq!(scope(input, "docker.io"), want, "{input:?}");
    }
    // Without the library rule only the prefix goes.
    assert_eq!(scope("repository:busybox:pull", "ghcr.io"), "repository:busybox:pull");
    assert_eq!(scope("repository:ghcr.io/owner/image:pull", "ghcr.io"), "repository:owner/image:pull");
}

#[test]
fn scopes_are_pull_only() {
    let cases = [
        ("repository:user/image:pull,push", "repository:user/image:pull"),
        ("repository:user/image:push,pull,delete", "repository:user/image:pull"),
        ("repository:user/image:*", ""),
        ("repository:user/image:push", ""),
        ("registry:catalog:*", ""),
        ("repository:a/b:push repository:c/d:pull", "repository:c/d:pull"),
        // Not a scope at all: dropped rather than passed on unjudged.
        ("nonsense", ""),
        ("repository:BusyBox:pull", "repository:library/BusyBox:pull"),
        ("repository::pull", "repository:library/:pull"),
    ];
    for (input, want) in cases {
        assert_eq!(scope(input, "docker.io"), want, "{input:?}");
    }
}

#[test]
fn token_query_rewrites_every_scope_and_keeps_the_rest() {
    let cases = [
        (
            "scope=repository%3Abusybox%3Apull&service=registry.docker.io",
            "scope=repository:library/busybox:pull&service=registry.docker.io",
        ),
        (
            "service=x&scope=repository:busybox:pull&scope=repository:alpine:pull,push&account=me",
            "service=registry.docker.io&scope=repository:library/busybox:pull&scope=repository:library/alpine:pull&account=me",
        ),
        // OAuth2 form: space-joined scopes with '+', credentials copied byte for byte.
        (
            "grant_type=password&username=u%40x&password=p%26w&scope=repository%3Anginx%3Apull+repository%3Aa%2Fb%3Apull&service=s&client_id=containerd",
            "grant_type=password&username=u%40x&password=p%26w&scope=repository:library/nginx:pull%20repository:a/b:pull&service=registry.docker.io&client_id=containerd",
        ),
        ("", ""),
        ("&&account=x&", "account=x"),
        // A scope left with no action goes entirely.
        ("scope=&account=x", "account=x"),
        ("scope=repository%3Aa%3Apush&account=x", "account=x"),
    ];
    for (input, want) in cases {
        let mut out = String::new();
        rewrite_token_params(input, &route("docker.io"), None, &mut out).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
        assert_eq!(out, want, "{input:?}");
    }
    assert_eq!(first_repository("service=x&scope=registry%3Acatalog%3A*+repository%3Aghcr.io%2Fa%2Fb%3Apull").as_deref(), Some("ghcr.io/a/b"));
    assert_eq!(first_repository("service=x"), None);
}

#[test]
fn token_query_errors() {
    let many = vec!["scope=repository:a:pull"; MAX_SCOPES + 1].join("&");
    let ok = vec!["scope=repository:a:pull"; MAX_SCOPES].join("&");
    let cases: &[(&str, Option<QueryError>)] = &[
        ("scope=%zz", Some(QueryError::BadEscape)),
        ("scope=%4", Some(QueryError::BadEscape)),
        ("scope=%ff%fe", Some(QueryError::BadEscape)),
        ("scope=repository%3A%C3%BC%3Apull", Some(QueryError::BadEscape)),
        (&many, Some(QueryError::TooManyScopes)),
        (&ok, None),
    ];
    for (input, want) in cases {
        let mut out = String::new();
        assert_eq!(rewrite_token_params(input, &route("docker.io"), None, &mut out).err(), *want, "{input:.40}");
    }
    // Routed by its scopes on a shared host: all of them must lead to the same route.
    let mut out = String::new();
    let mixed = "scope=repository:ghcr.io/a/b:pull&scope=repository:quay.io/c/d:pull";
    assert_eq!(rewrite_token_params(mixed, &route("ghcr.io"), Some("mirror.example.com"), &mut out).err(), Some(QueryError::Mixed));
    let mut out = String::new();
    let same = "scope=repository:ghcr.io/a/b:pull&scope=repository:ghcr.io/c/d:pull";
    assert!(rewrite_token_params(same, &route("ghcr.io"), Some("mirror.example.com"), &mut out).is_ok());
    assert_eq!(out, "scope=repository:a/b:pull&scope=repository:c/d:pull");
}

#[test]
fn percent_round_trip() {
    for s in ["repository:a/b:pull", "a b&c=d%e+f#g", ""] {
        let mut enc = String::new();
        percent_encode(s, &mut enc);
        assert!(!enc.contains(['&', ' ', '#', '+', '=']) || s.is_empty(), "{enc}");
        assert_eq!(percent_decode(&enc, false).as_deref(), Ok(s));
    }
    assert_eq!(percent_decode("a+b%20c", false).as_deref(), Ok("a b c"));
    // Only ASCII comes out: an error, or a '?' for each non-ASCII byte.
    assert_eq!(percent_decode("%C3%BCx", false), Err(QueryError::BadEscape));
    assert_eq!(percent_decode("%C3%BCx", true).as_deref(), Ok("??x"));
    assert_eq!(percent_decode("ü", true).as_deref(), Ok("??"));
}
