//! The route-table compiler: accepted forms, and the exact error text and
//! line a user sees for each mistake.

#[path = "../src/route_table.rs"]
#[allow(dead_code)]
mod route_table;

use route_table::{index_html, parse, render, RouteSpec};

fn err(src: &str) -> (usize, String) {
    let e = parse(src).expect_err("table should be refused");
    (e.line, e.message)
}

#[test]
fn the_issue_form_and_the_shipped_table_compile() {
    let src = r#"
[routes.docker]
hosts = ["docker.mirror.example.com"]
upstream = "https://registry-1.docker.io"
realm = "https://auth.docker.io/token"     # optional
service = "registry.docker.io"             # optional
library = true                             # optional, default false
redirects = "follow"                       # optional
default = true                             # optional, at most one route

[routes.local]
hosts = ["Local.Test.", 'lit.test']
upstream = "http://127.0.0.1:5000/"
realm = "http://127.0.0.1:5001/auth?x=1"
redirects = "pass"
insecure = true
"#;
    let routes = parse(src).expect("parses");
    assert_eq!(
        routes[0],
        RouteSpec {
            name: "docker".into(),
            line: 2,
            hosts: vec!["docker.mirror.example.com".into()],
            upstream: "https://registry-1.docker.io".into(),
            realm: Some("https://auth.docker.io/token".into()),
            service: Some("registry.docker.io".into()),
            library: true,
            follow_redirects: true,
            default: true,
        }
    );
    assert_eq!(routes[1].hosts, vec!["local.test".to_string(), "lit.test".to_string()]);
    assert_eq!(routes[1].upstream, "http://127.0.0.1:5000");
    assert_eq!(routes[1].realm.as_deref(), Some("http://127.0.0.1:5001/auth?x=1"));
    assert!(!routes[1].follow_redirects && !routes[1].library && !routes[1].default);

    let shipped = parse(include_str!("../routes.toml")).expect("shipped table parses");
    let names: Vec<&str> = shipped.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["docker", "quay", "gcr", "k8s-gcr", "k8s", "ghcr", "cloudsmith", "ecr"]);
    assert!(shipped.iter().all(|r| r.hosts.iter().all(|h| h.ends_with(".mirror.example.com"))));
    assert!(shipped.iter().all(|r| r.upstream.starts_with("https://")));
}

#[test]
fn multi_line_arrays_and_domain() {
    let src = "domain = \"m.example\"\n[routes.a]\nhosts = [\n  \"a.{domain}\", # first\n  \"b.{domain}\",\n]\nupstream = \"https://a.example\"\n";
    let routes = parse(src).expect("parses");
    assert_eq!(routes[0].hosts, vec!["a.m.example".to_string(), "b.m.example".to_string()]);
}

