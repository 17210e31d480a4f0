#include "backend/world_comparison.h"

#include <algorithm>
#include <tuple>

#include "policy/assert.h"
#include "policy/prefetch_operation.h"
#include "policy/runtime.h"
#include "run/diagnosis.h"

namespace hcsim {

namespace {

std::string joined(const std::vector<std::string>& decisions) {
  std::string out;
  for (const std::string& d : decisions) out.append(out.empty() ? "" : " ").append(d);
  return out.empty() ? std::string("none") : out;
}

// The first difference of the decisions, as "decisions of REQUEST on rank R: sim [...], gpu [...]".
std::string first_decision_difference(const Scenario& s, const TerminationDecisions& sim, const TerminationDecisions& gpu) {
  for (const auto& [key, decisions] : sim) {
    const auto it = gpu.find(key);
    if (it != gpu.end() && it->second == decisions) continue;
    const auto request = static_cast<std::size_t>(key.first);
    HCSIM_ASSERT(request < s.workload.size());  // a decision is always about one of the scenario's requests
    return std::string("decisions of ")
        .append(s.workload[request].name)
        .append(" on rank ")
        .append(std::to_string(key.second))
        .append(": sim [")
        .append(joined(decisions))
        .append("], gpu [")
        .append(it == gpu.end() ? std::string("none") : joined(it->second))
        .append("]");
  }
  return "the gpu run made decisions the simulator did not";
}

// What differs at the verdict or in the decisions, in that order; empty when nothing does.
std::string first_difference(const Scenario& s, const RunResult& sim, const RunResult& gpu) {
  if (sim.verdict.kind != gpu.verdict.kind) {
    return std::string("verdict sim ").append(verdict_word(sim.verdict)).append(", gpu ").append(verdict_word(gpu.verdict));
  }
  if (sim.verdict.has_collective && (sim.verdict.group != gpu.verdict.group || sim.verdict.seq != gpu.verdict.seq)) {
    return std::string("collective sim ")
        .append(group_name(sim.verdict.group))
        .append(" seq ")
        .append(std::to_string(sim.verdict.seq))
        .append(", gpu ")
        .append(group_name(gpu.verdict.group))
        .append(" seq ")
        .append(std::to_string(gpu.verdict.seq));
  }
  const TerminationDecisions ds = termination_decisions(sim);
  const TerminationDecisions dg = termination_decisions(gpu);
  return ds == dg ? std::string() : first_decision_difference(s, ds, dg);
}

// How far behind the model the real run fell, said after a difference it may explain.
std::string lost_pace_note(const Scenario& s, const GpuRunResult& gpu) {
  std::string note = std::string("; a Gloo round of ")
                         .append(std::to_string(gpu.mean_collective_round_ns / 1'000))
                         .append(" us (modelled ")
                         .append(std::to_string(s.world.collective.latency_ns / 1'000))
                         .append(" us) left the run up to ")
                         .append(std::to_string(gpu.stats.model_lag_max_ns / 1'000))
                         .append(" us behind the model's clock");
  if (gpu.stats.storage_overruns > 0) {
    note.append(", and ").append(std::to_string(gpu.stats.storage_overruns)).append(" L3 call(s) outlasted the model");
  }
  return note;
}

// The first time of each prefetch end and schedule, by (kind, request, rank).
std::map<std::tuple<EventKind, RequestId, int>, TimeNs> first_end_and_schedule_times(const RunResult& r) {
  std::map<std::tuple<EventKind, RequestId, int>, TimeNs> out;
  for (const TraceEvent& e : r.log.events()) {
    if (e.kind == EventKind::kOpEnd || e.kind == EventKind::kSchedule) out.try_emplace({e.kind, e.request, e.rank}, e.time_ns);
  }
  return out;
}

// The largest difference of a prefetch end or schedule time over the requests and ranks the
// simulator made decisions for.
TimeNs worst_time_difference(const RunResult& sim, const RunResult& gpu) {
  const auto ts = first_end_and_schedule_times(sim);
  const auto tg = first_end_and_schedule_times(gpu);
  TimeNs worst_ns = 0;
  for (const auto& [key, decisions] : termination_decisions(sim)) {
    for (EventKind k : {EventKind::kOpEnd, EventKind::kSchedule}) {
      const auto a = ts.find({k, key.first, key.second});
      const auto b = tg.find({k, key.first, key.second});
      if (a != ts.end() && b != tg.end()) worst_ns = std::max(worst_ns, b->second > a->second ? b->second - a->second : a->second - b->second);
    }
  }
  return worst_ns;
}

}  // namespace

TerminationDecisions termination_decisions(const RunResult& r) {
  TerminationDecisions out;
  for (const TraceEvent& e : r.log.events()) {
    std::string d;
    switch (e.kind) {
      case EventKind::kRegister: d = "register"; break;
      case EventKind::kRegisterSkip: d = std::string("skip(").append(std::to_string(register_skip_fields(e).prefetch_tokens)).append(")"); break;
      case EventKind::kRevoke: d = "revoke"; break;
      case EventKind::kTerminate: d = "terminate"; break;
      case EventKind::kOpEnd: d = std::string("end(").append(op_end_name(static_cast<OpEnd>(op_end_fields(e).state))).append(")"); break;
      case EventKind::kSchedule: d = std::string("schedule(L3 ").append(std::to_string(schedule_fields(e).storage_hit_tokens)).append(")"); break;
      default: continue;
    }
    out[{e.request, e.rank}].push_back(std::move(d));
  }
  return out;
}

std::string_view world_match_name(WorldMatch m) {
  switch (m) {
    case WorldMatch::kSame: return "same";
    case WorldMatch::kDiffer: return "DIFFER";
    case WorldMatch::kUnpaced: return "unpaced";
  }
  HCSIM_ASSERT(false);
  return {};
}

WorldComparison compare_worlds(const Scenario& scenario, const RunResult& sim, const GpuRunResult& gpu) {
  WorldComparison c;
  c.gpu_verdict = verdict_word(gpu.run.verdict);
  c.round_ns = gpu.mean_collective_round_ns;
  c.why = first_difference(scenario, sim, gpu.run);
  // Real I/O that outlasted the model moves a transfer's end past the pass the model ends it before.
  c.lost_pace = gpu.stats.sleeps_behind_model > 0 || gpu.stats.storage_overruns > 0;
  c.match = c.why.empty() ? WorldMatch::kSame : WorldMatch::kDiffer;
  if (!c.why.empty() && c.lost_pace) {
    // Past the verdict, the comparison needs the model's pace; a machine whose collectives are too
    // slow for the scenario cannot keep it, and that is not a difference between the worlds.
    if (sim.verdict.kind == gpu.run.verdict.kind) c.match = WorldMatch::kUnpaced;
    c.why += lost_pace_note(scenario, gpu);
  }
  c.worst_ns = worst_time_difference(sim, gpu.run);
  return c;
}

}  // namespace hcsim
