//! WWW-Authenticate parsing and rewriting (RFC 7235), table-driven.

use edge_mirror::challenge::{bearer_realm, mirror_challenge, parse, rewrite, ChallengeError};

type Params = &'static [(&'static str, &'static str)];

/// A scope mapper that keeps the upstream's names.
fn keep(v: &str, out: &mut String) {
    out.push_str(v);
}

#[test]
fn parses_by_name_not_position() {
    let cases: &[(&str, &[(&str, Option<&str>, Params)])] = &[
        (
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
            &[("Bearer", None, &[("realm", "https://auth.docker.io/token"), ("service", "registry.docker.io")])],
        ),
        // Any order, spaces around '=' and ',', scope with a comma inside quotes.
        (
            r#"Bearer service = "ghcr.io" , scope="repository:a/b:pull,push", realm="https://ghcr.io/token""#,
            &[("Bearer", None, &[("service", "ghcr.io"), ("scope", "repository:a/b:pull,push"), ("realm", "https://ghcr.io/token")])],
        ),
        // Escapes inside quoted strings are decoded.
        (
            r#"Bearer realm="https://x/t\"q",error="insufficient_scope",service="a\\b""#,
            &[("Bearer", None, &[("realm", "https://x/t\"q"), ("error", "insufficient_scope"), ("service", "a\\b")])],
        ),
        // Token (unquoted) values and lower-case scheme.
        ("bearer realm=abc,service=def", &[("bearer", None, &[("realm", "abc"), ("service", "def")])]),
        // Two challenges in one header (two header lines joined by the runtime).
        (
            r#"Basic realm="Registry Realm", Bearer realm="https://q/t",service="q""#,
            &[("Basic", None, &[("realm", "Registry Realm")]), ("Bearer", None, &[("realm", "https://q/t"), ("service", "q")])],
        ),
        // token68 and an empty list element.
        ("Negotiate abc+/==, , Bearer realm=\"r\"", &[("Negotiate", Some("abc+/=="), &[]), ("Bearer", None, &[("realm", "r")])]),
        // Scheme alone.
        ("Basic", &[("Basic", None, &[])]),
        // Non-ASCII inside quotes is kept.
        ("Bearer realm=\"https://é/t\"", &[("Bearer", None, &[("realm", "https://é/t")])]),
    ];
    for (input, want) in cases {
        let got = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
        assert_eq!(got.len(), want.len(), "{input:?}");
        for (g, (scheme, t68, params)) in got.iter().zip(want.iter()) {
            assert_eq!(g.scheme, *scheme, "{input:?}");
            assert_eq!(g.token68, *t68, "{input:?}");
            let gp: Vec<(&str, &str)> = g.params.iter().map(|(n, v)| (*n, v.as_ref())).collect();
            assert_eq!(gp, params.to_vec(), "{input:?}");
        }
    }
}

#[test]
fn refuses_malformed() {
    let cases: &[(&str, ChallengeError)] = &[
        ("", ChallengeError::Empty),
        ("   ,  ", ChallengeError::Empty),
        ("\"Bearer\" realm=x", ChallengeError::BadScheme),
        ("Bearer realm=\"https://x", ChallengeError::Unterminated),
        ("Bearer realm=\"x\\", ChallengeError::Unterminated),
        ("Bearer realm=\"x\" junk", ChallengeError::BadParam),
        ("Bearer realm=,service=x", ChallengeError::BadParam),
        ("Bearer realm=\"x\",=y", ChallengeError::BadParam),
    ];
    for (input, want) in cases {
        assert_eq!(parse(input).err(), Some(*want), "{input:?}");
    }
    // A Bearer challenge without realm cannot be rewritten.
    assert_eq!(rewrite("Bearer service=\"x\"", "http://m/token", &keep).err(), Some(ChallengeError::NoRealm));
    assert_eq!(rewrite("", "http://m/token", &keep).err(), Some(ChallengeError::Empty));
}

