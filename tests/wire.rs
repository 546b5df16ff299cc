//! The text exchanged with the JavaScript entry: each input shape gives the
//! action text src/edge.js expects, field by field (the shipped table).

use edge_mirror::wire::{step, too_large};

const D: &str = "docker.mirror.example.com";

/// A first call: FLAGS METHOD URL, then empty STATE, headers, SECRET
/// and UPSTREAM-BODY.
fn start(flags: u8, method: &str, url: &str) -> String {
    format!("{flags}\n{method}\n{url}\n\n\n\n\n")
}

#[test]
fn start_inputs_give_actions() {
    let cases: Vec<(String, &str)> = vec![
        // A local 401 with the mirror's challenge; no probe or log field in release.
        (
            start(0, "GET", &format!("https://{D}/v2/")),
            "A401\nBearer realm=\"https://docker.mirror.example.com/token\",service=\"registry.docker.io\"\n\n\n\n{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}",
        ),
        // With Authorization (flag 1) it is fetched: client headers (1) + follow (2)
        // + resume on 401 (4) and on 429 with its body (64).
        (start(1, "GET", &format!("https://{D}/v2/")), "F71\na\nGET\nhttps://registry-1.docker.io/v2/\n\n\n"),
        (start(3, "HEAD", &format!("https://{D}/v2/busybox/manifests/1")), "F71\na\nHEAD\nhttps://registry-1.docker.io/v2/library/busybox/manifests/1\n\n\n"),
        // A browser (flag 2) asking for / gets the page.
        (start(2, "GET", &format!("https://{D}/")), "P"),
        // 405 with Allow.
        (
            start(0, "PUT", &format!("https://{D}/token")),
            "A405\n\nGET, POST\n\n\n{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"the token endpoint takes GET or an OAuth2 form POST\",\"detail\":null}]}",
        ),
        // POST /token: read the body first, then the form goes out (form bit 32).
        (start(0, "POST", &format!("https://{D}/token")), "B16384"),
        (
            start(0, "POST", &format!("https://{D}/token")) + "\ngrant_type=password&scope=repository%3Abusybox%3Apull",
            "F99\nt\nPOST\nhttps://auth.docker.io/token\n\n\ngrant_type=password&scope=repository:library/busybox:pull",
        ),
        // No table realm: discover it (resume always = 16, no client headers).
        (start(0, "GET", "https://cloudsmith.mirror.example.com/token?scope=x"), "F18\nd\nGET\nhttps://docker.cloudsmith.io/v2/\n\n\n"),
    ];
    for (input, want) in cases {
        assert_eq!(step(&input, ""), want, "{input:?}");
    }
}

#[test]
fn resume_inputs_carry_status_headers_and_errors() {
    let url = format!("https://{D}/v2/busybox/manifests/1");
    // 401: the challenge comes back with the mirror's realm.
    let input = format!("1\nGET\n{url}\na401\nBearer realm=\"https://auth.docker.io/token\",service=\"s\"\n\n\n");
    assert_eq!(step(&input, ""), "R\n\n\nBearer realm=\"https://docker.mirror.example.com/token\",service=\"s\"");
    // Status 0: the location field holds the runtime's error.
    let input = format!("1\nGET\n{url}\na0\n\nTimeoutError%3A%20aborted\n\n");
    assert!(step(&input, "").starts_with("A504\n\n\n\n\n{\"errors\":[{\"code\":\"UNAVAILABLE\""));
    // 429: the upstream body field comes back in the relayed body.
    let input = format!("1\nGET\n{url}\na429\n\n\n\nslow%20down");
    let out = step(&input, "");
    assert!(out.starts_with("R\n\n{\"errors\":[{\"code\":\"TOOMANYREQUESTS\""), "{out}");
    assert!(out.ends_with(",\"detail\":\"slow down\"}]}"), "{out}");
    // Discovery answered: the token request goes to the realm it named.
    let input = "0\nGET\nhttps://cloudsmith.mirror.example.com/token?scope=repository:o/i:pull\nd401\nBearer realm=\"https://r.example/t\"\n\n\n";
    assert_eq!(step(input, ""), "F67\nt\nGET\nhttps://r.example/t?scope=repository:o/i:pull\n\n\n");
    // The probe field is filled in test builds.
    let out = step(&start(0, "GET", &format!("https://{D}/v2/")), "17");
    assert!(out.starts_with("A401\nBearer") && out.contains("\n\n17\n\n{"), "{out}");
}

#[test]
fn malformed_inputs_are_answered_not_trusted() {
    for input in ["", "\n\n\n\n\n", "9", "0\nGET", "0\nGET\nhttps://x\nz999\n\n", "0\nGET\nhttps://docker.mirror.example.com/v2/\na\n\n"] {
        let out = step(input, "");
        assert!(out.starts_with('A') || out.starts_with('R'), "{input:?} -> {out}");
    }
    assert!(too_large().starts_with("A400\n\n\n\n\n{\"errors\""));
}

