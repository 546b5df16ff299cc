"""Keeping a public mirror its owner's (issue 25), with real clients against
the distribution registry behind token auth.

The workers here are the deploy build (node scripts/build.mjs, the committed
planner) of tests/e2e/routes.access.toml (access keys, the default scanner
list) and tests/e2e/routes.clients.toml (a client allow list), run by one
plain workerd on addresses of their own (conftest.ACCESS_HOSTS); workerd
takes each request's Cloudflare properties (request.cf, the country) from
the cf-blob header the tests set, and the client's address is the
CF-Connecting-IP header, as on Cloudflare. The rate limit runs under
`wrangler dev`, whose miniflare implements the Rate Limiting binding.

The keys are canaries made for this run: after the pulls, no upstream, realm
or log line may hold one (test_zz_..., last in the file).
"""

import base64
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import ACCESS_HOSTS, ROOT, Tap, http_request, in_ns, port_open
from devstack import Proc, wait_for

KEY1 = "canary1-" + secrets.token_hex(12)
KEY2 = "canary2_" + secrets.token_hex(12)
# A key of the right form that is not one of the mirror's.
WRONG = "canary0-" + secrets.token_hex(12)
K = "keyed.test"
WORKERD = os.path.join(ROOT, "node_modules", ".bin", "workerd")
WRANGLER = os.path.join(ROOT, "node_modules", ".bin", "wrangler")
NETCRAFT = "Mozilla/5.0 (compatible; NetcraftSurveyAgent/1.0; +info@netcraft.com)"

CONFIG = """using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "keyed", worker = .keyed),
    (name = "nokeys", worker = .nokeys),
    (name = "badkeys", worker = .badkeys),
    (name = "clients", worker = .clients),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "keyed", address = "{keyed}:80", http = (cfBlobHeader = "cf-blob"), service = "keyed"),
    (name = "nokeys", address = "{nokeys}:80", http = (cfBlobHeader = "cf-blob"), service = "nokeys"),
    (name = "badkeys", address = "{badkeys}:80", http = (cfBlobHeader = "cf-blob"), service = "badkeys"),
    (name = "clients", address = "{clients}:80", http = (cfBlobHeader = "cf-blob"), service = "clients"),
  ],
);
const keyed :Workerd.Worker = (modules = [{access}], bindings = [(name = "MIRROR_KEYS", text = "{keys}")], compatibilityDate = "2026-04-01");
const nokeys :Workerd.Worker = (modules = [{access}], bindings = [], compatibilityDate = "2026-04-01");
const badkeys :Workerd.Worker = (modules = [{access}], bindings = [(name = "MIRROR_KEYS", text = "{KEY1},short")], compatibilityDate = "2026-04-01");
const clients :Workerd.Worker = (modules = [{clients_modules}], bindings = [], compatibilityDate = "2026-04-01");
"""


def modules(folder):
    return ", ".join(f'(name = "{n}", {kind} = embed "{folder}/{n}")'
                     for n, kind in (("index.js", "esModule"), ("index_bg.wasm", "wasm"), ("table.bin", "data"), ("page.html", "text")))


