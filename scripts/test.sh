#!/usr/bin/env bash
# Runs every test, installing what is missing first (scripts/setup.sh --test):
#   0. an up-front check that every external program the suite calls is
#      present (scripts/check-tools.sh);
#   1. the committed planner (dist/) is what the sources build, byte for
#      byte (scripts/build-worker.sh --check): CI fails when src/ changed and
#      dist/ did not;
#   2. native unit tests (cargo test): the planner on the shipped table and
#      on the every-key table, the route-table compiler, every table read
#      back by the planner;
#      and the entry's pure modules under node --test (tests/entry/);
#   3. clippy on the wasm build, which denies unwrap/expect/panic/indexing
#      in the runtime (src/lib.rs);
#   4. the size check: dist/ and every table's modules match size-report.md
#      and are within the budgets (wasm <= 32 KiB raw; all modules <= 32 KiB
#      gzip for the shipped table and both every-key tables; at most 96 B of
#      table per route);
#   5. a short fuzz pass over every cargo-fuzz target (scripts/fuzz.sh);
#   6. a short soak (scripts/soak.py): 20,000 mixed requests in one workerd
#      isolate at 64 connections, linear memory flat and under 2 MiB, every
#      blob and manifest byte verified by digest;
#   7. the end-to-end suite (tests/e2e): real registry, token issuer, the
#      worker as the deploy build makes it in workerd, dockerd, skopeo and
#      containerd, all on loopback; the deploy from a fresh clone with Node
#      alone, and the from-source build reproduced in another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
step() { printf '\n== %s\n' "$*"; }

step "external programs"
bash scripts/check-tools.sh

step "the committed planner is what the sources build"
bash scripts/build-worker.sh --check

step "unit tests (native, and the entry's modules under Node)"
cargo test --quiet
node --test tests/entry/

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
