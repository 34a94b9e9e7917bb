#!/usr/bin/env bash
# Regenerates the figures in BENCHMARKS.md, section by section, as Markdown-ready text on
# stdout (charts as SVG in target/benchmarks/):
#   1. every shared trace under every policy (the comparison tables), plus the charts;
#   2. the adaptive idle timeout's floor: 60 s, the default 30 s, 0;
#   3. predictive floors: `recommend` then `simulate --floors` per trace;
#   4. warm pools against cold boots (scripts/warm-pool-bench.sh);
#   5. the simulator's own speed on a synthesized year (3 runs; event skipping checked);
#   6. the function's memory with every forge misbehaving, and the Lambda's own cost
#      (cargo bench --bench misbehaving_forges, --bench lambda).
# Usage: scripts/benchmarks.sh [TRACES_DIR] [SECTIONS]   (default: ../shared/traces, "1 2 3 4 5 6")
# The simulator is deterministic: only the times change between runs. Needs jq (section 4).
set -euo pipefail
cd "$(dirname "$0")/.."
traces="${1:-../shared/traces}"
sections="${2:-1 2 3 4 5 6}"
cargo build --release --quiet
bin=target/release/forge-scaler
out=target/benchmarks
mkdir -p "$out"
want() { [[ " $sections " == *" $1 "* ]]; }

# The real time of each shared trace's first job (the traces count seconds from it), for
# hour-of-week floors; from the raw files the traces were cut from.
trace_start() {
  case "$(basename "$1" .csv)" in
    travis-jackson-databind) echo 2014-02-18T05:14:44Z ;;
    lf-releng-2017) echo 2017-06-23T21:25:27Z ;;
    conda-forge-2024-03) echo 2024-03-01T00:00:00Z ;;
    *) echo 2026-01-01T00:00:00Z ;;
  esac
}

if want 1; then
  echo "# 1. Every policy on every shared trace"
  for trace in "$traces"/*.csv; do
    name="$(basename "$trace" .csv)"
    echo "## $name"
    echo "\$ forge-scaler simulate --trace $trace --svg $out/$name.svg --cost-wait-svg $out/$name-cost-wait.svg"
    "$bin" simulate --trace "$trace" --svg "$out/$name.svg" --cost-wait-svg "$out/$name-cost-wait.svg"
    echo
  done
fi

if want 2; then
  echo "# 2. The adaptive idle timeout's floor"
  for trace in "$traces"/*.csv; do
    for floor in 60s 30s 0s; do
      echo "\$ forge-scaler simulate --trace $trace --policy forge-scaler-adaptive --adaptive-floor $floor"
      "$bin" simulate --trace "$trace" --policy forge-scaler-adaptive --adaptive-floor "$floor" | tail -n 1
    done
  done
  echo
fi

if want 3; then
  echo "# 3. Predictive floors (target p95 30 s)"
  for trace in "$traces"/*.csv; do
    floors="$out/$(basename "$trace" .csv)-floors.json"
    echo "\$ forge-scaler recommend --trace $trace --trace-start $(trace_start "$trace") --target-p95 30s --format floors"
    /usr/bin/time -f "recommend: %U s user, %S s sys" \
      "$bin" recommend --trace "$trace" --trace-start "$(trace_start "$trace")" --target-p95 30s --format floors > "$floors"
    echo "\$ forge-scaler simulate --trace $trace --floors $floors --policy forge-scaler"
    "$bin" simulate --trace "$trace" --floors "$floors" --policy forge-scaler
  done
  echo
fi

if want 4; then
  echo "# 4. Warm pools (2 stopped instances, 20 s warm start, stopped at 0.05 of the price)"
  FORGE_SCALER_BIN="$bin" scripts/warm-pool-bench.sh "$traces" 2 20 0.05
  echo
fi

if want 5; then
  echo "# 5. Simulator speed: a synthesized year, every policy"
  year="$(mktemp --suffix=.csv)"
  trap 'rm -f "$year" "$year.out" "$year.every"' EXIT
  "$bin" trace synth --rate-per-hour 300 --days 365 --seed 1 --out "$year"
  # CPU (user + sys) is the figure to compare: wall time depends on what else the machine runs.
  for run in 1 2 3; do
    /usr/bin/time -f "run $run: %U s user, %S s sys, %e s wall, %M KB max RSS" "$bin" simulate --trace "$year" > "$year.out"
  done
  # The same year with every look made (event skipping off): the results must not change.
  /usr/bin/time -f "no-skip: %U s user, %S s sys, %e s wall, %M KB max RSS" \
    "$bin" simulate --trace "$year" --no-skip > "$year.every"
  cmp "$year.out" "$year.every" && echo "no-skip: same results"
  cat "$year.out"
  echo
fi

if want 6; then
  echo "# 6. The function: peak RSS with every forge misbehaving, and the Lambda's own cost"
  AWS_EC2_METADATA_DISABLED=true cargo bench --quiet --bench misbehaving_forges
  AWS_EC2_METADATA_DISABLED=true cargo bench --quiet --bench lambda
fi
