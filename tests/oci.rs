//! OCI error bodies: valid JSON, escaped, with the spec's codes.

use edge_mirror::oci::{error_body, json_escape, Code};

#[test]
fn bodies_are_json_with_escapes() {
    assert_eq!(
        error_body(Code::NameUnknown, "no mirror is configured for this host", "a.example"),
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"no mirror is configured for this host: a.example","detail":null}]}"#
    );
    assert_eq!(error_body(Code::Unsupported, "m", ""), r#"{"errors":[{"code":"UNSUPPORTED","message":"m","detail":null}]}"#);
    let mut s = String::new();
    json_escape("q\"b\\n\nr\rt\t\u{1}\u{1f}é", &mut s);
    assert_eq!(s, r#"q\"b\\n\nr\u000Dt\u0009\u0001\u001Fé"#);
    // What it writes is JSON a parser reads back (Python's, in the e2e suite;
    // here: no raw control byte and every quote escaped).
    assert!(!s.bytes().any(|b| b < 0x20));
}

#[test]
fn codes_are_the_spec_names() {
    let all = [
        (Code::NameInvalid, "NAME_INVALID"),
        (Code::NameUnknown, "NAME_UNKNOWN"),
        (Code::DigestInvalid, "DIGEST_INVALID"),
        (Code::TagInvalid, "TAG_INVALID"),
        (Code::Unsupported, "UNSUPPORTED"),
        (Code::Unauthorized, "UNAUTHORIZED"),
        (Code::Denied, "DENIED"),
        (Code::Unavailable, "UNAVAILABLE"),
    ];
    for (c, s) in all {
        assert_eq!(c.as_str(), s);
    }
}
