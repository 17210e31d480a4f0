#!/usr/bin/env bash
# Submits a sweep as a Slurm job array, one shard per task, and a merge job that runs when every
# shard succeeded. Rerunning a failed task resumes its shard (hcsim sweep continues its files).
# Usage: tools/slurm-sweep.sh GRID.json OUTDIR [SHARDS] [-- extra sbatch options]
set -euo pipefail
grid=${1:?usage: tools/slurm-sweep.sh GRID.json OUTDIR [SHARDS]}
out=${2:?usage: tools/slurm-sweep.sh GRID.json OUTDIR [SHARDS]}
shards=${3:-16}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
hcsim=${HCSIM:-$(command -v hcsim || echo build/hcsim)}
[ -x "$hcsim" ] || { echo "slurm-sweep: no hcsim binary (set HCSIM=path)" >&2; exit 2; }
hcsim=$(realpath "$hcsim")
name=$(basename "$grid" .json)
mkdir -p "$out"
"$hcsim" sweep --help > /dev/null  # fail here, not on the nodes, if the binary cannot run

array=$(sbatch --parsable "$@" --job-name="hcsim-$name" --array=1-"$shards" --cpus-per-task=2 \
  --output="$out/slurm-%A_%a.log" \
  --wrap="'$hcsim' sweep '$(realpath "$grid")' -o '$out/shard-\$SLURM_ARRAY_TASK_ID' --shard \$SLURM_ARRAY_TASK_ID/$shards -j \$SLURM_CPUS_PER_TASK -q")
shard_list=$(for k in $(seq "$shards"); do printf "'%s/shard-%d' " "$out" "$k"; done)
merge=$(sbatch --parsable "$@" --job-name="hcsim-$name-merge" --dependency="afterok:$array" \
  --output="$out/slurm-merge-%j.log" --wrap="'$hcsim' merge -o '$out/$name' $shard_list")
echo "slurm-sweep: shards in job array $array, merge in job $merge; results: $out/$name.{jsonl,grid.json,csv,summary.md}"
