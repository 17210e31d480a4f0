#!/usr/bin/env bash
# Golden reports: what the hcsim command prints for a few library runs, kept under tests/golden/ and
# compared byte for byte (after the substitutions below), in the manner of snapshot and tesh tests.
# They guard the reports against unintended change: demo, run --all, single runs as text and JSON,
# replay, export, a seed sweep, a grid sweep's files, fixes and list.
#
# Usage (from the project root): tests/golden_reports.sh BUILD/hcsim [--update]
#   Runs every case below into a temporary folder, normalises its standard output and compares it
#   with tests/golden/CASE.out, whose first line is `exit N`, the command's exit code. One line per
#   case (same, DIFFERS or updated); a difference also prints the first 40 lines of a unified diff.
#   Exit 0 when every case is the same, 1 when any differs, 2 on a bad invocation.
#   --update rewrites the golden files from this build: for a deliberate change of the model or of
#   a report; review `git diff tests/golden` and commit it with the change.
#
# Standard error is not compared: no case's answer is on it (export's "wrote -: ..." line and the
# sweep's progress are about the run, not its result).
#
# Normalisations (sed, on standard output; nothing else is dropped or changed):
#   `wall 0.445 ms`                          -> `wall <wall> ms`   (the report's run line)
#   `"wall_ms": 0.507687` (also wall_s, wall_us)  -> `"wall_ms": <wall>` (JSON reports)
#   `wall       0.02 s, 12583 runs/s on 2 thread(s)`
#                                  -> `wall       <wall> s, <rate> runs/s on <threads> thread(s)`
#                                     (run --seeds: so -j 1 and -j 2 share one golden file)
# Layout, not normalisation: the Chrome trace (one line of JSON) is broken after each event,
# `},{"` becoming `},` newline `{"`, so a difference shows as a few lines; every byte is kept.
# A sweep case records its standard output, then PREFIX.grid.json, .jsonl, .csv and .summary.md,
# each after a line `==> PREFIX.EXT <==`.
#
# Determinism: the seed sweep and the grid sweep run with -j 1 and with -j 2 against one golden file.
set -uo pipefail

