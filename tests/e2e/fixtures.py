"""Upstream fixtures for the end-to-end tests, in one process.

- token issuer: the distribution token protocol (GET with optional Basic auth,
  and the OAuth2 password-grant POST), RS256 JWTs with an x5c header whose
  certificate is also the registry's rootcertbundle;
- front: the registry's public face, like Docker Hub's: proxies the registry
  API to the distribution registry, but answers authorised blob GET/HEAD with
  307 to the CDN;
- cdn: serves blobs straight from the registry's storage and refuses any
  request carrying Authorization, as Docker Hub's storage does;
- throttle: a Docker Hub that throttles the mirror: 429 with Docker Hub's
  pull-limit answer to every registry API request, a challenge on /v2/, and
  on /token a token for anyone (a canary: no fallback may ever see it);
  under /v2/liar/ it answers manifests with another digest than asked;
- open front: a logging pass-through to a second distribution registry
  without auth (the same storage, read-only): a fallback anyone may pull.

Every request each server sees is appended to LOGDIR/<server>.jsonl, so tests
can count upstream subrequests and check which headers reached which host.

Users: alice/wonderland may pull everything, including private/*; pusher/pushpw
may push; anonymous may pull everything except private/*.

Fault hooks for the fault tests: repositories under fault/ make the front
misbehave (see FRONT_FAULTS).
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

USERS = {"alice": "wonderland", "pusher": "pushpw"}
SERVICE = "test-registry"
ISSUER = "test-issuer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Log:
    """Append-only JSON-lines request log, one file per server."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        open(path, "w").close()

    def write(self, **entry):
        entry["t"] = time.time()
        line = json.dumps(entry) + "\n"
        with self.lock, open(self.path, "a") as f:
            f.write(line)


