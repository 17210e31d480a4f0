// Fuzzes replay end to end: a trace that passes the checks is replayed in the simulator, twice,
// and the two runs must agree (a difference traps, as a crash would). The event limit bounds each
// replay, whatever horizon or pass time the trace's scenario claims.
#include <sstream>

#include "fuzz/fuzz_target.h"
#include "sim/simulation.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hcsim::fuzz::run_one(data, size, [](const std::string& text) {
    std::istringstream in(text);
    // Mutated events rarely hash right: skip the check so the fuzzer reaches the replay.
    const auto [trace, s] = hcsim::read_checked_trace(in, "fuzz-replay.jsonl", hcsim::HashCheck::kSkip);
    const hcsim::Recording recording = hcsim::recording_of(trace);
    const hcsim::RunOptions options = hcsim::replay_options(trace, recording);
    const hcsim::RunResult first = hcsim::simulate(s, options);
    const hcsim::RunResult second = hcsim::simulate(s, options);
    if (first.log.digest() != second.log.digest() || first.verdict.kind != second.verdict.kind) __builtin_trap();
  });
}
