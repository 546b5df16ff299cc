#!/usr/bin/env bash
# Builds the release worker exactly as `wrangler deploy` and `wrangler dev` do
# (wrangler.toml's [build] command runs this): worker-build with the pinned
# wasm-bindgen, wasm-opt and esbuild found locally, since worker-build's own
# downloads cannot be relied on. Output: build/index.js, build/index_bg.wasm
# (worker-build's layout). ROUTES selects the route table (default routes.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
exec worker-build --release "$@"
