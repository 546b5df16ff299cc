"""Real clients through the worker: docker (dockerd), skopeo and ctr
(containerd), against the distribution registry with token auth.

Each test also checks, from the client-side tap, that every realm a client
received points at the mirror and no redirect reached it (except on the route
configured to pass redirects), and, from the fixtures' logs, exactly how many
upstream subrequests the client's requests cost.
"""

import hashlib
import os
import re
import urllib.parse

import pytest

from conftest import FRONT, MIRROR_HOSTS

D = "docker.mirror.test"
G = "ghcr.mirror.test"
P = "pass.mirror.test"

# Token endpoint requests on routes whose realm is not in the table (ghcr's)
# cost a discovery GET of the upstream's /v2/ first.
DISCOVERING_ROUTES = {G}


def discovers(host, target):
    """Whether a client request reaches the ghcr route (no table realm): by
    its host, its /token/<registry> path, ns, or on the shared host the
    ghcr.io prefix of its path or of its token scopes."""
    path, _, query = target.partition("?")
    params = urllib.parse.parse_qs(query)
    if host in DISCOVERING_ROUTES or path == "/token/ghcr.io" or params.get("ns") == ["ghcr.io"]:
        return True
    if host == "mirror.test":
        scopes = " ".join(params.get("scope", []))
        return path.startswith("/v2/ghcr.io/") or (path == "/token" and "repository:ghcr.io/" in scopes)
    return False


def header(headers, name):
    return [v for k, v in headers if k == name]


def assert_mirror_only(tap, allow_redirects=False):
    """Every realm the clients received is the mirror's token endpoint; no
    3xx and no Location reached a client."""
    tap.stop()
    assert tap.responses, "the tap saw no responses"
    realms = 0
    for status, headers in tap.responses:
        # Bearer realms are URLs clients fetch; a Basic realm is only a label.
        # The worker writes one challenge per header line.
        for value in header(headers, "www-authenticate"):
            if not value.lower().startswith("bearer "):
                continue
            m = re.search(r'realm="([^"]*)"', value)
            host = m and re.match(r"^http://([^/:]+)/token(/[a-z0-9.:-]+)?$", m.group(1))
            assert host and host.group(1) in MIRROR_HOSTS, f"realm outside the mirror: {value}"
            realms += 1
        if not allow_redirects:
            assert not 300 <= status < 400, f"a client received {status}: {headers}"
            assert not header(headers, "location"), f"a client received a Location: {headers}"
    return realms


