"""The worker's protocol behaviour over plain HTTP, against the same stack:
challenge rewriting compared with the upstream's own answer, the token
endpoint (GET and the OAuth2 POST form), header filtering, local answers and
upstream faults. Each row also checks how many upstream subrequests it cost.
"""

import base64
import os
import http.client
import json
import re
import time
from urllib.parse import urlencode

import pytest

from conftest import FRONT, MIRROR_IP, MIRROR_PORT, OPEN_REGISTRY, ROOT

D = "docker.mirror.test"
G = "ghcr.mirror.test"


def hget(headers, name):
    return [v for k, v in headers if k.lower() == name]


def oci_code(body):
    return json.loads(body)["errors"][0]["code"]


def oci_message(body):
    return json.loads(body)["errors"][0]["message"]


def token(stack, scope, user=None):
    h = {}
    if user:
        h["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    s, _, b = stack.request("GET", D, "/token?" + urlencode({"service": "test-registry", "scope": scope}), h)
    assert s == 200, b
    return json.loads(b)["token"]


def direct(method, path, headers=None):
    host, port = FRONT.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheaders(), data


def test_upstream_401_is_kept_except_for_the_realm(stack):
    anon = token(stack, "repository:private/secret:pull")
    h = {"Authorization": "Bearer " + anon, "Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    marks = stack.marks()
    s, headers, body = stack.request("GET", D, "/v2/private/secret/manifests/1", h)
    ds, dheaders, dbody = direct("GET", "/v2/private/secret/manifests/1", h)
    assert (s, ds) == (401, 401)
    assert body == dbody, "the upstream's body reaches the client unchanged"
    [mine] = hget(headers, "www-authenticate")
    [theirs] = hget(dheaders, "www-authenticate")
    assert mine == theirs.replace('realm="http://127.0.0.3:15002/token"', f'realm="http://{D}/token"')
    assert 'error="insufficient_scope"' in mine and 'scope="repository:private/secret:pull"' in mine
    assert hget(headers, "docker-distribution-api-version") == ["registry/2.0"]
    got = stack.since(marks)
    assert len(got["front"]) == 2 and len(got["token"]) == 0  # ours and the direct one


def test_ping_costs_nothing_without_credentials_and_one_request_with(stack):
    marks = stack.marks()
    s, headers, body = stack.request("GET", D, "/v2/")
    assert s == 401 and oci_code(body) == "UNAUTHORIZED"
    assert hget(headers, "www-authenticate") == [f'Bearer realm="http://{D}/token",service="test-registry"']
    assert stack.since(marks) == {"front": [], "token": [], "cdn": []}
    tok = token(stack, "repository:library/multilayer:pull")
    marks = stack.marks()
    s, _, _ = stack.request("GET", D, "/v2/", {"Authorization": "Bearer " + tok})
    assert s == 200
    assert [e["path"] for e in stack.since(marks)["front"]] == ["/v2/"]
    # A route without a table realm forwards the ping and rewrites the answer.
    marks = stack.marks()
    s, headers, _ = stack.request("GET", G, "/v2/")
    assert s == 401 and hget(headers, "www-authenticate") == [f'Bearer realm="http://{G}/token",service="test-registry"']
    assert len(stack.since(marks)["front"]) == 1


def test_a_repeated_request_gets_the_same_answer_and_the_same_subrequests(stack):
    """The entry keeps the planner's actions for inputs that repeat
    (src/edge.js): an input is kept the second time it comes, so the third
    of three identical requests is planned from that memo. Every one must be
    answered exactly as the first, and cost the same upstream requests. Each
    path is new to this run, so the first two are planned in wasm."""
    n = str(time.time_ns())
    tok = token(stack, "repository:library/multilayer:pull")
    anon = token(stack, "repository:private/secret:pull")
    manifest = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    cases = [
        # a local answer (the ping's 401), and a local error
        ("GET", D, f"/v2/?r={n}", {}, 401),
        ("GET", D, f"/v2/Bad_Name{n}/manifests/1", {}, 404),
        # a fetch passed through untouched
        ("GET", D, f"/v2/multilayer/manifests/1.0?r={n}", {"Authorization": "Bearer " + tok, **manifest}, 200),
        # the upstream's 401, its challenge rewritten (a second step after the fetch)
        ("GET", D, f"/v2/private/secret/manifests/1?r={n}", {"Authorization": "Bearer " + anon, **manifest}, 401),
        # a token request, its scope rewritten (library/ added)
        ("GET", D, f"/token?service=test-registry&scope=repository:busybox{n}:pull", {}, 200),
    ]
    for method, host, path, headers, status in cases:
        answers = []
        for _ in range(3):
            marks = stack.marks()
            s, h, body = stack.request(method, host, path, headers)
            got = stack.since(marks)
            sub = [(e["server"], e["method"], e["path"], e.get("scopes"), e.get("auth"), e.get("headers"))
                   for e in got["front"] + got["token"] + got["cdn"]]
            kept = sorted((k.lower(), v) for k, v in h if k.lower() not in ("date", "content-length"))
            # A token carries a fresh id each time; everything else is the same bytes.
            answers.append((s, kept, None if path.startswith("/token") else body, sub))
        assert answers[0][0] == status, (path, answers[0])
        assert answers[1] == answers[0] and answers[2] == answers[0], path
        assert len(answers[0][3]) == (0 if status == 404 or path.startswith("/v2/?") else 1), (path, answers[0][3])
    # The rewritten scope reached the issuer every time.
    assert [e[3] for a in answers for e in a[3]] == [[f"repository:library/busybox{n}:pull"]] * 3


def test_token_get_rewrites_every_scope_and_forwards_credentials(stack):
    marks = stack.marks()
    q = "service=test-registry&scope=repository%3Abusybox%3Apull&scope=repository:team/app:pull&scope=repository:localhost:5000/x:pull&account=alice"
    s, headers, body = stack.request("GET", D, "/token?" + q, {"Authorization": "Basic " + base64.b64encode(b"alice:wonderland").decode()})
    assert s == 200 and json.loads(body)["token"]
    assert not hget(headers, "set-cookie"), "the issuer's Set-Cookie must not reach the client"
    [e] = stack.since(marks)["token"]
    assert e["scopes"] == ["repository:library/busybox:pull", "repository:team/app:pull", "repository:localhost:5000/x:pull"]
    assert e["user"] == "alice" and e["service"] == "test-registry"
    assert "account=alice" in e["path"]
    # Wrong credentials: the issuer's own 401 comes back unchanged.
    s, headers, body = stack.request("GET", D, "/token?service=test-registry", {"Authorization": "Basic " + base64.b64encode(b"alice:nope").decode()})
    assert s == 401 and oci_message(body) == "invalid username or password"
    assert hget(headers, "www-authenticate") == ['Basic realm="test token issuer"']


def test_token_post_form_is_rewritten_and_stays_a_post(stack):
    form = urlencode({"grant_type": "password", "username": "alice", "password": "wonderland", "client_id": "containerd",
                      "service": "test-registry", "scope": "repository:busybox:pull repository:private/secret:pull"})
    marks = stack.marks()
    s, _, body = stack.request("POST", D, "/token", {"Content-Type": "application/x-www-form-urlencoded"}, form)
    assert s == 200 and json.loads(body)["access_token"]
    [e] = stack.since(marks)["token"]
    assert e["method"] == "POST"
    assert e["scopes"] == ["repository:library/busybox:pull", "repository:private/secret:pull"]
    assert e["form"] == ["client_id", "grant_type", "password", "scope", "service", "username"]
    # A grant the issuer refuses: its 400 passes through (containerd then falls back to GET).
    s, _, body = stack.request("POST", D, "/token", {"Content-Type": "application/x-www-form-urlencoded"}, "grant_type=refresh_token&refresh_token=x")
    assert s == 400 and json.loads(body) == {"error": "unsupported_grant_type"}


def test_forwarding_keeps_what_registries_need_and_drops_the_rest(stack):
    tok = token(stack, "repository:library/multilayer:pull")
    digest = stack.layers["library/multilayer:1.0"][0]
    manifest = stack_manifest(stack)
    c = http.client.HTTPConnection(MIRROR_IP, MIRROR_PORT, timeout=30)
    c.putrequest("HEAD", "/v2/multilayer/manifests/1.0", skip_host=True, skip_accept_encoding=True)
    for k, v in [("Host", D), ("Authorization", "Bearer " + tok),
                 ("Accept", "application/vnd.oci.image.manifest.v1+json"),
                 ("Accept", "application/vnd.docker.distribution.manifest.v2+json"),
                 ("If-None-Match", '"nope"'), ("Cookie", "session=client-secret"), ("X-Forwarded-For", "10.9.8.7"),
                 ("X-Forwarded-Proto", "https"), ("CF-Connecting-IP", "10.9.8.7"), ("X-Custom", "1"), ("Te", "trailers")]:
        c.putheader(k, v)
    marks = stack.marks()
    c.endheaders()
    r = c.getresponse()
    r.read()
    assert r.status == 200
    assert r.getheader("Content-Length") == str(len(manifest)), "HEAD keeps the upstream's Content-Length"
    assert r.getheader("Docker-Content-Digest") == stack.digests["library/multilayer:1.0"]
    [e] = stack.since(marks)["front"]
    assert e["method"] == "HEAD", "HEAD stays HEAD"
    assert "application/vnd.oci.image.manifest.v1+json" in e["accept"] and "application/vnd.docker.distribution.manifest.v2+json" in e["accept"]
    for gone in ("cookie", "x-forwarded-for", "x-forwarded-proto", "cf-connecting-ip", "x-custom", "te"):
        assert gone not in e["headers"], (gone, e["headers"])
    assert {"authorization", "if-none-match", "accept"} <= set(e["headers"])

    # Range goes through the redirect to the CDN; Authorization does not.
    marks = stack.marks()
    s, headers, body = stack.request("GET", D, f"/v2/multilayer/blobs/{digest}", {"Authorization": "Bearer " + tok, "Range": "bytes=100-199"})
    assert s == 206 and len(body) == 100 and hget(headers, "content-range")[0].startswith("bytes 100-199/")
    blob_total = int(hget(headers, "content-range")[0].rsplit("/", 1)[1])
    got = stack.since(marks)
    assert [e["range"] for e in got["front"]] == ["bytes=100-199"] and got["front"][0]["auth"]
    assert [(e["range"], e["auth"]) for e in got["cdn"]] == [("bytes=100-199", False)]

    # HEAD on a blob stays HEAD through the redirect, with the blob's length.
    marks = stack.marks()
    s, headers, body = stack.request("HEAD", D, f"/v2/multilayer/blobs/{digest}", {"Authorization": "Bearer " + tok})
    got = stack.since(marks)
    assert s == 200 and body == b""
    assert hget(headers, "content-length") == [str(blob_total)]
    assert [e["method"] for e in got["front"]] == ["HEAD"] and [(e["method"], e["auth"]) for e in got["cdn"]] == [("HEAD", False)]

    # Pagination and other query parameters reach the upstream.
    marks = stack.marks()
    s, _, body = stack.request("GET", D, "/v2/multilayer/tags/list?n=1&last=0", {"Authorization": "Bearer " + tok})
    assert s == 200
    assert [e["path"] for e in stack.since(marks)["front"]] == ["/v2/library/multilayer/tags/list?n=1&last=0"]


def stack_manifest(stack):
    s, _, body = direct("GET", "/v2/library/multilayer/manifests/1.0", {
        "Authorization": "Bearer " + token(stack, "repository:library/multilayer:pull"),
        "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert s == 200
    return body


LOCAL = [
    # method, host, path, headers, status, code, message fragment
    # A host no route names is the default route's (Docker Hub's in this table).
    ("GET", "unknown.example", "/v2/", {}, 401, "UNAUTHORIZED", "authentication required"),
    ("GET", "mirror.test", "/v2/nope.io/x/manifests/1", {}, 404, "NAME_UNKNOWN", "no route of this mirror serves this name on this host: nope.io/x"),
    ("GET", "mirror.test", "/v2/x/manifests/1?ns=nope.io", {}, 404, "NAME_UNKNOWN", "no route of this mirror serves the registry named by ns: nope.io"),
    ("PUT", D, "/v2/busybox/manifests/latest", {}, 405, "UNSUPPORTED", "only pulls"),
    ("DELETE", D, "/v2/busybox/manifests/latest", {}, 405, "UNSUPPORTED", "only pulls"),
    ("POST", D, "/v2/busybox/blobs/uploads/", {}, 405, "UNSUPPORTED", "read-only"),
    ("PATCH", D, "/v2/busybox/blobs/uploads/abc", {}, 405, "UNSUPPORTED", "read-only"),
    ("PUT", D, "/token", {}, 405, "UNSUPPORTED", "token endpoint"),
    ("GET", D, "/v2/Busybox/manifests/latest", {}, 404, "NAME_INVALID", "invalid repository name"),
    ("GET", D, "/v2/a%2Fb/manifests/latest", {}, 404, "NAME_INVALID", "invalid repository name"),
    ("GET", D, "/v2/busybox/manifests/-x", {}, 404, "MANIFEST_UNKNOWN", "neither a tag"),
    ("GET", D, "/v2/busybox/blobs/sha256:abc", {}, 400, "DIGEST_INVALID", "invalid digest"),
    ("GET", D, "/v1/_ping", {}, 404, "UNSUPPORTED", "not a registry API path"),
    ("GET", G, "/v1/search?q=x", {}, 404, "NAME_UNKNOWN", "docker search only for routes with search"),
    ("GET", D, "/", {}, 401, "UNAUTHORIZED", "authentication required"),
]


@pytest.mark.parametrize("method,host,path,headers,status,code,fragment", LOCAL)
def test_local_answers(stack, method, host, path, headers, status, code, fragment):
    marks = stack.marks()
    s, h, body = stack.request(method, host, path, headers)
    assert s == status, body
    assert hget(h, "content-type") == ["application/json"]
    assert hget(h, "docker-distribution-api-version") == ["registry/2.0"]
    assert oci_code(body) == code and fragment in oci_message(body), body
    if status == 405:
        want_allow = [] if "/uploads" in path else ["GET, POST"] if path == "/token" else ["GET, HEAD"]
        assert hget(h, "allow") == want_allow
    assert stack.since(marks) == {"front": [], "token": [], "cdn": []}, "answered without any subrequest"


def impossible_names():
    rows = []
    with open(os.path.join(ROOT, "tests", "impossible-names.tsv")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                method, path, status, code, registry, why = line.rstrip("\n").split("\t")
                rows.append(pytest.param(method, path, int(status), code, int(registry), id=f"{method} {path[:60]}"))
    return rows


@pytest.mark.parametrize("method,path,status,code,registry", impossible_names())
def test_impossible_names_get_the_specs_answers_as_the_registry_does(stack, method, path, status, code, registry):
    """tests/impossible-names.tsv, against the worker in workerd and the real
    registry (the distribution registry without auth, so its router and
    handlers answer, not its auth): the mirror answers locally with the
    table's status and code; the registry answers as the table records."""
    marks = stack.marks()
    s, h, body = stack.request(method, D, path)
    assert s == status, body
    if method != "HEAD":
        assert oci_code(body) == code, body
    assert stack.since(marks) == {"front": [], "token": [], "cdn": []}, "answered without any subrequest"
    host, port = OPEN_REGISTRY.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path)
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == registry, f"the registry answered {r.status}; the table records {registry}"
    # Both say the name or reference does not exist, or (a malformed digest)
    # that it is the client's to fix: the mirror never answers 5xx for it.
    assert status < 500


def test_browser_page_lists_the_mirrors(stack):
    s, h, body = stack.request("GET", D, "/", {"Accept": "text/html,application/xhtml+xml"})
    assert s == 200 and hget(h, "content-type") == ["text/html; charset=utf-8"]
    page = body.decode()
    for line in ("docker pull docker.mirror.test/busybox", "docker pull ghcr.mirror.test/OWNER/IMAGE"):
        assert f"<code>{line}</code>" in page


FAULTS = [
    # repository under fault/, status, code, message fragment
    ("fault/nochallenge", 502, "UNAVAILABLE", "without a WWW-Authenticate challenge"),
    ("fault/badchallenge", 502, "UNAVAILABLE", "unterminated quoted string"),
    ("fault/loop", 502, "UNAVAILABLE", "redirected too many times"),
    # The runtime follows redirects and reports a non-http target only as a
    # failed fetch.
    ("fault/ftp", 502, "UNAVAILABLE", "redirected to a URL that cannot be fetched"),
]


@pytest.mark.parametrize("repo,status,code,fragment", FAULTS)
def test_upstream_faults_give_a_clear_error_and_the_next_request_works(stack, repo, status, code, fragment):
    s, _, body = stack.request("GET", D, f"/v2/{repo}/manifests/x")
    assert s == status and oci_code(body) == code and fragment in oci_message(body), body
    assert "http://127.0.0.2:15001" in oci_message(body), "the error names the upstream"
    s, _, _ = stack.request("GET", D, "/v2/")
    assert s == 401


def test_upstream_errors_and_relative_redirects(stack):
    # The upstream's own 5xx passes through with its body.
    s, _, body = stack.request("GET", D, "/v2/fault/unavailable/manifests/x")
    assert s == 503 and oci_message(body) == "upstream is down for maintenance"
    # A relative Location is resolved against the upstream and followed there.
    marks = stack.marks()
    s, _, body = stack.request("GET", D, "/v2/fault/relative/manifests/x")
    paths = [e["path"] for e in stack.since(marks)["front"]]
    assert paths == ["/v2/fault/relative/manifests/x", "/v2/fault/target/manifests/ok"], paths
    assert s == 401  # the registry's own answer for the target
    # The loop was cut after the runtime's bounded number of hops (20).
    marks = stack.marks()
    stack.request("GET", D, "/v2/fault/loop/manifests/x")
    assert len(stack.since(marks)["front"]) == 21
    # Upstream Set-Cookie is dropped.
    s, h, _ = stack.request("GET", D, "/v2/fault/cookie/manifests/x")
    assert s == 200 and not hget(h, "set-cookie")


def test_unreachable_upstream_is_a_502_naming_it(stack):
    s, _, body = stack.request("GET", "down.mirror.test", "/v2/x/manifests/latest")
    assert s == 502 and oci_code(body) == "UNAVAILABLE"
    assert oci_message(body) == "the upstream registry could not be reached, or redirected to a URL that cannot be fetched: http://127.0.0.2:15009"
    assert stack.request("GET", D, "/v2/")[0] == 401


def test_a_body_cut_short_reaches_the_client_as_a_short_body(stack):
    # Headers were already sent, so the worker cannot turn this into a 502;
    # the client sees fewer bytes than Content-Length, and the next request works.
    c = http.client.HTTPConnection(MIRROR_IP, MIRROR_PORT, timeout=30)
    c.request("GET", f"/v2/fault/short/blobs/sha256:{'0' * 64}", headers={"Host": D})
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()
    assert stack.request("GET", D, "/v2/")[0] == 401


def test_hop_by_hop_headers_of_the_upstream_stop_at_the_mirror(stack):
    # The entry drops Proxy-Authenticate (and Set-Cookie, above) itself; the
    # runtime drops the connection's own headers when it sends the answer.
    s, h, body = stack.request("GET", D, "/v2/fault/hopbyhop/manifests/x")
    assert s == 200 and body == b'{"ok":true}'
    for name in ("keep-alive", "trailer", "upgrade", "proxy-authenticate"):
        assert not hget(h, name), (name, h)
    assert hget(h, "connection") in ([], ["keep-alive"], ["close"]), h


def test_a_body_slower_than_the_header_timeout_arrives_whole(stack):
    # The 20 s timeout bounds the wait for the upstream's headers, not the
    # body: a large layer from a slow upstream streams for as long as it takes.
    start = time.time()
    s, _, body = stack.request("GET", D, f"/v2/fault/slowbody/blobs/sha256:{'1' * 64}")
    took = time.time() - start
    assert s == 200 and body == b"s" * 1024 * 23
    assert took > 21, took


def test_a_hanging_upstream_gives_504_after_the_bounded_wait(stack):
    start = time.time()
    s, _, body = stack.request("GET", D, "/v2/fault/hang/manifests/x")
    took = time.time() - start
    assert s == 504 and oci_message(body) == "the upstream registry did not answer in time: http://127.0.0.2:15001"
    assert took > 15, took
    assert stack.request("GET", D, "/v2/")[0] == 401
