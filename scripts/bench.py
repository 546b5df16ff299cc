#!/usr/bin/env python3
"""Benchmark: CPU per request of the Rust worker against a baseline JavaScript
worker doing the same job (bench/baseline.js), side by side in one run, both
under plain `workerd serve` against the same nginx upstream on loopback.

    python3 scripts/bench.py [--requests N] [--no-build]

For each request kind it sends a bounded number of keep-alive requests with
wrk (bench/load.lua: bounded by time and capped in count), and reads each workerd process's CPU time (utime + stime from /proc)
before and after; CPU per request is the difference over the requests served
(it includes workerd's own HTTP work, the same for both). It also measures
cold start: from spawning workerd to the first answered request, for each.

Not a test: it prints figures, it asserts nothing about speed.
"""

import argparse
import os
import shutil
import statistics
import sys
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402

KINDS = ["ping", "token", "manifest-head", "manifest-get", "blob", "challenge", "error"]
ADDRS = {"rust": "127.0.0.30:18080", "js": "127.0.0.31:18081"}


def first_response(addr):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("GET", "/v2/", headers={"Host": loadlib.MIRROR_HOST})
    s = c.getresponse().status
    c.close()
    return s


def cold_start(work, kind, runs=5):
    times = []
    for _ in range(runs):
        w = loadlib.Workerd(work, kind, ADDRS[kind])
        try:
            assert first_response(ADDRS[kind]) == 401
            times.append((time.time() - w.started) * 1000)
        finally:
            w.close()
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=4, help="seconds of load per kind and worker")
    ap.add_argument("--requests", type=int, default=500000, help="cap on requests per kind and worker")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    a = ap.parse_args()
    if not a.no_build:
        loadlib.build_worker()
    work = loadlib.workdir()
    up = loadlib.Upstream(work)
    workers = {}
    try:
        cold = {k: cold_start(work, k, runs=a.cold_runs) for k in ("rust", "js")}
        workers = {k: loadlib.Workerd(work, k, ADDRS[k]) for k in ("rust", "js")}
        rows = []
        for kind in a.kinds.split(","):
            res = {}
            for w in ("rust", "js"):
                spec = loadlib.kinds(up.blob_digest)[kind]
                loadlib.wrk(ADDRS[w], spec, 1)  # warm-up
                before = workers[w].cpu_seconds()
                n, rps = loadlib.wrk(ADDRS[w], spec, a.seconds, limit=a.requests)
                cpu = workers[w].cpu_seconds() - before
                res[w] = (cpu / n * 1e6, rps, n)
            rows.append((kind, res))
        print(f"\nCPU per request (workerd utime+stime / requests); per kind and worker {a.seconds} s of keep-alive load,"
              f" at most {a.requests} requests, wrk -t1 -c4")
        print(f"{'kind':14} {'rust us/req':>12} {'js us/req':>10} {'rust/js':>8} {'rust req/s':>11} {'js req/s':>9} {'requests':>9}")
        for kind, res in rows:
            r, j = res["rust"], res["js"]
            print(f"{kind:14} {r[0]:12.0f} {j[0]:10.0f} {r[0] / j[0]:8.2f} {r[1]:11.0f} {j[1]:9.0f} {r[2]:>4}/{j[2]:<4}")
        print(f"\ncold start (spawn workerd -> first answer, median of 5): rust {cold['rust']:.0f} ms, js {cold['js']:.0f} ms")
        print(f"workerd RSS after the run: rust {workers['rust'].rss_kib()} KiB, js {workers['js'].rss_kib()} KiB")
    finally:
        for w in workers.values():
            w.close()
        up.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
