"""scripts/check-mirror.py against a running mirror: the dev server
(scripts/dev.sh, HTTPS with its own CA) built with the e2e route table, whose
upstreams are the session's fixtures (tests/e2e/fixtures.py) and registry.

check-mirror runs as an operator runs it, in a private mount namespace whose
/etc/hosts maps the table's host names (and elsewhere.test, a name the
certificate does not cover) to the dev server on 127.0.0.50:8443.

- Healthy pulls through the routes' ways of being selected: a host of its
  own (with Docker Hub's library/ rule), a path prefix on the shared host,
  containerd's ns, a route that passes blob redirects to the client, and a
  login with the password on standard input. Each also checks, in the
  fixtures' logs, that the requests it reports reached the upstream.
- Every failure the command names, each produced for real: by the
  fixtures (rate limits, an allow list, an unknown ns and prefix, a dead
  upstream, a missing secret, an upstream's 401 and 404, redirect loops), by
  the dev server itself (an untrusted CA, a host name its certificate does
  not name, TLS only), by servers that are not the mirror (the upstream
  itself, a plain web server, closed ports, a name that does not resolve),
  and by ODD, a small registry on 127.0.0.51 (this module's) that answers
  the ways a broken mirror or proxy would. Each asserts the step named, the
  cause and the fix's words, and the exit status.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import devstack
from conftest import MIRROR_HOSTS, SECRET_NAME, SECRET_VALUE
from devstack import in_ns

DEV_IP, DEV_PORT = "127.0.0.50", 8443
ODD = ("127.0.0.51", 15051)
BASIC = ("127.0.0.51", 15052)
ROUTES = "tests/e2e/routes.e2e.toml"
CHECK = os.path.join(devstack.ROOT, "scripts", "check-mirror.py")
D = f"https://docker.mirror.test:{DEV_PORT}"
M = f"https://mirror.test:{DEV_PORT}"
# One numbered line per request: step (24 columns), method, path, the
# redirects followed, status, time, detail.
STEP_RE = re.compile(r"^ ?\d+ (.{24}) (GET |HEAD) (\S+)(.*?)  (\d{3}|---)  \d+ ms(?:  (.*))?$")


@pytest.fixture(scope="module")
def dev(stack, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("check-dev"))
    dev_vars = os.path.join(workdir, "dev.vars")
    with open(dev_vars, "w") as f:
        f.write(f"{SECRET_NAME}={SECRET_VALUE}\n")
    server = devstack.DevServer(workdir, ROUTES, DEV_IP, DEV_PORT, env={"DEV_VARS": dev_vars})
    server.hosts = devstack.hosts_file(os.path.join(workdir, "hosts"), DEV_IP, MIRROR_HOSTS + ["elsewhere.test"])
    try:
        yield server
    finally:
        server.stop()


class Run:
    def __init__(self, r):
        self.rc, self.out, self.err = r.returncode, r.stdout, r.stderr
        self.steps = []
        for line in self.out.splitlines():
            m = STEP_RE.match(line)
            if m:
                self.steps.append((m.group(1).rstrip(), m.group(2).rstrip(), m.group(3), m.group(4).strip(), m.group(5),
                                   m.group(6) or ""))
        fails = [l for l in self.out.splitlines() if l.startswith("FAIL at ")]
        fixes = [l for l in self.out.splitlines() if l.startswith("fix: ")]
        self.fail = fails[0] if fails else None
        self.fix = fixes[0] if fixes else None
        assert len(fails) <= 1 and len(fixes) == len(fails), self.out

    def statuses(self):
        return [(step, status) for step, _, _, _, status, _ in self.steps]

    def __repr__(self):
        return f"exit {self.rc}\n{self.out}{self.err}"


def check(dev, *args, stdin="", timeout=120):
    """check-mirror.py ARGS as an operator runs it, with the module's /etc/hosts."""
    cmd = in_ns(dev.hosts, [sys.executable, CHECK, *args])
    return Run(subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=timeout))


HEALTHY = [("ping", "401"), ("token", "200"), ("manifest HEAD", "200"), ("manifest GET", "200"),
           ("manifest GET by digest", "200"), ("config HEAD", "200"), ("config GET", "206"),
           ("layer HEAD", "200"), ("layer GET", "206")]


