//! The text exchanged with the JavaScript entry: each input shape gives the
//! action text src/edge.js expects, field by field.

use edge_mirror::wire::{step, too_large};

const D: &str = "docker.mirror.example.com";

#[test]
fn start_inputs_give_actions() {
    let cases: Vec<(String, &str)> = vec![
        // A local 401 with the mirror's challenge; no probe field in release.
        (
            format!("0\nGET\nhttps://{D}/v2/\n\n\n"),
            "A401\nBearer realm=\"https://docker.mirror.example.com/token\",service=\"registry.docker.io\"\n\n\n{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}",
        ),
        // With Authorization (flag 1) it is fetched: client headers (1) + follow (2) + resume on 401 (4).
        (format!("1\nGET\nhttps://{D}/v2/\n\n\n"), "F7\na\nGET\nhttps://registry-1.docker.io/v2/\n"),
        (format!("3\nHEAD\nhttps://{D}/v2/busybox/manifests/1\n\n\n"), "F7\na\nHEAD\nhttps://registry-1.docker.io/v2/library/busybox/manifests/1\n"),
        // A browser (flag 2) asking for / gets the page.
        (format!("2\nGET\nhttps://{D}/\n\n\n"), "P"),
        // 405 with Allow.
        (
            format!("0\nPUT\nhttps://{D}/token\n\n\n"),
            "A405\n\nGET, POST\n\n{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"the token endpoint takes GET or an OAuth2 form POST\",\"detail\":null}]}",
        ),
        // POST /token: read the body first, then the form goes out (form bit 32).
        (format!("0\nPOST\nhttps://{D}/token\n\n\n"), "B16384"),
        (
            format!("0\nPOST\nhttps://{D}/token\n\n\n\ngrant_type=password&scope=repository%3Abusybox%3Apull"),
            "F35\nt\nPOST\nhttps://auth.docker.io/token\ngrant_type=password&scope=repository:library/busybox:pull",
        ),
        // No table realm: discover it (resume always = 16, no client headers).
        (format!("0\nGET\nhttps://cloudsmith.mirror.example.com/token?scope=x\n\n\n"), "F18\nd\nGET\nhttps://docker.cloudsmith.io/v2/\n"),
    ];
    for (input, want) in cases {
        assert_eq!(step(&input, ""), want, "{input:?}");
    }
}

#[test]
fn resume_inputs_carry_status_headers_and_errors() {
    let url = format!("https://{D}/v2/busybox/manifests/1");
    // 401: the challenge comes back with the mirror's realm.
    let input = format!("1\nGET\n{url}\na401\nBearer realm=\"https://auth.docker.io/token\",service=\"s\"\n");
    assert_eq!(step(&input, ""), "R\nBearer realm=\"https://docker.mirror.example.com/token\",service=\"s\"");
    // Status 0: the third field is the runtime's error.
    let input = format!("1\nGET\n{url}\na0\n\nAbortError%3A%20aborted");
    assert!(step(&input, "").starts_with("A504\n\n\n\n{\"errors\":[{\"code\":\"UNAVAILABLE\""));
    // Discovery answered: the token request goes to the realm it named.
    let input = "0\nGET\nhttps://cloudsmith.mirror.example.com/token?scope=x\nd401\nBearer realm=\"https://r.example/t\"\n";
    assert_eq!(step(input, ""), "F3\nt\nGET\nhttps://r.example/t?scope=x\n");
    // The probe field is filled in test builds.
    assert!(step(&format!("0\nGET\nhttps://{D}/v2/\n\n\n"), "17").starts_with("A401\nBearer"));
    assert!(step(&format!("0\nGET\nhttps://{D}/v2/\n\n\n"), "17").contains("\n\n17\n{"));
}

#[test]
fn malformed_inputs_are_answered_not_trusted() {
    for input in ["", "\n\n\n\n\n", "9", "0\nGET", "0\nGET\nhttps://x\nz999\n\n", "0\nGET\nhttps://docker.mirror.example.com/v2/\na\n\n"] {
        let out = step(input, "");
        assert!(out.starts_with('A') || out.starts_with('R'), "{input:?} -> {out}");
    }
    assert!(too_large().starts_with("A400\n\n\n\n{\"errors\""));
}
