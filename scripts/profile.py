#!/usr/bin/env python3
"""Where a request's CPU goes: a `perf` profile of contenders under one
request kind's load, side by side.

    python3 scripts/profile.py KIND [--shape first-seen|repeated] [--seconds S]
        [--rounds N] CONTENDER...

CONTENDERs are as for scripts/bench.py: a build directory with index.js and
index_bg.wasm (build/ after scripts/build-worker.sh), or js, floor, rung1 to
rung4; a build directory whose name ends in -keyed is an access table's
(bench/routes.bench-access.toml), asked with the key as the benchmark's
access contender is. Each runs under plain `workerd serve` with V8's --perf-basic-prof (so
JIT-compiled JavaScript and wasm functions have names), one after the other,
pinned to CPU 0, with the benchmark's nginx upstream and load (wrk, one kind,
bench/load.lua). `perf record -e cpu-clock` samples the workerd process
(software clock: no hardware counters needed) while N rounds of S seconds
run. It prints, per contender, the samples per 1000 requests in all and in
four parts (the wasm functions, the JavaScript, workerd's own code, the
kernel), then the symbols whose share differs most between the first
contender and each other.

Needs `perf` (Debian's linux-perf). Not a test: it asserts nothing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402

ADDR = "127.0.0.45:19100"
HZ = 4000


def part(dso, sym):
    if "wasm-function" in sym:
        return "wasm"
    if dso.startswith("[JIT]") or sym.startswith("JS:") or sym.startswith("Builtins_"):
        return "javascript"
    if "kernel" in dso:
        return "kernel"
    return "workerd"


# The benchmark's key, client address and User-Agent (scripts/loadlib.py).
BENCH_KEY, CLIENT_IP, CLIENT_AGENT = loadlib.BENCH_KEY, loadlib.CLIENT_IP, loadlib.CLIENT_AGENT


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=list(loadlib.kinds("sha256:x")))
    ap.add_argument("contenders", nargs="+")
    ap.add_argument("--shape", choices=["first-seen", "repeated"], default="first-seen")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("perf is missing: apt-get install linux-perf")
    work = loadlib.workdir()
    up = loadlib.Upstream(work)
    # With these flags V8 also writes an isolate-*-v8.log into the current
    # directory: keep those in the work directory, not the checkout.
    a.contenders = [os.path.abspath(c) if os.path.isdir(c) else c for c in a.contenders]
    os.chdir(work)
    # V8 writes /tmp/perf-PID.map, which perf reads for JIT code's names.
    loadlib.V8_FLAGS = ["--perf-basic-prof"]
    fresh = 0
    seen = {}
    try:
        for _ in range(a.rounds):
            for c in a.contenders:
                build = c if os.path.isfile(os.path.join(c, "index_bg.wasm")) else None
                keyed = c.rstrip("/").endswith("-keyed")
                w = loadlib.Workerd(work, "rust" if build else c, ADDR, build=build,
                                    name=os.path.basename(c.rstrip("/")), cpu=0,
                                    bindings={"MIRROR_KEYS": BENCH_KEY} if keyed else None)
                try:
                    # As scripts/bench.py asks: CF-Connecting-IP on every
                    # request, the key first in a keyed contender's paths.
                    method, path, headers, status, body = loadlib.kinds(up.blob_digest)[a.kind]
                    if keyed:
                        path = tuple(f"/{BENCH_KEY}{p}" for p in path) if isinstance(path, tuple) else f"/{BENCH_KEY}{path}"
                    spec = (method, path, {"User-Agent": CLIENT_AGENT, **headers, "CF-Connecting-IP": CLIENT_IP}, status, body)
                    fresh += 1
                    shaped = (lambda k: fresh * 10**10 + k) if a.shape == "first-seen" else (lambda k: None)
                    loadlib.wrk(ADDR, spec, 2, fresh=shaped(0))  # warm-up, not sampled
                    data = os.path.join(work, "perf.data")
                    rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", str(HZ), "-p", str(w.proc.pid),
                                            "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.3)
                    n, _ = loadlib.wrk(ADDR, spec, a.seconds, fresh=shaped(10**9))
                    rec.send_signal(2)
                    rec.wait(30)
                    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio", "-n",
                                          "-g", "none"], capture_output=True, text=True).stdout
                finally:
                    w.close()
                got = seen.setdefault(c, {"requests": 0, "symbols": {}})
                got["requests"] += n
                for line in out.splitlines():
                    m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\S+(?: tid \d+)?)\s+\[.\]\s+(.*)$", line)
                    if m:
                        count, dso, sym = int(m.group(1)), m.group(2), m.group(3).strip()
                        sym = re.sub(r"^JS:[*~^+']*", "JS:", re.sub(r"-(liftoff|turbofan)$", "", sym))
                        key = (part(dso, sym), sym)
                        got["symbols"][key] = got["symbols"].get(key, 0) + count
    finally:
        up.close()
        shutil.rmtree(work, ignore_errors=True)

    def per1000(c, key):
        return seen[c]["symbols"].get(key, 0) / seen[c]["requests"] * 1000

    print(f"{a.kind}, {a.shape}: samples per 1000 requests ({HZ} Hz: one sample is {1e6 / HZ:.0f} us of CPU)")
    print(f"{'contender':14} {'all':>8} {'wasm':>8} {'javascript':>11} {'workerd':>8} {'kernel':>8}")
    for c in seen:
        parts = {}
        for (p, _), count in seen[c]["symbols"].items():
            parts[p] = parts.get(p, 0) + count / seen[c]["requests"] * 1000
        print(f"{os.path.basename(c.rstrip('/')):14} {sum(parts.values()):8.1f} {parts.get('wasm', 0):8.1f} "
              f"{parts.get('javascript', 0):11.1f} {parts.get('workerd', 0):8.1f} {parts.get('kernel', 0):8.1f}")
    first = a.contenders[0]
    for c in a.contenders[1:]:
        keys = set(seen[first]["symbols"]) | set(seen[c]["symbols"])
        rows = sorted(((per1000(first, k) - per1000(c, k), k) for k in keys), key=lambda r: -abs(r[0]))
        print(f"\n{os.path.basename(first.rstrip('/'))} minus {os.path.basename(c.rstrip('/'))}, the largest differences:")
        for d, (p, sym) in rows[:a.top]:
            print(f"{d:+7.2f} {per1000(first, (p, sym)):7.2f} {per1000(c, (p, sym)):7.2f}  {p:10} {sym[:100]}")


if __name__ == "__main__":
    main()
