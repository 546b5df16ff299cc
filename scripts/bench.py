#!/usr/bin/env python3
"""Benchmark: CPU per request of the Rust worker against other workers doing
the same requests, side by side in one run, all under plain `workerd serve`
against the same nginx upstream on loopback.

    python3 scripts/bench.py [--rounds N] [--seconds S] [--kinds a,b]
        [--shapes repeated,first-seen] [--contenders rust,js,floor] [--no-build]

Contenders (the first is the one judged; ratios are it against each other):
  rust    the worker as shipped (memo of repeated actions on)
  nomemo  the same worker built with EDGE_MEMO=0: every request runs the
          planner in wasm (`--contenders rust,nomemo` is the memo's A/B)
  access  the worker as shipped with bench/routes.bench-access.toml: access
          keys and a client allow list; every request carries the key (as
          the first path segment), and the comparison of answers takes the
          key out of the mirror's own URLs
  rate    the access contender with a rate limit too (rate_limit, the
          binding miniflare's under workerd, its limit never reached): what
          the call costs on manifest and blob requests
Every request to every contender carries CF-Connecting-IP, as Cloudflare
sets it on every request (the access contender's allow list admits it), and
dockerd's User-Agent.
  js      bench/baseline.js: the same mirror job written as a lean JavaScript
          worker would be (same answers, same subrequests)
  floor   bench/floor.js: each kind's inherent work only (constant local
          answers, one fetch with the client's request as it came, redirects
          followed by the runtime): how much of a request's cost is ours at all
  rung1..rung4  bench/floor.js with RUNG = 1..4: the floor plus one piece of the worker's
          work after another (header allow-list, timeout, awaiting and
          checking the response, rewriting a challenge): where the cost
          between the floor and the worker goes
  seed002 seed 002's worker (the JavaScript mirror worker most copied), read
          at bench time from the seed file (../shared/seeds, or SEEDS) and
          configured for the benchmark's domain and upstream; for each step of
          a pull, the requests a client makes through it (its own token
          endpoint; manifests and blobs by their library/ path, as dockerd's
          registry-mirrors asks; with --seed002-redirects, by the short name
          first, which it answers with a 301), summed (the kinds it has no
          such step for are not measured on it)
  DIR     a directory holding a prebuilt index.js and index_bg.wasm (for
          measuring one lever against the shipped build); one whose name
          ends in -keyed is an access table's, asked as `access` is; in
          -keyed2, its secret holds a second key (kind ping-two-keys)

Traffic shapes, each in its own interleaved rounds:
  repeated    the same URL again and again (a popular tag or layer)
  first-seen  every request's URL new (a query parameter counting up), so
              neither the memo nor anything else can answer from an earlier
              request: what a small team's pulls look like to one isolate

First it checks that the contenders do the same job: for every request kind,
one request to each, comparing status, body, the headers clients act on, and
the subrequests nginx saw (method, path, decoded query, Authorization,
Range); the floor and the ladder only have to give the same status. Then, in rounds, each
with freshly started workerd processes pinned to one CPU (wrk, nginx and
this script on the other), it loads each kind on each contender in turn (the
order rotating kind by kind and round by round) with bounded keep-alive runs
(wrk and bench/load.lua: bounded by time and capped in count) and reads each
workerd process's CPU time (utime + stime from /proc) before and after: CPU
per request is the difference over the requests served (it includes
workerd's own HTTP work, the same for all). Every round is printed; the
summary is the median per kind and the median of the per-round ratios, with
the lowest and highest round's ratio beside it (--ratios picks the pairs),
and, per ratio, how widely a row's rounds spread and so what a row's median
is good to, with the ratio over all rounds of all rows. "pull"
is one `docker pull` of a 5-layer image as a client makes it (ping, token,
manifest HEAD, 2 manifest GETs, 6 blobs), summed per round from the same
figures. It also measures cold start (spawning workerd to the first answer),
interleaved the same way.

With --slices N, a kind's runs on the contenders are not one after another
but cut up: each contender's counted load is N slices of requests (a count
sized to seconds/N at its own rate), taken in turn with the others' (the
order rotating slice by slice), after warm-up slices taken the same way;
CPU is read in ns from /proc/PID/task/*/schedstat, since utime and stime
count 10 ms ticks. A drift of the shared machine longer than a slice then
falls on every contender alike. Processes start in an order that rotates
round by round, and --warm-start gives each a number of local 401s first,
past V8's compile of the entry. Two copies of the same build as contenders
(an A/A pair) show what the method can resolve: their ratio is 1 but for
noise.

With --gc-bounds (and --slices), every contender runs behind loadlib's gc
hook (a module in front of the worker that answers /__gc with a full
garbage collection, V8 started with --expose-gc), and each slice starts
from a full collection and ends with a counted one, less what a collection
with no garbage costs. V8's own collections of a workerd isolate cost 40-60
ms each (the C++ objects of every request's Request, Headers and Response
finalized, their wrappers detached), one every few thousand local 401s: a
quarter-second slice holds one or none, and the one that holds it costs a
third more. Bounded by collections, a slice pays for exactly the garbage
its own requests left.

Not a test: it prints figures and asserts nothing about speed. It fails only
when the contenders do not do the same job.
"""

