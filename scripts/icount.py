#!/usr/bin/env python3
"""Instructions per request: the benchmark's contenders and request kinds,
counted by valgrind's callgrind instead of timed.

    python3 scripts/icount.py [--contenders rust,access,DIR] [--kinds a,b]
        [--shapes repeated,first-seen] [--rounds 3] [--warm 3000]
        [--requests 2000] [--no-build] [--single-threaded] [--gc-bounds]
        [--calls REGEX]

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
costs more than one instruction, and without --single-threaded (below) V8
never optimizes JavaScript under valgrind (with --trace-opt in v8Flags it
reports no compile at all; natively Maglev compiles the entry's functions
within the first thousand requests): the entry's JavaScript then runs in
the interpreter, so its share is
inflated several times, while the wasm (compiled) and workerd's C++
(headers, strings, allocation) count as they run natively. So it tells where
a difference is (callgrind_annotate on the dumps, kept with --keep) more
than how much it costs: judge CPU with bench.py.

Two options make the count steady and close to what runs natively
(`--single-threaded --gc-bounds`: a fallback's count then moves by 0.3 %
from one window of 200 requests to the next, where it moved by about 5 %):
- `--single-threaded` gives V8 its flag of that name: its compiles run on
  the main thread, so under valgrind they finish, and the entry's
  functions are compiled (Sparkplug, Maglev, TurboFan) as natively
  (without it, V8's background compile jobs never finish under valgrind
  and the JavaScript stays in the interpreter).
- `--gc-bounds` starts each contender behind bench.py's gc hook: a full
  garbage collection before the counted window and one inside it at its
  end, less the count of a collection of no garbage (the second of two in
  a row), so a window counts collecting exactly the garbage its requests
  left, as `bench.py --gc-bounds` does.
`--calls REGEX` prints, for the last round, the calls per request to every
function whose name matches (e.g. `attachWrapper|Headers::get|getBody`:
how many JavaScript wrappers, header reads and body streams a request
makes), from the same dumps; a difference of one call per request is
exact there, where CPU time cannot resolve it.

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
import collections
import glob
import http.client
import itertools
import os
import re
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


def last_dump(out_dir, pid):
    dumps = glob.glob(os.path.join(out_dir, f"cg.{pid}.out.*"))
    return max(dumps, key=lambda f: int(f.rsplit(".", 1)[1]))


def dump_total(path):
    with open(path) as f:
        totals = [int(line.split()[1]) for line in f if line.startswith("totals:")]
    if len(totals) != 1:
        raise RuntimeError(f"{path}: no totals line")
    return totals[0]


def window(pid, out_dir, run):
    """The instructions `run()` makes workerd execute, and the dump that
    holds them."""
    control(pid, "--instr=on")
    control(pid, "--zero")
    run()
    control(pid, "--dump")
    control(pid, "--instr=off")
    path = last_dump(out_dir, pid)
    return dump_total(path), path


def calls(path, pattern):
    """Calls to each function whose name matches `pattern`, from a dump
    (callgrind names a function in full once, then by its number)."""
    names, out, callee = {}, collections.Counter(), None

    def name(field):
        m = re.match(r"\((\d+)\)(?: (.*))?", field)
        if m is None:
            return field
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), field)

    with open(path) as f:
        for line in f:
            if line.startswith("cfn="):
                callee = name(line[4:].strip())
            elif line.startswith("fn="):
                name(line[3:].strip())
            elif line.startswith("calls=") and callee is not None and pattern.search(callee):
                out[callee] += int(line[6:].split()[0])
    return out


def counted(out_dir, worker, addr, specs, warm, n, fresh, gc_bounds=False):
    """Instructions per request over `n` of each spec after `warm` of it,
    and the dumps that hold them. With gc_bounds, each window starts after
    a full collection and ends with one, less one of no garbage."""
    pid = worker.proc.pid
    total, dumps = 0, []
    for spec in specs:
        load(addr, spec, warm, fresh)
        idle = 0
        if gc_bounds:
            bench.collect(addr)
            idle, _ = window(pid, out_dir, lambda: bench.collect(addr))

        def run():
            load(addr, spec, n, None if fresh is None else fresh + warm)
            if gc_bounds:
                bench.collect(addr)

        count, path = window(pid, out_dir, run)
        total += (count - idle) / n
        dumps.append(path)
    return total, dumps


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
    ap.add_argument("--single-threaded", action="store_true",
                    help="V8's --single-threaded: its compiles finish under valgrind, so JavaScript is optimized as natively")
    ap.add_argument("--gc-bounds", action="store_true",
                    help="each counted window from a full garbage collection to one at its end (less an idle one)")
    ap.add_argument("--calls", help="regular expression: calls per request to the matching functions, last round")
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
    if a.single_threaded:
        loadlib.V8_FLAGS = loadlib.V8_FLAGS + ["--single-threaded"]
    pattern = re.compile(a.calls) if a.calls else None
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
                running[c.name] = c.start(work, gc_hook=a.gc_bounds)

        start()
        problems = bench.same_job(up, kinds, contenders)
        if problems:
            print("\n".join(problems))
            sys.exit("the contenders do not do the same job; fix the contender (or the worker) first")
        print(f"\nthousands of instructions per request (callgrind), {a.requests} counted after {a.warm}; "
              f"contenders {', '.join(c.name for c in contenders)}", flush=True)
        results = {s: {k: {c.name: [] for c in contenders} for k in kinds} for s in shapes}
        # The last round's calls per request, by shape, kind and contender.
        called = {}
        for r in range(a.rounds):
            for shape in bench.rotate(shapes, r):
                start()
                line = []
                for i, kind in enumerate(kinds):
                    base = next(fresh) * 10**10 if shape == "first-seen" else None
                    for c in bench.rotate(contenders, r + i):
                        specs = bench.specs_for(c, kind, up)
                        got = None
                        if specs:
                            got, dumps = counted(out_dir, running[c.name], c.addr, specs, a.warm, a.requests, base, a.gc_bounds)
                            if pattern is not None:
                                per = collections.Counter()
                                for d in dumps:
                                    per.update(calls(d, pattern))
                                called[(shape, kind, c.name)] = per
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
        if pattern is not None:
            print(f"\ncalls per request (last round) to functions matching {a.calls!r}:")
            for (shape, kind, name), per in called.items():
                print(f"  {shape} {kind} {name}:")
                for fn, k in sorted(per.items(), key=lambda x: (-x[1], x[0])):
                    print(f"    {k / a.requests:8.2f}  {fn[:150]}")
    finally:
        stop_all()
        if up:
            up.close()
        if a.keep:
            shutil.copytree(out_dir, a.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
