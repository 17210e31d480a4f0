// Fuzzes the trace reader (hcsim run --record's JSON Lines) and what replay and export check
// before running: the embedded scenario, the events against it, and the recording built from them.
#include <sstream>

#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hcsim::fuzz::run_one(data, size, [](const std::string& text) {
    std::istringstream in(text);
    (void)hcsim::recording_of(hcsim::read_checked_trace(in, "fuzz-trace.jsonl").trace);
  });
}
