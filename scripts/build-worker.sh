#!/usr/bin/env bash
# Builds the release worker as `wrangler deploy` and `wrangler dev` do
# (wrangler.toml's [build] command runs this). Output in build/:
#   index_bg.wasm  the planner (cargo, then wasm-bindgen, then wasm-opt -Oz)
#   index.js       src/edge.js bundled with wasm-bindgen's glue and the
#                  browser page, minified by esbuild
# ROUTES selects the route table (default routes.toml). EDGE_MEMO=0 builds an
# entry that runs the planner on every request, without the memo of repeated
# actions (src/edge.js; the soak uses it). Extra arguments go to cargo (e.g.
# --features memory-probe).
#
# First it installs the pinned tools the build lacks (scripts/setup.sh: the
# nightly with rust-src, wasm-bindgen-cli, the npm packages; one line per
# step, about 5 minutes the first time on 2 cores, 0.05 s when nothing is
# missing), so `wrangler deploy` and `wrangler dev` build on a fresh clone.
# EDGE_NO_INSTALL=1 installs nothing: a missing tool then stops the build
# with one line naming it and the command that installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${EDGE_NO_INSTALL:-0}" = 1 ]; then
  bash scripts/setup.sh --check
else
  bash scripts/setup.sh --quiet
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_BINDGEN="${WASM_BINDGEN_BIN:-wasm-bindgen}"
WASM_OPT="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
ESBUILD="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
target="${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release"

# Size levers (size-report.md measures each): std built from source with
# panics that abort at once (no formatting or unwinding code), a 64 KiB
# stack instead of 1 MiB (initial linear memory 2 pages), no reference types
# (nothing but numbers crosses the boundary, so wasm-bindgen needs no
# externref table and the module imports nothing), and paths in the wasm
# that do not depend on where the clone or cargo home is.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=$PWD=. --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=cargo --remap-path-prefix=$(rustc --print sysroot)=sysroot -Zunstable-options -Cpanic=immediate-abort -Clink-arg=-zstack-size=65536 -Ctarget-feature=-reference-types ${WORKER_RUSTFLAGS:-}"
messages=$(cargo build --release --lib --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
  --message-format=json-render-diagnostics "$@")
# build.rs writes the browser page and the error messages (src/messages.rs)
# next to the generated table: both go into the entry, not the wasm.
out_dir=$(printf '%s\n' "$messages" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "edge-mirror" in m.get("package_id", ""):
        print(m["out_dir"])')

mkdir -p build
rm -rf build/bindgen
"$WASM_BINDGEN" "$target/edge_mirror.wasm" --out-dir build/bindgen --target web --no-typescript \
  --experimental-reset-state-function
# The feature set stays what workerd accepts; no name, producers or
# target_features sections. --flatten --rereloop between -Oz passes rebuilds
# the control flow and lets the second pass shrink it further (-0.3 KB, CPU
# unchanged by the benchmark: size-report.md).
WASM_OPT_FLAGS=(-Oz --flatten --rereloop -Oz -Oz --strip-debug --strip-producers --strip-target-features
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-multivalue --enable-reference-types)
"$WASM_OPT" "${WASM_OPT_FLAGS[@]}" build/bindgen/edge_mirror_bg.wasm -o build/index_bg.wasm
cp "$out_dir/page.html" build/page.html
cp "$out_dir/messages.js" build/messages.js
memo=true
[ "${EDGE_MEMO:-1}" = 0 ] && memo=false
"$ESBUILD" src/edge.js --bundle --format=esm --minify --log-level=warning --define:MEMO=$memo \
  --alias:glue=./build/bindgen/edge_mirror.js --alias:page=./build/page.html --alias:messages=./build/messages.js --loader:.html=text \
  --external:./index_bg.wasm --outfile=build/index.js
