#!/usr/bin/env bash
# How one Mooncake replay grows with the trace's length and with the TP size: the conversation
# trace played 1, 2, 4 and 8 times ("repeat", docs/workloads.md) at TP 1, 2, 4 and 8, one replay
# per cell as grids/mooncake-replay-benchmark.json runs it, each timed by /usr/bin/time. Prints a
# Markdown table and the growth exponents (log-log slopes); --out FILE writes the whole of
# docs/scaling.md (a fixed header, the machine, the table, the exponents and their reading), so
# regenerating the doc is one command. Run it from the project root:
#
#   bench/scaling.sh --repeats "1 2" --tps "1 2"
#   | repeat | TP | requests | events | verdict | wall s | CPU s | max RSS MiB |
#   |---:|---:|---:|---:|---|---:|---:|---:|
#   | 1 | 1 | 12031 | 105012 | complete | 1.30 | 1.28 | 166 |
#   ...
#
# The trace is $HCSIM_TRACES/conversation_trace.jsonl (default HCSIM_TRACES=../shared/traces-public);
# without it the script says so and exits 0. Exit 1 when a replay fails (the table shows which),
# 2 on a bad invocation.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/scaling.sh [--hcsim PATH] [--repeats "1 2 4 8"] [--tps "1 2 4 8"] [--runs K] [--out FILE]

  --hcsim PATH    the hcsim to time (default ./build/hcsim)
  --repeats LIST  how many times the trace is played, each 1 to 64 (default "1 2 4 8")
  --tps LIST      the TP sizes (default "1 2 4 8")
  --runs K        replays per cell; each column is the median of the K (default 1)
  --out FILE      also write FILE as the whole scaling doc (docs/scaling.md), not only the table
EOF
}

die() {
  echo "scaling.sh: $*" >&2
  exit 2
}

hcsim=./build/hcsim
repeats="1 2 4 8"
tps="1 2 4 8"
runs=1
out=""
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --hcsim | --repeats | --tps | --runs | --out)
      [ $# -ge 2 ] || die "$1 needs a value (--help for usage)"
      case $1 in
        --hcsim) hcsim=$2 ;;
        --repeats) repeats=$2 ;;
        --tps) tps=$2 ;;
        --runs) runs=$2 ;;
        --out) out=$2 ;;
      esac
      shift 2 ;;
    *) die "unknown argument '$1' (--help for usage)" ;;
  esac
done

positive_ints() {  # NAME MAX LIST: each word an integer in [1, MAX], at least one
  local name=$1 max=$2 v
  [ -n "${3// /}" ] || die "$name: expected a list of integers in [1, $max], like \"1 2 4 8\"; got none"
  for v in $3; do
    if ! [[ $v =~ ^[1-9][0-9]{0,3}$ ]] || [ "$v" -gt "$max" ]; then die "$name: expected integers in [1, $max]; got '$v'"; fi
  done
}
positive_ints --repeats 64 "$repeats"
positive_ints --tps 64 "$tps"
positive_ints --runs 99 "$runs"

