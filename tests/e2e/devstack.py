"""The local dev server (scripts/dev.sh) and real clients pulling through it,
shared by tests/e2e/test_dev.py and scripts/bench_dev.py.

- DevServer: `scripts/dev.sh` as the README runs it (HTTPS, its generated
  certificate), with ROUTES and DEV_DIR of the caller's choosing;
- Registry: Debian's docker-registry without auth (the benchmark's upstream);
- Dockerd: dockerd in a private mount namespace whose /etc/hosts maps the
  mirror names to the dev server and whose /etc/docker is a directory of
  ours, so the CA goes where the README says (/etc/docker/certs.d/HOST:PORT/
  ca.crt) without touching the machine's;
- tls_probe: does a TLS hello to a port get an answer (handshake done or
  connection refused) within a bound.

Everything listens on 127.0.0.0/8 and is stopped by PID (process group).
This module imports no pytest: the benchmark uses it too.
"""

import os
import signal
import socket
import ssl
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Proc:
    """A background process in its own process group, output in a file."""

    def __init__(self, name, cmd, workdir, env=None, cwd=ROOT):
        self.name = name
        self.out_path = os.path.join(workdir, f"{name}.out")
        self.out = open(self.out_path, "w")
        self.p = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.p.poll() is None

    def stop(self, wait=20):
        if self.alive():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.p.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.out.close()


def wait_for(what, check, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what} exited early:\n{proc.output()[-4000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout}s" + (f":\n{proc.output()[-4000:]}" if proc else ""))


def started(proc, wait):
    """Runs wait(); stops proc if it raises (a server that never came up is
    not left behind)."""
    try:
        wait()
    except BaseException:
        proc.stop()
        raise


def port_open(host, port):
    with socket.create_connection((host, port), timeout=1):
        return True


def tls_probe(host, port, server_hostname=None, cafile=None, timeout=3.0):
    """Sends a TLS hello to host:port. Returns (outcome, seconds): "done" when
    the handshake completed (and the certificate verified, with cafile),
    "refused" when the server refused the connection or answered the hello
    with anything else (an alert, a reset, plain text), "unanswered" when
    nothing came back within `timeout`. Clients such as dockerd and skopeo
    wait 10 s on an unanswered hello before they fall back to plain http."""
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    start = time.monotonic()
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused", time.monotonic() - start
    except socket.timeout:
        return "unanswered", time.monotonic() - start
    try:
        raw.settimeout(max(0.1, timeout - (time.monotonic() - start)))
        with ctx.wrap_socket(raw, server_hostname=server_hostname or host) as s:
            s.version()
        return "done", time.monotonic() - start
    except socket.timeout:
        return "unanswered", time.monotonic() - start
    except ssl.SSLCertVerificationError:
        raise
    except (ssl.SSLError, OSError):
        return "refused", time.monotonic() - start
    finally:
        raw.close()


class DevServer:
    """`scripts/dev.sh ARGS` with ROUTES and DEV_DIR set; waits until it
    listens (the first start builds the worker: up to `timeout` s). `root`
    is the checkout whose dev.sh runs (a fresh clone's, say), `base_env` the
    environment it starts from (default this process's)."""

    def __init__(self, workdir, routes, ip, port, args=(), dev_dir=None, timeout=900, env=None, root=ROOT, base_env=None):
        self.ip, self.port = ip, port
        self.dev_dir = dev_dir or os.path.join(workdir, "dev")
        self.tls_dir = os.path.join(self.dev_dir, "tls")
        self.ca = os.path.join(self.tls_dir, "ca.crt")
        self.https = "--http" not in args
        env = dict(base_env if base_env is not None else os.environ, ROUTES=routes, DEV_DIR=self.dev_dir,
                   WRANGLER_SEND_METRICS="false", CI="true", NO_UPDATE_NOTIFIER="1",
                   XDG_CONFIG_HOME=os.path.join(workdir, "xdg"), **(env or {}))
        self.proc = Proc("dev", ["bash", os.path.join(root, "scripts", "dev.sh"), "--ip", ip, "--port", str(port), *args],
                         workdir, env, cwd=root)
        started(self.proc, lambda: wait_for("scripts/dev.sh", lambda: port_open(ip, port), timeout, self.proc))
        # The first TLS hello the server ever gets, right after its port
        # opened (on a plain-http port: "unanswered" after 3 s).
        self.first_hello = tls_probe(ip, port, server_hostname="localhost", cafile=self.ca if self.https else None,
                                     timeout=3)

    def output(self):
        return self.proc.output()

    def stop(self):
        self.proc.stop()


class Registry:
    """Debian's distribution registry, no auth, storage under workdir."""

    def __init__(self, workdir, addr):
        self.addr = addr
        storage = os.path.join(workdir, "registry-storage")
        cfg = os.path.join(workdir, "registry.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                    f"http:\n  addr: {addr}\n")
        self.proc = Proc("registry", ["docker-registry", "serve", cfg], workdir)
        host, port = addr.rsplit(":", 1)
        started(self.proc, lambda: wait_for("docker-registry", lambda: port_open(host, int(port)), 60, self.proc))

    def stop(self):
        self.proc.stop()


def run(cmd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def hosts_file(path, ip, names):
    with open(path, "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost\n")
        f.write(f"{ip} {' '.join(names)}\n")
    return path


def in_ns(hosts, cmd, etc_docker=None):
    """`cmd` in a private mount namespace with `hosts` as /etc/hosts and,
    with etc_docker, that directory as /etc/docker (dockerd's certs.d)."""
    script = 'mount --bind "$0" /etc/hosts'
    if etc_docker:
        script += ' && mkdir -p /etc/docker && mount --bind "$1" /etc/docker'
    script += ' && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, hosts, etc_docker or "-"] + list(cmd)


def trust_in_dockerd(etc_docker, ca, registry):
    """What the README says to do: the CA as certs.d/HOST:PORT/ca.crt."""
    d = os.path.join(etc_docker, "certs.d", registry)
    os.makedirs(d, exist_ok=True)
    with open(ca, "rb") as src, open(os.path.join(d, "ca.crt"), "wb") as dst:
        dst.write(src.read())


class Dockerd:
    """dockerd with its own data, exec root, socket and pidfile, in a mount
    namespace with its own /etc/hosts and /etc/docker."""

    def __init__(self, workdir, hosts, extra_args=(), env=None):
        self.dir = os.path.join(workdir, "dockerd")
        self.etc = os.path.join(self.dir, "etc-docker")
        for d in ("data", "exec", "etc-docker/certs.d", "config"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        self.sock = os.path.join(self.dir, "docker.sock")
        self.proc = Proc("dockerd", in_ns(hosts, [
            "dockerd", "--data-root", os.path.join(self.dir, "data"), "--exec-root", os.path.join(self.dir, "exec"),
            "-H", f"unix://{self.sock}", "--pidfile", os.path.join(self.dir, "docker.pid"),
            "--storage-driver=vfs", "--iptables=false", "--ip-forward=false", "--bridge=none", *extra_args],
            etc_docker=self.etc), workdir, env=dict(os.environ, **(env or {})))
        started(self.proc, lambda: wait_for(
            "dockerd", lambda: self.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0,
            90, self.proc))

    def docker(self, *args, timeout=300):
        env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=os.path.join(self.dir, "config"))
        return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=timeout)

    def stop(self):
        self.proc.stop()
