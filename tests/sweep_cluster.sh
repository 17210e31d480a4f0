#!/usr/bin/env bash
# Sweeps as a cluster runs them, through the hcsim command: four shards under GNU parallel merge
# into the unsharded results byte for byte (PREFIX.grid.json, .jsonl and .csv); a sweep killed with
# SIGKILL and started again ends with the files of an uninterrupted one; two sweeps started at once
# on one output write each run once (the second is refused with exit code 2, or finds the runs done).
# Usage (from the project root): tests/sweep_cluster.sh BUILD/hcsim
set -euo pipefail
hcsim=$(realpath "$1")
command -v parallel >/dev/null || { echo "sweep_cluster: GNU parallel is missing (tools/bootstrap.sh installs it)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hcsim-sweep-cluster.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat > "$work/grid.json" <<JSON
{"scenario": "$PWD/scenarios/himamba-sidecar-lag.json", "seeds": {"first": 1, "count": 3000},
 "axes": [{"name": "/policy/name", "values": ["wait_complete", "timeout"]},
          {"name": "variant", "values": ["pre-fix", "seed-fix"]}]}
JSON
fail() { echo "sweep_cluster: FAILED: $*" >&2; exit 1; }
cd "$work"

"$hcsim" sweep grid.json -o whole -j 2 -q > /dev/null 2>&1 || fail "the unsharded sweep"
parallel --halt now,fail=1 "$hcsim" sweep grid.json -o shard-{} --shard {}/4 -j 1 -q ::: 1 2 3 4 > /dev/null 2>&1 || fail "a shard under GNU parallel"
"$hcsim" merge -o merged shard-1 shard-2 shard-3 shard-4 > /dev/null || fail "merge"
cmp -s whole.jsonl merged.jsonl || fail "merged JSON Lines differ from the unsharded sweep's"
cmp -s whole.csv merged.csv || fail "merged CSV differs from the unsharded sweep's"
cmp -s whole.grid.json merged.grid.json || fail "merged grid header differs from the unsharded sweep's"
echo "sweep_cluster: 4 shards under GNU parallel merge into the unsharded files ($(($(wc -l < whole.csv) - 1)) rows)"

for kill_after in 0.3 0.9; do
  rm -f killed.*
  "$hcsim" sweep grid.json -o killed -j 2 -q > /dev/null 2>&1 &
  pid=$!
  sleep "$kill_after"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rows_before=$(($(wc -l < killed.csv) - 1))
  "$hcsim" sweep grid.json -o killed -j 2 -q > /dev/null 2>&1 || fail "the resumed sweep"
  cmp -s whole.jsonl killed.jsonl || fail "JSON Lines after kill -9 at ${kill_after} s and resume differ"
  cmp -s whole.csv killed.csv || fail "CSV after kill -9 at ${kill_after} s and resume differs"
  echo "sweep_cluster: killed with SIGKILL after ${kill_after} s (${rows_before} rows on disk), resumed: files equal the uninterrupted sweep's"
done

sed 's/"count": 3000/"count": 500/' grid.json > small.json
"$hcsim" sweep small.json -o twice -j 1 -q > /dev/null 2> first.err &
first=$!
"$hcsim" sweep small.json -o twice -j 1 -q > /dev/null 2> second.err && second_rc=0 || second_rc=$?
wait "$first" && first_rc=0 || first_rc=$?
case "$first_rc $second_rc" in
  "0 0") ;;
  "0 2" | "2 0") grep -q "in use by another hcsim (pid [0-9]*, hcsim sweep, started " first.err second.err || fail "the refused sweep does not name the other" ;;
  *) fail "two sweeps on one output exited with $first_rc and $second_rc (expected 0, and 0 or 2)" ;;
esac
[ "$(wc -l < twice.jsonl)" -eq 2000 ] || fail "two sweeps on one output: $(wc -l < twice.jsonl) rows, not 2000"
tail -n +2 twice.csv | cut -d, -f1 | cmp -s - <(seq 0 1999) || fail "two sweeps on one output: the CSV does not hold runs 0 to 1999 once each, in order"
echo "sweep_cluster: two sweeps at once on one output exited with $first_rc and $second_rc; every run written once"