def assert_ok(run, steps=HEALTHY):
    assert run.rc == 0 and run.fail is None, run
    assert run.statuses() == steps, run
    assert re.search(r"^OK: the pull would succeed \(\d+ requests, \d+ ms\)$", run.out, re.M), run


# --- healthy pulls ---

def assert_fails(run, step, cause, fix):
    """A failed pull: exit 1, the named step, the cause's and fix's words."""
    assert run.rc == 1, run
    assert run.fail and run.fail.startswith(f"FAIL at {step}: "), run
    for words in cause:
        assert words in run.fail, (words, run)
    for words in fix:
        assert words in run.fix, (words, run)


def test_healthy_pull_through_a_host_route_with_the_library_rule(stack, dev):
    marks = stack.marks()
    run = check(dev, "--cacert", dev.ca, D, "multilayer:1.0")
    assert_ok(run)
    digest = stack.digests["library/multilayer:1.0"]
    ping = run.steps[0]
    assert ping[5] == f"realm {D}/token (this mirror), service test-registry", run
    head = run.steps[2]
    assert head[5].startswith(digest[:19] + "…"), run
    assert "digest matches" in run.steps[6][5] and "(bytes 0-65535/" in run.steps[8][5], run
    # What it reported is what reached the upstream: the mirror's library/
    # rule, HEAD staying HEAD, the Range kept all the way to the CDN.
    got = stack.since(marks)
    assert [(e["method"], e["path"]) for e in got["front"] if "/manifests/" in e["path"]] == [
        ("HEAD", "/v2/library/multilayer/manifests/1.0"), ("GET", "/v2/library/multilayer/manifests/1.0"),
        ("GET", f"/v2/library/multilayer/manifests/{digest}")], got["front"]
    layer = stack.layers["library/multilayer:1.0"][0]
    assert [(e["method"], e["range"]) for e in got["cdn"] if layer in e["path"]] == [("HEAD", None), ("GET", "bytes=0-65535")]
    assert not any(e["auth"] for e in got["cdn"])


def test_healthy_pull_by_path_prefix_on_the_shared_host(stack, dev):
    marks = stack.marks()
    run = check(dev, "--cacert", dev.ca, M, "ghcr.io/team/app:2")
    assert_ok(run)
    assert run.steps[0][5].startswith(f"realm {M}/token (this mirror)"), run
    assert run.steps[1][2] == "/token?service=test-registry&scope=repository:ghcr.io/team/app:pull", run
    assert stack.digests["team/app:2"][:19] in run.steps[2][5]
    # The ghcr route has no realm in the table: the mirror discovered it.
    got = stack.since(marks)
    assert any(e["path"] == "/v2/" for e in got["front"]), got["front"]
    assert any(e["path"] == "/v2/team/app/manifests/2" for e in got["front"])


def test_healthy_pull_by_ns_as_containerd_selects_routes(stack, dev):
    run = check(dev, "--cacert", dev.ca, "--ns", "ghcr.io", M, "team/app:2")
    assert_ok(run)
    assert run.steps[0][2] == "/v2/?ns=ghcr.io" and f"realm {M}/token/ghcr.io (this mirror)" in run.steps[0][5], run
    assert all(path.endswith("ns=ghcr.io") for step, _, path, *_ in run.steps if step not in ("token",)), run


def test_a_pull_served_by_a_fallback_says_so_step_by_step(stack, dev):
    # The route's upstream throttles every request; its fallback (the
    # registry without auth) answers every manifest and blob.
    run = check(dev, "--cacert", dev.ca, f"https://openfb.mirror.test:{DEV_PORT}", "multilayer:1.0")
    assert_ok(run)
    source = "from fallback open.test (fallback: openfb.test 429)"
    for step, _, _, _, _, detail in run.steps:
        assert detail.endswith(source) == step.startswith(("manifest", "config", "layer")), run
    assert ("sources: 2 steps from the mirror and the route's upstream, 7 from fallback open.test (fallback: openfb.test "
            "429): the route's upstream is throttling or failing, and the mirror is serving from its fallbacks") in run.out, run


