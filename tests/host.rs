//! Host validation: what may pick a route and go into a realm.

use edge_mirror::host::{parse_authority, Authority, HostError};

#[test]
fn accepts_hosts_that_reach_the_worker() {
    let cases = [
        ("docker.mirror.example.com", "docker.mirror.example.com", "", "docker.mirror.example.com"),
        ("Docker.Mirror.Example.COM:8787", "docker.mirror.example.com", "8787", "docker.mirror.example.com:8787"),
        ("docker.mirror.test.", "docker.mirror.test", "", "docker.mirror.test"),
        ("my_host.local:1", "my_host.local", "1", "my_host.local:1"),
        ("127.0.0.1:65535", "127.0.0.1", "65535", "127.0.0.1:65535"),
        ("[::1]:8787", "[::1]", "8787", "[::1]:8787"),
        ("[2001:db8::1]", "[2001:db8::1]", "", "[2001:db8::1]"),
        ("localhost", "localhost", "", "localhost"),
    ];
    for (input, route_host, port, written) in cases {
        let a = parse_authority(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert!(a.route_host().eq_ignore_ascii_case(route_host), "{input}");
        assert_eq!(a.port, port, "{input}");
        let mut w = String::new();
        a.write(&mut w);
        assert_eq!(w, written, "{input}");
    }
}

#[test]
fn refuses_what_must_not_reach_a_realm() {
    let long = format!("{}.com", "a.".repeat(130));
    let long_label = format!("{}.com", "a".repeat(64));
    let cases: Vec<(&str, HostError)> = vec![
        ("", HostError::Empty),
        (":80", HostError::Empty),
        ("evil\".com", HostError::BadChar),
        ("a,b", HostError::BadChar),
        ("a b", HostError::BadChar),
        ("a%2eb", HostError::BadChar),
        ("user@host", HostError::BadChar),
        ("a\r\nb", HostError::BadChar),
        ("a\\b", HostError::BadChar),
        ("hôst", HostError::BadChar),
        ("a/b", HostError::BadChar),
        ("..", HostError::EmptyLabel),
        (".a", HostError::EmptyLabel),
        ("a..b", HostError::EmptyLabel),
        (&long_label, HostError::EmptyLabel),
        (&long, HostError::TooLong),
        ("a:0", HostError::BadPort),
        ("a:65536", HostError::BadPort),
        ("a:99999999", HostError::BadPort),
        ("a:", HostError::BadPort),
        ("a:8x", HostError::BadPort),
        ("a:80:80", HostError::BadPort),
        ("[::1", HostError::BadLiteral),
        ("[]", HostError::BadLiteral),
        ("[::1\"]", HostError::BadLiteral),
        ("[::1]x", HostError::BadLiteral),
    ];
    for (input, want) in cases {
        assert_eq!(parse_authority(input), Err(want), "{input:?}");
    }
}

#[test]
fn error_messages_are_static_and_distinct() {
    let all = [HostError::Empty, HostError::TooLong, HostError::BadChar, HostError::EmptyLabel, HostError::BadPort, HostError::BadLiteral];
    let msgs: std::collections::HashSet<&str> = all.iter().map(|e| e.as_str()).collect();
    assert_eq!(msgs.len(), all.len());
    let _ = Authority { host: "a", port: "" };
}
