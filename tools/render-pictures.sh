#!/usr/bin/env bash
# Renders the pictures the docs show, as PNG, from a built hcsim: a hang-rate heat map and a
# trade-off plot of a small stall sweep it runs itself (grids/stall-family.json at TP 2, 20 seeds),
# and wait-for graphs of TP 8 hangs (registration-divergence, and the seed scenario at TP 8) and
# of the seed TP 2 hang. Graphviz (dot) and librsvg (rsvg-convert) come from Debian when missing.
# Writes only into OUT_DIR; its work files go to a temporary folder, removed at the end.
#
#   tools/render-pictures.sh [BUILD_DIR] [OUT_DIR]      defaults: build, docs/pictures
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-docs/pictures}
hcsim=$build/hcsim

[ -x "$hcsim" ] || { echo "render-pictures: no $hcsim; build first (see README)" >&2; exit 2; }
need=()
command -v dot >/dev/null || need+=(graphviz)
command -v rsvg-convert >/dev/null || need+=(librsvg2-bin)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v python3 >/dev/null || { echo "render-pictures: needs python3" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

svg_png() { rsvg-convert --zoom 1.5 --format png --output "$2" "$1"; }        # SVG PNG
dot_png() { dot -Tpng -Gdpi=96 -o "$2" "$1"; }                                # DOT PNG

# The plots: the stall family at TP 2, 20 seeds a point (960 runs, seconds on two cores).
python3 - "$PWD" "$work/stall.json" <<'EOF'
import json, sys
root, path = sys.argv[1], sys.argv[2]
with open(f"{root}/grids/stall-family.json") as f:
    grid = json.load(f)
grid["description"] = "grids/stall-family.json at TP 2 with 20 seeds a point"
grid["scenario"] = f"{root}/scenarios/himamba-sidecar-lag.json"
grid["seeds"] = {"first": 1, "count": 20}
grid["axes"] = [a for a in grid["axes"] if a["name"] != "/tp"]
with open(path, "w") as f:
    json.dump(grid, f, indent=1)
EOF
"$hcsim" sweep "$work/stall.json" -o "$work/stall" -q >/dev/null
"$hcsim" plot "$work/stall.jsonl" --heatmap /delays/0 variant --where policy=timeout -o "$work/heatmap.svg" >/dev/null
"$hcsim" plot "$work/stall.jsonl" --tradeoff -o "$work/tradeoff.svg" >/dev/null
svg_png "$work/heatmap.svg" "$out/heatmap-stall-timeout.png"
svg_png "$work/tradeoff.svg" "$out/tradeoff-stall.png"

# The wait-for graphs: TP 8 (a library scenario, and the seed scenario made TP 8), and the seed at TP 2.
python3 - scenarios/himamba-sidecar-lag.json "$work/sidecar-lag-tp8.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    s = json.load(f)
s["tp"] = 8
s["name"] += "-tp8"
with open(sys.argv[2], "w") as f:
    json.dump(s, f, indent=1)
EOF
wait_for() {  # SCENARIO NAME
  "$hcsim" run "$1" --preset pre-fix --expect hang --dot "$work/$2.dot" >/dev/null
  dot_png "$work/$2.dot" "$out/wait-for-$2.png"
}
wait_for scenarios/registration-divergence.json registration-divergence-tp8
wait_for "$work/sidecar-lag-tp8.json" sidecar-lag-tp8
wait_for scenarios/himamba-sidecar-lag.json sidecar-lag-tp2

echo "render-pictures: wrote $(cd "$out" && ls -- *.png | tr '\n' ' ')in $out/"
