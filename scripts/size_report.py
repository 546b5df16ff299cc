#!/usr/bin/env python3
"""Measures what a deployment uploads and regenerates size-report.md: the
committed planner (dist/: the wasm and the entry, the same for every table),
what the deploy build writes for a table (table.bin and page.html), the
totals raw and gzip, what `wrangler deploy` would upload, the largest wasm
contributors, toolchain and crate versions, build flags, and a dated history
with one row per change that moved the numbers.

    python3 scripts/size_report.py [--note TEXT] [--check]
    python3 scripts/size_report.py --variants

It measures dist/ as committed (`scripts/build-worker.sh --check` proves it
is what the sources build; run `scripts/build-worker.sh --from-source` after
changing them) and builds each table with the deploy build (node
scripts/build.mjs, a second or so each).

--check (the size check CI runs) exits non-zero, printing the figures, when
the figures differ from the committed report or are over a budget below:
the planner's wasm, and for the shipped table and the two every-key tables
(tests/routes.every-key.toml, 4 routes, and tests/routes.every-key-16.toml,
the biggest realistic table) the gzip total of everything uploaded; and the
bytes of table.bin per route (the shipped table with tests/routes.more.toml's
eight routes appended, less the shipped table, over eight).
--variants builds the planner from source with what the design card names
and the shipped build leaves out (wee_alloc instead of the bump allocator)
and prints its sizes.
"""

import argparse
import datetime
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "size-report.md")
DIST = os.path.join(ROOT, "dist")
KIB = 1024
SHIPPED = "routes.toml"
EVERY_KEY_TABLES = ("tests/routes.every-key.toml", "tests/routes.every-key-16.toml")
MORE_ROUTES = "tests/routes.more.toml"
FROM_SOURCE_BIN = os.path.join(ROOT, "scripts", "from-source", "node_modules", ".bin")

# Budgets (Snippets-style). The wasm is the planner as uploaded, the same
# for every table; the gzip total is every module wrangler uploads (wasm,
# entry, table, page), gzip -9 each, summed.
BUDGET_WASM_RAW = 32 * KIB
BUDGET_TOTAL_GZIP = 32 * KIB
# Bytes of compiled table per added route.
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


def read(path):
    with open(path, "rb") as f:
        return f.read()


