"""One mirror host for every client (issue: registry-mirrors, containerd ns,
path prefixes, the configs users copy). Real clients against the shared host
mirror.test, each configured the way README.md's snippets say (with the
test's host name and plain http): dockerd's registry-mirrors, containerd's
hosts.toml per registry, path prefixes with docker and skopeo, skopeo reading
a registries.conf mirror. Fixture logs count the subrequests; the tap checks
what clients received.
"""

import hashlib
import json
import re
import urllib.parse

from conftest import FRONT, MIRROR_HOSTS
from test_clients import assert_cost, assert_mirror_only, ctr, header, repo_digest

M = "mirror.test"


def test_dockerd_registry_mirrors_pulls_docker_hub_names_through_the_shared_host(stack, tap):
    # daemon.json: {"registry-mirrors": ["http://mirror.test"]} (conftest).
    marks = stack.marks()
    want = stack.digests["library/multilayer:1.0"]
    for ref in ("multilayer:1.0", "library/multilayer:1.0"):
        r = stack.docker("pull", ref)
        assert r.returncode == 0, f"{ref}: {r.stdout}{r.stderr}"
        assert want in repo_digest(stack, ref)
        assert stack.docker("rmi", "-f", ref).returncode == 0
    assert_mirror_only(tap)
    got = assert_cost(stack, marks, tap)
    # dockerd asked the mirror (nothing else is reachable), with Docker Hub's names.
    hosts = {(header(h, "host") or [""])[0] for _, _, h in tap.requests}
    assert hosts == {M}, hosts
    paths = [e["path"] for e in got["front"]]
    assert paths and all(p.startswith("/v2/library/multilayer/") for p in paths), paths


def hosts_dir(tmp_path, registries):
    """containerd's (and Kubernetes nodes') layout: one hosts.toml per
    registry under certs.d/<registry>/, all naming the same mirror host."""
    d = tmp_path / "certs.d"
    for registry in registries:
        (d / registry).mkdir(parents=True)
        # The server is a closed local port: nothing may leave the machine.
        (d / registry / "hosts.toml").write_text(
            'server = "http://127.0.0.1:9"\n'
            f'[host."http://{M}"]\n  capabilities = ["pull", "resolve"]\n')
    return d


def test_containerd_hosts_toml_for_two_registries_on_one_host(stack, tap, tmp_path):
    d = hosts_dir(tmp_path, ["docker.io", "ghcr.io"])
    marks = stack.marks()
    pulls = [("docker.io/library/multilayer:1.0", "library/multilayer:1.0"), ("ghcr.io/team/app:2", "team/app:2")]
    for ref, stored in pulls:
        r = ctr(stack, "images", "pull", "--hosts-dir", str(d), "--snapshotter", "native", ref)
        assert r.returncode == 0, r.stdout + r.stderr
        listed = ctr(stack, "images", "ls").stdout
        assert re.search(rf"^{re.escape(ref)}\s.*{stack.digests[stored]}", listed, re.M), listed
        assert ctr(stack, "images", "rm", ref).returncode == 0
    assert_mirror_only(tap)
    got = assert_cost(stack, marks, tap)
    # containerd named each registry with ns; the worker picked the route by
    # it and sent the request to that route's upstream (the front), never to
    # a host named docker.io or ghcr.io.
    ns = {urllib.parse.parse_qs(urllib.parse.urlsplit(t).query).get("ns", [""])[0] for m, t, _ in tap.requests if t.startswith("/v2/")}
    assert ns == {"docker.io", "ghcr.io"}, ns
    assert {e["path"].split("?")[0].split("/manifests/")[0] for e in got["front"] if "/manifests/" in e["path"]} == {
        "/v2/library/multilayer", "/v2/team/app"}
    # The ghcr route's realm is discovered; its token requests went to the
    # realm the front named, with ghcr's names.
    assert any("repository:team/app:pull" in e["scopes"] for e in got["token"])


def test_docker_and_skopeo_by_path_prefix(stack, tap, tmp_path):
    marks = stack.marks()
    for ref, stored in ((f"{M}/ghcr.io/team/app:2", "team/app:2"), (f"{M}/docker.io/multilayer:1.0", "library/multilayer:1.0")):
        r = stack.docker("pull", ref)
        assert r.returncode == 0, f"{ref}: {r.stdout}{r.stderr}"
        assert stack.digests[stored] in repo_digest(stack, ref)
        stack.docker("rmi", "-f", ref)
    out = tmp_path / "copy"
    r = stack.ns(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{M}/ghcr.io/team/app:2", f"dir:{out}"])
    assert r.returncode == 0, r.stderr
    assert "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() == stack.digests["team/app:2"]
    assert_mirror_only(tap)
    got = assert_cost(stack, marks, tap)
    # Upstream only ever saw its own names: the prefixes are the mirror's.
    paths = {e["path"].split("/manifests/")[0].split("/blobs/")[0] for e in got["front"] if e["path"] != "/v2/"}
    assert paths == {"/v2/team/app", "/v2/library/multilayer"}, paths
    scopes = {s for e in got["token"] for s in e["scopes"]}
    assert scopes <= {"repository:team/app:pull", "repository:library/multilayer:pull"}, scopes


def test_skopeo_reads_a_registries_conf_mirror(stack, tap, tmp_path):
    # registries.conf as README.md gives it (insecure: the test serves plain http).
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\n'
                    f'location = "{M}/docker.io"\ninsecure = true\n')
    marks = stack.marks()
    # A pull (copy) goes through the mirror; listing tags (inspect) would go
    # to docker.io itself, as containers/image only mirrors pulls.
    out = tmp_path / "copy"
    r = stack.ns(["skopeo", "--registries-conf", str(conf), "copy", "--quiet", "docker://docker.io/library/multilayer:1.0", f"dir:{out}"])
    assert r.returncode == 0, r.stderr
    assert "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() == stack.digests["library/multilayer:1.0"]
    assert_mirror_only(tap)
    assert_cost(stack, marks, tap)
    targets = [t for _, t, _ in tap.requests]
    assert any(t.startswith("/v2/docker.io/library/multilayer/manifests/") for t in targets), targets


