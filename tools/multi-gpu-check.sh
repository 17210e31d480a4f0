#!/usr/bin/env bash
# The multi-GPU validation, in one command, on a node with 2 or more GPUs: one rank per GPU, the
# forward's collectives on NCCL, policy collectives on Gloo. `tools/gpu-node.sh pack` puts this script
# in gpu-pack/; run it there from a directory holding scenarios/:
#
#   gpu-pack/multi-gpu-check            # every TP size of 2, 4 and 8 the node has GPUs for
#
# It prints, in order: Gloo's and NCCL's latency per message and TP size (hcsim bench --gpu); every
# library scenario through `hcsim validate` at each TP size (a scenario with pipeline stages at
# each TP size whose stages fit the GPUs, one data group per stage); the seed bug on NCCL, which
# must hang, be diagnosed and have its communicators aborted; #22607's crash across two stages.
# The last line is `multi-gpu check: holds` or what failed. Exit 0 when it holds, 1 when something
# failed, 2 when the node cannot run it.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
run="$here/run"
[ -x "$run" ] || { echo "multi-gpu-check: run it from gpu-pack/ (tools/gpu-node.sh pack puts it there)" >&2; exit 2; }
[ -d scenarios ] || { echo "multi-gpu-check: no scenarios/ here: run it from a directory holding the library's scenarios" >&2; exit 2; }

gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
tps=()
for tp in 2 4 8; do [ "$tp" -le "$gpus" ] && tps+=("$tp"); done
if [ "${#tps[@]}" -eq 0 ]; then
  echo "multi-gpu-check: needs 2 or more GPUs, one per rank (NCCL refuses two ranks on one GPU); this node has ${gpus}" >&2
  exit 2
fi
echo "== ${gpus} GPU(s): TP ${tps[*]}, one rank per GPU"

failed=()
echo "== latency: Gloo and NCCL, per message and TP size"
"$run" hcsim bench --gpu || failed+=("bench --gpu")

# A scenario's stages ("pp"), 1 when it declares none.
stages_of() { local pp; pp=$(grep -o '"pp": *[0-9]*' "$1" | grep -o '[0-9]*$'); echo "${pp:-1}"; }
one_stage=()
for s in scenarios/*.json; do [ "$(stages_of "$s")" -eq 1 ] && one_stage+=("$s"); done
echo "== every library scenario of one stage in both worlds, at TP ${tps[*]}"
"$run" hcsim validate "${one_stage[@]}" --ranks-per-gpu 1 --data-group nccl --tp "${tps[@]}" || failed+=("validate")

for s in scenarios/*.json; do
  pp=$(stages_of "$s")
  [ "$pp" -gt 1 ] || continue
  stage_tps=()
  for tp in 1 2 4; do [ $((pp * tp)) -le "$gpus" ] && stage_tps+=("$tp"); done
  [ "${#stage_tps[@]}" -gt 0 ] || { echo "skipped $s: ${pp} stages need ${pp} GPUs or more"; continue; }
  echo "== $s: ${pp} stages at TP ${stage_tps[*]} per stage, one data group per stage"
  "$run" hcsim validate "$s" --ranks-per-gpu 1 --tp "${stage_tps[@]}" || failed+=("validate $s")
done

echo "== the seed bug on NCCL: a real hang, diagnosed, its communicators aborted"
out=$("$run" hcsim gpu scenarios/himamba-sidecar-lag.json --preset pre-fix --ranks-per-gpu 1 --data-group nccl --record results/multi-gpu-hang.jsonl 2>&1)
code=$?
echo "$out"
if [ "$code" -ne 4 ]; then
  failed+=("seed pre-fix on NCCL exited ${code}, not 4 (the watchdog's)")
else
  grep -q 'collective mismatch' <<<"$out" || failed+=("seed pre-fix on NCCL: no collective-mismatch diagnosis")
  grep -q 'ncclCommAbort' <<<"$out" || failed+=("seed pre-fix on NCCL: the communicators were not aborted")
fi

echo "== #22607 across two stages: stage 1 cannot take stage 0's proxy, a crash named on the channel"
out=$("$run" hcsim gpu scenarios/pp-stage-l3-skew.json --upstream 2026-08-24 --ranks-per-gpu 1 --record results/multi-gpu-pp-crash.jsonl 2>&1)
code=$?
echo "$out"
if [ "$code" -ne 4 ]; then
  failed+=("pp-stage-l3-skew on 2026-08-24 exited ${code}, not 4 (the watchdog's)")
else
  grep -q 'received 64 tokens from rank 0 on pp_proxy\[0\] pp0->pp1' <<<"$out" || failed+=("pp-stage-l3-skew: not the simulator's crash")
fi

if [ "${#failed[@]}" -eq 0 ]; then
  echo "multi-gpu check: holds"
  exit 0
fi
printf 'multi-gpu check: FAILED: %s\n' "${failed[@]}"
exit 1
