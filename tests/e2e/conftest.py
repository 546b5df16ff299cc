"""The end-to-end stack, started once per test session and stopped by PID.

Started here, all on loopback:
- the upstream fixtures (tests/e2e/fixtures.py): token issuer, redirecting
  front, blob CDN, search index;
- the distribution registry (Debian's docker-registry) with token auth,
  seeded with test images by skopeo;
- the worker, built with tests/e2e/routes.e2e.toml and run by `wrangler dev`
  (workerd) on 127.0.0.10:80;
- dockerd and containerd, each in a private mount namespace whose /etc/hosts
  maps the mirror host names to 127.0.0.10 (the machine's /etc/hosts is never
  touched). Clients that resolve names themselves (skopeo, ctr) run in such a
  namespace too.

A tshark capture on the worker's port records what clients receive, so tests
can assert that every realm points at the mirror and no redirect reached a
client (the `tap` fixture).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import images  # noqa: E402
from devstack import Proc, wait_for  # noqa: E402  (shared with the dev-server tests)

MIRROR_IP = "127.0.0.10"
MIRROR_PORT = 80
REGISTRY = "127.0.0.1:15000"
FRONT = "127.0.0.2:15001"
TOKEN = "127.0.0.3:15002"
CDN = "127.0.0.4:15003"
THROTTLE = "127.0.0.5:15005"
OPEN_FRONT = "127.0.0.6:15006"
OPEN_REGISTRY = "127.0.0.1:15010"
INDEX = "127.0.0.7:15007"
# The access tests' workers (tests/e2e/test_access.py), each on an address
# of its own: keys, keys with the secret unset or malformed, client allow
# lists, and the rate limit under wrangler dev.
ACCESS_HOSTS = {"keyed.test": "127.0.0.11", "nokeys.test": "127.0.0.12", "clients.test": "127.0.0.13", "rated.test": "127.0.0.14",
                "badkeys.test": "127.0.0.15"}
MIRROR_HOSTS = ["mirror.test", "docker.mirror.test", "ghcr.mirror.test", "pass.mirror.test", "down.mirror.test",
                "private.mirror.test", "unset.mirror.test", "repo.mirror.test",
                "throttled.mirror.test", "downfb.mirror.test", "openfb.mirror.test", "allthrottled.mirror.test",
                "liarfb.mirror.test", "healthyfb.mirror.test"]
# The Worker secret of the private route, as wrangler dev reads secrets (a
# .dev.vars file): alice's upstream account. No response or log line may
# carry it.
SECRET_NAME = "PRIVATE_CREDENTIALS"
SECRET_VALUE = "alice:wonderland"
# The throttled route's own account (its credentials secret): it goes to
# that route's realm only, never to a fallback.
THROTTLED_SECRET_NAME = "THROTTLED_CREDENTIALS"
THROTTLED_SECRET_VALUE = "hub-user:hub-secret-canary-0c2d"

IMAGES = {
    # ref in the registry: (layers, layer bytes)
    "library/multilayer:1.0": (3, 64 * 1024),
    "private/secret:1": (2, 16 * 1024),
    "team/app:2": (2, 48 * 1024),
}


def port_open(addr):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=1):
        return True


def in_ns(hosts_file, cmd):
    """Runs `cmd` in a private mount namespace with its own /etc/hosts."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', hosts_file] + cmd



def http_request(ip, method, host, path, headers=None, body=None):
    """One HTTP request to a worker listening on `ip` port 80 (the mirror,
    or one of ACCESS_HOSTS), with the given Host; returns (status, headers
    as a list of pairs, body bytes)."""
    conn = http.client.HTTPConnection(ip, MIRROR_PORT, timeout=60)
    h = {"Host": host}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.getheaders(), data

class Stack:
    def __init__(self, workdir):
        self.dir = workdir
        self.logdir = os.path.join(workdir, "logs")
        os.makedirs(self.logdir)
        self.hosts = os.path.join(workdir, "hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
            f.write(f"{MIRROR_IP} {' '.join(MIRROR_HOSTS)}\n")
            for name, ip in ACCESS_HOSTS.items():
                f.write(f"{ip} {name}\n")
        self.procs = []
        self.digests = {}
        self.layers = {}
        self.docker_sock = os.path.join(workdir, "docker.sock")
        self.ctr_sock = os.path.join(workdir, "containerd.sock")

    def start(self, name, cmd, env=None):
        p = Proc(name, cmd, self.dir, env)
        self.procs.append(p)
        return p

    # --- logs of the upstream fixtures ---

    def log(self, server):
        path = os.path.join(self.logdir, f"{server}.jsonl")
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def marks(self, servers=("front", "token", "cdn")):
        return {s: len(self.log(s)) for s in servers}

    def worker_log(self):
        """The worker's request log lines (JSON, one per request) so far."""
        out = []
        for line in self.wrangler.output().splitlines():
            i = line.find('{"route":')
            if i >= 0:
                try:
                    out.append(json.loads(line[i:]))
                except ValueError:
                    pass
        return out

    def since(self, marks):
        return {s: self.log(s)[n:] for s, n in marks.items()}

    # --- clients ---

    def ns(self, cmd, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 300)
        return subprocess.run(in_ns(self.hosts, cmd), **kw)

    def docker(self, *args, input=None, timeout=300):
        env = dict(os.environ, DOCKER_HOST=f"unix://{self.docker_sock}", DOCKER_CONFIG=os.path.join(self.dir, "docker-config"))
        return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, input=input, timeout=timeout)

    def request(self, method, host, path, headers=None, body=None):
        """One HTTP request to the worker with the given Host; returns
        (status, headers as a list of pairs, body bytes)."""
        return http_request(MIRROR_IP, method, host, path, headers, body)


