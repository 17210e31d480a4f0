// Exploration and shrinking: explore finds the seed hang from one late read where the default
// schedule completes, certifies the fixed variants within its bound, searches the same way every
// time, and writes a counterexample that replays its decisions; the same-instant order decision
// really reorders; shrink makes the reconstructed CI trace small and keeps its failure.
#include <catch2/catch.hpp>

#include <coroutine>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/fixes.h"
#include "sim/explore.h"
#include "sim/kernel.h"
#include "run/scenario.h"
#include "sim/shrink.h"
#include "sim/simulation.h"
#include "run/trace_file.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

bool is_mismatch(const RunResult& r) { return r.verdict.kind == HangKind::kCollectiveMismatch; }

// A coroutine that appends its id to `order` when resumed once.
struct Note {
  struct promise_type {
    Note get_return_object() { return Note{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { throw; }
  };
  std::coroutine_handle<promise_type> h;
  explicit Note(std::coroutine_handle<promise_type> handle) : h(handle) {}
  Note(Note&& other) noexcept : h(std::exchange(other.h, {})) {}
  Note& operator=(Note&&) = delete;
  ~Note() {
    if (h) h.destroy();
  }
};
Note note(std::vector<int>& order, int id) {
  order.push_back(id);
  co_return;
}

struct Always final : ChoiceSource {
  int pick;
  std::vector<int> alternatives_seen;
  explicit Always(int p) : pick(p) {}
  int choose(ChoiceKind, int, int alternatives, std::int64_t) override {
    alternatives_seen.push_back(alternatives);
    return std::min(pick, alternatives - 1);
  }
};

}  // namespace

TEST_CASE("kernel: with a choice source, one rank's same-instant events run in the order it picks; other ranks keep theirs") {
  std::vector<int> order;
  Note a = note(order, 1), b = note(order, 2), c = note(order, 3), other = note(order, 9);
  Kernel k;
  Always last(2);
  k.choose_order(&last);
  k.schedule_at(10, a.h, 0);
  k.schedule_at(10, other.h, 1);
  k.schedule_at(10, b.h, 0);
  k.schedule_at(10, c.h, 0);
  REQUIRE(k.run(100) == Kernel::RunEnd::kQueueEmpty);
  // Rank 0 is first by sequence: its third event runs first, then rank 0's remaining two (one
  // decision between them), then rank 1's, which never shares a decision with rank 0's.
  CHECK(order == std::vector<int>{3, 2, 1, 9});
  CHECK(last.alternatives_seen == std::vector<int>{3, 2});

  std::vector<int> plain;
  Note p = note(plain, 1), q = note(plain, 2);
  Kernel k2;  // no source: as scheduled
  k2.schedule_at(10, p.h, 0);
  k2.schedule_at(10, q.h, 0);
  k2.run(100);
  CHECK(plain == std::vector<int>{1, 2});
}

TEST_CASE("explore finds the seed hang from one late read that the default schedule does not have") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-tick.json");
  const RunOptions pre_fix = options_of("pre-fix");
  REQUIRE_FALSE(simulate(s, pre_fix).verdict.hang());  // on time, every request completes
  const ExploreResult r = explore(s, pre_fix, ExploreBounds{}, is_mismatch);
  REQUIRE(r.counterexample);
  const Counterexample& c = *r.counterexample;
  CHECK(c.deviations == 1);
  CHECK(c.result.verdict.kind == HangKind::kCollectiveMismatch);
  int late = 0;
  for (const Decision& d : c.decisions) late += d.kind == ChoiceKind::kLate && d.taken == 1 ? 1 : 0;
  CHECK(late == 1);

  // The counterexample replays: its decisions from the recording, under the same code.
  Recording rec;
  rec.decisions = c.decisions;
  rec.arrivals = c.result.arrivals;
  rec.aborts = c.result.aborts;
  RunOptions replay = pre_fix;
  replay.replay = &rec;
  const RunResult again = simulate(s, replay);
  CHECK(again.log.digest() == c.result.log.digest());

  // And the same search gives the same answer.
  const ExploreResult twice = explore(s, pre_fix, ExploreBounds{}, is_mismatch);
  REQUIRE(twice.counterexample);
  CHECK(twice.schedules == r.schedules);
  CHECK(twice.counterexample->result.log.digest() == c.result.log.digest());
}

