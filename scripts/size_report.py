#!/usr/bin/env python3
"""Builds the release worker exactly as deployment does and regenerates
size-report.md: wasm and JS sizes raw and gzip, what `wrangler deploy` would
upload, the largest wasm contributors, toolchain and crate versions, build
flags, and a dated history with one row per change that moved the numbers.

    python3 scripts/size_report.py [--note TEXT] [--check] [--no-build]

--check exits non-zero, printing the figures, when the build is over the
budgets below (the size check CI runs). --no-build reuses build/.
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

# Budgets (issue: Snippets-style budgets). The gzip total is wasm + JS as
# wrangler uploads them.
BUDGET_WASM_RAW = 32 * KIB
BUDGET_TOTAL_GZIP = 32 * KIB


def run(cmd, **kw):
    kw.setdefault("cwd", ROOT)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def gz(data):
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def build():
    r = run(["bash", "scripts/build-worker.sh"], env=dict(os.environ, ROUTES=os.environ.get("ROUTES", "routes.toml")))
    if r.returncode != 0:
        sys.exit(f"build failed:\n{r.stdout[-4000:]}{r.stderr[-4000:]}")


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
    r = run([os.path.expanduser("~/.cargo/bin/wasm-bindgen"), src, "--out-dir", tmp, "--target", "module", "--no-typescript",
             "--experimental-reset-state-function", "--force-enable-abort-handler"])
    if r.returncode != 0:
        return f"(wasm-bindgen failed: {r.stderr.strip()[:300]})"
    named = os.path.join(tmp, "edge_mirror_bg.wasm")
    flags = re.search(r"WASM_OPT_FLAGS=\(([^)]*)\)", open(os.path.join(ROOT, "scripts", "build-worker.sh")).read()).group(1).split()
    flags = [f for f in flags if f != "--strip-debug"] + ["--debuginfo"]
    r = run([os.path.join(ROOT, "node_modules", ".bin", "wasm-opt"), *flags, named, "-o", named])
    if r.returncode != 0:
        return f"(wasm-opt failed: {r.stderr.strip()[:300]})"
    r = run([os.path.expanduser("~/.cargo/bin/twiggy"), "top", "-n", "100000", "-f", "csv", named])
    if r.returncode != 0:
        return f"(twiggy failed: {r.stderr.strip()[:300]})", ""
    rows = [(int(x["ShallowSize"]), x["Name"]) for x in csv.DictReader(io.StringIO(r.stdout))]
    rows = [(n, name) for n, name in rows if not name.startswith('"function names"')]
    total = sum(n for n, _ in rows)
    top = "\n".join(f"{n:7} {100 * n / total:5.1f}%  {name[:130]}" for n, name in sorted(rows, reverse=True)[:25])
    groups = {}
    for n, name in rows:
        m = re.match(r"^[<&]*([a-z_0-9]+)\[", name) or re.match(r"^([a-z_0-9]+)::", name)
        if name.startswith("data segment"):
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
    for name in ("worker", "worker-sys", "wasm-bindgen", "wasm-bindgen-futures", "web-sys", "js-sys", "wee_alloc"):
        m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
        if m:
            crates[name] = m.group(1)
    tools = {
        "rustc": run(["rustc", "-V"]).stdout.strip(),
        "wasm-bindgen": run([os.path.expanduser("~/.cargo/bin/wasm-bindgen"), "--version"]).stdout.strip(),
        "worker-build": run([os.path.expanduser("~/.cargo/bin/worker-build"), "--version"]).stdout.strip(),
        "wasm-opt": run(["node_modules/.bin/wasm-opt", "--version"]).stdout.strip(),
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--note", default="")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not a.no_build:
        build()
    wasm, js = open(WASM, "rb").read(), open(JS, "rb").read()
    w_raw, w_gz, j_raw, j_gz = len(wasm), gz(wasm), len(js), gz(js)
    total_gz = w_gz + j_gz
    up_raw, up_gz, up_files = deploy_dry_run()
    figures = (f"wasm {w_raw} B ({w_raw / KIB:.1f} KiB), gzip {w_gz} B; JS {j_raw} B, gzip {j_gz} B; "
               f"wasm+JS gzip {total_gz} B ({total_gz / KIB:.1f} KiB); wrangler upload {up_raw} KiB / gzip {up_gz} KiB")
    print(figures)
    if a.check:
        # The committed report must describe this build.
        recorded = open(REPORT).read() if os.path.exists(REPORT) else ""
        row = f"| `build/index_bg.wasm` | {w_raw} ("
        if row not in recorded or f"| `build/index.js` (worker-build shim + wasm-bindgen glue, minified) | {j_raw} (" not in recorded:
            sys.exit(f"size-report.md does not match this build ({figures}); run python3 scripts/size_report.py and commit it")
        print("size-report.md matches the build")
        if os.environ.get("SIZE_BUDGETS") != "enforce":
            return
        over = []
        if w_raw > BUDGET_WASM_RAW:
            over.append(f"wasm {w_raw} B > {BUDGET_WASM_RAW} B")
        if total_gz > BUDGET_TOTAL_GZIP:
            over.append(f"wasm+JS gzip {total_gz} B > {BUDGET_TOTAL_GZIP} B")
        if over:
            sys.exit("size check failed: " + "; ".join(over))
        print("size check passed")
        return

    commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip() or "-"
    if run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", "build.rs", "routes.toml", "scripts/build-worker.sh"]).stdout.strip():
        commit += "+"
    today = datetime.date.today().isoformat()
    history = old_history()
    sizes = f"| {w_raw} | {w_gz} | {j_raw} | {j_gz} | {total_gz} | {up_raw} KiB / {up_gz} KiB |"
    if not history or sizes not in history[-1]:
        history.append(f"| {today} | {commit} {sizes} {a.note or '-'} |")

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
| `build/index.js` (worker-build shim + wasm-bindgen glue, minified) | {j_raw} ({j_raw / KIB:.1f} KiB) | {j_gz} ({j_gz / KIB:.1f} KiB) |
| wasm + JS | {w_raw + j_raw} | {total_gz} ({total_gz / KIB:.1f} KiB) |

`wrangler deploy --dry-run`: Total Upload {up_raw} KiB / gzip {up_gz} KiB
(files: {", ".join(up_files)}; wrangler re-bundles the JS without minifying).

Budgets (Snippets-style): wasm ≤ {BUDGET_WASM_RAW // KIB} KiB raw: {status(w_raw <= BUDGET_WASM_RAW)};
wasm + JS ≤ {BUDGET_TOTAL_GZIP // KIB} KiB gzip: {status(total_gz <= BUDGET_TOTAL_GZIP)}.

## Largest wasm contributors

From `twiggy top` of the release wasm rebuilt with its name section kept (the
shipped one has none; the name section itself is left out of these figures).
Async functions are monomorphised into `js_sys::futures::future_to_promise`,
so the request handler's state machine is counted under `js_sys`.

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
