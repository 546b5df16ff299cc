#!/usr/bin/env python3
"""Walks one image pull through a running mirror the way a client does, and
says where it fails and what to change.

    python3 scripts/check-mirror.py https://mirror.example.com library/busybox
    python3 scripts/check-mirror.py https://mirror.example.com ghcr.io/owner/image:tag
    python3 scripts/check-mirror.py --ns ghcr.io https://mirror.example.com owner/image:tag
    echo "$TOKEN" | python3 scripts/check-mirror.py --user me https://mirror.example.com me/private
    python3 scripts/check-mirror.py --key "$KEY" https://mirror.example.com library/busybox
    python3 scripts/check-mirror.py --cacert .dev/tls/ca.crt https://docker.mirror.example.com:8787 busybox

Steps, each printed with its request, status and time:
  ping            GET /v2/ (with ?ns= under --ns): the challenge, and whether
                  its realm points back at the mirror
  login           with --user: the token endpoint with the account (HTTP
                  Basic), as `docker login` does; the password is read from
                  standard input
  token           a pull token for the image from the realm
  manifest HEAD   by tag, as containerd resolves it
  manifest GET    by tag, then by the digest the HEAD named (and the
                  platform's manifest when the tag is an index)
  config HEAD/GET the image configuration: HEAD, then a ranged GET of all of
                  it, checked against its digest
  layer HEAD/GET  the first layer: HEAD, then a ranged GET of its first
                  64 KiB (the whole layer when smaller, then checked)
Redirects are followed as clients follow them (the Authorization header
stays with the mirror's origin); a 401 with a new challenge gets a new
token once, as clients do.

A step answered by one of the route's fallbacks (the mirror asks them when
the route's upstream throttles or fails) says so, with the mirror's
X-Mirror-Source: which fallback, and what the upstream answered; the last
line counts the steps each source answered.

IMAGE is `[PREFIX/]NAME[:TAG][@DIGEST]`, as you would give it to `docker
pull MIRROR/IMAGE`: a path prefix selects the route as it does for docker,
and `--ns REGISTRY` selects it by name as containerd does (hosts.toml
mirrors). The mirror adds Docker Hub's `library/` itself on routes with
`library = true`, as it does for docker.

On a failure it prints `FAIL at STEP: what happened` and `fix: ...`, the
likely cause in words an operator can act on, and exits 1. Exit status 0
only when the pull would succeed; 2 for a usage error.

On a mirror with access keys, give the key with `--key KEY` or as the URL's
path (`https://mirror.example.com/KEY`): every request then goes to
`/KEY/v2/...`, as containerd's hosts.toml sends it, and the output shows the
key's first characters only. A refusal that is the mirror's own (no or a
wrong key, the clients list, a denied User-Agent, the mirror's rate limit)
says so.

`--insecure` allows a plain http URL (for `scripts/dev.sh --http` and test
registries); `--cacert FILE` trusts a local CA besides the system's (the dev
server's DEV_DIR/tls/ca.crt, by default .dev/tls/ca.crt).

Only Python's standard library; nothing is written anywhere.
"""

import argparse
import base64
import getpass
import hashlib
import http.client
import json
import re
import socket
import ssl
import sys
import time
import urllib.parse

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
LAYER_RANGE = 64 * 1024
USER_AGENT = "edge-mirror-check/1 (like docker and containerd)"
KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,}")

README = "README.md"


class Failed(Exception):
    """The pull would fail at `step`: `what` happened, `fix` is what to do."""

    def __init__(self, step, what, fix):
        super().__init__(what)
        self.step, self.what, self.fix = step, what, fix


class Answer:
    def __init__(self, status, headers, body, url, hops):
        self.status = status
        self.headers = headers  # lower-case name -> list of values
        self.body = body
        self.url = url
        self.hops = hops  # [(status, location)] of redirects followed

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def errors(self):
        """The OCI error list of the body, or []."""
        try:
            doc = json.loads(self.body.decode("utf-8"))
            errs = doc.get("errors") if isinstance(doc, dict) else None
            return [e for e in errs if isinstance(e, dict)] if isinstance(errs, list) else []
        except (ValueError, UnicodeDecodeError):
            return []

    def error_text(self):
        """`CODE: message` of the first OCI error, or the start of the body."""
        errs = self.errors()
        if errs:
            e = errs[0]
            return f"{e.get('code', '?')}: {e.get('message', '')}"
        text = self.body[:200].decode("utf-8", "replace").strip()
        return text or "(no body)"


# --- WWW-Authenticate (RFC 7235), read by parameter name ---

TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def parse_challenges(value):
    """[(scheme, {param: value})] of one WWW-Authenticate value: parameters
    in any order, quoted strings with `\\` escapes, commas inside quotes."""
    out, i, n = [], 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        m = TOKEN_RE.match(value, i)
        if not m:
            break
        scheme, i = m.group(0), m.end()
        params = {}
        while True:
            j = i
            while j < n and value[j] in " \t,":
                j += 1
            m = TOKEN_RE.match(value, j)
            k = m.end() if m else j
            while k < n and value[k] in " \t":
                k += 1
            if not m or k >= n or value[k] != "=":
                break  # the next challenge starts here (or a token68 / the end)
            name, k = m.group(0).lower(), k + 1
            while k < n and value[k] in " \t":
                k += 1
            if k < n and value[k] == '"':
                k += 1
                buf = []
                while k < n and value[k] != '"':
                    if value[k] == "\\" and k + 1 < n:
                        k += 1
                    buf.append(value[k])
                    k += 1
                k += 1
                params[name] = "".join(buf)
            else:
                m = TOKEN_RE.match(value, k)
                params[name] = m.group(0) if m else ""
                k = m.end() if m else k
            i = k
        out.append((scheme, params))
    return out


def bearer(answer):
    for value in answer.headers.get("www-authenticate", []):
        for scheme, params in parse_challenges(value):
            if scheme.lower() == "bearer":
                return params
    return None


# --- the walk ---

