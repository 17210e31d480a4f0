// Opening what hcsim reads: regular files only (a FIFO or a device could block or never end), and
// whole-file reads bounded before the memory is taken. A bad input of any reader is a
// ScenarioError naming the file and the place in it, in printable characters only.
//
//   const std::string text = read_bounded_file("scenarios/x.json", 16 << 20, "a scenario is a description, not data");
//   -> ScenarioError "big.json: /: 40 MiB, larger than 16 MiB: a scenario is a description, not data"
#pragma once

#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>

namespace hcsim {

// A message about a damaged input may quote any bytes: control bytes and bytes that are not UTF-8
// become '?', so the terminal shows the message, not the garbage.
inline std::string printable_text(std::string s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = length > 0 && i + length <= s.size();
    for (std::size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (!valid) {
      s[i++] = '?';
    } else {
      if (length == 1 && (c < 0x20 || c == 0x7f)) s[i] = '?';
      i += length;
    }
  }
  return s;
}

class ScenarioError : public std::runtime_error {
 public:
  ScenarioError(const std::string& file, const std::string& pointer, const std::string& message)
      : std::runtime_error(printable_text(file + ": " + (pointer.empty() ? "/" : pointer) + ": " + message)) {}
};

// An open stream on `path`, or a ScenarioError naming it: missing, unreadable, not a regular file.
std::ifstream open_input_file(const std::string& path);

// How messages name "-", standard input.
inline constexpr const char* kStandardInput = "(standard input)";

// The whole file, if at most `bytes_max` long; `why` says why there is a bound. "-" is standard
// input, read once however often it is asked for.
std::string read_bounded_file(const std::string& path, std::int64_t bytes_max, const std::string& why);

}  // namespace hcsim
