// read_bounded_line(): one line of a text file, never more than a bound in memory, so a file of
// garbage without a newline is refused after `max_bytes`, not read whole.
//
//   std::string line;
//   while (read_bounded_line(in, line, 4 << 20) == LineRead::kLine) { ... }
#pragma once

#include <cstddef>
#include <istream>
#include <string>

namespace hcsim {

enum class LineRead {
  kLine,              // a whole line, its '\n' dropped
  kLastUnterminated,  // the file's last bytes, with no '\n' after them (a cut-off write)
  kEnd,               // nothing more
  kTooLong,           // more than max_bytes before a '\n'; `line` holds the first max_bytes
};

inline LineRead read_bounded_line(std::istream& in, std::string& line, std::size_t max_bytes) {
  line.clear();
  std::streambuf* buf = in.rdbuf();
  for (;;) {  // bounded: returns by max_bytes + 1 characters
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) return line.empty() ? LineRead::kEnd : LineRead::kLastUnterminated;
    if (c == '\n') return LineRead::kLine;
    if (line.size() == max_bytes) return LineRead::kTooLong;
    line.push_back(static_cast<char>(c));
  }
}

}  // namespace hcsim