if [ ! -f meson.build ] || [ ! -f bench/scaling.sh ]; then die "run it from the project root (bench/scaling.sh ...)"; fi
scenario=$PWD/scenarios/himamba-sidecar-lag-tp4.json
[ -f "$scenario" ] || die "$scenario is absent"
[[ $PWD != *[\"\\]* ]] || die "the project's path holds a quote or backslash, which a grid file cannot name as written"
[ -x "$hcsim" ] || die "no hcsim at $hcsim (build it with 'ninja -C build', or give --hcsim PATH)"
[ -x /usr/bin/time ] || die "needs GNU time at /usr/bin/time (apt-get install time)"

# The public traces sit beside the checkout unless HCSIM_TRACES says where.
traces=${HCSIM_TRACES:-../shared/traces-public}
if [ ! -f "$traces/conversation_trace.jsonl" ]; then
  echo "scaling.sh: skipped: no Mooncake trace at $traces/conversation_trace.jsonl (HCSIM_TRACES names the folder holding it)"
  exit 0
fi
HCSIM_TRACES=$(cd "$traces" && pwd -P)
export HCSIM_TRACES

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hcsim-scaling.XXXXXX")
child=""  # the timed replay running now, if any
cleanup() {
  if [ -n "$child" ]; then  # /usr/bin/time and the hcsim under it
    pkill -TERM -P "$child" 2> /dev/null || true
    kill -TERM "$child" 2> /dev/null || true
    wait "$child" 2> /dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command under GNU time, its figures to FILE, its output to nowhere and its errors to
# $tmp/stderr; returns its status. In the background so that a signal's trap runs at once.
timed() {  # FILE COMMAND...
  local rc=0
  /usr/bin/time -f "%e %U %S %M" -o "$1" "${@:2}" > /dev/null 2> "$tmp/stderr" &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

# One cell's grid: the benchmark grid's axes, with the trace repeated and the TP set. The scenario's
# one delay rule names request R on rank 2, which the workload replaces (apply_workload drops rules
# that name requests); at TP 1 and 2 rank 2 does not exist, so the rule is dropped here first: the
# same run (at TP 4 the digest equals the benchmark grid's), one that every TP accepts.
write_grid() {  # REPEAT TP FILE
  cat > "$3" <<EOF
{
  "description": "scaling: the Mooncake conversation trace played $1 times at TP $2, timeout policy under seed-fix (bench/scaling.sh)",
  "scenario": "$scenario",
  "seeds": {"first": 1, "count": 1},
  "axes": [
    {"name": "workload", "values": [{"name": "mooncake-conversation-x$1", "kind": "mooncake", "path": "\$HCSIM_TRACES/conversation_trace.jsonl", "repeat": $1}]},
    {"name": "/tp", "values": [$2]},
    {"name": "/delays", "values": [[]]},
    {"name": "/storage/backend", "values": ["zero_copy"]},
    {"name": "/scheduler/sleep_on_idle", "values": [true]},
    {"name": "/policy/name", "values": ["timeout"]},
    {"name": "variant", "values": ["seed-fix"]}
  ]
}
EOF
}

median() {  # numbers on stdin, one a line
  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

field() {  # NAME JSONL: a scalar field of the sweep's one row (one line)
  sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$2"
}

declare -A wall cpu rss requests events verdict
failed=0
load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
for r in $repeats; do
  for t in $tps; do
    cell="$r,$t"
    write_grid "$r" "$t" "$tmp/grid.json"
    : > "$tmp/wall"; : > "$tmp/cpu"; : > "$tmp/rss"
    for ((i = 1; i <= runs; i++)); do
      prefix=$tmp/run-$r-$t-$i  # fresh files: a sweep into existing ones would resume them
      if ! timed "$tmp/time" "$hcsim" sweep "$tmp/grid.json" -o "$prefix" -q; then
        echo "scaling.sh: repeat $r, TP $t failed:" >&2
        sed 's/^/  /' "$tmp/stderr" "$tmp/time" >&2
        failed=1
        verdict[$cell]="failed"
        continue 2
      fi
      read -r e u s m < <(tail -n 1 "$tmp/time")
      echo "$e" >> "$tmp/wall"
      awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f\n", u + s }' >> "$tmp/cpu"
      awk -v m="$m" 'BEGIN { printf "%.0f\n", m / 1024 }' >> "$tmp/rss"
      requests[$cell]=$(field requests "$prefix.jsonl")
      events[$cell]=$(field events "$prefix.jsonl")
      verdict[$cell]=$(field verdict "$prefix.jsonl")
      echo "scaling.sh: repeat $r, TP $t, run $i of $runs: ${requests[$cell]} requests, $e s, $(tail -n 1 "$tmp/rss") MiB" >&2
    done
    wall[$cell]=$(median < "$tmp/wall")
    cpu[$cell]=$(median < "$tmp/cpu")
    rss[$cell]=$(median < "$tmp/rss")
  done
done
load_after=$(cut -d ' ' -f 1-3 /proc/loadavg)

# shellcheck disable=SC2086  # the lists are split into words on purpose, here and below
first_of() { set -- $1; echo "$1"; }
# shellcheck disable=SC2086
last_of() { set -- $1; echo "${!#}"; }
r_lo=$(first_of "$repeats"); r_hi=$(last_of "$repeats")
t_lo=$(first_of "$tps"); t_hi=$(last_of "$tps")
# shellcheck disable=SC2086
listed() {  # "1 2 4" -> "1, 2 and 4"
  set -- $1
  local s=$1
  shift
  while [ $# -gt 1 ]; do s="$s, $1"; shift; done
  if [ $# -eq 1 ]; then s="$s and $1"; fi
  echo "$s"
}

# The log-log slope of Y from X0 to X1: y grows as x^slope. "n/a" without two points to join.
slope() {  # X0 Y0 X1 Y1
  if [ -z "$2" ] || [ -z "$4" ] || [ "$1" = "$3" ]; then echo "n/a"; return; fi
  awk -v x0="$1" -v y0="$2" -v x1="$3" -v y1="$4" \
    'BEGIN { if (y0 <= 0 || y1 <= 0) print "n/a"; else printf "%.2f\n", log(y1 / y0) / log(x1 / x0) }'
}

table() {
  echo "| repeat | TP | requests | events | verdict | wall s | CPU s | max RSS MiB |"
  echo "|---:|---:|---:|---:|---|---:|---:|---:|"
  for r in $repeats; do
    for t in $tps; do
      c="$r,$t"
      echo "| $r | $t | ${requests[$c]:--} | ${events[$c]:--} | ${verdict[$c]:--} | ${wall[$c]:--} | ${cpu[$c]:--} | ${rss[$c]:--} |"
    done
  done
}

exponents() {
  echo "Growth in trace length, per TP: the exponent a of repeat^a from ${r_lo}× to ${r_hi}×."
  echo
  echo "| TP | kernel events | wall time | CPU time | max RSS |"
  echo "|---:|---:|---:|---:|---:|"
  for t in $tps; do
    echo "| $t | $(slope "$r_lo" "${events[$r_lo,$t]:-}" "$r_hi" "${events[$r_hi,$t]:-}") |" \
      "$(slope "$r_lo" "${wall[$r_lo,$t]:-}" "$r_hi" "${wall[$r_hi,$t]:-}") |" \
      "$(slope "$r_lo" "${cpu[$r_lo,$t]:-}" "$r_hi" "${cpu[$r_hi,$t]:-}") |" \
      "$(slope "$r_lo" "${rss[$r_lo,$t]:-}" "$r_hi" "${rss[$r_hi,$t]:-}") |"
  done
  echo
  echo "Growth in TP, per repeat: the exponent b of TP^b from TP $t_lo to TP $t_hi."
  echo
  echo "| repeat | kernel events | wall time | CPU time | max RSS |"
  echo "|---:|---:|---:|---:|---:|"
  for r in $repeats; do
    echo "| $r | $(slope "$t_lo" "${events[$r,$t_lo]:-}" "$t_hi" "${events[$r,$t_hi]:-}") |" \
      "$(slope "$t_lo" "${wall[$r,$t_lo]:-}" "$t_hi" "${wall[$r,$t_hi]:-}") |" \
      "$(slope "$t_lo" "${cpu[$r,$t_lo]:-}" "$t_hi" "${cpu[$r,$t_hi]:-}") |" \
      "$(slope "$t_lo" "${rss[$r,$t_lo]:-}" "$t_hi" "${rss[$r,$t_hi]:-}") |"
  done
}

# An exponent in words.
growth() {  # EXPONENT
  awk -v e="$1" 'BEGIN {
    if (e == "n/a") print "not measured (one point)";
    else if (e < 0.15) printf "flat (exponent %s)", e;
    else if (e < 0.85) printf "sublinear (exponent %s)", e;
    else if (e <= 1.15) printf "about linear (exponent %s)", e;
    else printf "superlinear (exponent %s)", e }'
}

# The numbers in a paragraph: how CPU time and peak memory grow along each axis, from the largest
# cell's corner, and what the largest cell took.
reading() {
  local big="$r_hi,$t_hi" cpu_len rss_len cpu_tp rss_tp len_range events_len us_lo us_hi
  cpu_len=$(slope "$r_lo" "${cpu[$r_lo,$t_hi]:-}" "$r_hi" "${cpu[$big]:-}")
  events_len=$(slope "$r_lo" "${events[$r_lo,$t_hi]:-}" "$r_hi" "${events[$big]:-}")
  us_lo=$(awk -v c="${cpu[$r_lo,$t_hi]:-0}" -v e="${events[$r_lo,$t_hi]:-0}" 'BEGIN { if (e > 0) printf "%.1f", c * 1e6 / e; else print "?" }')
  us_hi=$(awk -v c="${cpu[$big]:-0}" -v e="${events[$big]:-0}" 'BEGIN { if (e > 0) printf "%.1f", c * 1e6 / e; else print "?" }')
  rss_len=$(slope "$r_lo" "${rss[$r_lo,$t_hi]:-}" "$r_hi" "${rss[$big]:-}")
  cpu_tp=$(slope "$t_lo" "${cpu[$r_hi,$t_lo]:-}" "$t_hi" "${cpu[$big]:-}")
  rss_tp=$(slope "$t_lo" "${rss[$r_hi,$t_lo]:-}" "$t_hi" "${rss[$big]:-}")
  len_range=$(for t in $tps; do slope "$r_lo" "${cpu[$r_lo,$t]:-}" "$r_hi" "${cpu[$r_hi,$t]:-}"; done |
    grep -v n/a | sort -g | sed -n '1p;$p' | paste -sd ' ' | awk '{ print ($1 == $2 || $2 == "") ? $1 : $1 " to " $2 }')
  cat <<EOF
Against the trace's length (${r_lo}× to ${r_hi}×, at TP $t_hi), CPU time is $(growth "$cpu_len") and
peak memory $(growth "$rss_len"); over all the TPs measured, the CPU-time exponent in length is
${len_range:-not measured (one point)}. The kernel's events are $(growth "$events_len") in length,
and an event costs ${us_lo} µs of CPU at ${r_lo}× and ${us_hi} µs at ${r_hi}× (TP $t_hi). Against the TP size (TP $t_lo to TP $t_hi, at ${r_hi}×), CPU time is
$(growth "$cpu_tp") and peak memory $(growth "$rss_tp"). The largest cell, ${r_hi}× at TP $t_hi
(${requests[$big]:-?} requests, ${events[$big]:-?} kernel events), took ${wall[$big]:-?} s of wall time, ${cpu[$big]:-?} s of CPU and
${rss[$big]:-?} MiB at its peak. An exponent near 1 is a cost per request (or per rank) that stays
the same as the run grows; above 1, each request (or rank) costs more in a longer trace (or a
wider group); below 1, a fixed cost (the process, the trace's parse) still weighs.
EOF
}

doc() {
  local model commit buildtype cells
  model=$(lscpu 2> /dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
  commit=$(git describe --always --dirty 2> /dev/null || echo unknown)
  # The build's type, where the hcsim sits in a meson build folder.
  buildtype=$(python3 -c 'import json, sys
print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"))' \
    "$(dirname "$hcsim")/meson-info/intro-buildoptions.json" 2> /dev/null || echo "unknown")
  if [ "$runs" = 1 ]; then cells="one run"; else cells="the median of $runs runs, column by column"; fi
  cat <<EOF
# Scaling: one replay against the trace's length and the TP size

<!-- Written by bench/scaling.sh --out docs/scaling.md: edit the script, not this file. -->

How the cost of one replay grows as its input grows: the Mooncake conversation trace (12,031
requests over 59 minutes) played $(listed "$repeats") times in a row (the workload's \`repeat\`,
docs/workloads.md: each copy a period after the one before, of documents of its own, so the
requests and the L3 contents grow with it, as a longer trace of the same statistics would), at TP
$(listed "$tps"). Each cell is one replay as \`grids/mooncake-replay-benchmark.json\` runs it: the
scenario \`scenarios/himamba-sidecar-lag-tp4.json\` with the zero-copy L3 backend, the scheduler
sleeping when idle, the \`timeout\` policy under \`seed-fix\`, seed 1, through \`hcsim sweep -q\`,
timed by GNU time: wall seconds, user + system CPU seconds and the peak resident set. The
scenario's one delay rule (request R on rank 2) is dropped first, as the workload would drop it,
so that TP 1 and 2 accept the scenario; at TP 4 the run is the benchmark grid's own, digest for
digest.

CPU time is the steadier measure on a shared machine: wall time also counts what the machine's
other work takes from the run. An exponent is the slope of a log-log line between the first and
the last point of an axis: y grows as x^exponent.

## Machine and build

- $(nproc) cores (\`nproc\`), ${model:-unknown model} (\`lscpu\`), $(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) GiB of memory
- hcsim at \`$hcsim\`, a $buildtype build of commit \`$commit\`; measured $(date -u +%Y-%m-%d)
- each cell $cells; load average (1, 5, 15 min) $load_before before the runs, $load_after after

Regenerate the whole of this page (several minutes; the public traces must be where
\`HCSIM_TRACES\` says, default \`../shared/traces-public\`):

\`\`\`
bench/scaling.sh --out docs/scaling.md
\`\`\`

A quick look at a corner of the grid (a few seconds; prints the table only):

\`\`\`sh
bench/scaling.sh --repeats "1 2" --tps 1
\`\`\`

## Results

$(table)

## Growth exponents

$(exponents)

## Reading

$(reading)
EOF
}

table
echo
exponents
if [ "$failed" != 0 ]; then
  echo "scaling.sh: some replays failed (above); ${out:-no file} left as it was" >&2
  exit 1
fi
if [ -n "$out" ]; then
  doc > "$tmp/doc.md"
  mv "$tmp/doc.md" "$out"
  echo "scaling.sh: wrote $out" >&2
fi
