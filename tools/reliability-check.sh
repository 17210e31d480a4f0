#!/usr/bin/env bash
# tools/reliability-check.sh [HCSIM]   (HCSIM: the hcsim binary, default build/hcsim)
#
# Hostile inputs and failing outputs, each against the exit code the docs give it: JSON nested
# 100,000 deep, /dev/zero and FIFOs where results belong, a file size limit (ulimit -f) under a sweep,
# a merge and a recording, two writers on one sweep prefix, tampered traces, output folders that
# are missing or cannot be made, a duplicate key, a file given to the wrong command.
#
# Prints one Markdown table row per case: the case, the command, its exit code, the first line
# of what it said on standard error (the first line starting 'hcsim:', else the first line), its
# peak RSS (/usr/bin/time; '-' without it), and what it left behind: temporary files (*.tmp.*),
# outputs that must not exist, files that must be unchanged, rows that must be whole.
# Then 'holds' when every case did what is documented (exit 0); else the failing cases (exit 1).
#
# Everything happens in a temporary folder, removed at the end; nothing is written in the
# repository, and nothing is left running. Sweeps use one thread (-j 1). About 10 s on 2 cores.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HCSIM=${1:-build/hcsim}
if [[ $HCSIM != /* ]]; then
  if [[ -e $HCSIM ]]; then HCSIM="$PWD/$HCSIM"; else HCSIM="$ROOT/$HCSIM"; fi
fi
if [[ ! -x $HCSIM ]]; then
  echo "reliability-check: no hcsim at $HCSIM: build it, or pass its path" >&2
  exit 2
fi
for tool in python3 timeout mkfifo cmp; do
  command -v "$tool" >/dev/null || { echo "reliability-check: needs $tool" >&2; exit 2; }
done
TIME=""
[[ -x /usr/bin/time ]] && TIME=/usr/bin/time

W=$(mktemp -d "${TMPDIR:-/tmp}/hcsim-reliability.XXXXXX")
BACKGROUND=()
cleanup() {
  local p
  for p in "${BACKGROUND[@]}"; do
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$W" || exit 2

# ---------------------------------------------------------------------------------------------
# Running a case and reporting it

RC=0 RSS=""
# attempt [--ulimit-f BLOCKS] [--timeout S] -- ARGS...: runs hcsim ARGS here; sets RC and RSS.
attempt() {
  local ulimit_f="" limit=60
  while [[ $1 != -- ]]; do
    case $1 in
      --ulimit-f) ulimit_f=$2; shift 2 ;;
      --timeout) limit=$2; shift 2 ;;
    esac
  done
  shift
  local timer=() limited=()
  [[ -n $TIME ]] && timer=("$TIME" -f %M -o "$W/.rss")
  [[ -n $ulimit_f ]] && limited=(bash -c 'ulimit -f "$0" && exec "$@"' "$ulimit_f")
  rm -f "$W/.rss"
  timeout -k 5 "$limit" "${timer[@]}" "${limited[@]}" "$HCSIM" "$@" >"$W/.out" 2>"$W/.err"
  RC=$?
  RSS=$(peak "$W/.rss")
}

# peak FILE: the peak RSS /usr/bin/time wrote to FILE, in MiB; '-' without it
peak() {
  local kib=""
  [[ -s $1 ]] && kib=$(tail -n 1 "$1")
  if [[ $kib =~ ^[0-9]+$ ]]; then
    awk -v k="$kib" 'BEGIN { printf "%.0f MiB", k / 1024 }'
  else
    echo "-"
  fi
}

PROBLEMS=()   # what went wrong in the current case
LEFT=""       # the 'files left' cell of the current case, when all is well
problem() { PROBLEMS+=("$*"); }

# absent PATH...: none of these may exist (an output of a failed command, a half-written file)
absent() {
  local p
  for p in "$@"; do
    [[ -e $p || -L $p ]] && problem "left $p"
  done
  return 0
}

# same FILE REFERENCE: FILE must still hold exactly REFERENCE's bytes
same() {
  [[ -f $1 ]] || { problem "$1 is gone"; return 0; }
  cmp -s "$1" "$2" || problem "$1 changed"
}

# whole_rows PREFIX: every line of PREFIX.jsonl is a whole row, in run order, and the CSV holds the same rows
whole_rows() {
  python3 - "$1" <<'EOF' || problem "$1.jsonl/.csv: rows not whole"
import json, sys
p = sys.argv[1]
data = open(p + ".jsonl", "rb").read()
if data and not data.endswith(b"\n"):
    sys.exit("torn last row")
rows = [json.loads(line) for line in data.decode().splitlines()]
if [r["run"] for r in rows] != list(range(len(rows))):
    sys.exit("rows out of order")
csv = open(p + ".csv", "rb").read()
if not csv.endswith(b"\n") or csv.count(b"\n") != len(rows) + 1:
    sys.exit("the CSV holds other rows")
print(len(rows))
EOF
}

FAILED=()
COUNT=0
# report ID CASE COMMAND EXPECTED_EXIT PATTERN: checks the last attempt and prints its row
report() {
  local id=$1 what=$2 shown=$3 expect=$4 pattern=$5
  COUNT=$((COUNT + 1))
  if (( RC == 124 || RC == 137 )); then
    problem "blocked: killed by timeout"
  elif (( RC > 128 )); then
    problem "killed by signal $((RC - 128))"
  fi
  if grep -Eq 'terminate called|internal error|Sanitizer|Segmentation|Aborted' "$W/.err"; then
    problem "crashed: $(grep -Em1 'terminate called|internal error|Sanitizer|Segmentation|Aborted' "$W/.err")"
  fi
  if [[ -n $pattern ]] && ! grep -Fq -- "$pattern" "$W/.err" "$W/.out"; then
    problem "does not say '$pattern'"
  fi
  local temps
  temps=$(find "$W" -name '*.tmp.*' -printf '%P ' 2>/dev/null)
  if [[ -n $temps ]]; then
    problem "temporary file(s) left: $temps"
    find "$W" -name '*.tmp.*' -delete
  fi
  local said
  said=$(grep -m1 '^hcsim:' "$W/.err" || head -n 1 "$W/.err")
  said=${said#hcsim: }
  [[ -n $said ]] || said="(nothing)"
  (( ${#said} > 110 )) && said="${said:0:107}..."
  said=${said//|/\\|}
  local exit_cell=$RC files_cell=${LEFT:-none}
  if (( RC != expect )); then
    exit_cell="**$RC, expected $expect**"
    FAILED+=("$id")
  fi
  if (( ${#PROBLEMS[@]} > 0 )); then
    files_cell="**$(IFS=';'; echo "${PROBLEMS[*]}")**"
    [[ ${FAILED[*]-} == *"$id"* ]] || FAILED+=("$id")
  fi
  printf '| %s | `%s` | %s | %s | %s | %s |\n' "$id $what" "$shown" "$exit_cell" "$said" "$RSS" "$files_cell"
  PROBLEMS=()
  LEFT=""
}

# ---------------------------------------------------------------------------------------------
# Inputs

mkdir -p scenarios
cp "$ROOT/scenarios/himamba-sidecar-lag.json" "$ROOT/scenarios/himamba-sidecar-lag-tp4.json" scenarios/
S=scenarios/himamba-sidecar-lag.json
S4=scenarios/himamba-sidecar-lag-tp4.json

# grids/seed-family.json cut to 3 seeds: 648 runs, about 1 s on one thread (grid.json); and to 10
# seeds for the sweep that holds a prefix while others try it (long.json)
python3 - "$ROOT/grids/seed-family.json" <<'EOF'
import json, sys
g = json.load(open(sys.argv[1]))
g["scenario"] = "scenarios/himamba-sidecar-lag.json"
for name, count in (("grid.json", 3), ("long.json", 10)):
    g["seeds"] = {"first": 1, "count": count}
    json.dump(g, open(name, "w"), indent=1)
EOF

python3 -c 'print("[" * 100000)' > deep.json
cp deep.json deep.jsonl
mkdir -p deepr
cp deep.json deepr/x.jsonl

setup() {  # a step that is not a case: it must succeed
  if ! "$HCSIM" "$@" >"$W/.out" 2>"$W/.err"; then
    echo "reliability-check: setup failed: hcsim $*" >&2
    cat "$W/.err" >&2
    exit 1
  fi
}
setup run "$S" --preset pre-fix --record T.jsonl -q
setup sweep grid.json -o clean/x -q -j 1
setup sweep grid.json -o shard/s1 --shard 1/2 -q -j 1
setup sweep grid.json -o shard/s2 --shard 2/2 -q -j 1
cp clean/x.grid.json deepr/x.grid.json
mkdir -p ref
cp shard/s1.* shard/s2.* ref/

# the tampered traces
python3 - <<'EOF'
import json, re
lines = open("T.jsonl").read().split("\n")[:-1]
def write(name, ls):
    open(name, "w").write("\n".join(ls) + "\n")
t = [int(re.search(r'"t_ns":(\d+)', l).group(1)) for l in lines[1:]]
i = next(i for i in range(10, len(t) - 1) if t[i] != t[i + 1]) + 1   # two neighbours, different times
a, b = (re.search(r'"t_ns":\d+', lines[k]).group(0) for k in (i, i + 1))
s = list(lines); s[i], s[i + 1] = lines[i].replace(a, b), lines[i + 1].replace(b, a)
write("swapped-times.jsonl", s)
s = list(lines); s[1], s[2] = lines[2], lines[1]                       # two lines at time 0
write("swapped-lines.jsonl", s)
write("deleted.jsonl", lines[:20] + lines[21:])
h = json.loads(lines[0]); h["scenario"]["requests"][0]["input_tokens"] += 100
write("edited.jsonl", [json.dumps(h, separators=(",", ":"))] + lines[1:])
h = lines[0].replace('"name":', '"name":"X","name":', 1)              # a key twice in the header
write("dupkey.jsonl", [h] + lines[1:])
open("cut.jsonl", "w").write(open("T.jsonl").read()[:-30])           # last line cut mid-way
EOF
sed '0,/"name": *"R"/s//"name": "R", "name": "Q"/' "$S" > dupkey.json
grep -q '"name": "Q"' dupkey.json || { echo "reliability-check: could not make dupkey.json" >&2; exit 1; }

# shard-like prefixes whose files are not regular: a device, a FIFO
mkdir -p zero fifo
ln -s /dev/zero zero/P.jsonl
cp shard/s1.grid.json shard/s1.csv fifo/
mv fifo/s1.grid.json fifo/P.grid.json
mv fifo/s1.csv fifo/P.csv
cp fifo/P.grid.json fifo/P.csv zero/
mkfifo fifo/P.jsonl
mkfifo results.jsonl
cp clean/x.grid.json results.grid.json
mkdir -p onzero
ln -s /dev/zero onzero/x.jsonl
ln -s shard alias
touch FILE

echo "| case | command | exit | what it says (stderr, first line) | memory | files left |"
echo "|---|---|---|---|---|---|"

# ---------------------------------------------------------------------------------------------
# (a) nesting 100,000 deep

attempt -- run deep.json
report a1 "100,000 \`[\` as a scenario" "hcsim run deep.json" 2 "nested deeper than 64 levels"
attempt -- shrink deep.json -o out/a2.json
absent out/a2.json
report a2 "the same, to shrink" "hcsim shrink deep.json -o out/a2.json" 2 "nested deeper than 64 levels"
attempt -- sweep deep.json -o out/a3 -q
absent out/a3.jsonl out/a3.csv out/a3.grid.json out/a3.lock
report a3 "the same, as a grid" "hcsim sweep deep.json -o out/a3" 2 "nested deeper than 64 levels"
attempt -- replay deep.jsonl
report a4 "100,000 \`[\` as a trace's header line" "hcsim replay deep.jsonl" 2 "nested deeper than 64 levels"
attempt -- export --chrome out/a5.json --dot out/a5.dot deep.jsonl
absent out/a5.json out/a5.dot
report a5 "the same, to export" "hcsim export --chrome out/a5.json --dot out/a5.dot deep.jsonl" 2 "nested deeper than 64 levels"
attempt -- plot deepr/x.jsonl --tradeoff -o out/a6.svg
absent out/a6.svg
report a6 "100,000 \`[\` as a results row" "hcsim plot deepr/x.jsonl --tradeoff -o out/a6.svg" 2 "nested deeper than 64 levels"

# ---------------------------------------------------------------------------------------------
# (b) devices and FIFOs where files belong; a merge onto its own input

attempt --timeout 10 -- plot /dev/zero --tradeoff -o out/b1.svg
absent out/b1.svg
report b1 "/dev/zero as results" "hcsim plot /dev/zero --tradeoff -o out/b1.svg" 2 "not a regular file"
attempt --timeout 10 -- plot results.jsonl --tradeoff -o out/b2.svg
absent out/b2.svg
report b2 "a FIFO (no writer) as results" "timeout 10 hcsim plot results.jsonl --tradeoff -o out/b2.svg" 2 "not a regular file"
attempt --timeout 10 -- merge -o out/b3 zero/P
absent out/b3.jsonl out/b3.csv out/b3.grid.json out/b3.summary.md out/b3.lock
report b3 "a shard whose .jsonl is /dev/zero" "hcsim merge -o out/b3 zero/P   # zero/P.jsonl -> /dev/zero" 2 "not a regular file"
attempt --timeout 10 -- merge -o out/b4 fifo/P shard/s2
absent out/b4.jsonl out/b4.csv out/b4.grid.json out/b4.summary.md out/b4.lock
report b4 "a shard whose .jsonl is a FIFO" "timeout 10 hcsim merge -o out/b4 fifo/P shard/s2" 2 "not a regular file"
attempt --timeout 10 -- sweep grid.json -o onzero/x -q -j 1
absent onzero/x.csv onzero/x.grid.json onzero/x.lock
report b5 "a sweep resuming into /dev/zero" "hcsim sweep grid.json -o onzero/x   # onzero/x.jsonl -> /dev/zero" 2 "not a regular file"
attempt -- merge -o shard/s1 shard/s1 shard/s2
for f in s1.jsonl s1.csv s1.grid.json s2.jsonl; do same shard/$f ref/$f; done
absent shard/s1.summary.md
LEFT="shards unchanged"
report b6 "a merge onto one of its inputs" "hcsim merge -o shard/s1 shard/s1 shard/s2" 2 "merging onto an input would overwrite it"
attempt -- merge -o alias/s2 shard/s1 shard/s2
for f in s1.jsonl s2.jsonl s2.csv s2.grid.json; do same shard/$f ref/$f; done
LEFT="shards unchanged"
report b7 "the same, the input under another name" "hcsim merge -o alias/s2 shard/s1 shard/s2   # alias -> shard" 2 "merging onto an input would overwrite it"

# ---------------------------------------------------------------------------------------------
# (c) a full disk: ulimit -f (blocks of 1 KiB) under sweep, merge and --record

# The sweep writes its rows every 200 ms or 1 MiB, each batch in one write(2); a batch that does
# not fit is cut off whole, so how many rows stay depends on the machine's speed (0 is right too).
attempt --ulimit-f 200 -- sweep grid.json -o full/x -q -j 1
rows=$(whole_rows full/x)
absent full/x.summary.md full/x.lock
LEFT="x.jsonl: ${rows:-?} whole rows, the CSV the same"
report c1 "a sweep past \`ulimit -f 200\`" "(ulimit -f 200; hcsim sweep grid.json -o full/x -j 1)" 2 "cannot write: File too large"
attempt -- sweep grid.json -o full/x -j 1   # not -q: it says how many runs it resumed after
for f in x.jsonl x.csv x.grid.json x.summary.md; do same full/$f clean/$f; done
LEFT="resumed after ${rows:-?} rows; its 4 files = a clean sweep's (cmp)"
resumed=""
[[ ${rows:-0} != 0 ]] && resumed="$rows run(s) were already in the files"
report c2 "the same command again, no limit" "hcsim sweep grid.json -o full/x -j 1" 0 "$resumed"
attempt --ulimit-f 100 -- merge -o full/m shard/s1 shard/s2
absent full/m.jsonl full/m.csv full/m.grid.json full/m.summary.md full/m.lock
report c3 "a merge past \`ulimit -f 100\`" "(ulimit -f 100; hcsim merge -o full/m shard/s1 shard/s2)" 2 "cannot write: File too large"
attempt --ulimit-f 10 -- run "$S4" --record full/t.jsonl -q
absent full/t.jsonl
report c4 "a recording past \`ulimit -f 10\`" "(ulimit -f 10; hcsim run $S4 --record full/t.jsonl)" 2 "cannot write: File too large"
setup run "$S4" --record full/old.jsonl -q
cp full/old.jsonl ref/old.jsonl
attempt --ulimit-f 10 -- run "$S4" --seed 7 --record full/old.jsonl -q
same full/old.jsonl ref/old.jsonl
LEFT="old.jsonl: the previous trace, whole"
report c5 "the same, over an existing trace" "(ulimit -f 10; hcsim run $S4 --seed 7 --record full/old.jsonl)" 2 "cannot write: File too large"

# ---------------------------------------------------------------------------------------------
# (d) two writers on one prefix

holder_timer=()
[[ -n $TIME ]] && holder_timer=("$TIME" -f %M -o "$W/.holder.rss")
"${holder_timer[@]}" "$HCSIM" sweep long.json -o busy/x -q -j 1 >"$W/.holder.out" 2>"$W/.holder.err" &
started=$!
BACKGROUND+=("$started")
for _ in $(seq 200); do
  [[ -e busy/x.lock ]] && break
  sleep 0.05
done
holder=$started   # the hcsim process: /usr/bin/time's child, when it runs under time
if [[ -n $TIME ]]; then
  child=$(cat "/proc/$started/task/$started/children" 2>/dev/null)
  [[ ${child%% *} =~ ^[0-9]+$ ]] && holder=${child%% *}
fi
attempt -- sweep long.json -o busy/x -q -j 1
kill -0 "$holder" 2>/dev/null || problem "inconclusive: the first sweep had ended"
report d1 "a second sweep onto a prefix in use" "hcsim sweep long.json -o busy/x  (twice at once)" 2 "in use by another hcsim (pid $holder, hcsim sweep"
attempt -- merge -o busy/x shard/s1 shard/s2
kill -0 "$holder" 2>/dev/null || problem "inconclusive: the first sweep had ended"
report d2 "a merge onto that prefix" "hcsim merge -o busy/x shard/s1 shard/s2" 2 "in use by another hcsim (pid $holder, hcsim sweep"
wait "$started"
RC=$?
BACKGROUND=()
cp "$W/.holder.err" "$W/.err"
: >"$W/.out"
RSS=$(peak "$W/.holder.rss")
rows=$(whole_rows busy/x)
absent busy/x.lock
[[ $rows == 2160 ]] || problem "busy/x.jsonl holds ${rows:-?} of 2160 rows"
LEFT="all 2160 rows; the lock removed"
report d3 "the first sweep, meanwhile" "hcsim sweep long.json -o busy/x" 0 ""

# ---------------------------------------------------------------------------------------------
# (e) tampered traces (T.jsonl: hcsim run $S --preset pre-fix --record T.jsonl)

attempt -- replay swapped-times.jsonl
report e1 "a trace, two events' times swapped" "hcsim replay swapped-times.jsonl" 2 "a run's events are in time order"
attempt -- replay swapped-lines.jsonl
report e2 "a trace, two events at one time swapped" "hcsim replay swapped-lines.jsonl" 2 "the file was edited or is damaged"
attempt -- replay deleted.jsonl
report e3 "a trace, an event line deleted" "hcsim replay deleted.jsonl" 2 "whole event line(s), the header says"
attempt -- export --chrome out/e4.json deleted.jsonl
absent out/e4.json
report e4 "the same, to export" "hcsim export --chrome out/e4.json deleted.jsonl" 2 "whole event line(s), the header says"
attempt -- replay edited.jsonl
report e5 "a trace, its scenario's input_tokens edited" "hcsim replay edited.jsonl" 3 "embedded scenario does not produce the recorded events"
attempt -- replay cut.jsonl
LEFT="(replays to the cut; names the L3 calls in flight)"
report e6 "a trace, its last line cut mid-way (a killed write)" "hcsim replay cut.jsonl" 0 "the next line is cut off"

# ---------------------------------------------------------------------------------------------
# (f) output folders

attempt -- run "$S" --record new/dir/t.jsonl -q
[[ -f new/dir/t.jsonl ]] && cmp -s new/dir/t.jsonl T.jsonl || problem "new/dir/t.jsonl missing or not the whole trace"
LEFT="new/dir/ created; t.jsonl whole"
report f1 "--record into a missing folder" "hcsim run $S --record new/dir/t.jsonl" 0 ""
attempt -- run "$S" --record FILE/t.jsonl -q
[[ -f FILE && ! -s FILE ]] || problem "FILE changed"
report f2 "--record under a regular file" "hcsim run $S --record FILE/t.jsonl" 2 "cannot create its folder 'FILE': Not a directory"
attempt -- sweep grid.json -o FILE/x -q -j 1
[[ -f FILE && ! -s FILE ]] || problem "FILE changed"
report f3 "a sweep under a regular file" "hcsim sweep grid.json -o FILE/x" 2 "cannot create its folder 'FILE': Not a directory"

# ---------------------------------------------------------------------------------------------
# (g) duplicate keys, (h) a file given to the wrong command

attempt -- run dupkey.json
report g1 "a scenario with a key twice" "hcsim run dupkey.json" 2 "duplicate key \"name\""
attempt -- replay dupkey.jsonl
report g2 "a trace header with a key twice" "hcsim replay dupkey.jsonl" 2 "duplicate key \"name\""
attempt -- run T.jsonl
report h1 "a trace given to run" "hcsim run T.jsonl" 2 "use 'hcsim replay T.jsonl'"
attempt -- replay "$S"
report h2 "a scenario given to replay" "hcsim replay $S" 2 "is a scenario, not a trace: use hcsim run"

echo
if (( ${#FAILED[@]} == 0 )); then
  echo "holds: all $COUNT cases end as documented, with nothing half-written left"
  exit 0
fi
echo "FAILS: ${FAILED[*]} (${#FAILED[@]} of $COUNT cases)"
exit 1
