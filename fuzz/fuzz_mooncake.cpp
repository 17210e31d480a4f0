// Fuzzes the Mooncake request-trace reader (one JSON object per line with prefix hash ids).
#include <sstream>

#include "fuzz/fuzz_target.h"
#include "run/workload.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hcsim::fuzz::run_one(data, size, [](const std::string& text) {
    std::istringstream in(text);
    (void)hcsim::load_mooncake_trace(in, "fuzz-mooncake.jsonl", /*page_size_tokens=*/16);
  });
}
