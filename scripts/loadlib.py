"""Shared parts of the benchmark (scripts/bench.py) and the soak
(scripts/soak.py): the nginx upstream fixture, the worker under plain
`workerd serve`, bounded wrk runs (bench/load.lua), and CPU and memory readings from /proc.

Everything listens on 127.0.0.0/8 and is stopped by PID when done.
"""

import collections
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERD = os.path.join(ROOT, "node_modules", ".bin", "workerd")
UPSTREAM = "127.0.0.20:16001"
MIRROR_HOST = "docker.bench.test"
COMPAT_DATE = "2026-04-01"
TICK = os.sysconf("SC_CLK_TCK")


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(host, port, proc, what, timeout=60, step=0.005):
    # `step`: the pause between tries. The benchmark's cold start passes a
    # short one: with 5 ms, spawn-to-first-answer came out as 19 or 24 ms
    # for the same worker, whichever side of a try it landed.
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if port_open(host, port):
            return
        time.sleep(step)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout}s")


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def build_worker(features=None, routes="bench/routes.bench.toml", memo=True, out=None):
    """The worker built from the current sources (a planner in a folder of
    its own under target/, never dist/), then the deploy build with the
    route table `routes` into `out` (default build/). memo=False: the entry
    runs the planner on every request (no memo of repeated actions;
    src/edge.js)."""
    variant = ("memo" if memo else "nomemo") + ("-" + re.sub(r"[^\w]+", "-", features) if features else "")
    dist = os.path.join(ROOT, "target", f"dist-{variant}")
    out = out or os.path.join(ROOT, "build")
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, EDGE_MEMO="1" if memo else "0")
    args = ["bash", "scripts/build-worker.sh", "--from-source", "--dist", dist, "--table", routes, "--out", out]
    if features:
        args += ["--features", features]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"build failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")


# A built worker's modules, as `wrangler deploy` uploads them: the entry,
# the planner, and the deploy build's route table and page (a build from
# before the table was data has only the first two).
MODULES = (("index.js", "esModule"), ("index_bg.wasm", "wasm"), ("table.bin", "data"), ("page.html", "text"))


def worker_modules(build, dest):
    """Copies a build's modules into `dest`; returns workerd's `modules` list."""
    out = []
    for name, kind in MODULES:
        if os.path.exists(os.path.join(build, name)):
            shutil.copy(os.path.join(build, name), dest)
            out.append(f'(name = "{name}", {kind} = embed "{name}")')
    return ", ".join(out)


