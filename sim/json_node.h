// JsonNode: a JSON value with the place it came from (a file, or "file:line", and a JSON pointer),
// for strict readers (scenarios, sweep grids' workloads, traces): every error says where and what
// was expected, and messages are built only on failure.
//
//   const JsonNode root(doc, "scenarios/x.json", "");
//   root.object({"name", "tp"});                 // unknown keys are refused, by pointer
//   int tp = root.at("tp").integer(1, 64);       // scenarios/x.json: /tp: expected an integer in [1, 64]; got 0
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/assert.h"
#include "policy/runtime.h"
#include "sim/limits.h"
#include "sim/scenario.h"

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

// An object key as a JSON pointer token (RFC 6901).
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

// `text` as JSON, or a ScenarioError naming `source` and, if given, what the text should look like.
inline nlohmann::json parse_json(std::string_view text, const std::string& source, std::string_view expected_form = {}) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for a number past double
    std::string message = std::string("not valid JSON: ") + e.what();
    if (!expected_form.empty()) message.append("; expected ").append(expected_form);
    throw ScenarioError(source, "", message);
  }
}

class JsonNode {
 public:
  using json = nlohmann::json;
  // `source` must outlive the node and every node taken from it.
  JsonNode(const json& j, const std::string& source, std::string pointer) : j_(j), source_(source), pointer_(std::move(pointer)) {}

  [[noreturn]] void fail(const std::string& message) const { throw ScenarioError(source_, pointer_, message); }
  [[noreturn]] void expected(const std::string& what) const {
    fail("expected " + what + "; got " + (j_.is_string() ? "\"" + j_.get<std::string>() + "\"" : json_type_name(j_)));
  }

  const json& raw() const { return j_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& source() const { return source_; }

  // Objects: rejects keys outside `allowed`.
  void object(std::initializer_list<const char*> allowed) const {
    if (!j_.is_object()) expected("an object");
    for (const auto& [key, value] : j_.items()) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || key == a;
      if (ok) continue;
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      child(value, key).fail("unknown key (allowed here: " + list + ")");
    }
  }
  bool has(const char* key) const { return j_.contains(key); }
  JsonNode at(const char* key) const {
    if (!j_.contains(key)) fail(std::string("missing required key \"") + key + "\"");
    return child(j_.at(key), key);
  }
  std::optional<JsonNode> find(const char* key) const {
    if (!j_.contains(key)) return std::nullopt;
    return child(j_.at(key), key);
  }
  std::vector<JsonNode> array(std::size_t min_size = 0) const {
    if (!j_.is_array()) expected("an array");
    if (j_.size() < min_size) fail("expected at least " + std::to_string(min_size) + " element(s)");
    std::vector<JsonNode> out;
    for (std::size_t i = 0; i < j_.size(); ++i) out.emplace_back(j_[i], source_, pointer_ + "/" + std::to_string(i));
    return out;
  }
  std::vector<std::pair<std::string, JsonNode>> members() const {
    if (!j_.is_object()) expected("an object");
    std::vector<std::pair<std::string, JsonNode>> out;
    for (const auto& [key, value] : j_.items()) out.emplace_back(key, child(value, key));
    return out;
  }

  std::string str() const {
    if (!j_.is_string()) expected("a string");
    return j_.get<std::string>();
  }
  bool boolean() const {
    if (!j_.is_boolean()) expected("a boolean");
    return j_.get<bool>();
  }
  std::int64_t integer(std::int64_t lo, std::int64_t hi) const {
    HCSIM_ASSERT(lo <= hi);
    const auto range = [&] { return "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"; };
    if (!j_.is_number_integer()) expected(range());
    if (j_.is_number_unsigned() && j_.get<std::uint64_t>() > static_cast<std::uint64_t>(hi)) {
      fail("expected " + range() + "; got " + std::to_string(j_.get<std::uint64_t>()));
    }
    const auto v = j_.get<std::int64_t>();
    if (v < lo || v > hi) fail("expected " + range() + "; got " + std::to_string(v));
    return v;
  }
  double number(double lo, double hi) const {
    const auto text = [](double v) {
      std::ostringstream s;
      s << v;
      return s.str();
    };
    const auto range = [&] { return "a number in [" + text(lo) + ", " + text(hi) + "]"; };
    if (!j_.is_number()) expected(range());
    const auto v = j_.get<double>();
    if (!std::isfinite(v) || v < lo || v > hi) fail("expected " + range() + "; got " + text(v));
    return v;
  }
  // [low, high] with lo <= low <= high <= hi.
  std::pair<std::int32_t, std::int32_t> int_range(std::int32_t lo, std::int32_t hi) const {
    if (!j_.is_array() || j_.size() != 2) expected("[low, high]");
    const auto low = static_cast<std::int32_t>(JsonNode(j_[0], source_, pointer_ + "/0").integer(lo, hi));
    const auto high = static_cast<std::int32_t>(JsonNode(j_[1], source_, pointer_ + "/1").integer(low, hi));
    return {low, high};
  }
  // A duration in `unit_ns` units (1000 for "_us", 1e6 for "_ms"), as integer nanoseconds.
  TimeNs duration(TimeNs unit_ns, double lo, double hi) const {
    return static_cast<TimeNs>(std::llround(number(lo, hi) * static_cast<double>(unit_ns)));
  }
  // `count` `what`s, as this node gives them, against limit `l`: fails naming the limit and its flag.
  void within(Limit l, std::int64_t count, const std::string& what) const {
    if (count > limit_value(l)) fail(std::to_string(count) + " " + what + " are more than the limit allows " + limit_hint(l));
  }
  // An integer count of `what`s in [lo, the limit]; above the limit, the message says how to raise it.
  std::int64_t limited_integer(std::int64_t lo, Limit l, const std::string& what) const {
    if (j_.is_number_integer() && !(j_.is_number_unsigned() && j_.get<std::uint64_t>() > static_cast<std::uint64_t>(limit_max(l)))) {
      const auto v = j_.get<std::int64_t>();
      if (v > limit_value(l)) within(l, v, what);
    }
    return integer(lo, limit_value(l));
  }
  template <typename T>
  T choice(std::optional<T> (*by_name)(std::string_view), const std::string& choices) const {
    if (!j_.is_string()) expected("one of " + choices);
    auto v = by_name(j_.get<std::string>());
    if (!v) expected("one of " + choices);
    return *v;
  }

 private:
  JsonNode child(const json& j, const std::string& key) const { return JsonNode(j, source_, pointer_ + "/" + json_pointer_escape(key)); }

  const json& j_;
  const std::string& source_;
  std::string pointer_;
};

}  // namespace hcsim
