#!/usr/bin/env bash
# Regenerates the policy study's numbers and figures: docs/policy-study/ (summaries and SVG
# figures) from the grids in grids/, with the hcsim in build/ (built if missing). Sweeps resume,
# so an interrupted study continues. About 3 minutes of CPU time, spread over the cores.
# Usage: tools/policy-study.sh [RESULTS_DIR]      (default: results/, which git ignores)
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-results}
hcsim=build/hcsim
[ -d build ] || meson setup build > /dev/null
ninja -C build > /dev/null
out=docs/policy-study
mkdir -p "$results" "$out"

sweep() {  # GRID NAME
  "$hcsim" sweep "$1" -o "$results/$2" -q > /dev/null
  cp "$results/$2.summary.md" "$out/$2.summary.md"
}
sweep grids/seed-family.json seed-family
sweep grids/stall-family.json stall-family
sweep grids/eras.json eras
sweep grids/pp-stages.json pp-stages
# The public traces sit beside the checkout unless HCSIM_TRACES says where.
export HCSIM_TRACES=${HCSIM_TRACES:-$PWD/../shared/traces-public}
trace=$HCSIM_TRACES/conversation_trace.jsonl
if [ -f "$trace" ]; then
  sweep grids/mooncake-conversation.json mooncake
else
  echo "policy-study: $trace is absent; the Mooncake part is skipped" >&2
fi

plot() { "$hcsim" plot "$@" > /dev/null; }
for policy in best_effort wait_complete timeout; do
  plot "$results/seed-family.jsonl" --heatmap /delays/0/fixed_us variant --where policy=$policy --where /tp=2 -o "$out/seed-lag-$policy.svg"
  plot "$results/stall-family.jsonl" --heatmap /delays/0 variant --where policy=$policy --where /tp=2 -o "$out/stall-$policy.svg"
  plot "$results/seed-family.jsonl" --heatmap /tp variant --where policy=$policy --where /delays/0/fixed_us=488000 -o "$out/seed-tp-$policy.svg"
  plot "$results/eras.jsonl" --heatmap /delays/0/fixed_us variant --where policy=$policy --where /tp=2 -o "$out/eras-$policy.svg"
  plot "$results/pp-stages.jsonl" --heatmap /delays/0/fixed_us variant --where policy=$policy --where /tp=4 -o "$out/pp-stages-$policy.svg"
done
plot "$results/seed-family.jsonl" --tradeoff --where /tp=2 --where /delays/0/fixed_us=488000 -o "$out/tradeoff-seed-488ms.svg"
plot "$results/stall-family.jsonl" --tradeoff --where /tp=2 -o "$out/tradeoff-stall.svg"
echo "policy-study: figures and summaries in $out/ (results in $results/)"
