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
for run in 1 2 3; do
  /usr/bin/time -f "run $run: %e s wall, %M KB max RSS" "$bin" simulate --trace "$year" > /dev/null
done
