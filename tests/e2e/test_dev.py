"""The local dev server, started the way README.md ("Trying it locally")
says: `scripts/dev.sh` serving HTTPS with the certificate it generates, its CA
trusted the way the script prints it, real clients pulling through it.

The dev server runs the e2e route table (so it builds the same worker as the
session `stack`, whose upstream fixtures it uses) on 127.0.0.40:8443, with
its certificate in a temporary DEV_DIR. The clients are a dockerd of this
module's own (own sockets and directories; /etc/hosts and /etc/docker of its
own in a private mount namespace), skopeo, and ctr with the session's
containerd. None of them is told to allow insecure registries.

dockerd treats a registry whose name resolves into 127.0.0.0/8 as insecure
and skips certificate checks there (it still tries HTTPS first). So that
the certificate is really checked, the dockerd test also pulls by a name that
resolves to a documentation address (192.0.2.1) through a CONNECT proxy on
127.0.0.44 that leads to the dev server, as a dev server on another machine
would be reached: there dockerd verifies, and fails until the CA is in
certs.d.
"""

import hashlib
import os
import re
import select
import socket
import ssl
import threading
import tomllib

import pytest

import devstack
from conftest import SECRET_NAME, SECRET_VALUE
from devstack import in_ns

DEV_IP, DEV_PORT = "127.0.0.40", 8443
PROXY = ("127.0.0.44", 3128)
ROUTES = "tests/e2e/routes.e2e.toml"
D = f"docker.mirror.test:{DEV_PORT}"     # the README's way: name mapped to the dev server's address
G = f"ghcr.mirror.test:{DEV_PORT}"       # "remote": resolves outside 127.0.0.0/8, reached through the proxy


def table_hosts():
    """The table's host names in order, {domain} expanded, each once."""
    with open(os.path.join(devstack.ROOT, ROUTES), "rb") as f:
        t = tomllib.load(f)
    out = []
    for route in t["routes"].values():
        for h in route.get("hosts", []):
            h = h.replace("{domain}", t.get("domain", ""))
            if h not in out:
                out.append(h)
    return out


TABLE_HOSTS = table_hosts()


@pytest.fixture(scope="module")
def dev(stack, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("dev"))
    # The private route's Worker secret, in a .dev.vars-style file.
    dev_vars = os.path.join(workdir, "dev.vars")
    with open(dev_vars, "w") as f:
        f.write(f"# alice's upstream account\n{SECRET_NAME}={SECRET_VALUE}\n")
    server = devstack.DevServer(workdir, ROUTES, DEV_IP, DEV_PORT, env={"DEV_VARS": dev_vars})
    server.workdir = workdir
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy(dev):
    p = ConnectProxy(PROXY, (DEV_IP, DEV_PORT))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def dockerd(dev, proxy):
    hosts = os.path.join(dev.workdir, "dockerd-hosts")
    with open(hosts, "w") as f:
        f.write(f"127.0.0.1 localhost\n{DEV_IP} docker.mirror.test\n192.0.2.1 ghcr.mirror.test\n")
    via = f"http://{PROXY[0]}:{PROXY[1]}"
    d = devstack.Dockerd(dev.workdir, hosts, env={"HTTPS_PROXY": via, "https_proxy": via,
                                                  "NO_PROXY": "docker.mirror.test",
                                                  "no_proxy": "docker.mirror.test"})
    try:
        yield d
    finally:
        d.stop()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def printed_lines(dev):
    out = dev.output()
    assert dev.ca in out, out
    return out


def test_first_tls_hello_is_answered(dev):
    # Taken right after the port opened, before any client ran: an
    # unanswered hello costs docker and skopeo 10 s per pull.
    outcome, took = dev.first_hello
    assert outcome == "done", f"first TLS hello to the dev port: {outcome} after {took:.1f}s"
    # And every later one, with the certificate checked against the CA.
    outcome, took = devstack.tls_probe(DEV_IP, DEV_PORT, "docker.mirror.test", cafile=dev.ca, timeout=3)
    assert outcome == "done", f"{outcome} after {took:.1f}s"


def test_the_probe_sees_an_unanswered_hello():
    # A listener that accepts and never speaks, like `wrangler dev`'s or
    # workerd's plain-http port to a TLS hello; and a closed port.
    srv = socket.create_server(("127.0.0.45", 0))
    port = srv.getsockname()[1]
    try:
        outcome, took = devstack.tls_probe("127.0.0.45", port, timeout=1)
        assert outcome == "unanswered" and took >= 0.9
    finally:
        srv.close()
    assert devstack.tls_probe("127.0.0.45", port, timeout=1)[0] == "refused"


