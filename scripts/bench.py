#!/usr/bin/env python3
"""Benchmark: CPU per request of the Rust worker against a baseline JavaScript
worker doing the same job (bench/baseline.js), side by side in one run, both
under plain `workerd serve` against the same nginx upstream on loopback.

    python3 scripts/bench.py [--rounds N] [--seconds S] [--kinds a,b] [--no-build] [--no-memo]

Each kind repeats one request, so the shipped build answers all but the
first from its memo of recent actions (src/edge.js); --no-memo builds the
entry without it, so every request runs the planner in wasm (the cost of a
request the memo has not seen).

First it checks that both workers do the same job: for every request kind,
one request to each, comparing status, body, the headers clients act on, and
the subrequests nginx saw (method, path, decoded query, Authorization,
Range). Then, in rounds, each with freshly started workerd processes pinned
to one CPU (wrk, nginx and this script on the other), it loads each kind on
each worker in turn (the order alternating round by round) with bounded keep-alive runs (wrk and
bench/load.lua: bounded by time and capped in count) and reads each workerd
process's CPU time (utime + stime from /proc) before and after: CPU per
request is the difference over the requests served (it includes workerd's
own HTTP work, the same for both). Every round is printed; the summary is the
median per kind and the median of the per-round ratios. It also measures cold
start (spawning workerd to the first answer), interleaved the same way.

Not a test: it prints figures and asserts nothing about speed. It fails only
when the two workers do not do the same job.
"""

import argparse
import hashlib
import http.client
import os
import shutil
import statistics
import sys
import time
from urllib.parse import parse_qsl, unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402

ADDRS = {"rust": "127.0.0.30:18080", "js": "127.0.0.31:18081"}
# Response headers clients act on; both workers must send the same values.
COMPARED = ["content-type", "content-length", "www-authenticate", "location", "allow", "docker-content-digest",
            "docker-distribution-api-version", "content-range", "set-cookie"]
TARGET = 1.05


def one(addr, kind):
    method, path, headers, _, body = kind
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path, body=body, headers={"Host": loadlib.MIRROR_HOST, **headers})
    r = c.getresponse()
    data = r.read()
    c.close()
    got = {k.lower(): v for k, v in r.getheaders() if k.lower() in COMPARED}
    return r.status, hashlib.sha256(data).hexdigest()[:16], got


def subrequests(up, since):
    """nginx's log lines after `since`, normalised: the query decoded into
    sorted pairs (the workers may percent-encode differently)."""
    lines = up.access_log()[since:]
    out = []
    for line in lines:
        port, method, uri, *rest = line.split(" ")
        path, _, query = uri.partition("?")
        out.append((port, method, unquote(path), tuple(sorted(parse_qsl(query, keep_blank_values=True))), tuple(rest)))
    return out


def same_job(up, names):
    """One request per kind to each worker: same answer, same subrequests."""
    problems = []
    for name in names:
        kind = loadlib.kinds(up.blob_digest)[name]
        seen = {}
        for w in ("rust", "js"):
            mark = len(up.access_log())
            answer = one(ADDRS[w], kind)
            time.sleep(0.05)  # nginx writes its log line after answering
            seen[w] = (answer, subrequests(up, mark))
        (ra, rs), (ja, js) = seen["rust"], seen["js"]
        if ra != ja:
            problems.append(f"{name}: answers differ:\n  rust {ra}\n  js   {ja}")
        if rs != js:
            problems.append(f"{name}: subrequests differ:\n  rust {rs}\n  js   {js}")
        if ra[0] != kind[3]:
            problems.append(f"{name}: status {ra[0]}, expected {kind[3]}")
        print(f"same job: {name:14} status {ra[0]}, {len(rs)} subrequest(s), {'ok' if ra == ja and rs == js else 'DIFFERENT'}")
    return problems


def first_answer(addr):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("GET", "/v2/", headers={"Host": loadlib.MIRROR_HOST})
    s = c.getresponse().status
    c.close()
    return s


def cold_starts(work, runs):
    times = {"rust": [], "js": []}
    for i in range(runs):
        for w in (("rust", "js") if i % 2 == 0 else ("js", "rust")):
            p = loadlib.Workerd(work, w, ADDRS[w], cpu=WORKER_CPU)
            try:
                if first_answer(ADDRS[w]) != 401:
                    raise RuntimeError(f"{w}: the first answer was not the local 401")
                times[w].append((time.time() - p.started) * 1000)
            finally:
                p.close()
    return {w: statistics.median(t) for w, t in times.items()}


def measure(worker, addr, spec, seconds, limit):
    loadlib.wrk(addr, spec, 1, limit=limit)  # warm-up, not counted
    before = worker.cpu_seconds()
    n, rps = loadlib.wrk(addr, spec, seconds, limit=limit)
    return (worker.cpu_seconds() - before) / n * 1e6, rps, n


