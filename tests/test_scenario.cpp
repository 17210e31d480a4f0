// parse_scenario: a small valid scenario parses into the expected fields, and every kind of bad
// input is refused with a ScenarioError naming the source, the JSON pointer and what was expected.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/variant.h"
#include "run/json_node.h"
#include "run/scenario.h"

namespace {

using namespace hcsim;
using nlohmann::json;

const char* const kSource = "tests/inline-scenario.json";

// Two ranks, one request whose sidecar read lags on rank 1, one expectation.
const char* const kValid = R"({
  "name": "tiny-sidecar-lag",
  "description": "TP=2, wait_complete, one request, rank 1's sidecar read lags",
  "seed": 3,
  "tp": 2,
  "policy": {
    "name": "wait_complete",
    "timeout": {"formula": "capped", "base_ms": 2000, "per_ki_token_ms": 100, "max_ms": 30000},
    "page_size": 64,
    "prefetch_threshold_tokens": 256,
    "sidecar": true
  },
  "ranks": {"defaults": {"host_kv_pages": 1024}, "overrides": {"1": {"host_sidecar_slots": 8}}},
  "collective": {"latency_us": 20},
  "l3": [{"prefix": "doc", "kv_pages": 32, "sidecar_at_pages": [32]}],
  "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 2100, "prefix": "doc"}],
  "delays": [{"op": "sidecar_get", "ranks": [1], "requests": ["R"], "fixed_us": 488000}],
  "expect": [
    {"variant": "pre-fix", "verdict": "collective_mismatch"},
    {"variant": "timeout-bounded+sidecar-hit-sync", "policy": "timeout", "verdict": "complete"}
  ]
})";

json valid() { return json::parse(kValid); }

// The message of the ScenarioError that parsing `text` throws; fails the test if none is thrown.
std::string error_of(const std::string& text) {
  try {
    (void)parse_scenario(text, kSource);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  FAIL("parse_scenario accepted the document");
  return {};
}
std::string error_of(const json& doc) { return error_of(doc.dump()); }

// Source, then the pointer, then the message: "tests/inline-scenario.json: /tp: expected ...".
void require_error(const std::string& what, const std::string& pointer, const std::string& expected) {
  INFO(what);
  REQUIRE_THAT(what, Catch::StartsWith(std::string(kSource) + ": " + pointer + ": "));
  REQUIRE_THAT(what, Catch::Contains(expected));
}

}  // namespace

