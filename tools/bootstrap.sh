#!/usr/bin/env bash
# Installs the Debian packages hicache-sim builds with, non-interactively, skipping what is present.
# Usage: tools/bootstrap.sh [--sanitizers] [--fuzz] [--bench]   (as root, or with sudo available)
#   --sanitizers  also clang and its sanitizer runtimes (tools/sanitize.sh)
#   --fuzz        also clang and libFuzzer (tools/fuzz.sh)
#   --bench       also SimPy for Debian's python3, the peer bench/simpy-vs-hcsim.sh compares against
set -euo pipefail

packages=(
  g++ meson ninja-build pkg-config
  libboost-graph-dev libboost-program-options-dev
  nlohmann-json3-dev catch2
  libgloo-dev
  libgoogle-perftools-dev
  parallel
)
for arg in "$@"; do
  case "$arg" in
    --sanitizers | --fuzz) packages+=(clang libclang-rt-dev) ;;
    --bench) packages+=(python3-simpy3) ;;
    *) echo "bootstrap: unknown option '$arg' (expected --sanitizers, --fuzz or --bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