class Check:
    def __init__(self, a, out=sys.stdout):
        self.a = a
        self.out = out
        self.n = 0
        self.requests = 0
        self.started = time.monotonic()
        # Steps the mirror answered from a fallback: X-Mirror-Source of each.
        self.fallbacks = []
        u = urllib.parse.urlsplit(a.url if "://" in a.url else "https://" + a.url)
        try:
            u.port
        except ValueError:
            raise SystemExit(f"check-mirror: {a.url}: the port is not a number from 0 to 65535") from None
        if u.scheme not in ("http", "https") or not u.hostname:
            raise SystemExit(f"check-mirror: {a.url}: give the mirror as https://HOST[:PORT]")
        if u.scheme == "http" and not a.insecure:
            raise SystemExit(f"check-mirror: {a.url} is plain http; clients use https. "
                             "Add --insecure to check a plain-http server (scripts/dev.sh --http, a test registry)")
        # A mirror with access keys: the key as the URL's path, or --key.
        key = a.key
        path = u.path.strip("/")
        if path:
            if key is not None or not KEY_RE.fullmatch(path):
                raise SystemExit(f"check-mirror: {a.url}: give the mirror without a path (the registry API is at /v2/), "
                                 "or with its access key as the path (https://HOST/KEY)")
            key = path
        if key is not None and not KEY_RE.fullmatch(key):
            raise SystemExit("check-mirror: --key: an access key is 16 or more letters, digits, '-' or '_'")
        self.key = key
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.origin = self.origin_of(f"{u.scheme}://{u.netloc}")
        # Every request goes to /KEY/v2/... as containerd's hosts.toml sends
        # it; the key is shown only by its first characters.
        self.base = f"{u.scheme}://{u.netloc}" + (f"/{key}" if key else "")
        self.shown = f"{u.scheme}://{u.netloc}" + (f"/{key[:4]}…" if key else "")
        self.ctx = ssl.create_default_context()
        if a.cacert:
            self.ctx.load_verify_locations(cafile=a.cacert)
        self.auth = None  # the Authorization header for the mirror's origin
        self.basic = None
        self.name, self.ref = self.parse_image(a.image, u.netloc)
        self.ns = a.ns

    @staticmethod
    def origin_of(url):
        u = urllib.parse.urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        return (u.scheme.lower(), (u.hostname or "").lower(), port)

    @staticmethod
    def parse_image(image, netloc):
        image = image.strip()
        if image.startswith(netloc + "/"):
            image = image[len(netloc) + 1:]
        digest = None
        if "@" in image:
            image, digest = image.split("@", 1)
        tag = None
        last = image.rsplit("/", 1)[-1]
        if ":" in last:
            image, tag = image.rsplit(":", 1)
        if not image or image != image.lower() or image.startswith("/") or "//" in image:
            raise SystemExit(f"check-mirror: {image!r} is not a repository name "
                             "(lower case components separated by /, as in library/busybox or ghcr.io/owner/image)")
        if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise SystemExit(f"check-mirror: {digest!r} is not a sha256 digest")
        return image, (digest or tag or "latest")

    # --- printing ---

    def say(self, text):
        # The access key never printed whole (realms and Locations carry it).
        if self.key:
            text = text.replace(self.key, self.key[:4] + "…")
        print(text, file=self.out, flush=True)

    def short(self, path):
        return re.sub(r"(sha256:[0-9a-f]{12})[0-9a-f]{52}", r"\1…", path)

    def line(self, step, method, path, answer, ms, detail=""):
        self.n += 1
        status = str(answer.status) if answer else "---"
        hops = "".join(f" -> {s} {self.short(loc)}" for s, loc in (answer.hops if answer else []))
        source = answer.header("x-mirror-source") if answer else None
        if source:
            self.fallbacks.append(source)
            detail = (detail + "  " if detail else "") + f"from fallback {source}"
        self.say(f"{self.n:>2} {step:<24} {method:<4} {self.short(path)}{hops}  {status}  {ms:.0f} ms"
                 + (f"  {self.short(detail)}" if detail else ""))

    # --- HTTP ---

    def with_ns(self, path):
        if not self.ns:
            return path
        return path + ("&" if "?" in path else "?") + "ns=" + urllib.parse.quote(self.ns, safe="")

    def fetch(self, step, method, url, headers=None, body=None, follow=True, token=True):
        """One request as a client sends it, following redirects; the
        pull token (token=True) goes only to the mirror's origin. Raises
        Failed for what keeps the request from getting an HTTP answer."""
        hops = []
        for _ in range(11):
            u = urllib.parse.urlsplit(url)
            origin = self.origin_of(url)
            h = {"User-Agent": USER_AGENT}
            h.update(headers or {})
            if token and origin == self.origin and self.auth and "Authorization" not in h:
                h["Authorization"] = self.auth
            if origin != self.origin:
                h.pop("Authorization", None)
            if u.scheme == "https":
                conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=self.a.timeout, context=self.ctx)
            elif u.scheme == "http":
                conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=self.a.timeout)
            else:
                raise Failed(step, f"a redirect led to {url}, which clients cannot fetch",
                             "the upstream redirects to a URL of another scheme; report it to the upstream registry")
            path = u.path or "/"
            if u.query:
                path += "?" + u.query
            self.requests += 1
            try:
                conn.request(method, path, body=body, headers=h)
                r = conn.getresponse()
                data = r.read() if method != "HEAD" else b""
            except Exception as e:  # noqa: BLE001 - every way a request can fail is diagnosed
                conn.close()
                raise self.transport_failure(step, url, e) from None
            conn.close()
            headers_out = {}
            for k, v in r.getheaders():
                headers_out.setdefault(k.lower(), []).append(v)
            answer = Answer(r.status, headers_out, data, url, hops)
            loc = answer.header("location")
            if follow and r.status in (301, 302, 303, 307, 308) and loc:
                url = urllib.parse.urljoin(url, loc)
                hops.append((r.status, url))
                if r.status == 303:
                    method = "GET"
                continue
            return answer
        raise Failed(step, "more than 10 redirects", "the upstream redirects in a loop; report it to the upstream registry")

    def transport_failure(self, step, url, e):
        u = urllib.parse.urlsplit(url)
        where = u.netloc
        mirror = self.origin_of(url) == self.origin
        who = "the mirror" if mirror else f"{where} (a redirect target)"
        if isinstance(e, ssl.SSLCertVerificationError):
            reason = e.verify_message or str(e)
            if "hostname" in reason.lower() or "not valid for" in str(e).lower() or "ip address mismatch" in reason.lower():
                return Failed(step, f"certificate problem: {who}'s TLS certificate does not name {u.hostname} ({reason})",
                              f"the certificate belongs to other names. On Cloudflare, attach {u.hostname} to the worker as a "
                              "custom domain (dashboard: Workers > your worker > Settings > Domains & Routes, or `routes` in "
                              "wrangler.toml) and Cloudflare issues a certificate for it; with scripts/dev.sh, use a host name "
                              "of the route table, localhost or 127.0.0.1 (its certificate names those)")
            return Failed(step, f"certificate problem: {who}'s TLS certificate is not trusted ({reason})",
                          "a certificate signed by a CA this machine does not trust. For scripts/dev.sh pass its CA: "
                          "--cacert .dev/tls/ca.crt (DEV_DIR/tls/ca.crt), and trust it in your clients as the README's "
                          "\"Trying it locally\" says; on Cloudflare, a new custom domain's certificate takes a few minutes "
                          "to be issued: wait and retry; behind a TLS-intercepting proxy, pass its CA with --cacert")
        if isinstance(e, ssl.SSLError):
            return Failed(step, f"{who} at {where} did not complete a TLS handshake ({e.reason or e})",
                          f"nothing speaks TLS at {where}: if it serves plain http (scripts/dev.sh --http, a test "
                          "registry), use an http:// URL with --insecure; otherwise check the port")
        if isinstance(e, socket.gaierror):
            return Failed(step, f"the name {u.hostname} ({who}) does not resolve ({e.strerror or e})",
                          f"no DNS record for {u.hostname}: attaching it to the worker as a custom domain creates one "
                          "(the zone must be on Cloudflare); check the spelling; for scripts/dev.sh map the name to its "
                          "address in /etc/hosts")
        if isinstance(e, ConnectionRefusedError):
            return Failed(step, f"{where} ({who}) refused the connection: nothing listens there",
                          "check the URL's host and port; for scripts/dev.sh check that it runs and on which --ip and "
                          "--port (default 127.0.0.1:8787)")
        if isinstance(e, (socket.timeout, TimeoutError)):
            return Failed(step, f"{who} at {where} did not answer within {self.a.timeout:g} s",
                          "check that the host is reachable from here (firewall, proxy) and that the URL is the mirror")
        if isinstance(e, (http.client.RemoteDisconnected, http.client.BadStatusLine, ConnectionResetError)):
            hint = ("it may speak only TLS: use an https:// URL" if u.scheme == "http"
                    else "check that the URL is the mirror and the port is right")
            return Failed(step, f"{who} at {where} closed the connection without an HTTP answer ({type(e).__name__})", hint)
        return Failed(step, f"{who} at {where}: {type(e).__name__}: {e}", "check the URL and that the server is up")

    def timed(self, step, method, path, headers=None, follow=True, url=None):
        t = time.monotonic()
        try:
            answer = self.fetch(step, method, url or self.base + path, headers=headers, follow=follow)
        except Failed:
            self.line(step, method, path, None, (time.monotonic() - t) * 1000, "no answer")
            raise
        return answer, (time.monotonic() - t) * 1000

    # --- diagnosis of an HTTP answer ---

    def diagnose(self, step, answer, method, path):
        """Raises Failed naming the cause of an error answer."""
        if method == "HEAD" and not answer.body and answer.status >= 400:
            # A HEAD has no body; the same request as GET says why.
            again, ms = self.timed(step + " (as GET)", "GET", path)
            self.line(step + " (as GET)", "GET", path, again, ms, again.error_text() if again.status >= 400 else "")
            if again.status >= 400:
                answer = again
        s = answer.status
        errs = answer.errors()
        code = errs[0].get("code", "") if errs else ""
        message = errs[0].get("message", "") if errs else ""
        text = answer.error_text()
        name = self.name

        # The mirror asked the route's fallbacks and none had it: what each said.
        tried = message.split("; fallbacks tried: ", 1)[1] if "; fallbacks tried: " in message else ""
        if tried:
            message = message.split("; fallbacks tried: ", 1)[0]
            raise Failed(step, f"{s} from the route's upstream ({message.rsplit(': ', 1)[-1]}), and no fallback had it "
                         f"either ({tried})",
                         "the fallbacks are copies: a cache (mirror.gcr.io) has only the images it has cached and answers "
                         "404 for the rest, ECR Public's copy only Docker's official images; a tag may lag. Pull by a name "
                         "they carry, retry after the upstream's Retry-After, or give the route an account of its own "
                         "(credentials = \"NAME\" and allow = [...], `npx wrangler secret put NAME`; README: "
                         "\"Running a public mirror\")")

        # The mirror's own refusals (its access keys, clients list, agents and
        # rate limit), made before any registry was asked.
        own = "; this refusal is the mirror's own, before any registry was asked"
        if "reached with its access key in the URL" in message:
            if self.key:
                raise Failed(step, f"{s}, the mirror does not accept this access key ({self.key[:4]}…)",
                             "the key is not, or no longer, in the secret that access = \"NAME\" names in routes.toml: "
                             "compare it with the secret's value (comma-separated keys; `npx wrangler secret put NAME`)" + own)
            raise Failed(step, f"{s}, the mirror needs an access key",
                         "this mirror has access = \"NAME\" in routes.toml: give the key with --key KEY or as the URL's "
                         "path (https://HOST/KEY); clients carry it as README \"Keeping a public mirror yours\" shows" + own)
        if s == 503 and "access keys secret" in message:
            raise Failed(step, "503, the mirror's access keys secret is not set or holds something that is not keys",
                         "set the secret that access = \"NAME\" names in routes.toml: `npx wrangler secret put NAME` with "
                         "comma-separated keys of 16 or more letters, digits, '-' or '_' (`openssl rand -hex 16`)" + own)
        if s == 403 and "does not serve this User-Agent" in message:
            raise Failed(step, f"403, the mirror refuses the User-Agent {USER_AGENT!r}",
                         "a deny_agents entry in routes.toml matches it (the default list names scanners only): "
                         "remove the entry, or set deny_agents = [] to turn the list off" + own)
        if s == 403 and "clients list allows" in message:
            seen = message.rsplit(": ", 1)[-1]
            raise Failed(step, f"403, the mirror's clients list does not include this client ({seen})",
                         "add the client's address range (\"203.0.113.0/24\", \"2001:db8::/32\") or its country "
                         "(\"country:DE\") to clients = [...] in routes.toml, rebuild and deploy; Cloudflare sees the "
                         "address in CF-Connecting-IP, which may be a proxy's or NAT's" + own)
        if s == 429 and "mirror's own request limit" in message:
            retry = answer.header("retry-after")
            raise Failed(step, "429, the mirror's own per-client request limit (its rate_limit binding, not the registry's)"
                         + (f" (Retry-After: {retry} s)" if retry else ""),
                         "wait for Retry-After; the limit is the [[ratelimits]] binding's simple = { limit, period } in "
                         "wrangler.toml, counted per client address for manifests and blobs: raise it there" + own)

        if s == 429:
            retry = answer.header("retry-after")
            after = f" (Retry-After: {retry} s)" if retry else ""
            if "pull rate limit" in message.lower():
                raise Failed(step, f"429, the upstream registry's pull rate limit was reached{after}",
                             "anonymous pulls through a Worker share Cloudflare's addresses, and their limit runs out fast. "
                             "Give the route an account: credentials = \"NAME\" and allow = [...] in routes.toml, then "
                             "`npx wrangler secret put NAME` with user:token of a registry account (a paid Docker Hub account "
                             "lifts the limit); clients that log in (--user) use their own account's limit. README: "
                             "\"Running a public mirror\"")
            if "limiting requests from this mirror's address" in message:
                raise Failed(step, f"429, the upstream registry limits requests from the mirror's address{after}",
                             "the upstream's per-address request limit, not the pull limit: retry after Retry-After; a "
                             "credentials secret (README: \"Running a public mirror\") makes the upstream count an account "
                             "instead of the shared address; add Cloudflare rate limiting in front if a few clients cause it")
            raise Failed(step, f"429 too many requests{after}: {text}",
                         "retry after Retry-After; if it recurs, see README \"Running a public mirror\" (credentials secret)")

        if s == 403 and code == "DENIED" and "does not serve the repository" in message:
            raise Failed(step, f"403, the route's allow list does not include {message.rsplit(': ', 1)[-1]}",
                         "the route serves only the repositories its allow list names. Add the repository as the "
                         "upstream names it (\"owner/image\", or \"owner/*\" for all of owner's) to that route's "
                         "allow = [...] in routes.toml, rebuild and deploy (npx wrangler deploy); or pull a repository "
                         "the list allows")

        if s == 404 and code == "NAME_UNKNOWN" and "no route of this mirror serves the registry named by ns" in message:
            raise Failed(step, f"404, no route of the mirror has the registry name (ns) {self.ns}",
                         f"containerd names the registry by its certs.d directory (/etc/containerd/certs.d/{self.ns}/"
                         f"hosts.toml) and the mirror serves only names of its table: add registry = \"{self.ns}\" to the "
                         "route for that upstream in routes.toml (or a route for it), rebuild and deploy; or fix the "
                         "directory's name")
        if s == 404 and code == "NAME_UNKNOWN" and "no route of this mirror serves this name on this host" in message:
            first = name.split("/", 1)[0]
            raise Failed(step, f"404, no route on {self.host} has the prefix {first}",
                         f"{first!r} looks like a registry name but no route on {self.host} has prefix = \"{first}\": add "
                         f"prefix = \"{first}\" to the route for that registry and {self.host} to its hosts in routes.toml, "
                         "rebuild and deploy; or drop the prefix to pull from the host's own route")
        if s == 404 and code == "NAME_UNKNOWN" and ("no mirror is configured for this host" in message
                                                    or "no route of this mirror has the registry name" in message):
            raise Failed(step, f"404, no route of the mirror for {message.rsplit(': ', 1)[-1]}",
                         f"add {self.host} to a route's hosts in routes.toml (or set default = true on one route), "
                         "rebuild and deploy")

        if s in (502, 504) and code == "UNAVAILABLE":
            upstream = message.rsplit(": ", 1)[-1] if ": " in message else "the upstream"
            late = " in time" if s == 504 else ""
            raise Failed(step, f"{s}, the mirror could not reach the upstream {upstream}{late}",
                         f"the worker's fetch of {upstream} failed. Check that route's upstream (and realm) in routes.toml: "
                         "https://, the registry's API host, no path; that the registry is up; and that it is reachable "
                         "from the internet (Cloudflare cannot reach private or loopback addresses). A 502 also comes from "
                         "an upstream that redirects to a URL the worker cannot fetch or in a loop")
        if s == 503 and code == "UNAVAILABLE" and "credentials secret" in message:
            secret = message.rsplit(": ", 1)[-1]
            raise Failed(step, f"503, the route's credentials secret {secret} is not set (or not user:token)",
                         f"set it: `npx wrangler secret put {secret}` with the value user:token (dashboard: Workers > your "
                         f"worker > Settings > Variables and Secrets); for scripts/dev.sh put {secret}=user:token in .dev.vars")

        if s == 401 and step in ("login", "token") and self.basic:
            raise Failed(step, f"401, the upstream's token server refused the login of {self.a.user}",
                         "check the user name and password (for Docker Hub a personal access token works as the password); "
                         "the mirror passes them to the upstream's token server unchanged")
        if s == 401:
            raise Failed(step, f"401, the upstream refused access to {name}",
                         f"the repository does not exist or needs credentials (Docker Hub answers 401 for both). Check the "
                         "name (Docker Hub's official images are library/NAME; the mirror adds library/ on routes with "
                         "library = true); for a private repository log in (--user, docker login) or give the route a "
                         "credentials secret with an allow list (README: \"Running a public mirror\")")
        if s == 404 and code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"):
            what = f"tag or manifest {self.ref}" if step.startswith("manifest") else "such blob"
            raise Failed(step, f"404 {code}, the upstream has no {what} in {name}",
                         "the upstream registry answered: check the repository name and the tag (they are the upstream's, "
                         "after the route's prefix is removed)")
        raise Failed(step, f"{s} from the mirror: {text}", "see README \"What the mirror serves\" for what this answer means")

    # --- the steps ---

    def ping(self):
        path = self.with_ns("/v2/")
        answer, ms = self.timed("ping", "GET", path, follow=False)
        api = answer.header("docker-distribution-api-version")
        json_body = (answer.header("content-type") or "").startswith("application/json")
        if answer.status == 200 and (api or json_body):
            self.line("ping", "GET", path, answer, ms, "no authentication asked")
            return None
        if answer.status == 401:
            ch = bearer(answer)
            if ch is None or "realm" not in ch:
                schemes = ", ".join(answer.headers.get("www-authenticate", [])) or "none"
                self.line("ping", "GET", path, answer, ms, f"challenge: {schemes}")
                raise Failed("ping", f"the /v2/ challenge is not a Bearer challenge with a realm ({schemes})",
                             "this is not how the mirror answers: the URL reaches another server (check the domain's "
                             "custom domain or route), or the route's upstream uses no token auth")
            realm = ch["realm"]
            mine = self.origin_of(realm) == self.origin
            where = "this mirror" if mine else "NOT this mirror"
            self.line("ping", "GET", path, answer, ms, f"realm {realm} ({where})"
                      + (f", service {ch['service']}" if "service" in ch else ""))
            if not mine:
                raise Failed("ping", f"the realm in the /v2/ challenge is {realm}, which does not point at the mirror "
                                     f"({self.shown})",
                             "clients would fetch tokens from there directly, around the mirror. Either the URL reaches "
                             "the upstream registry or another mirror, not this worker (check the domain's custom domain "
                             "or DNS record), or something in front of the worker rewrites the Host header (the worker "
                             "names the host it was asked for)")
            return ch
        if answer.status >= 400 and answer.errors():
            self.line("ping", "GET", path, answer, ms, answer.error_text())
            self.diagnose("ping", answer, "GET", path)
        ctype = answer.header("content-type") or "no content type"
        self.line("ping", "GET", path, answer, ms, f"not a registry answer ({ctype})")
        raise Failed("ping", f"{self.shown}/v2/ does not answer as a registry ({answer.status}, {ctype}, "
                             f"no Docker-Distribution-API-Version)",
                     "the URL reaches some other web server: check that the domain is attached to the worker as a custom "
                     "domain (or a route in wrangler.toml) and that it is the mirror's address and port")

    def token_url(self, ch, scopes, account=None):
        q = []
        if ch.get("service"):
            q.append(("service", ch["service"]))
        for s in scopes:
            q.append(("scope", s))
        if account:
            q.append(("account", account))
        realm = ch["realm"]
        return realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(q)

    def get_token(self, step, ch, scopes):
        url = self.token_url(ch, scopes, self.a.user)
        headers = {"Authorization": "Basic " + self.basic} if self.basic else {}
        display = urllib.parse.unquote(url[len(self.base):] if url.startswith(self.base) else url)
        t = time.monotonic()
        try:
            answer = self.fetch(step, "GET", url, headers=headers, token=False)
        except Failed:
            self.line(step, "GET", display, None, (time.monotonic() - t) * 1000, "no answer")
            raise
        ms = (time.monotonic() - t) * 1000
        if answer.status != 200:
            self.line(step, "GET", display, answer, ms, answer.error_text())
            self.diagnose(step, answer, "GET", url)
        try:
            doc = json.loads(answer.body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            self.line(step, "GET", display, answer, ms, "no token in the answer")
            raise Failed(step, "the token endpoint answered 200 without a token",
                         "the realm does not answer as a registry token server: check the route's realm in routes.toml")
        who = f"as {self.a.user}" if self.basic else "anonymous"
        self.line(step, "GET", display, answer, ms, f"{who} token for {' '.join(scopes) or 'no scope'}")
        self.auth = "Bearer " + token

    def login(self, ch):
        # As `docker login`: the account, no scope.
        self.get_token("login", ch, [])
        self.auth = None

    def api(self, step, method, path, headers=None, ok=(200,), retried=False):
        """A registry API request; on a 401 with a Bearer challenge, one new
        token for the challenge's scope and one retry, as clients do."""
        full = self.with_ns(path)
        answer, ms = self.timed(step, method, full, headers=headers)
        if answer.status == 401 and not retried:
            ch = bearer(answer)
            if ch and ch.get("realm"):
                self.line(step, method, full, answer, ms, "challenge: a token for " + (ch.get("scope") or "no scope"))
                if self.origin_of(ch["realm"]) != self.origin:
                    raise Failed(step, f"the realm in the challenge is {ch['realm']}, which does not point at the mirror",
                                 "clients would fetch tokens around the mirror: the URL reaches another server, or a "
                                 "proxy in front of the worker rewrites the Host header")
                scopes = [s for s in (ch.get("scope") or "").split(" ") if s] or [f"repository:{self.name}:pull"]
                self.get_token("token", ch, scopes)
                return self.api(step, method, path, headers, ok, retried=True)
        if answer.status not in ok:
            self.line(step, method, full, answer, ms, answer.error_text() if method != "HEAD" else "")
            self.diagnose(step, answer, method, full)
        return answer, ms, full

    def manifest(self, step, ref, want_digest=None):
        answer, ms, full = self.api(step, "GET", f"/v2/{self.name}/manifests/{ref}", {"Accept": ACCEPT})
        body = answer.body
        got = "sha256:" + hashlib.sha256(body).hexdigest()
        if want_digest and got != want_digest:
            self.line(step, "GET", full, answer, ms, f"{len(body)} B, digest {got}")
            raise Failed(step, f"the manifest's bytes do not match its digest ({got} instead of {want_digest})",
                         "something between the upstream and this client changed the body (a proxy or transform rule in "
                         "front of the worker), or the upstream is broken")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        mtype = (doc or {}).get("mediaType") if isinstance(doc, dict) else None
        mtype = mtype or (answer.header("content-type") or "").split(";")[0].strip()
        if not isinstance(doc, dict) or mtype not in INDEX_TYPES + MANIFEST_TYPES:
            self.line(step, "GET", full, answer, ms, f"{len(body)} B, not an image manifest")
            raise Failed(step, f"the answer is not an image manifest or index ({mtype or 'no media type'}: "
                               f"{body[:80].decode('utf-8', 'replace')!r})",
                         "clients cannot use it: check that the URL and route reach a registry, and that the tag names "
                         "an image (not a Docker schema 1 manifest, which current clients refuse)")
        self.line(step, "GET", full, answer, ms, f"{len(body)} B {mtype}, digest {got}"
                  + (" (matches)" if want_digest else ""))
        return doc, mtype, got

    def blob(self, what, desc, whole):
        digest, size = desc.get("digest", ""), desc.get("size")
        path = f"/v2/{self.name}/blobs/{digest}"
        answer, ms, full = self.api(f"{what} HEAD", "HEAD", path)
        length = answer.header("content-length")
        self.line(f"{what} HEAD", "HEAD", full, answer, ms, f"{length} B" if length else "")
        if isinstance(size, int) and length and int(length) != size:
            raise Failed(f"{what} HEAD", f"the blob's length is {length} B, the manifest says {size} B",
                         "something between the upstream and this client changes blobs, or the upstream is broken")
        end = (size if isinstance(size, int) and whole else min(size or LAYER_RANGE, LAYER_RANGE)) - 1
        answer, ms, full = self.api(f"{what} GET", "GET", path, {"Range": f"bytes=0-{end}"}, ok=(200, 206))
        body = answer.body
        detail = f"Range bytes=0-{end}: {len(body)} B"
        note = ""
        if answer.status == 200 and isinstance(size, int) and end + 1 < size:
            note = "; the Range was ignored (resumed downloads start over)"
        if answer.status == 206:
            cr = answer.header("content-range") or ""
            detail += f" ({cr})"
        full_body = answer.status == 200 or (isinstance(size, int) and len(body) == size)
        if full_body and isinstance(size, int) and len(body) >= size:
            got = "sha256:" + hashlib.sha256(body[:size]).hexdigest()
            if got != digest:
                self.line(f"{what} GET", "GET", full, answer, ms, detail + ", digest MISMATCH")
                raise Failed(f"{what} GET", f"the blob's bytes do not match its digest ({got} instead of {digest})",
                             "something between the upstream and this client changed the body (a proxy or transform "
                             "rule in front of the worker), or the upstream is broken")
            detail += ", digest matches"
        self.line(f"{what} GET", "GET", full, answer, ms, detail + note)

    def run(self):
        if self.a.user is not None:
            if sys.stdin.isatty():
                pw = getpass.getpass(f"password for {self.a.user}: ")
            else:
                pw = sys.stdin.readline().rstrip("\r\n")
            self.basic = base64.b64encode(f"{self.a.user}:{pw}".encode()).decode()
        sel = f" (ns={self.ns})" if self.ns else ""
        self.say(f"check-mirror: pulling {self.name}:{self.ref}{sel} through {self.shown}"
                 if not self.ref.startswith("sha256:") else
                 f"check-mirror: pulling {self.name}@{self.ref}{sel} through {self.shown}")
        ch = self.ping()
        if ch is not None:
            if self.basic:
                self.login(ch)
            self.get_token("token", ch, [f"repository:{self.name}:pull"])
        if self.ref.startswith("sha256:"):
            digest = self.ref
        else:
            path = f"/v2/{self.name}/manifests/{self.ref}"
            answer, ms, full = self.api("manifest HEAD", "HEAD", path, {"Accept": ACCEPT})
            digest = answer.header("docker-content-digest")
            ctype = answer.header("content-type") or ""
            self.line("manifest HEAD", "HEAD", full, answer, ms,
                      f"{digest or 'no Docker-Content-Digest'} {ctype}".strip())
            self.manifest("manifest GET", self.ref, want_digest=digest)
            if not digest:
                raise Failed("manifest HEAD", "the manifest HEAD named no Docker-Content-Digest",
                             "containerd resolves tags by this header: the URL does not reach a registry, or something "
                             "in front of the worker drops response headers")
        doc, mtype, _ = self.manifest("manifest GET by digest", digest, want_digest=digest)
        if mtype in INDEX_TYPES:
            want = self.a.platform.split("/")
            chosen = None
            for m in doc.get("manifests", []):
                p = m.get("platform") or {}
                if [p.get("os"), p.get("architecture")] + ([p.get("variant")] if len(want) > 2 else []) == want:
                    chosen = m
                    break
            if chosen is None:
                plats = ", ".join(f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                                  for m in doc.get("manifests", []))
                raise Failed("manifest GET by digest", f"the index has no manifest for {self.a.platform} (it has {plats})",
                             "pass --platform OS/ARCH with one the image provides")
            doc, mtype, _ = self.manifest(f"{self.a.platform} manifest", chosen["digest"], want_digest=chosen["digest"])
        config = doc.get("config")
        if not isinstance(config, dict) or "digest" not in config:
            raise Failed("manifest GET", "the manifest names no config blob",
                         "not an image manifest clients can run; check the tag")
        self.blob("config", config, whole=True)
        layers = doc.get("layers") or []
        if layers:
            self.blob("layer", layers[0], whole=False)
        took = (time.monotonic() - self.started) * 1000
        self.say(f"OK: the pull would succeed ({self.requests} requests, {took:.0f} ms)")
        if self.fallbacks:
            counts = {}
            for source in self.fallbacks:
                counts[source] = counts.get(source, 0) + 1
            each = "; ".join(f"{n} from fallback {source}" for source, n in counts.items())
            self.say(f"sources: {self.n - len(self.fallbacks)} steps from the mirror and the route's upstream, {each}: "
                     "the route's upstream is throttling or failing, and the mirror is serving from its fallbacks")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="check-mirror.py",
        description="Walks one pull through a running mirror as a client does; names the failing step and the fix.",
        epilog="Exit status: 0 when the pull would succeed, 1 when it would not, 2 for a usage error.")
    ap.add_argument("url", metavar="URL", help="the mirror, https://HOST[:PORT]")
    ap.add_argument("image", metavar="IMAGE", help="[PREFIX/]NAME[:TAG][@DIGEST], as after MIRROR/ in docker pull")
    ap.add_argument("--ns", metavar="REGISTRY", help="select the route by registry name, as containerd's ?ns= does")
    ap.add_argument("--user", metavar="USER", help="log in first with this account; the password is read from standard input")
    ap.add_argument("--insecure", action="store_true", help="allow a plain http URL")
    ap.add_argument("--cacert", metavar="FILE", help="also trust this CA (the dev server's DEV_DIR/tls/ca.crt)")
    ap.add_argument("--platform", default="linux/amd64", metavar="OS/ARCH[/VARIANT]",
                    help="the manifest to pick from an index (default linux/amd64)")
    ap.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)")
    ap.add_argument("--key", metavar="KEY", help="the mirror's access key (or give it as the URL's path, https://HOST/KEY)")
    a = ap.parse_args(argv)
    try:
        if a.cacert:
            try:
                open(a.cacert, "rb").close()
            except OSError as e:
                raise SystemExit(f"check-mirror: --cacert {a.cacert}: {e.strerror}")
        if a.timeout <= 0:
            raise SystemExit("check-mirror: --timeout must be positive")
        check = Check(a)
    except SystemExit as e:
        print(e.code, file=sys.stderr)
        return 2
    try:
        check.run()
    except Failed as f:
        check.say(f"FAIL at {f.step}: {f.what}")
        check.say(f"fix: {f.fix}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
