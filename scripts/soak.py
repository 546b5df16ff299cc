#!/usr/bin/env python3
"""Soak: many mixed requests through one workerd isolate, checking that the
worker's linear memory stays within 2 MiB and does not grow, that every
status is the expected one, and that no blob or manifest byte is lost or
corrupted.

    python3 scripts/soak.py [--requests N] [--connections C] [--no-build]

It builds the worker with the `memory-probe` feature (every response carries
`x-wasm-memory-pages`) and the bench route table, serves it with plain
`workerd serve` against the nginx upstream (bench/nginx.conf), and drives
rounds of short wrk runs, one per request kind (ping, token, manifest HEAD and GET,
blob through the redirect, upstream challenge, local error), each capped in
count and bounded in time. Meanwhile a checker thread GETs blobs and
manifests and verifies their sha256. Linear memory is sampled after every run.

Exits non-zero (and says why) on an unexpected status, a digest mismatch,
linear memory above 2 MiB, or growth between the first and last tenth.
"""

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402

ADDR = "127.0.0.32:18082"
LIMIT_PAGES = 32  # 2 MiB of 64 KiB pages
WORKER = "rust"


def get(conn, path, headers):
    conn.request("GET", path, headers={"Host": loadlib.MIRROR_HOST, **headers})
    r = conn.getresponse()
    return r.status, r.getheader("x-wasm-memory-pages"), r.read()


def pages():
    if WORKER == "js":
        return 0
    c = http.client.HTTPConnection(*ADDR.split(":"), timeout=10)
    try:
        status, p, _ = get(c, "/v2/", {})
        if status != 401 or p is None:
            raise RuntimeError(f"memory probe failed: {status} {p} (is this a memory-probe build?)")
        return int(p)
    finally:
        c.close()


class Checker(threading.Thread):
    """GETs the blob (through the worker's redirect handling) and the manifest
    over one keep-alive connection, verifying every byte by digest."""

    def __init__(self, up):
        super().__init__(daemon=True)
        self.up = up
        self.stop = threading.Event()
        self.checked = 0
        self.bad = []

    def run(self):
        c = http.client.HTTPConnection(*ADDR.split(":"), timeout=30)
        want = [(f"/v2/app/blobs/{self.up.blob_digest}", self.up.blob_digest),
                ("/v2/app/manifests/1", self.up.manifest_digest)]
        i = 0
        while not self.stop.is_set():
            path, digest = want[i % 2]
            i += 1
            try:
                status, _, body = get(c, path, {**loadlib.AUTH, **loadlib.MANIFEST})
            except (OSError, http.client.HTTPException) as e:
                self.bad.append(f"{path}: {e!r}")
                c.close()
                c = http.client.HTTPConnection(*ADDR.split(":"), timeout=30)
                continue
            got = "sha256:" + hashlib.sha256(body).hexdigest()
            if status != 200 or got != digest:
                self.bad.append(f"{path}: status {status}, {len(body)} bytes, {got}")
            self.checked += 1
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000, help="wrk requests in all (the checker's come on top)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=20, help="at least this many rounds over all kinds")
    ap.add_argument("--warmup", type=int, default=3, help="rounds over all kinds before sampling starts")
    ap.add_argument("--max-seconds", type=int, default=1200, help="give up (and fail) after this long")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--worker", choices=["rust", "js"], default="rust",
                    help="js: the baseline worker under the same load, for comparing workerd's RSS (no linear-memory checks)")
    a = ap.parse_args()
    global WORKER
    WORKER = a.worker
    if not a.no_build and a.worker == "rust":
        loadlib.build_worker(features="memory-probe", memo=False)
    work = loadlib.workdir()
    up = loadlib.Upstream(work)
    w = loadlib.Workerd(work, a.worker, ADDR)
    checker = Checker(up)
    failures = []
    try:
        start_pages = pages()
        rss_start = w.rss_kib()
        kinds = loadlib.kinds(up.blob_digest)
        threads = 2
        conns = max(threads, a.connections)
        samples = []  # (requests so far, pages, rss KiB)
        total = 0
        t0 = time.time()
        checker.start()
        # Rounds of one short wrk run per kind (1 s each, capped in count)
        # until the total is reached; the whole soak is bounded in time too.
        # Warm-up rounds at full concurrency, not sampled: linear memory
        # never shrinks, so it first climbs to what this concurrency needs.
        for _ in range(a.warmup):
            for spec in kinds.values():
                loadlib.wrk(ADDR, spec, seconds=1, limit=max(1, a.requests // (len(kinds) * a.rounds) // threads),
                            threads=threads, connections=conns)
        warm_pages = pages()
        while total < a.requests:
            if time.time() - t0 > a.max_seconds:
                raise RuntimeError(f"only {total} of {a.requests} requests in {a.max_seconds} s")
            for name, spec in kinds.items():
                cap = max(1, min(a.requests - total, a.requests // (len(kinds) * a.rounds)) // threads)
                n, _ = loadlib.wrk(ADDR, spec, seconds=1, limit=cap, threads=threads, connections=conns)
                total += n
                samples.append((total, pages(), w.rss_kib()))
                if total >= a.requests:
                    break
        checker.stop.set()
        checker.join(60)
        took = time.time() - t0
        end_pages = pages()
        tenth = max(1, len(samples) // 10)
        first = max(p for _, p, _ in samples[:tenth])
        last = max(p for _, p, _ in samples[-tenth:])
        rss_first = max(r for _, _, r in samples[:tenth])
        rss_last = max(r for _, _, r in samples[-tenth:])
        print(f"soak: {total} wrk requests + {checker.checked} digest-checked GETs in {took:.0f} s "
              f"({(total + checker.checked) / took:.0f} req/s), {conns} connections, one isolate")
        print(f"linear memory: start {start_pages} pages ({start_pages * 64} KiB), after warm-up {warm_pages}, first tenth max {first}, "
              f"last tenth max {last}, end {end_pages} pages ({end_pages * 64} KiB); limit {LIMIT_PAGES} pages (2 MiB)")
        series, prev, count = [], None, 0
        for _, p, _ in samples + [(0, None, 0)]:
            if p != prev and prev is not None:
                series.append(f"{prev}x{count}")
                count = 0
            prev, count = p, count + 1
        print(f"pages after each run (value x runs): {' '.join(series)}")
        print(f"workerd RSS: start {rss_start} KiB, first tenth max {rss_first} KiB, last tenth max {rss_last} KiB")
        print(f"unexpected statuses: 0; digest mismatches or errors: {len(checker.bad)}")
        if checker.checked == 0:
            failures.append("the checker verified nothing")
        if checker.bad:
            failures.append(f"{len(checker.bad)} bad checks, e.g. {checker.bad[:3]}")
        if max(start_pages, end_pages, last) > LIMIT_PAGES:
            failures.append(f"linear memory above 2 MiB: {max(start_pages, end_pages, last)} pages")
        if last > first:
            failures.append(f"linear memory grew from {first} to {last} pages between the first and last tenth")
    except RuntimeError as e:
        failures.append(str(e))
    finally:
        checker.stop.set()
        w.close()
        up.close()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("soak FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("soak passed")


if __name__ == "__main__":
    main()