# With two CPUs or more, the workers run on CPU 0 and everything else (this
# script, wrk, nginx) on CPU 1, so the load generator does not steal the
# measured process's time slices.
WORKER_CPU = 0 if (os.cpu_count() or 1) >= 2 else None


def main():
    if WORKER_CPU is not None:
        os.sched_setaffinity(0, {1})
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds over all kinds")
    ap.add_argument("--seconds", type=int, default=2, help="seconds of load per kind, worker and round")
    ap.add_argument("--requests", type=int, default=200000, help="cap on requests per run")
    ap.add_argument("--cold-runs", type=int, default=7)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--routes", default="bench/routes.bench.toml",
                    help="route table for the Rust build (bench/routes.bench-log.toml: the same with log = true)")
    ap.add_argument("--features", default="", help="cargo features for the Rust build (e.g. worker-crate, to measure what linking it costs)")
    ap.add_argument("--no-memo", action="store_true",
                    help="build the entry without its memo of recent actions: every request runs the planner in wasm")
    ap.add_argument("--js-redirects", choices=["runtime", "manual"], default="runtime",
                    help="manual: the baseline follows redirects itself, as the worker once did (measures what runtime following saves)")
    names = list(loadlib.kinds("sha256:x"))
    ap.add_argument("--kinds", default=",".join(names), help="comma-separated subset of " + ",".join(names))
    a = ap.parse_args()
    kinds = a.kinds.split(",")
    if not a.no_build:
        loadlib.build_worker(features=a.features or None, routes=a.routes, memo=not a.no_memo)
    work = loadlib.workdir()
    up = loadlib.Upstream(work)
    workers = {}
    try:
        cold = cold_starts(work, a.cold_runs)

        def start():
            return {w: loadlib.Workerd(work, w, ADDRS[w], {"REDIRECTS": a.js_redirects} if w == "js" else None, cpu=WORKER_CPU)
                    for w in ("rust", "js")}

        workers = start()
        problems = same_job(up, kinds)
        if problems:
            print("\n".join(problems))
            sys.exit("the two workers do not do the same job; fix bench/baseline.js (or the worker) first")
        results = {k: {"rust": [], "js": [], "ratio": []} for k in kinds}
        print(f"\nCPU per request in us (workerd utime+stime / requests), {a.seconds} s per run, wrk -t1 -c4")
        for r in range(a.rounds):
            # Fresh processes every round: a process keeps its own speed (its
            # memory layout, its JIT's choices) for its whole life, so rounds
            # in the same processes would not be independent samples.
            if r > 0:
                for w in workers.values():
                    w.close()
                workers = start()
            line = []
            for i, name in enumerate(kinds):
                spec = loadlib.kinds(up.blob_digest)[name]
                order = ("rust", "js") if (r + i) % 2 == 0 else ("js", "rust")
                got = {w: measure(workers[w], ADDRS[w], spec, a.seconds, a.requests) for w in order}
                for w in ("rust", "js"):
                    results[name][w].append(got[w])
                ratio = got["rust"][0] / got["js"][0]
                results[name]["ratio"].append(ratio)
                line.append(f"{name} {got['rust'][0]:.0f}/{got['js'][0]:.0f}={ratio:.2f}")
            print(f"round {r + 1}: " + "  ".join(line), flush=True)
        print(f"\nmedians over {a.rounds} rounds (rust/js is the median of the per-round ratios; target <= {TARGET})")
        print(f"{'kind':14} {'rust us/req':>12} {'js us/req':>10} {'rust/js':>8} {'rust req/s':>11} {'js req/s':>9}  target")
        for name in kinds:
            res = results[name]
            r_us = statistics.median(x[0] for x in res["rust"])
            j_us = statistics.median(x[0] for x in res["js"])
            r_rps = statistics.median(x[1] for x in res["rust"])
            j_rps = statistics.median(x[1] for x in res["js"])
            ratio = statistics.median(res["ratio"])
            print(f"{name:14} {r_us:12.0f} {j_us:10.0f} {ratio:8.2f} {r_rps:11.0f} {j_rps:9.0f}  {'met' if ratio <= TARGET else 'NOT MET'}")
        print(f"\ncold start (spawn workerd -> first answer, median of {a.cold_runs}, interleaved): "
              f"rust {cold['rust']:.0f} ms, js {cold['js']:.0f} ms")
        print(f"workerd RSS after the run: rust {workers['rust'].rss_kib()} KiB, js {workers['js'].rss_kib()} KiB")
    finally:
        for w in workers.values():
            w.close()
        up.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