def deploy_build(table, out):
    """The deploy build of `table` into `out`, as `wrangler deploy` runs it."""
    r = subprocess.run(["node", "scripts/build.mjs", "--table", table, "--out", out], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


class Workers:
    """The access workers in one workerd; restart() with other keys, the
    builds untouched (rotating keys needs no rebuild)."""

    def __init__(self, workdir):
        self.dir = workdir
        self.outputs = []
        deploy_build("tests/e2e/routes.access.toml", os.path.join(workdir, "access"))
        deploy_build("tests/e2e/routes.clients.toml", os.path.join(workdir, "clients"))
        self.proc = None
        self.start(f"{KEY1},{KEY2}")

    def start(self, keys):
        config = os.path.join(self.dir, "config.capnp")
        with open(config, "w") as f:
            f.write(CONFIG.replace("{access}", modules("access")).replace("{clients_modules}", modules("clients"))
                    .replace("{keys}", keys).replace("{KEY1}", KEY1)
                    .format(keyed=ACCESS_HOSTS["keyed.test"], nokeys=ACCESS_HOSTS["nokeys.test"],
                            badkeys=ACCESS_HOSTS["badkeys.test"], clients=ACCESS_HOSTS["clients.test"]))
        self.proc = Proc(f"workerd-access-{len(self.outputs)}", [WORKERD, "serve", config], self.dir, cwd=self.dir)
        self.outputs.append(self.proc)
        wait_for("workerd (access)", lambda: all(port_open(f"{ACCESS_HOSTS[h]}:80") for h in
                                                 ("keyed.test", "nokeys.test", "badkeys.test", "clients.test")), 60, self.proc)

    def restart(self, keys):
        self.proc.stop()
        self.start(keys)

    def log(self):
        """Every line the workers wrote, from every start."""
        return "".join(p.output() for p in self.outputs)

    def log_lines(self):
        out = []
        for line in self.log().splitlines():
            i = line.find('{"route":')
            if i >= 0:
                out.append(json.loads(line[i:]))
        return out

    def stop(self):
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture(scope="module")
def access(stack):
    d = os.path.join(stack.dir, "access")
    os.makedirs(d, exist_ok=True)
    w = Workers(d)
    try:
        yield w
    finally:
        w.stop()


def request(host, path, headers=None, method="GET", body=None):
    status, pairs, data = http_request(ACCESS_HOSTS[host], method, host, path, headers, body)
    return status, {k.lower(): v for k, v in pairs}, data


def upstream_marks(stack):
    return stack.marks(("front", "token", "cdn", "index"))


def docker(stack, config_dir, *args, timeout=300):
    env = dict(os.environ, DOCKER_HOST=f"unix://{stack.docker_sock}", DOCKER_CONFIG=str(config_dir))
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout)


def ctr(stack, *args):
    return stack.ns(["ctr", "-a", stack.ctr_sock, *args])


# --- without a key ---

def test_without_a_key_every_path_gets_the_same_404_and_nothing_is_fetched(stack, access):
    marks = upstream_marks(stack)
    bodies = set()
    paths = ["/", "/v2/library/multilayer/manifests/1.0", "/v2/_catalog", "/v2/library/multilayer/tags/list",
             "/token?scope=repository:library/multilayer:pull&service=test-registry", "/token/docker.io?account=alice",
             "/v1/search?q=busybox&n=25", "/index.html", f"/{WRONG}/v2/", f"/{WRONG}/v2/library/multilayer/manifests/1.0",
             f"/v2/{WRONG}/library/multilayer/manifests/1.0", f"/{KEY1[:-1]}/v2/", f"/{KEY1.upper()}/v2/",
             f"/v2/library/multilayer/manifests/1.0?k={KEY1}"]
    for path in paths:
        for accept in ("application/json", "text/html,application/xhtml+xml"):
            status, headers, body = request(K, path, {"Accept": accept})
            assert status == 404, (path, status, body)
            assert headers.get("x-robots-tag") == "noindex, nofollow", headers
            bodies.add(body)
    # One answer for all of them, naming no route, registry or upstream.
    assert len(bodies) == 1, bodies
    body = bodies.pop()
    assert json.loads(body)["errors"][0]["code"] == "NAME_UNKNOWN"
    for word in (b"docker", b"ghcr", b"127.0.0", b"multilayer", b"token"):
        assert word not in body, body
    # POST to the token endpoint without a key, in the URL or the form.
    status, _, body2 = request(K, "/token", {"Content-Type": "application/x-www-form-urlencoded"}, "POST",
                               "grant_type=password&username=alice&password=wonderland&service=test-registry&scope=repository%3Alibrary%2Fmultilayer%3Apull")
    assert (status, body2) == (404, body)
    # /v2/ gets the challenge clients need before they ask for a keyed name;
    # it names the bare token endpoint and nothing else.
    status, headers, _ = request(K, "/v2/")
    assert status == 401
    assert headers["www-authenticate"] == f'Bearer realm="http://{K}/token"'
    assert headers["docker-distribution-api-version"] == "registry/2.0"
    assert upstream_marks(stack) == marks, "an unkeyed request reached an upstream"
    # Robots are told to stay away, key or not.
    status, headers, body = request(K, "/robots.txt")
    assert (status, body) == (200, b"User-agent: *\nDisallow: /\n")
    lines = [l for l in access.log_lines() if l.get("refused") == "key"]
    assert len(lines) >= len(paths) * 2 + 2, lines[-3:]