usage() { echo "usage (from the project root): tests/golden_reports.sh BUILD/hcsim [--update]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
update=0
if [ $# -eq 2 ]; then [ "$2" = "--update" ] && update=1 || usage; fi
hcsim=$(realpath "$1" 2>/dev/null) && [ -x "$hcsim" ] || { echo "golden_reports: $1: not an executable" >&2; exit 2; }
[ -d scenarios ] && [ -d traces ] || { echo "golden_reports: run from the project root (no scenarios/ or traces/ here)" >&2; exit 2; }
golden=$(dirname "$0")/golden
[ -d "$golden" ] || { echo "golden_reports: $golden: no such folder" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/hcsim-golden.XXXXXX")
trap 'rm -rf "$work"' EXIT

normalise() {
  sed -E \
    -e 's/wall [0-9]+\.[0-9]+ ms/wall <wall> ms/g' \
    -e 's/"(wall_ms|wall_s|wall_us)": -?[0-9][0-9.eE+-]*/"\1": <wall>/g' \
    -e 's/^wall( +)[0-9]+\.[0-9]+ s, (-?[0-9]+|-?inf|-?nan) runs\/s on [0-9]+ thread\(s\)$/wall\1<wall> s, <rate> runs\/s on <threads> thread(s)/'
}
split_events() { sed 's/},{"/},\n{"/g'; }

failed=0
written=()

# finish NAME GOLDEN LABEL: compares $work/NAME.out with GOLDEN.out (or writes it with --update).
# A case whose GOLDEN is another case's (a -j 1 rerun) is compared, never written, even with --update.
finish() {
  local name=$1 gold=$2 label=$3 file="$golden/$2.out"
  if [ "$update" = 1 ] && [ "$name" = "$gold" ]; then
    if cmp -s "$work/$name.out" "$file"; then
      echo "same     $label"
    else
      cp "$work/$name.out" "$file"
      echo "updated  $label"
    fi
    written+=("$gold.out")
    return
  fi
  [ "$name" = "$gold" ] && written+=("$gold.out")
  if [ -f "$file" ] && cmp -s "$work/$name.out" "$file"; then
    echo "same     $label"
  else
    echo "DIFFERS  $label"
    if [ -f "$file" ]; then
      diff -u --label "tests/golden/$gold.out" --label "this build" "$file" "$work/$name.out" | head -n 40
    else
      echo "         (no tests/golden/$gold.out: run tests/golden_reports.sh BUILD/hcsim --update)"
    fi
    failed=1
  fi
}

# check NAME GOLDEN [--events] -- ARGS...: runs hcsim ARGS, keeps the exit code and stdout.
check() {
  local name=$1 gold=$2 layout=cat rc=0
  shift 2
  if [ "$1" = "--events" ]; then layout=split_events; shift; fi
  [ "$1" = "--" ] && shift
  "$hcsim" "$@" > "$work/$name.stdout" 2> "$work/$name.stderr" || rc=$?
  { echo "exit $rc"; normalise < "$work/$name.stdout" | $layout; } > "$work/$name.out"
  finish "$name" "$gold" "$gold.out: hcsim $*"
}

# sweep NAME GOLDEN JOBS GRID: hcsim sweep GRID -j JOBS -q; stdout and the four files, in order.
sweep() {
  local name=$1 gold=$2 jobs=$3 grid=$4 rc=0 ext
  "$hcsim" sweep "$grid" -o "$work/$name" -j "$jobs" -q > "$work/$name.stdout" 2> "$work/$name.stderr" || rc=$?
  {
    echo "exit $rc"
    normalise < "$work/$name.stdout"
    for ext in grid.json jsonl csv summary.md; do
      echo "==> PREFIX.$ext <=="
      if [ -f "$work/$name.$ext" ]; then normalise < "$work/$name.$ext"; else echo "(missing)"; fi
    done
  } > "$work/$name.out"
  finish "$name" "$gold" "$gold.out: hcsim sweep $grid -o PREFIX -j $jobs -q"
}

t0=$(date +%s.%N)
trace=traces/qwen35-tp4-wait-complete-hang.jsonl
check demo demo -- demo
check run-all run-all -- run --all
# A collective mismatch (TP 4, a break in the admission loop), a starvation (a read that never
# returns), a completed run (a prefetch shrunk to the free host pages), an L3 hit lost (a short read).
for s in progress-check-in-break-loop never-completing-transfer host-pressure-shrink short-read-loss; do
  check "run-$s" "run-$s" -- run "scenarios/$s.json" --preset pre-fix
  check "run-$s-json" "run-$s-json" -- run "scenarios/$s.json" --preset pre-fix --json
done
check replay replay -- replay "$trace"
check replay-fix replay-fix -- replay "$trace" --fix pool-transfer-guard
check export-chrome export-chrome --events -- export --chrome - "$trace"
check export-dot export-dot -- export --dot - "$trace"
check run-seeds run-seeds -- run scenarios/himamba-sidecar-lag.json --seeds 200 -j 2 -q
check run-seeds-j1 run-seeds -- run scenarios/himamba-sidecar-lag.json --seeds 200 -j 1 -q
sweep sweep sweep 2 "$golden/sweep-seed-small.grid.json"
sweep sweep-j1 sweep 1 "$golden/sweep-seed-small.grid.json"
check fixes fixes -- fixes
check list list -- list

# A golden file no case writes (a renamed or removed case) is a difference too.
for f in "$golden"/*.out; do
  [ -e "$f" ] || continue
  base=$(basename "$f")
  # A loop, not printf | grep -q: under pipefail, grep's early exit fails the pipe (SIGPIPE) at random.
  seen=0
  for w in "${written[@]}"; do [[ $w == "$base" ]] && seen=1 && break; done
  [[ $seen == 1 ]] && continue
  echo "DIFFERS  $base: no case writes it (remove it, or restore its case)"
  failed=1
done

cases=$(ls "$work"/*.out | wc -l)
seconds=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')
if [ "$failed" = 0 ]; then
  echo "golden_reports: $cases cases, every one the same as tests/golden/ (${seconds} s)"
else
  echo "golden_reports: FAILED: a report differs from tests/golden/ (${seconds} s); if the change is meant, run tests/golden_reports.sh BUILD/hcsim --update, review git diff tests/golden and commit it with the change"
fi
exit "$failed"
