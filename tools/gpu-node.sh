#!/usr/bin/env bash
# Builds hcsim with the CUDA backend here and packs it, with the shared libraries a bare GPU node
# lacks (Gloo, Boost, hiredis, ibverbs), into gpu-pack/ (ignored by git), which can be copied to the node.
# NCCL (200 MB) is the node's own (Debian/Ubuntu libnccl2, as GPU nodes have it) unless --with-nccl.
#
#   tools/gpu-node.sh pack [--with-nccl]    # here: build-gpu/ and gpu-pack/
#   gpu-pack/run hcsim gpu scenarios/himamba-sidecar-lag.json --preset pre-fix    # on the node
#   gpu-pack/multi-gpu-check                # on a node of several GPUs: NCCL, every TP size it allows
#
# gpu-pack/run sets LD_LIBRARY_PATH to the packed libraries and keeps NVLink multicast off.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  pack)
    with_nccl=no
    case "${2:-}" in
      --with-nccl) with_nccl=yes ;;
      "") ;;
      *) echo "usage: tools/gpu-node.sh pack [--with-nccl]" >&2; exit 2 ;;
    esac
    export PATH="$PATH:/usr/local/cuda/bin"
    if [ ! -d build-gpu ]; then meson setup build-gpu -Dcuda=enabled -Dwerror=true >/dev/null; fi
    ninja -C build-gpu hcsim >/dev/null
    rm -rf gpu-pack && mkdir -p gpu-pack/lib
    cp build-gpu/hcsim gpu-pack/
    # Every library the binary needs except the C runtime and the driver, which the node has.
    ldd build-gpu/hcsim | awk '/=> \// {print $3}' | while read -r lib; do
      case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libcuda.so*|libgcc_s.so*|libstdc++.so*) ;;
        libnccl.so*) if [ "$with_nccl" = yes ]; then cp -L "$lib" gpu-pack/lib/; fi ;;
        *) cp -L "$lib" gpu-pack/lib/ ;;
      esac
    done
    cat > gpu-pack/run <<'RUN'
#!/usr/bin/env bash
# Runs a command with the packed hcsim first on PATH and its libraries found.
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -e "$here/lib/libnccl.so.2" ] && ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libnccl\.so\.2 '; then
  echo "gpu-pack: this node has no NCCL: install libnccl2, or pack with 'tools/gpu-node.sh pack --with-nccl'" >&2
  exit 2
fi
export PATH="$here:$PATH" LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" NCCL_NVLS_ENABLE=0
exec "$@"
RUN
    chmod +x gpu-pack/run
    cp tools/multi-gpu-check.sh gpu-pack/multi-gpu-check
    du -sh gpu-pack | awk '{print "gpu-pack: " $1}'
    ;;
  *)
    echo "usage: tools/gpu-node.sh pack [--with-nccl]" >&2
    exit 2
    ;;
esac
