"""Fallback sources (issue 19): a route whose upstream throttles or cannot be
reached keeps serving from other sources of the same content.

The throttle fixture plays Docker Hub through a Worker's shared address:
429 with Docker Hub's pull-limit answer to every registry API request; its
realm gives clients a canary token. Its routes fall back to the real
distribution registry behind token auth (through the front: the worker
gets its own token from the realm the registry's challenge names, blobs
come from the CDN) and to the same registry without auth (through a
logging front). Real clients pull through them; the fixtures' logs say
what reached each server.
"""

import base64
import json
import re
import urllib.parse

from conftest import SECRET_VALUE, THROTTLED_SECRET_VALUE
from fixtures import CLIENT_TOKEN, PULL_LIMIT_BODY
from test_clients import assert_mirror_only, ctr, repo_digest

T = "throttled.mirror.test"
REF = "library/multilayer:1.0"
SERVERS = ("front", "token", "cdn", "throttle", "open")

# Nothing of a client's and nothing of the throttled route's own account may
# reach a fallback or its realm: the client's token, its login, the route's
# secret, in any form.
CANARIES = [CLIENT_TOKEN, "wonderland", base64.b64encode(SECRET_VALUE.encode()).decode(), THROTTLED_SECRET_VALUE.split(":")[1],
            base64.b64encode(THROTTLED_SECRET_VALUE.encode()).decode(), "hub-user"]


def manifest_or_blob(path):
    return bool(re.match(r"^/v2/.+/(manifests|blobs)/[^/]+$", path.split("?")[0]))


def assert_no_canary(got, servers=("front", "token", "cdn", "open")):
    for s in servers:
        for e in got[s]:
            text = json.dumps(e)
            for c in CANARIES:
                assert c not in text, f"{c!r} reached {s}: {e}"


def sources(tap):
    return [v for _, headers in tap.responses for k, v in headers if k == "x-mirror-source"]


def assert_cost(tap, got, fallback="front", tokens=True):
    """Per manifest or blob request of a client: one request to the
    throttling upstream, then on the fallback the request, the worker's own
    token request and the request again (or, without auth, the request only);
    blobs then from the CDN, through the runtime's redirect."""
    asked = [(m, t) for m, t, _ in tap.requests if manifest_or_blob(t)]
    assert asked, tap.requests
    mine = [e for e in got["throttle"] if manifest_or_blob(e["path"])]
    assert len(mine) == len(asked), (mine, asked)
    on_fallback = [e for e in got[fallback] if manifest_or_blob(e["path"])]
    assert len(on_fallback) == len(asked) * (2 if tokens else 1), (on_fallback, asked)
    assert len(got["token"]) == (len(asked) if tokens else 0), got["token"]
    blobs = [t for m, t in asked if "/blobs/" in t and m == "GET"]
    if fallback == "front":
        assert len([e for e in got["cdn"] if e["method"] == "GET"]) == len(blobs), got["cdn"]