import argparse
import hashlib
import http.client
import itertools
import json
import math
import os
import shutil
import statistics
import sys
import time
from urllib.parse import parse_qsl, unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadlib  # noqa: E402

# Response headers clients act on; the contenders must send the same values.
COMPARED = ["content-type", "content-length", "www-authenticate", "location", "allow", "docker-content-digest",
            "docker-distribution-api-version", "content-range", "set-cookie"]
# One docker pull of a 5-layer image: the kinds and how often each comes.
PULL = {"local-401": 1, "token-get": 1, "manifest-head": 1, "manifest-get": 2, "blob": 6}
SHAPES = ("repeated", "first-seen")


def one(addr, kind, key=None):
    """One request: status, a hash of the body, the compared headers (with
    `key`, the mirror's own URLs without it, to compare with the others).
    A mixed kind: one request of each path, the statuses, hashes and
    headers of both."""
    method, path, headers, status, body = kind
    if isinstance(path, tuple):
        got = [one(addr, (method, p, headers, s, body), key) for p, s in zip(path, status)]
        return tuple(g[0] for g in got), "+".join(g[1] for g in got), [g[2] for g in got]
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request(method, path, body=body, headers={"Host": loadlib.MIRROR_HOST, **headers})
    r = c.getresponse()
    data = r.read()
    c.close()
    got = {k.lower(): v if key is None else v.replace(f"/{key}/", "/") for k, v in r.getheaders() if k.lower() in COMPARED}
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


class Contender:
    def __init__(self, name, addr, kind, build=None, bindings=None, keys=0):
        # The "access" contender (keys > 0): its table has access keys and a
        # client allow list, its secret holds `keys` of BENCH_KEYS, and its
        # requests carry the first and an allowed address.
        self.name, self.addr, self.kind, self.build, self.keys = name, addr, kind, build, keys
        self.keyed = BENCH_KEY if keys else None
        self.bindings = {"MIRROR_KEYS": ",".join(BENCH_KEYS[:keys]), **(bindings or {})} if keys else bindings

    def start(self, work, gc_hook=False):
        return loadlib.Workerd(work, self.kind, self.addr, self.bindings, cpu=WORKER_CPU, build=self.build, name=self.name,
                               gc_hook=gc_hook)


def same_job(up, names, contenders):
    """One request per kind to each contender: the same answer and the same
    subrequests as the first (the floor and the ladder: the same status)."""
    problems = []
    ref = contenders[0]
    for name in names:
        kind = loadlib.kinds(up.blob_digest, two_keys=True)[name]
        seen = {}
        asked = [c for c in contenders if c.kind == "seed002" or specs_for(c, name, up)]
        if len(asked) < len(contenders):
            print(f"same job: {name:14} not asked of {', '.join(c.name for c in contenders if c not in asked)}")
        if not asked or asked[0] is not contenders[0]:
            continue
        for c in asked:
            if c.kind == "seed002":
                continue
            mark = len(up.access_log())
            answer = one(c.addr, specs_for(c, name, up)[0], c.keyed)
            time.sleep(0.05)  # nginx writes its log line after answering
            seen[c.name] = (answer, subrequests(up, mark))
        ra, rs = seen[ref.name]
        if ra[0] != kind[3]:
            problems.append(f"{name}: status {ra[0]}, expected {kind[3]}")
        verdict = []
        for c in asked[1:]:
            if c.kind == "seed002":
                got = [(one(c.addr, s)[0], s[3]) for s in specs_for(c, name, up)]
                ok = all(g == w for g, w in got)
                if not ok:
                    problems.append(f"{name}: seed 002 answered {[g for g, _ in got]}, expected {[w for _, w in got]}")
                verdict.append(f"{c.name} {'ok' if ok else 'DIFFERENT'} ({len(got)} request(s))")
                continue
            ca, cs = seen[c.name]
            if c.kind == "floor" or c.kind.startswith("rung"):
                ok = ca[0] == ra[0]
                if not ok:
                    problems.append(f"{name}: the floor answered {ca[0]}, {ref.name} {ra[0]}")
            else:
                ok = ca == ra and cs == rs
                if ca != ra:
                    problems.append(f"{name}: answers differ:\n  {ref.name} {ra}\n  {c.name} {ca}")
                if cs != rs:
                    problems.append(f"{name}: subrequests differ:\n  {ref.name} {rs}\n  {c.name} {cs}")
            verdict.append(f"{c.name} {'ok' if ok else 'DIFFERENT'}")
        print(f"same job: {name:14} status {ra[0]}, {len(rs)} subrequest(s); " + ", ".join(verdict))
    return problems