def table_build(src_text, name, dist=DIST):
    """table.bin and page.html of a table, as the deploy build writes them."""
    with tempfile.TemporaryDirectory() as d:
        table = os.path.join(d, os.path.basename(name))
        with open(table, "w") as f:
            f.write(src_text)
        r = run(["node", "scripts/build.mjs", "--table", table, "--dist", dist, "--out", d])
        if r.returncode != 0:
            sys.exit(f"the deploy build of {name} failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        return read(os.path.join(d, "table.bin")), read(os.path.join(d, "page.html"))


def route_count(toml_text):
    return len(re.findall(r"^\[routes\.", toml_text, re.M))


class Planner:
    """The sizes of a planner (a dist/ folder)."""

    def __init__(self, dist=DIST):
        self.dist = dist
        self.wasm = read(os.path.join(dist, "index_bg.wasm"))
        self.js = read(os.path.join(dist, "index.js"))
        compiler = os.path.join(dist, "route-table.wasm")
        self.compiler = read(compiler) if os.path.exists(compiler) else b""

    def total_gz(self, table, page):
        """Every uploaded module, gzip -9 each, summed."""
        return gz(self.wasm) + gz(self.js) + gz(table) + gz(page)


def over_budget(w_raw, total_gz):
    over = []
    if w_raw > BUDGET_WASM_RAW:
        over.append(f"wasm {w_raw} B > {BUDGET_WASM_RAW} B")
    if total_gz > BUDGET_TOTAL_GZIP:
        over.append(f"all modules gzip {total_gz} B > {BUDGET_TOTAL_GZIP} B")
    return over


def measure(planner):
    """Per table: (routes, table.bin, page.html, total gzip); and the bytes
    of table.bin and page.html per added route."""
    tables = {}
    for name in (SHIPPED, *EVERY_KEY_TABLES):
        text = open(os.path.join(ROOT, name)).read()
        t, p = table_build(text, name, planner.dist)
        tables[name] = (route_count(text), t, p, planner.total_gz(t, p))
    shipped = open(os.path.join(ROOT, SHIPPED)).read()
    more = open(os.path.join(ROOT, MORE_ROUTES)).read()
    added = route_count(more)
    t, p = table_build(shipped + "\n" + more, "routes.plus-more.toml", planner.dist)
    base_t, base_p = tables[SHIPPED][1], tables[SHIPPED][2]
    per_route = ((len(t) - len(base_t)) / added, (len(p) - len(base_p)) / added, added)
    return tables, per_route


def deploy_dry_run():
    """What `wrangler deploy` would upload with the shipped table, as
    wrangler itself reports it."""
    out = os.path.join(ROOT, "build", "deploy")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, WRANGLER_SEND_METRICS="false", CI="true")
    env.pop("ROUTES", None)
    r = run(["node_modules/.bin/wrangler", "deploy", "--dry-run", "--outdir", out], env=env, timeout=600)
    m = re.search(r"Total Upload: ([\d.]+) KiB / gzip: ([\d.]+) KiB", r.stdout + r.stderr)
    if not m:
        sys.exit(f"wrangler deploy --dry-run printed no upload size:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    files = sorted(f for f in os.listdir(out) if f.endswith((".js", ".wasm", ".bin", ".html")))
    return float(m.group(1)), float(m.group(2)), files


# ---- where the wasm's bytes go (no twiggy needed: the name section read here) ----

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7f) << s
        s += 7
        if x < 0x80:
            return r, i


def wasm_parts(b):
    """Code bytes per function name (crate hashes removed), the data
    section's bytes, and the rest (headers, types, exports, ...)."""
    i, names, bodies, imported, data = 8, {}, [], 0, 0
    while i < len(b):
        sid = b[i]
        n, i = leb(b, i + 1)
        end = i + n
        if sid == 2:
            count, j = leb(b, i)
            for _ in range(count):
                for _ in range(2):
                    length, j = leb(b, j)
                    j += length
                kind = b[j]
                j += 1
                if kind == 0:
                    _, j = leb(b, j)
                    imported += 1
                elif kind in (1, 2):
                    j += kind == 1
                    flags, j = leb(b, j)
                    _, j = leb(b, j)
                    if flags & 1:
                        _, j = leb(b, j)
                else:
                    j += 2
        elif sid == 10:
            count, j = leb(b, i)
            for _ in range(count):
                length, k = leb(b, j)
                bodies.append(k - j + length)
                j = k + length
        elif sid == 11:
            data = n
        elif sid == 0:
            length, j = leb(b, i)
            if b[j:j + length] == b"name":
                j += length
                while j < end:
                    sub = b[j]
                    size, j = leb(b, j + 1)
                    if sub == 1:
                        count, k = leb(b, j)
                        for _ in range(count):
                            idx, k = leb(b, k)
                            length, k = leb(b, k)
                            names[idx] = b[k:k + length].decode("utf-8", "replace")
                            k += length
                    j += size
        i = end
    funcs = {}
    for k, size in enumerate(bodies):
        name = re.sub(r"\[[0-9a-f]{16}\]", "", names.get(k + imported, f"function {k + imported}"))
        funcs[name] = funcs.get(name, 0) + size
    return funcs, data


