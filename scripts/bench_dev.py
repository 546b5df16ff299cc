#!/usr/bin/env python3
"""How long a pull through the local dev server (scripts/dev.sh) takes,
against the same pull straight from the registry.

Starts, all on loopback: Debian's docker-registry (no auth) on 127.0.0.42
holding an image with one 8 MiB layer; `scripts/dev.sh` on 127.0.0.43 with a
route table whose one route points at that registry (--dev-args=--wrangler or
--dev-args=--http to time those modes); a dockerd of its own in a private mount namespace
(its /etc/hosts maps the mirror name to 127.0.0.43; the dev CA is in its
certs.d as the README says). Then, after one untimed warm-up round, ROUNDS
interleaved rounds of

    docker pull  127.0.0.42:5042/bench/app:1            (direct)
    docker pull  docker.dev-bench.test:8443/bench/app:1 (through the mirror)
    skopeo copy  ... dir:OUT                            (direct, then mirror)

with the image removed from dockerd after each pull, so every pull fetches
the layer. Prints the median, min and max of each and whether the mirror
meets the target: median through the mirror <= 1.5 x direct + 0.5 s (exit
status 1 if not). Every server is stopped by PID at the end, pass or fail.

Note: like scripts/bench.py, this builds the worker into build/ (with its own
route table); dev.sh serves a copy.

    python3 scripts/bench_dev.py [--rounds 7] [--dev-args=--wrangler]
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import devstack  # noqa: E402
import images  # noqa: E402

REGISTRY = "127.0.0.42:5042"
DEV_IP, DEV_PORT = "127.0.0.43", 8443
MIRROR = f"docker.dev-bench.test:{DEV_PORT}"
REPO, TAG = "bench/app", "1"
LAYER_BYTES = 8 * 1024 * 1024
PULL_TIMEOUT = 120

TABLE = f"""# Written by scripts/bench_dev.py: one route to the benchmark's registry.
domain = "dev-bench.test"

[routes.docker]
hosts = ["docker.{{domain}}"]
upstream = "http://{REGISTRY}"
insecure = true
"""


def timed(cmd, what, **kw):
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=PULL_TIMEOUT, **kw)
    took = time.monotonic() - start
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return took


class Bench:
    def __init__(self, workdir):
        self.dir = workdir
        self.stack = []

    def start(self, dev_args):
        workdir = self.dir
        self.registry = self.keep(devstack.Registry(workdir, REGISTRY))
        src = os.path.join(workdir, "image")
        self.digest, _, _ = images.build(src, REPO, layers=1, layer_bytes=LAYER_BYTES)
        images.push(src, REGISTRY, f"{REPO}:{TAG}")
        table = os.path.join(workdir, "routes.dev-bench.toml")
        with open(table, "w") as f:
            f.write(TABLE)
        print(f"starting scripts/dev.sh {' '.join(dev_args)} (builds the worker)", flush=True)
        self.dev = self.keep(devstack.DevServer(workdir, table, DEV_IP, DEV_PORT, dev_args))
        self.hosts = devstack.hosts_file(os.path.join(workdir, "hosts"), DEV_IP, ["docker.dev-bench.test"])
        self.dockerd = self.keep(devstack.Dockerd(workdir, self.hosts))
        if self.dev.https:
            devstack.trust_in_dockerd(self.dockerd.etc, self.dev.ca, MIRROR)
            self.skopeo_mirror_tls = ["--src-cert-dir", self.dev.tls_dir]
        else:
            self.skopeo_mirror_tls = ["--src-tls-verify=false"]

    def keep(self, server):
        self.stack.append(server)
        return server

    def close(self):
        for s in reversed(self.stack):
            s.stop()

    def docker_pull(self, ref):
        took = timed(["docker", "-H", f"unix://{self.dockerd.sock}", "pull", "-q", ref], f"docker pull {ref}",
                     env=dict(os.environ, DOCKER_CONFIG=os.path.join(self.dockerd.dir, "config")))
        r = self.dockerd.docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
        if self.digest not in r.stdout:
            raise RuntimeError(f"{ref}: pulled {r.stdout.strip()}, want {self.digest}")
        r = self.dockerd.docker("rmi", "-f", ref)
        left = self.dockerd.docker("image", "ls", "-q").stdout.split()
        if r.returncode != 0 or left:
            raise RuntimeError(f"could not remove {ref}: {r.stderr} (left: {left})")
        return took

    def skopeo_copy(self, ref, tls):
        out = os.path.join(self.dir, "copy")
        shutil.rmtree(out, ignore_errors=True)
        took = timed(devstack.in_ns(self.hosts, ["skopeo", "copy", "--quiet", *tls, f"docker://{ref}", f"dir:{out}"]),
                     f"skopeo copy {ref}")
        if os.path.getsize(os.path.join(out, self.digest_of_layer())) < LAYER_BYTES:
            raise RuntimeError(f"skopeo copy {ref}: short layer")
        return took

    def digest_of_layer(self):
        import json
        with open(os.path.join(self.dir, "image", "manifest.json")) as f:
            return json.load(f)["layers"][0]["digest"].split(":")[1]

    def round(self):
        direct, mirror = f"{REGISTRY}/{REPO}:{TAG}", f"{MIRROR}/{REPO}:{TAG}"
        return {
            ("docker pull", "direct"): self.docker_pull(direct),
            ("docker pull", "mirror"): self.docker_pull(mirror),
            ("skopeo copy", "direct"): self.skopeo_copy(direct, ["--src-tls-verify=false"]),
            ("skopeo copy", "mirror"): self.skopeo_copy(mirror, self.skopeo_mirror_tls),
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--dev-args", default="", help="arguments for scripts/dev.sh, e.g. --dev-args=--wrangler or --dev-args='--wrangler --http'")
    args = ap.parse_args()
    dev_args = shlex.split(args.dev_args)
    workdir = tempfile.mkdtemp(prefix="edge-mirror-bench-dev-")
    bench = Bench(workdir)
    try:
        bench.start(dev_args)
        bench.round()  # warm-up: wasm compiled, connections and TLS sessions set up once
        times = {}
        for i in range(args.rounds):
            for k, v in bench.round().items():
                times.setdefault(k, []).append(v)
            print(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{c} {w} {v:.2f}s" for (c, w), v in times_last(times)),
                  flush=True)
    finally:
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)

    mode = " ".join(["scripts/dev.sh", *dev_args])
    print(f"\npull of {REPO}:{TAG} (one {LAYER_BYTES >> 20} MiB layer), median of {args.rounds} interleaved rounds; "
          f"mirror = {mode}")
    print(f"{'client':<12} {'direct s':>9} {'mirror s':>9} {'ratio':>6} {'target s':>9}  verdict   (min-max direct | mirror)")
    ok = True
    for client in ("docker pull", "skopeo copy"):
        d, m = times[(client, "direct")], times[(client, "mirror")]
        md, mm = statistics.median(d), statistics.median(m)
        target = 1.5 * md + 0.5
        good = mm <= target
        ok &= good
        print(f"{client:<12} {md:>9.3f} {mm:>9.3f} {mm / md:>6.2f} {target:>9.3f}  {'ok' if good else 'MISSED':<8}"
              f"  ({min(d):.3f}-{max(d):.3f} | {min(m):.3f}-{max(m):.3f})")
    return 0 if ok else 1


def times_last(times):
    return [(k, v[-1]) for k, v in times.items()]


if __name__ == "__main__":
    sys.exit(main())
