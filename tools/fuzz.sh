#!/usr/bin/env bash
# Runs each libFuzzer target for a fixed time (docs/reliability.md), from the project root.
#   tools/fuzz.sh [SECONDS] [TARGET...]     default: 60 seconds each; scenario grid trace mooncake replay
# The build is build-fuzz/ (clang; tools/bootstrap.sh --fuzz installs it). Each target's corpus grows
# in build-fuzz/corpus/TARGET/, seeded from the project's own files; a crash is written to
# build-fuzz/artifacts/TARGET/ and fails the script: fix it, then keep the input as a regression in
# tests/fuzz-regressions/TARGET/, which the test suite replays. Prints, per target, the executions
# per second, the corpus size and the peak memory.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
[ $# -gt 0 ] || set -- scenario grid trace mooncake replay
declare -A seeds=([scenario]=scenarios [grid]=grids [trace]=traces [mooncake]=tests/fuzz-corpus/mooncake [replay]=traces)

if [ ! -f build-fuzz/build.ninja ]; then
  meson setup build-fuzz --native-file tools/meson/fuzz.ini >/dev/null || { echo "fuzz: meson setup failed (is clang installed? tools/bootstrap.sh --fuzz)"; exit 1; }
fi
targets=()
for t in "$@"; do
  [ -n "${seeds[$t]:-}" ] || { echo "fuzz: unknown target '$t' (expected: ${!seeds[*]})" >&2; exit 2; }
  targets+=("fuzz/fuzz_$t")
done
ninja -C build-fuzz "${targets[@]}" || { echo "fuzz: build failed"; exit 1; }

status=0
for t in "$@"; do
  corpus=build-fuzz/corpus/$t
  artifacts=build-fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  regressions=()
  [ -d "tests/fuzz-regressions/$t" ] && regressions=("tests/fuzz-regressions/$t")
  log=build-fuzz/fuzz-$t.log
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: past 2 GiB is a leak or a missing limit.
  "build-fuzz/fuzz/fuzz_$t" "$corpus" "${seeds[$t]}" "${regressions[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
  rss=$(awk '/stat::peak_rss_mb/ {print $2}' "$log")
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(du -sb "$corpus" | cut -f1)
  printf 'fuzz %-9s %6ss %10s execs %7s exec/s  corpus %5s inputs (%s bytes)  peak rss %s MB  %s\n' "$t" "$seconds" "${execs:-?}" \
    "${rate:-?}" "$files" "$bytes" "${rss:-?}" "$([ $rc -eq 0 ] && echo ok || echo "FAILED: see $log and $artifacts/")"
  [ $rc -eq 0 ] || status=1
done
exit "$status"