def contributors(shipped_len):
    """The planner of the last from-source build (cargo's output in target/)
    through wasm-opt with the release flags and the name section kept:
    bytes by module and the largest functions."""
    src = os.path.join(ROOT, "target", "wasm32-unknown-unknown", "release", "edge_mirror.wasm")
    if not os.path.exists(src):
        return "(run scripts/build-worker.sh --from-source first)", ""
    named = os.path.join(ROOT, "target", "from-source", "named.wasm")
    os.makedirs(os.path.dirname(named), exist_ok=True)
    flags = re.search(r"WASM_OPT_FLAGS=\(([^)]*)\)", open(os.path.join(ROOT, "scripts", "build-worker.sh")).read()).group(1).split()
    flags = [f for f in flags if f != "--strip-debug"] + ["--debuginfo"]
    r = run([os.path.join(FROM_SOURCE_BIN, "wasm-opt"), *flags, src, "-o", named])
    if r.returncode != 0:
        return f"(wasm-opt failed: {r.stderr.strip()[:300]})", ""
    funcs, data = wasm_parts(read(named))
    code = sum(funcs.values())
    rest = shipped_len - code - data
    groups = {}
    for name, n in funcs.items():
        m = re.match(r"^[<&]*([a-z_0-9]+)::([a-z_0-9]+)", name)
        if name in ("step", "load", "io", "table", "logs", "client_address"):
            key = "the exports (`step` has the planner inlined into it)"
        elif m and m.group(1) == "edge_mirror" and os.path.exists(os.path.join(ROOT, "src", m.group(2) + ".rs")):
            key = f"edge_mirror::{m.group(2)}"
        elif m and m.group(1) == "edge_mirror":
            key = "edge_mirror: the byte helpers of lib.rs"
        elif m:
            key = m.group(1)
        else:
            key = "other code"
        groups[key] = groups.get(key, 0) + n
    groups["static data (.rodata: strings, tables)"] = data
    groups["sections and headers (types, exports, ...)"] = rest
    by_part = "\n".join(f"| {k} | {v} | {100 * v / shipped_len:.1f}% |" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]))
    top = "\n".join(f"{n:7} {100 * n / shipped_len:5.1f}%  {name[:120]}"
                    for name, n in sorted(funcs.items(), key=lambda kv: -kv[1])[:25])
    return top, by_part


def versions():
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    crates = {}
    for name in ("wee_alloc",):
        m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
        if m:
            crates[name] = m.group(1)
    m = re.search(r'name = "toml"\nversion = "([^"]+)"', open(os.path.join(ROOT, "compiler", "Cargo.lock")).read())
    crates["toml (the table compiler's)"] = m.group(1) if m else "?"
    compiler_toolchain = re.search(r'channel = "([^"]+)"', open(os.path.join(ROOT, "compiler", "rust-toolchain.toml")).read()).group(1)
    tools = {
        "rustc (planner)": run(["rustc", "-V"]).stdout.strip(),
        "rustc (table compiler)": run(["rustc", f"+{compiler_toolchain}", "-V"]).stdout.strip(),
        "wasm-opt": run([os.path.join(FROM_SOURCE_BIN, "wasm-opt"), "--version"]).stdout.strip(),
        "esbuild": run([os.path.join(FROM_SOURCE_BIN, "esbuild"), "--version"]).stdout.strip(),
        "wrangler": run(["node_modules/.bin/wrangler", "--version"]).stdout.strip().splitlines()[-1],
        "node (the deploy build)": run(["node", "--version"]).stdout.strip(),
    }
    return tools, crates


def build_flags():
    cargo = open(os.path.join(ROOT, "Cargo.toml")).read()
    profile = re.search(r"\[profile\.release\]\n((?:[^\[\n][^\n]*\n)+)", cargo).group(1).strip()
    compiler = open(os.path.join(ROOT, "compiler", "Cargo.toml")).read()
    compiler_profile = re.search(r"\[profile\.release\]\n((?:[^\[\n][^\n]*\n)+)", compiler).group(1).strip()
    flags = re.search(r"WASM_OPT_FLAGS=\(([^)]*)\)", open(os.path.join(ROOT, "scripts", "build-worker.sh")).read()).group(1)
    toolchain = open(os.path.join(ROOT, "rust-toolchain.toml")).read().strip()
    return profile, compiler_profile, " ".join(flags.split()), toolchain


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


