#!/usr/bin/env bash
# Runs every test, installing what is missing first (scripts/setup.sh --test):
#   0. an up-front check that every external program the suite calls is
#      present (scripts/check-tools.sh);
#   1. native unit tests (cargo test), the route-table compiler included,
#      and tests/every_key.rs against tests/routes.every-key.toml; the
#      compiled table read back for both every-key tables;
#   2. clippy on the wasm build, which denies unwrap/expect/panic/indexing
#      in the runtime (src/lib.rs);
#   3. the size check: the release build matches size-report.md and is
#      within the budgets (wasm <= 32 KiB raw, wasm + JS <= 32 KiB gzip) for
#      the shipped table and both every-key tables, and a route costs at
#      most 96 B of wasm;
#   4. a short fuzz pass over every cargo-fuzz target (scripts/fuzz.sh);
#   5. a short soak (scripts/soak.py): 20,000 mixed requests in one workerd
#      isolate at 64 connections, linear memory flat and under 2 MiB, every
#      blob and manifest byte verified by digest;
#   6. the end-to-end suite (tests/e2e): real registry, token issuer, the
#      worker in workerd, dockerd, skopeo and containerd, all on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
step() { printf '\n== %s\n' "$*"; }

step "external programs"
bash scripts/check-tools.sh

step "unit tests (native)"
cargo test --quiet
# The keys the shipped table does not use, against a table that uses them
# all (its own target directory, so the two tables do not rebuild each other).
ROUTES=tests/routes.every-key.toml CARGO_TARGET_DIR=target/every-key cargo test --quiet --test every_key --test route_table
# The biggest table: the worker reads every route of it back as written.
ROUTES=tests/routes.every-key-16.toml CARGO_TARGET_DIR=target/every-key-16 cargo test --quiet --test route_table

step "no-panic lints on the runtime (wasm32)"
cargo clippy --quiet --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --lib -- -D warnings

step "size"
python3 scripts/size_report.py --check

step "fuzz (short)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}"

step "soak (short)"
python3 scripts/soak.py --requests "${SOAK_REQUESTS:-20000}"

step "end to end"
python3 -m pytest tests/e2e -q -p no:cacheprovider
