//! The route-table compiler: accepted forms, and the exact error text and
//! line a user sees for each mistake.

#[path = "../src/route_table/mod.rs"]
#[allow(dead_code)]
mod route_table;

use route_table::{index_html, layout, parse, render, RouteSpec};

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
    let routes = parse(src).expect("parses").routes;
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
            prefix: None,
            registry: "registry-1.docker.io".into(),
            repository: None,
            credentials: None,
            allow: vec![],
            fallback: vec![],
            search: None,
        }
    );
    assert_eq!(routes[1].hosts, vec!["local.test".to_string(), "lit.test".to_string()]);
    assert_eq!(routes[1].upstream, "http://127.0.0.1:5000");
    assert_eq!(routes[1].realm.as_deref(), Some("http://127.0.0.1:5001/auth?x=1"));
    assert!(!routes[1].follow_redirects && !routes[1].library && !routes[1].default);

    let shipped = parse(include_str!("../routes.toml")).expect("shipped table parses").routes;
    let names: Vec<&str> = shipped.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["docker", "mirror-gcr", "ecr-library", "quay", "gcr", "k8s-gcr", "k8s", "ghcr", "cloudsmith", "ecr", "nvcr", "mcr", "elastic", "gitlab"]
    );
    assert_eq!(shipped[0].search.as_deref(), Some("https://index.docker.io"));
    assert!(shipped[1..].iter().all(|r| r.search.is_none()));
    // Docker Hub's two public copies are fallbacks only: no hosts, named by
    // Docker Hub's route, in order.
    let (fallbacks, served): (Vec<_>, Vec<_>) = shipped.iter().partition(|r| r.hosts.is_empty());
    assert_eq!(fallbacks.iter().map(|r| r.registry.as_str()).collect::<Vec<_>>(), shipped[0].fallback);
    assert_eq!(shipped[0].fallback, ["mirror.gcr.io", "ecr-public-library"]);
    assert!(fallbacks.iter().all(|r| r.library && r.prefix.is_none()));
    assert!(served.iter().all(|r| r.hosts.iter().all(|h| h == "mirror.example.com" || h.ends_with(".mirror.example.com"))));
    // Both styles: every route on the shared host with its own prefix, and on a host of its own.
    assert!(served.iter().all(|r| r.hosts[0] == "mirror.example.com" && r.hosts.len() == 2 && r.prefix.as_deref() == Some(r.registry.as_str())));
    assert!(shipped.iter().all(|r| r.upstream.starts_with("https://")));
}

#[test]
fn multi_line_arrays_and_domain() {
    let src = "domain = \"m.example\"\n[routes.a]\nhosts = [\n  \"a.{domain}\", # first\n  \"b.{domain}\",\n]\nupstream = \"https://a.example\"\n";
    let routes = parse(src).expect("parses").routes;
    assert_eq!(routes[0].hosts, vec!["a.m.example".to_string(), "b.m.example".to_string()]);
}

