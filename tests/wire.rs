//! The bytes exchanged with the JavaScript entry: each input shape gives the
//! action src/edge.js expects, number by number and field by field (the
//! shipped table).

use edge_mirror::messages::Msg;
use edge_mirror::wire::{self, step, too_large, Input, ANONYMOUS, CLIENT_HEADERS, CREDENTIALS, FOLLOW, FORM, HEAD, HOLD, IN_HEADER};

const D: &str = "docker.mirror.example.com";

type In<'a> = Input<'a>;

fn get(url: &str) -> In<'_> {
    In { url, ..In::default() }
}

#[test]
fn the_input_header_is_twenty_bytes() {
    let b = get("https://x/").bytes();
    assert_eq!(b.len(), IN_HEADER + 10);
    assert_eq!(&b[6..8], &[10, 0], "the URL's length, little-endian");
}

/// An action: OP, ARG, NUM and its fields as text.
#[derive(Debug, PartialEq)]
struct Out {
    op: char,
    arg: u8,
    num: u16,
    fields: Vec<String>,
}

fn decode(b: &[u8]) -> Out {
    let d = wire::decode(b).expect("one action, its fields ending where it ends");
    Out { op: char::from(d.op), arg: d.arg, num: d.num, fields: d.fields.iter().map(|f| f.to_string()).collect() }
}

fn run(input: &In<'_>) -> Out {
    decode(&step(&input.bytes(), ""))
}

fn out(op: char, arg: u8, num: u16, fields: &[&str]) -> Out {
    Out { op, arg, num, fields: fields.iter().map(|f| f.to_string()).collect() }
}

const R401: u16 = 4;
const R429: u16 = 64;
const R5XX: u16 = 128;
const RALL: u16 = 16;

#[test]
fn first_inputs_give_actions() {
    let ping = format!("https://{D}/v2/");
    let head = format!("https://{D}/v2/busybox/manifests/1");
    let token = format!("https://{D}/token");
    let (root, v3) = (format!("https://{D}/"), format!("https://{D}/v3/"));
    let cases: Vec<(In<'_>, Out)> = vec![
        // A local 401 with the mirror's challenge; no probe or log field in release.
        (
            get(&ping),
            out('A', Msg::AuthRequired as u8, 0, &["Bearer realm=\"https://docker.mirror.example.com/token\",service=\"registry.docker.io\"", "", "", "", ""]),
        ),
        // With Authorization (flag 1) it is fetched: client headers, follow,
        // resume on 401 and on 429 with its body.
        (In { flags: 1, ..get(&ping) }, out('F', b'a', CLIENT_HEADERS | FOLLOW | R401 | R429, &["https://registry-1.docker.io/v2/", "", "", "", "", ""])),
        // A manifest HEAD on a route with fallbacks also comes back on 502-504.
        (
            In { flags: 3, method: 1, ..get(&head) },
            out('F', b'a', CLIENT_HEADERS | FOLLOW | R401 | R429 | R5XX | HEAD, &["https://registry-1.docker.io/v2/library/busybox/manifests/1", "", "", "", "", ""]),
        ),
        // A browser (flag 2) asking for / gets the page.
        (In { flags: 2, ..get(&root) }, out('P', 0, 0, &[""])),
        // 405 with Allow.
        (In { method: 3, ..get(&token) }, out('A', Msg::TokenMethod as u8, 0, &["", "GET, POST", "", "", ""])),
        // POST /token: read the body first, then the form goes out.
        (In { method: 2, ..get(&token) }, out('B', 0, 16384, &[])),
        (
            In { method: 2, flags: 4, body: "grant_type=password&scope=repository%3Abusybox%3Apull", ..get(&token) },
            out('F', b't', CLIENT_HEADERS | FOLLOW | R429 | FORM, &["https://auth.docker.io/token", "", "", "grant_type=password&scope=repository:library/busybox:pull", "", ""]),
        ),
        // No table realm: discover it (resume always, no client headers).
        (get("https://cloudsmith.mirror.example.com/token?scope=x"), out('F', b'd', FOLLOW | RALL, &["https://docker.cloudsmith.io/v2/", "", "", "", "", ""])),
        // A path the mirror does not serve: the message names nothing more.
        (get(&v3), out('A', Msg::PathNotFound as u8, 0, &["", "", "", "", ""])),
    ];
    for (input, want) in cases {
        assert_eq!(run(&input), want, "{}", input.url);
    }
}