def test_healthy_pull_following_redirects_the_route_passes(stack, dev):
    marks = stack.marks()
    run = check(dev, "--cacert", dev.ca, f"https://pass.mirror.test:{DEV_PORT}", "team/app:2")
    assert_ok(run)
    for step, _, _, hops, _, _ in run.steps[5:]:
        assert hops.startswith("-> 307 http://127.0.0.4:15003/data/sha256:"), (step, hops)
    got = stack.since(marks)
    assert len(got["cdn"]) == 4 and not any(e["auth"] for e in got["cdn"]), got["cdn"]


def test_login_with_the_password_on_stdin(stack, dev):
    marks = stack.marks()
    user, password = SECRET_VALUE.split(":", 1)
    run = check(dev, "--cacert", dev.ca, "--user", user, f"https://private.mirror.test:{DEV_PORT}", "private/secret:1",
                stdin=password + "\n")
    assert_ok(run, [("ping", "401"), ("login", "200")] + HEALTHY[1:])
    assert "account=alice" in run.steps[1][2] and run.steps[1][5] == "as alice token for no scope", run
    assert password not in run.out
    got = stack.since(marks)["token"]
    assert got and all(e["user"] == "alice" and e["auth"] for e in got), got


# --- failures: the step, the cause and the fix ---

Z = "0" * 64
FAILURES = [
    # id, url, image, extra args, stdin, step, words of the cause, words of the fix
    ("rate-limit-pull", D, "fault/ratelimit:x", [], "", "manifest HEAD",
     ["429, the upstream registry's pull rate limit was reached (Retry-After: 21600 s)"],
     ['credentials = "NAME"', "npx wrangler secret put NAME", "paid Docker Hub account"]),
    ("rate-limit-address", D, "fault/abuse:x", [], "", "manifest HEAD",
     ["429, the upstream registry limits requests from the mirror's address (Retry-After: 30 s)"],
     ["retry after Retry-After", "credentials secret"]),
    ("allow-list", f"https://private.mirror.test:{DEV_PORT}", "team/app:2", [], "", "token",
     ["403, the route's allow list does not include team/app"], ["allow = [...]", "routes.toml", "npx wrangler deploy"]),
    ("unknown-ns", M, "team/app:2", ["--ns", "nope.io"], "", "ping",
     ["404, no route of the mirror has the registry name (ns) nope.io"],
     ['registry = "nope.io"', "/etc/containerd/certs.d/nope.io/hosts.toml"]),
    ("unknown-prefix", M, "nope.io/team/app:2", [], "", "manifest HEAD",
     ["404, no route on mirror.test has the prefix nope.io"], ['prefix = "nope.io"', "mirror.test to its hosts"]),
    ("dead-upstream", f"https://down.mirror.test:{DEV_PORT}", "team/app:2", [], "", "manifest HEAD",
     ["502, the mirror could not reach the upstream http://127.0.0.2:15009"],
     ["upstream (and realm) in routes.toml", "reachable from the internet"]),
    ("hanging-upstream", D, f"fault/hang@sha256:{Z}", [], "", "manifest GET by digest",
     ["504, the mirror could not reach the upstream http://127.0.0.2:15001 in time"], ["upstream (and realm) in routes.toml"]),
    ("secret-not-set", f"https://unset.mirror.test:{DEV_PORT}", "private/secret:1", [], "", "token",
     ["503, the route's credentials secret UNSET_CREDENTIALS is not set"],
     ["npx wrangler secret put UNSET_CREDENTIALS", "user:token", ".dev.vars"]),
    ("login-refused", f"https://private.mirror.test:{DEV_PORT}", "private/secret:1", ["--user", "alice"], "wrong\n", "login",
     ["401, the upstream's token server refused the login of alice"], ["password"]),
    ("upstream-401", D, "private/secret:1", [], "", "manifest HEAD",
     ["401, the upstream refused access to private/secret"], ["does not exist or needs credentials", "--user"]),
    ("manifest-unknown", D, "multilayer:nope", [], "", "manifest HEAD",
     ["404 MANIFEST_UNKNOWN, the upstream has no tag or manifest nope in multilayer"], ["check the repository name and the tag"]),
    ("not-a-manifest", D, "fault/cookie:x", [], "", "manifest GET",
     ["the answer is not an image manifest or index"], ["reach a registry"]),
    ("digest-mismatch", D, f"fault/cookie@sha256:{Z}", [], "", "manifest GET by digest",
     ["the manifest's bytes do not match its digest"], ["changed the body"]),
    ("redirect-loop", f"https://pass.mirror.test:{DEV_PORT}", "fault/loop:x", [], "", "manifest HEAD",
     ["more than 10 redirects"], ["redirects in a loop"]),
    ("realm-elsewhere", "http://127.0.0.2:15001", "team/app:2", ["--insecure"], "", "ping",
     ["the realm in the /v2/ challenge is http://127.0.0.3:15002/token, which does not point at the mirror"],
     ["reaches the upstream registry or another mirror", "rewrites the Host header"]),
    ("untrusted-certificate", D, "multilayer:1.0", ["--no-cacert"], "", "ping",
     ["certificate problem: the mirror's TLS certificate is not trusted"], ["--cacert .dev/tls/ca.crt", "custom domain"]),
    ("certificate-names-other-hosts", f"https://elsewhere.test:{DEV_PORT}", "multilayer:1.0", [], "", "ping",
     ["certificate problem: the mirror's TLS certificate does not name elsewhere.test"],
     ["attach elsewhere.test to the worker as a custom domain"]),
    ("not-tls", "https://127.0.0.2:15001", "team/app:2", [], "", "ping",
     ["did not complete a TLS handshake"], ["http:// URL with --insecure"]),
    ("tls-only", f"http://docker.mirror.test:{DEV_PORT}", "multilayer:1.0", ["--insecure"], "", "ping",
     ["closed the connection without an HTTP answer"], ["use an https:// URL"]),
    ("connection-refused", f"https://docker.mirror.test:{DEV_PORT + 9}", "multilayer:1.0", [], "", "ping",
     [f"docker.mirror.test:{DEV_PORT + 9} (the mirror) refused the connection"], ["--ip and --port"]),
    ("name-does-not-resolve", "https://nowhere.mirror.test", "multilayer:1.0", [], "", "ping",
     ["the name nowhere.mirror.test (the mirror) does not resolve"], ["custom domain creates one", "/etc/hosts"]),
    ("not-a-registry", "http://127.0.0.4:15003", "team/app:2", ["--insecure"], "", "ping",
     ["http://127.0.0.4:15003/v2/ does not answer as a registry (404, text/plain"], ["custom domain"]),
    ("throttled-and-no-fallback-has-it", f"https://allthrottled.mirror.test:{DEV_PORT}", "multilayer:1.0", [], "",
     "manifest HEAD", ["429 from the route's upstream (allthrottled.test), and no fallback had it either (throttled2.test 429)"],
     ["the fallbacks are copies", "credentials"]),
]


