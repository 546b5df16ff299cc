"""docker search through the mirror, with the real dockerd: `docker search
mirror.test/TERM` asks the mirror's /v1/search, which goes to the route's
`search` index (tests/e2e/fixtures.py's, like Docker Hub's), anonymously,
with the query rebuilt; the index's answer comes back as it is, and its 429
with the mirror's message in front."""

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import MIRROR_IP  # noqa: F401  (the stack's address, for the record)

M = "mirror.test"


def index_log(stack, marks):
    return stack.since({"index": marks})["index"]


def oci(body):
    return json.loads(body)["errors"][0]


def test_docker_search_through_the_mirror_lists_the_index_results(stack):
    n = len(stack.log("index"))
    r = stack.docker("search", f"{M}/nginx", timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "DESCRIPTION", "STARS"], r.stdout
    assert lines[1].split()[0] == "library/nginx" and "4242" in lines[1].split() and "[OK]" in lines[1], r.stdout
    assert lines[2].split()[0] == "someone/nginx-alpine", r.stdout
    # dockerd's query, as the index got it through the mirror: anonymous.
    [seen] = [e for e in stack.log("index")[n:] if e["method"] == "GET"]
    assert dict(parse_qsl(urlsplit(seen["path"]).query)) == {"q": "nginx", "n": "25"}, seen
    assert seen["authorization"] is None and "cookie" not in seen["headers"]


def test_the_query_is_rebuilt_and_the_clients_authorization_stays_behind(stack):
    n = len(stack.log("index"))
    s, h, body = stack.request("GET", M, "/v1/search?page=2&x=evil&n=5&q=red+is&ns=docker.io&n=abc",
                               {"Authorization": "Bearer client-secret", "Cookie": "c=1"})
    assert s == 200, body
    assert json.loads(body)["results"][0]["name"] == "library/red is"
    [seen] = stack.log("index")[n:]
    assert urlsplit(seen["path"]).query == "q=red%20is&n=5&page=2", seen
    assert seen["authorization"] is None and "cookie" not in seen["headers"], seen
    # A prefix in the term picks the route, and is removed.
    n = len(stack.log("index"))
    s, _, body = stack.request("GET", M, "/v1/search?q=docker.io%2Fredis&n=2")
    assert s == 200 and json.loads(body)["query"] == "redis", body
    assert urlsplit(stack.log("index")[n]["path"]).query == "q=redis&n=2"


def test_a_throttled_index_gives_the_client_the_mirrors_message(stack):
    s, h, body = stack.request("GET", M, "/v1/search?q=throttled&n=25")
    assert s == 429, body
    e = oci(body)
    assert e["code"] == "TOOMANYREQUESTS", e
    assert "limiting requests from this mirror's address" in e["message"] and e["message"].endswith(": docker.io"), e
    assert dict((k.lower(), v) for k, v in h)["retry-after"] == "60"
    # dockerd shows the status (it does not print an index's body).
    r = stack.docker("search", f"{M}/throttled", timeout=120)
    assert r.returncode != 0 and "429" in r.stderr, r.stderr


@pytest.mark.parametrize("host,path,status,code", [
    ("ghcr.mirror.test", "/v1/search?q=x", 404, "NAME_UNKNOWN"),
    (M, "/v1/search?q=ghcr.io%2Fowner", 404, "NAME_UNKNOWN"),
    (M, "/v1/search?q=x&ns=nope.io", 404, "NAME_UNKNOWN"),
    (M, "/v1/search", 400, "UNSUPPORTED"),
    (M, "/v1/repositories/library/nginx/images", 404, "UNSUPPORTED"),
])
def test_what_search_does_not_serve_is_answered_locally(stack, host, path, status, code):
    n = len(stack.log("index"))
    s, _, body = stack.request("GET", host, path)
    assert s == status and oci(body)["code"] == code, body
    assert len(stack.log("index")) == n, "no request reached the index"
