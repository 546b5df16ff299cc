#!/usr/bin/env python3
"""When V8 optimizes the entry, and what it costs: one contender under
workerd with V8's --trace-opt and --trace-deopt, loaded with one request
kind in one-second slices.

    python3 scripts/tierup.py [--kind local-401] [--shape first-seen]
        [--slices 6] CONTENDER...

A contender is a directory holding a prebuilt worker (index.js,
index_bg.wasm, table.bin, page.html, as `node scripts/build.mjs --out DIR`
writes); one whose name ends in -keyed is asked as scripts/bench.py asks
an access table's (the key first in every path, the bench key bound).
After each slice it prints the requests served and the TurboFan compiles
so far with their milliseconds (V8 compiles on a background thread, whose
time workerd's CPU time includes); then every function Maglev and TurboFan
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
import loadlib  # noqa: E402

ADDR = "127.0.0.62:18093"
TOOK = re.compile(r"<JSFunction (\S+) \(sfi = \w+\)> \(target (\w+)\) - took ([\d.]+), ([\d.]+), ([\d.]+) ms")
DEOPT = re.compile(r"\[bailout \(kind: ([^)]*)\): begin\. deoptimizing \w+ <JSFunction (\S+)")


def compiles(log):
    """(name, target, ms) of every compile V8 reported so far."""
    return [(n, t, float(a) + float(b) + float(c)) for n, t, a, b, c in TOOK.findall(log)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("contenders", nargs="+")
    ap.add_argument("--kind", default="local-401", choices=list(loadlib.kinds("sha256:x")))
    ap.add_argument("--shape", choices=["first-seen", "repeated"], default="first-seen")
    ap.add_argument("--slices", type=int, default=6, help="one-second slices of load")
    a = ap.parse_args()
    for c in a.contenders:
        if not os.path.isfile(os.path.join(c, "index_bg.wasm")):
            sys.exit(f"{c}: not a prebuilt worker (node scripts/build.mjs --table TABLE --out DIR writes one)")
    contenders = [os.path.abspath(c) for c in a.contenders]
    work = loadlib.workdir()
    config = loadlib.WORKERD_CONFIG
    loadlib.WORKERD_CONFIG = config.replace("  sockets = [", '  v8Flags = ["--trace-opt", "--trace-deopt"],\n  sockets = [')
    up = loadlib.Upstream(work)
    try:
        for i, c in enumerate(contenders):
            name = os.path.basename(c.rstrip("/"))
            keyed = name.endswith("-keyed")
            w = loadlib.Workerd(work, "rust", ADDR, build=c, name=name, cpu=0,
                                bindings={"MIRROR_KEYS": loadlib.BENCH_KEY} if keyed else None)
            log_path = os.path.join(work, f"workerd-{name}", "workerd.log")
            try:
                method, path, headers, status, body = loadlib.kinds(up.blob_digest)[a.kind]
                spec = (method, f"/{loadlib.BENCH_KEY}{path}" if keyed else path,
                        {"User-Agent": loadlib.CLIENT_AGENT, **headers, "CF-Connecting-IP": loadlib.CLIENT_IP}, status, body)
                print(f"{name}, {a.kind} {a.shape}:")
                for s in range(a.slices):
                    fresh = (i * 1000 + s + 1) * 10**10 if a.shape == "first-seen" else None
                    n, _ = loadlib.wrk(ADDR, spec, 1, fresh=fresh)
                    tf = [ms for _, t, ms in compiles(open(log_path).read()) if t.startswith("TURBOFAN")]
                    print(f"  second {s + 1}: {n} requests; TurboFan so far: {len(tf)} functions, {sum(tf):.1f} ms")
            finally:
                w.close()
            log = open(log_path).read()
            source = open(os.path.join(c, "index.js")).read()
            print("  compiled (ms, function, its start):")
            for fn, target, ms in compiles(log):
                m = re.search(r"function " + re.escape(fn) + r"\([^)]*\)\{.{0,60}", source)
                print(f"    {target:12} {ms:6.1f}  {fn:4} {m.group(0) if m else ''}")
            deopts = DEOPT.findall(log)
            print(f"  deoptimizations: {len(deopts)}" + "".join(f"\n    {f}: {k}" for k, f in deopts[:20]))
    finally:
        up.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