@pytest.mark.parametrize("case", FAILURES, ids=[c[0] for c in FAILURES])
def test_each_failure_names_its_step_and_fix(stack, dev, case):
    _, url, image, args, stdin, step, cause, fix = case
    args = list(args)
    if "--no-cacert" in args:
        args.remove("--no-cacert")
    else:
        args = ["--cacert", dev.ca] + args
    run = check(dev, *args, url, image, stdin=stdin)
    assert_fails(run, step, cause, fix)
    assert "OK:" not in run.out
    # The failing step is on a numbered line of its own.
    assert any(s == step or s == f"{step} (as GET)" for s, *_ in run.steps), run


def test_usage_errors_exit_2_before_any_request(dev):
    run = check(dev, f"http://docker.mirror.test:{DEV_PORT}", "multilayer:1.0")
    assert run.rc == 2 and "--insecure" in run.err and run.out == "", run
    run = check(dev, D + "/v2/", "multilayer:1.0")
    assert run.rc == 2 and "without a path" in run.err, run
    run = check(dev, D, "Not/Lower")
    assert run.rc == 2 and "not a repository name" in run.err, run


# --- ODD: a registry that answers as a broken mirror or proxy would ---

def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


CONFIG = blob(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
LAYER = blob(bytes(range(256)) * 512)  # 128 KiB


def manifest(config=CONFIG, layer=LAYER, config_size=None):
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0],
                      "size": config_size if config_size is not None else len(config[1])},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer[0], "size": len(layer[1])}]}
    return json.dumps(doc).encode()