def test_certificate_names_every_table_host_localhost_and_loopback(dev):
    for name in TABLE_HOSTS + ["localhost", "127.0.0.1", DEV_IP]:
        outcome, _ = devstack.tls_probe(DEV_IP, DEV_PORT, name, cafile=dev.ca, timeout=3)
        assert outcome == "done", name
    with pytest.raises(ssl.SSLCertVerificationError):
        devstack.tls_probe(DEV_IP, DEV_PORT, "quay.mirror.test", cafile=dev.ca, timeout=3)
    # The keys stay private; the CA is for everyone.
    assert os.stat(os.path.join(dev.tls_dir, "private", "ca.key")).st_mode & 0o077 == 0
    assert os.stat(os.path.join(dev.tls_dir, "private", "server.key")).st_mode & 0o077 == 0
    assert os.stat(dev.ca).st_mode & 0o044 == 0o044


def test_printed_instructions_name_the_ca_and_each_client(dev):
    out = printed_lines(dev)
    hosts = " ".join(f"{h}:{DEV_PORT}" for h in TABLE_HOSTS)
    assert f"for h in {hosts}; do sudo install -D -m 644 {dev.ca} /etc/docker/certs.d/$h/ca.crt; done" in out
    assert f"for h in {hosts}; do sudo install -D -m 644 {dev.ca} /etc/containers/certs.d/$h/ca.crt; done" in out
    assert f"--src-cert-dir {dev.tls_dir}" in out
    # containerd's hosts.toml, shown for the table's first host.
    first = f"{TABLE_HOSTS[0]}:{DEV_PORT}"
    assert f"# /etc/containerd/certs.d/{first}/hosts.toml" in out
    assert f'server = "https://{first}"' in out and f'[host."https://{first}"]' in out
    assert f'ca = "{dev.ca}"' in out
    assert f"{DEV_IP} {' '.join(TABLE_HOSTS)}" in out