class Upstream:
    """nginx serving a manifest, a blob (via a 307 to its CDN server) and
    token and challenge answers; see bench/nginx.conf."""

    def __init__(self, workdir, blob_bytes=64 * 1024):
        self.dir = workdir
        blob = hashlib.sha256(b"bench").digest() * (blob_bytes // 32)
        self.blob_digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        self.blob = blob
        os.makedirs(os.path.join(workdir, "blobs"), exist_ok=True)
        with open(os.path.join(workdir, "blobs", self.blob_digest), "wb") as f:
            f.write(blob)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                          "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                               "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                           "size": len(blob), "digest": self.blob_digest}]}).encode()
        self.manifest = manifest
        self.manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        with open(os.path.join(workdir, "manifest.json"), "wb") as f:
            f.write(manifest)
        conf = open(os.path.join(ROOT, "bench", "nginx.conf")).read()
        conf = conf.replace("@DIR@", workdir).replace("@MANIFEST_DIGEST@", self.manifest_digest)
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["nginx", "-g", "daemon off;", "-c", self.conf, "-e", os.path.join(workdir, "nginx-error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port("127.0.0.20", 16001, self.proc, "nginx")
        wait_port("127.0.0.21", 16002, self.proc, "nginx")
        wait_port("127.0.0.22", 16003, self.proc, "nginx")

    def access_log(self):
        """nginx's log lines so far (bench/nginx.conf's `sub` format)."""
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def close(self):
        stop(self.proc)


WORKERD_CONFIG = """using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
{v8flags}  sockets = [(name = "http", address = "{addr}", http = (), service = "main")],{extensions}
);
const worker :Workerd.Worker = (
  modules = [{modules}],
  bindings = [{bindings}],
  compatibilityDate = "{date}",
);
"""


# Seed 002 (the JavaScript mirror worker most copied, as a blog post that
# runs it as a Cloudflare Snippet): read from the seed file at bench time,
# never copied into the project. SEEDS may point elsewhere.
SEEDS = os.environ.get("SEEDS", os.path.join(ROOT, "..", "shared", "seeds"))


def seed002_script():
    """Seed 002's worker as its post gives it, configured as its users do:
    CUSTOM_DOMAIN set to the benchmark's domain and Docker Hub's address
    pointed at the benchmark's upstream. Nothing else is changed."""
    names = [n for n in os.listdir(SEEDS) if n.startswith("002_")] if os.path.isdir(SEEDS) else []
    if not names:
        raise RuntimeError(f"seed 002 is not in {SEEDS}; set SEEDS to the folder of the seed documents")
    text = open(os.path.join(SEEDS, names[0])).read()
    m = re.search(r"```javascript\n(.*?)```", text, re.S)
    if not m:
        raise RuntimeError(f"no ```javascript block in {names[0]}")
    code = m.group(1)
    for old, new in (("const CUSTOM_DOMAIN = 'your.domains'", "const CUSTOM_DOMAIN = 'bench.test'"),
                     ("const dockerHub = 'https://registry-1.docker.io'", f"const dockerHub = 'http://{UPSTREAM}'")):
        if old not in code:
            raise RuntimeError(f"seed 002 has no {old!r} to configure")
        code = code.replace(old, new, 1)
    return code


# The benchmark's requests (scripts/bench.py, scripts/profile.py): the
# access contender's key, and what every request carries.
# The key (any of the form: 16 or more of A-Z a-z 0-9 _ -).
BENCH_KEY = "bench-key-0123456789abcdef"
# A second key, for a secret holding two (clients moving from one key to
# the next): the bench's kind ping-two-keys.
BENCH_KEY2 = "bench-key-fedcba9876543210"
# The client address every request carries (inside the access table's list).
CLIENT_IP = "203.0.113.9"
# The User-Agent every request carries: Docker Engine 24's, as dockerd sends it.
CLIENT_AGENT = ("docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0-13-amd64 os/linux arch/amd64 "
                "UpstreamClient(Docker-Client/24.0.7 \\(linux\\))")


# A Rate Limiting binding ([[ratelimits]]: `limit` requests per key per
# `period` seconds) for a Workerd: workerd has no implementation of its
# own, so it gets miniflare's (the one `wrangler dev` runs: an in-memory
# count per key, installed with wrangler by npm ci). Cloudflare's is the
# runtime's own; this one is what the call costs a worker at least.
RateLimit = collections.namedtuple("RateLimit", "limit period")
RATELIMIT_MODULE = os.path.join(ROOT, "node_modules", "miniflare", "dist", "src", "workers", "ratelimit", "ratelimit.worker.js")


# A command that workerd runs under (scripts/icount.py: valgrind's
# callgrind, counting the instructions it executes).
WRAP = []
# V8's flags for every workerd started (scripts/tierup.py: --trace-opt;
# scripts/profile.py: --perf-basic-prof).
V8_FLAGS = []

# The module a Workerd with gc_hook=True starts in front of the worker's own
# (scripts/bench.py --gc-bounds): a request for /__gc runs a full garbage
# collection and answers 204; every other request goes to the worker as it
# is. It is the same in front of every contender: each request pays for
# reading its URL once more and one comparison, alike for all.
GC_HOOK = """import worker from "./{main}";
export default {{
  fetch(request, env, ctx) {{
    if (request.url.endsWith("/__gc")) {{
      gc();
      return new Response(null, {{ status: 204 }});
    }}
    return worker.fetch(request, env, ctx);
  }},
}};
"""
GC_PATH = "/__gc"


class Workerd:
    """One worker under plain `workerd serve` (no wrangler proxy, inspector or
    logging in the way). kind is "rust" (the build in `build`, default
    build/), "seed002" (seed002_script()), or a JavaScript worker under
    bench/: "js" (baseline.js), "floor" (floor.js), or "rung1" to "rung4"
    (floor.js with RUNG = N)."""

    SCRIPTS = {"js": "baseline.js", "floor": "floor.js"}

    def __init__(self, workdir, kind, addr, bindings=None, cpu=None, build=None, name=None, gc_hook=False):
        self.kind = kind
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        d = os.path.join(workdir, f"workerd-{name or kind}")
        os.makedirs(d, exist_ok=True)
        if kind == "rust":
            modules = worker_modules(build or os.path.join(ROOT, "build"), d)
        elif kind == "seed002":
            with open(os.path.join(d, "seed002.js"), "w") as f:
                f.write(seed002_script())
            modules = '(name = "seed002.js", esModule = embed "seed002.js")'
        elif kind.startswith("rung"):
            script = "floor.js"
            text = open(os.path.join(ROOT, "bench", script)).read()
            with open(os.path.join(d, script), "w") as f:
                f.write(text.replace("const RUNG = 0;", f"const RUNG = {int(kind[4:])};", 1))
            modules = f'(name = "{script}", esModule = embed "{script}")'
        else:
            script = self.SCRIPTS[kind]
            shutil.copy(os.path.join(ROOT, "bench", script), d)
            modules = f'(name = "{script}", esModule = embed "{script}")'
        flags = list(V8_FLAGS)
        if gc_hook:
            # In front of the worker's main module (the first listed).
            main = re.search(r'name = "([^"]+)"', modules).group(1)
            with open(os.path.join(d, "gc_hook.js"), "w") as f:
                f.write(GC_HOOK.format(main=main))
            modules = '(name = "gc_hook.js", esModule = embed "gc_hook.js"), ' + modules
            flags.append("--expose-gc")
        v8flags = f"  v8Flags = [{', '.join(json.dumps(x) for x in flags)}],\n" if flags else ""
        self.config = os.path.join(d, "config.capnp")
        items, extensions = [], ""
        for k, v in (bindings or {}).items():
            if isinstance(v, RateLimit):
                # As miniflare wires its own: a wrapped binding over an
                # internal module, configured by JSON inner bindings.
                shutil.copy(RATELIMIT_MODULE, os.path.join(d, "ratelimit.worker.js"))
                extensions = ('\n  extensions = [(modules = [(name = "bench-internal:ratelimit", '
                              'esModule = embed "ratelimit.worker.js", internal = true)])],')
                inner = f'(name = "namespaceId", json = "\\"{k}\\""), (name = "limit", json = "{v.limit}"), (name = "period", json = "{v.period}")'
                items.append(f'(name = "{k}", wrapped = (moduleName = "bench-internal:ratelimit", innerBindings = [{inner}]))')
            else:
                items.append(f'(name = "{k}", text = "{v}")')
        with open(self.config, "w") as f:
            f.write(WORKERD_CONFIG.format(addr=addr, modules=modules, bindings=", ".join(items), date=COMPAT_DATE, v8flags=v8flags,
                                          extensions=extensions))
        self.log = open(os.path.join(d, "workerd.log"), "w")
        self.started = time.time()
        cmd = WRAP + [WORKERD, "serve", self.config]
        if cpu is not None:
            # On a CPU of its own, away from the load generator and nginx.
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.host, self.port, self.proc, f"workerd ({name or kind})", step=0.0005)

    def cpu_seconds(self):
        """utime + stime of the workerd process (and its threads)."""
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def cpu_ns(self):
        """CPU time of the workerd process in ns: the sum over its threads of
        the scheduler's run time (/proc/PID/task/*/schedstat), where
        cpu_seconds() counts in clock ticks (10 ms at 100 Hz), too coarse
        for a slice of a few hundred milliseconds."""
        total = 0
        base = f"/proc/{self.proc.pid}/task"
        for tid in os.listdir(base):
            try:
                total += int(open(f"{base}/{tid}/schedstat").read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass  # a thread that ended between the listing and the read
        return total

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def close(self):
        stop(self.proc)
        self.log.close()


# The request kinds: (method, path, extra headers, expected status, body).
AUTH = {"Authorization": "Bearer bench-token"}
MANIFEST = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
FORM = "grant_type=password&username=u&password=p&service=bench&scope=repository%3Aapp%3Apull"


def kinds(blob_digest, two_keys=False):
    """The request kinds by name. With `two_keys`, also ping-two-keys: the
    ping by clients holding either of two keys, taking turns (a mirror whose
    clients move from one key to the next). Each 401's realm carries its own
    key, so the entry's kept challenge misses every time. It means something
    only to a worker whose secret holds both keys (bench.py puts one key on
    each path), so the soak and the profiles never see it."""
    out = {
        # /v2/ without credentials: answered by the worker, no subrequest.
        "local-401": ("GET", "/v2/", {}, 401, None),
        # /v2/ with credentials: forwarded.
        "ping-auth": ("GET", "/v2/", AUTH, 200, None),
        "token-get": ("GET", "/token?service=bench&scope=repository%3Aapp%3Apull", {}, 200, None),
        "token-post": ("POST", "/token", {"Content-Type": "application/x-www-form-urlencoded"}, 200, FORM),
        "manifest-head": ("HEAD", "/v2/app/manifests/1", {**AUTH, **MANIFEST}, 200, None),
        "manifest-get": ("GET", "/v2/app/manifests/1", {**AUTH, **MANIFEST}, 200, None),
        "blob": ("GET", f"/v2/app/blobs/{blob_digest}", AUTH, 200, None),
        # The upstream's 401, its challenge rewritten.
        "challenge": ("GET", "/v2/private/manifests/1", AUTH, 401, None),
        # A name that cannot exist: a local 404 NAME_INVALID.
        "error": ("GET", "/v2/Bad_Name/manifests/1", {}, 404, None),
        # The two local answers taking turns (a mixed kind: path and status
        # are pairs): every answer's headers differ from the one before, so
        # a cache of the last answer's headers would miss every time (the
        # entry's, ownHeaders in src/edge.js, keeps one of each sort).
        "local-mixed": ("GET", ("/v2/", "/v2/Bad_Name/manifests/1"), {}, (401, 404), None),
        # The upstream throttles (429); the fallback challenges, the worker
        # gets its token, asks again: four subrequests.
        "fallback": ("GET", "/v2/throttled/manifests/1", {**AUTH, **MANIFEST}, 200, None),
    }
    if two_keys:
        out["ping-two-keys"] = ("GET", ("/v2/", "/v2/"), {}, (401, 401), None)
    return out


def seed002_kinds(blob_digest, redirects=False):
    """The requests a client makes through seed 002's worker for each step
    of a pull that the kinds above measure: its own token endpoint
    (/v2/auth, which asks the upstream's /v2/ for the realm first), and the
    manifests and blobs by their library/ path, as dockerd's registry-mirrors
    asks for them. With `redirects`, as `docker pull MIRROR/app` asks: the
    short name first, which it answers with a 301 to the library/ path."""
    auth = {**AUTH, **MANIFEST}

    def step(method, rest, headers):
        real = (method, f"/v2/library/app/{rest}", headers, 200, None)
        return [(method, f"/v2/app/{rest}", headers, 301, None), real] if redirects else [real]
    return {
        "local-401": [("GET", "/v2/", {}, 401, None)],
        "token-get": [("GET", "/v2/auth?service=cloudflare-docker-proxy&scope=repository%3Aapp%3Apull", {}, 200, None)],
        "manifest-head": step("HEAD", "manifests/1", auth),
        "manifest-get": step("GET", "manifests/1", auth),
        "blob": step("GET", f"blobs/{blob_digest}", AUTH),
    }


def fresh_path(path, n):
    """`path` with a query parameter that makes it new (the first-seen shape)."""
    return f"{path}{'&' if '?' in path else '?'}seq={n}"


def head_load(addr, kind, seconds, limit, connections=4, fresh=None):
    """The same as wrk() for HEAD, which wrk cannot send (it waits for a body
    of Content-Length bytes): persistent connections driven from one thread
    by a selector, each sending its next request the moment the last
    answer's header block is in (a HEAD answer has no body), as wrk does.
    One thread with no lock keeps the worker as busy as wrk keeps it; Python
    threads taking turns on the GIL left it idle between requests, and a
    worker woken for each request spends more CPU on each."""
    import selectors
    import socket

    method, path, headers, status, body = kind
    if method != "HEAD":
        raise ValueError("head_load sends HEAD only")
    host, port = addr.rsplit(":", 1)
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": MIRROR_HOST, **headers}.items())

    def request(i, n):
        p = path if fresh is None else fresh_path(path, fresh + i * 100000000 + n)
        return f"{method} {p} HTTP/1.1\r\n{head}\r\n".encode()

    sel = selectors.DefaultSelector()
    counts, bad = [0] * connections, []
    start = time.monotonic()
    stop_at = start + seconds
    for i in range(connections):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request(i, 0))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [i, b""])
    open_ = connections
    try:
        while open_:
            ready = sel.select(timeout=10)
            if not ready:
                raise RuntimeError(f"{method} {path}: no answer in 10 s")
            for key, _ in ready:
                state = key.data
                data = key.fileobj.recv(65536)
                if not data:
                    raise RuntimeError(f"{method} {path}: the worker closed a connection")
                buf = state[1] + data
                while b"\r\n\r\n" in buf:
                    answer, _, buf = buf.partition(b"\r\n\r\n")
                    i = state[0]
                    counts[i] += 1
                    code = int(answer[9:12]) if answer[:5] == b"HTTP/" else 0
                    if code != status:
                        bad.append(code)
                    if counts[i] < limit and time.monotonic() < stop_at:
                        key.fileobj.sendall(request(i, counts[i]))
                    else:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
                        open_ -= 1
                        break
                state[1] = buf
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    total = sum(counts)
    if bad:
        raise RuntimeError(f"{method} {path}: {len(bad)} unexpected statuses {sorted(set(bad))[:5]} in {total}")
    return total, total / (time.monotonic() - start)


