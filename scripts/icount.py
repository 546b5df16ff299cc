#!/usr/bin/env python3
"""Instructions per request: the benchmark's contenders and request kinds,
counted by valgrind's callgrind instead of timed.

    python3 scripts/icount.py [--contenders rust,access,DIR] [--kinds a,b]
        [--shapes repeated,first-seen] [--rounds 3] [--warm 3000]
        [--requests 2000] [--no-build]

scripts/bench.py times workerd's CPU, and on a shared 2-core machine a kind's
ratio between two builds moves by about 4 % from one 9-round run to the
next, more than a 3 % budget. An instruction count does not depend on what
else the machine is doing: in one process, the same requests count the same
within a fraction of a percent. Between fresh processes it still moves by
up to about 4 % (the same build's repeated local 401: 217 and 225 thousand
in two runs), as the garbage collector and V8's compilers run at other
moments: judge a difference from several rounds, as with bench.py.

This script runs each contender's workerd under `valgrind --tool=callgrind`
with instrumentation off (about 1,500 requests a second, so a warm-up is
quick), sends each kind `--warm` requests (the wasm's compilers and the
first garbage collections run meanwhile), then switches instrumentation on,
sends `--requests` more on one keep-alive connection, dumps the counters and
switches it off again. The count is every instruction workerd's threads
execute for those requests (its HTTP handling, V8's JavaScript and
compilers, the wasm, the garbage collector), not the kernel's work (reads,
writes, epoll), which is the same for every contender doing the same job. It
is a proxy for CPU time, not CPU time: a cache miss or a mispredicted branch
costs more than one instruction, and under valgrind V8 never optimizes
JavaScript (with --trace-opt in v8Flags it reports no compile at all;
natively Maglev compiles the entry's functions within the first thousand
requests): the entry's JavaScript runs in the interpreter, so its share is
inflated several times, while the wasm (compiled) and workerd's C++
(headers, strings, allocation) count as they run natively. So it tells where
a difference is (callgrind_annotate on the dumps, kept with --keep) more
than how much it costs: judge CPU with bench.py.

The contenders are bench.py's (rust, nomemo, access, rate, js, floor,
rung1..4, seed002, or a directory with a prebuilt worker; the first is
judged), the kinds its kinds, and first the same check that they do the
same job. Each round starts fresh processes for each shape; the order of
contenders rotates kind by kind and round by round; the URLs of a
first-seen run are the same for every contender (the same counter). The
summary is the median per kind of thousands of instructions per request,
and the median of the per-round ratios.

Not a test: it prints figures and asserts nothing about them.
"""

import argparse
import glob
import http.client
import itertools
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import loadlib  # noqa: E402


def load(addr, spec, n, fresh):
    """`n` requests of `spec`, one after another on one keep-alive
    connection; with `fresh` (a number) each URL new, counting up from it."""
    method, path, headers, status, body = spec
    # A mixed kind's two paths (and statuses) take turns.
    paths = path if isinstance(path, tuple) else (path,)
    statuses = status if isinstance(status, tuple) else (status,)
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        for i in range(n):
            p, want = paths[i % len(paths)], statuses[i % len(statuses)]
            p = p if fresh is None else loadlib.fresh_path(p, fresh + i)
            c.request(method, p, body=body, headers={"Host": loadlib.MIRROR_HOST, **headers})
            r = c.getresponse()
            r.read()
            if r.status != want:
                raise RuntimeError(f"{method} {p}: {r.status}, expected {want}")
    finally:
        c.close()


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def counted(out_dir, worker, addr, specs, warm, n, fresh):
    """Instructions per request over `n` of each spec after `warm` of it."""
    pid = worker.proc.pid
    total = 0
    for spec in specs:
        load(addr, spec, warm, fresh)
        control(pid, "--instr=on")
        control(pid, "--zero")
        load(addr, spec, n, None if fresh is None else fresh + warm)
        control(pid, "--dump")
        control(pid, "--instr=off")
        dumps = glob.glob(os.path.join(out_dir, f"cg.{pid}.out.*"))
        last = max(dumps, key=lambda f: int(f.rsplit(".", 1)[1]))
        with open(last) as f:
            totals = [int(line.split()[1]) for line in f if line.startswith("totals:")]
        if len(totals) != 1:
            raise RuntimeError(f"{last}: no totals line")
        total += totals[0] / n
    return total


