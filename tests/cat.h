// cat(parts...): concatenation through a stream, for tests that build expected text. GCC 12 warns
// falsely (-Wrestrict) on some chains of std::string operator+.
#pragma once

#include <sstream>
#include <string>

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}