def row(label, data):
    return f"| {label} | {len(data)} ({len(data) / KIB:.1f} KiB) | {gz(data)} ({gz(data) / KIB:.1f} KiB) |"


# The committed report's rows the check compares (exact bytes).
WASM_ROW = "| `dist/index_bg.wasm`, the planner |"
JS_ROW = "| `dist/index.js`, the entry (src/edge.js and the error messages; minified) |"
COMPILER_ROW = "| `dist/route-table.wasm`, the table compiler (WASI; the deploy build runs it, it is not uploaded) |"


def variants():
    for label, features in (("with wee_alloc", "wee_alloc"),):
        dist = os.path.join(ROOT, "target", f"dist-{features}")
        r = run(["bash", "scripts/build-worker.sh", "--from-source", "--dist", dist, "--out", os.path.join(dist, "out"),
                 "--features", features])
        if r.returncode != 0:
            sys.exit(f"build failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        p = Planner(dist)
        for name in (SHIPPED, *EVERY_KEY_TABLES):
            t, page = table_build(open(os.path.join(ROOT, name)).read(), name, dist)
            total = p.total_gz(t, page)
            print(f"{name}, {label}: wasm {len(p.wasm)} B (gzip {gz(p.wasm)}), JS {len(p.js)} B (gzip {gz(p.js)}), "
                  f"all modules gzip {total} B; over budget: {'; '.join(over_budget(len(p.wasm), total)) or 'no'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--note", default="")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--variants", action="store_true")
    a = ap.parse_args()
    if a.variants:
        variants()
        return
    planner = Planner()
    tables, per_route = measure(planner)
    w_raw, j_raw = len(planner.wasm), len(planner.js)
    print(f"planner: wasm {w_raw} B (gzip {gz(planner.wasm)}), JS {j_raw} B (gzip {gz(planner.js)}); "
          f"table compiler {len(planner.compiler)} B")
    for name, (n, t, p, total) in tables.items():
        print(f"{name}: {n} routes, table.bin {len(t)} B, page.html {len(p)} B; all modules gzip {total} B")
    print(f"per route: {per_route[0]:.1f} B of table.bin, {per_route[1]:.1f} B of page.html "
          f"({per_route[2]} routes of {MORE_ROUTES} added to {SHIPPED})")
    if a.check:
        over = [f"{name}: {o}" for name, (_, _, _, total) in tables.items() for o in over_budget(w_raw, total)]
        if per_route[0] > ROUTE_BUDGET:
            over.append(f"{per_route[0]:.1f} B of table per route > {ROUTE_BUDGET} B")
        if over:
            sys.exit("size check failed, over budget: " + "; ".join(sorted(set(over))))
        print(f"within the budgets (wasm <= {BUDGET_WASM_RAW} B raw, all modules <= {BUDGET_TOTAL_GZIP} B gzip for "
              f"every table, <= {ROUTE_BUDGET} B of table per route)")
        # The committed report must describe these files.
        recorded = open(REPORT).read() if os.path.exists(REPORT) else ""
        want = [f"{WASM_ROW} {w_raw} (", f"{JS_ROW} {j_raw} (", f"{COMPILER_ROW} {len(planner.compiler)} ("]
        want += [f"| `{name}` | {n} | {len(t)} | {len(p)} | {total} |" for name, (n, t, p, total) in tables.items()]
        missing = [w for w in want if w not in recorded]
        if missing:
            sys.exit(f"size-report.md does not match dist/ and the tables (no {missing[0]!r}); "
                     "run python3 scripts/size_report.py and commit it")
        print("size-report.md matches dist/ and the tables")
        return
    up_raw, up_gz, up_files = deploy_dry_run()
    commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip() or "-"
    if run(["git", "status", "--porcelain", "--", "dist", "src", "Cargo.toml", "Cargo.lock", "build.rs", "compiler", "routes.toml",
            "scripts/build-worker.sh", "scripts/build.mjs"]).stdout.strip():
        commit += "+"
    today = datetime.date.today().isoformat()
    history = old_history()
    _, t, p, total = tables[SHIPPED]
    hist = f"| {w_raw} | {gz(planner.wasm)} | {j_raw} | {gz(planner.js)} | {total} | {up_raw} KiB / {up_gz} KiB |"
    if not history or hist not in history[-1]:
        history.append(f"| {today} | {commit} {hist} {a.note or '-'} |")

    tools, crates = versions()
    profile, compiler_profile, opt_flags, toolchain = build_flags()
    top, by_part = contributors(w_raw)
    status = lambda ok: "within" if ok else "OVER"
    out = f"""# Size report

Generated by `python3 scripts/size_report.py` from the committed planner
(`dist/`, which `scripts/build-worker.sh --check` proves is what the sources
build) and the tables as the deploy build (`node scripts/build.mjs`) compiles
them. Do not edit by hand; rerun it and commit the result with any change
that moves the numbers.

## What a deployment uploads

One committed planner serves every table: the wasm and the entry below are
the same whatever `routes.toml` says. The deploy build adds the table's two
modules, `table.bin` (the compiled table, which the entry copies into the
planner once per isolate) and `page.html` (the browser page).

| file | bytes | gzip -9 |
| --- | ---: | ---: |
{row("`dist/index_bg.wasm`, the planner", planner.wasm)}
{row("`dist/index.js`, the entry (src/edge.js and the error messages; minified)", planner.js)}
{row("`dist/route-table.wasm`, the table compiler (WASI; the deploy build runs it, it is not uploaded)", planner.compiler)}

Per table, with every module wrangler uploads gzip -9 each and summed
(budget {BUDGET_TOTAL_GZIP} B; the wasm's budget, {BUDGET_WASM_RAW} B raw, is
{status(w_raw <= BUDGET_WASM_RAW)}: {w_raw} B):

| table | routes | table.bin | page.html | all modules gzip | budgets |
| --- | ---: | ---: | ---: | ---: | --- |
""" + "".join(f"| `{name}` | {n} | {len(t)} | {len(p)} | {total} |  {status(not over_budget(w_raw, total))} |\n"
              for name, (n, t, p, total) in tables.items()) + f"""
Route data: {per_route[0]:.1f} B of `table.bin` per route (`{SHIPPED}` with the
{per_route[2]} routes of `{MORE_ROUTES}` appended, less `{SHIPPED}`, over
{per_route[2]}; budget {ROUTE_BUDGET} B): {status(per_route[0] <= ROUTE_BUDGET)}. The page grows by
{per_route[1]:.1f} B per route (every client's snippet for it).

`wrangler deploy --dry-run` with the shipped table: Total Upload {up_raw} KiB / gzip {up_gz} KiB
(files: {", ".join(up_files)}; wrangler re-bundles the entry, minified: `minify = true` in wrangler.toml).

## Where the planner's bytes go

The planner as the last `scripts/build-worker.sh --from-source` built it,
through wasm-opt with the release flags and its name section kept (the
shipped wasm has none; figures are of the shipped wasm's
{w_raw} B, code by function, data and section headers as they are in it).

| where the bytes are | bytes | share |
| --- | ---: | ---: |
{by_part}

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
The planner's `[profile.release]`:

```toml
{profile}
```

The table compiler's (`compiler/Cargo.toml`):

```toml
{compiler_profile}
```

wasm-opt flags (scripts/build-worker.sh): `{opt_flags}`

`rust-toolchain.toml`:

```toml
{toolchain}
```

## History

One row per change that moved the numbers (bytes; a `+` after the commit
means uncommitted changes to what goes into the uploaded files). From
2026-12-06 on (the table as data), "JS" is the committed entry without the
page, and "wasm+JS gzip" is every uploaded module with the shipped table,
table.bin and page.html included.

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
