#!/usr/bin/env bash
# The sanitizer jobs, on clang (tools/bootstrap.sh --sanitizers installs it):
#   tools/sanitize.sh asan   AddressSanitizer + LeakSanitizer + UBSan build in build-asan/: every test
#   tools/sanitize.sh tsan   ThreadSanitizer build in build-tsan/: the GPU backend's threaded tests
#                            (actor threads, Gloo groups, watchdog, flight recorder) and an hcsim gpu run
#   tools/sanitize.sh        both
# Any report fails the test it comes from. Meson's test log of each job is build-*/test-output.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- asan tsan

status=0
for job in "$@"; do
  case "$job" in
    asan)
      dir=build-asan native=tools/meson/asan-ubsan.ini targets=() tests=() ;;
    tsan)
      dir=build-tsan native=tools/meson/tsan.ini targets=(tests/test_backend hcsim) tests=(backend gpu_host_seed_fix) ;;
    *)
      echo "sanitize: unknown job '$job' (expected asan or tsan)" >&2
      exit 2 ;;
  esac
  echo "sanitize: $job in $dir"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --native-file "$native" >/dev/null || { echo "sanitize: meson setup of $dir failed"; status=1; continue; }
  fi
  ninja -C "$dir" "${targets[@]}" || { echo "sanitize: the $job build failed"; status=1; continue; }
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 "${tests[@]}" | tee "$dir/test-output.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
exit "$status"
