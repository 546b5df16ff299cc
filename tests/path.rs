//! Path classification and the distribution name/tag/digest grammar.

use edge_mirror::path::{classify, digest, repository_name, tag, Endpoint, Kind, PathError};

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn classifies_registry_paths() {
    let blob = format!("/v2/library/busybox/blobs/{D}");
    let by_digest = format!("/v2/busybox/manifests/{D}");
    let referrers = format!("/v2/a/b/referrers/{D}");
    let blobs_name = "/v2/x/blobs/manifests/latest".to_string();
    let cases: Vec<(&str, Endpoint)> = vec![
        ("/", Endpoint::Root),
        ("/token", Endpoint::Token(None)),
        ("/token/ghcr.io", Endpoint::Token(Some("ghcr.io"))),
        ("/token/localhost:5000", Endpoint::Token(Some("localhost:5000"))),
        ("/v2/", Endpoint::Base),
        ("/v2", Endpoint::Base),
        ("/v2/_catalog", Endpoint::Catalog),
        ("/v2/busybox/manifests/latest", Endpoint::Repo { name: "busybox", rest: "/manifests/latest", kind: Kind::Manifest }),
        (&by_digest, Endpoint::Repo { name: "busybox", rest: &by_digest[11..], kind: Kind::Manifest }),
        (&blob, Endpoint::Repo { name: "library/busybox", rest: &blob[19..], kind: Kind::Blob }),
        ("/v2/a/b/c/tags/list", Endpoint::Repo { name: "a/b/c", rest: "/tags/list", kind: Kind::Tags }),
        (&referrers, Endpoint::Repo { name: "a/b", rest: &referrers[7..], kind: Kind::Referrers }),
        ("/v2/a/blobs/uploads/", Endpoint::Repo { name: "a", rest: "/blobs/uploads/", kind: Kind::Upload }),
        ("/v2/a/blobs/uploads", Endpoint::Repo { name: "a", rest: "/blobs/uploads", kind: Kind::Upload }),
        ("/v2/a/b/blobs/uploads/5f3e-uuid", Endpoint::Repo { name: "a/b", rest: "/blobs/uploads/5f3e-uuid", kind: Kind::Upload }),
        // Found by fuzzing: an upload path's tail is not checked (uploads are
        // refused with 405 and never forwarded).
        (
            "/v2/v2/a/b/mobsoa2/x/blobs/uploads/uuds/%uia/b/mdobs",
            Endpoint::Repo { name: "v2/a/b/mobsoa2/x", rest: "/blobs/uploads/uuds/%uia/b/mdobs", kind: Kind::Upload },
        ),
        // A component may be called "blobs" or "manifests".
        (&blobs_name, Endpoint::Repo { name: "x/blobs", rest: "/manifests/latest", kind: Kind::Manifest }),
    ];
    for (path, want) in cases {
        assert_eq!(classify(path), Ok(want), "{path}");
    }
}

#[test]
fn refuses_what_is_not_a_registry_path() {
    let long = format!("/v2/{}/manifests/latest", "a".repeat(256));
    let cases: Vec<(String, PathError)> = vec![
        ("/v1/_ping".into(), PathError::NotFound),
        ("/favicon.ico".into(), PathError::NotFound),
        ("/v2/busybox".into(), PathError::NotFound),
        ("/v2/busybox/manifests".into(), PathError::NotFound),
        ("/v2/busybox/unknown/latest".into(), PathError::NotFound),
        ("/v2/busybox/tags/lists".into(), PathError::NotFound),
        ("/token/".into(), PathError::NotFound),
        ("/v2/../etc/manifests/latest".into(), PathError::NameInvalid),
        ("/v2/%2e%2e/manifests/latest".into(), PathError::NameInvalid),
        ("/v2/a%2Fb/manifests/latest".into(), PathError::NameInvalid),
        ("/v2/Busybox/manifests/latest".into(), PathError::NameInvalid),
        ("/v2//busybox/manifests/latest".into(), PathError::NameInvalid),
        ("/v2/a//b/manifests/latest".into(), PathError::NameInvalid),
        ("/v2//manifests/latest".into(), PathError::NameInvalid),
        (long, PathError::NameTooLong),
        ("/v2/busybox/manifests/.hidden".into(), PathError::TagInvalid),
        ("/v2/busybox/manifests/-x".into(), PathError::TagInvalid),
        ("/v2/busybox/manifests/".into(), PathError::TagInvalid),
        (format!("/v2/busybox/manifests/{}", "t".repeat(129)), PathError::TagInvalid),
        ("/v2/busybox/manifests/sha256:abc".into(), PathError::DigestInvalid),
        ("/v2/busybox/blobs/latest".into(), PathError::BlobUnknown),
        ("/v2/busybox/blobs/sha256:".into(), PathError::DigestInvalid),
        (format!("/v2/busybox/blobs/{}", D.to_uppercase().replace("SHA256", "sha256")), PathError::DigestInvalid),
        ("/v2/busybox/referrers/latest".into(), PathError::TagInvalid),
        ("/v2/busybox/referrers/sha256:zz".into(), PathError::DigestInvalid),
    ];
    for (path, want) in cases {
        assert_eq!(classify(&path), Err(want), "{path}");
    }
}

#[test]
fn name_grammar() {
    let good = ["a", "library/busybox", "a-b", "a--b", "a_b", "a__b", "a.b", "a/b/c/d", "0", "x9.y-z_w"];
    let bad = ["", "A", "a_", "_a", "a.", "a..b", "a___b", "a._b", "a-.b", "a/", "/a", "a//b", "a b", "a:b", "ä"];
    for n in good {
        assert_eq!(repository_name(n), Ok(()), "{n}");
    }
    for n in bad {
        assert_eq!(repository_name(n), Err(PathError::NameInvalid), "{n}");
    }
    assert_eq!(repository_name(&"a".repeat(255)), Ok(()));
    assert_eq!(repository_name(&"a".repeat(256)), Err(PathError::NameTooLong));
}

#[test]
fn tag_and_digest_grammar() {
    for t in ["latest", "1.36.1", "_x", "A-b.c_d", &"t".repeat(128)] {
        assert_eq!(tag(t), Ok(()), "{t}");
    }
    for t in ["", ".a", "-a", "a/b", "a:b", "a b", &"t".repeat(129)] {
        assert_eq!(tag(t), Err(PathError::TagInvalid), "{t}");
    }
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    for d in [D, sha512.as_str(), "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", "a.b-c:Xy=_-"] {
        assert_eq!(digest(d), Ok(()), "{d}");
    }
    let bad_hex = format!("sha256:{}", "g".repeat(64));
    for d in ["sha256", ":abc", "sha256:", "SHA256:ab", "sha256:abc", bad_hex.as_str(), "a..b:x", "sha256:ab/cd", "sha384:00"] {
        assert_eq!(digest(d), Err(PathError::DigestInvalid), "{d}");
    }
}