def test_the_page_is_served_only_behind_the_key_and_carries_it(stack, access):
    html = {"Accept": "text/html"}
    status, headers, body = request(K, f"/{KEY1}/", html)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["x-robots-tag"] == "noindex, nofollow"
    page = body.decode()
    assert f"docker pull {K}/{KEY1}/busybox" in page, page
    assert f'[host."https://{K}/{KEY1}"]' in page
    assert "{KEY}" not in page and KEY2 not in page
    # The second key's page carries the second key.
    assert f"{K}/{KEY2}/busybox" in request(K, f"/{KEY2}", html)[2].decode()
    # The root answers like any unknown path.
    assert request(K, "/", html)[0] == 404


def test_keys_secret_unset_or_malformed_is_a_clear_503(stack, access):
    marks = upstream_marks(stack)
    for host in ("nokeys.test", "badkeys.test"):
        for path in ("/v2/", f"/{KEY1}/v2/library/multilayer/manifests/1.0"):
            status, headers, body = request(host, path)
            assert status == 503, (host, path, status)
            e = json.loads(body)["errors"][0]
            assert e["code"] == "UNAVAILABLE" and "access keys secret is not set or not keys" in e["message"], e
            assert "MIRROR_KEYS" in e["message"] and "wrangler secret put" in e["message"]
    # robots.txt needs no key.
    assert request("nokeys.test", "/robots.txt")[0] == 200
    assert upstream_marks(stack) == marks


# --- with a key: real clients ---

def test_docker_pulls_by_reference_with_the_key(stack, access, tmp_path):
    tap = Tap(stack.dir, ACCESS_HOSTS[K], 80)
    try:
        want = stack.digests["library/multilayer:1.0"]
        ref = f"{K}/{KEY1}/library/multilayer:1.0"
        r = docker(stack, tmp_path, "pull", ref)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"Digest: {want}" in r.stdout, r.stdout
        assert docker(stack, tmp_path, "rmi", "-f", ref).returncode == 0
        for bad in (f"{K}/library/multilayer:1.0", f"{K}/{WRONG}/library/multilayer:1.0"):
            r = docker(stack, tmp_path, "pull", bad)
            assert r.returncode != 0, r.stdout
    finally:
        if tap.p.poll() is None:
            tap.stop()
    assert tap.responses
    realms = {m.group(1) for _, h in tap.responses for k, v in h if k == "www-authenticate"
              for m in [re.search(r'realm="([^"]*)"', v)] if m}
    # The bare host's challenge (the ping), and the keyed one the mirror
    # hands out for keyed requests: the key comes back to the client.
    assert f"http://{K}/token" in realms, realms
    assert all(r in (f"http://{K}/token", f"http://{K}/{KEY1}/token") or r.startswith(f"http://{K}/{KEY1}/token/") for r in realms), realms


