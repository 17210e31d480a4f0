#include "sim/simulation.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "policy/rank.h"
#include "run/wait_for_graph.h"
#include "sim/world.h"

namespace hcsim {

RunResult simulate(const Scenario& scenario, const RunOptions& given) {
  // A replayed explored schedule takes its recorded decisions.
  RunOptions options = given;
  std::optional<ScriptedChoices> scripted;
  if (options.replay != nullptr && !options.replay->decisions.empty() && options.choices == nullptr) {
    options.choices = &scripted.emplace(options.replay->decisions);
  }
  RunSetup setup = prepare_run(scenario, options);
  RunResult result;
  result.policy = setup.policy;
  result.seed = setup.seed;
  result.arrivals = setup.arrivals;
  result.aborts = setup.aborts;
  StorageModel& storage = *setup.storage;
  WorldConfig world_config = scenario.world;
  if (options.events_kept) world_config.log_kept_max = *options.events_kept;
  // Ranks outlive the world, whose destructor destroys the actor coroutines that refer to them.
  std::vector<std::unique_ptr<Rank>> ranks;
  SimWorld world(std::move(world_config), storage, std::move(setup.arrivals), scenario.workload.size(), std::move(setup.aborts));
  world.choose_order(options.choices);
  if (options.choices != nullptr) options.choices->observe([&world] { return world.waits_digest(); });
  // Every event reaches the invariants' fold and the caller's tap, also those past what the log keeps.
  InvariantEvents invariant_events;
  world.tap_events(&invariant_events, options.tap);
  ranks = spawn_ranks(world, result.policy, scenario.workload);

  auto leaked_at = [&](TimeNs now) {
    std::int64_t n = 0;
    for (const auto& rank : ranks) n += rank->leaked_slot_count(now);
    return n;
  };
  // Leak status changes only when an actor ran, or a grace period after it: a check with no kernel
  // event since then would count the same leaks (and a long idle trace has millions of checks).
  std::uint64_t events_seen = 0;
  TimeNs last_change_ns = 0;
  world.on_check([&](TimeNs now) {
    const std::uint64_t events = world.kernel().events_processed();
    if (events != events_seen) {
      events_seen = events;
      last_change_ns = now;
    } else if (now - last_change_ns > Rank::kLeakSettleNs + scenario.world.bounds.check_period_ns) {
      return;
    }
    const std::int64_t n = leaked_at(now);
    if (result.leaks_over_time.empty() ? n > 0 : n != result.leaks_over_time.back().leaked_slots) {
      result.leaks_over_time.push_back({now, n});
    }
  });
  result.verdict = world.run();
  result.kernel_events = world.kernel().events_processed();
  result.collectives_completed = world.collectives().completed();
  result.end_ns = world.kernel().now_ns();
  result.waited = WaitedCollectives(result.verdict, world.collectives());
  result.log = world.take_log();
  result.log.tap(nullptr);  // the taps are this run's only
  result.draws = std::move(setup.draws);
  if (options.replay == nullptr) {  // a replay's L3 timings are the recording's, not draws
    result.draws.delays = storage.rule_draws();
    result.draws.jitter = storage.jitter_draws();
  }
  result.replayed_calls = storage.replayed_calls();
  result.modelled_calls = storage.modelled_calls();
  judge_run(scenario, ranks, invariant_events, result);
  return result;
}

ExpectationCheck check_expectation(const Scenario& scenario, const Expectation& expectation) {
  return judge_expectation(scenario, expectation, simulate(scenario, expectation_options(expectation)));
}

}  // namespace hcsim