TEST_CASE("scenario: a small valid scenario parses", "[scenario]") {
  const Scenario s = parse_scenario(kValid, kSource);
  REQUIRE(s.path == kSource);
  REQUIRE(s.name == "tiny-sidecar-lag");
  REQUIRE(s.seed == 3);
  REQUIRE(s.world.ranks == 2);
  REQUIRE(s.world.collective.latency_ns == 20'000);
  REQUIRE(s.policy.policy == PrefetchPolicy::kWaitComplete);
  REQUIRE(s.policy.timeout.formula == TimeoutFormula::kCapped);
  REQUIRE(s.policy.timeout.base_ns == 2'000'000'000);
  REQUIRE(s.policy.timeout.max_ns == 30'000'000'000);
  REQUIRE(s.policy.page_size_tokens == 64);
  REQUIRE(s.policy.fixes == FixSet{});  // a run adds its variant's fixes

  REQUIRE(s.policy.ranks.size() == 2);
  REQUIRE(s.policy.ranks[0].host_kv_pages == 1024);
  REQUIRE(s.policy.ranks[1].host_kv_pages == 1024);  // overrides start from the defaults
  REQUIRE(s.policy.ranks[0].host_sidecar_slots == RankResources{}.host_sidecar_slots);
  REQUIRE(s.policy.ranks[1].host_sidecar_slots == 8);

  REQUIRE(s.workload.size() == 1);
  REQUIRE(s.workload[0].id == 0);
  REQUIRE(s.workload[0].input_tokens == 2100);
  REQUIRE(s.workload[0].pages.size() == 2100 / 64);
  REQUIRE(s.workload[0].pages == prefix_page_keys("doc", 32));  // keyed by its prefix, not its name

  REQUIRE(s.l3.size() == 1);
  REQUIRE(s.l3[0].kv_pages == 32);
  REQUIRE(s.l3[0].sidecar_at_pages == std::vector<std::int32_t>{32});

  REQUIRE(s.delays.size() == 1);
  REQUIRE(s.delays[0].op == StorageOp::kSidecarGet);
  REQUIRE(s.delays[0].ranks == std::vector<int>{1});
  REQUIRE(s.delays[0].requests == std::vector<RequestId>{0});
  REQUIRE(s.delays[0].effect == DelayRule::Effect::kFixed);
  REQUIRE(s.delays[0].a_ns == 488'000'000);

  REQUIRE(s.expect.size() == 2);
  REQUIRE(s.expect[0].fixes == *preset_by_name("pre-fix"));
  REQUIRE_FALSE(s.expect[0].policy);
  REQUIRE(s.expect[0].verdict == HangKind::kCollectiveMismatch);
  REQUIRE(s.expect[1].fixes == *parse_variant("timeout-bounded+sidecar-hit-sync", nullptr));
  REQUIRE(s.expect[1].policy == PrefetchPolicy::kTimeout);
  REQUIRE(s.expect[1].verdict == HangKind::kNone);
}

TEST_CASE("scenario: prefix page keys are a hash chain shared by equal prefixes", "[scenario]") {
  const auto a = prefix_page_keys("doc", 8);
  const auto b = prefix_page_keys("doc", 4);
  REQUIRE(a.size() == 8);
  REQUIRE(std::vector<PageKey>(a.begin(), a.begin() + 4) == b);
  REQUIRE(prefix_page_keys("other", 4) != b);
}

TEST_CASE("scenario: an unknown top-level key is refused", "[scenario][errors]") {
  json doc = valid();
  doc["bogus"] = 1;
  require_error(error_of(doc), "/bogus", "unknown key");
}

TEST_CASE("scenario: a value of the wrong type is refused", "[scenario][errors]") {
  json doc = valid();
  doc["tp"] = "2";
  const auto what = error_of(doc);
  require_error(what, "/tp", "expected an integer");
  REQUIRE_THAT(what, Catch::Contains("got \"2\""));
}

TEST_CASE("scenario: an impossible value is refused with the allowed range", "[scenario][errors]") {
  json doc = valid();
  doc["tp"] = 0;
  const auto what = error_of(doc);
  require_error(what, "/tp", "expected an integer in [1, 64]");
  REQUIRE_THAT(what, Catch::Contains("got 0"));
}

TEST_CASE("scenario: a bad policy name lists the choices", "[scenario][errors]") {
  json doc = valid();
  doc["policy"]["name"] = "wait";
  const auto what = error_of(doc);
  require_error(what, "/policy/name", "expected one of best_effort, wait_complete, timeout");
  REQUIRE_THAT(what, Catch::Contains("got \"wait\""));
}

TEST_CASE("scenario: a delay naming an unknown request is refused", "[scenario][errors]") {
  json doc = valid();
  doc["delays"][0]["requests"] = json::array({"Q"});
  require_error(error_of(doc), "/delays/0/requests/0", "no request named \"Q\"");
}

TEST_CASE("scenario: a delay with two effects is refused", "[scenario][errors]") {
  json doc = valid();
  doc["delays"][0]["never"] = true;
  require_error(error_of(doc), "/delays/0", "expected exactly one effect");
  // And with none.
  json none = valid();
  none["delays"][0].erase("fixed_us");
  require_error(error_of(none), "/delays/0", "expected exactly one effect");
}

TEST_CASE("scenario: an expectation with an unknown preset is refused", "[scenario][errors]") {
  json doc = valid();
  doc["expect"][0]["variant"] = "post-fix";
  const auto what = error_of(doc);
  require_error(what, "/expect/0/variant", "unknown preset 'post-fix'");
  REQUIRE_THAT(what, Catch::Contains("expected PRESET[+FIX|~FIX]"));

  json fix = valid();
  fix["expect"][1]["variant"] = "seed-fix+no-such-fix";
  require_error(error_of(fix), "/expect/1/variant", "unknown fix 'no-such-fix'");
}

TEST_CASE("scenario: a rank override keyed outside [0, tp) is refused", "[scenario][errors]") {
  json doc = valid();
  doc["ranks"]["overrides"] = json::parse(R"({"2": {"host_kv_pages": 16}})");
  require_error(error_of(doc), "/ranks/overrides/2", "expected a rank index in [0, 1]");

  json neg = valid();
  neg["ranks"]["overrides"] = json::parse(R"({"-1": {"host_kv_pages": 16}})");
  require_error(error_of(neg), "/ranks/overrides/-1", "expected a rank index in [0, 1]");

  json word = valid();
  word["ranks"]["overrides"] = json::parse(R"({"one": {"host_kv_pages": 16}})");
  require_error(error_of(word), "/ranks/overrides/one", "expected a rank index in [0, 1]");
}

TEST_CASE("scenario: text that is not JSON is refused", "[scenario][errors]") {
  const auto what = error_of(std::string(R"({"name": "x", "tp": )"));
  require_error(what, "/", "not valid JSON");
}

TEST_CASE("scenario: a key repeated in one object is refused, naming the object's pointer and the key", "[scenario][errors]") {
  // The parser would keep the last value silently; the reader refuses the text instead.
  std::string text = kValid;
  text.replace(text.find("\"seed\": 3,"), std::string("\"seed\": 3,").size(), "\"seed\": 3, \"name\": \"other\",");
  require_error(error_of(text), "/", "duplicate key \"name\": each key of an object may appear once");

  text = kValid;
  text.replace(text.find("\"arrival_us\": 0,"), std::string("\"arrival_us\": 0,").size(), "\"arrival_us\": 0, \"arrival_us\": 5,");
  require_error(error_of(text), "/requests/0", "duplicate key \"arrival_us\"");

  text = kValid;  // a pointer past an array of objects, and through a key that needs no escaping
  text.replace(text.find("{\"1\": {\"host_sidecar_slots\": 8}}"), std::string("{\"1\": {\"host_sidecar_slots\": 8}}").size(),
               "{\"1\": {\"host_sidecar_slots\": 8}, \"1\": {\"host_kv_pages\": 8}}");
  require_error(error_of(text), "/ranks/overrides", "duplicate key \"1\"");

  // Equal after unescaping is equal: "\u006eame" is "name".
  text = kValid;
  text.replace(text.find("\"seed\": 3,"), std::string("\"seed\": 3,").size(), "\"seed\": 3, \"\\u006eame\": \"other\",");
  require_error(error_of(text), "/", "duplicate key \"name\"");

  // The same key in two objects is no repeat.
  REQUIRE_NOTHROW(parse_json(R"({"a": {"k": 1}, "b": {"k": 2}, "c": [{"k": 1}, {"k": 2}]})", kSource));
}

TEST_CASE("scenario: nesting deeper than the bound is refused before parsing, with the line and column", "[scenario][errors]") {
  // 100,000 levels would overflow the stack in the JSON library's recursive destructor.
  const auto what = error_of(std::string(100'000, '['));
  require_error(what, "/", "line 1, column 65: arrays and objects nested deeper than 64 levels");
  const auto multi_line = error_of("{\n  \"a\": " + std::string(100'000, '[') + "\n}");
  require_error(multi_line, "/", "line 2, column 71: arrays and objects nested deeper than 64 levels");
  // The bound itself is accepted; brackets inside strings, escaped quotes included, do not count.
  REQUIRE_NOTHROW(parse_json(std::string(kJsonDepthMax, '[') + std::string(kJsonDepthMax, ']'), kSource));
  REQUIRE_THROWS_AS(parse_json(std::string(kJsonDepthMax + 1, '[') + std::string(kJsonDepthMax + 1, ']'), kSource), ScenarioError);
  REQUIRE_NOTHROW(parse_json("[\"\\\"" + std::string(1000, '[') + "\"]", kSource));
}

TEST_CASE("scenario: a page size not dividing 1024 is refused", "[scenario][errors]") {
  json doc = valid();
  doc["policy"]["page_size"] = 48;
  const auto what = error_of(doc);
  require_error(what, "/policy/page_size", "expected a page size dividing 1024");
  REQUIRE_THAT(what, Catch::Contains("got 48"));
}

TEST_CASE("scenario: a library scenario loads at another TP size, or names the rank that size lacks", "[scenario]") {
  const Scenario own = load_scenario_file("scenarios/registration-divergence.json");
  REQUIRE(own.world.ranks == 8);
  const Scenario tp4 = load_scenario_file_at_tp("scenarios/registration-divergence.json", 4);
  REQUIRE(tp4.world.ranks == 4);
  REQUIRE(tp4.policy.ranks.size() == 4);
  REQUIRE(tp4.expect.size() == own.expect.size());
  try {
    (void)load_scenario_file_at_tp("scenarios/registration-divergence.json", 2);
    FAIL("rank 3's override cannot exist at TP 2");
  } catch (const ScenarioError& e) {
    const std::string what = e.what();
    REQUIRE(what.find("scenarios/registration-divergence.json at tp 2") != std::string::npos);
    REQUIRE(what.find("/ranks/overrides/3") != std::string::npos);
  }
}