def wrk(addr, kind, seconds, limit=200000, threads=1, connections=4, fresh=None, total=None):
    """Keep-alive load of one kind with wrk for `seconds`, capped at `limit`
    responses per thread. kind is a tuple from kinds(). With `fresh` (a
    number), every request's URL is new: a query parameter counting up from
    it. With `total`, the run is bounded by that many responses in all (the
    benchmark's slices), `seconds` only a bound on time (whole seconds: wrk
    takes no less). Returns (responses, req/s); raises on any unexpected
    status or socket error."""
    method, path, headers, status, body = kind
    path, alt_path = path if isinstance(path, tuple) else (path, "")
    status, alt_status = status if isinstance(status, tuple) else (status, "")
    if method == "HEAD":
        if alt_path:
            raise ValueError("a mixed kind is GET or POST (HEAD goes through head_load)")
        if total is not None:
            limit = -(-total // connections)
        return head_load(addr, kind, seconds, limit, connections, fresh)
    if total is not None:
        if threads != 1:
            raise ValueError("a run bounded by its total count has one wrk thread")
        limit = total
    env = dict(os.environ, METHOD=method, TARGET=path, STATUS=str(status), LIMIT=str(limit), BODY=body or "",
               EXIT_AT_LIMIT="1" if total is not None else "", ALT_TARGET=alt_path, ALT_STATUS=str(alt_status),
               FRESH="" if fresh is None else str(fresh),
               HEADERS="|".join(f"{k}: {v}" for k, v in {"Host": MIRROR_HOST, **headers}.items()))
    r = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
                        "-s", os.path.join(ROOT, "bench", "load.lua"), f"http://{addr}/"],
                       env=env, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"RESULT requests=(\d+) unexpected=(\d+) errors=(\d+)", r.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError(f"wrk printed no result:\n{r.stdout}{r.stderr}")
    n, bad, errors = (int(x) for x in m.groups())
    if bad or errors or n == 0:
        raise RuntimeError(f"{method} {path}: {bad} unexpected statuses, {errors} socket errors in {n} (expected {status})")
    return n, float(rps.group(1)) if rps else 0.0


def workdir():
    d = tempfile.mkdtemp(prefix="edge-mirror-load-")
    os.chmod(d, 0o755)  # nginx's workers run as nobody and serve files from here
    return d