def registry_config(path, storage, addr, auth, storage_extra=""):
    """A distribution registry's config.yml: filesystem storage at `storage`
    (with `storage_extra` under storage:), listening on `addr`, with `auth`."""
    with open(path, "w") as f:
        f.write(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
{storage_extra}http:
  addr: {addr}
{auth}""")
    return path


def build_stack(workdir):
    st = Stack(workdir)
    storage = os.path.join(workdir, "storage")
    cert = os.path.join(workdir, "issuer.pem")
    fx = st.start("fixtures", [sys.executable, os.path.join(HERE, "fixtures.py"), "--token", TOKEN, "--front", FRONT,
                               "--cdn", CDN, "--registry", REGISTRY, "--storage", storage, "--cert", cert,
                               "--throttle", THROTTLE, "--open-front", OPEN_FRONT, "--open-registry", OPEN_REGISTRY,
                               "--index", INDEX, "--logdir", st.logdir])
    wait_for("fixtures", lambda: "ready" in fx.output(), 30, fx)

    cfg = registry_config(os.path.join(workdir, "registry.yml"), storage, REGISTRY, f"""auth:
  token:
    realm: http://{TOKEN}/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: {cert}
""")
    reg = st.start("registry", ["docker-registry", "serve", cfg])
    wait_for("registry", lambda: port_open(REGISTRY), 30, reg)

    for ref, (n, size) in IMAGES.items():
        src = os.path.join(workdir, "images", ref.replace("/", "_").replace(":", "_"))
        digest, _, layers = images.build(src, ref.split(":")[0], layers=n, layer_bytes=size)
        images.push(src, REGISTRY, ref)
        st.digests[ref] = digest
        st.layers[ref] = layers

    # The same images from a registry without auth, for fallbacks anyone
    # may pull (read-only: it only serves what the first one holds).
    open_cfg = registry_config(os.path.join(workdir, "open-registry.yml"), storage, OPEN_REGISTRY,
                               "", "  maintenance:\n    readonly:\n      enabled: true\n")
    reg2 = st.start("open-registry", ["docker-registry", "serve", open_cfg])
    wait_for("open registry", lambda: port_open(OPEN_REGISTRY), 30, reg2)

    env = dict(os.environ, ROUTES="tests/e2e/routes.e2e.toml", WRANGLER_SEND_METRICS="false", CI="true",
               NO_UPDATE_NOTIFIER="1", XDG_CONFIG_HOME=os.path.join(workdir, "xdg"))
    dev_vars = os.path.join(workdir, ".dev.vars")
    with open(dev_vars, "w") as f:
        f.write(f"{SECRET_NAME}={SECRET_VALUE}\n{THROTTLED_SECRET_NAME}={THROTTLED_SECRET_VALUE}\n")
    wr = st.start("wrangler", [os.path.join(ROOT, "node_modules/.bin/wrangler"), "dev", "--ip", MIRROR_IP,
                               "--port", str(MIRROR_PORT), "--log-level", "log", "--env-file", dev_vars], env=env)
    st.wrangler = wr
    wait_for("wrangler dev", lambda: "Ready on" in wr.output() and port_open(f"{MIRROR_IP}:{MIRROR_PORT}"), 900, wr)

    dd = os.path.join(workdir, "dockerd")
    os.makedirs(os.path.join(dd, "data"))
    os.makedirs(os.path.join(dd, "exec"))
    # daemon.json as the README has it: Docker Hub pulls go through the
    # shared mirror host (plain http here, so it is also an insecure registry).
    daemon_json = os.path.join(dd, "daemon.json")
    with open(daemon_json, "w") as f:
        json.dump({"registry-mirrors": ["http://mirror.test"], "insecure-registries": MIRROR_HOSTS + list(ACCESS_HOSTS)}, f)
    dockerd = st.start("dockerd", in_ns(st.hosts, [
        "dockerd", "--config-file", daemon_json, "--data-root", os.path.join(dd, "data"), "--exec-root", os.path.join(dd, "exec"),
        "-H", f"unix://{st.docker_sock}", "--pidfile", os.path.join(dd, "docker.pid"),
        "--storage-driver=vfs", "--iptables=false", "--ip-forward=false", "--bridge=none"]))
    wait_for("dockerd", lambda: st.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0, 60, dockerd)

    cd = os.path.join(workdir, "containerd")
    os.makedirs(cd)
    ccfg = os.path.join(cd, "config.toml")
    with open(ccfg, "w") as f:
        f.write(f"""version = 2
root = "{cd}/root"
state = "{cd}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{st.ctr_sock}"
[ttrpc]
  address = "{st.ctr_sock}.ttrpc"
""")
    ctrd = st.start("containerd", in_ns(st.hosts, ["containerd", "--config", ccfg]))
    wait_for("containerd", lambda: os.path.exists(st.ctr_sock) and subprocess.run(
        ["ctr", "-a", st.ctr_sock, "version"], capture_output=True, timeout=10).returncode == 0, 60, ctrd)
    return st


@pytest.fixture(scope="session")
def stack():
    workdir = tempfile.mkdtemp(prefix="edge-mirror-e2e-")
    st = None
    try:
        st = build_stack(workdir)
        yield st
    finally:
        procs = st.procs if st else []
        for p in reversed(procs):
            p.stop()
        if os.environ.get("E2E_KEEP"):
            print(f"e2e workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- the client-side tap ---

STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n")
REQUEST_RE = re.compile(rb"(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\S+) HTTP/1\.[01]\r\n((?:[^\r\n]+\r\n)*)\r\n")


def _headers(block):
    out = []
    for line in block.split(b"\r\n"):
        if b":" in line:
            k, v = line.split(b":", 1)
            out.append((k.strip().decode("latin-1").lower(), v.strip().decode("latin-1")))
    return out


class Tap:
    """tshark on the worker's address (the main one unless given): what
    clients sent and received."""

    def __init__(self, workdir, ip=MIRROR_IP, port=MIRROR_PORT):
        self.port = port
        self.pcap = os.path.join(workdir, f"tap-{time.time_ns()}.pcapng")
        self.err = open(self.pcap + ".log", "w")
        self.p = subprocess.Popen(["tshark", "-i", "lo", "-f", f"host {ip} and tcp port {port}", "-w", self.pcap, "-q"],
                                  stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True)
        wait_for("tshark", lambda: "Capture started" in open(self.pcap + ".log").read(), 30)
        self.responses, self.requests = [], []
        # Each request with the response that answered it (None when the
        # stream ended first): HTTP/1.1 answers a connection's requests in
        # order, so they pair by position within their TCP stream.
        self.exchanges = []
        # Every byte the worker sent to clients.
        self.raw = b""

    def stop(self):
        time.sleep(0.5)
        os.killpg(self.p.pid, signal.SIGINT)
        self.p.wait(30)
        self.err.close()
        out = subprocess.run(["tshark", "-r", self.pcap, "-Y", "tcp.len>0", "-T", "fields", "-e", "tcp.stream",
                              "-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.payload"],
                             capture_output=True, text=True, timeout=120).stdout
        streams = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) < 4 or not parts[3]:
                continue
            key = (parts[0], parts[1] == str(self.port))
            streams.setdefault(key, {})[int(parts[2])] = bytes.fromhex(parts[3].replace(":", ""))
        per_stream = {}
        for (stream, from_server), segs in streams.items():
            data = b"".join(segs[k] for k in sorted(segs))
            sent, answered = per_stream.setdefault(stream, ([], []))
            if from_server:
                self.raw += data
                for m in STATUS_RE.finditer(data):
                    answered.append((int(m.group(1)), _headers(m.group(2))))
            else:
                for m in REQUEST_RE.finditer(data):
                    sent.append((m.group(1).decode(), m.group(2).decode(), _headers(m.group(3))))
        for sent, answered in per_stream.values():
            self.requests += sent
            self.responses += answered
            self.exchanges += [(req, answered[i] if i < len(answered) else None) for i, req in enumerate(sent)]
        return self


class Canary:
    """Accepts and records any connection on an address no route names."""

    ADDR = ("127.0.0.66", 15066)

    def __init__(self):
        import threading

        self.hits = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(self.ADDR)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                continue
            self.hits.append(addr)
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="session")
def canary():
    c = Canary()
    yield c
    c.close()


@pytest.fixture
def tap(stack):
    t = Tap(stack.dir)
    try:
        yield t
    finally:
        if t.p.poll() is None:
            t.stop()
