#include "run/run.h"

#include <cmath>

#include <algorithm>
#include <memory>

#include "policy/assert.h"
#include "policy/prefetch_operation.h"
#include "run/l3_seed.h"
#include "run/random.h"

namespace hcsim {

RunSetup prepare_run(const Scenario& scenario, const RunOptions& options) {
  RunSetup setup;
  setup.policy = scenario.policy;
  setup.policy.apply_fixes(options.fixes);
  if (!hybrid_swa_modelled(setup.policy.family, setup.policy.path)) {
    throw ScenarioError(scenario.path, "/policy/model", std::string(kHybridSwaBeforeUnified));
  }
  if (options.policy) setup.policy.policy = *options.policy;
  setup.seed = options.seed.value_or(scenario.seed);
  setup.policy.zero_copy_progress = scenario.storage.zero_copy;
  setup.policy.page_copy_ns =
      scenario.storage.zero_copy ? 0 : std::llround(static_cast<double>(scenario.storage.kv_page_bytes) / scenario.storage.host_copy_bytes_per_ns);
  const int tp = scenario.world.ranks;
  HCSIM_ASSERT(static_cast<int>(setup.policy.ranks.size()) == tp);

  // The scenario's random perturbations, each from its own stream of this run's seed.
  const Perturbations& p = scenario.perturbations;
  RandomStream skew(setup.seed, "perturb/device_free_pages");
  for (RankResources& r : setup.policy.ranks) {
    const auto pages = skew.uniform_ns(p.device_free_pages_lo, p.device_free_pages_hi);
    setup.draws.device_free_pages.push_back(pages);
    r.device_free_tokens = std::max<std::int64_t>(0, r.device_free_tokens + pages * setup.policy.page_size_tokens);
  }
  StorageConfig storage_config = scenario.storage;
  storage_config.object_pools = std::max<std::size_t>(1, setup.policy.stored_stack().size());
  setup.storage = std::make_unique<StorageModel>(storage_config, tp, scenario.delays, setup.seed, p.jitter);
  StorageModel& storage = *setup.storage;
  // The keys the stores may come to hold: the seeded contents' pages and objects, and the pages
  // the workload may write.
  std::size_t keys = 0;
  for (const L3Contents& c : scenario.l3) keys += static_cast<std::size_t>(c.kv_pages) * (1 + storage_config.object_pools);
  for (const RequestSpec& req : scenario.workload) keys += req.pages.size();
  storage.reserve_keys(keys);
  seed_l3(scenario, [&](const L3Object& o) {
    switch (o.kind) {
      case L3Object::Kind::kKvPage: storage.add_kv_page(o.rank, o.key); break;
      case L3Object::Kind::kStalePage: storage.add_stale_page(o.rank, o.key); break;
      case L3Object::Kind::kObject: storage.add_sidecar(o.rank, o.key); break;
      case L3Object::Kind::kStaleObject: storage.add_stale_sidecar(o.rank, o.key); break;
    }
  });
  storage.seal();
  storage.late_rules(scenario.explore_late, options.choices);

  // A request's abort moves with its arrival: the client's timeline shifts as a whole.
  RandomStream arrival_jitter(setup.seed, "perturb/arrival");
  for (const RequestSpec& req : scenario.workload) {
    const TimeNs shift_ns = arrival_jitter.uniform_ns(p.arrival_lo_ns, p.arrival_hi_ns);
    setup.draws.arrival_shift_ns.push_back(shift_ns);
    setup.arrivals.push_back({req.arrival_ns + shift_ns, req.id});
    if (req.abort_ns >= 0) setup.aborts.push_back({req.abort_ns + shift_ns, req.id});
  }
  if (options.replay) {
    setup.arrivals = options.replay->arrivals;
    setup.aborts = options.replay->aborts;
    setup.draws.arrival_shift_ns.clear();  // the recording's arrivals stand instead
    storage.replay_from(&options.replay->storage);
  }
  return setup;
}

void judge_run(const Scenario& scenario, const std::vector<std::unique_ptr<Rank>>& ranks, const InvariantEvents& events,
               RunResult& result) {
  const Topology topology = scenario.world.topology();
  result.owners = {RequestStream(result.arrivals, {}, topology.dp).replica_of(scenario.workload.size()), topology.replica_ranks()};
  for (const auto& rank : ranks) {
    RankSummary s;
    s.slot_violations = rank->kv_pool().violations() + rank->sidecar_pool().violations();
    result.ranks.push_back(s);
  }
  InvariantInputs inputs;
  inputs.verdict = &result.verdict;
  inputs.events = &events;
  inputs.policy = &result.policy;
  // A pass: its own pause, its collectives, and the largest forward the budget allows.
  const CollectiveCost& cost = scenario.world.collective;
  inputs.pass_slack_ns = result.policy.scheduler_pass_ns + 15 * cost.latency_ns +
                         cost.duration_ns(CollectiveOp::kForward, result.policy.max_prefill_tokens);
  inputs.ranks = scenario.world.ranks;
  inputs.owners = &result.owners;
  inputs.end_ns = result.end_ns;
  for (const auto& rank : ranks) inputs.leaked.push_back(rank->leaked_slots(result.end_ns));
  result.invariants = check_invariants(inputs);
  result.l3_losses = events.hit_losses;
}

RunOptions expectation_options(const Expectation& expectation) {
  RunOptions o;
  o.fixes = expectation.fixes;
  o.policy = expectation.policy;
  return o;
}

ExpectationCheck judge_expectation(const Scenario& scenario, const Expectation& expectation, RunResult result) {
  ExpectationCheck c;
  c.result = std::move(result);
  c.met = expectation.any_hang ? c.result.verdict.hang() : c.result.verdict.kind == expectation.verdict;
  c.expected = expectation.any_hang ? "hang"
               : expectation.verdict == HangKind::kNone ? "complete"
                                                        : std::string(hang_kind_name(expectation.verdict));
  if (expectation.violations) {
    std::vector<std::string> got = violated_names(c.result.invariants);
    std::sort(got.begin(), got.end());
    c.met = c.met && got == *expectation.violations;
    std::string list;
    for (const auto& n : *expectation.violations) list += (list.empty() ? "" : ",") + n;
    c.expected += "; violates: " + (list.empty() ? std::string("none") : list);
  }
  if (expectation.l3_lost_tokens) {
    c.met = c.met && c.result.l3_lost_tokens() == *expectation.l3_lost_tokens;
    c.expected += "; L3 lost " + std::to_string(*expectation.l3_lost_tokens);
  }
  for (const Expectation::Outcome& o : expectation.outcomes) {
    const std::string& name = scenario.workload[static_cast<std::size_t>(o.request)].name;
    const bool timing = o.storage_hit_tokens || o.scheduled_within_ns || o.scheduled_after_ns;
    for (int rank = 0; rank < scenario.world.ranks; ++rank) {
      if (!c.result.owners.owns(rank, o.request)) continue;  // another DP attention replica's rank
      const TraceEvent* arrive = nullptr;
      const TraceEvent* schedule = nullptr;
      const TraceEvent* end = nullptr;
      bool registered = false;
      for (const TraceEvent& e : c.result.log.events()) {
        if (e.request != o.request || e.rank != rank) continue;
        if (e.kind == EventKind::kArrive && !arrive) arrive = &e;
        if (e.kind == EventKind::kSchedule && !schedule) schedule = &e;
        if (e.kind == EventKind::kRegister) registered = true;
        if (e.kind == EventKind::kOpEnd) end = &e;
      }
      const bool scheduled = arrive && schedule;
      const TimeNs wait_ns = scheduled ? schedule->time_ns - arrive->time_ns : 0;
      const std::int64_t storage_hit_tokens = scheduled ? schedule_fields(*schedule).storage_hit_tokens : 0;
      const std::string ended =
          !registered ? "not_registered" : end ? std::string(op_end_name(static_cast<OpEnd>(op_end_fields(*end).state))) : "open";
      bool ok = !timing || scheduled;
      if (scheduled && o.storage_hit_tokens) ok = ok && storage_hit_tokens == *o.storage_hit_tokens;
      if (scheduled && o.scheduled_within_ns) ok = ok && wait_ns <= *o.scheduled_within_ns;
      if (scheduled && o.scheduled_after_ns) ok = ok && wait_ns >= *o.scheduled_after_ns;
      if (o.ended) ok = ok && ended == *o.ended;
      if (!ok) {
        c.met = false;
        c.expected += "; " + name + " on rank " + std::to_string(rank) + " " +
                      (scheduled ? "loaded " + std::to_string(storage_hit_tokens) + " tokens after " + std::to_string(wait_ns / 1'000'000) + " ms"
                                 : std::string("was not scheduled")) +
                      ", prefetch " + ended;
      }
    }
    std::string want;
    if (o.storage_hit_tokens) want += " L3 " + std::to_string(*o.storage_hit_tokens) + " tokens";
    if (o.scheduled_within_ns) want += " within " + std::to_string(*o.scheduled_within_ns / 1'000'000) + " ms";
    if (o.scheduled_after_ns) want += " after " + std::to_string(*o.scheduled_after_ns / 1'000'000) + " ms";
    if (o.ended) want += " prefetch " + *o.ended;
    c.expected += "; " + name + ":" + want;
  }
  return c;
}

}  // namespace hcsim