def test_docker_pulls_while_the_upstream_throttles_every_request(stack, tap):
    marks = stack.marks(SERVERS)
    r = stack.docker("pull", f"{T}/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert stack.digests[REF] in repo_digest(stack, f"{T}/multilayer:1.0")
    stack.docker("rmi", "-f", f"{T}/multilayer:1.0")
    assert_mirror_only(tap)
    got = stack.since(marks)
    # Every manifest and blob request reached the throttling upstream first,
    # with the client's token, and was refused there.
    assert got["throttle"] and all(e["authorization"] == f"Bearer {CLIENT_TOKEN}" for e in got["throttle"] if manifest_or_blob(e["path"]))
    # The worker's own token: anonymous, pull only, for that one repository,
    # from the realm the registry's challenge named (the fallback route has none).
    assert got["token"] and all(e["user"] is None and not e["auth"] for e in got["token"]), got["token"]
    assert all(e["scopes"] == ["repository:library/multilayer:pull"] and e["service"] == "test-registry" for e in got["token"])
    # The registry got the worker's token, never the client's; the CDN no Authorization.
    front = [e for e in got["front"] if manifest_or_blob(e["path"])]
    assert all(e["authorization"] is None or e["authorization"].startswith("Bearer ey") for e in front), front
    assert any(e["authorization"] for e in front) and not any(e["auth"] for e in got["cdn"])
    assert_no_canary(got)
    assert_cost(tap, got)
    # The client was told where it came from and why.
    assert sources(tap) and set(sources(tap)) == {"fallback.test (fallback: throttled.test 429)"}, sources(tap)
    # The request log names the fallback that answered.
    lines = [l for l in stack.worker_log() if l["route"] == "throttled" and l["kind"] in ("manifest", "blob")]
    assert lines and all(l.get("source") == "fallback.test" and l["status"] < 400 for l in lines[-4:]), lines[-4:]


def test_skopeo_copies_while_the_upstream_throttles(stack, tap, tmp_path):
    marks = stack.marks(SERVERS)
    r = stack.ns(["skopeo", "copy", "--src-tls-verify=false", f"docker://{T}/multilayer:1.0", f"dir:{tmp_path}/img"])
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = (tmp_path / "img" / "manifest.json").read_bytes()
    assert "sha256:" + __import__("hashlib").sha256(manifest).hexdigest() == stack.digests[REF]
    assert_mirror_only(tap)
    got = stack.since(marks)
    assert_no_canary(got)
    assert_cost(tap, got)


def test_containerd_with_ns_pulls_while_the_upstream_throttles(stack, tap, tmp_path):
    # containerd's mirror configuration for the registry "throttled.test":
    # every request to the mirror carries ?ns=throttled.test.
    hosts_dir = tmp_path / "certs.d"
    (hosts_dir / "throttled.test").mkdir(parents=True)
    (hosts_dir / "throttled.test" / "hosts.toml").write_text(
        'server = "http://127.0.0.1:9"\n'
        f'[host."http://{T}"]\n  capabilities = ["pull", "resolve"]\n')
    marks = stack.marks(SERVERS)
    r = ctr(stack, "images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", "native", "throttled.test/library/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    listed = ctr(stack, "images", "ls").stdout
    assert re.search(rf"^throttled.test/library/multilayer:1.0\s.*{stack.digests[REF]}", listed, re.M), listed
    ctr(stack, "images", "rm", "throttled.test/library/multilayer:1.0")
    assert_mirror_only(tap)
    got = stack.since(marks)
    assert any("ns=throttled.test" in t for _, t, _ in tap.requests)
    # ns picks the route; it is not passed on to the fallback.
    assert not any("ns=" in e["path"] for e in got["front"]), got["front"]
    assert_no_canary(got)
    assert_cost(tap, got)


def test_docker_pulls_while_the_upstream_cannot_be_reached(stack, tap):
    marks = stack.marks(SERVERS)
    r = stack.docker("pull", f"downfb.mirror.test/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert stack.digests[REF] in repo_digest(stack, "downfb.mirror.test/multilayer:1.0")
    stack.docker("rmi", "-f", "downfb.mirror.test/multilayer:1.0")
    assert_mirror_only(tap)
    got = stack.since(marks)
    assert got["token"] and all(not e["auth"] for e in got["token"])
    assert set(sources(tap)) == {"fallback.test (fallback: downfb.test unreachable)"}, sources(tap)
    assert_no_canary(got)


def test_a_fallback_without_auth_needs_no_token(stack, tap):
    marks = stack.marks(SERVERS)
    r = stack.docker("pull", "openfb.mirror.test/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    stack.docker("rmi", "-f", "openfb.mirror.test/multilayer:1.0")
    assert_mirror_only(tap)
    got = stack.since(marks)
    assert got["open"] and not any(e["authorization"] for e in got["open"]), got["open"]
    # The client's allow-listed headers went along (Accept, Range), its cookies and Authorization did not.
    assert all(e["cookie"] is None for e in got["open"])
    assert any("accept" in e["headers"] for e in got["open"] if "/manifests/" in e["path"])
    assert_cost(tap, got, fallback="open", tokens=False)
    assert set(sources(tap)) == {"open.test (fallback: openfb.test 429)"}


def test_no_credential_of_a_client_or_of_the_route_reaches_a_fallback(stack, tap):
    marks = stack.marks(SERVERS)
    # Anonymous: the route's own account gets the client's token from its realm.
    r = stack.docker("pull", f"{T}/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    stack.docker("rmi", "-f", f"{T}/multilayer:1.0")
    # Logged in: the client's own account and token.
    login = stack.docker("login", T, "-u", "alice", "--password-stdin", input=SECRET_VALUE.split(":")[1] + "\n")
    assert login.returncode == 0, login.stdout + login.stderr
    try:
        r = stack.docker("pull", f"{T}/multilayer:1.0")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        stack.docker("logout", T)
        stack.docker("rmi", "-f", f"{T}/multilayer:1.0")
    tap.stop()
    got = stack.since(marks)
    # The canaries are real: the throttling upstream's realm saw the route's
    # account and the client's login, and the upstream saw the client's token.
    realm = [e["authorization"] or "" for e in got["throttle"] if e["path"].startswith("/token")]
    assert "Basic " + base64.b64encode(THROTTLED_SECRET_VALUE.encode()).decode() in realm, realm
    assert "Basic " + base64.b64encode(b"alice:wonderland").decode() in realm, realm
    assert any(e["authorization"] == f"Bearer {CLIENT_TOKEN}" for e in got["throttle"])
    # And none of them reached a fallback, its realm or the CDN.
    assert got["front"] and got["token"]
    assert_no_canary(got)
    # Nor any client the worker's own token.
    worker_tokens = {e["authorization"] for e in got["front"] if e["authorization"]}
    assert not any(t.split(" ", 1)[1] in tap.raw.decode("latin-1") for t in worker_tokens)


def test_a_healthy_upstream_never_asks_its_fallback(stack, tap):
    marks = stack.marks(SERVERS)
    r = stack.docker("pull", "healthyfb.mirror.test/multilayer:1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    stack.docker("rmi", "-f", "healthyfb.mirror.test/multilayer:1.0")
    tap.stop()
    got = stack.since(marks)
    assert got["front"] and got["open"] == [], got["open"]
    assert sources(tap) == []


def test_a_fallbacks_404_gives_the_client_the_routes_own_429(stack):
    marks = stack.marks(SERVERS)
    s, h, body = stack.request("GET", T, "/v2/missing/manifests/1", {"Authorization": f"Bearer {CLIENT_TOKEN}"})
    h = {k.lower(): v for k, v in h}
    assert s == 429 and h["retry-after"] == "21600" and h["ratelimit-remaining"] == "0;w=21600", (s, h)
    errors = json.loads(body)["errors"]
    assert errors[0]["code"] == "TOOMANYREQUESTS" and "pull rate limit" in errors[0]["message"]
    assert errors[0]["message"].endswith(": throttled.test; fallbacks tried: fallback.test 404, open.test 404"), errors[0]
    # Then the upstream's own errors, as it sent them.
    assert errors[1:] == json.loads(PULL_LIMIT_BODY)["errors"], errors
    assert "x-mirror-source" not in h
    got = stack.since(marks)
    # Both fallbacks asked: the registry with the worker's token, the open one as is.
    assert [e["path"] for e in got["open"]] == ["/v2/library/missing/manifests/1"]
    assert len([e for e in got["front"] if e["path"] == "/v2/library/missing/manifests/1"]) == 2


def test_every_fallback_throttled_gives_429(stack):
    s, h, body = stack.request("GET", "allthrottled.mirror.test", "/v2/multilayer/manifests/1.0", {"Authorization": "Bearer x"})
    assert s == 429 and dict((k.lower(), v) for k, v in h)["retry-after"] == "21600"
    errors = json.loads(body)["errors"]
    assert errors[0]["message"].endswith(": allthrottled.test; fallbacks tried: throttled2.test 429"), errors[0]


def test_a_manifest_by_digest_with_another_digest_is_refused(stack):
    digest = stack.digests[REF]
    marks = stack.marks(SERVERS)
    for method in ("GET", "HEAD"):
        s, h, body = stack.request(method, "liarfb.mirror.test", f"/v2/multilayer/manifests/{digest}", {"Authorization": "Bearer x"})
        assert s == 429, (method, s, h)
        if method == "GET":
            errors = json.loads(body)["errors"]
            assert errors[0]["message"].endswith("fallbacks tried: liar.test another digest"), errors[0]
    got = stack.since(marks)
    assert [e["path"] for e in got["throttle"]].count(f"/v2/liar/library/multilayer/manifests/{digest}") == 2
    # A tag is served as the copy has it (a copy may lag): no digest to hold it to.
    s, h, body = stack.request("GET", "liarfb.mirror.test", "/v2/multilayer/manifests/1.0", {"Authorization": "Bearer x"})
    assert s == 200 and dict((k.lower(), v) for k, v in h)["x-mirror-source"] == "liar.test (fallback: liarfb.test 429)"


def test_pings_tokens_and_tags_lists_take_no_fallback(stack):
    marks = stack.marks(SERVERS)
    for path in ("/v2/", "/v2/multilayer/tags/list", "/token?service=throttled&scope=" + urllib.parse.quote("repository:multilayer:pull")):
        s, h, _ = stack.request("GET", "openfb.mirror.test", path, {"Authorization": "Bearer x"} if path.startswith("/v2/") else None)
        assert "x-mirror-source" not in dict((k.lower(), v) for k, v in h), path
    got = stack.since(marks)
    assert got["open"] == [] and got["front"] == [], (got["open"], got["front"])
    # The tags list got the upstream's own 429, as before.
    assert any(e["path"] == "/v2/library/multilayer/tags/list" for e in got["throttle"])
