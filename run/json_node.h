// JsonNode: a JSON value with the place it came from (a file, or "file:line", and a JSON pointer),
// for strict readers (scenarios, sweep grids' workloads, traces): every error says where and what
// was expected, and messages are built only on failure. Texts go through parse_json, which bounds
// the nesting (kJsonDepthMax) before parsing and refuses a key repeated in one object.
//
//   const JsonNode root(doc, "scenarios/x.json", "");
//   root.object({"name", "tp"});                 // unknown keys are refused, by pointer
//   int tp = root.at("tp").integer(1, 64);       // scenarios/x.json: /tp: expected an integer in [1, 64]; got 0
//   parse_json(text, "x.json");                  // x.json: /requests/0: duplicate key "name": each key of an object may appear once
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/assert.h"
#include "policy/runtime.h"
#include "run/limits.h"
#include "run/input_file.h"

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

// The deepest nesting of arrays and objects any reader accepts. hcsim's own files nest at most 6
// levels (a trace header, which holds its scenario); the bound keeps a hostile file from exhausting
// the stack in the JSON library's recursive parts (destruction, dump) and in the readers.
inline constexpr int kJsonDepthMax = 64;

// What is wrong with a JSON text, and where: the JSON pointer of the place ("" for the whole text),
// or the byte offset where a scan stopped. Readers turn it into their own error, which names the
// file (and line).
class JsonTextError : public std::runtime_error {
 public:
  enum class Kind { kSyntax, kTooDeep, kDuplicateKey };
  JsonTextError(Kind kind, std::string pointer, std::optional<std::size_t> offset, const std::string& message)
      : std::runtime_error(message), kind_(kind), pointer_(std::move(pointer)), offset_(offset) {}
  Kind kind() const { return kind_; }
  bool syntax() const { return kind_ == Kind::kSyntax; }  // not JSON at all
  const std::string& pointer() const { return pointer_; }
  const std::optional<std::size_t>& offset() const { return offset_; }

 private:
  Kind kind_;
  std::string pointer_;
  std::optional<std::size_t> offset_;
};

// Byte `offset` of `text` as "line L, column C" (both from 1; columns count bytes).
inline std::string json_text_place(std::string_view text, std::size_t offset) {
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

// The byte offset in `text` of the first '[' or '{' that opens level `depth_max + 1`, if any: a
// linear scan that skips strings (and the escapes in them) and cannot overflow. Malformed text is
// left to the parser.
inline std::optional<std::size_t> json_too_deep_at(std::string_view text, int depth_max) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > depth_max) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

// Builds a JSON value from nlohmann's SAX events (json::sax_parse), as its own DOM builder does,
// but refuses a key repeated in one object, naming the object's JSON pointer.
class StrictJsonBuilder {
 public:
  using json = nlohmann::json;
  explicit StrictJsonBuilder(json& root) : root_(root) {}

  bool null() { return placed(nullptr); }
  bool boolean(bool v) { return placed(v); }
  bool number_integer(json::number_integer_t v) { return placed(v); }
  bool number_unsigned(json::number_unsigned_t v) { return placed(v); }
  bool number_float(json::number_float_t v, const json::string_t& /*text*/) { return placed(v); }
  bool string(json::string_t& v) { return placed(std::move(v)); }
  bool binary(json::binary_t& v) { return placed(json::binary(std::move(v))); }
  bool start_object(std::size_t /*size*/) {
    open_.push_back({place(json::value_t::object), nullptr, nullptr});
    return true;
  }
  bool key(json::string_t& k) {
    Open& o = open_.back();
    const auto [at, inserted] = o.value->get_ref<json::object_t&>().emplace(std::move(k), nullptr);
    if (!inserted) throw JsonTextError(JsonTextError::Kind::kDuplicateKey, pointer(), std::nullopt, "duplicate key \"" + at->first + "\": each key of an object may appear once");
    o.key = &at->first;  // a map's nodes stay put
    o.slot = &at->second;
    return true;
  }
  bool end_object() {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t /*size*/) {
    open_.push_back({place(json::value_t::array), nullptr, nullptr});
    return true;
  }
  bool end_array() {
    open_.pop_back();
    return true;
  }
  template <typename Exception>
  bool parse_error(std::size_t /*position*/, const std::string& /*token*/, const Exception& e) {
    throw e;  // a json::exception: parse_error, or out_of_range for a number past double
  }

 private:
  struct Open {
    json* value;             // an open object or array: the last value placed in its parent
    const std::string* key;  // an object's key whose value comes next
    json* slot;              // and that value
  };

  template <typename V>
  bool placed(V&& v) {
    place(std::forward<V>(v));
    return true;
  }
  // Places a value in the innermost open array or object (or as the root); returns it.
  template <typename V>
  json* place(V&& v) {
    if (open_.empty()) {
      root_ = json(std::forward<V>(v));
      return &root_;
    }
    Open& o = open_.back();
    if (o.value->is_array()) {
      o.value->get_ref<json::array_t&>().emplace_back(std::forward<V>(v));
      return &o.value->back();
    }
    *o.slot = json(std::forward<V>(v));
    return o.slot;
  }
  // The JSON pointer of the innermost open object or array.
  std::string pointer() const {
    std::string p;
    for (std::size_t i = 0; i + 1 < open_.size(); ++i) {
      p.append("/").append(open_[i].value->is_array() ? std::to_string(open_[i].value->size() - 1) : json_pointer_escape(*open_[i].key));
    }
    return p;
  }

  json& root_;
  std::vector<Open> open_;  // bounded by kJsonDepthMax: the text was scanned first
};

// `text` as JSON, or a JsonTextError: refuses nesting deeper than kJsonDepthMax (before the parser
// sees the text) and an object that repeats a key (where the parser would let the last one win).
// Messages (parse_json adds the source and the place):
//
//   arrays and objects nested deeper than 64 levels (hcsim's own files nest at most a few)
//   duplicate key "name": each key of an object may appear once
inline nlohmann::json parse_json_text(std::string_view text) {
  using json = nlohmann::json;
  if (const auto at = json_too_deep_at(text, kJsonDepthMax)) {
    throw JsonTextError(JsonTextError::Kind::kTooDeep, "", *at,
                        "arrays and objects nested deeper than " + std::to_string(kJsonDepthMax) + " levels (hcsim's own files nest at most a few)");
  }
  json root;
  StrictJsonBuilder builder(root);
  try {
    json::sax_parse(text.begin(), text.end(), &builder);
    return root;
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number past double
    throw JsonTextError(JsonTextError::Kind::kSyntax, "", std::nullopt, std::string("not valid JSON: ") + e.what());
  }
}

// `text` as JSON, or a ScenarioError naming `source` (a file, or "file:line"), the place (a JSON
// pointer, or a line and column) and, for text that is not JSON at all, what it should look like.
//
//   big.json: /: line 3, column 9: arrays and objects nested deeper than 64 levels (hcsim's own files nest at most a few)
inline nlohmann::json parse_json(std::string_view text, const std::string& source, std::string_view expected_form = {}) {
  try {
    return parse_json_text(text);
  } catch (const JsonTextError& e) {
    std::string message = e.what();
    if (e.offset()) message = json_text_place(text, *e.offset()) + ": " + message;
    if (e.syntax() && !expected_form.empty()) message.append("; expected ").append(expected_form);
    throw ScenarioError(source, e.pointer(), message);
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
