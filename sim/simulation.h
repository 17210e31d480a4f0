// simulate(): one run of a scenario under a fix set and policy, from a seed, in the simulator.
//
//   RunOptions opt{.fixes = *preset_by_name(name), .seed = 7};
//   RunResult r = simulate(load_scenario_file("scenarios/himamba-sidecar-lag.json"), opt);
//   r.verdict.hang(); r.log.digest();
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/fixes.h"
#include "policy/policy_config.h"
#include "sim/diagnosis.h"
#include "sim/event_log.h"
#include "sim/invariants.h"
#include "sim/recording.h"
#include "sim/scenario.h"

namespace hcsim {

struct RunOptions {
  FixSet fixes;
  std::optional<PrefetchPolicy> policy;  // unset: the scenario's
  std::optional<std::uint64_t> seed;     // unset: the scenario's
  const Recording* replay = nullptr;     // drive arrivals, aborts and L3 timings from a trace
};

struct RankSummary {
  std::int64_t slot_violations = 0;
};

struct RunResult {
  Verdict verdict;
  EventLog log;
  PolicyConfig policy;  // as run: the scenario's with the options applied
  std::uint64_t seed = 0;
  std::uint64_t kernel_events = 0;
  std::uint64_t collectives_completed = 0;
  TimeNs end_ns = 0;
  std::vector<RankSummary> ranks;
  std::string wait_for_dot;  // Graphviz of who waits on whom at the end
  std::vector<InvariantResult> invariants;
  std::vector<LeakSample> leaks_over_time;  // leaked host slots, sampled whenever the count changed
  std::vector<Arrival> arrivals;            // as this run had them (perturbed or replayed)
  std::vector<Arrival> aborts;
  std::int64_t replayed_calls = 0;          // L3 calls served from a recording
  std::int64_t modelled_calls = 0;          // L3 calls a recording did not have
};

RunResult simulate(const Scenario& scenario, const RunOptions& options);

// One declared expectation of a scenario, run and judged.
struct ExpectationCheck {
  RunResult result;
  bool met = false;
  std::string expected;  // "complete", "hang", "collective_mismatch", ... and "; violates: ..." if declared
};
ExpectationCheck check_expectation(const Scenario& scenario, const Expectation& expectation);

}  // namespace hcsim
