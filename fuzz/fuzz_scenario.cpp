// Fuzzes the scenario reader: any bytes either parse or fail with a ScenarioError.
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hcsim::fuzz::run_one(data, size, [](const std::string& text) { (void)hcsim::parse_scenario(text, "fuzz-scenario.json"); });
}
