#!/usr/bin/env python3
"""When V8 optimizes the entry, and what it costs: one contender under
workerd with V8's --trace-opt and --trace-deopt, loaded with one request
kind in one-second slices.

    python3 scripts/tierup.py [--kind local-401] [--shape first-seen]
        [--slices 6] [--contenders rust,access]

The contenders are scripts/bench.py's (rust, access, a directory with a
prebuilt worker, ...; an access table's requests carry the key), started
and asked as bench.py starts and asks them, one after the other. After
each slice it prints the requests served and the TurboFan compiles so far
with their milliseconds (V8 compiles on a background thread, whose time
workerd's CPU time includes); then every function Maglev and TurboFan
compiled, by its minified name and the start of its body, and the
deoptimizations. Why: a function TurboFan compiles is paid for once per
isolate, in the second or so after it turns hot, and a benchmark whose
counted run starts before that counts it per request (scripts/bench.py
--warm). Not a test: it prints what V8 reported.
"""

import argparse
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import loadlib  # noqa: E402

TOOK = re.compile(r"<JSFunction (\S+) \(sfi = \w+\)> \(target (\w+)\) - took ([\d.]+), ([\d.]+), ([\d.]+) ms")
DEOPT = re.compile(r"\[bailout \(kind: ([^)]*)\): begin\. deoptimizing \w+ <JSFunction (\S+)")


def compiles(log):
    """(name, target, ms) of every compile V8 reported so far."""
    return [(n, t, float(a) + float(b) + float(c)) for n, t, a, b, c in TOOK.findall(log)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contenders", default="rust,access", help="as bench.py's")
    ap.add_argument("--kind", default="local-401", choices=list(loadlib.kinds("sha256:x")))
    ap.add_argument("--shape", choices=bench.SHAPES, default="first-seen")
    ap.add_argument("--slices", type=int, default=6, help="one-second slices of load")
    # bench.contenders_from reads these.
    ap.set_defaults(no_build=False, features="", routes="bench/routes.bench.toml", js_redirects="runtime",
                    seed002_redirects=False)
    a = ap.parse_args()
    work = loadlib.workdir()
    loadlib.V8_FLAGS = ["--trace-opt", "--trace-deopt"]
    up = None
    try:
        contenders = bench.contenders_from(a.contenders, a, work)
        up = loadlib.Upstream(work)
        for i, c in enumerate(contenders):
            specs = bench.specs_for(c, a.kind, up)
            if not specs:
                print(f"{c.name}: no {a.kind} step")
                continue
            w = c.start(work)
            log_path = os.path.join(work, f"workerd-{c.name}", "workerd.log")
            try:
                print(f"{c.name}, {a.kind} {a.shape}:")
                for s in range(a.slices):
                    fresh = (i * 1000 + s + 1) * 10**10 if a.shape == "first-seen" else None
                    n = sum(loadlib.wrk(c.addr, spec, 1, fresh=fresh)[0] for spec in specs)
                    tf = [ms for _, t, ms in compiles(open(log_path).read()) if t.startswith("TURBOFAN")]
                    print(f"  second {s + 1}: {n} requests; TurboFan so far: {len(tf)} functions, {sum(tf):.1f} ms")
            finally:
                w.close()
            log = open(log_path).read()
            entry = os.path.join(c.build or os.path.join(loadlib.ROOT, "build"), "index.js")
            source = open(entry).read() if c.kind == "rust" else ""
            print("  compiled (ms, function, its start):")
            for fn, target, ms in compiles(log):
                m = re.search(r"function " + re.escape(fn) + r"\([^)]*\)\{.{0,60}", source)
                print(f"    {target:12} {ms:6.1f}  {fn:4} {m.group(0) if m else ''}")
            deopts = DEOPT.findall(log)
            print(f"  deoptimizations: {len(deopts)}" + "".join(f"\n    {f}: {k}" for k, f in deopts[:20]))
    finally:
        if up is not None:
            up.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