SEED002_REDIRECTS = False


def specs_for(c, name, up):
    """The requests contender `c` gets for kind `name`: the kind itself, or
    for seed 002 what a client sends it for that step (possibly none)."""
    if c.kind == "seed002":
        return loadlib.seed002_kinds(up.blob_digest, SEED002_REDIRECTS).get(name, [])
    # Every request carries CF-Connecting-IP, as Cloudflare sets it on every
    # request a worker gets (the access contender's allow list admits it),
    # and a registry client's User-Agent (which the scanner list is tested
    # against), as every client sends one.
    method, path, headers, status, body = loadlib.kinds(up.blob_digest, two_keys=True)[name]
    headers = {"User-Agent": CLIENT_AGENT, **headers, "CF-Connecting-IP": CLIENT_IP}
    if name == "ping-two-keys":
        # Only for a worker whose secret holds both keys (a prebuilt folder
        # ending in -keyed2); not measured on the others.
        if c.keys < 2:
            return []
        return [(method, tuple(f"/{k}{p}" for k, p in zip(BENCH_KEYS, path)), headers, status, body)]
    if c.keyed is not None:
        path = tuple(f"/{c.keyed}{p}" for p in path) if isinstance(path, tuple) else f"/{c.keyed}{path}"
    return [(method, path, headers, status, body)]


def first_answer(contender):
    host, port = contender.addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    if contender.keyed is None:
        c.request("GET", "/v2/", headers={"Host": loadlib.MIRROR_HOST})
    else:
        c.request("GET", f"/{contender.keyed}/v2/", headers={"Host": loadlib.MIRROR_HOST, "CF-Connecting-IP": CLIENT_IP})
    s = c.getresponse().status
    c.close()
    return s


def cold_starts(work, contenders, runs):
    times = {c.name: [] for c in contenders}
    for i in range(runs):
        for c in rotate(contenders, i):
            p = c.start(work)
            try:
                if first_answer(c) != 401:
                    raise RuntimeError(f"{c.name}: the first answer was not the local 401")
                times[c.name].append((time.time() - p.started) * 1000)
            finally:
                p.close()
    return {n: statistics.median(t) for n, t in times.items() if t}


_fresh = itertools.count(1)


def measure_all(worker, addr, specs, seconds, limit, shape, warm):
    """CPU per client step: the sum over its requests (None when the
    contender has no such step)."""
    if not specs:
        return (None, 0, 0)
    got = [measure(worker, addr, s, seconds, limit, shape, warm) for s in specs]
    return (sum(g[0] for g in got), min(g[1] for g in got), sum(g[2] for g in got))


def fresh_start(shape):
    """Where a run's URLs start counting in the first-seen shape (None: the
    repeated one). Each run's start far from every earlier run's (threads
    and connections take their own ranges of 10^8 inside a run)."""
    return next(_fresh) * 10**10 if shape == "first-seen" else None


def measure(worker, addr, spec, seconds, limit, shape, warm):
    # Warm-up, not counted: V8 optimizes the entry's hot functions in it. A
    # function TurboFan compiles costs its compile once (a keyed table's
    # admit, unlock and call: about 50 ms between 2 and 3 s of local 401s);
    # --warm 4 measures after it, the default 1 s may count it.
    loadlib.wrk(addr, spec, warm, limit=limit, fresh=fresh_start(shape))
    before = worker.cpu_seconds()
    n, rps = loadlib.wrk(addr, spec, seconds, limit=limit, fresh=fresh_start(shape))
    return (worker.cpu_seconds() - before) / n * 1e6, rps, n


