#!/usr/bin/env python3
"""Builds the release worker exactly as deployment does and regenerates
size-report.md: wasm and JS sizes raw and gzip, what `wrangler deploy` would
upload, the largest wasm contributors, toolchain and crate versions, build
flags, and a dated history with one row per change that moved the numbers.

    python3 scripts/size_report.py [--note TEXT] [--check] [--no-build]
    python3 scripts/size_report.py --variants

--check (the size check CI runs) exits non-zero, printing the figures, when
the build differs from the committed report or is over a budget below, for
the shipped table and for the two every-key tables (tests/routes.every-key.toml,
4 routes, and tests/routes.every-key-16.toml, the biggest realistic table:
the budgets hold whatever a deployment turns on), or when a route costs more
than ROUTE_BUDGET bytes of wasm: the marginal cost is the shipped table with
tests/routes.more.toml's eight routes appended, less the shipped table, over
eight.
--no-build reuses build/. --variants builds the same worker with what the
design card names and the shipped build leaves out, one at a time: one call
into the `worker` crate, and wee_alloc instead of the bump allocator, and
prints their sizes (the figures size-report.md quotes).
"""

import argparse
import csv
import datetime
import io
import shutil
import gzip
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "size-report.md")
WASM = os.path.join(ROOT, "build", "index_bg.wasm")
JS = os.path.join(ROOT, "build", "index.js")
KIB = 1024
EVERY_KEY_TABLES = ("tests/routes.every-key.toml", "tests/routes.every-key-16.toml")
MORE_ROUTES = "tests/routes.more.toml"

# Budgets (issue: Snippets-style budgets). The gzip total is wasm + JS as
# wrangler uploads them.
BUDGET_WASM_RAW = 32 * KIB
BUDGET_TOTAL_GZIP = 32 * KIB
# Wasm bytes per added route (route data, not route code).
ROUTE_BUDGET = 96