TEST_CASE("explore certifies seed-fix and timeout-bounded: no hang, no broken invariant, within every deviation") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-tick.json");
  for (const char* variant : {"seed-fix", "timeout-bounded"}) {
    ExploreBounds bounds;
    bounds.deviations_max = 16;  // more than the scenario has decision points: the whole space
    const ExploreResult r = explore(s, options_of(variant), bounds);
    INFO(variant);
    CHECK_FALSE(r.counterexample);
    CHECK_FALSE(r.schedules_cut);
    CHECK(r.exhausted);
    CHECK(r.schedules > 100);
    CHECK(r.states > r.schedules / 2);
    CHECK(r.pruned > 0);
  }
  // A bound that is too small says so instead of certifying.
  ExploreBounds tiny;
  tiny.schedules_max = 5;
  const ExploreResult cut = explore(s, options_of("seed-fix"), tiny);
  CHECK(cut.schedules_cut);
  CHECK(cut.schedules == 5);
}

TEST_CASE("a counterexample trace carries its decisions and replays from the file") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-tick.json");
  const ExploreResult r = explore(s, options_of("pre-fix"), ExploreBounds{}, is_mismatch);
  REQUIRE(r.counterexample);
  std::ifstream in("scenarios/himamba-sidecar-tick.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TraceHeader h = trace_header_of(text, s, r.counterexample->result, "pre-fix");
  h.decisions = r.counterexample->decisions;
  std::stringstream file;
  write_trace(file, h, r.counterexample->result.log);
  const TraceRead t = read_trace(file, "explored.jsonl");
  REQUIRE(t.header.decisions.size() == h.decisions.size());
  const Recording rec = recording_of(t);
  const RunResult replayed = simulate(s, replay_options(t, rec));
  CHECK(replayed.log.digest() == t.header.log_hash);
}

TEST_CASE("shrink makes the reconstructed Qwen3.5 CI trace small, and it fails the same way") {
  const TraceRead trace = read_trace("traces/qwen35-tp4-wait-complete-hang.jsonl");
  const nlohmann::json scenario = nlohmann::json::parse(trace.header.scenario_json);
  RunOptions o = options_of(trace.header.variant.c_str());
  o.policy = policy_by_name(trace.header.policy);
  const ShrinkResult r = shrink(scenario, "qwen35 (its scenario)", o, ShrinkBounds{});
  CHECK(r.signature.kind == HangKind::kCollectiveMismatch);
  CHECK(r.signature.group == Group::kTp);
  CHECK(describe(r.signature) == "collective_mismatch at tp_cpu_group (forward)");
  CHECK(r.scenario["requests"].size() <= 2);
  CHECK(r.scenario["tp"].get<int>() < scenario["tp"].get<int>());
  CHECK(r.scenario["l3"][0]["kv_pages"].get<int>() < scenario["l3"][0]["kv_pages"].get<int>());
  CHECK_FALSE(r.runs_cut);
  // Read back, it fails the same way.
  nlohmann::json written = r.scenario;
  const Scenario back = parse_scenario(written.dump(), "shrunk.json");
  CHECK(signature_of(simulate(back, o)) == r.signature);
  // A scenario that completes has nothing to shrink.
  CHECK_THROWS_AS(shrink(scenario, "qwen35", options_of("seed-fix"), ShrinkBounds{}), ScenarioError);
}

TEST_CASE("shrink narrows the random choices a hang needs toward their low end") {
  // The seed hang driven by a random lag: rank 1's Mamba read draws up to 600 ms late.
  nlohmann::json s = nlohmann::json::parse(std::ifstream("scenarios/himamba-sidecar-lag.json"));
  s["delays"] = nlohmann::json::array();
  s["perturbations"]["jitter"].push_back({{"op", "sidecar_get"}, {"ranks", {1}}, {"uniform_us", {0, 600000}}});
  const ShrinkResult r = shrink(s, "random-lag.json", options_of("pre-fix"), ShrinkBounds{});
  REQUIRE(r.signature.kind == HangKind::kCollectiveMismatch);
  // The other jitter rules go; the lag's range shrinks by orders of magnitude but stays: without it, no hang.
  REQUIRE(r.scenario["perturbations"]["jitter"].size() == 1);
  const auto high_us = r.scenario["perturbations"]["jitter"][0]["uniform_us"][1].get<double>();
  CHECK(high_us < 6000);
  CHECK(high_us > 0);
  nlohmann::json without = r.scenario;
  without.erase("perturbations");
  CHECK_FALSE(simulate(parse_scenario(without.dump(), "no-lag.json"), options_of("pre-fix")).verdict.hang());
}