#[test]
fn errors_name_the_line_and_the_fix() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstrem = \"https://x\"\n",
            3,
            "unknown key \"upstrem\" in [routes.a]; the keys are hosts, upstream, realm, service, library, redirects, default, insecure",
        ),
        ("# c\n\n[routes.a]\nhosts = [\"a.test\"]\n", 3, "route \"a\" has no upstream; add upstream = \"https://registry.example.com\""),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"registry-1.docker.io\"\n",
            3,
            "upstream \"registry-1.docker.io\" is not an absolute http(s) URL; write it like \"https://registry-1.docker.io\"",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"ftp://x\"\n",
            3,
            "upstream \"ftp://x\" is not an absolute http(s) URL; write it like \"https://registry-1.docker.io\"",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\nrealm = \"/token\"\n",
            4,
            "realm \"/token\" is not an absolute http(s) URL; write it like \"https://auth.docker.io/token\"",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"http://127.0.0.1:5000\"\n",
            3,
            "upstream \"http://127.0.0.1:5000\" uses plain http; use https, or set insecure = true in this route if that is intended (local test upstreams)",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\nrealm = \"http://x/token\"\n",
            4,
            "realm \"http://x/token\" uses plain http; use https, or set insecure = true in this route if that is intended (local test upstreams)",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x/v2\"\n",
            3,
            "upstream \"https://x/v2\" has a path; write only scheme and host (the worker adds /v2/...), like \"https://registry-1.docker.io\"",
        ),
        ("[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x:0\"\n", 3, "upstream \"https://x:0\" has an invalid port; ports are 1 to 65535"),
        ("[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://u@x\"\n", 3, "upstream \"https://u@x\" has no valid host name; write it like \"https://registry-1.docker.io\""),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\n\n[routes.b]\nhosts = [\"b.test\", \"A.TEST\"]\nupstream = \"https://y\"\n",
            6,
            "host \"a.test\" is already served by route \"a\" (line 2); each host belongs to one route, remove one of them",
        ),
        ("[routes.a]\nhosts = [\"a.test\", \"a.test\"]\nupstream = \"https://x\"\n", 2, "host \"a.test\" is listed twice in route \"a\"; remove one"),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\ndefault = true\n[routes.b]\nhosts = [\"b.test\"]\nupstream = \"https://y\"\ndefault = true\n",
            8,
            "route \"b\" is marked default but route \"a\" (line 4) already is; at most one route may be the default",
        ),
        ("[routes.a]\nupstream = \"https://x\"\n", 1, "route \"a\" has no hosts; add hosts = [\"NAME.mirror.example.com\"] (or default = true)"),
        ("[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\n[routes.a]\n", 4, "route \"a\" is declared twice (first on line 1); give each route its own name"),
        ("[routes.a]\nhosts = [\"a.test\"]\nhosts = [\"b.test\"]\n", 3, "key \"hosts\" is set twice in [routes.a] (first on line 2)"),
        ("[mirrors.a]\n", 1, "unknown table [mirrors.a]; routes are declared as [routes.NAME]"),
        ("[routes.a]\nhosts = \"a.test\"\n", 2, "hosts must be an array of host names, like [\"docker.mirror.example.com\"], found a string"),
        ("[routes.a]\nhosts = [\"a.test\"]\nlibrary = \"yes\"\n", 3, "library must be true or false, found a string"),
        ("[routes.a]\nhosts = [\"a.test\"]\nupstream = true\n", 3, "upstream must be a string, found a boolean"),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\nredirects = \"always\"\n",
            4,
            "redirects is \"always\"; write \"follow\" (the worker follows upstream redirects) or \"pass\" (clients get them)",
        ),
        (
            "[routes.a]\nhosts = [\"https://a.test/\"]\n",
            2,
            "\"https://a.test/\" is not a host name; hosts are names like \"docker.mirror.example.com\" (letters, digits, '-', '_', dots; no scheme, port or path)",
        ),
        ("[routes.a]\nhosts = [\"a.{domain}\"]\n", 2, "host \"a.{domain}\" uses {domain} but the table sets no domain; add domain = \"mirror.example.com\" at the top"),
        ("[routes.a]\nx = { a = 1 }\n", 2, "inline tables are not supported; write the route as a [routes.NAME] section"),
        ("[routes.a]\nport = 5000\n", 2, "unsupported value \"5000\"; values are \"strings\", true/false or [\"arrays\", \"of strings\"]"),
        ("[routes.a]\nhosts = [\"a\",\n\"b\"\n", 2, "the array for \"hosts\" is not closed; add ']'"),
        ("[routes.a]\nupstream = \"https://x\n", 2, "string is not closed; add the closing quote"),
        ("[routes.a]\nupstream\n", 2, "expected key = value or [routes.NAME], found \"upstream\""),
        ("upstream = \"https://x\"\n", 1, "unknown top-level key \"upstream\"; only domain may stand above the first [routes.NAME]"),
        ("[[routes]]\n", 1, "arrays of tables ([[...]]) are not used here; declare each route as [routes.NAME]"),
        ("# nothing\n", 1, "the table declares no routes; add a [routes.NAME] section with hosts and upstream"),
    ];
    for (src, line, message) in cases {
        assert_eq!(err(src), (*line, message.to_string()), "{src:?}");
    }
}

#[test]
fn renders_a_generated_table_with_line_comments() {
    let routes = parse("[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\nrealm = \"https://x/t\"\nlibrary = true\n\n[routes.b]\nhosts = [\"b.test\"]\nupstream = \"https://y\"\ndefault = true\nredirects = \"pass\"\n").expect("parses");
    let out = render(&routes, "t.toml");
    assert!(out.starts_with("// @generated"));
    assert!(out.contains("    // t.toml:1\n    Route { name: \"a\", hosts: &[\"a.test\"], upstream: \"https://x\", realm: Some(\"https://x/t\"), service: None, library: true, follow_redirects: true },"));
    assert!(out.contains("    // t.toml:7\n    Route { name: \"b\""));
    assert!(out.contains("follow_redirects: false"));
    assert!(out.contains("pub const DEFAULT_ROUTE: Option<usize> = Some(1);"));
    let page = index_html(&routes);
    assert!(page.contains("docker pull a.test/busybox"));
    assert!(page.contains("docker pull b.test/OWNER/IMAGE"));
}

/// The build itself fails with `file:line: message` on a bad table.
#[test]
fn the_build_reports_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("edge-mirror-badtable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let table = dir.join("bad.toml");
    std::fs::write(&table, "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"http://x\"\n").expect("write");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["check", "--lib", "--quiet", "--target-dir"])
        .arg(dir.join("target"))
        .env("ROUTES", &table)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "the build should fail");
    let want = format!("{}:3: upstream \"http://x\" uses plain http", table.display());
    assert!(stderr.contains(&want), "stderr was:\n{stderr}");
}