# cargo-installed tools: on PATH, else in the cargo home (CARGO_HOME, which
# is not always ~/.cargo).
CARGO_BIN = os.path.join(os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo"), "bin")


def cargo_tool(name):
    return shutil.which(name) or os.path.join(CARGO_BIN, name)


def run(cmd, **kw):
    kw.setdefault("cwd", ROOT)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def gz(data):
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def build(table=None, args=()):
    env = dict(os.environ, ROUTES=table or os.environ.get("ROUTES", "routes.toml"))
    r = run(["bash", "scripts/build-worker.sh", *args], env=env)
    if r.returncode != 0:
        sys.exit(f"build failed:\n{r.stdout[-4000:]}{r.stderr[-4000:]}")


def route_count(toml_text):
    return len(re.findall(r"^\[routes\.", toml_text, re.M))


def marginal():
    """Wasm bytes per route: routes.toml with MORE_ROUTES appended, less
    routes.toml, over the number of routes added. Leaves build/ with the
    bigger table's build."""
    build("routes.toml")
    base = sizes()[0]
    more = open(os.path.join(ROOT, MORE_ROUTES)).read()
    added = route_count(more)
    table = os.path.join(ROOT, "build", "routes.plus-more.toml")
    os.makedirs(os.path.dirname(table), exist_ok=True)
    with open(table, "w") as f:
        f.write(open(os.path.join(ROOT, "routes.toml")).read() + "\n" + more)
    build(table)
    return (sizes()[0] - base) / added, base, added


def sizes():
    wasm, js = open(WASM, "rb").read(), open(JS, "rb").read()
    return len(wasm), gz(wasm), len(js), gz(js)


def over_budget(w_raw, total_gz):
    over = []
    if w_raw > BUDGET_WASM_RAW:
        over.append(f"wasm {w_raw} B > {BUDGET_WASM_RAW} B")
    if total_gz > BUDGET_TOTAL_GZIP:
        over.append(f"wasm+JS gzip {total_gz} B > {BUDGET_TOTAL_GZIP} B")
    return over


def deploy_dry_run():
    """What `wrangler deploy` would upload, as wrangler itself reports it."""
    out = os.path.join(ROOT, "build", "deploy")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, WRANGLER_SEND_METRICS="false", CI="true")
    r = run(["node_modules/.bin/wrangler", "deploy", "--dry-run", "--outdir", out], env=env, timeout=600)
    m = re.search(r"Total Upload: ([\d.]+) KiB / gzip: ([\d.]+) KiB", r.stdout + r.stderr)
    if not m:
        sys.exit(f"wrangler deploy --dry-run printed no upload size:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    files = sorted(f for f in os.listdir(out) if f.endswith((".js", ".wasm")))
    return float(m.group(1)), float(m.group(2)), files


def twiggy_top():
    """Largest contributors: the cargo output through wasm-bindgen (as
    worker-build runs it) and wasm-opt with the release flags, but with the
    name section kept, which the shipped wasm drops."""
    src = os.path.join(ROOT, "target", "wasm32-unknown-unknown", "release", "edge_mirror.wasm")
    tmp = os.path.join(ROOT, "build", "named")
    os.makedirs(tmp, exist_ok=True)
    r = run([cargo_tool("wasm-bindgen"), src, "--out-dir", tmp, "--target", "web", "--no-typescript",
             "--experimental-reset-state-function"])
    if r.returncode != 0:
        return f"(wasm-bindgen failed: {r.stderr.strip()[:300]})", ""
    named = os.path.join(tmp, "edge_mirror_bg.wasm")
    flags = re.search(r"WASM_OPT_FLAGS=\(([^)]*)\)", open(os.path.join(ROOT, "scripts", "build-worker.sh")).read()).group(1).split()
    flags = [f for f in flags if f != "--strip-debug"] + ["--debuginfo"]
    r = run([os.path.join(ROOT, "node_modules", ".bin", "wasm-opt"), *flags, named, "-o", named])
    if r.returncode != 0:
        return f"(wasm-opt failed: {r.stderr.strip()[:300]})", ""
    twiggy = cargo_tool("twiggy")
    if not os.path.exists(twiggy):
        return "(twiggy is not installed: cargo install twiggy --version 0.8.0)", ""
    r = run([twiggy, "top", "-n", "100000", "-f", "csv", named])
    if r.returncode != 0:
        return f"(twiggy failed: {r.stderr.strip()[:300]})", ""
    rows = [(int(x["ShallowSize"]), x["Name"]) for x in csv.DictReader(io.StringIO(r.stdout))]
    rows = [(n, name) for n, name in rows if not name.startswith('"function names"')]
    total = sum(n for n, _ in rows)
    top = "\n".join(f"{n:7} {100 * n / total:5.1f}%  {name[:130]}" for n, name in sorted(rows, reverse=True)[:25])
    groups = {}
    for n, name in rows:
        m = re.match(r"^[<&]*([a-z_0-9]+)\[", name) or re.match(r"^([a-z_0-9]+)::", name)
        if name in ("step", "io"):
            key = "edge_mirror: the exports, with the planner inlined into them"
        elif name.startswith("data segment"):
            key = "static data (.rodata: strings, tables; ours and the crates')"
        elif m:
            key = m.group(1)
        elif "shim" in name or name.startswith(("__wbg", "__wbindgen", "__externref", "intounderlying")):
            key = "wasm-bindgen import/export shims"
        else:
            key = "sections and tables (type, import, export, element, ...)"
        groups[key] = groups.get(key, 0) + n
    by_crate = "\n".join(f"| {k} | {v} | {100 * v / total:.1f}% |" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]))
    return top, by_crate


def versions():
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    crates = {}
    for name in ("wasm-bindgen", "wee_alloc"):
        m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
        if m:
            crates[name] = m.group(1)
    tools = {
        "rustc": run(["rustc", "-V"]).stdout.strip(),
        "wasm-bindgen": run([cargo_tool("wasm-bindgen"), "--version"]).stdout.strip(),
        "wasm-opt": run(["node_modules/.bin/wasm-opt", "--version"]).stdout.strip(),
        "esbuild": run(["node_modules/.bin/esbuild", "--version"]).stdout.strip(),
        "wrangler": run(["node_modules/.bin/wrangler", "--version"]).stdout.strip().splitlines()[-1],
    }
    return tools, crates


