#!/usr/bin/env bash
# Opens one exported timeline in a real Chrome-trace viewer and saves a screenshot of it:
# speedscope (from the npm registry) served on loopback, rendered by headless Chromium (Debian).
#
#   tools/timeline-screenshot.sh [BUILD_DIR] [TRACE] [OUT.png]
#   defaults: build, traces/qwen35-tp4-wait-complete-hang.jsonl, docs/timeline-qwen35-tp4.png
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
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

npm install --prefix "$work/npm" --no-audit --no-fund --silent speedscope >/dev/null
cp -r "$work/npm/node_modules/speedscope/dist/release" "$work/site"
"$build/hcsim" export --chrome "$work/site/trace.json" "$trace" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work/site" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break; sleep 0.1; done

url="http://127.0.0.1:$port/index.html#profileURL=http://127.0.0.1:$port/trace.json&title=$(basename "$trace")"
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$work/profile" --hide-scrollbars \
  --window-size=1600,900 --virtual-time-budget=15000 --screenshot="$out" "$url" >/dev/null 2>&1
[ -s "$out" ] || { echo "timeline-screenshot: no screenshot written" >&2; exit 1; }
echo "wrote $out ($(basename "$trace") in speedscope)"