GOOD = manifest()
BAD_CONFIG = blob(b"this is not what the digest says")
ODD_MANIFESTS = {
    "odd/good": GOOD,
    "odd/nodigest": GOOD,
    "odd/noconfig": json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "layers": []}).encode(),
    "odd/length": manifest(config_size=len(CONFIG[1]) + 5),
    "odd/badblob": manifest(config=("sha256:" + "1" * 64, BAD_CONFIG[1])),
    "odd/norange": GOOD,
    "odd/armonly": json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                               "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                              "digest": blob(GOOD)[0], "size": len(GOOD),
                                              "platform": {"os": "linux", "architecture": "arm64"}}]}).encode(),
    "odd/index": None,  # the same index, pulled with --platform linux/arm64
    "odd/realm": GOOD,
}
ODD_MANIFESTS["odd/index"] = ODD_MANIFESTS["odd/armonly"]
BLOBS = {CONFIG[0]: CONFIG[1], LAYER[0]: LAYER[1], "sha256:" + "1" * 64: BAD_CONFIG[1]}
BLOBS.update(blob(body) for body in ODD_MANIFESTS.values())


class OddRegistry(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    basic = False

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=(), ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        host = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
        path, _, query = self.path.partition("?")
        if self.basic:
            return self.send(401, b"{}", [("WWW-Authenticate", 'Basic realm="Registry Realm"')])
        auth = self.headers.get("Authorization") or ""
        if path == "/token":
            if "notoken" in query:
                return self.send(200, b'{"expires_in":300}')
            return self.send(200, b'{"token":"t0k3n"}')
        challenge = f'Bearer realm="{host}/token",service="odd"'
        if path == "/v2/":
            return self.send(401 if auth != "Bearer t0k3n" else 200, b"{}", [("WWW-Authenticate", challenge)])
        m = re.match(r"^/v2/(odd/[a-z]+)/(manifests|blobs)/(.+)$", path)
        if not m:
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}')
        name, kind, ref = m.groups()
        if name == "odd/slow":
            time.sleep(3)  # longer than the check's --timeout 1
            try:
                return self.send(200, GOOD)
            except OSError:
                return None
        if name == "odd/ftp":
            return self.send(302, b"", [("Location", "ftp://127.0.0.2/blob")])
        if name == "odd/realm":
            return self.send(401, b"{}", [("WWW-Authenticate", 'Bearer realm="https://auth.elsewhere.test/token",'
                                                                 f'service="odd",scope="repository:{name}:pull"')])
        if auth != "Bearer t0k3n":
            return self.send(401, b"{}", [("WWW-Authenticate", challenge + f',scope="repository:{name}:pull"')])
        if kind == "manifests":
            body = ODD_MANIFESTS[name] if not ref.startswith("sha256:") else BLOBS.get(ref)
            if body is None:
                return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
            mtype = json.loads(body)["mediaType"]
            headers = [] if name == "odd/nodigest" else [("Docker-Content-Digest", blob(body)[0])]
            return self.send(200, body, headers, ctype=mtype)
        data = BLOBS.get(ref)
        if data is None:
            return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
        rng = re.match(r"^bytes=(\d+)-(\d+)$", self.headers.get("Range") or "")
        if rng and name != "odd/norange":
            a, b = int(rng.group(1)), min(int(rng.group(2)), len(data) - 1)
            return self.send(206, data[a:b + 1], [("Content-Range", f"bytes {a}-{b}/{len(data)}")],
                             ctype="application/octet-stream")
        return self.send(200, data, ctype="application/octet-stream")

    do_HEAD = do_GET


class BasicRegistry(OddRegistry):
    basic = True


@pytest.fixture(scope="module")
def odd():
    servers = [ThreadingHTTPServer(ODD, OddRegistry), ThreadingHTTPServer(BASIC, BasicRegistry)]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield f"http://{ODD[0]}:{ODD[1]}"
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_odd_registry_healthy_baseline(dev, odd):
    # The fixture itself is a registry a pull succeeds from; each case below
    # changes one thing.
    run = check(dev, "--insecure", odd, "odd/good:1")
    assert_ok(run)