def build_flags():
    cargo = open(os.path.join(ROOT, "Cargo.toml")).read()
    profile = re.search(r"\[profile\.release\]\n((?:[^\[\n][^\n]*\n)+)", cargo).group(1).strip()
    flags = re.search(r"WASM_OPT_FLAGS=\(([^)]*)\)", open(os.path.join(ROOT, "scripts", "build-worker.sh")).read()).group(1)
    toolchain = ""
    tc_file = os.path.join(ROOT, "rust-toolchain.toml")
    if os.path.exists(tc_file):
        toolchain = open(tc_file).read().strip()
    return profile, " ".join(flags.split()), toolchain


HISTORY_HEAD = "| date | commit | wasm | wasm gzip | JS | JS gzip | wasm+JS gzip | upload (wrangler) | note |"


def old_history():
    if not os.path.exists(REPORT):
        return []
    text = open(REPORT).read()
    rows = []
    if HISTORY_HEAD in text:
        for line in text.split(HISTORY_HEAD, 1)[1].splitlines()[2:]:
            if not line.startswith("|"):
                break
            rows.append(line)
    return rows


JS_ROW = "| `build/index.js` (src/edge.js + wasm-bindgen glue + the browser page, minified) |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--note", default="")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--variants", action="store_true")
    a = ap.parse_args()
    if a.variants:
        for table in ("routes.toml", *EVERY_KEY_TABLES):
            for label, features in (("shipped", ()), ("with the worker crate", ("--features", "worker-crate")),
                                    ("with wee_alloc", ("--features", "wee_alloc"))):
                build(table, features)
                w_raw, w_gz, j_raw, j_gz = sizes()
                print(f"{table}, {label}: wasm {w_raw} B (gzip {w_gz}), JS {j_raw} B (gzip {j_gz}), wasm+JS gzip {w_gz + j_gz} B; "
                      f"over budget: {'; '.join(over_budget(w_raw, w_gz + j_gz)) or 'no'}")
        build()
        return
    # Every key turned on first, so build/ ends with the shipped table's build.
    every = {}
    per_route = None
    if not a.no_build:
        for table in EVERY_KEY_TABLES:
            build(table)
            every[table] = sizes()
        per_route = marginal()
        build()
    w_raw, w_gz, j_raw, j_gz = sizes()
    total_gz = w_gz + j_gz
    figures = (f"wasm {w_raw} B ({w_raw / KIB:.1f} KiB), gzip {w_gz} B; JS {j_raw} B, gzip {j_gz} B; "
               f"wasm+JS gzip {total_gz} B ({total_gz / KIB:.1f} KiB)")
    print(figures)
    for table, e in every.items():
        print(f"{table}: wasm {e[0]} B, wasm+JS gzip {e[1] + e[3]} B")
    if per_route:
        print(f"per route: {per_route[0]:.1f} B of wasm ({per_route[2]} routes of {MORE_ROUTES} added to routes.toml)")
    if a.check:
        over = over_budget(w_raw, total_gz)
        for table, e in every.items():
            over += [f"{table}: {o}" for o in over_budget(e[0], e[1] + e[3])]
        if per_route and per_route[0] > ROUTE_BUDGET:
            over.append(f"{per_route[0]:.1f} B of wasm per route > {ROUTE_BUDGET} B")
        if over:
            sys.exit("size check failed, over budget: " + "; ".join(over))
        print(f"within the budgets (wasm <= {BUDGET_WASM_RAW} B raw, wasm + JS <= {BUDGET_TOTAL_GZIP} B gzip, "
              f"<= {ROUTE_BUDGET} B of wasm per route)")
        # The committed report must describe this build.
        recorded = open(REPORT).read() if os.path.exists(REPORT) else ""
        if f"| `build/index_bg.wasm` | {w_raw} (" not in recorded or f"{JS_ROW} {j_raw} (" not in recorded:
            sys.exit(f"size-report.md does not match this build ({figures}); run python3 scripts/size_report.py and commit it")
        print("size-report.md matches the build")
        return
    up_raw, up_gz, up_files = deploy_dry_run()

    commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip() or "-"
    if run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", "build.rs", "routes.toml", "scripts/build-worker.sh"]).stdout.strip():
        commit += "+"
    today = datetime.date.today().isoformat()
    history = old_history()
    row = f"| {w_raw} | {w_gz} | {j_raw} | {j_gz} | {total_gz} | {up_raw} KiB / {up_gz} KiB |"
    if not history or row not in history[-1]:
        history.append(f"| {today} | {commit} {row} {a.note or '-'} |")

    tools, crates = versions()
    profile, opt_flags, toolchain = build_flags()
    top, by_crate = twiggy_top()
    status = lambda ok: "within" if ok else "OVER"
    out = f"""# Size report

Generated by `python3 scripts/size_report.py` (which builds with
`scripts/build-worker.sh`, the command `wrangler deploy` runs) from the shipped
`routes.toml`. Do not edit by hand; rerun it and commit the result with any
change that moves the numbers.

## Current release build

| artifact | bytes | gzip -9 |
| --- | ---: | ---: |
| `build/index_bg.wasm` | {w_raw} ({w_raw / KIB:.1f} KiB) | {w_gz} ({w_gz / KIB:.1f} KiB) |
{JS_ROW} {j_raw} ({j_raw / KIB:.1f} KiB) | {j_gz} ({j_gz / KIB:.1f} KiB) |
| wasm + JS | {w_raw + j_raw} | {total_gz} ({total_gz / KIB:.1f} KiB) |

`wrangler deploy --dry-run`: Total Upload {up_raw} KiB / gzip {up_gz} KiB
(files: {", ".join(up_files)}; wrangler re-bundles the JS, minified: `minify = true` in wrangler.toml).

Budgets (Snippets-style, enforced by `--check`): wasm ≤ {BUDGET_WASM_RAW} B raw: {status(w_raw <= BUDGET_WASM_RAW)};
wasm + JS ≤ {BUDGET_TOTAL_GZIP} B gzip: {status(total_gz <= BUDGET_TOTAL_GZIP)}. The same build with every
route-table key in use:

| table | routes | wasm | wasm + JS gzip | budgets |
| --- | ---: | ---: | ---: | --- |
""" + "".join(f"| `{t}` | {route_count(open(os.path.join(ROOT, t)).read())} | {e[0]} | {e[1] + e[3]} | "
              f"{status(not over_budget(e[0], e[1] + e[3]))} |\n" for t, e in every.items()) + (
    f"""
Route data: {per_route[0]:.1f} B of wasm per route (`routes.toml` with the {per_route[2]} routes of
`{MORE_ROUTES}` appended, less `routes.toml`, over {per_route[2]}; budget {ROUTE_BUDGET} B):
{status(per_route[0] <= ROUTE_BUDGET)}.""" if per_route else "(not built: --no-build)") + f"""

## Largest wasm contributors

From `twiggy top` of the release wasm rebuilt with its name section kept (the
shipped one has none; the name section itself is left out of these figures).

| where the bytes are | bytes | share |
| --- | ---: | ---: |
{by_crate}

```text
{top}
```

## Toolchain and flags

| tool | version |
| --- | --- |
""" + "".join(f"| {k} | {v} |\n" for k, v in tools.items()) + """
| crate | version |
| --- | --- |
""" + "".join(f"| {k} | {v} |\n" for k, v in crates.items()) + f"""
`[profile.release]`:

```toml
{profile}
```

wasm-opt flags (scripts/build-worker.sh): `{opt_flags}`
""" + (f"\n`rust-toolchain.toml`:\n\n```toml\n{toolchain}\n```\n" if toolchain else "") + f"""
## History

One row per change that moved the numbers (bytes; a `+` after the commit
means uncommitted changes to what goes into the wasm).

{HISTORY_HEAD}
| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |
""" + "\n".join(history) + "\n"
    notes_marker = "## Notes"
    if os.path.exists(REPORT) and notes_marker in open(REPORT).read():
        out += "\n" + notes_marker + open(REPORT).read().split(notes_marker, 1)[1]
    with open(REPORT, "w") as f:
        f.write(out)
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
