"""Hostile requests against the worker in workerd: a table, one row per
request (raw bytes, so anything can be sent), with the status and OCI code
expected. For every row: an answer within the socket timeout (no hang), no
5xx from the worker, every Bearer realm naming a mirror host, and no
connection to the canary, a listener on an address outside the route table
that the rows try to steer the worker to.
"""

import json
import re
import socket
import threading

import pytest

from conftest import MIRROR_HOSTS, MIRROR_IP, MIRROR_PORT, Canary

D = "docker.mirror.test"
CANARY = Canary.ADDR
LONG_NAME = "a" * 256
DIGEST = "sha256:" + "0" * 64


def raw(data, timeout=30):
    """Sends raw bytes to the worker; returns (status, headers, body)."""
    s = socket.create_connection((MIRROR_IP, MIRROR_PORT), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        h = {k.lower(): v for k, v in headers}
        if "content-length" in h:
            n = int(h["content-length"])
            while len(body) < n:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        elif h.get("transfer-encoding", "").lower() == "chunked":
            while not body.endswith(b"0\r\n\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            out, rest = b"", body
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size.split(b";")[0] or b"0", 16)
                if n == 0:
                    break
                out, rest = out + rest[:n], rest[n + 2:]
            body = out
        return status, headers, body
    finally:
        s.close()


def req(method, target, host=D, extra=b""):
    if isinstance(target, str):
        target = target.encode()
    h = host.encode("latin-1") if isinstance(host, str) else host
    return method.encode() + b" " + target + b" HTTP/1.1\r\nHost: " + h + b"\r\n" + extra + b"Connection: close\r\n\r\n"


def tok(n, scope="repository:busybox:pull"):
    return "/token?service=test-registry&" + "&".join(f"scope={scope}" for _ in range(n))


# id, raw request, expected status, expected OCI code (None: not ours to check)
ROWS = [
    ("traversal-dotdot", req("GET", "/v2/../../etc/passwd"), 404, "UNSUPPORTED"),
    ("traversal-in-name", req("GET", "/v2/library/../../x/manifests/latest"), 404, "UNSUPPORTED"),
    ("traversal-encoded", req("GET", "/v2/%2e%2e/%2e%2e/x/manifests/latest"), 404, "UNSUPPORTED"),
    ("encoded-slash", req("GET", "/v2/a%2Fb/manifests/latest"), 404, "NAME_INVALID"),
    ("encoded-dot-name", req("GET", "/v2/a%2e/manifests/latest"), 404, "NAME_INVALID"),
    ("upper-case-name", req("GET", "/v2/BusyBox/manifests/latest"), 404, "NAME_INVALID"),
    ("name-separators", req("GET", "/v2/a__-b/manifests/latest"), 404, "NAME_INVALID"),
    ("name-256", req("GET", f"/v2/{LONG_NAME}/manifests/latest"), 404, "NAME_INVALID"),
    ("tag-leading-dot", req("GET", "/v2/busybox/manifests/.x"), 404, "MANIFEST_UNKNOWN"),
    ("tag-129", req("GET", "/v2/busybox/manifests/" + "t" * 129), 404, "MANIFEST_UNKNOWN"),
    ("tag-nul", req("GET", "/v2/busybox/manifests/a%00b"), 404, "MANIFEST_UNKNOWN"),
    ("digest-short", req("GET", "/v2/busybox/blobs/sha256:abc"), 400, "DIGEST_INVALID"),
    ("digest-upper", req("GET", "/v2/busybox/blobs/sha256:" + "A" * 64), 400, "DIGEST_INVALID"),
    ("digest-no-alg", req("GET", "/v2/busybox/blobs/:abc"), 400, "DIGEST_INVALID"),
    ("non-utf8-path", req("GET", b"/v2/bus\xffbox/manifests/latest"), 404, "NAME_INVALID"),
    ("non-utf8-query", req("GET", b"/v2/busybox/manifests/latest?x=\xff\xfe"), 401, "UNAUTHORIZED"),
    ("long-query", req("GET", "/v2/busybox/manifests/latest?q=" + "x" * 9000), 414, "UNSUPPORTED"),
    # A 70 KB header is accepted by workerd; it is not forwarded (allow-list).
    ("long-header", req("GET", "/v2/", extra=b"X-Long: " + b"y" * 70000 + b"\r\n"), 401, "UNAUTHORIZED"),
    ("long-header-upstream", req("GET", "/v2/busybox/manifests/latest", extra=b"X-Long: " + b"y" * 70000 + b"\r\n"), 401, "UNAUTHORIZED"),
    ("crlf-in-query", req("GET", "/v2/busybox/manifests/latest?a=%0d%0aSet-Cookie:%20x"), 401, "UNAUTHORIZED"),
    ("quotes-in-auth", req("GET", "/v2/busybox/manifests/latest", extra=b'Authorization: Bearer "a,b\\"c"\r\n'), 401, "UNAUTHORIZED"),
    ("scopes-60", req("GET", tok(60)), 200, None),
    ("scopes-65", req("GET", tok(65)), 400, "UNSUPPORTED"),
    ("scope-other-registry", req("GET", tok(1, "repository:127.0.0.66:15066/x:pull")), 200, None),
    ("scope-bad-escape", req("GET", "/token?scope=%zz"), 400, "UNSUPPORTED"),
    # ns picks among the table's routes only: a host no route names is 404.
    ("ns-other-registry", req("GET", "/v2/busybox/manifests/latest?ns=127.0.0.66:15066"), 404, "NAME_UNKNOWN"),
    ("ns-other-registry-token", req("GET", "/token/127.0.0.66:15066?scope=repository:x/y:pull"), 404, "NAME_UNKNOWN"),
    # A host:port is no repository name (and no prefix can be one); a
    # registry-like first component no route has is 404.
    ("prefix-other-registry-port", req("GET", "/v2/127.0.0.66:15066/x/manifests/latest", host="mirror.test"), 404, "NAME_INVALID"),
    ("prefix-other-registry", req("GET", "/v2/127.0.0.66/x/manifests/latest", host="mirror.test"), 404, "NAME_UNKNOWN"),
    ("scope-prefix-other-registry", req("GET", "/token?scope=repository:127.0.0.66:15066/x:pull", host="mirror.test"), 200, None),
    ("url-param-other-host", req("GET", "/v2/?url=http://127.0.0.66:15066/&host=127.0.0.66:15066", extra=b"Authorization: Bearer x\r\n"), 401, "UNAUTHORIZED"),
    ("absolute-uri", req("GET", "http://127.0.0.66:15066/v2/"), 500, None),
    ("absolute-uri-mirror", req("GET", "http://docker.mirror.test/v2/"), 500, None),
    # Hosts no route names are the default route's (Docker Hub's here): its
    # challenge names the host the client addressed, nothing else.
    ("unknown-host", req("GET", "/v2/", host="127.0.0.66:15066"), 401, "UNAUTHORIZED"),
    ("unknown-host-name", req("GET", "/v2/", host="registry-1.docker.io"), 401, "UNAUTHORIZED"),
    ("host-ipv6", req("GET", "/v2/", host="[::1]"), 401, "UNAUTHORIZED"),
    ("host-underscore", req("GET", "/v2/", host="_x.mirror.test"), 401, "UNAUTHORIZED"),
    ("host-quote", req("GET", "/v2/", host='docker.mirror.test"x'), 500, None),
    ("host-comma", req("GET", "/v2/", host="docker.mirror.test,evil"), 500, None),
    ("host-at", req("GET", "/v2/", host="evil@docker.mirror.test"), 500, None),
    # Refused by the runtime before the worker runs (not ours: no OCI body).
    ("host-port-range", req("GET", "/v2/", host="docker.mirror.test:99999"), 500, None),
    ("host-trailing-dot", req("GET", "/v2/", host="docker.mirror.test."), 401, "UNAUTHORIZED"),
    ("host-upper", req("GET", "/v2/", host="DOCKER.Mirror.Test"), 401, "UNAUTHORIZED"),
    ("host-empty", req("GET", "/v2/", host=""), 400, None),
] + [
    (f"method-{m.lower()}", req(m, "/v2/busybox/manifests/latest", extra=b"Content-Length: 0\r\n"), status, code)
    for m, status, code in [
        ("GET", 401, "UNAUTHORIZED"), ("HEAD", 401, None), ("POST", 405, "UNSUPPORTED"), ("PUT", 405, "UNSUPPORTED"),
        ("DELETE", 405, "UNSUPPORTED"), ("PATCH", 405, "UNSUPPORTED"), ("OPTIONS", 405, "UNSUPPORTED"),
        ("TRACE", 405, "UNSUPPORTED"), ("PROPFIND", 405, "UNSUPPORTED"),
        # Unknown to the runtime's HTTP parser: it answers 501 itself.
        ("BREW", 501, None),
    ]
]


@pytest.mark.parametrize("name,data,status,code", ROWS, ids=[r[0] for r in ROWS])
def test_hostile_request(stack, canary, name, data, status, code):
    marks = stack.marks()
    got, headers, body = raw(data)
    assert got == status, (name, got, body[:300])
    h = {k.lower(): v for k, v in headers}
    ours = h.get("docker-distribution-api-version") == "registry/2.0" and h.get("content-type") == "application/json" and "date" not in h
    if code is not None:
        assert json.loads(body)["errors"][0]["code"] == code, body
        message = json.loads(body)["errors"][0]["message"]
        assert len(message) > 20, message
    if got >= 500:
        assert not ours, f"{name}: a 5xx from the worker"
    # The Host this request named: a realm may point back at it (the default
    # route serves hosts the table does not name), at nothing else.
    host = re.search(rb"\r\nHost: ([^\r]*)\r\n", data)
    asked = host.group(1).decode("latin-1").lower().rstrip(".") if host else ""
    for k, v in headers:
        if k.lower() == "www-authenticate" and v.lower().startswith("bearer"):
            m = re.search(r'realm="http://([^/"]+)/token(/[^"/]+)?"', v)
            assert m and (m.group(1) in MIRROR_HOSTS or m.group(1) == asked), (name, v)
        elif k.lower() != "www-authenticate":
            assert "127.0.0.66" not in v, (name, k, v)
    assert not canary.hits, f"{name}: the worker contacted a host outside the table"
    if code is not None and got in (400, 404, 405, 414):
        assert stack.since(marks) == {"front": [], "token": [], "cdn": []}, f"{name}: refused locally, yet upstream was asked"