/// TOML the old hand-written reader refused: dotted keys, inline tables,
/// quoted keys, multi-line and escaped strings, a BOM and CRLF line ends.
/// Routes keep the order of the file, not the crate's (sorted) order.
#[test]
fn any_toml_form_of_the_same_table() {
    let src = "\u{feff}domain = \"m.example\"\r
routes.zz.hosts = [\"z.{domain}\"]\r
routes.zz.upstream = \"https://z.example\"\r
routes.a = { hosts = [\r
  \"a.{domain}\",\r
], upstream = 'https://a.example', redirects = \"pass\" }\r
\r
[routes.b]\r
hosts = [\"b.{domain}\"]\r
upstream = \"\"\"\r
https://b.example\"\"\"\r
library = true\r
\r
[routes.\"c.d\"]\r
\"hosts\" = ['c.{domain}']\r
upstream = \"https://c.example/\\u0074oken\"\r
default = true\r
";
    let err = parse(src).expect_err("c.d's upstream has a path");
    assert_eq!((err.line, err.message.as_str()), (16, "upstream \"https://c.example/token\" has a path; write only scheme and host (the worker adds /v2/...), like \"https://registry-1.docker.io\""));
    let routes = parse(&src.replace("/\\u0074oken", "")).expect("parses").routes;
    let got: Vec<(&str, usize, &str, &str)> =
        routes.iter().map(|r| (r.name.as_str(), r.line, r.hosts[0].as_str(), r.upstream.as_str())).collect();
    assert_eq!(
        got,
        [
            ("zz", 2, "z.m.example", "https://z.example"),
            ("a", 4, "a.m.example", "https://a.example"),
            ("b", 8, "b.m.example", "https://b.example"),
            ("c.d", 14, "c.m.example", "https://c.example"),
        ]
    );
    assert!(!routes[1].follow_redirects && routes[2].library && routes[3].default);
}

#[test]
fn errors_name_the_line_and_the_fix() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstrem = \"https://x\"\n",
            3,
            "unknown key \"upstrem\" in [routes.a]; the keys are hosts, upstream, realm, service, library, redirects, default, insecure, prefix, registry, repository, credentials, allow, fallback, search",
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
            "host \"a.test\" is already served by route \"a\" (line 2) without a prefix; a host has at most one route without a prefix, give one of them a prefix or remove the host",
        ),
        ("[routes.a]\nhosts = [\"a.test\", \"a.test\"]\nupstream = \"https://x\"\n", 2, "host \"a.test\" is listed twice in route \"a\"; remove one"),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\ndefault = true\n[routes.b]\nhosts = [\"b.test\"]\nupstream = \"https://y\"\ndefault = true\n",
            8,
            "route \"b\" is marked default but route \"a\" (line 4) already is; at most one route may be the default",
        ),
        ("[routes.a]\nupstream = \"https://x\"\n", 1, "route \"a\" has no hosts; add hosts = [\"NAME.mirror.example.com\"] (or default = true, or name its registry \"x\" in another route's fallback)"),
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
        // Values TOML allows but a key does not take: the key, its line, what to write.
        ("[routes.a]\nhosts = 5\n", 2, "hosts must be an array of host names, like [\"docker.mirror.example.com\"], found an integer"),
        ("[routes.a]\nhosts = [\n  \"a.test\",\n  5,\n]\n", 4, "hosts must be an array of host names, like [\"docker.mirror.example.com\"], found an integer in the array"),
        ("[routes.a]\nhosts.x = \"a.test\"\n", 2, "hosts must be an array of host names, like [\"docker.mirror.example.com\"], found a table"),
        ("[routes.a]\nhosts = [\"a.test\"]\nupstream = { host = \"x\" }\n", 3, "upstream must be a string, found a table"),
        ("[routes.a]\nhosts = [\"a.test\"]\nrealm = 1.5\n", 3, "realm must be a string, found a float"),
        ("[routes.a]\nhosts = [\"a.test\"]\nlibrary = 1\n", 3, "library must be true or false, found an integer"),
        ("[routes.a]\nhosts = [\"a.test\"]\ndefault = 1979-05-27\n", 3, "default must be true or false, found a date-time"),
        ("[routes.a]\nx = { a = 1 }\n", 2, "unknown key \"x\" in [routes.a]; the keys are hosts, upstream, realm, service, library, redirects, default, insecure, prefix, registry, repository, credentials, allow, fallback, search"),
        ("[routes.a]\nhosts = [\"a.test\"]\n[routes.a.port]\nx = 1\n", 3, "unknown key \"port\" in [routes.a]; the keys are hosts, upstream, realm, service, library, redirects, default, insecure, prefix, registry, repository, credentials, allow, fallback, search"),
        ("domain = 5\n", 1, "domain must be a string, found an integer"),
        ("routes = 5\n", 1, "routes must hold [routes.NAME] sections, found an integer; write [routes.NAME] and the route's keys under it"),
        ("[routes]\na = \"https://x\"\n", 2, "route \"a\" must be a [routes.a] section with hosts and upstream, found a string"),
        ("[[routes.a]]\nhosts = [\"a.test\"]\n", 1, "arrays of tables ([[...]]) are not used here; declare each route as [routes.NAME]"),
        ("[mirrors]\nx = 1\n", 1, "unknown table [mirrors]; routes are declared as [routes.NAME]"),
        ("mirror.a = 1\n", 1, "unknown top-level key \"mirror\"; only domain, page, log, log_client, access, clients, deny_agents, rate_limit may stand above the first [routes.NAME]"),
        // A host's own line in a multi-line array.
        ("[routes.a]\nhosts = [\n  \"a.test\",\n  \"https://b.test\",\n]\n", 4, "\"https://b.test\" is not a host name; hosts are names like \"docker.mirror.example.com\" (letters, digits, '-', '_', dots; no scheme, port or path)"),
        ("[routes.a]\nhosts = [\n  \"a.test\",\n  \"A.test\",\n]\nupstream = \"https://x\"\n", 4, "host \"a.test\" is listed twice in route \"a\"; remove one"),
        // Defined twice: TOML refuses it; the message names the first definition.
        ("domain = \"a.test\"\ndomain = \"b.test\"\n", 2, "key \"domain\" is set twice (first on line 1); remove one"),
        ("[routes.a]\nhosts = [\"a.test\"]\n\"hosts\" = [\"b.test\"]\n", 3, "key \"hosts\" is set twice in [routes.a] (first on line 2)"),
        ("[routes.a]\nhosts = [\"a.test\"]\n[routes]\na.upstream = \"https://x\"\n", 4, "route \"a\" is declared twice (first on line 1); give each route its own name"),
        ("routes.a.hosts = [\"a.test\"]\n[routes.b]\nhosts = [\"b.test\"]\n[routes]\n", 4, "the routes table is defined twice (first on line 1); write each route as its own [routes.NAME] section"),
        ("[routes.a]\nhosts = [\"a.test\"]\n[routes.b]\nhosts = [\"b.test\"]\n[routes.a]\n", 5, "route \"a\" is declared twice (first on line 1); give each route its own name"),
        // TOML syntax errors: the toml crate's message, line and column.
        ("[routes.a]\nhosts = [\"a\",\n\"b\"\n", 3, "unclosed array, expected `]` at column 4; fix the TOML syntax"),
        ("[routes.a]\nupstream = \"https://x\n", 2, "invalid basic string, expected `\"` at column 22; fix the TOML syntax"),
        ("[routes.a]\nupstream\n", 2, "key with no value, expected `=` at column 9; fix the TOML syntax"),
        ("[routes.a\nhosts = []\n", 1, "unclosed table, expected `]` at column 10; fix the TOML syntax"),
        ("[routes.a]\nupstream = \"https://x\" # ok\nrealm = \"https://x/t\" junk\n", 3, "unexpected key or value, expected newline, `#` at column 23; fix the TOML syntax"),
        ("[routes.a]\nupstream = \"https://x\\q\"\n", 2, "missing escaped value, expected `b`, `e`, `f`, `n`, `r`, `\\`, `\"`, `x`, `u`, `U` at column 23; fix the TOML syntax"),
        ("[routes.a]\nupstream = https://x\n", 2, "string values must be quoted, expected literal string at column 12; fix the TOML syntax"),
        ("routes.a = { hosts = [\"a.test\"], hosts = [\"b.test\"] }\n", 1, "duplicate key at column 34; fix the TOML syntax"),
        ("upstream = \"https://x\"\n", 1, "unknown top-level key \"upstream\"; only domain, page, log, log_client, access, clients, deny_agents, rate_limit may stand above the first [routes.NAME]"),
        ("[[routes]]\n", 1, "arrays of tables ([[...]]) are not used here; declare each route as [routes.NAME]"),
        ("# nothing\n", 1, "the table declares no routes; add a [routes.NAME] section with hosts and upstream"),
        // Fallbacks: other routes of the table, by registry, each once.
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.io\"\nfallback = [\"b.io\", \"c.io\"]\n[routes.b]\nupstream = \"https://b.io\"\n",
            4,
            "fallback \"c.io\" names no route of this table; name another route by its registry (b.io), or add a [routes.NAME] with registry = \"c.io\"",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.io\"\nfallback = [\n  \"a.io\",\n]\n",
            5,
            "fallback \"a.io\" is route \"a\"'s own registry; a route cannot fall back to itself, name another route's registry",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.io\"\nfallback = [\"b.io\", \"b.io\"]\n[routes.b]\nupstream = \"https://b.io\"\n",
            4,
            "fallback \"b.io\" is listed twice in route \"a\"; remove one",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.io\"\nfallback = \"b.io\"\n",
            4,
            "fallback must be an array of other routes' registry names, like [\"mirror.gcr.io\"], found a string",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.io\"\nfallback = [\"1.io\", \"2.io\", \"3.io\", \"4.io\", \"5.io\", \"6.io\", \"7.io\", \"8.io\", \"9.io\"]\n\
             [routes.r1]\nupstream = \"https://1.io\"\n[routes.r2]\nupstream = \"https://2.io\"\n[routes.r3]\nupstream = \"https://3.io\"\n\
             [routes.r4]\nupstream = \"https://4.io\"\n[routes.r5]\nupstream = \"https://5.io\"\n[routes.r6]\nupstream = \"https://6.io\"\n\
             [routes.r7]\nupstream = \"https://7.io\"\n[routes.r8]\nupstream = \"https://8.io\"\n[routes.r9]\nupstream = \"https://9.io\"\n",
            4,
            "route \"a\" names 9 fallbacks; at most 8 (each one tried costs up to three subrequests)",
        ),
        // A route only a fallback may reach has no use for a prefix; one
        // without hosts that nobody names reaches nothing.
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.io\"\nfallback = [\"b.io\"]\n[routes.b]\nupstream = \"https://b.io\"\nprefix = \"b.io\"\n",
            7,
            "route \"b\" has a prefix but no hosts, so no request can select it by prefix; add hosts, or remove the prefix",
        ),
        (
            "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.io\"\nfallback = [\"b.io\"]\n[routes.b]\nupstream = \"https://b.io\"\n[routes.c]\nupstream = \"https://c.io\"\n",
            7,
            "route \"c\" has no hosts; add hosts = [\"NAME.mirror.example.com\"] (or default = true, or name its registry \"c.io\" in another route's fallback)",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(src, line, message)| err(src) != (*line, message.to_string()))
        .map(|(src, line, message)| format!("{src:?}\n  want {line}: {message}\n  got  {:?}", err(src)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The compiled table read by the test itself, straight from the format of
/// `layout.rs` (a second reader beside the planner's, so the two must agree
/// with the format, not only with each other).
struct Bytes<'a> {
    b: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn u16(&self, i: usize) -> usize {
        usize::from(u16::from_le_bytes([self.b[i], self.b[i + 1]]))
    }
    /// Where each section starts: records, hosts, allow, fallback, pool,
    /// policy.
    fn sections(&self) -> [usize; 6] {
        let out = [layout::HEADER, self.u16(4), self.u16(6), self.u16(8), self.u16(10), self.u16(18)];
        assert!(out.windows(2).all(|w| w[0] <= w[1]) && out[5] <= self.b.len(), "sections in order, within the table");
        assert_eq!((out[1] - out[0]) % layout::RECORD + (out[2] - out[1]) % layout::HOST + (out[3] - out[2]) % layout::ALLOW, 0);
        out
    }
    fn count(&self, k: usize) -> usize {
        let s = self.sections();
        (s[k + 1] - s[k]) / [layout::RECORD, layout::HOST, layout::ALLOW, layout::FALLBACK][k]
    }
    fn pool(&self) -> &'a str {
        let s = self.sections();
        std::str::from_utf8(&self.b[s[4]..s[5]]).expect("ASCII pool")
    }
    /// The entry's policy: the rest of the table.
    fn policy(&self) -> &'a str {
        std::str::from_utf8(&self.b[self.sections()[5]..]).expect("UTF-8 policy")
    }
    /// A str's bytes as text; `None` when not set.
    fn str(&self, r: &[u8]) -> Option<&'a str> {
        let (at, len) = (usize::from(u16::from_le_bytes([r[0], r[1]])), usize::from(r[2]));
        (len > 0).then(|| &self.pool()[at..at + len])
    }
    fn record(&self, i: usize) -> &'a [u8] {
        let at = self.sections()[0] + i * layout::RECORD;
        &self.b[at..at + layout::RECORD]
    }
    /// Field `name` (the layout's order) of route `i`.
    fn field(&self, i: usize, name: &str) -> Option<&'a str> {
        let k = FIELDS.iter().position(|f| *f == name).expect("a field of the layout");
        self.str(&self.record(i)[3 * k..3 * k + 3])
    }
    fn range(&self, i: usize, name: &str) -> (usize, usize) {
        let k = FIELDS.iter().position(|f| *f == name).expect("a field of the layout");
        let r = &self.record(i)[3 * k..];
        (usize::from(u16::from_le_bytes([r[0], r[1]])), usize::from(r[2]))
    }
    /// Every host, the label and the domain joined as the entry says.
    fn hosts(&self) -> Vec<String> {
        let at = self.sections()[1];
        let domain = self.str(&self.b[14..17]).unwrap_or("");
        (0..self.count(1))
            .map(|k| {
                let e = &self.b[at + 4 * k..at + 4 * k + 4];
                match (e[3], self.str(&e[..3])) {
                    (1, None) => domain.to_string(),
                    (1, Some(label)) => format!("{label}.{domain}"),
                    (_, label) => label.unwrap_or("").to_string(),
                }
            })
            .collect()
    }
    fn allow(&self) -> Vec<&'a str> {
        let at = self.sections()[2];
        (0..self.count(2)).map(|k| self.str(&self.b[at + 3 * k..at + 3 * k + 3]).expect("a pattern")).collect()
    }
}