def test_token_get_and_post_with_prefixed_scopes(stack):
    marks = stack.marks()
    q = "service=x&scope=" + urllib.parse.quote("repository:docker.io/multilayer:pull,push")
    s, _, body = stack.request("GET", M, "/token?" + q)
    assert s == 200 and json.loads(body)["token"]
    form = urllib.parse.urlencode({"grant_type": "password", "username": "alice", "password": "wonderland", "service": "x",
                                   "scope": "repository:docker.io/private/secret:pull repository:docker.io/busybox:pull"})
    s, _, body = stack.request("POST", M, "/token/docker.io", {"Content-Type": "application/x-www-form-urlencoded"}, form)
    assert s == 200 and json.loads(body)["access_token"]
    got = stack.since(marks)["token"]
    assert [e["method"] for e in got] == ["GET", "POST"]
    # Prefix gone, library/ added, pull only, the route's service.
    assert got[0]["scopes"] == ["repository:library/multilayer:pull"] and got[0]["service"] == "test-registry"
    assert got[1]["scopes"] == ["repository:private/secret:pull", "repository:library/busybox:pull"]
    assert got[1]["user"] == "alice"
    assert stack.since(marks)["front"] == []


def test_challenge_scope_carries_the_prefix_back(stack):
    s, _, body = stack.request("GET", M, "/token?scope=" + urllib.parse.quote("repository:docker.io/private/secret:pull"))
    anon = json.loads(body)["token"]
    marks = stack.marks()
    s, headers, body = stack.request("GET", M, "/v2/docker.io/private/secret/manifests/1", {"Authorization": "Bearer " + anon})
    assert s == 401
    [ch] = header([(k.lower(), v) for k, v in headers], "www-authenticate")
    assert ch == 'Bearer realm="http://mirror.test/token/docker.io",service="test-registry",' \
                 'scope="repository:docker.io/private/secret:pull",error="insufficient_scope"', ch
    assert [e["path"] for e in stack.since(marks)["front"]] == ["/v2/private/secret/manifests/1"]
    # The realm it names takes the scope as written and gets the upstream's.
    marks = stack.marks()
    s, _, _ = stack.request("GET", M, "/token/docker.io?service=test-registry&scope=" + urllib.parse.quote("repository:docker.io/private/secret:pull"))
    assert s == 200
    assert stack.since(marks)["token"][0]["scopes"] == ["repository:private/secret:pull"]


def test_unknown_ns_and_unknown_prefix_are_404_without_subrequests(stack, canary):
    cases = [
        ("/v2/library/multilayer/manifests/1.0?ns=127.0.0.66:15066", "127.0.0.66:15066"),
        ("/v2/library/multilayer/manifests/1.0?ns=evil.example", "evil.example"),
        ("/v2/nope.io/team/app/manifests/2", "nope.io/team/app"),
        ("/token/127.0.0.66:15066?scope=repository:a/b:pull", "127.0.0.66:15066"),
    ]
    for path, named in cases:
        marks = stack.marks()
        s, h, body = stack.request("GET", M, path)
        assert s == 404, (path, body)
        err = json.loads(body)["errors"][0]
        assert err["code"] == "NAME_UNKNOWN" and err["message"].endswith(": " + named), err
        assert stack.since(marks) == {"front": [], "token": [], "cdn": []}, path
    assert not canary.hits


def test_host_per_registry_style_still_serves_the_shared_hosts_routes(stack):
    assert M in MIRROR_HOSTS
    # The page lists both styles and every client's configuration.
    s, _, body = stack.request("GET", M, "/", {"Accept": "text/html"})
    page = body.decode()
    assert s == 200
    for want in ("docker pull mirror.test/busybox", "docker pull docker.mirror.test/busybox",
                 "docker pull mirror.test/ghcr.io/OWNER/IMAGE", "docker pull ghcr.mirror.test/OWNER/IMAGE",
                 '"registry-mirrors": ["https://mirror.test"]', "# /etc/containerd/certs.d/ghcr.io/hosts.toml",
                 'location = "mirror.test/ghcr.io"', '"ghcr.io":\n    endpoint:'):
        assert want in page, want
