//! Redirect Location resolution and the same-origin rule for credentials.

use edge_mirror::location::{is_redirect, origin, resolve, same_origin, LocationError};

#[test]
fn resolves_locations() {
    let base = "https://registry.example/v2/a/blobs/sha256:1?x=1";
    let cases = [
        ("https://cdn.example/blob?sig=abc", "https://cdn.example/blob?sig=abc"),
        ("HTTP://cdn.example:8080/b", "HTTP://cdn.example:8080/b"),
        ("//cdn.example/b", "https://cdn.example/b"),
        ("/v2/a/blobs/other", "https://registry.example/v2/a/blobs/other"),
        ("other?y=2", "https://registry.example/v2/a/blobs/other?y=2"),
        ("?y=2", "https://registry.example/v2/a/blobs/sha256:1?y=2"),
        ("https://cdn.example/b#frag", "https://cdn.example/b"),
        ("  /trimmed  ", "https://registry.example/trimmed"),
    ];
    for (loc, want) in cases {
        assert_eq!(resolve(base, loc).as_deref(), Ok(want), "{loc}");
    }
    assert_eq!(resolve("http://h:1", "x").as_deref(), Ok("http://h:1/x"));
}

#[test]
fn refuses_bad_locations() {
    let base = "https://registry.example/v2/";
    let cases = [
        ("", LocationError::Missing),
        ("   ", LocationError::Missing),
        ("ftp://x/y", LocationError::Scheme),
        ("file:///etc/passwd", LocationError::Scheme),
        ("javascript:alert(1)", LocationError::Scheme),
        ("data:text/plain,x", LocationError::Scheme),
        ("https://", LocationError::Malformed),
        ("https:/x", LocationError::Malformed),
        ("//", LocationError::Malformed),
        ("https://a b/", LocationError::Malformed),
        ("/a\r\nb", LocationError::Malformed),
        ("https://a\\b/", LocationError::Malformed),
    ];
    for (loc, want) in cases {
        assert_eq!(resolve(base, loc), Err(want), "{loc:?}");
    }
}

#[test]
fn origins() {
    assert_eq!(origin("https://a.example:8443/x?y"), "https://a.example:8443");
    assert_eq!(origin("http://a?q"), "http://a");
    assert_eq!(origin("nope"), "");
    assert!(same_origin("https://A.example/x", "https://a.example/y?z"));
    assert!(!same_origin("https://a.example/x", "http://a.example/x"));
    assert!(!same_origin("http://127.0.0.1:1/x", "http://127.0.0.1:2/x"));
    assert!(!same_origin("https://a.example/x", "https://a.example.evil/x"));
    assert!(!same_origin("nope", "nope"));
    for s in [301, 302, 303, 307, 308] {
        assert!(is_redirect(s));
    }
    for s in [200, 300, 304, 305, 306, 401] {
        assert!(!is_redirect(s));
    }
}
