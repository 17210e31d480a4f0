#!/usr/bin/env bash
# CPU per run of the seed scenario in hcsim and in a SimPy model of it (bench/simpy_seed.py), side
# by side: pre-fix (the hang at 16 ms) and seed-fix (505 ms to completion). hcsim's figure is `hcsim
# bench`'s median thread CPU time per whole run; SimPy's is the model's median process CPU time per
# run over batches of seeds. Run from the project root after `tools/bootstrap.sh --bench`:
#
#   bench/simpy-vs-hcsim.sh [--hcsim PATH] [--runs N]
#   variant   hcsim CPU ms/run  SimPy CPU ms/run  hcsim uses less CPU
#   pre-fix             0.0314            0.6960  22.1x
#   ...
set -euo pipefail

hcsim=./build/hcsim
runs=300
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --hcsim) [ $# -ge 2 ] || { echo "simpy-vs-hcsim.sh: --hcsim needs a path" >&2; exit 2; }; hcsim=$2; shift 2 ;;
    --runs) [ $# -ge 2 ] || { echo "simpy-vs-hcsim.sh: --runs needs a count" >&2; exit 2; }; runs=$2; shift 2 ;;
    *) echo "simpy-vs-hcsim.sh: unknown option '$1' (--help for usage)" >&2; exit 2 ;;
  esac
done
[ -x "$hcsim" ] || { echo "simpy-vs-hcsim.sh: no hcsim at $hcsim (build it, or give --hcsim)" >&2; exit 2; }
if ! /usr/bin/python3 -c 'import simpy' 2> /dev/null; then
  echo "simpy-vs-hcsim.sh: Debian's python3 has no SimPy; install it with tools/bootstrap.sh --bench (python3-simpy3)"
  exit 0
fi

bench=$("$hcsim" bench --json --no-replay -q)
hcsim_ms() { # the bench line of a variant, its CPU ms per run
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(next(l["cpu_ms_per_run"] for l in d["lines"] if l["name"].startswith("seed " + sys.argv[2] + " ")))' "$bench" "$1"
}
printf "%-9s %17s %17s  %s\n" variant "hcsim CPU ms/run" "SimPy CPU ms/run" "hcsim uses less CPU"
for variant in pre-fix seed-fix; do
  ours=$(hcsim_ms "$variant")
  theirs=$(/usr/bin/python3 bench/simpy_seed.py --variant "$variant" --runs "$runs" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["cpu_ms_per_run"])')
  python3 -c 'import sys; o,t=float(sys.argv[2]),float(sys.argv[3]); print("%-9s %17.4f %17.4f  %.1fx" % (sys.argv[1], o, t, t/o))' "$variant" "$ours" "$theirs"
done
echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; hcsim: bench's median of 5 repetitions; SimPy: $runs runs a variant)"
