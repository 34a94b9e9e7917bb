#!/usr/bin/env bash
# The "Warm pools" table of BENCHMARKS.md: forge-scaler and forge-scaler-adaptive on every
# shared trace, cold boots against a warm pool, for boot times 60 s, 180 s and 300 s.
# Usage: scripts/warm-pool-bench.sh [TRACES_DIR] [POOL_SIZE] [WARM_START_S] [STOPPED_COST]
# (defaults: ../shared/traces next to the repo, 2, 20, 0.05). Needs jq. Prints markdown rows.
set -euo pipefail
cd "$(dirname "$0")/.."
traces="${1:-../shared/traces}"
size="${2:-2}"
start="${3:-20}"
stopped="${4:-0.05}"
bin="${FORGE_SCALER_BIN:-target/release/forge-scaler}"
[ -x "$bin" ] || cargo build --release --quiet
echo "| trace | boot s | policy | cold cost-h | cold idle-h | cold p95 s | cold launches | warm cost-h | warm idle-h | warm p95 s | launches (warm + cold) | pre-init | p95 warm/cold | cost warm/cold |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for trace in "$traces"/*.csv; do
  name="$(basename "$trace" .csv)"
  for boot in 60 180 300; do
    common=(simulate --json --trace "$trace" --boot "$boot" --policy forge-scaler --policy forge-scaler-adaptive)
    cold="$("$bin" "${common[@]}")"
    warm="$("$bin" "${common[@]}" --warm-pool "$size" --warm-start "$start" --stopped-cost "$stopped")"
    for policy in forge-scaler forge-scaler-adaptive; do
      jq -rn --argjson c "$cold" --argjson w "$warm" --arg p "$policy" --arg t "$name" --arg b "$boot" '
        ($c.policies[] | select(.policy == $p)) as $c
        | ($w.policies[] | select(.policy == $p)) as $w
        | def r(x): (x * 100 | round) / 100;
        "| \($t) | \($b) | \($p) | \(r($c.cost_instance_hours)) | \(r($c.idle_instance_hours)) | \(r($c.wait_p95_s))"
        + " | \($c.launches) | \(r($w.cost_instance_hours)) | \(r($w.idle_instance_hours)) | \(r($w.wait_p95_s))"
        + " | \($w.launches) (\($w.warm_launches) + \($w.launches - $w.warm_launches)) | \($w.pool_launches)"
        + " | \(if $c.wait_p95_s > 0 then r($w.wait_p95_s / $c.wait_p95_s) else "-" end)"
        + " | \(r($w.cost_instance_hours / $c.cost_instance_hours)) |"'
    done
  done
done