#[test]
fn rewrite_replaces_only_the_realm() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull",error="insufficient_scope""#,
            &[r#"Bearer realm="http://m:8787/token",service="registry.docker.io",scope="repository:library/busybox:pull",error="insufficient_scope""#],
        ),
        (
            r#"Bearer scope="repository:user/image:pull",service="ghcr.io",realm="https://ghcr.io/token""#,
            &[r#"Bearer scope="repository:user/image:pull",service="ghcr.io",realm="http://m:8787/token""#],
        ),
        // Basic challenges are kept; each challenge gets its own line.
        (
            r#"Basic realm="Registry", Bearer realm="https://q/t",service="q""#,
            &[r#"Basic realm="Registry""#, r#"Bearer realm="http://m:8787/token",service="q""#],
        ),
        // Escapes survive the round trip; unquoted values come out quoted.
        (r#"Bearer realm=x,service="a\"b""#, &[r#"Bearer realm="http://m:8787/token",service="a\"b""#]),
    ];
    for (input, want) in cases {
        let got = rewrite(input, "http://m:8787/token", &keep).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
        assert_eq!(got, want.join("\n"), "{input:?}");
    }
}

#[test]
fn write_then_parse_gives_the_same_parameters() {
    let inputs = [
        r#"Bearer realm="https://a/b",service="s",scope="repository:x:pull,push""#,
        r#"Bearer realm="q\"uo\\te",error="e""#,
        r#"Basic realm="R", Bearer realm="x""#,
    ];
    for input in inputs {
        let first = parse(input).expect("parses");
        let written = rewrite(input, "https://mirror/token", &keep).expect("rewrites").replace('\n', ", ");
        let second = parse(&written).expect("written form parses");
        assert_eq!(first.len(), second.len());
        for (a, b) in first.iter().zip(second.iter()) {
            assert_eq!(a.scheme, b.scheme);
            for ((an, av), (bn, bv)) in a.params.iter().zip(b.params.iter()) {
                assert_eq!(an, bn);
                if a.is_bearer() && an.eq_ignore_ascii_case("realm") {
                    assert_eq!(bv, "https://mirror/token");
                } else {
                    assert_eq!(av, bv);
                }
            }
        }
    }
}

#[test]
fn bearer_realm_and_mirror_challenge() {
    assert_eq!(bearer_realm(r#"Basic realm="b", Bearer service="s",realm="https://r/t""#).as_deref(), Some("https://r/t"));
    assert_eq!(bearer_realm(r#"Basic realm="b""#), None);
    assert_eq!(bearer_realm("garbage \""), None);
    let mut s = String::new();
    mirror_challenge("https://docker.m.example/token", Some("registry.docker.io"), &mut s);
    assert_eq!(s, r#"Bearer realm="https://docker.m.example/token",service="registry.docker.io""#);
    let mut s = String::new();
    mirror_challenge("http://h/token", None, &mut s);
    assert_eq!(s, r#"Bearer realm="http://h/token""#);
}

#[test]
fn scope_goes_through_the_mapper_and_control_bytes_are_refused() {
    let upper = |v: &str, out: &mut String| out.push_str(&v.replace("repository:", "repository:ghcr.io/"));
    let got = rewrite(r#"Bearer realm="https://r/t",scope="repository:a/b:pull repository:c/d:pull",error="x""#, "https://m/token", &upper);
    assert_eq!(got.as_deref(), Ok(r#"Bearer realm="https://m/token",scope="repository:ghcr.io/a/b:pull repository:ghcr.io/c/d:pull",error="x""#));
    // Only a Bearer challenge's scope is mapped.
    let got = rewrite(r#"Other scope="repository:a/b:pull""#, "https://m/token", &upper);
    assert_eq!(got.as_deref(), Ok(r#"Other scope="repository:a/b:pull""#));
    // qdtext excludes control characters (RFC 7230 3.2.6): a line break
    // inside a quoted value would split the rewritten header.
    for bad in ["Bearer realm=\"a\nb\"", "Bearer realm=\"a\rb\"", "Bearer realm=\"a\u{7f}\"", "Bearer realm=\"a\\\nb\""] {
        assert_eq!(parse(bad).err(), Some(ChallengeError::BadParam), "{bad:?}");
    }
    assert!(parse("Bearer realm=\"a\tb\"").is_ok());
    // Escapes of non-ASCII characters keep the whole character.
    assert_eq!(parse("Bearer realm=\"\\é\\\"x\"").map(|c| c[0].params[0].1.to_string()), Ok("é\"x".to_string()));
}