def main():
    if bench.WORKER_CPU is not None:
        os.sched_setaffinity(0, {1})
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all kinds, per shape")
    ap.add_argument("--warm", type=int, default=3000, help="requests per kind before counting")
    ap.add_argument("--requests", type=int, default=2000, help="requests counted per kind, contender and round")
    ap.add_argument("--no-build", action="store_true", help="use build/ as it is for the rust contender")
    ap.add_argument("--routes", default="bench/routes.bench.toml", help="route table for the Rust build")
    ap.add_argument("--features", default="", help="cargo features for the Rust build")
    ap.add_argument("--contenders", default="rust,js", help="as bench.py's; the first is judged")
    ap.add_argument("--shapes", default=",".join(bench.SHAPES), help="comma-separated subset of " + ",".join(bench.SHAPES))
    names = list(loadlib.kinds("sha256:x"))
    ap.add_argument("--kinds", default=",".join(names), help="comma-separated subset of " + ",".join(names))
    ap.add_argument("--keep", help="copy callgrind's dumps here (one per count: cg.PID.out.N) for callgrind_annotate")
    # bench.contenders_from reads these.
    ap.set_defaults(js_redirects="runtime", seed002_redirects=False)
    a = ap.parse_args()
    kinds, shapes = a.kinds.split(","), a.shapes.split(",")
    if any(s not in bench.SHAPES for s in shapes) or any(k not in names for k in kinds):
        sys.exit(f"shapes are {', '.join(bench.SHAPES)}; kinds are {', '.join(names)}")
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install valgrind")
    work = loadlib.workdir()
    out_dir = os.path.join(work, "callgrind")
    os.makedirs(out_dir)
    loadlib.WRAP = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--smc-check=all-non-file",
                    f"--callgrind-out-file={out_dir}/cg.%p.out"]
    fresh = itertools.count(1)
    up, running = None, {}

    def stop_all():
        for w in running.values():
            w.close()
        running.clear()

    try:
        contenders = bench.contenders_from(a.contenders, a, work)
        up = loadlib.Upstream(work)

        def start():
            stop_all()
            for c in contenders:
                running[c.name] = c.start(work)

        start()
        problems = bench.same_job(up, kinds, contenders)
        if problems:
            print("\n".join(problems))
            sys.exit("the contenders do not do the same job; fix the contender (or the worker) first")
        print(f"\nthousands of instructions per request (callgrind), {a.requests} counted after {a.warm}; "
              f"contenders {', '.join(c.name for c in contenders)}", flush=True)
        results = {s: {k: {c.name: [] for c in contenders} for k in kinds} for s in shapes}
        for r in range(a.rounds):
            for shape in bench.rotate(shapes, r):
                start()
                line = []
                for i, kind in enumerate(kinds):
                    base = next(fresh) * 10**10 if shape == "first-seen" else None
                    for c in bench.rotate(contenders, r + i):
                        specs = bench.specs_for(c, kind, up)
                        got = counted(out_dir, running[c.name], c.addr, specs, a.warm, a.requests, base) if specs else None
                        results[shape][kind][c.name].append(got)
                    line.append(kind + " " + "/".join("-" if x[-1] is None else f"{x[-1] / 1000:.1f}"
                                                      for x in (results[shape][kind][c.name] for c in contenders)))
                print(f"round {r + 1} {shape}: " + "  ".join(line), flush=True)
        ref = contenders[0].name
        for shape in shapes:
            print(f"\n{shape}: medians over {a.rounds} rounds (thousands of instructions per request; "
                  f"ratios are medians of the per-round ratios)")
            print(f"{'kind':14}" + "".join(f" {c.name:>10}" for c in contenders)
                  + "".join(f" {ref + '/' + c.name:>14}" for c in contenders[1:]))
            for kind in kinds:
                per = results[shape][kind]
                cells, ratios = [], []
                for c in contenders:
                    xs = per[c.name]
                    cells.append("-" if None in xs else f"{statistics.median(xs) / 1000:.1f}")
                for c in contenders[1:]:
                    pairs = [(x, y) for x, y in zip(per[ref], per[c.name]) if x is not None and y is not None]
                    ratios.append("-" if len(pairs) < len(per[ref]) else f"{statistics.median(x / y for x, y in pairs):.3f}")
                print(f"{kind:14}" + "".join(f" {x:>10}" for x in cells) + "".join(f" {x:>14}" for x in ratios))
    finally:
        stop_all()
        if up:
            up.close()
        if a.keep:
            shutil.copytree(out_dir, a.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