/// The fields of a record, in the layout's order.
const FIELDS: [&str; 12] =
    ["name", "hosts", "prefix", "registry", "upstream", "realm", "service", "repository", "credentials", "allow", "fallback", "search"];

/// Every table the project builds or ships, by name, with its text
/// (`routes.toml` with `tests/routes.more.toml` appended is the size
/// check's per-route table).
fn tables() -> Vec<(String, String)> {
    let read = |f: &str| std::fs::read_to_string(format!("{}/{f}", env!("CARGO_MANIFEST_DIR"))).expect("table");
    let mut out: Vec<(String, String)> = ["routes.toml", "tests/routes.every-key.toml", "tests/routes.every-key-16.toml", "tests/e2e/routes.e2e.toml", "bench/routes.bench.toml"]
        .iter()
        .map(|f| (f.to_string(), read(f)))
        .collect();
    out.push(("routes.toml + tests/routes.more.toml".into(), read("routes.toml") + "\n" + &read("tests/routes.more.toml")));
    out
}

/// Every table the project builds, rendered and read back: each field of
/// each route, and each host and allow pattern, is the string the table
/// says, wherever the pool stores it.
#[test]
fn every_table_reads_back_from_its_pool() {
    for (file, src) in tables() {
        let table = parse(&src).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let out = render(&table).expect("renders");
        let bytes = Bytes { b: &out };
        assert_eq!(&out[..4], &layout::MAGIC);
        assert_eq!(bytes.count(0), table.routes.len());
        for (i, r) in table.routes.iter().enumerate() {
            let name = table.log.then_some(r.name.as_str());
            let fields = [
                ("name", name),
                ("prefix", r.prefix.as_deref()),
                ("registry", Some(r.registry.as_str())),
                ("upstream", Some(r.upstream.as_str())),
                ("realm", r.realm.as_deref()),
                ("service", r.service.as_deref()),
                ("repository", r.repository.as_deref()),
                ("credentials", r.credentials.as_deref()),
                ("search", r.search.as_deref()),
            ];
            for (field, want) in fields {
                assert_eq!(bytes.field(i, field), want, "{file} [routes.{}] {field}", r.name);
            }
        }
        let want: Vec<String> = table.routes.iter().flat_map(|r| r.hosts.clone()).collect();
        assert_eq!(bytes.hosts(), want, "{file}: hosts");
        let want: Vec<&str> = table.routes.iter().flat_map(|r| r.allow.iter().map(String::as_str)).collect();
        assert_eq!(bytes.allow(), want, "{file}: allow");
    }
}

