// What every fuzz target shares: the input as text, and small limits (fuzz/small_limits.cpp, linked
// into each target). An input error (the file's own fault) is the expected way to fail; anything
// else, a crash or a sanitizer report, is a bug.
//
//   extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
//     return hcsim::fuzz::run_one(data, size, [](const std::string& text) { parse_scenario(text, "in.json"); });
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "run/limits.h"
#include "run/scenario.h"
#include "run/trace_file.h"

namespace hcsim::fuzz {

template <typename F>
int run_one(const std::uint8_t* data, std::size_t size, F&& body) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    body(text);
  } catch (const ScenarioError&) {
  } catch (const TraceError&) {
  }
  return 0;
}

}  // namespace hcsim::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv);
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
