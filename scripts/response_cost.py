#!/usr/bin/env python3
"""What workerd charges for the pieces of a local answer: a Response, its
body, its headers built one way or another, a request header read.

    python3 scripts/response_cost.py [--rounds 7] [--n 200000] [--variants a,b]

Starts one workerd (pinned to CPU 0 where there are two) with
bench/response_cost.js; each request makes the worker build `n` Responses
(or read a header `n` times) the way a variant says, and the CPU time
workerd spent on it (utime + stime from /proc), divided by `n`, is the
cost of one. Variants interleave round by round, the order rotating; the
figure is the median over rounds, garbage collection included. The "loop"
variant is the loop alone. These are what src/edge.js's choice of how to
build the mirror's own answers rests on (ownHeaders). Not a test: it
prints figures.
"""

import argparse
import os
import shutil
import statistics
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import loadlib  # noqa: E402

VARIANTS = ["loop", "no-body", "body", "3-plain", "4-plain", "4-headers-new", "4-headers-kept", "4-pairs", "get-absent",
            "get-user-agent"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=200000, help="constructions (or reads) per request")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    a = ap.parse_args()
    variants = a.variants.split(",")
    if any(v not in VARIANTS for v in variants):
        sys.exit("variants are " + ", ".join(VARIANTS))
    work = loadlib.workdir()
    addr = "127.0.0.59:18079"
    # A JavaScript worker under bench/, as loadlib starts the baseline.
    loadlib.Workerd.SCRIPTS = dict(loadlib.Workerd.SCRIPTS, cost="response_cost.js")
    w = loadlib.Workerd(work, "cost", addr, cpu=bench.WORKER_CPU)
    try:
        def go(v, n):
            req = urllib.request.Request(f"http://{addr}/?v={v}&n={n}",
                                         headers={"Host": loadlib.MIRROR_HOST, "User-Agent": loadlib.CLIENT_AGENT})
            with urllib.request.urlopen(req, timeout=300) as r:
                r.read()
        for v in variants:
            go(v, a.n // 10)  # warm-up: V8 compiles the loop
        got = {v: [] for v in variants}
        for r in range(a.rounds):
            for v in bench.rotate(variants, r):
                before = w.cpu_seconds()
                go(v, a.n)
                got[v].append((w.cpu_seconds() - before) / a.n * 1e9)
        print(f"ns of workerd CPU per construction or read, medians of {a.rounds} rounds of {a.n}:")
        for v in variants:
            print(f"  {v:16} {statistics.median(got[v]):7.0f}   rounds: " + " ".join(f"{x:.0f}" for x in got[v]))
    finally:
        w.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