class Keys:
    def __init__(self, cert_path):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token issuer")])
        now = time.time()
        import datetime

        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime.fromtimestamp(now - 3600, datetime.timezone.utc))
            .not_valid_after(datetime.datetime.fromtimestamp(now + 86400, datetime.timezone.utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(sig)


def parse_scope(item):
    """`type:name:actions`; the name is what lies between first and last colon."""
    first, last = item.find(":"), item.rfind(":")
    if first < 0 or first == last:
        return None
    return item[:first], item[first + 1 : last], item[last + 1 :].split(",")


def grant(user, scopes):
    access = []
    for item in scopes:
        parsed = parse_scope(item)
        if not parsed:
            continue
        kind, name, actions = parsed
        if kind != "repository":
            continue
        if user == "pusher":
            allowed = [a for a in actions if a in ("pull", "push", "*")]
        elif user == "alice":
            allowed = [a for a in actions if a == "pull"]
        else:
            allowed = [a for a in actions if a == "pull"] if not name.startswith("private/") else []
        access.append({"type": "repository", "name": name, "actions": allowed})
    return access


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self, resp, conn):
        """Sends the registry's response on, as it came (its length kept)."""
        data = resp.read() if self.command != "HEAD" else b""
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in ("connection", "transfer-encoding", "content-length", "date", "server"):
                continue
            self.send_header(k, v)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if conn:
            conn.close()

    def send_body(self, status, body, ctype="application/json", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def token_handler(keys, log):
    class Token(Quiet):
        def answer(self, query_pairs, user, form):
            scopes = []
            for k, v in query_pairs:
                if k == "scope":
                    scopes.extend(s for s in v.split(" ") if s)
            service = dict(query_pairs).get("service", "")
            log.write(
                server="token",
                method=self.command,
                path=self.path,
                auth=self.headers.get("Authorization") is not None,
                authorization=self.headers.get("Authorization"),
                user=user,
                scopes=scopes,
                service=service,
                form=form,
            )
            now = int(time.time())
            claims = {
                "iss": ISSUER,
                "sub": user or "",
                "aud": SERVICE,
                "exp": now + 300,
                "nbf": now - 10,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "access": grant(user, scopes),
            }
            tok = keys.sign(claims)
            body = {"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
            self.send_body(200, json.dumps(body), headers=[("Set-Cookie", "issuer-session=secret; Path=/")])

        def refuse(self, message):
            log.write(server="token", method=self.command, path=self.path, auth=True, refused=message)
            self.send_body(401, json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": message, "detail": None}]}),
                           headers=[("WWW-Authenticate", 'Basic realm="test token issuer"')])

        def do_GET(self):
            u = urlsplit(self.path)
            if u.path != "/token":
                return self.send_body(404, "{}")
            pairs = parse_qsl(u.query, keep_blank_values=True)
            user = None
            auth = self.headers.get("Authorization")
            if auth:
                if not auth.startswith("Basic "):
                    return self.refuse("unsupported authorization")
                try:
                    name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                except Exception:
                    return self.refuse("malformed basic credentials")
                if USERS.get(name) != pw:
                    return self.refuse("invalid username or password")
                user = name
            self.answer(pairs, user, None)

        def do_POST(self):
            u = urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode()
            if u.path != "/token":
                return self.send_body(404, "{}")
            form = dict(parse_qsl(body, keep_blank_values=True))
            if form.get("grant_type") != "password":
                log.write(server="token", method="POST", path=self.path, refused="grant_type", form=form)
                return self.send_body(400, json.dumps({"error": "unsupported_grant_type"}))
            if USERS.get(form.get("username")) != form.get("password"):
                return self.refuse("invalid username or password")
            pairs = [("scope", form.get("scope", "")), ("service", form.get("service", ""))]
            self.answer(pairs, form.get("username"), sorted(form.keys()))

    return Token


BLOB_RE = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")

# Repositories whose requests make the front misbehave, for the fault tests.
FRONT_FAULTS = {
    "fault/unavailable": "answer 503",
    "fault/nochallenge": "answer 401 without WWW-Authenticate",
    "fault/badchallenge": "answer 401 with an unparseable challenge",
    "fault/loop": "redirect to itself forever",
    "fault/ftp": "redirect to an ftp: URL",
    "fault/relative": "redirect with a relative Location to fault/target",
    "fault/hang": "never answer",
    "fault/short": "cut the body short",
    "fault/cookie": "answer 200 with Set-Cookie",
    "fault/hopbyhop": "answer 200 with hop-by-hop headers (Connection, Keep-Alive, Trailer, Upgrade, Proxy-Authenticate)",
    "fault/slowbody": "send the headers at once and the body over 22 s, longer than the worker's 20 s header timeout",
    "fault/ratelimit": "answer 429 as Docker Hub's pull rate limit does",
    "fault/abuse": "answer 429 as a per-address limit does (plain text)",
}

# fault/slowbody: one KiB a second for longer than the worker's header timeout.
SLOW_CHUNKS = 23

# Docker Hub's pull-rate-limit answer (its documented body and headers).
PULL_LIMIT_BODY = ('{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit. '
                   'https://www.docker.com/increase-rate-limit"}]}')


def front_handler(registry, cdn, log):
    class Front(Quiet):
        def forward(self, method, path, body=None):
            conn = http.client.HTTPConnection(registry, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
            if body is not None:
                headers["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=headers)
            return conn, conn.getresponse()

        def fault(self, name):
            if name == "fault/unavailable":
                return self.send_body(503, json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "upstream is down for maintenance", "detail": None}]}))
            if name == "fault/nochallenge":
                return self.send_body(401, json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "no challenge here", "detail": None}]}))
            if name == "fault/badchallenge":
                return self.send_body(401, "{}", headers=[("WWW-Authenticate", 'Bearer realm="http://unterminated')])
            if name == "fault/loop":
                return self.send_body(307, "", headers=[("Location", self.path)])
            if name == "fault/ftp":
                return self.send_body(302, "", headers=[("Location", "ftp://127.0.0.2/blob")])
            if name == "fault/relative":
                return self.send_body(307, "", headers=[("Location", "../../target/manifests/ok")])
            if name == "fault/hang":
                time.sleep(120)
                return None
            if name == "fault/short":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self.wfile.write(b"x" * 1000)
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None
            if name == "fault/ratelimit":
                return self.send_body(429, PULL_LIMIT_BODY, headers=[
                    ("Retry-After", "21600"), ("RateLimit-Limit", "100;w=21600"), ("RateLimit-Remaining", "0;w=21600"),
                    ("Docker-RateLimit-Source", "127.0.0.10")])
            if name == "fault/abuse":
                return self.send_body(429, "Too Many Requests\n", ctype="text/plain", headers=[("Retry-After", "30")])
            if name == "fault/cookie":
                return self.send_body(200, '{"ok":true}', headers=[("Set-Cookie", "upstream-session=secret; Path=/")])
            if name == "fault/hopbyhop":
                return self.send_body(200, '{"ok":true}', headers=[
                    ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("Trailer", "X-Checksum"),
                    ("Upgrade", "h2c"), ("Proxy-Authenticate", 'Basic realm="upstream proxy"')])
            if name == "fault/slowbody":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(SLOW_CHUNKS * 1024))
                self.end_headers()
                for _ in range(SLOW_CHUNKS):
                    self.wfile.write(b"s" * 1024)
                    self.wfile.flush()
                    time.sleep(1)
                return None
            return None

        def handle_any(self):
            path = urlsplit(self.path).path
            log.write(
                server="front",
                method=self.command,
                path=self.path,
                auth=self.headers.get("Authorization") is not None,
                authorization=self.headers.get("Authorization"),
                range=self.headers.get("Range"),
                accept=self.headers.get("Accept"),
                cookie=self.headers.get("Cookie"),
                headers=sorted(k.lower() for k in self.headers.keys()),
            )
            m = re.match(r"^/v2/(fault/[a-z]+)/", path)
            if m and m.group(1) in FRONT_FAULTS:
                return self.fault(m.group(1))
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            blob = BLOB_RE.match(path)
            if blob and self.command in ("GET", "HEAD"):
                conn, resp = self.forward("HEAD", self.path)
                resp.read()
                conn.close()
                if resp.status in (200, 206):
                    sig = hashlib.sha256(blob.group(2).encode()).hexdigest()[:16]
                    return self.send_body(307, "", headers=[("Location", f"http://{cdn}/data/{blob.group(2)}?sig={sig}")])
                return self.relay(resp, None)
            conn, resp = self.forward(self.command, self.path, body)
            self.relay(resp, conn)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    return Front