def test_skopeo_by_reference_and_through_registries_conf(stack, access, tmp_path):
    want = stack.digests["library/multilayer:1.0"]
    r = stack.ns(["skopeo", "inspect", "--tls-verify=false", f"docker://{K}/{KEY2}/library/multilayer:1.0"])
    assert r.returncode == 0, r.stderr
    assert f'"Digest": "{want}"' in r.stdout
    out = tmp_path / "copy"
    r = stack.ns(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{K}/{KEY2}/team/app:2", f"dir:{out}"])
    assert r.returncode == 0, r.stderr
    for layer in stack.layers["team/app:2"]:
        assert "sha256:" + hashlib.sha256((out / layer.split(":")[1]).read_bytes()).hexdigest() == layer
    for bad in (f"docker://{K}/library/multilayer:1.0", f"docker://{K}/{WRONG}/library/multilayer:1.0"):
        r = stack.ns(["skopeo", "inspect", "--tls-verify=false", bad])
        assert r.returncode != 0, r.stdout
    # registries.conf: Docker Hub through the mirror, the key in the
    # mirror's location (podman, buildah and skopeo read this file).
    for key, ok in ((KEY1, True), (WRONG, False)):
        conf = tmp_path / f"registries-{ok}.conf"
        conf.write_text('[[registry]]\nlocation = "docker.io"\n'
                        f'[[registry.mirror]]\nlocation = "{K}/{key}/docker.io"\ninsecure = true\n')
        r = stack.ns(["skopeo", "--registries-conf", str(conf), "inspect", "--no-tags", "docker://docker.io/library/multilayer:1.0"],
                     timeout=120)
        if ok:
            assert r.returncode == 0, r.stderr
            assert f'"Digest": "{want}"' in r.stdout
        else:
            # The mirror refused, and Docker Hub itself is out of reach here.
            assert r.returncode != 0, r.stdout
    lines = access.log_lines()
    assert any(l.get("key") == 2 and l["kind"] == "manifest" for l in lines), lines[-5:]


def test_ctr_with_the_key_in_hosts_toml(stack, access, tmp_path):
    want = stack.digests["library/multilayer:1.0"]
    for key, ok in ((KEY1, True), (WRONG, False)):
        hosts_dir = tmp_path / f"certs-{ok}.d"
        (hosts_dir / "docker.io").mkdir(parents=True)
        # containerd keeps the host's path and appends /v2: /KEY/v2/... The
        # default server is a closed local port, so nothing leaves the machine.
        (hosts_dir / "docker.io" / "hosts.toml").write_text(
            'server = "http://127.0.0.1:9"\n'
            f'[host."http://{K}/{key}"]\n  capabilities = ["pull", "resolve"]\n')
        r = ctr(stack, "images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", "native", "docker.io/library/multilayer:1.0")
        if ok:
            assert r.returncode == 0, r.stdout + r.stderr
            listed = ctr(stack, "images", "ls").stdout
            assert re.search(rf"^docker.io/library/multilayer:1.0\s.*{want}", listed, re.M), listed
            assert ctr(stack, "images", "rm", "docker.io/library/multilayer:1.0").returncode == 0
        else:
            assert r.returncode != 0, r.stdout


def engine_version():
    out = subprocess.run(["dockerd", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out.strip()


def test_dockerd_registry_mirrors_with_the_key_where_the_engine_takes_a_path(stack, access, tmp_path):
    """Docker Engine 25 and later take a path in a registry-mirrors URL; older
    ones refuse to start with one. This test says which it ran."""
    major, minor, version = engine_version()
    # A short folder: containerd's socket path under --exec-root must fit
    # a unix socket address (108 bytes).
    d = pathlib.Path(tempfile.mkdtemp(prefix="dk", dir="/tmp"))
    for sub in ("data", "exec"):
        (d / sub).mkdir(parents=True)
    daemon = d / "daemon.json"
    daemon.write_text(json.dumps({"registry-mirrors": [f"http://{K}/{KEY1}"], "insecure-registries": [K]}))
    sock = d / "docker.sock"
    proc = Proc("dockerd-keyed", in_ns(stack.hosts, [
        "dockerd", "--config-file", str(daemon), "--data-root", str(d / "data"), "--exec-root", str(d / "exec"),
        "-H", f"unix://{sock}", "--pidfile", str(d / "docker.pid"), "--storage-driver=vfs", "--iptables=false",
        "--ip-forward=false", "--bridge=none"]), str(d))
    try:
        if major < 25:
            wait_for("dockerd to refuse the mirror URL", lambda: not proc.alive(), 60)
            out = proc.output()
            print(f"\n{version}: refuses a registry-mirrors URL with a path (Engine 25 and later accept one)")
            assert proc.p.returncode != 0
            assert "invalid mirror" in out and "path" in out, out[-2000:]
        else:
            env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=str(tmp_path / "cfg"))
            wait_for("dockerd", lambda: subprocess.run(["docker", "version"], env=env, capture_output=True, timeout=10).returncode == 0, 60, proc)
            print(f"\n{version}: pulls through registry-mirrors with the key in the URL")
            r = subprocess.run(["docker", "pull", "library/multilayer:1.0"], env=env, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
            assert f"Digest: {stack.digests['library/multilayer:1.0']}" in r.stdout
    finally:
        proc.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_stored_credentials_still_reach_the_token_server(stack, access, tmp_path):
    """`docker login HOST` pings /v2/ without a key, so with keys the login is
    stored for the host directly (README); docker sends it, and skopeo's
    --creds, through the mirror to the upstream's realm."""
    marks = upstream_marks(stack)
    ref = f"{K}/{KEY1}/private/secret:1"
    anon = docker(stack, tmp_path / "anon", "pull", ref)
    assert anon.returncode != 0 and "denied" in anon.stderr, anon.stderr
    cfg = tmp_path / "creds"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"auths": {K: {"auth": base64.b64encode(b"alice:wonderland").decode()}}}))
    r = docker(stack, cfg, "pull", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Digest: {stack.digests['private/secret:1']}" in r.stdout
    docker(stack, cfg, "rmi", "-f", ref)
    r = stack.ns(["skopeo", "inspect", "--tls-verify=false", "--creds", "alice:wonderland", f"docker://{K}/{KEY2}/private/secret:1"])
    assert r.returncode == 0, r.stderr
    got = stack.since(marks)
    alice = [e for e in got["token"] if e.get("user") == "alice"]
    assert alice and all(s == "repository:private/secret:pull" for e in alice for s in e["scopes"]), got["token"]


def test_token_forms_with_the_key_in_the_realm_or_in_their_scopes(stack, access):
    """An OAuth2 token POST (containerd with a password, docker with a
    refresh token): the key in the realm's path, or in the form's scopes
    when the client's realm had none; cut out either way."""
    from urllib.parse import urlencode
    marks = upstream_marks(stack)
    base = {"grant_type": "password", "username": "alice", "password": "wonderland", "client_id": "containerd",
            "service": "test-registry"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for path, scope in ((f"/{KEY1}/token", "repository:private/secret:pull"),
                        ("/token", f"repository:{KEY2}/private/secret:pull repository:{KEY2}/library/multilayer:pull"),
                        (f"/{KEY1}/token/docker.io", f"repository:{KEY1}/private/secret:pull")):
        status, _, body = request(K, path, form, "POST", urlencode(dict(base, scope=scope)))
        assert status == 200 and json.loads(body)["access_token"], (path, status, body)
    got = stack.since(marks)["token"]
    assert len(got) == 3 and all(e["method"] == "POST" for e in got), got
    assert [sorted(e["scopes"]) for e in got] == [["repository:private/secret:pull"],
                                                  ["repository:library/multilayer:pull", "repository:private/secret:pull"],
                                                  ["repository:private/secret:pull"]], got
    # A key left in the form where no client puts it is never passed on.
    status, _, _ = request(K, f"/{KEY1}/token", form, "POST", urlencode(dict(base, scope="repository:private/secret:pull", password=KEY1)))
    assert status == 404
    assert len(stack.since(marks)["token"]) == 3


def test_rotating_keys_needs_no_rebuild(stack, access):
    built = {f: os.path.getmtime(os.path.join(access.dir, "access", f)) for f in ("index.js", "index_bg.wasm", "table.bin")}
    key3 = "canary3-" + secrets.token_hex(12)
    try:
        # The new key beside the old: both work.
        access.restart(f"{KEY1},{key3}")
        assert request(K, f"/{key3}/v2/")[0] == 401 and request(K, f"/{KEY1}/v2/")[0] == 401
        # The old one removed: refused like any other.
        access.restart(key3)
        assert request(K, f"/{KEY1}/v2/")[0] == 404
        status, headers, _ = request(K, f"/{key3}/v2/")
        assert status == 401 and headers["www-authenticate"].startswith(f'Bearer realm="http://{K}/{key3}/token')
    finally:
        access.restart(f"{KEY1},{KEY2}")
    assert {f: os.path.getmtime(os.path.join(access.dir, "access", f)) for f in built} == built


CHECK = os.path.join(ROOT, "scripts", "check-mirror.py")


def check_mirror(stack, *args):
    r = stack.ns([sys.executable, CHECK, "--insecure", *args], timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_check_mirror_takes_the_key_and_names_the_mirrors_own_refusals(stack, access):
    for key, args in ((KEY1, ("--key", KEY1, f"http://{K}", "library/multilayer:1.0")), (KEY2, (f"http://{K}/{KEY2}", "team/app:2"))):
        rc, out = check_mirror(stack, *args)
        assert rc == 0 and "OK: the pull would succeed" in out, out
        # The key shown by its first characters only.
        assert KEY1 not in out and KEY2 not in out and f"through http://{K}/{key[:4]}…" in out, out
    rc, out = check_mirror(stack, f"http://{K}", "library/multilayer:1.0")
    assert rc == 1 and "the mirror needs an access key" in out and "the mirror's own" in out, out
    rc, out = check_mirror(stack, "--key", WRONG, f"http://{K}", "library/multilayer:1.0")
    assert rc == 1 and "does not accept this access key" in out and WRONG not in out, out
    rc, out = check_mirror(stack, "--key", KEY1, "http://nokeys.test", "library/multilayer:1.0")
    assert rc == 1 and "access keys secret is not set" in out, out
    rc, out = check_mirror(stack, "http://clients.test", "library/multilayer:1.0")
    assert rc == 1 and "clients list does not include this client (no address, country unknown)" in out, out
    rc, out = check_mirror(stack, "--key", "short", f"http://{K}", "busybox")
    assert rc == 2 and "16 or more" in out, out


# --- client allow lists and scanners ---

def test_client_allow_list_by_ipv4_ipv6_and_country(stack, access):
    C = "clients.test"
    cases = [
        ("203.0.113.9", None, True),
        ("203.0.113.255", "DE", True),
        ("203.0.114.9", "DE", False),
        ("::ffff:203.0.113.7", None, True),
        ("2001:db8:1::5", "US", True),
        ("2001:db9::5", "US", False),
        ("198.51.100.1", "CN", True),
        ("198.51.100.1", "DE", False),
        (None, "CN", True),
        (None, None, False),
        ("not-an-address", None, False),
    ]
    marks = upstream_marks(stack)
    for ip, country, allowed in cases:
        h = {}
        if ip is not None:
            h["CF-Connecting-IP"] = ip
        if country is not None:
            h["cf-blob"] = json.dumps({"country": country})
        status, headers, body = request(C, "/v2/", h)
        assert headers.get("x-robots-tag") == "noindex, nofollow"
        if allowed:
            assert status == 401, (ip, country, status, body)
        else:
            assert status == 403, (ip, country, status, body)
            e = json.loads(body)["errors"][0]
            assert e["code"] == "DENIED" and "clients list" in e["message"], e
            assert f"{ip or 'no address'}, country {country or 'unknown'}" in e["message"], e
    assert upstream_marks(stack) == marks
    # An allowed client pulls a manifest through.
    status, _, body = request(C, "/v2/library/multilayer/manifests/1.0",
                              {"CF-Connecting-IP": "203.0.113.9", "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 401, status  # the upstream's challenge, anonymous
    refused = [l for l in access.log_lines() if l.get("refused") == "client"]
    assert {l["client"] for l in refused} >= {"203.0.114.9", "2001:db9::5", "198.51.100.1", ""}, refused


def test_a_denied_agent_gets_403_and_nothing_else(stack, access):
    marks = upstream_marks(stack)
    for host, path in ((K, f"/{KEY1}/"), (K, "/robots.txt"), (K, f"/{KEY1}/v2/library/multilayer/manifests/1.0"),
                       ("clients.test", "/v2/"), ("clients.test", "/")):
        status, headers, body = request(host, path, {"User-Agent": NETCRAFT, "Accept": "text/html",
                                                       "CF-Connecting-IP": "203.0.113.9"})
        assert status == 403, (host, path, status)
        assert headers["content-type"] == "application/json" and headers["x-robots-tag"] == "noindex, nofollow"
        assert json.loads(body) == {"errors": [{"code": "DENIED", "message": "this mirror does not serve this User-Agent", "detail": None}]}
    # The main worker (routes.e2e.toml, no deny_agents: the default list) too.
    for path in ("/", "/v2/", "/robots.txt"):
        assert stack.request("GET", "mirror.test", path, {"User-Agent": NETCRAFT})[0] == 403
    assert upstream_marks(stack) == marks
    assert any(l.get("refused") == "agent" for l in access.log_lines())


def test_noindex_on_every_answer_to_a_crawler_and_on_the_mirrors_own(stack):
    """X-Robots-Tag on every answer to a browser or crawler (relayed
    manifests, blobs, tokens, redirects and errors included) and on every
    answer the mirror writes itself; a registry client's relayed manifest or
    blob goes as the upstream sent it (re-wrapping costs 15-20 us each)."""
    D, P = "docker.mirror.test", "pass.mirror.test"
    layer = stack.layers["team/app:2"][0]
    s, _, body = stack.request("GET", D, "/token?scope=repository:team/app:pull&service=test-registry")
    assert s == 200
    auth = {"Authorization": "Bearer " + json.loads(body)["token"]}
    manifest = dict(auth, Accept="application/vnd.docker.distribution.manifest.v2+json")
    relayed = [(D, "/v2/", auth, 200), (D, "/token?scope=repository:team/app:pull&service=test-registry", {}, 200),
               (D, "/v2/team/app/manifests/2", manifest, 200), (D, f"/v2/team/app/blobs/{layer}", auth, 200),
               (P, f"/v2/team/app/blobs/{layer}", auth, 307), (D, "/v2/team/app/manifests/nope", manifest, 404)]
    own = [(D, "/", {"Accept": "text/html"}, 200), ("mirror.test", "/robots.txt", {}, 200), (D, "/v2/", {}, 401),
           ("mirror.test", "/nowhere", {}, 404), (D, "/v2/team/app/blobs/uploads/", {}, 405)]
    for ua in ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
               "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"):
        for host, path, h, want in relayed + own:
            status, headers, _ = stack.request("POST" if path.endswith("uploads/") else "GET", host, path, dict(h, **{"User-Agent": ua}))
            assert status == want, (ua, host, path, status)
            assert ("x-robots-tag", "noindex, nofollow") in [(k.lower(), v) for k, v in headers], (ua, host, path, headers)
    for host, path, h, want in own:
        status, headers, _ = stack.request("POST" if path.endswith("uploads/") else "GET", host, path, dict(h, **{"User-Agent": "containerd/1.6.20"}))
        assert status == want and ("x-robots-tag", "noindex, nofollow") in [(k.lower(), v) for k, v in headers], (path, headers)
    for host, path, h, want in relayed[2:4]:
        status, headers, _ = stack.request("GET", host, path, dict(h, **{"User-Agent": "containerd/1.6.20"}))
        assert status == want and "x-robots-tag" not in [k.lower() for k, _ in headers], (path, headers)


# --- the rate limit, under wrangler dev ---

def test_rate_limit_per_client_under_wrangler_dev(stack, tmp_path):
    d = tmp_path / "rated"
    d.mkdir()
    deploy_build("tests/e2e/routes.access.toml", str(d / "build"))
    (d / "wrangler.toml").write_text(
        'name = "rated"\nmain = "build/index.js"\ncompatibility_date = "2026-04-01"\n\n'
        '[[ratelimits]]\nname = "MIRROR_RATE"\nnamespace_id = "1001"\nsimple = { limit = 3, period = 60 }\n')
    (d / ".dev.vars").write_text(f"MIRROR_KEYS={KEY1}\n")
    ip = ACCESS_HOSTS["rated.test"]
    env = dict(os.environ, WRANGLER_SEND_METRICS="false", CI="true", NO_UPDATE_NOTIFIER="1", XDG_CONFIG_HOME=str(d / "xdg"))
    wr = Proc("wrangler-rated", [WRANGLER, "dev", "--config", str(d / "wrangler.toml"), "--ip", ip, "--port", "80",
                                 "--log-level", "log", "--env-file", str(d / ".dev.vars")], str(d), env=env, cwd=str(d))
    try:
        wait_for("wrangler dev (rated)", lambda: "Ready on" in wr.output() and port_open(f"{ip}:80"), 300, wr)
        path = f"/{KEY1}/v2/library/multilayer/manifests/1.0"

        def get(client, p=path):
            return request("rated.test", p, {"CF-Connecting-IP": client, "Accept": "application/vnd.docker.distribution.manifest.v2+json"})

        first = [get("203.0.113.1")[0] for _ in range(3)]
        assert 429 not in first, first
        status, headers, body = get("203.0.113.1")
        assert status == 429, status
        assert headers.get("retry-after") == "60"
        e = json.loads(body)["errors"][0]
        assert e["code"] == "TOOMANYREQUESTS" and "this mirror's own request limit" in e["message"] and "not the registry's" in e["message"]
        # Another client is not counted with it; the ping is not counted.
        assert get("203.0.113.2")[0] != 429
        assert all(get("203.0.113.1", f"/{KEY1}/v2/")[0] == 401 for _ in range(5))
        # An IPv6 client is counted by its /64.
        assert [get(f"2001:db8:1:2::{i}")[0] == 429 for i in range(1, 5)] == [False, False, False, True]
        assert get("2001:db8:1:3::1")[0] != 429
        # check-mirror says the refusal is the mirror's own (it sends no
        # CF-Connecting-IP: the bucket of clients without one, used up here).
        for _ in range(3):
            request("rated.test", path)
        r = stack.ns([sys.executable, CHECK, "--insecure", "--key", KEY1, "http://rated.test", "library/multilayer:1.0"], timeout=120)
        assert r.returncode == 1 and "the mirror's own per-client request limit" in r.stdout, r.stdout + r.stderr
        # The worker's own lines say why, and hold no key (wrangler's access
        # log, like Cloudflare's request logs, shows the URL as requested).
        lines = [l for l in wr.output().splitlines() if l.startswith('{"route":')]
        assert any('"refused":"rate"' in l for l in lines) and not any(KEY1 in l for l in lines), lines
    finally:
        wr.stop()


# --- last: the canaries ---

def test_zz_the_keys_reach_no_upstream_realm_or_log_line(stack, access):
    logs = {s: stack.log(s) for s in ("front", "token", "cdn", "index")}
    text = json.dumps(logs)
    assert logs["front"] and logs["token"], "the pulls above reached the upstream"
    for key in (KEY1, KEY2):
        assert key not in text, f"a key reached an upstream or realm: {[e for s in logs.values() for e in s if key in json.dumps(e)][:3]}"
        assert key not in access.log(), "a key is in the worker's log"
        assert key not in stack.wrangler.output()
    numbers = {l.get("key") for l in access.log_lines()}
    assert {1, 2} <= numbers, numbers