#[test]
fn renders_a_compiled_table() {
    let table = parse("log = true\n[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://x\"\nrealm = \"https://x/t\"\nlibrary = true\nallow = [\"library/*\"]\ncredentials = \"A_CREDS\"\n\n[routes.b]\nhosts = [\"b.test\"]\nupstream = \"https://y\"\ndefault = true\nredirects = \"pass\"\nprefix = \"b.io\"\nregistry = \"b.io\"\n").expect("parses");
    let out = render(&table).expect("renders");
    let bytes = Bytes { b: &out };
    // Every string once, longest first; a string inside another is stored
    // as that occurrence (the upstream inside its realm, "a" and "x").
    assert_eq!(bytes.pool(), "https://x/thttps://ylibrary/*A_CREDSa.testb.testb.io");
    for (route, name, want) in [
        (0, "name", Some("a")),
        (0, "registry", Some("x")),
        (0, "upstream", Some("https://x")),
        (0, "realm", Some("https://x/t")),
        (0, "service", None),
        (0, "credentials", Some("A_CREDS")),
        (1, "name", Some("b")),
        (1, "prefix", Some("b.io")),
        (1, "registry", Some("b.io")),
        (1, "upstream", Some("https://y")),
        (1, "realm", None),
    ] {
        assert_eq!(bytes.field(route, name), want, "{route}.{name}");
    }
    // The registry name "x" is the x of "https://x/t": offset 8, one byte.
    assert_eq!(&bytes.record(0)[9..12], &[8, 0, 1]);
    assert_eq!(bytes.range(0, "hosts"), (0, 1));
    assert_eq!(bytes.range(1, "hosts"), (1, 1));
    assert_eq!(bytes.range(0, "allow"), (0, 1));
    assert_eq!(bytes.range(1, "allow"), (1, 0));
    assert_eq!(bytes.hosts(), ["a.test", "b.test"]);
    assert_eq!(bytes.allow(), ["library/*"]);
    assert_eq!(bytes.record(0)[36], layout::LIBRARY | layout::FOLLOW);
    assert_eq!(bytes.record(1)[36], 0);
    // Header: 2 routes, 2 hosts, 1 pattern, no fallbacks, route 1 the
    // default, no domain; page and log on, log_client off.
    assert_eq!([bytes.count(0), bytes.count(1), bytes.count(2), bytes.count(3), bytes.u16(12)], [2, 2, 1, 0, 1]);
    assert_eq!(&out[14..17], &[0, 0, 0]);
    assert_eq!(out[17], layout::PAGE | layout::LOG);
    // The policy after the pool: the default scanner list, nothing else.
    let agents: Vec<String> = route_table::policy::DEFAULT_DENY_AGENTS.iter().map(|a| format!("\"{a}\"")).collect();
    assert_eq!(bytes.policy(), format!("{{\"agents\":[{}]}}", agents.join(",")));
    assert_eq!(out.len(), layout::HEADER + 2 * layout::RECORD + 2 * layout::HOST + layout::ALLOW + bytes.pool().len() + bytes.policy().len());
    let page = index_html(&table);
    assert!(page.contains("docker pull a.test/busybox"));
    assert!(page.contains("docker pull b.test/OWNER/IMAGE"));
    assert!(page.contains("docker pull b.test/b.io/OWNER/IMAGE"));
}

