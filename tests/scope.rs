//! Token scope and token-query rewriting, table-driven.

use edge_mirror::scope::{percent_decode, percent_encode, rewrite_scope, rewrite_token_params, QueryError, MAX_SCOPES};

#[test]
fn scopes_get_library_only_for_single_component_repositories() {
    let cases = [
        ("repository:busybox:pull", "repository:library/busybox:pull"),
        ("repository:library/busybox:pull", "repository:library/busybox:pull"),
        ("repository:user/image:pull,push", "repository:user/image:pull,push"),
        ("repository(plugin):busybox:pull", "repository(plugin):library/busybox:pull"),
        ("registry:catalog:*", "registry:catalog:*"),
        // host:port names keep their colon; not a single component, not rewritten.
        ("repository:localhost:5000/foo:pull", "repository:localhost:5000/foo:pull"),
        ("repository:evil.example:pull", "repository:library/evil.example:pull"),
        // Space-separated list (OAuth2 form), each item on its own.
        ("repository:a:pull repository:b/c:pull", "repository:library/a:pull repository:b/c:pull"),
        // Not a scope at all, or a name outside the grammar: unchanged.
        ("nonsense", "nonsense"),
        ("repository:BusyBox:pull", "repository:BusyBox:pull"),
        ("repository::pull", "repository::pull"),
        ("", ""),
    ];
    for (input, want) in cases {
        let mut out = String::new();
        rewrite_scope(input, true, &mut out);
        assert_eq!(out, want, "{input:?}");
        let mut same = String::new();
        rewrite_scope(input, false, &mut same);
        assert_eq!(same, input, "without library: {input:?}");
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
            "service=registry.docker.io&scope=repository:busybox:pull&scope=repository:alpine:pull&account=me",
            "service=registry.docker.io&scope=repository:library/busybox:pull&scope=repository:library/alpine:pull&account=me",
        ),
        // OAuth2 form: space-joined scopes with '+', credentials copied byte for byte.
        (
            "grant_type=password&username=u%40x&password=p%26w&scope=repository%3Anginx%3Apull+repository%3Aa%2Fb%3Apull&service=s&client_id=containerd",
            "grant_type=password&username=u%40x&password=p%26w&scope=repository:library/nginx:pull%20repository:a/b:pull&service=s&client_id=containerd",
        ),
        ("", ""),
        ("&&service=x&", "service=x"),
        ("scope=", "scope="),
    ];
    for (input, want) in cases {
        let mut out = String::new();
        rewrite_token_params(input, true, &mut out).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
        assert_eq!(out, want, "{input:?}");
    }
}

#[test]
fn token_query_errors() {
    let many = vec!["scope=repository:a:pull"; MAX_SCOPES + 1].join("&");
    let ok = vec!["scope=repository:a:pull"; MAX_SCOPES].join("&");
    let cases: &[(&str, Option<QueryError>)] = &[
        ("scope=%zz", Some(QueryError::BadEscape)),
        ("scope=%4", Some(QueryError::BadEscape)),
        ("scope=%ff%fe", Some(QueryError::BadEscape)),
        (&many, Some(QueryError::TooManyScopes)),
        (&ok, None),
    ];
    for (input, want) in cases {
        let mut out = String::new();
        assert_eq!(rewrite_token_params(input, true, &mut out).err(), *want, "{input:.40}");
    }
    // Without library the count still holds, but values are not decoded.
    let mut out = String::new();
    assert_eq!(rewrite_token_params(&many, false, &mut out).err(), Some(QueryError::TooManyScopes));
    let mut out = String::new();
    assert!(rewrite_token_params("scope=%zz", false, &mut out).is_ok());
    assert_eq!(out, "scope=%zz");
}

#[test]
fn percent_round_trip() {
    for s in ["repository:a/b:pull", "a b&c=d%e+f#g", "ünï", ""] {
        let mut enc = String::new();
        percent_encode(s, &mut enc);
        assert!(!enc.contains(['&', ' ', '#', '+', '=']) || s.is_empty(), "{enc}");
        assert_eq!(percent_decode(&enc).as_deref(), Ok(s));
    }
    assert_eq!(percent_decode("a+b%20c").as_deref(), Ok("a b c"));
}