def collect(addr):
    """A full garbage collection in the worker's isolate (a Workerd started
    with gc_hook): GET /__gc."""
    status = one(addr, ("GET", loadlib.GC_PATH, {}, 204, None))[0]
    if status != 204:
        raise RuntimeError(f"{addr}{loadlib.GC_PATH}: {status}, expected 204 (is the gc hook in front?)")


def measure_sliced(order, running, specs, seconds, warm, slices, shape, gc_bounds=False):
    """One kind on every contender at once, in slices taken in turn (the
    order rotating slice by slice): first the warm-up's, uncounted, then
    `slices` counted ones per contender. A slice is a bounded count of
    requests sized to last seconds/slices at that contender's rate (timed
    on a first short run); CPU is read from the scheduler's ns counters. A
    drift of the shared machine lasting longer than a slice falls on every
    contender alike, and no contender sits idle between its warm-up and its
    count while the others warm up (a workerd process left idle for a few
    seconds after load ran 1-4 % slower afterwards). Returns, per
    contender, what measure_all() does.

    With gc_bounds (the contenders started with the gc hook), every slice
    starts from a full garbage collection and ends with one that is
    counted, less what a full collection of no garbage costs (the second
    of two in a row, measured before each slice; the median is taken off
    each slice): a slice then pays for collecting exactly the garbage its
    own requests left. Without it, V8's collections fall where the heap
    fills: a local 401's slice of a quarter second holds one or none, and
    one costs 40-60 ms (a third more CPU in the slice that holds it)."""
    # How long a slice may take at most: wrk counts in whole seconds.
    bound = max(2, int(4 * seconds / slices) + 1)
    sizes, cpu, served = {}, {}, {}
    for c in order:
        sizes[c.name] = []
        for spec in specs[c.name]:
            t = time.monotonic()
            n, _ = loadlib.wrk(c.addr, spec, bound, fresh=fresh_start(shape), total=1000)
            sizes[c.name].append(max(50, int(n / (time.monotonic() - t) * seconds / slices)))
        cpu[c.name] = [0] * len(specs[c.name])
        served[c.name] = [0] * len(specs[c.name])
    idle_gc = {c.name: [] for c in order}
    warm_slices = round(warm * slices / seconds)
    for k in range(warm_slices + slices):
        for c in rotate(order, k):
            w = running[c.name]
            for j, spec in enumerate(specs[c.name]):
                if gc_bounds:
                    collect(c.addr)
                    t = w.cpu_ns()
                    collect(c.addr)
                    idle_gc[c.name].append(w.cpu_ns() - t)
                before = w.cpu_ns()
                n, _ = loadlib.wrk(c.addr, spec, bound, fresh=fresh_start(shape), total=sizes[c.name][j])
                if gc_bounds:
                    collect(c.addr)
                if k >= warm_slices:
                    cpu[c.name][j] += w.cpu_ns() - before
                    served[c.name][j] += n
    out = {}
    for c in order:
        if not specs[c.name]:
            out[c.name] = (None, 0, 0)
            continue
        if gc_bounds:
            fixed = statistics.median(idle_gc[c.name]) * slices
            cpu[c.name] = [t - fixed for t in cpu[c.name]]
        us = sum(t / n / 1e3 for t, n in zip(cpu[c.name], served[c.name]))
        out[c.name] = (us, 0, sum(served[c.name]))
    return out


def rotate(seq, i):
    i %= len(seq)
    return list(seq[i:]) + list(seq[:i])


# With two CPUs or more, the workers run on CPU 0 and everything else (this
# script, wrk, nginx) on CPU 1, so the load generator does not steal the
# measured process's time slices.
WORKER_CPU = 0 if (os.cpu_count() or 1) >= 2 else None


