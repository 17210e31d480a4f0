// How strict JSON readers (scenarios, workloads) name what they found and where: a value's type
// in words, and an object key escaped for a JSON pointer (RFC 6901).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace hcsim {

inline std::string json_type_name(const nlohmann::json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_array()) return "an array";
  if (j.is_object()) return "an object";
  return "null";
}

inline std::string json_pointer_escape(const std::string& key) {
  std::string out;
  for (const char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace hcsim