def cdn_handler(storage, log):
    class Cdn(Quiet):
        def handle_any(self):
            auth = self.headers.get("Authorization")
            rng = self.headers.get("Range")
            log.write(server="cdn", method=self.command, path=self.path, auth=auth is not None, range=rng,
                      authorization=auth, headers=sorted(k.lower() for k in self.headers.keys()))
            if auth is not None:
                xml = "<?xml version=\"1.0\"?><Error><Code>InvalidArgument</Code><Message>Missing x-amz-content-sha256</Message></Error>"
                return self.send_body(400, xml, ctype="application/xml")
            m = re.match(r"^/data/sha256:([0-9a-f]{64})(\?.*)?$", self.path)
            if not m or self.command not in ("GET", "HEAD"):
                return self.send_body(404, "not found", ctype="text/plain")
            hexd = m.group(1)
            path = os.path.join(storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                return self.send_body(404, "not found", ctype="text/plain")
            status, headers = 200, [("Accept-Ranges", "bytes"), ("ETag", f'"sha256:{hexd}"')]
            rm = re.match(r"^bytes=(\d+)-(\d*)$", rng or "")
            if rng and rm:
                start = int(rm.group(1))
                end = int(rm.group(2)) if rm.group(2) else len(data) - 1
                if start >= len(data):
                    return self.send_body(416, "", ctype="application/octet-stream",
                                          headers=[("Content-Range", f"bytes */{len(data)}")])
                end = min(end, len(data) - 1)
                headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
                data = data[start : end + 1]
                status = 206
            self.send_body(status, data, ctype="application/octet-stream", headers=headers)

        do_GET = do_HEAD = do_POST = do_PUT = handle_any

    return Cdn


# The token the throttling upstream's realm gives clients: it reaches the
# throttling upstream with every client request, and must reach no fallback.
CLIENT_TOKEN = "client-token-canary-5b7e"


def throttle_handler(addr, log):
    class Throttle(Quiet):
        def handle_any(self):
            path = urlsplit(self.path).path
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("latin-1") if n else ""
            log.write(server="throttle", method=self.command, path=self.path, authorization=self.headers.get("Authorization"),
                      body=body, headers=sorted(k.lower() for k in self.headers.keys()))
            if path == "/token":
                return self.send_body(200, json.dumps({"token": CLIENT_TOKEN, "access_token": CLIENT_TOKEN, "expires_in": 300}))
            if path in ("/v2/", "/v2"):
                # A ping is not a pull: with its own token, it is answered.
                if self.headers.get("Authorization") == f"Bearer {CLIENT_TOKEN}":
                    return self.send_body(200, "{}", headers=[("Docker-Distribution-API-Version", "registry/2.0")])
                return self.send_body(401, json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]}),
                                      headers=[("WWW-Authenticate", f'Bearer realm="http://{addr}/token",service="throttled"')])
            if path.startswith("/v2/liar/") and "/manifests/" in path:
                manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                                       "config": {}, "layers": [], "note": "not what was asked for"}).encode()
                return self.send_body(200, manifest, ctype="application/vnd.docker.distribution.manifest.v2+json",
                                      headers=[("Docker-Content-Digest", "sha256:" + hashlib.sha256(manifest).hexdigest())])
            return self.send_body(429, PULL_LIMIT_BODY, headers=[
                ("Retry-After", "21600"), ("RateLimit-Limit", "100;w=21600"), ("RateLimit-Remaining", "0;w=21600")])

        do_GET = do_HEAD = do_POST = handle_any

    return Throttle