def contenders_from(spec, a, work):
    out = []
    for i, name in enumerate(spec.split(",")):
        # 127.0.0.60 and up: clear of the soak (127.0.0.32) and the e2e stack.
        addr = f"127.0.0.{60 + i}:{18080 + i}"
        if name in ("rust", "nomemo"):
            build = os.path.join(work, "build-" + name)
            if not a.no_build:
                loadlib.build_worker(features=a.features or None, routes=a.routes, memo=name == "rust", out=build)
            elif name == "rust":
                build = None  # build/ as it is
            else:
                sys.exit("--no-build uses build/ as it is; it cannot provide the nomemo build")
            out.append(Contender(name, addr, "rust", build))
        elif name == "access":
            # The bench table with access keys and a client allow list
            # (bench/routes.bench-access.toml), the key in every request.
            if a.no_build:
                sys.exit("--no-build uses build/ as it is; it cannot provide the access build")
            build = os.path.join(work, "build-access")
            loadlib.build_worker(features=a.features or None, routes="bench/routes.bench-access.toml", out=build)
            out.append(Contender(name, addr, "rust", build, keys=1))
        elif name == "rate":
            # The access table with a rate limit as well (rate_limit naming
            # a [[ratelimits]] binding; workerd gets miniflare's, as
            # `wrangler dev` does): what counting each manifest and blob
            # request against the binding adds to keys and clients.
            if a.no_build:
                sys.exit("--no-build uses build/ as it is; it cannot provide the rate build")
            table = os.path.join(work, "routes.bench-rate.toml")
            with open(table, "w") as f:
                f.write('rate_limit = "MIRROR_RATE"\n' + open(os.path.join(loadlib.ROOT, "bench", "routes.bench-access.toml")).read())
            build = os.path.join(work, "build-rate")
            loadlib.build_worker(features=a.features or None, routes=table, out=build)
            out.append(Contender(name, addr, "rust", build, keys=1, bindings={"MIRROR_RATE": loadlib.RateLimit(10**9, 60)}))
        elif name == "seed002":
            out.append(Contender(name, addr, "seed002"))
        elif name == "js":
            out.append(Contender(name, addr, "js", bindings={"REDIRECTS": a.js_redirects}))
        elif name == "floor" or name in ("rung1", "rung2", "rung3", "rung4"):
            out.append(Contender(name, addr, name))
        elif os.path.isfile(os.path.join(name, "index_bg.wasm")):
            base = os.path.basename(name.rstrip("/"))
            # A prebuilt access table's worker (its folder's name ends in
            # -keyed): requests as the access contender's. One ending in
            # -keyed2 has two keys in its secret, as a mirror has while its
            # clients move from one key to the next (kind ping-two-keys).
            keys = 2 if base.endswith("-keyed2") else 1 if base.endswith("-keyed") else 0
            out.append(Contender(base, addr, "rust", name, keys=keys))
        else:
            sys.exit(f"unknown contender {name!r}: rust, nomemo, access, rate, js, floor, rung1 to rung4 or a directory with a prebuilt worker")
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        sys.exit(f"contenders need distinct names (a directory's name is its last component): {', '.join(names)}")
    return out


# The key, client address and User-Agent of the requests (scripts/loadlib.py).
BENCH_KEY, CLIENT_IP, CLIENT_AGENT = loadlib.BENCH_KEY, loadlib.CLIENT_IP, loadlib.CLIENT_AGENT
BENCH_KEYS = (BENCH_KEY, loadlib.BENCH_KEY2)


def fmt(us, width=0):
    return f"{'-':>{width}}" if us is None else f"{us:{width}.0f}"


def ratio_of(a, b):
    return None if a is None or b is None else a / b


def pairs_from(spec, contenders):
    """The ratios to print: --ratios "a/b,c/d" by contender name, or the
    first contender against each other one."""
    names = [c.name for c in contenders]
    if not spec:
        return [(names[0], o) for o in names[1:]]
    pairs = [tuple(p.split("/", 1)) for p in spec.split(",")]
    bad = [f"{a}/{b}" for a, b in pairs if a not in names or b not in names]
    if bad:
        sys.exit(f"--ratios names contenders that are not in the run ({', '.join(names)}): {', '.join(bad)}")
    return pairs