/// Names are stored only when the table logs; no default is NO_DEFAULT; a
/// host under the domain is its label.
#[test]
fn renders_names_only_when_logging_and_hosts_under_the_domain_as_labels() {
    let src = "domain = \"m.test\"\n[routes.quay]\nhosts = [\"{domain}\", \"quay.{domain}\", \"other.test\"]\nupstream = \"https://quay.io\"\n";
    let out = render(&parse(src).expect("parses")).expect("renders");
    let bytes = Bytes { b: &out };
    assert_eq!(bytes.field(0, "name"), None);
    assert_eq!(bytes.u16(12), usize::from(layout::NO_DEFAULT));
    assert_eq!(out[17], layout::PAGE);
    assert_eq!(bytes.hosts(), ["m.test", "quay.m.test", "other.test"]);
    // The domain is stored once; "quay" is found inside the upstream.
    assert_eq!(bytes.pool(), "https://quay.ioother.testm.test");
}

/// A table bigger than the planner's buffer is refused at build time, with
/// the size and what to do.
#[test]
fn a_table_over_the_planners_buffer_is_refused() {
    let mut src = String::new();
    // Within the checks on text (64 KiB of strings), but 1900 records of
    // 34 bytes and their hosts are more than 64 KiB of table.
    for i in 0..1900 {
        src.push_str(&format!("[routes.r{i}]\nhosts = [\"h{i}.t\"]\nupstream = \"https://u{i}.e\"\n"));
    }
    let e = render(&parse(&src).expect("parses")).expect_err("too big");
    assert_eq!(e.line, 1);
    assert!(
        e.message.starts_with("the compiled table is ")
            && e.message.ends_with(" bytes, more than the 65536 the worker holds; split the routes over several workers"),
        "{}",
        e.message
    );
}