# What the index answers for `q=throttled`: Docker Hub's index answers a
# throttled address like this (a plain 429 with Retry-After).
SEARCH_THROTTLED = "Too Many Requests"


def index_handler(log):
    """A search index like Docker Hub's (`GET /v1/search?q=&n=&page=`): two
    results per term, or 429 for the term "throttled"."""
    class Index(Quiet):
        def handle_any(self):
            u = urlsplit(self.path)
            q = parse_qs(u.query)
            log.write(server="index", method=self.command, path=self.path, authorization=self.headers.get("Authorization"),
                      headers=sorted(k.lower() for k in self.headers.keys()))
            if u.path != "/v1/search":
                return self.send_body(404, "404 page not found", ctype="text/plain")
            term = (q.get("q") or [""])[0]
            if term == "throttled":
                return self.send_body(429, SEARCH_THROTTLED, ctype="text/plain", headers=[("Retry-After", "60")])
            n = int((q.get("n") or ["25"])[0])
            results = [
                {"name": f"library/{term}", "description": f"Official {term} image (fixture)", "star_count": 4242,
                 "is_official": True, "is_automated": False},
                {"name": f"someone/{term}-alpine", "description": f"{term} on alpine (fixture)", "star_count": 7,
                 "is_official": False, "is_automated": False},
            ][:n]
            return self.send_body(200, json.dumps({"num_results": len(results), "query": term, "page": 1, "page_size": n,
                                                   "num_pages": 1, "results": results}))

        do_GET = do_HEAD = handle_any

    return Index


def proxy_handler(target, log, name):
    """A logging pass-through to `target` (no redirects of its own)."""
    class Proxy(Quiet):
        def handle_any(self):
            log.write(server=name, method=self.command, path=self.path, authorization=self.headers.get("Authorization"),
                      cookie=self.headers.get("Cookie"), headers=sorted(k.lower() for k in self.headers.keys()))
            conn = http.client.HTTPConnection(target, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, headers=headers)
            self.relay(conn.getresponse(), conn)

        do_GET = do_HEAD = handle_any

    return Proxy


def serve(addr, handler):
    host, port = addr.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--token", required=True, help="host:port of the token issuer")
    ap.add_argument("--front", required=True, help="host:port of the registry front")
    ap.add_argument("--cdn", required=True, help="host:port of the blob CDN")
    ap.add_argument("--registry", required=True, help="host:port of the distribution registry")
    ap.add_argument("--storage", required=True, help="the registry's filesystem root")
    ap.add_argument("--cert", required=True, help="where to write the issuer's certificate")
    ap.add_argument("--throttle", required=True, help="host:port of the throttling upstream")
    ap.add_argument("--open-front", required=True, help="host:port of the logging front of the registry without auth")
    ap.add_argument("--open-registry", required=True, help="host:port of the registry without auth")
    ap.add_argument("--index", required=True, help="host:port of the search index")
    ap.add_argument("--logdir", required=True)
    a = ap.parse_args()
    keys = Keys(a.cert)
    serve(a.token, token_handler(keys, Log(os.path.join(a.logdir, "token.jsonl"))))
    serve(a.front, front_handler(a.registry, a.cdn, Log(os.path.join(a.logdir, "front.jsonl"))))
    serve(a.cdn, cdn_handler(a.storage, Log(os.path.join(a.logdir, "cdn.jsonl"))))
    serve(a.throttle, throttle_handler(a.throttle, Log(os.path.join(a.logdir, "throttle.jsonl"))))
    serve(a.open_front, proxy_handler(a.open_registry, Log(os.path.join(a.logdir, "open.jsonl")), "open"))
    serve(a.index, index_handler(Log(os.path.join(a.logdir, "index.jsonl"))))
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