def summary(results, kinds, contenders, shape, rounds, pairs):
    print(f"\n{shape}: medians over {rounds} rounds (us of workerd CPU per request; "
          f"ratios are medians of the per-round ratios, then the lowest and highest round's)")
    head = f"{'kind':14}" + "".join(f" {c.name:>9}" for c in contenders) + "".join(f" {a + '/' + b:>20}" for a, b in pairs)
    print(head)
    rows = {}
    names = list(kinds) + (["pull"] if all(k in kinds for k in PULL) else [])
    for name in names:
        if name == "pull":
            def pull_sum(c, r):
                parts = [results[k][c.name][r][0] for k in PULL]
                return None if None in parts else sum(n * p for n, p in zip(PULL.values(), parts))
            per_round = [{c.name: pull_sum(c, r) for c in contenders} for r in range(rounds)]
        else:
            per_round = [{c.name: results[name][c.name][r][0] for c in contenders} for r in range(rounds)]
        us = {c.name: None if None in [x[c.name] for x in per_round] else statistics.median(x[c.name] for x in per_round)
              for c in contenders}
        ratio, spread = {}, {}
        for a, b in pairs:
            if us[a] is None or us[b] is None:
                ratio[f"{a}/{b}"] = spread[f"{a}/{b}"] = None
                continue
            each = [ratio_of(x[a], x[b]) for x in per_round]
            ratio[f"{a}/{b}"] = statistics.median(each)
            # How far one round's figure can be from the median, on this
            # machine, today.
            spread[f"{a}/{b}"] = (min(each), max(each))
        rows[name] = {"us": us, "ratio": ratio, "spread": spread}
        print(f"{name:14}" + "".join(f" {fmt(us[c.name], 9)}" for c in contenders)
              + "".join(f" {'-':>20}" if ratio[p] is None else f" {ratio[p]:10.3f} {spread[p][0]:.2f}-{spread[p][1]:.2f}"
                        for p in ratio))
    return rows


def resolution(results, kinds, pairs, rounds):
    """What one run can tell apart, per ratio, over every kind and shape:
    the sd of a row's per-round log ratio (the median over rows, and the
    widest), what a row's median of that many rounds is good to (1.25 sd
    over the root of the rounds: a median's standard error, about one
    sigma), and the ratio over all rounds of all rows (median and geometric
    mean). A row reading over a budget by less than that margin may be
    noise: at run Q's sd of 3 % and 13 rounds a row is good to about 1 %, at
    run R's 7 % to about 2.5 %."""
    out = {}
    for a, b in pairs:
        sds, logs = [], []
        for shape in results.values():
            for name in kinds:
                per = [math.log(x[0] / y[0]) for x, y in zip(shape[name][a], shape[name][b])
                       if x[0] is not None and y[0] is not None and x[0] > 0 and y[0] > 0]
                logs += per
                if len(per) > 1:
                    sds.append(statistics.stdev(per))
        if not logs:
            continue
        sd = statistics.median(sds) if sds else None
        out[f"{a}/{b}"] = {"row_sd": sd, "widest_sd": max(sds) if sds else None,
                           "row_error": None if sd is None else 1.25 * sd / math.sqrt(rounds),
                           "all_median": math.exp(statistics.median(logs)),
                           "all_geomean": math.exp(statistics.fmean(logs))}
    return out


def resolution_lines(res):
    return [f"{p}: a row's rounds spread by {r['row_sd'] * 100:.1f} % (sd of the log ratio, median over rows; "
            f"widest {r['widest_sd'] * 100:.1f} %), so a row's median is good to about {r['row_error'] * 100:.1f} %; "
            f"all rounds of all rows {r['all_median']:.3f} (median), {r['all_geomean']:.3f} (geometric mean)"
            if r["row_sd"] is not None else
            f"{p}: all rounds of all rows {r['all_median']:.3f} (median), {r['all_geomean']:.3f} (geometric mean)"
            for p, r in res.items()]