#[test]
fn new_keys_and_their_errors() {
    let ok = parse("page = false\nlog = true\nlog_client = true\n[routes.a]\nhosts = [\"m.test\", \"a.test\"]\nprefix = \"a.io/mirror\"\nregistry = \"A.io:5000\"\nupstream = \"https://a.example\"\nrepository = \"my-project\"\ncredentials = \"A_1\"\nallow = [\"*\", \"x/*\", \"x/y\"]\n[routes.b]\nhosts = [\"m.test\"]\nupstream = \"https://b.example\"\n").expect("parses");
    assert!(!ok.page && ok.log && ok.log_client);
    let a = &ok.routes[0];
    assert_eq!((a.prefix.as_deref(), a.registry.as_str(), a.repository.as_deref(), a.credentials.as_deref()), (Some("a.io/mirror"), "a.io:5000", Some("my-project"), Some("A_1")));
    assert_eq!(a.allow, ["*", "x/*", "x/y"]);
    // The registry name defaults to the upstream's authority.
    assert_eq!(ok.routes[1].registry, "b.example");

    let r = |keys: &str| format!("[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.example\"\n{keys}");
    let cases: Vec<(String, usize, &str)> = vec![
        (r("prefix = \"/ghcr.io\"\n"), 4, "prefix \"/ghcr.io\" has a slash in the wrong place; write path components separated by single slashes, like \"ghcr.io\""),
        (r("prefix = \"ghcr.io/\"\n"), 4, "prefix \"ghcr.io/\" has a slash in the wrong place; write path components separated by single slashes, like \"ghcr.io\""),
        (r("prefix = \"a//b\"\n"), 4, "prefix \"a//b\" has a slash in the wrong place; write path components separated by single slashes, like \"ghcr.io\""),
        (r("prefix = \"GHCR\"\n"), 4, "prefix \"GHCR\" is not a repository path; use lower-case letters and digits with '.', '_' or '-' inside components, like \"ghcr.io\""),
        (r("repository = \"my project\"\n"), 4, "repository \"my project\" is not a repository path; use lower-case letters and digits with '.', '_' or '-' inside components, like \"my-project\""),
        (r("registry = \"ghcr io\"\n"), 4, "registry \"ghcr io\" is not a host name; write the name clients use for the upstream, like \"docker.io\" or \"ghcr.io\""),
        (r("registry = \"https://ghcr.io\"\n"), 4, "registry \"https://ghcr.io\" is not a host name; write the name clients use for the upstream, like \"docker.io\" or \"ghcr.io\""),
        (r("allow = [\"lib*\"]\n"), 4, "allow pattern \"lib*\" is not a repository pattern; write a repository (\"owner/image\"), everything under a path (\"myorg/*\", \"library/*\") or \"*\"; '*' stands only at the end, for whole components"),
        (r("allow = [\"*/x\"]\n"), 4, "allow pattern \"*/x\" is not a repository pattern; write a repository (\"owner/image\"), everything under a path (\"myorg/*\", \"library/*\") or \"*\"; '*' stands only at the end, for whole components"),
        (r("allow = []\n"), 4, "allow is empty, which would refuse every repository; list the repositories to serve, or remove allow to serve all"),
        (r("allow = [\n  \"ok/*\",\n  \"Bad\",\n]\n"), 6, "allow pattern \"Bad\" is not a repository pattern; write a repository (\"owner/image\"), everything under a path (\"myorg/*\", \"library/*\") or \"*\"; '*' stands only at the end, for whole components"),
        (r("credentials = \"DOCKER\"\n"), 4, "route \"a\" has credentials but no allow list, so the mirror would serve everything the account can read to anyone; add allow = [\"library/*\", ...] with the repositories to serve"),
        // Credentials without a realm on an upstream with no domain to hold a
        // discovered realm to (an IP address, a single label).
        ("[routes.a]\nhosts = [\"a.test\"]\nupstream = \"http://127.0.0.1:5000\"\ninsecure = true\ncredentials = \"X\"\nallow = [\"*\"]\n".into(), 5, "route \"a\" has credentials and no realm, and its upstream http://127.0.0.1:5000 has no domain a discovered realm could be checked against, so the secret would go to whatever realm its challenge names; add realm = \"...\" with the upstream's token endpoint"),
        ("[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://registry:5000\"\ncredentials = \"X\"\nallow = [\"*\"]\n".into(), 4, "route \"a\" has credentials and no realm, and its upstream https://registry:5000 has no domain a discovered realm could be checked against, so the secret would go to whatever realm its challenge names; add realm = \"...\" with the upstream's token endpoint"),
        (r("credentials = \"1X\"\nallow = [\"*\"]\n"), 4, "credentials \"1X\" is not a secret name; name the Worker secret (letters, digits, '_'), like \"DOCKERHUB_CREDENTIALS\""),
        (r("allow = \"x/*\"\n"), 4, "allow must be an array of repository patterns, like [\"library/*\", \"myorg/app\"], found a string"),
        ("log_client = true\n".to_string() + &r(""), 1, "log_client = true adds the client's address to the request log, which is off; set log = true too"),
        ("page = \"no\"\n".to_string() + &r(""), 1, "page must be true or false, found a string"),
        // Shared hosts: one route without a prefix, one route per prefix, one route per registry name.
        (r("") + "[routes.b]\nhosts = [\"a.test\"]\nupstream = \"https://b.example\"\n", 5, "host \"a.test\" is already served by route \"a\" (line 2) without a prefix; a host has at most one route without a prefix, give one of them a prefix or remove the host"),
        (r("prefix = \"p\"\n") + "[routes.b]\nhosts = [\"a.test\"]\nupstream = \"https://b.example\"\nprefix = \"p\"\n", 6, "host \"a.test\" already serves prefix \"p\" for route \"a\" (line 2); give each route on a shared host its own prefix"),
        (r("") + "[routes.b]\nhosts = [\"b.test\"]\nupstream = \"https://a.example\"\n", 4, "registry name \"a.example\" is already route \"a\"'s (line 1); clients pick routes by it (containerd's ns), so set registry = \"...\" to a name of its own on one of them"),
        (r("registry = \"x.io\"\n") + "[routes.b]\nhosts = [\"b.test\"]\nupstream = \"https://b.example\"\nregistry = \"x.io\"\n", 8, "registry name \"x.io\" is already route \"a\"'s (line 4); clients pick routes by it (containerd's ns), so set registry = \"...\" to a name of its own on one of them"),
    ];
    let mut wrong = Vec::new();
    for (src, line, message) in &cases {
        match parse(src) {
            Err(e) if (e.line, e.message.as_str()) == (*line, *message) => {}
            other => wrong.push(format!("{src:?}\n  want {line}: {message}\n  got  {:?}", other.map(|_| ()))),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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

/// The planner's own reading of the compiled table (src/routes.rs) gives
/// back what the table says, route by route, for every table: the reader
/// and the renderer agree.
#[test]
fn the_compiled_table_reads_back_as_written() {
    for (file, src) in tables() {
        let table = parse(&src).expect("parses");
        assert!(edge_mirror::routes::install(&render(&table).expect("renders")), "{file}");
        let compiled: Vec<_> = edge_mirror::routes::routes().collect();
        assert_eq!(compiled.len(), table.routes.len());
        assert_eq!(edge_mirror::routes::default_route(), table.routes.iter().position(|r| r.default), "{file}");
        let flags = (edge_mirror::routes::page(), edge_mirror::routes::log(), edge_mirror::routes::log_client());
        assert_eq!(flags, (table.page, table.log, table.log_client), "{file}");
        for (r, spec) in compiled.iter().zip(&table.routes) {
            assert_eq!(r.name, if table.log { spec.name.as_str() } else { "" });
            assert_eq!(r.prefix, spec.prefix.as_deref());
            assert_eq!(r.registry, spec.registry);
            assert_eq!(r.upstream, spec.upstream);
            assert_eq!(r.realm, spec.realm.as_deref());
            assert_eq!(r.service, spec.service.as_deref());
            assert_eq!(r.repository, spec.repository.as_deref());
            assert_eq!(r.credentials, spec.credentials.as_deref());
            assert_eq!(r.search, spec.search.as_deref());
            assert_eq!((r.library, r.follow_redirects), (spec.library, spec.follow_redirects));
            let allow: Vec<&str> = r.allow.iter().map(|p| p.get()).collect();
            assert_eq!(allow, spec.allow);
            let fallback: Vec<&str> = r.fallback.iter().map(|&i| compiled[usize::from(i)].registry).collect();
            assert_eq!(fallback, spec.fallback, "{}", spec.name);
            assert_eq!(r.hosts.len(), spec.hosts.len(), "{}", spec.name);
            for (h, want) in r.hosts.iter().zip(&spec.hosts) {
                assert!(h.is(want) && h.is(&want.to_ascii_uppercase()), "{} {want}", spec.name);
                assert!(!h.is(&format!("x{want}")) && !h.is(&want[1..]) && !h.is(&format!("{want}.x")), "{} {want}", spec.name);
            }
        }
    }
}

/// Bytes that are not a table of this format are refused whole: the
/// planner then has no route (and answers every request saying so), and
/// never reads past what it was given.
#[test]
fn the_planner_refuses_bytes_that_are_not_its_table() {
    let good = render(&parse(include_str!("../routes.toml")).expect("parses")).expect("renders");
    let leak = |v: Vec<u8>| -> &'static [u8] { Box::leak(v.into_boxed_slice()) };
    assert!(edge_mirror::routes::parse(leak(good.clone())).is_some());
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("header only", good[..layout::HEADER].to_vec()),
        ("cut inside the fallbacks", good[..usize::from(u16::from_le_bytes([good[10], good[11]])) - 1].to_vec()),
    ];
    let mut other_format = good.clone();
    other_format[3] = 1;
    cases.push(("another format", other_format));
    let mut non_ascii = good.clone();
    non_ascii[usize::from(u16::from_le_bytes([good[18], good[19]])) - 1] = 0xc3;
    cases.push(("non-ASCII text", non_ascii));
    let mut sections_out_of_order = good.clone();
    sections_out_of_order[6..8].copy_from_slice(&(layout::HEADER as u16).to_le_bytes());
    cases.push(("sections out of order", sections_out_of_order));
    let mut past_the_end = good.clone();
    past_the_end[10..12].copy_from_slice(&((good.len() + 1) as u16).to_le_bytes());
    cases.push(("a section past the end", past_the_end));
    let mut no_routes = good.clone();
    no_routes[4..6].copy_from_slice(&(layout::HEADER as u16).to_le_bytes());
    no_routes[6..8].copy_from_slice(&(layout::HEADER as u16).to_le_bytes());
    cases.push(("no routes", no_routes));
    for (what, bytes) in cases {
        assert!(edge_mirror::routes::parse(leak(bytes.clone())).is_none(), "{what}");
        assert!(edge_mirror::routes::install(&good) && edge_mirror::routes::routes().count() == 14);
        assert!(!edge_mirror::routes::install(&bytes), "{what}");
        // Without a table every request, whatever it is, gets the 500 that
        // says what to do, and nothing is fetched.
        assert!(!edge_mirror::routes::loaded() && edge_mirror::routes::routes().count() == 0, "{what}");
        for (method, url) in [("GET", "https://mirror.example.com/v2/"), ("HEAD", "https://x.test/v2/busybox/manifests/1"), ("POST", "https://mirror.example.com/token")] {
            match edge_mirror::plan::step(&edge_mirror::plan::Request::new(method, url), None) {
                edge_mirror::plan::Action::Reply(r) => {
                    assert_eq!((r.status(), r.msg), (500, edge_mirror::messages::Msg::TableUnusable), "{what} {url}");
                    assert!(r.msg.text().contains("npx wrangler deploy"));
                }
                other => panic!("{what} {url}: {other:?}"),
            }
        }
    }
}

/// The admission keys: what each accepts, normalises and refuses, with the
/// line and the fix.
#[test]
fn admission_keys_and_their_errors() {
    use route_table::policy::{Client, DEFAULT_DENY_AGENTS};
    let routes = "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.example\"\n";
    let t = parse(&format!(
        "access = \"MIRROR_KEYS\"\nclients = [\n  \"203.0.113.0/24\",\n  \"198.51.100.7\",\n  \"2001:DB8::/32\",\n  \"::ffff:0:0/96\",\n  \"country:cn\",\n  \"0.0.0.0/0\",\n]\ndeny_agents = [\"NetCraft\", \"My Scanner/1\"]\nrate_limit = \"MIRROR_RATE\"\n{routes}"
    ))
    .expect("parses");
    let a = &t.admission;
    assert_eq!(a.access.as_deref(), Some("MIRROR_KEYS"));
    assert_eq!(a.rate_limit.as_deref(), Some("MIRROR_RATE"));
    assert_eq!(
        a.clients,
        [
            Client::V4(0xcb00_7100, 24),
            Client::V4(0xc633_6407, 32),
            Client::V6(0x2001_0db8 << 96, 32),
            Client::V6(0xffff << 32, 96),
            Client::Country("CN".into()),
            Client::V4(0, 0),
        ]
    );
    assert_eq!(a.deny_agents, ["netcraft", "my scanner/1"]);
    // Without the keys: nobody refused, the default scanners denied; `[]`
    // turns those off.
    let plain = parse(routes).expect("parses");
    assert_eq!((plain.admission.access.as_ref(), plain.admission.clients.len(), plain.admission.rate_limit.as_ref()), (None, 0, None));
    assert_eq!(plain.admission.deny_agents, DEFAULT_DENY_AGENTS);
    assert!(parse(&format!("deny_agents = []\n{routes}")).expect("parses").admission.deny_agents.is_empty());

    let cases: Vec<(String, usize, String)> = [
        ("access = \"my-keys\"\n", 1, "access \"my-keys\" is not a secret name; name the Worker secret holding the keys (letters, digits, '_'), like \"MIRROR_KEYS\""),
        ("access = true\n", 1, "access must be a string, found a boolean"),
        ("rate_limit = \"9RATE\"\n", 1, "rate_limit \"9RATE\" is not a binding name; name the [[ratelimits]] binding of wrangler.toml (letters, digits, '_'), like \"MIRROR_RATE\""),
        ("clients = []\n", 1, "clients is empty, which would refuse every client; list the addresses or countries to serve, or remove clients to serve all"),
        ("clients = \"10.0.0.0/8\"\n", 1, "clients must be an array of addresses, ranges or countries, like [\"203.0.113.0/24\", \"2001:db8::/32\", \"country:DE\"], found a string"),
        ("clients = [\n  \"10.0.0.0/8\",\n  \"10.1.0.0/8\",\n]\n", 3, "clients \"10.1.0.0/8\" has bits set past its /8; write the network, 10.0.0.0/8"),
        ("clients = [\"2001:db8::1/32\"]\n", 1, "clients \"2001:db8::1/32\" has bits set past its /32; write the network, 2001:db8::/32"),
        ("clients = [\"10.0.0.0/33\"]\n", 1, "clients \"10.0.0.0/33\" has a prefix length over 32; write a length from 0 to 32"),
        ("clients = [\"2001:db8::/129\"]\n", 1, "clients \"2001:db8::/129\" has a prefix length over 128; write a length from 0 to 128"),
        ("clients = [\"10.0.0.0/08\"]\n", 1, "clients \"10.0.0.0/08\" has a malformed prefix length; write an address and /bits, like \"203.0.113.0/24\""),
        ("clients = [\"10.0.0.0/\"]\n", 1, "clients \"10.0.0.0/\" has a malformed prefix length; write an address and /bits, like \"203.0.113.0/24\""),
        ("clients = [\"010.0.0.0/8\"]\n", 1, "clients \"010.0.0.0/8\" is not an IPv4 or IPv6 address or range, nor country:XX; write one like \"203.0.113.0/24\", \"2001:db8::/32\" or \"country:DE\""),
        ("clients = [\"10.0.0/8\"]\n", 1, "clients \"10.0.0/8\" is not an IPv4 or IPv6 address or range, nor country:XX; write one like \"203.0.113.0/24\", \"2001:db8::/32\" or \"country:DE\""),
        ("clients = [\"256.0.0.0/8\"]\n", 1, "clients \"256.0.0.0/8\" is not an IPv4 or IPv6 address or range, nor country:XX; write one like \"203.0.113.0/24\", \"2001:db8::/32\" or \"country:DE\""),
        ("clients = [\"example.com\"]\n", 1, "clients \"example.com\" is not an IPv4 or IPv6 address or range, nor country:XX; write one like \"203.0.113.0/24\", \"2001:db8::/32\" or \"country:DE\""),
        ("clients = [\"fe80::1%eth0\"]\n", 1, "clients \"fe80::1%eth0\" is not an IPv6 address or range; write one like \"2001:db8::/32\" (no zone, no brackets)"),
        ("clients = [\"[2001:db8::]/32\"]\n", 1, "clients \"[2001:db8::]/32\" is not an IPv6 address or range; write one like \"2001:db8::/32\" (no zone, no brackets)"),
        ("clients = [\"2001:db8:::/32\"]\n", 1, "clients \"2001:db8:::/32\" is not an IPv6 address or range; write one like \"2001:db8::/32\" (no zone, no brackets)"),
        ("clients = [\"country:CHN\"]\n", 1, "clients \"country:CHN\" is not a country; write country: and a two-letter code as Cloudflare gives it, like \"country:DE\""),
        ("clients = [\"country:\"]\n", 1, "clients \"country:\" is not a country; write country: and a two-letter code as Cloudflare gives it, like \"country:DE\""),
        ("deny_agents = [\"\"]\n", 1, "deny_agents \"\" is not a User-Agent substring; write 1 to 128 printable ASCII characters without spaces at either end, like \"netcraft\""),
        ("deny_agents = [\" bot\"]\n", 1, "deny_agents \" bot\" is not a User-Agent substring; write 1 to 128 printable ASCII characters without spaces at either end, like \"netcraft\""),
        ("deny_agents = [\"tab\\tbot\"]\n", 1, "deny_agents \"tab\\tbot\" is not a User-Agent substring; write 1 to 128 printable ASCII characters without spaces at either end, like \"netcraft\""),
        ("deny_agents = [\"bøt\"]\n", 1, "deny_agents \"b\\u{f8}t\" is not a User-Agent substring; write 1 to 128 printable ASCII characters without spaces at either end, like \"netcraft\""),
    ]
    .into_iter()
    .map(|(top, line, message)| (format!("{top}{routes}"), line, message.to_string()))
    .collect();
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(src, line, message)| parse(src).map(|_| ()).map_err(|e| (e.line, e.message)) != Err((*line, message.clone())))
        .map(|(src, line, message)| format!("{src:?}\n  want {line}: {message}\n  got  {:?}", parse(src).map(|_| ()).map_err(|e| (e.line, e.message))))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The policy after the pool, as the entry reads it: a range as its family
/// and prefix bits, countries apart, agents lower case; the planner reads
/// the table the same with or without one.
#[test]
fn the_policy_goes_after_the_pool_for_the_entry() {
    let routes = "[routes.a]\nhosts = [\"a.test\"]\nupstream = \"https://a.example\"\n";
    let src = format!(
        "access = \"K\"\nclients = [\"203.0.113.0/24\", \"2001:db8::/33\", \"country:de\", \"0.0.0.0/0\"]\ndeny_agents = [\"Netcraft\", \"a\\\"b\\\\c\"]\nrate_limit = \"R\"\n{routes}"
    );
    let out = render(&parse(&src).expect("parses")).expect("renders");
    let bytes = Bytes { b: &out };
    let v6 = format!("0010000000000001000011011011100{}", "0".repeat(2));
    assert_eq!(
        bytes.policy(),
        format!(
            "{{\"access\":\"K\",\"clients\":[\"4:110010110000000001110001\",\"6:{v6}\",\"4:\"],\"countries\":[\"DE\"],\"agents\":[\"netcraft\",\"a\\\"b\\\\c\"],\"rate\":\"R\"}}"
        )
    );
    // The same routes without the keys: the pool is the same, the planner
    // reads both alike.
    let off = render(&parse(&format!("deny_agents = []\n{routes}")).expect("parses")).expect("renders");
    assert_eq!(Bytes { b: &off }.policy(), "");
    assert_eq!(Bytes { b: &off }.pool(), bytes.pool());
    for b in [out.clone(), off] {
        assert!(edge_mirror::routes::install(&b), "the planner reads it");
        assert_eq!(edge_mirror::routes::routes().map(|r| r.upstream).collect::<Vec<_>>(), ["https://a.example"]);
    }
}

/// With `access`, the page names every host with the key (`{KEY}`, which
/// the entry fills in) and says that it carries it; without, no `{KEY}`.
#[test]
fn with_access_the_page_carries_the_key() {
    let routes = include_str!("../routes.toml");
    let keyed = parse(&format!("access = \"MIRROR_KEYS\"\n{routes}")).expect("parses");
    let page = index_html(&keyed);
    assert!(page.contains("carry your access key"));
    for line in [
        "docker pull mirror.example.com/{KEY}/busybox",
        "[host.\"https://mirror.example.com/{KEY}\"]",
        "location = \"mirror.example.com/{KEY}/ghcr.io\"",
        "- \"https://mirror.example.com/{KEY}\"",
        "docker search mirror.example.com/{KEY}/TERM",
        "needs Docker Engine 25 or later",
    ] {
        assert!(page.contains(line), "{line}\n{page}");
    }
    assert!(!page.contains("helm registry login"));
    let plain = index_html(&parse(routes).expect("parses"));
    assert!(!plain.contains("{KEY}") && !plain.contains("access key"));
}
