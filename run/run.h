// A run of a scenario in either world: its options, its setup (the policy as run, the seed, the L3
// model, the arrivals), its result and the judgement of it. The simulator (sim/simulation.h) and
// the GPU backend (backend/gpu_run.h) both go prepare_run -> spawn_ranks -> the world's run ->
// judge_run, so a verdict means the same in both.
//
//   RunSetup setup = prepare_run(scenario, options);
//   SomeWorld world(scenario.world, *setup.storage, std::move(setup.arrivals), ...);
//   auto ranks = spawn_ranks(world, setup.policy, scenario.workload);
//   result.verdict = world.run();
//   judge_run(scenario, ranks, invariant_events, result);
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/fixes.h"
#include "policy/policy_config.h"
#include "policy/rank.h"
#include "run/request_stream.h"
#include "run/diagnosis.h"
#include "run/wait_for_graph.h"
#include "run/event_log.h"
#include "run/invariants.h"
#include "run/choices.h"
#include "run/recording.h"
#include "run/scenario.h"
#include "run/storage.h"

namespace hcsim {

struct RunOptions {
  FixSet fixes;
  std::optional<PrefetchPolicy> policy;  // unset: the scenario's
  std::optional<std::uint64_t> seed;     // unset: the scenario's
  const Recording* replay = nullptr;     // drive arrivals, aborts and L3 timings from a trace
  EventTap* tap = nullptr;               // sees every event, also those past what the log keeps
  ChoiceSource* choices = nullptr;       // decides same-instant order and explore.late delays (hcsim explore)
  // Events the result's log keeps (its digest and count cover every event); unset: the scenario's
  // world.log_kept_max. A sweep keeps none: it reads the digest and its tap.
  std::optional<std::size_t> events_kept;
};

// Every draw a run's seed made, so a report says what the seed chose (as a fuzzer's log names
// every option its seed picked): the scenario's perturbations and its random delays.
struct SeedDraws {
  std::vector<std::int64_t> device_free_pages;  // by rank: the shift of /perturbations/device_free_pages
  std::vector<TimeNs> arrival_shift_ns;         // by request: the shift of /perturbations/arrival_us
  std::vector<DrawTally> delays;                // by /delays index: uniform and lognormal rules' draws
  std::vector<DrawTally> jitter;                // by /perturbations/jitter index
};

struct RankSummary {
  std::int64_t slot_violations = 0;
};

struct RunResult {
  Verdict verdict;
  EventLog log;
  PolicyConfig policy;  // as run: the scenario's with the options applied
  std::uint64_t seed = 0;
  SeedDraws draws;       // what the seed chose
  std::uint64_t kernel_events = 0;
  std::uint64_t collectives_completed = 0;
  TimeNs end_ns = 0;
  std::vector<RankSummary> ranks;
  WaitedCollectives waited;  // what the wait-for graph needs of the collectives at the end
  // Graphviz of who waits on whom at the end, drawn now (a sweep's runs never ask).
  std::string wait_for_dot(const WaitForGraphOptions& options = {}) const { return wait_for_graph_dot(verdict, waited, options); }
  std::vector<InvariantResult> invariants;
  std::vector<LeakSample> leaks_over_time;  // leaked host slots, sampled whenever the count changed
  std::map<RequestId, HitLoss> l3_losses;   // requests that got less of an agreed L3 hit than agreed
  std::int64_t l3_lost_tokens() const {
    std::int64_t sum = 0;
    for (const auto& [rid, loss] : l3_losses) sum += loss.lost_tokens();
    return sum;
  }
  RequestOwners owners;                     // which ranks ran each request
  std::vector<Arrival> arrivals;            // as this run had them (perturbed or replayed)
  std::vector<Arrival> aborts;
  std::int64_t replayed_calls = 0;          // L3 calls served from a recording
  std::int64_t modelled_calls = 0;          // L3 calls a recording did not have
};

// What every world's run of a scenario starts from: the policy as run, the seed, the L3 model
// with the scenario's contents and delays, and the arrivals and aborts (perturbed or replayed).
struct RunSetup {
  PolicyConfig policy;
  std::uint64_t seed = 0;
  std::unique_ptr<StorageModel> storage;
  std::vector<Arrival> arrivals;
  std::vector<Arrival> aborts;
  SeedDraws draws;  // the perturbations; the storage model tallies the delays' draws as the run goes
};
RunSetup prepare_run(const Scenario& scenario, const RunOptions& options);

// Creates every rank of the scenario and spawns its actors in `world` (SimWorld or ThreadWorld).
// The ranks must outlive the world's actors.
template <typename World>
std::vector<std::unique_ptr<Rank>> spawn_ranks(World& world, const PolicyConfig& policy, const std::vector<RequestSpec>& workload) {
  std::vector<std::unique_ptr<Rank>> ranks;
  for (int r = 0; r < static_cast<int>(policy.ranks.size()); ++r) {
    ranks.push_back(std::make_unique<Rank>(policy, workload, r));
    Rank& rank = *ranks.back();
    Runtime& sched = world.add_actor(r, ActorKind::kScheduler);
    Runtime& prefetch = world.add_actor(r, ActorKind::kPrefetch);
    rank.bind(sched);
    world.spawn(sched, rank.scheduler_loop(sched));
    world.spawn(prefetch, rank.prefetch_thread(prefetch));
    for (int k = 0; k < rank.io_workers(); ++k) {
      Runtime& io = world.add_actor(r, ActorKind::kIo);
      world.spawn(io, rank.io_thread(io));
    }
    Runtime& backup = world.add_actor(r, ActorKind::kBackup);
    world.spawn(backup, rank.backup_thread(backup));
    if (rank.sync_thread()) {
      Runtime& sync = world.add_actor(r, ActorKind::kSync);
      world.spawn(sync, rank.prefetch_sync_thread(sync));
    }
  }
  return ranks;
}

// The end of every world's run: slot counts and the invariants, from `events` (every event of the
// run, folded) and the ranks.
void judge_run(const Scenario& scenario, const std::vector<std::unique_ptr<Rank>>& ranks, const InvariantEvents& events,
               RunResult& result);

// One declared expectation of a scenario, run and judged.
struct ExpectationCheck {
  RunResult result;
  bool met = false;
  std::string expected;  // "complete", "hang", "collective_mismatch", ... and "; violates: ..." if declared
};
// Whether `result`, a run under the expectation's options, meets it.
ExpectationCheck judge_expectation(const Scenario& scenario, const Expectation& expectation, RunResult result);
// The options an expectation runs under: its fixes and policy, the scenario's seed.
RunOptions expectation_options(const Expectation& expectation);

}  // namespace hcsim
