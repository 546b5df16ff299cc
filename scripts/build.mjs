#!/usr/bin/env node
// The deploy build: the committed planner (dist/) and your routes.toml, with
// Node alone. `npx wrangler deploy`, `deploy --dry-run` and `dev` run it
// (wrangler.toml's [build] command), as does `npm run build`:
//
//   node scripts/build.mjs [--table FILE] [--dist DIR] [--out DIR]
//
// 1. Compiles the route table (--table, else $ROUTES, else routes.toml) with
//    the committed table compiler, dist/route-table.wasm: the project's own
//    Rust compiler (src/route_table/) built for WASI, run here by node:wasi.
//    A mistake in the table stops the build with
//    `error: routes.toml:LINE: what is wrong; how to fix it`.
// 2. Writes OUT (default build/): index.js and index_bg.wasm, the planner as
//    committed, and table.bin and page.html, what the compiler wrote.
//    wrangler uploads the four as modules (table.bin as data, page.html as
//    text); the entry copies the table into the planner once per isolate.
// 3. Checks that the planner accepts the table (the two are committed
//    together; this catches a dist/ assembled from different commits).
//
// It never calls cargo, rustc or rustup, and needs no package beyond Node's
// own modules. Paths are relative to the repository's root. DIST defaults to
// dist/; `scripts/build-worker.sh --from-source --dist DIR` writes a planner
// built from the sources elsewhere (tests, benchmarks), and this takes it
// with --dist DIR.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PLANNER = ["index.js", "index_bg.wasm"];
const COMPILER = "route-table.wasm";

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

function options(argv) {
  const o = { table: process.env.ROUTES || "routes.toml", dist: "dist", out: "build" };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const key = { "--table": "table", "--dist": "dist", "--out": "out" }[flag];
    const value = inline !== undefined ? inline : argv[++i];
    if (key === undefined || value === undefined || value === "") {
      console.error("usage: node scripts/build.mjs [--table FILE] [--dist DIR] [--out DIR]");
      process.exit(2);
    }
    o[key] = value;
  }
  return o;
}

// Runs dist/route-table.wasm on the table, writing into `out`; returns its
// exit status (its own messages go to this process's stdout and stderr).
async function compile(compiler, table, name, out) {
  // node:wasi warns that it is experimental, once; the build does not need
  // to say so on every deploy.
  const emit = process.emitWarning;
  process.emitWarning = (w, ...rest) => (String(w).includes("WASI") ? undefined : emit.call(process, w, ...rest));
  const { WASI } = await import("node:wasi");
  const wasi = new WASI({
    version: "preview1",
    args: ["route-table", `/table/${basename(table)}`, "/out", name],
    env: {},
    preopens: { "/table": dirname(table), "/out": out },
    returnOnExit: true,
  });
  process.emitWarning = emit;
  const module = await WebAssembly.compile(readFileSync(compiler));
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  return wasi.start(instance);
}

// Whether the planner reads the table: its `table` and `load` exports, as
// the entry calls them (the planner imports nothing).
async function loads(planner, table) {
  const { instance } = await WebAssembly.instantiate(readFileSync(planner), {});
  const { memory, table: at, load } = instance.exports;
  if (table.length > 65536) return false;
  new Uint8Array(memory.buffer, at(), table.length).set(table);
  return load(table.length) === 1;
}

async function main() {
  const t0 = performance.now();
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 3)) fail(`Node ${process.versions.node}: the build needs Node 20.3 or later (node:wasi)`);
  const o = options(process.argv.slice(2));
  const dist = resolve(ROOT, o.dist);
  const out = resolve(ROOT, o.out);
  const table = resolve(ROOT, o.table);
  // How messages name the table: as given, relative to the root.
  const name = relative(ROOT, table) || o.table;
  for (const f of [...PLANNER, COMPILER]) {
    if (!existsSync(join(dist, f))) {
      fail(`${relative(ROOT, join(dist, f))} is missing; the planner is committed there (scripts/build-worker.sh --from-source rebuilds it from the Rust sources)`);
    }
  }
  if (!existsSync(table)) fail(`${name}: cannot read the route table: no such file; set ROUTES or --table to the table's path`);
  // Everything goes into a staging folder first, then into OUT at once, so
  // OUT never holds one table's page beside another's table.
  const staging = join(out, `.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const status = await compile(join(dist, COMPILER), table, name, staging);
    if (status !== 0) process.exit(status);
    const bytes = readFileSync(join(staging, "table.bin"));
    if (!(await loads(join(dist, "index_bg.wasm"), bytes))) {
      fail(`the planner in ${relative(ROOT, dist) || "."}/ does not read the table its compiler wrote: the two come from different builds; run scripts/build-worker.sh --from-source and commit dist/`);
    }
    for (const f of PLANNER) copyFileSync(join(dist, f), join(staging, f));
    for (const f of [...PLANNER, "table.bin", "page.html"]) renameSync(join(staging, f), join(out, f));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  const took = ((performance.now() - t0) / 1000).toFixed(2);
  const shown = (d) => (relative(ROOT, d).startsWith("..") ? d : relative(ROOT, d) || ".");
  console.log(`${shown(out)}/: index.js, index_bg.wasm (from ${shown(dist)}/), table.bin, page.html in ${took} s`);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
