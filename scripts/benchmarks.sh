#!/usr/bin/env bash
# Regenerates the numbers in BENCHMARKS.md: every shared trace under every policy, then the
# simulator's own speed on a synthesized year at ~300 jobs/hour (median of 3 runs).
# Usage: scripts/benchmarks.sh [TRACES_DIR]   (default: ../shared/traces next to the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
traces="${1:-../shared/traces}"
cargo build --release --quiet
bin=target/release/forge-scaler
for trace in "$traces"/*.csv; do
  echo "## $(basename "$trace")"
  echo '$ forge-scaler simulate --trace '"$trace"
  "$bin" simulate --trace "$trace"
  echo
done
year="$(mktemp --suffix=.csv)"
trap 'rm -f "$year"' EXIT
"$bin" trace synth --rate-per-hour 300 --days 365 --seed 1 --out "$year"
# CPU (user + sys) is the figure to compare: wall time depends on what else the machine runs.
for run in 1 2 3; do
  /usr/bin/time -f "run $run: %U s user, %S s sys, %e s wall, %M KB max RSS" "$bin" simulate --trace "$year" > "$year.out"
done
# The same year with every look made (event skipping off): the results must not change.
/usr/bin/time -f "no-skip: %U s user, %S s sys, %e s wall, %M KB max RSS" \
  "$bin" simulate --trace "$year" --no-skip > "$year.every"
cmp "$year.out" "$year.every" && echo "no-skip: same results"
rm -f "$year.out" "$year.every"