#[test]
fn resumed_inputs_carry_status_headers_and_errors() {
    let url = format!("https://{D}/v2/busybox/manifests/1");
    let ghcr = "https://ghcr.mirror.example.com/v2/o/i/manifests/1";
    // 401: the challenge comes back with the mirror's realm.
    let a = run(&In { flags: 1, phase: b'a', status: 401, challenge: "Bearer realm=\"https://auth.docker.io/token\",service=\"s\"", ..get(&url) });
    assert_eq!(a, out('R', 255, 0, &["", "", "", "", "Bearer realm=\"https://docker.mirror.example.com/token\",service=\"s\""]));
    // Status 0: THIRD holds the runtime's error.
    let a = run(&In { flags: 1, phase: b'a', third: "TimeoutError: aborted", ..get(ghcr) });
    assert_eq!(a, out('A', Msg::TimedOut as u8, 0, &["", "", "", "", "https://ghcr.io"]));
    // 429 on a route without fallbacks: which limit, from its body; the entry
    // puts it in front of the upstream's errors.
    let a = run(&In { flags: 1, phase: b'a', status: 429, upstream: "you hit the pull rate limit", ..get(ghcr) });
    assert_eq!(a, out('R', Msg::PullLimit as u8, 0, &["", "", "ghcr.io", "", ""]));
    // Discovery answered: the token request goes to the realm it named.
    let input = In {
        phase: b'd',
        status: 401,
        challenge: "Bearer realm=\"https://r.example/t\"",
        ..get("https://cloudsmith.mirror.example.com/token?scope=repository:o/i:pull")
    };
    assert_eq!(run(&input), out('F', b't', CLIENT_HEADERS | FOLLOW | R429, &["https://r.example/t?scope=repository:o/i:pull", "", "", "", "", ""]));
    // The probe field is filled in test builds.
    let a = decode(&step(&get(&format!("https://{D}/v2/")).bytes(), "17"));
    assert_eq!(a.fields[2], "17");
}

#[test]
fn a_throttled_manifest_asks_the_fallback_without_the_clients_authorization() {
    let url = format!("https://{D}/v2/busybox/manifests/1");
    let limited = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit."}]}"#;
    let a = run(&In { flags: 1, phase: b'a', status: 429, upstream: limited, ..get(&url) });
    // The route's own answer is held; the first fallback gets the request
    // without the client's Authorization, and comes back on any error; the
    // trail says what happened (429, the message if all fail, none tried).
    assert_eq!((a.op, a.arg), ('F', b'f'));
    assert_eq!(a.num, CLIENT_HEADERS | FOLLOW | (64 << 2) | ANONYMOUS | HOLD);
    assert_eq!(a.fields[0], "https://mirror.gcr.io/v2/library/busybox/manifests/1");
    assert_eq!(a.fields[4], "mirror.gcr.io (fallback: docker.io 429)");
    let trail = format!("429.{}.", Msg::PullLimit as u8);
    assert_eq!(a.fields[5], trail);
    // Its 404 moves on to the next fallback (ECR Public's library copy).
    let b = run(&In { flags: 1, phase: b'f', status: 404, trail: &trail, ..get(&url) });
    assert_eq!((b.op, b.arg, b.num & HOLD), ('F', b'f', 0));
    assert_eq!(b.fields[0], "https://public.ecr.aws/v2/docker/library/busybox/manifests/1");
    assert_eq!(b.fields[5], format!("{trail}404,"));
    // That one challenges: the mirror's own token request, anonymous.
    let c = run(&In {
        flags: 1,
        phase: b'f',
        status: 401,
        trail: &b.fields[5],
        challenge: "Bearer realm=\"https://public.ecr.aws/token/\",service=\"public.ecr.aws\",scope=\"aws\"",
        ..get(&url)
    });
    assert_eq!((c.op, c.arg, c.num & (CLIENT_HEADERS | CREDENTIALS)), ('F', b'k', 0));
    assert_eq!(c.fields[0], "https://public.ecr.aws/token/?scope=repository:docker/library/busybox:pull&service=public.ecr.aws");
    // The token comes back as UPSTREAM (the entry read it from the JSON
    // answer); the request goes again with it.
    let d = run(&In { flags: 1, phase: b'k', status: 200, trail: &b.fields[5], upstream: "abc.def", ..get(&url) });
    assert_eq!((d.op, d.arg), ('F', b'r'));
    assert_eq!(d.fields[1], "Bearer abc.def");
    // Its 404 too: the route's own 429, held, with what each fallback said.
    let e = run(&In { flags: 1, phase: b'r', status: 404, trail: &b.fields[5], ..get(&url) });
    assert_eq!(
        e,
        out('H', Msg::PullLimit as u8, 0, &["", "", "docker.io; fallbacks tried: mirror.gcr.io 404, ecr-public-library 404", "", ""])
    );
}

#[test]
fn malformed_inputs_are_answered_not_trusted() {
    for input in [&b""[..], b"\x09", b"\x00\x00", &[0xff; 40], b"\x00\x00a\x00\x00\x00\xff\xff"] {
        let a = decode(&step(input, ""));
        assert!(a.op == 'A' || a.op == 'R', "{input:?} -> {a:?}");
    }
    // A field running past the end of the input is empty.
    let mut b = get("https://docker.mirror.example.com/v2/").bytes();
    b.truncate(b.len() - 3);
    assert_eq!(decode(&step(&b, "")).op, 'A');
    assert_eq!(decode(&too_large()), out('A', Msg::TooLarge as u8, 0, &["", "", "", "", ""]));
}
