#!/usr/bin/env bash
# Builds the worker. Two builds, by who changes what:
#
#   scripts/build-worker.sh                 the deploy build (Node only): the
#                                           committed planner in dist/ and the
#                                           route table, into build/
#                                           (node scripts/build.mjs, which
#                                           `wrangler deploy` runs itself)
#   scripts/build-worker.sh --from-source [--dist DIR] [CARGO ARGS]
#                                           rebuilds the committed files in
#                                           dist/ (or DIR) from the Rust
#                                           sources, then the deploy build
#                                           from them into build/
#   scripts/build-worker.sh --check         builds from source into a scratch
#                                           folder and exits 1, naming the
#                                           files, when dist/ differs from it
#
# What --from-source writes, each reproducible byte for byte from a clone in
# any folder (paths in the wasm are remapped; nothing of the machine is in
# them):
#   index_bg.wasm     the planner (cargo, nightly with -Zbuild-std, then
#                     wasm-opt)
#   index.js          src/edge.js bundled with the error messages (build.rs),
#                     minified by esbuild; it imports ./index_bg.wasm,
#                     ./table.bin and ./page.html
#   route-table.wasm  the table compiler (compiler/, src/route_table/) for
#                     WASI, stable Rust, opt-level "s", stripped
#
# It first installs the pinned tools it lacks (scripts/setup.sh
# --from-source: the nightly with rust-src, the compiler's stable toolchain
# with wasm32-wasip1, scripts/from-source's npm packages; about a minute the
# first time, 0.05 s when nothing is missing).
# EDGE_NO_INSTALL=1 installs nothing: a missing tool then stops the build
# with one line naming it and the command that installs it.
#
# Variants for tests and measurements go to a folder of their own (--dist
# DIR; dist/ holds only the release): EDGE_MEMO=0 builds an entry that runs
# the planner on every request (no memo of repeated actions; the soak), and
# CARGO ARGS reach the planner's cargo build (e.g. --features memory-probe).
# ROUTES (or --table) selects the table of the deploy build that follows.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=deploy dist=dist
node_args=()
cargo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --from-source) mode=source ;;
    --check) mode=check ;;
    --dist) [ $# -ge 2 ] || { echo "build-worker.sh: --dist needs a folder" >&2; exit 2; }; dist=$2; shift ;;
    --dist=*) dist=${1#*=} ;;
    --table|--out) [ $# -ge 2 ] || { echo "build-worker.sh: $1 needs a value" >&2; exit 2; }; node_args+=("$1" "$2"); shift ;;
    --table=*|--out=*) node_args+=("$1") ;;
    *) cargo_args+=("$1") ;;
  esac
  shift
done

