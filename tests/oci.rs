//! OCI error bodies and the table of messages: valid JSON, escaped, with the
//! spec's codes; every message numbered, with a status that fits its code;
//! and the table the entry carries is the table the planner numbers.

use edge_mirror::messages::{Code, Msg, MESSAGES};
use edge_mirror::oci::{error_body, json_escape};

#[test]
fn bodies_are_json_with_escapes() {
    assert_eq!(
        error_body(Msg::HostNoRoute, "a.example"),
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"no mirror is configured for this host: a.example","detail":null}]}"#
    );
    assert_eq!(
        error_body(Msg::UrlNotAbsolute, ""),
        r#"{"errors":[{"code":"UNSUPPORTED","message":"the request URL is not absolute","detail":null}]}"#
    );
    let mut s = String::new();
    json_escape("q\"b\\n\nr\rt\t\u{1}\u{1f}é", &mut s);
    assert_eq!(s, r#"q\"b\\n\nr\u000Dt\u0009\u0001\u001Fé"#);
    // What it writes is JSON a parser reads back (Python's, in the e2e suite;
    // here: no raw control byte and every quote escaped).
    assert!(!s.bytes().any(|b| b < 0x20));
    // A message with a quote of its own is escaped too.
    assert!(error_body(Msg::HostLabel, "").contains(r#"(\"..\" or a leading dot)"#));
}

#[test]
fn codes_are_the_spec_names() {
    let all = [
        (Code::NameInvalid, "NAME_INVALID"),
        (Code::NameUnknown, "NAME_UNKNOWN"),
        (Code::ManifestUnknown, "MANIFEST_UNKNOWN"),
        (Code::BlobUnknown, "BLOB_UNKNOWN"),
        (Code::DigestInvalid, "DIGEST_INVALID"),
        (Code::Unsupported, "UNSUPPORTED"),
        (Code::Unauthorized, "UNAUTHORIZED"),
        (Code::Denied, "DENIED"),
        (Code::Unavailable, "UNAVAILABLE"),
        (Code::TooManyRequests, "TOOMANYREQUESTS"),
    ];
    for (c, s) in all {
        assert_eq!(c.as_str(), s);
    }
}

#[test]
fn every_message_is_numbered_in_order_with_a_fitting_status() {
    assert!(MESSAGES.len() < 255, "255 means no message on the wire");
    for (i, &(status, code, text)) in MESSAGES.iter().enumerate() {
        let msg = Msg::from_number(i).expect("numbered");
        assert_eq!(msg as usize, i);
        assert_eq!((msg.status(), msg.code(), msg.text()), (status, code, text));
        assert!(!text.is_empty() && !text.ends_with('.'), "{text}");
        let fits = match code {
            Code::Unauthorized => status == 401,
            Code::Denied => status == 403,
            Code::TooManyRequests => status == 429,
            Code::Unavailable => status >= 500 || status == 404,
            // What cannot exist is not found.
            Code::NameUnknown | Code::ManifestUnknown | Code::BlobUnknown => status == 404,
            _ => (400..500).contains(&status),
        };
        assert!(fits, "{status} {code:?} {text}");
    }
    assert_eq!(Msg::from_number(MESSAGES.len()), None);
}

#[test]
fn the_entrys_table_is_the_planners() {
    // build.rs writes messages.js from the same table: the entry reads
    // message N as MESSAGES[N] = [status, code, text].
    let js = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/messages.js")).expect("build.rs wrote messages.js");
    let rows: Vec<&str> = js.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(rows.len(), MESSAGES.len());
    for (row, &(status, code, text)) in rows.iter().zip(MESSAGES) {
        let want = format!("[{},\"{}\",\"{}\"]", status, code.as_str(), text.replace('\\', "\\\\").replace('"', "\\\""));
        assert_eq!(row.trim_end_matches(','), want);
    }
}
