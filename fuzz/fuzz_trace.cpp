// Fuzzes the trace reader (hcsim run --record's JSON Lines) and what replay and export check
// before running: the embedded scenario, the events against it, and the recording built from them.
#include <sstream>

#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  hcsim::fuzz::set_small_limits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hcsim::fuzz::run_one(data, size, [](const std::string& text) {
    std::istringstream in(text);
    const hcsim::TraceRead trace = hcsim::read_trace(in, "fuzz-trace.jsonl");
    const hcsim::Scenario s = hcsim::parse_scenario(trace.header.scenario_json, "fuzz-trace.jsonl (its scenario)");
    hcsim::check_against(trace, s.world.ranks, s.workload.size(), s.world.bounds.horizon_ns, "fuzz-trace.jsonl");
    (void)hcsim::recording_of(trace);
  });
}
