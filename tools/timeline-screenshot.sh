#!/usr/bin/env bash
# Opens one exported timeline in a real Chrome-trace viewer and saves a screenshot of it:
# speedscope (from the npm registry) served on loopback, rendered by headless Chromium (Debian).
#
#   tools/timeline-screenshot.sh [BUILD_DIR] [TRACE] [OUT.png]
#   defaults: build, traces/qwen35-tp4-wait-complete-hang.jsonl, docs/timeline-qwen35-tp4.png
#
# speedscope shows one track at a time, so the page holds one speedscope per rank, stacked in the
# export's rank order (process_sort_index: the odd ones out first), each titled with the rank's
# process name ("rank 2: stuck in forward(2100)"); a caption above them quotes the export's global
# hang instant. Writes nothing but OUT.png, and leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
trace=${2:-traces/qwen35-tp4-wait-complete-hang.jsonl}
out=${3:-docs/timeline-qwen35-tp4.png}

[ -x "$build/hcsim" ] || { echo "timeline-screenshot: no $build/hcsim; build first (see README)" >&2; exit 2; }
if ! command -v chromium >/dev/null; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium
fi
command -v npm >/dev/null || { echo "timeline-screenshot: needs npm (Debian package npm)" >&2; exit 2; }

work=$(mktemp -d)
server=""
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

npm install --prefix "$work/npm" --no-audit --no-fund --silent speedscope >/dev/null
cp -r "$work/npm/node_modules/speedscope/dist/release" "$work/site"
"$build/hcsim" export --chrome "$work/trace.json" "$trace" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

# One trace file per rank, and the page that stacks them.
ranks=$(python3 - "$work/trace.json" "$work/site" "$port" <<'EOF'
import html, json, sys, urllib.parse
src, site, port = sys.argv[1], sys.argv[2], sys.argv[3]
doc = json.load(open(src))
label = "%s (%s)" % (doc["otherData"]["scenario"], doc["otherData"]["variant"])
events = doc["traceEvents"]
names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
order = {e["pid"]: e["args"]["sort_index"] for e in events if e["ph"] == "M" and e["name"] == "process_sort_index"}
ranks = sorted(names, key=lambda pid: (order.get(pid, pid), pid))
hang = [e for e in events if e["ph"] == "i" and e.get("s") == "g"]
caption = label + ": " + doc["otherData"]["verdict"]
if hang:
    args = hang[0]["args"]
    caption = label + ": " + hang[0]["name"] + " at %.3f ms" % (hang[0]["ts"] / 1000)
    if "entered" in args:
        caption += " | entered: " + "; ".join(args["entered"])
        if args.get("missing_ranks"):
            caption += " | never entered: rank " + ", ".join(str(r) for r in args["missing_ranks"])
caption += " | run ended at %.3f ms" % (doc["otherData"]["end_of_run_us"] / 1000)
frames = []
for pid in ranks:
    mine = {"traceEvents": [e for e in events if e["pid"] == pid], "displayTimeUnit": doc["displayTimeUnit"]}
    json.dump(mine, open("%s/rank-%d.json" % (site, pid), "w"))
    url = "http://127.0.0.1:%s/rank-%d.json" % (port, pid)
    frames.append('<iframe src="index.html#profileURL=%s&title=%s"></iframe>' % (url, urllib.parse.quote(names[pid])))
open(site + "/ranks.html", "w").write(
    "<!doctype html><meta charset=utf-8><style>body{margin:0;height:100vh;display:flex;flex-direction:column;font:14px monospace}"
    "p{margin:0;padding:4px 6px;background:#eee}iframe{flex:1;border:0;border-bottom:2px solid #888;width:100%%}</style>"
    "<p>%s</p>%s" % (html.escape(caption).replace(" | ", "<br>"), "".join(frames)))
print(len(frames))
EOF
)

python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work/site" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break; sleep 0.1; done

timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$work/profile" --hide-scrollbars \
  --window-size=1600,$((70 + 210 * ranks)) --virtual-time-budget=15000 --screenshot="$out" "http://127.0.0.1:$port/ranks.html" >/dev/null 2>&1
[ -s "$out" ] || { echo "timeline-screenshot: no screenshot written" >&2; exit 1; }
echo "wrote $out ($(basename "$trace") in speedscope, one rank a row)"
