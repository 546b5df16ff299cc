#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each (default
# 600), starting from the committed seed corpus in fuzz/corpus/<target>. New
# inputs go to a scratch corpus, so the committed one stays small. Prints
# runs, coverage and features per target; exits non-zero on the first crash
# (libFuzzer leaves the input in fuzz/artifacts/<target>/). The target
# `entry` is the shipped entry and planner under Node with access keys
# (tests/entry/fuzz_entry.mjs): it prints its seed, and the request that
# broke an invariant.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(challenge scope path host machine table entry)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing; scripts/setup.sh --test installs it"; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  if [ "$t" = entry ]; then
    node tests/entry/fuzz_entry.mjs "$seconds" || { echo "fuzz: entry failed"; exit 1; }
    continue
  fi
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  if ! cargo fuzz run --release "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t crashed; the input is in fuzz/artifacts/$t/"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  echo "fuzz: $t: $runs runs in ${seconds}s, $cov, no crash"
done