def cpu_times():
    """The machine's CPU time so far by state, in clock ticks: user, nice,
    system, idle, iowait, irq, softirq, steal (/proc/stat)."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def steal_share(before, after):
    """The share of the machine's CPU time the hypervisor gave to others
    between two cpu_times(): on a shared host it moves from hour to hour,
    and a row's rounds spread with it (run Q's by 3 %, run R's, at 24-41 %
    steal, by 7 %)."""
    d = [y - x for x, y in zip(before, after)]
    return d[7] / sum(d) if sum(d) else 0.0


def markdown(report, contenders, shapes, a, cold, pairs, steal, res):
    """The summary as markdown tables, ready to paste into benchmarks.md."""
    names = [f"{x}/{y}" for x, y in pairs]
    out = [f"`python3 scripts/bench.py --contenders {a.contenders}" + (" --no-build" if a.no_build else "")
           + f" --rounds {a.rounds} --seconds {a.seconds}" + (f" --cold-runs {a.cold_runs}" if a.cold_runs != 7 else "")
           + (f" --warm {a.warm}" if a.warm != 1 else "") + (f" --slices {a.slices}" if a.slices else "")
           + (f" --warm-start {a.warm_start}" if a.warm_start else "") + (" --gc-bounds" if a.gc_bounds else "")
           + (f" --kinds-per-process {a.kinds_per_process}" if a.kinds_per_process else "") + (f" --ratios {a.ratios}" if a.ratios else "")
           + (f" --kinds {a.kinds}" if a.kinds != ",".join(loadlib.kinds("sha256:x")) else "")
           + (" --seed002-redirects" if a.seed002_redirects else "") + "`: "
           + f"µs of workerd CPU per request, medians of {a.rounds} rounds; ratios are medians of the per-round ratios "
           + f"(in brackets the lowest and highest round's). The host's steal over the rounds: {steal * 100:.0f} % of CPU time.\n"]
    for shape in shapes:
        out.append(f"\n{shape[0].upper() + shape[1:]}:\n")
        out.append("| kind | " + " | ".join(c.name for c in contenders) + " | " + " | ".join(names) + " |")
        out.append("| --- |" + " ---: |" * (len(contenders) + len(names)))
        for kind, row in report[shape].items():
            us = [fmt(row["us"][c.name]) for c in contenders]
            ratios = ["-" if row["ratio"][o] is None
                      else f"{row['ratio'][o]:.3f} ({row['spread'][o][0]:.2f}–{row['spread'][o][1]:.2f})" for o in names]
            out.append(f"| {kind} | " + " | ".join(us + ratios) + " |")
    if res:
        out.append("")
        out += [f"- {line}" for line in resolution_lines(res)]
    if cold:
        out.append("\nCold start (spawn workerd to the first answer, median, interleaved): "
                   + ", ".join(f"{n} {ms:.0f} ms" for n, ms in cold.items()) + ".\n")
    return "\n".join(out)


def main():
    if WORKER_CPU is not None:
        os.sched_setaffinity(0, {1})
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds over all kinds, per shape")
    ap.add_argument("--seconds", type=int, default=2, help="seconds of load per kind, contender and round")
    ap.add_argument("--warm", type=int, default=1, help="seconds of uncounted load before each counted run")
    ap.add_argument("--requests", type=int, default=200000, help="cap on requests per run")
    ap.add_argument("--ratios", default="", help="comma-separated a/b pairs of contender names to print ratios "
                                                 "for (default: the first against each other)")
    ap.add_argument("--warm-start", type=int, default=0,
                    help="N > 0: N local 401s to every fresh process before its first kind (past V8's compile of the entry)")
    ap.add_argument("--kinds-per-process", type=int, default=0,
                    help="fresh processes after every K kinds within a round (0: one set of processes per round and shape)")
    ap.add_argument("--slices", type=int, default=0,
                    help="N > 0: each contender's counted run is N slices of requests, taken in turn with the "
                         "other contenders' (CPU in ns from schedstat), not one run after another's")
    ap.add_argument("--gc-bounds", action="store_true",
                    help="with --slices: each slice starts from a full garbage collection and ends with a counted "
                         "one (the contenders started with loadlib's gc hook in front and V8's --expose-gc), so "
                         "each pays for collecting its own garbage, not for whichever collection fell in it")
    ap.add_argument("--cold-runs", type=int, default=7, help="cold starts per contender (0: none)")
    ap.add_argument("--no-build", action="store_true", help="use build/ as it is for the rust contender")
    ap.add_argument("--routes", default="bench/routes.bench.toml",
                    help="route table for the Rust build (bench/routes.bench-log.toml: the same with log = true)")
    ap.add_argument("--features", default="", help="cargo features for the Rust build (e.g. wee_alloc)")
    ap.add_argument("--contenders", default="rust,js,floor", help="comma-separated: rust, nomemo, access, js, floor, rung1..rung4 or build directories; the first is judged")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of " + ",".join(SHAPES))
    ap.add_argument("--js-redirects", choices=["runtime", "manual"], default="runtime",
                    help="manual: the baseline follows redirects itself, as the worker once did (measures what runtime following saves)")
    ap.add_argument("--seed002-redirects", action="store_true",
                    help="seed 002 gets the short names first (its 301 to library/ counted in each step)")
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--markdown", help="also write the summary here as markdown tables (for benchmarks.md)")
    names = list(loadlib.kinds("sha256:x", two_keys=True))
    ap.add_argument("--kinds", default=",".join(loadlib.kinds("sha256:x")),
                    help="comma-separated subset of " + ",".join(names) + " (ping-two-keys only if asked)")
    a = ap.parse_args()
    if a.gc_bounds and not a.slices:
        sys.exit("--gc-bounds measures slices: give --slices N too")
    global SEED002_REDIRECTS
    SEED002_REDIRECTS = a.seed002_redirects
    kinds = a.kinds.split(",")
    shapes = a.shapes.split(",")
    if any(s not in SHAPES for s in shapes) or any(k not in names for k in kinds):
        sys.exit(f"shapes are {', '.join(SHAPES)}; kinds are {', '.join(names)}")
    work = loadlib.workdir()
    up = None
    running = {}

    def stop_all():
        for w in running.values():
            w.close()
        running.clear()

    try:
        contenders = contenders_from(a.contenders, a, work)
        pairs = pairs_from(a.ratios, contenders)
        up = loadlib.Upstream(work)
        cold = cold_starts(work, contenders, a.cold_runs)

        def start(r=0):
            # In an order rotating round by round: a process's place in the
            # start order is no lasting advantage or handicap.
            stop_all()
            for c in rotate(contenders, r):
                running[c.name] = c.start(work, gc_hook=a.gc_bounds)

        start()
        problems = same_job(up, kinds, contenders)
        if problems:
            print("\n".join(problems))
            sys.exit("the contenders do not do the same job; fix the contender (or the worker) first")
        results = {s: {k: {c.name: [] for c in contenders} for k in kinds} for s in shapes}
        stat0 = cpu_times()
        print(f"\nCPU per request in us (workerd "
              + (f"schedstat ns / requests), {a.seconds} s per contender in {a.slices} slices taken in turn"
                 if a.slices else f"utime+stime / requests), {a.seconds} s per run")
              + ", wrk -t1 -c4; "
              f"contenders {', '.join(c.name for c in contenders)}")
        for r in range(a.rounds):
            for shape in rotate(shapes, r):
                # Fresh processes every round: a process keeps its own speed
                # (its memory layout, its JIT's choices) for its whole life,
                # so rounds in the same processes would not be independent.
                line = []
                for i, name in enumerate(kinds):
                    # With --kinds-per-process K, fresh processes again
                    # after every K kinds: a process that has served many
                    # kinds keeps a larger heap (run J's ended at 310-340 MB,
                    # run N's, two kinds, at about 155), and its rounds spread
                    # wider.
                    if i == 0 or (a.kinds_per_process and i % a.kinds_per_process == 0):
                        start(r + i)
                        if a.warm_start:
                            # V8 compiles the entry's hot functions after so
                            # many calls (a keyed table's admit and unlock at
                            # about 27,000 local 401s): load each process that
                            # far first, so no kind's counted slices hold the
                            # compile.
                            for c in rotate(contenders, r + i):
                                for spec in specs_for(c, "local-401", up):
                                    loadlib.wrk(c.addr, spec, 60, total=a.warm_start)
                    order = rotate(contenders, r + i)
                    if a.slices:
                        got = measure_sliced(order, running, {c.name: specs_for(c, name, up) for c in order},
                                             a.seconds, a.warm, a.slices, shape, a.gc_bounds)
                    else:
                        got = {c.name: measure_all(running[c.name], c.addr, specs_for(c, name, up), a.seconds, a.requests,
                                                   shape, a.warm) for c in order}
                    for c in order:
                        results[shape][name][c.name].append(got[c.name])
                    line.append(name + " " + "/".join(fmt(results[shape][name][c.name][-1][0]) for c in contenders))
                print(f"round {r + 1} {shape}: " + "  ".join(line), flush=True)
        steal = steal_share(stat0, cpu_times())
        report = {}
        for shape in shapes:
            report[shape] = summary(results[shape], kinds, contenders, shape, a.rounds, pairs)
        res = resolution(results, kinds, pairs, a.rounds)
        print("\n" + "\n".join(resolution_lines(res)))
        if cold:
            print(f"\ncold start (spawn workerd -> first answer, median of {a.cold_runs}, interleaved): "
                  + ", ".join(f"{n} {ms:.0f} ms" for n, ms in cold.items()))
        print("workerd RSS after the run: " + ", ".join(f"{n} {w.rss_kib()} KiB" for n, w in running.items()))
        print(f"the host's steal over the rounds: {steal * 100:.1f} % of CPU time (/proc/stat; more spreads the rounds wider)")
        if a.markdown:
            with open(a.markdown, "w") as f:
                f.write(markdown(report, contenders, shapes, a, cold, pairs, steal, res))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"args": vars(a), "summary": report, "resolution": res, "cold_ms": cold, "steal": steal,
                           "rounds": {s: {k: {c: [x[0] for x in v] for c, v in ks.items()} for k, ks in results[s].items()}
                                      for s in shapes}}, f, indent=1)
    finally:
        stop_all()
        if up:
            up.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
