#!/usr/bin/env bash
# Builds the release worker exactly as `wrangler deploy` and `wrangler dev` do
# (wrangler.toml's [build] command runs this): worker-build with the pinned
# wasm-bindgen and esbuild found locally (worker-build's own downloads cannot
# be relied on), then wasm-opt for size. Output: build/index.js, build/index_bg.wasm
# (worker-build's layout). ROUTES selects the route table (default routes.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
# Size levers (size-report.md measures each): a panic aborts at once, with no
# formatting or unwinding code (it traps either way; the shim then restarts the
# instance), and a 64 KiB stack instead of 1 MiB keeps the initial linear
# memory at 2 pages.
worker_rustflags() { echo "-Zunstable-options -Cpanic=immediate-abort -Clink-arg=-zstack-size=65536 ${WORKER_RUSTFLAGS:-}"; }
# Paths embedded in the wasm (panic locations) must not depend on where the
# clone or the cargo home is, so the same source gives the same bytes.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=$PWD=. --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=cargo $(worker_rustflags)"
# std built from source with the same flags (rust-toolchain.toml's nightly).
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
worker-build --release "$@"

# wasm-opt as worker-build would run it (same explicit feature set, so no
# encoding newer than workerd's is emitted) but for size and without the
# name, producers and target_features sections.
WASM_OPT_FLAGS=(-Oz --strip-debug --strip-producers --strip-target-features
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling)
"$WASM_OPT_BIN" "${WASM_OPT_FLAGS[@]}" build/index_bg.wasm -o build/index_bg.wasm