if [ "$mode" = deploy ]; then
  if [ ${#cargo_args[@]} -gt 0 ] || [ "${EDGE_MEMO:-1}" = 0 ]; then
    echo "build-worker.sh: ${cargo_args[*]:-EDGE_MEMO=0} changes the planner; build it with --from-source --dist DIR" >&2
    exit 2
  fi
  exec node scripts/build.mjs --dist "$dist" "${node_args[@]}"
fi

if [ "$mode" = check ]; then
  dist=${CARGO_TARGET_DIR:-target}/check-dist
  [ ${#cargo_args[@]} -eq 0 ] || { echo "build-worker.sh: --check builds the release only" >&2; exit 2; }
fi
case "$(realpath -m "$dist")" in
  "$root/dist")
    if [ ${#cargo_args[@]} -gt 0 ] || [ "${EDGE_MEMO:-1}" = 0 ]; then
      echo "build-worker.sh: dist/ holds the release planner; build variants (${cargo_args[*]:-EDGE_MEMO=0}) with --dist DIR" >&2
      exit 2
    fi ;;
esac

if [ "${EDGE_NO_INSTALL:-0}" = 1 ]; then
  bash scripts/setup.sh --from-source --check
else
  bash scripts/setup.sh --from-source --quiet
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_OPT="${WASM_OPT_BIN:-$root/scripts/from-source/node_modules/.bin/wasm-opt}"
ESBUILD="${ESBUILD_BIN:-$root/scripts/from-source/node_modules/.bin/esbuild}"
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-target}")
work=$target_dir/from-source
mkdir -p "$dist" "$work"
cargo_home=$(realpath -m "${CARGO_HOME:-$HOME/.cargo}")
# Paths that name this machine: the clone, the cargo home, the toolchains.
remap() { printf -- '--remap-path-prefix=%s=%s ' "$root" . "$cargo_home" cargo "$(rustc "$@" --print sysroot)" sysroot; }

# --- the planner ---
# Size levers (size-report.md measures each): std built from source with
# panics that abort at once (no formatting or unwinding code), a 64 KiB
# stack instead of 1 MiB (initial linear memory 2 pages), no reference types
# (nothing but numbers crosses the boundary: no externref table, and the
# module imports nothing).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$(remap)-Zunstable-options -Cpanic=immediate-abort -Clink-arg=-zstack-size=65536 -Ctarget-feature=-reference-types ${WORKER_RUSTFLAGS:-}"
messages=$(cargo build --release --lib --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
  --message-format=json-render-diagnostics "${cargo_args[@]}")
# build.rs writes the error messages (src/messages.rs) for the entry.
out_dir=$(printf '%s\n' "$messages" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "edge-mirror" in m.get("package_id", ""):
        print(m["out_dir"])')
# The feature set stays what workerd accepts; no name, producers or
# target_features sections. --flatten --rereloop between -Oz passes rebuilds
# the control flow and lets the second pass shrink it further (-0.3 KB, CPU
# unchanged by the benchmark: size-report.md).
WASM_OPT_FLAGS=(-Oz --flatten --rereloop -Oz -Oz --strip-debug --strip-producers --strip-target-features
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-bulk-memory --enable-multivalue --enable-reference-types)
"$WASM_OPT" "${WASM_OPT_FLAGS[@]}" "$target_dir/wasm32-unknown-unknown/release/edge_mirror.wasm" -o "$dist/index_bg.wasm"
cp "$out_dir/messages.js" "$work/messages.js"
memo=true
[ "${EDGE_MEMO:-1}" = 0 ] && memo=false
# The route table and the page are the deploy build's: external here.
"$ESBUILD" src/edge.js --bundle --format=esm --minify --log-level=warning --define:MEMO=$memo \
  --alias:messages="$work/messages.js" \
  --external:./index_bg.wasm --external:./table.bin --external:./page.html --outfile="$dist/index.js"

# --- the table compiler ---
# Its own toolchain (compiler/rust-toolchain.toml) and target folder: the
# two builds' host crates would otherwise rebuild each other.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' compiler/rust-toolchain.toml)
(cd compiler && CARGO_TARGET_DIR="$target_dir/route-table" \
  CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="$(remap "+$toolchain")" \
  cargo "+$toolchain" build --quiet --release --locked --target wasm32-wasip1)
install -m 644 "$target_dir/route-table/wasm32-wasip1/release/route-table.wasm" "$dist/route-table.wasm"

if [ "$mode" = check ]; then
  stale=()
  for f in index.js index_bg.wasm route-table.wasm; do
    cmp -s "$dist/$f" "dist/$f" || stale+=("dist/$f")
  done
  if [ ${#stale[@]} -gt 0 ]; then
    echo "build-worker.sh --check: ${stale[*]} differ from a build of the sources; run scripts/build-worker.sh --from-source and commit dist/" >&2
    exit 1
  fi
  echo "build-worker.sh --check: dist/ is what the sources build (index.js, index_bg.wasm, route-table.wasm)"
  exit 0
fi
node scripts/build.mjs --dist "$dist" "${node_args[@]}"
