// Text inside XML: SVG figures and Graphviz's HTML-like labels.
//
//   xml_escaped("a<b & \"c\"") -> "a&lt;b &amp; &quot;c&quot;"
#pragma once

#include <string>
#include <string_view>

namespace hcsim {

inline std::string xml_escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace hcsim