def expected_upstream(exchanges):
    """(front, token, cdn) subrequests the worker should have made for the
    client requests the tap saw, each with the answer it got."""
    front = token = cdn = 0
    for (method, target, headers), answer in exchanges:
        host = (header(headers, "host") or [""])[0].split(":")[0]
        path = target.split("?")[0]
        authed = bool(header(headers, "authorization"))
        if path == "/token" or path.startswith("/token/"):
            token += 1
            front += discovers(host, target)
        elif path in ("/v2/", "/v2"):
            front += authed or discovers(host, target)
        elif re.match(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$", path):
            front += 1
            # One CDN fetch per blob served: the worker's, or on the pass
            # route the client's own after the redirect it was handed. A
            # blob the upstream refused (containerd asks for its layers
            # before its token, and again with it) reached no CDN.
            status = answer[0] if answer else None
            cdn += status in (200, 206) or (status is not None and 300 <= status < 400)
        elif path.startswith("/v2/"):
            front += 1
    return front, token, cdn


def assert_cost(stack, marks, tap):
    got = stack.since(marks)
    want = expected_upstream(tap.exchanges)
    assert (len(got["front"]), len(got["token"]), len(got["cdn"])) == want, (
        f"upstream subrequests (front, token, cdn) {len(got['front']), len(got['token']), len(got['cdn'])} != {want} "
        f"for client requests {[(m, t, a and a[0]) for (m, t, _), a in tap.exchanges]}"
    )
    # Blob storage never receives credentials.
    assert all(not e["auth"] for e in got["cdn"]), got["cdn"]
    return got


def repo_digest(stack, ref):
    r = stack.docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_docker_pull_by_library_name_short_name_tag_and_digest(stack, tap):
    marks = stack.marks()
    want = stack.digests["library/multilayer:1.0"]
    for ref in (f"{D}/library/multilayer:1.0", f"{D}/multilayer:1.0", f"{D}/multilayer@{want}"):
        r = stack.docker("pull", ref)
        assert r.returncode == 0, f"{ref}: {r.stdout}{r.stderr}"
        assert f"Digest: {want}" in r.stdout or "@" in ref, r.stdout
        assert want in repo_digest(stack, ref)
        # Remove the image so the next pull fetches every layer again.
        assert stack.docker("rmi", "-f", ref).returncode == 0
    assert assert_mirror_only(tap) >= 1
    got = assert_cost(stack, marks, tap)
    # library/ was added in place: the upstream only ever saw library/multilayer.
    paths = [e["path"] for e in got["front"]]
    assert paths and all(p.startswith("/v2/library/multilayer/") for p in paths), paths
    assert all(s.startswith("repository:library/multilayer:") for e in got["token"] for s in e["scopes"])
    # Every layer came through the CDN, without credentials.
    fetched = {e["path"].split("?")[0].rsplit("/", 1)[1] for e in got["cdn"]}
    assert set(stack.layers["library/multilayer:1.0"]) <= fetched
    # HEAD stayed HEAD (dockerd resolves tags with HEAD, then GETs by digest).
    assert any(e["method"] == "HEAD" for e in got["front"])


def test_docker_login_private_pull_and_anonymous_refusal(stack, tap):
    ref = f"{D}/private/secret:1"
    # The user must see what a pull straight from the upstream shows, not a
    # generic message (dockerd words an insufficient_scope refusal itself).
    direct = stack.docker("pull", f"{FRONT}/private/secret:1")
    assert direct.returncode != 0
    marks = stack.marks()
    anon = stack.docker("pull", ref)
    assert anon.returncode != 0
    assert anon.stderr.replace(D, FRONT) == direct.stderr, (anon.stderr, direct.stderr)
    assert "pull access denied" in anon.stderr

    bad = stack.docker("login", D, "-u", "alice", "--password-stdin", input="wrong\n")
    assert bad.returncode != 0
    assert "invalid username or password" in bad.stderr, bad.stderr

    ok = stack.docker("login", D, "-u", "alice", "--password-stdin", input="wonderland\n")
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stdout + ok.stderr
    try:
        r = stack.docker("pull", ref)
        assert r.returncode == 0, r.stdout + r.stderr
        assert stack.digests["private/secret:1"] in repo_digest(stack, ref)
    finally:
        stack.docker("logout", D)
        stack.docker("rmi", "-f", ref)
    assert_mirror_only(tap)
    got = assert_cost(stack, marks, tap)
    # The credentials went to the realm (through the mirror's token endpoint).
    assert any(e.get("user") == "alice" for e in got["token"]), got["token"]
    assert any(e.get("refused") == "invalid username or password" for e in got["token"])


def test_skopeo_inspect_and_copy_through_a_route_with_a_discovered_realm(stack, tap, tmp_path):
    marks = stack.marks()
    want = stack.digests["team/app:2"]
    r = stack.ns(["skopeo", "inspect", "--tls-verify=false", f"docker://{G}/team/app:2"])
    assert r.returncode == 0, r.stderr
    assert f'"Digest": "{want}"' in r.stdout
    out = tmp_path / "copy"
    r = stack.ns(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{G}/team/app:2", f"dir:{out}"])
    assert r.returncode == 0, r.stderr
    manifest = (out / "manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == want
    for layer in stack.layers["team/app:2"]:
        data = (out / layer.split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer
    assert_mirror_only(tap)
    got = assert_cost(stack, marks, tap)
    # No library/ on this route.
    assert all(e["path"].startswith(("/v2/team/app/", "/v2/")) for e in got["front"])
    assert not any("library/" in e["path"] for e in got["front"])


def test_skopeo_through_a_route_that_passes_redirects(stack, tap, tmp_path):
    marks = stack.marks()
    out = tmp_path / "copy"
    r = stack.ns(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{P}/team/app:2", f"dir:{out}"])
    assert r.returncode == 0, r.stderr
    for layer in stack.layers["team/app:2"]:
        assert "sha256:" + hashlib.sha256((out / layer.split(":")[1]).read_bytes()).hexdigest() == layer
    assert_mirror_only(tap, allow_redirects=True)
    locations = [v for s, h in tap.responses if 300 <= s < 400 for v in header(h, "location")]
    assert locations and all(v.startswith("http://127.0.0.4:15003/data/sha256:") for v in locations), locations
    got = assert_cost(stack, marks, tap)
    # The client followed the redirects itself, to the CDN, without credentials.
    assert len(got["cdn"]) >= len(stack.layers["team/app:2"])
    assert all(not e["auth"] for e in got["cdn"])


def ctr(stack, *args):
    return stack.ns(["ctr", "-a", stack.ctr_sock, *args])


def test_ctr_pull_by_mirror_name_and_as_a_hosts_toml_mirror(stack, tap, tmp_path):
    marks = stack.marks()
    want = stack.digests["library/multilayer:1.0"]
    r = ctr(stack, "images", "pull", "--plain-http", "--snapshotter", "native", f"{D}/library/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    listed = ctr(stack, "images", "ls").stdout
    assert re.search(rf"^{re.escape(D)}/library/multilayer:1.0\s.*{want}", listed, re.M), listed

    # containerd's own mirror configuration: docker.io through the mirror,
    # with ?ns=docker.io on every request and scopes in docker.io's names.
    hosts_dir = tmp_path / "certs.d"
    (hosts_dir / "docker.io").mkdir(parents=True)
    (hosts_dir / "docker.io" / "hosts.toml").write_text(
        # The default server is a closed local port, so nothing leaves the machine.
        'server = "http://127.0.0.1:9"\n'
        '[host."http://docker.mirror.test"]\n  capabilities = ["pull", "resolve"]\n')
    assert ctr(stack, "images", "rm", f"{D}/library/multilayer:1.0").returncode == 0
    r = ctr(stack, "images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", "native", "docker.io/library/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    listed = ctr(stack, "images", "ls").stdout
    assert re.search(rf"^docker.io/library/multilayer:1.0\s.*{want}", listed, re.M), listed
    assert_mirror_only(tap)
    got = assert_cost(stack, marks, tap)
    assert any("?ns=docker.io" in e["path"] for e in got["front"]), "the query string reaches the upstream"
