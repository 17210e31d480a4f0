// The determinism self-check: every run of the library is the same twice, and a run that is not
// is caught at its first differing event, which is the one a full comparison of both logs finds.
#include <algorithm>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "sim/determinism.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "run/trace_file.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

// Runs `scenario` on the checker's own thread (the first run) and `other` on the caller's (the second).
DeterminismReport check_pair(const Scenario& scenario, const Scenario& other, const RunOptions& options) {
  const auto caller = std::this_thread::get_id();
  return check_determinism([&](EventTap* tap) {
    RunOptions o = options;
    o.tap = tap;
    return simulate(std::this_thread::get_id() == caller ? other : scenario, o);
  });
}

// Where two complete logs part, found the slow way.
std::size_t first_difference(const EventLog& x, const EventLog& y) {
  REQUIRE_FALSE(x.truncated());
  REQUIRE_FALSE(y.truncated());
  return first_departure(x.events(), y.events());
}

}  // namespace

TEST_CASE("every expectation of the library runs the same twice, event for event") {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator("scenarios")) {
    if (entry.path().extension() != ".json") continue;
    const Scenario s = load_scenario_file(entry.path().string());
    for (const Expectation& e : s.expect) {
      const RunOptions base = expectation_options(e);
      const DeterminismReport d = check_determinism([&](EventTap* tap) {
        RunOptions o = base;
        o.tap = tap;
        return simulate(s, o);
      });
      INFO(s.path << " under " << e.variant);
      CHECK(d.same());
      CHECK(d.events_compared > 0);
      CHECK(d.digest == simulate(s, base).log.digest());
      ++checked;
    }
  }
  CHECK(checked >= 80);
}

TEST_CASE("a run that differs is caught at its first differing event, with both versions") {
  // The same scenario with L3 calls a microsecond slower: the runs agree up to the first call.
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag-tp4.json");
  Scenario later = s;
  later.storage.call_latency_ns += 1000;
  const RunOptions o = options_of("seed-fix");
  const RunResult a = simulate(s, o);
  const RunResult b = simulate(later, o);
  const std::size_t expected = first_difference(a.log, b.log);
  REQUIRE(expected > 0);
  REQUIRE(expected < a.log.events().size());

  const DeterminismReport d = check_pair(s, later, o);
  REQUIRE_FALSE(d.same());
  REQUIRE(d.first_difference);
  CHECK(*d.first_difference == expected);
  CHECK(d.events_compared == expected);
  REQUIRE(d.first_run_event);
  REQUIRE(d.second_run_event);
  CHECK(*d.first_run_event == a.log.events()[expected]);
  CHECK(*d.second_run_event == b.log.events()[expected]);
  REQUIRE(d.agreed_before.size() == std::min(expected, kDeterminismContextEvents));
  CHECK(d.agreed_before.back() == a.log.events()[expected - 1]);
}

TEST_CASE("a long run that differs late is caught past many handed-over chunks") {
  // io-thread-dies under timeout-bounded retries for a long time; a later horizon for the second run
  // makes it run on where the first run stops.
  const Scenario s = load_scenario_file("scenarios/io-thread-dies.json");
  Scenario shorter = s;
  shorter.world.bounds.horizon_ns = s.world.bounds.horizon_ns / 2;
  const RunOptions o = options_of("timeout-bounded");
  const RunResult a = simulate(s, o);
  const RunResult b = simulate(shorter, o);
  const std::size_t expected = first_difference(a.log, b.log);
  REQUIRE(expected > 100'000);  // far past what the first run may run ahead

  const DeterminismReport d = check_pair(s, shorter, o);
  REQUIRE(d.first_difference);
  CHECK(*d.first_difference == expected);
  if (expected < b.log.events().size()) {
    REQUIRE(d.second_run_event);
    CHECK(*d.second_run_event == b.log.events()[expected]);
  } else {
    CHECK_FALSE(d.second_run_event);  // the second run ended where the first went on
  }
  REQUIRE(d.first_run_event);
  CHECK(*d.first_run_event == a.log.events()[expected]);
}

TEST_CASE("runs whose events agree but whose results differ are reported as such") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  const auto caller = std::this_thread::get_id();
  const DeterminismReport d = check_determinism([&](EventTap* tap) {
    RunOptions o = options_of("pre-fix");
    o.tap = tap;
    RunResult r = simulate(s, o);
    if (std::this_thread::get_id() == caller) r.verdict.headline += " (altered)";
    return r;
  });
  CHECK_FALSE(d.first_difference);
  CHECK(d.result_difference == "verdict");
  CHECK_FALSE(d.same());
}
