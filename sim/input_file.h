// Opening what hcsim reads: regular files only (a FIFO or a device could block or never end), and
// whole-file reads bounded before the memory is taken.
//
//   const std::string text = read_bounded_file("scenarios/x.json", 16 << 20, "a scenario is a description, not data");
//   -> ScenarioError "big.json: /: 40 MiB, larger than 16 MiB: a scenario is a description, not data"
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace hcsim {

// An open stream on `path`, or a ScenarioError naming it: missing, unreadable, not a regular file.
std::ifstream open_input_file(const std::string& path);

// How messages name "-", standard input.
inline constexpr const char* kStandardInput = "(standard input)";

// The whole file, if at most `bytes_max` long; `why` says why there is a bound. "-" is standard
// input, read once however often it is asked for.
std::string read_bounded_file(const std::string& path, std::int64_t bytes_max, const std::string& why);

}  // namespace hcsim
