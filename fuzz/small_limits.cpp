// Every fuzz target's start: limits small enough that one input costs milliseconds and tens of MiB,
// so the fuzzer explores instead of waiting (fuzz/fuzz_target.h).
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (const char* limit : {"pages=1048576", "requests=4096", "ranks=16", "events=200000"}) {
    if (!hcsim::set_limit(limit).empty()) __builtin_trap();
  }
  return 0;
}