def test_a_range_the_server_ignores_is_noted_not_failed(dev, odd):
    run = check(dev, "--insecure", odd, "odd/norange:1")
    assert_ok(run, HEALTHY[:6] + [("config GET", "200"), ("layer HEAD", "200"), ("layer GET", "200")])
    assert "the Range was ignored (resumed downloads start over)" in run.steps[-1][5], run


def test_an_index_picks_the_platform(dev, odd):
    run = check(dev, "--insecure", "--platform", "linux/arm64", odd, "odd/index:1")
    assert_ok(run, HEALTHY[:5] + [("linux/arm64 manifest", "200")] + HEALTHY[5:])


ODD_FAILURES = [
    ("basic-challenge", BASIC, "odd/good:1", [], "ping", ["not a Bearer challenge with a realm", 'Basic realm="Registry Realm"'],
     ["reaches another server"]),
    ("token-without-token", ODD, "odd/notoken:1", [], "token", ["the token endpoint answered 200 without a token"],
     ["realm"]),
    ("challenge-realm-elsewhere", ODD, "odd/realm:1", [], "manifest HEAD",
     ["the realm in the challenge is https://auth.elsewhere.test/token, which does not point at the mirror"],
     ["rewrites the Host header"]),
    ("head-without-digest", ODD, "odd/nodigest:1", [], "manifest HEAD", ["named no Docker-Content-Digest"],
     ["drops response headers"]),
    ("no-platform", ODD, "odd/armonly:1", [], "manifest GET by digest",
     ["the index has no manifest for linux/amd64 (it has linux/arm64)"], ["--platform"]),
    ("no-config", ODD, "odd/noconfig:1", [], "manifest GET", ["the manifest names no config blob"], ["check the tag"]),
    ("blob-length", ODD, "odd/length:1", [], "config HEAD",
     [f"the blob's length is {len(CONFIG[1])} B, the manifest says {len(CONFIG[1]) + 5} B"], ["changes blobs"]),
    ("blob-digest", ODD, "odd/badblob:1", [], "config GET", ["the blob's bytes do not match its digest"],
     ["changed the body"]),
    ("no-answer-in-time", ODD, "odd/slow:1", ["--timeout", "1"], "manifest HEAD",
     [f"the mirror at {ODD[0]}:{ODD[1]} did not answer within 1 s"], ["reachable from here"]),
    ("redirect-scheme", ODD, "odd/ftp:1", [], "manifest HEAD",
     ["a redirect led to ftp://127.0.0.2/blob, which clients cannot fetch"], ["another scheme"]),
    ("digest-unknown", ODD, "odd/good@" + "sha256:" + "2" * 64, [], "manifest GET by digest",
     ["404 MANIFEST_UNKNOWN, the upstream has no tag or manifest"], ["tag"]),
]


@pytest.mark.parametrize("case", ODD_FAILURES, ids=[c[0] for c in ODD_FAILURES])
def test_each_failure_of_a_broken_registry_names_its_step_and_fix(dev, odd, case):
    _, addr, image, args, step, cause, fix = case
    run = check(dev, "--insecure", *args, f"http://{addr[0]}:{addr[1]}", image)
    assert_fails(run, step, cause, fix)


def test_the_password_is_read_from_stdin_and_sent_only_to_the_token_endpoint(dev, odd):
    # Basic credentials go to the realm; the registry API gets the token.
    seen = []
    orig = OddRegistry.do_GET

    def spy(self):
        seen.append((self.path.partition("?")[0], self.headers.get("Authorization")))
        return orig(self)

    OddRegistry.do_GET = OddRegistry.do_HEAD = spy
    try:
        run = check(dev, "--insecure", "--user", "bob", odd, "odd/good:1", stdin="s3cret\n")
    finally:
        OddRegistry.do_GET = OddRegistry.do_HEAD = orig
    assert_ok(run, [("ping", "401"), ("login", "200")] + HEALTHY[1:])
    basic = "Basic " + base64.b64encode(b"bob:s3cret").decode()
    assert [p for p, a in seen if a == basic] == ["/token", "/token"], seen
    assert all(a in (None, "Bearer t0k3n") for p, a in seen if p != "/token"), seen