def test_docker_pull_over_https_with_the_ca_in_certs_d(stack, dev, dockerd, proxy):
    want = stack.digests["library/multilayer:1.0"]
    info = dockerd.docker("info", "--format", "{{json .RegistryConfig.IndexConfigs}}")
    assert "mirror.test" not in info.stdout, "no insecure-registries entry for the mirror"

    # By a name that is not on loopback, dockerd checks the certificate:
    # refused until the CA is where the printed line puts it.
    ref = f"{G}/library/multilayer:1.0"
    r = dockerd.docker("pull", ref)
    assert r.returncode != 0
    assert "certificate signed by unknown authority" in r.stderr, r.stderr
    devstack.trust_in_dockerd(dockerd.etc, dev.ca, G)
    marks = stack.marks()
    r = dockerd.docker("pull", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Digest: {want}" in r.stdout
    assert f"{G}" in proxy.tunnels, proxy.tunnels
    got = stack.since(marks)
    assert any(e["path"].startswith("/v2/library/multilayer/manifests/") for e in got["front"]), got["front"]
    assert len(got["cdn"]) >= len(stack.layers["library/multilayer:1.0"])
    assert dockerd.docker("rmi", "-f", ref).returncode == 0

    # The README's way on one machine: the name mapped to the dev server's
    # loopback address, CA in certs.d, library/ added by the mirror.
    devstack.trust_in_dockerd(dockerd.etc, dev.ca, D)
    ref = f"{D}/multilayer:1.0"
    r = dockerd.docker("pull", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Digest: {want}" in r.stdout
    inspect = dockerd.docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    assert f"{D}/multilayer@{want}" in inspect.stdout
    assert D not in proxy.tunnels
    assert dockerd.docker("rmi", "-f", ref).returncode == 0


def test_skopeo_copy_over_https_with_the_printed_cert_dir(stack, dev, tmp_path):
    hosts = devstack.hosts_file(str(tmp_path / "hosts"), DEV_IP, TABLE_HOSTS)
    want = stack.digests["team/app:2"]
    src = f"docker://{D}/team/app:2"
    # Without the CA, skopeo refuses the certificate (it has no loopback exemption).
    r = devstack.run(in_ns(hosts, ["skopeo", "inspect", src]))
    assert r.returncode != 0 and "certificate signed by unknown authority" in r.stderr, r.stderr
    out = tmp_path / "copy"
    r = devstack.run(in_ns(hosts, ["skopeo", "copy", "--quiet", "--src-cert-dir", dev.tls_dir, src, f"dir:{out}"]))
    assert r.returncode == 0, r.stderr
    assert sha((out / "manifest.json").read_bytes()) == want
    for layer in stack.layers["team/app:2"]:
        assert sha((out / layer.split(":")[1]).read_bytes()) == layer


def test_worker_secrets_come_from_dev_vars(stack, dev, tmp_path):
    """As under `wrangler dev`: the credentialed route pulls a private image
    for an anonymous client with the account from the secrets file, and the
    value is in no output and not in the generated config."""
    hosts = devstack.hosts_file(str(tmp_path / "hosts"), DEV_IP, TABLE_HOSTS)
    out = tmp_path / "copy"
    src = f"docker://private.mirror.test:{DEV_PORT}/private/secret:1"
    r = devstack.run(in_ns(hosts, ["skopeo", "copy", "--quiet", "--src-cert-dir", dev.tls_dir, src, f"dir:{out}"]))
    assert r.returncode == 0, r.stderr
    assert sha((out / "manifest.json").read_bytes()) == stack.digests["private/secret:1"]
    assert f"secrets from {os.path.join(dev.workdir, 'dev.vars')}: {SECRET_NAME}" in dev.output()
    password = SECRET_VALUE.split(":", 1)[1]
    assert password not in dev.output()
    assert password not in open(os.path.join(dev.dev_dir, "workerd.capnp")).read()
    assert os.stat(os.path.join(dev.dev_dir, "vars")).st_mode & 0o077 == 0


def test_ctr_pull_with_the_printed_hosts_toml(stack, dev, tmp_path):
    hosts = devstack.hosts_file(str(tmp_path / "hosts"), DEV_IP, TABLE_HOSTS)
    # The containerd lines as dev.sh printed them (for its first host), for D.
    out = printed_lines(dev)
    m = re.search(r"^ *# /etc/containerd/certs.d/(\S+)/hosts.toml\n((?: {4}.*\n)+?) *podman", out, re.M)
    assert m, out
    hosts_dir = tmp_path / "certs.d"
    (hosts_dir / D).mkdir(parents=True)
    toml = "".join(line.strip() + "\n" for line in m.group(2).splitlines()).replace(m.group(1), D)
    assert f'[host."https://{D}"]' in toml and f'ca = "{dev.ca}"' in toml, toml
    (hosts_dir / D / "hosts.toml").write_text(toml)
    want = stack.digests["library/multilayer:1.0"]
    ctr = ["ctr", "-a", stack.ctr_sock, "-n", "edge-mirror-dev"]
    # Without the hosts.toml, containerd refuses the certificate.
    r = devstack.run(in_ns(hosts, ctr + ["images", "pull", "--snapshotter", "native", f"{D}/library/multilayer:1.0"]))
    assert r.returncode != 0 and "certificate signed by unknown authority" in r.stderr, r.stdout + r.stderr
    try:
        r = devstack.run(in_ns(hosts, ctr + ["images", "pull", "--hosts-dir", str(hosts_dir), "--snapshotter", "native",
                                             f"{D}/library/multilayer:1.0"]))
        assert r.returncode == 0, r.stdout + r.stderr
        listed = devstack.run(in_ns(hosts, ctr + ["images", "ls"])).stdout
        assert re.search(rf"^{re.escape(D)}/library/multilayer:1.0\s.*{want}", listed, re.M), listed
    finally:
        devstack.run(in_ns(hosts, ctr + ["images", "rm", f"{D}/library/multilayer:1.0"]))


def test_a_second_start_keeps_the_ca(dev, tmp_path):
    """The CA is made once: a second dev.sh on another address keeps it (the
    server certificate is remade for the new address, signed by the same CA)."""
    ca_before = open(dev.ca, "rb").read()
    again = devstack.DevServer(str(tmp_path), ROUTES, "127.0.0.41", DEV_PORT + 1, dev_dir=dev.dev_dir)
    try:
        assert again.first_hello[0] == "done"
        assert open(dev.ca, "rb").read() == ca_before
        assert "making a local CA" not in again.output()
        outcome, _ = devstack.tls_probe("127.0.0.41", DEV_PORT + 1, "127.0.0.41", cafile=dev.ca, timeout=3)
        assert outcome == "done"
    finally:
        again.stop()


class ConnectProxy:
    """A CONNECT proxy that tunnels every request to `target`, whatever
    host it names (records the names). One thread per tunnel; all end when
    either side closes or the proxy is closed."""

    def __init__(self, addr, target):
        self.target = target
        self.tunnels = []
        self.srv = socket.create_server(addr)
        self.socks = []
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.tunnel, args=(c,), daemon=True).start()

    def tunnel(self, c):
        self.socks.append(c)
        c.settimeout(30)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = c.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(line[1])
            up = socket.create_connection(self.target, timeout=30)
            self.socks.append(up)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                up.sendall(rest)
            pair = {c: up, up: c}
            while not self.closed:
                ready, _, _ = select.select(list(pair), [], [], 30)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    pair[s].sendall(data)
        except OSError:
            return
        finally:
            for s in (c, locals().get("up")):
                if s is not None:
                    s.close()

    def close(self):
        self.closed = True
        self.srv.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
