// compare_worlds (backend/world_comparison.h): how hcsim validate judges a GPU run against the
// simulator's run of the same scenario. Runs built by hand from a few events, so each case holds
// exactly the difference it names; and a real simulated run against itself.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "backend/world_comparison.h"
#include "policy/prefetch_operation.h"
#include "sim/simulation.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

// Two requests, r0 and r1, on two ranks; a policy collective modelled at 50 us.
Scenario two_requests() {
  Scenario s;
  s.name = "hand-built";
  s.world.collective.latency_ns = 50'000;
  for (const char* name : {"r0", "r1"}) {
    RequestSpec r;
    r.id = static_cast<RequestId>(s.workload.size());
    r.name = name;
    s.workload.push_back(r);
  }
  return s;
}

template <typename Fields>
TraceEvent event(TimeNs t, int rank, RequestId request, const Fields& fields) {
  TraceEvent e{.time_ns = t, .rank = static_cast<std::int16_t>(rank), .actor = ActorKind::kScheduler, .kind = Fields::kKind, .request = request};
  set_fields(e, fields);
  return e;
}

// r0 on ranks 0 and 1: registered, terminated, completed and scheduled with 2048 L3 tokens, each
// event `shift_ns` later than the simulator's; r1 skipped on rank 0. Plus events no decision is about.
RunResult run_of(TimeNs shift_ns = 0) {
  RunResult r;
  for (int rank = 0; rank < 2; ++rank) {
    r.log.append(event(1'000'000, rank, 0, ArriveFields{}));
    r.log.append(event(2'000'000 + shift_ns, rank, 0, RegisterFields{}));
    r.log.append(event(2'500'000 + shift_ns, rank, 0, KvBatchDoneFields{.pages_read = 32}));
    r.log.append(event(3'000'000 + shift_ns, rank, 0, TerminateFields{}));
    r.log.append(event(3'000'000 + shift_ns, rank, 0, OpEndFields{.state = static_cast<std::int64_t>(OpEnd::kCompleted)}));
    r.log.append(event(4'000'000 + shift_ns, rank, 0, ScheduleFields{.storage_hit_tokens = 2048}));
  }
  r.log.append(event(5'000'000, 0, 1, RegisterSkipFields{.prefetch_tokens = 2}));
  return r;
}

// `from` with each event passed through `edit`, which may change it, or drop it by returning false.
template <typename Edit>
RunResult edited(const RunResult& from, Edit edit) {
  RunResult r;
  for (TraceEvent e : from.log.events()) {
    if (edit(e)) r.log.append(e);
  }
  return r;
}

// The run without request r1's decision (its skip on rank 0).
RunResult without_r1() {
  return edited(run_of(), [](const TraceEvent& e) { return e.request != 1; });
}

GpuRunResult gpu_of(RunResult run) {
  GpuRunResult g;
  g.run = std::move(run);
  g.device = "host memory";
  g.mean_collective_round_ns = 60'000;
  return g;
}

// A collective mismatch at the scheduler group's sequence `seq`.
Verdict mismatch_at(std::uint64_t seq) {
  Verdict v;
  v.kind = HangKind::kCollectiveMismatch;
  v.has_collective = true;
  v.group = Group::kTp;
  v.seq = seq;
  return v;
}

}  // namespace

TEST_CASE("world comparison: a run's termination decisions, by request and rank, in order") {
  const TerminationDecisions d = termination_decisions(run_of());
  REQUIRE(d.size() == 3);
  const std::vector<std::string> r0{"register", "terminate", "end(completed)", "schedule(L3 2048)"};
  REQUIRE(d.at({0, 0}) == r0);
  REQUIRE(d.at({0, 1}) == r0);
  REQUIRE(d.at({1, 0}) == std::vector<std::string>{"skip(2)"});
  REQUIRE(termination_decisions(RunResult()).empty());
}

TEST_CASE("world comparison: the same decisions and verdict are the same, times apart or not") {
  const Scenario s = two_requests();
  const WorldComparison c = compare_worlds(s, run_of(), gpu_of(run_of(250'000)));
  REQUIRE(c.match == WorldMatch::kSame);
  REQUIRE(world_match_name(c.match) == "same");
  REQUIRE(c.why.empty());
  REQUIRE(c.gpu_verdict == "complete");
  REQUIRE_FALSE(c.lost_pace);
  REQUIRE(c.round_ns == 60'000);
  REQUIRE(c.worst_ns == 250'000);  // every prefetch end and schedule 0.25 ms later
  REQUIRE(compare_worlds(s, run_of(), gpu_of(run_of())).worst_ns == 0);
}

TEST_CASE("world comparison: a decision that differs names the request, the rank and both sequences") {
  const Scenario s = two_requests();
  RunResult gpu = edited(run_of(), [](TraceEvent& e) {
    if (e.kind != EventKind::kSchedule || e.rank != 1) return true;
    ScheduleFields schedule = schedule_fields(e);
    schedule.storage_hit_tokens = 0;  // rank 1 schedules r0 without its L3 hit
    set_fields(e, schedule);
    return true;
  });
  const WorldComparison c = compare_worlds(s, run_of(), gpu_of(std::move(gpu)));
  REQUIRE(c.match == WorldMatch::kDiffer);
  REQUIRE(world_match_name(c.match) == "DIFFER");
  REQUIRE(c.why == "decisions of r0 on rank 1: sim [register terminate end(completed) schedule(L3 2048)], "
                   "gpu [register terminate end(completed) schedule(L3 0)]");
}

TEST_CASE("world comparison: decisions the GPU run lacks are 'none'; decisions only it made are said so") {
  const Scenario s = two_requests();
  const RunResult fewer = without_r1();
  const WorldComparison lacks = compare_worlds(s, run_of(), gpu_of(fewer));
  REQUIRE(lacks.match == WorldMatch::kDiffer);
  REQUIRE(lacks.why == "decisions of r1 on rank 0: sim [skip(2)], gpu [none]");

  const WorldComparison extra = compare_worlds(s, fewer, gpu_of(run_of()));
  REQUIRE(extra.match == WorldMatch::kDiffer);
  REQUIRE(extra.why == "the gpu run made decisions the simulator did not");
}

TEST_CASE("world comparison: another verdict, or a hang at another collective, differs before any decision") {
  const Scenario s = two_requests();
  GpuRunResult hung = gpu_of(RunResult());  // no decisions either: the verdict is said first
  hung.run.verdict = mismatch_at(7);
  const WorldComparison verdict = compare_worlds(s, run_of(), hung);
  REQUIRE(verdict.match == WorldMatch::kDiffer);
  REQUIRE(verdict.gpu_verdict == "HANG collective_mismatch");
  REQUIRE(verdict.why == "verdict sim complete, gpu HANG collective_mismatch");

  RunResult sim = run_of();
  sim.verdict = mismatch_at(6);
  GpuRunResult later = gpu_of(run_of());
  later.run.verdict = mismatch_at(7);
  const WorldComparison collective = compare_worlds(s, sim, later);
  REQUIRE(collective.match == WorldMatch::kDiffer);
  REQUIRE(collective.why == "collective sim tp_cpu_group seq 6, gpu tp_cpu_group seq 7");

  later.run.verdict = mismatch_at(6);
  REQUIRE(compare_worlds(s, sim, later).match == WorldMatch::kSame);
}

TEST_CASE("world comparison: a run that lost the model's pace is unpaced when only its decisions differ") {
  const Scenario s = two_requests();
  GpuRunResult slow = gpu_of(without_r1());
  slow.mean_collective_round_ns = 900'000;
  slow.stats.sleeps_behind_model = 3;
  slow.stats.model_lag_max_ns = 2'300'000;
  const WorldComparison c = compare_worlds(s, run_of(), slow);
  REQUIRE(c.lost_pace);
  REQUIRE(c.match == WorldMatch::kUnpaced);
  REQUIRE(world_match_name(c.match) == "unpaced");
  REQUIRE(c.why == "decisions of r1 on rank 0: sim [skip(2)], gpu [none]; a Gloo round of 900 us (modelled 50 us) left the run up to "
                   "2300 us behind the model's clock");

  SECTION("L3 calls that outlasted the model lose the pace too, and are counted") {
    slow.stats.sleeps_behind_model = 0;
    slow.stats.storage_overruns = 2;
    const WorldComparison io = compare_worlds(s, run_of(), slow);
    REQUIRE(io.lost_pace);
    REQUIRE(io.match == WorldMatch::kUnpaced);
    REQUIRE(io.why.ends_with("behind the model's clock, and 2 L3 call(s) outlasted the model"));
  }
  SECTION("another verdict still differs, with the lost pace said") {
    slow.run.verdict = mismatch_at(7);
    const WorldComparison verdict = compare_worlds(s, run_of(), slow);
    REQUIRE(verdict.match == WorldMatch::kDiffer);
    REQUIRE(verdict.lost_pace);
    REQUIRE(verdict.why.starts_with("verdict sim complete, gpu HANG collective_mismatch; a Gloo round of 900 us"));
  }
  SECTION("nothing differs: the lost pace is not mentioned") {
    slow.run = run_of();
    const WorldComparison same = compare_worlds(s, run_of(), slow);
    REQUIRE(same.lost_pace);
    REQUIRE(same.match == WorldMatch::kSame);
    REQUIRE(same.why.empty());
  }
}

TEST_CASE("world comparison: a simulated run of a library scenario against itself is the same") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  const RunResult sim = simulate(s, options_of("pre-fix"));
  REQUIRE(sim.verdict.hang());
  REQUIRE_FALSE(termination_decisions(sim).empty());
  const WorldComparison c = compare_worlds(s, sim, gpu_of(sim));
  REQUIRE(c.match == WorldMatch::kSame);
  REQUIRE(c.worst_ns == 0);
  REQUIRE(c.gpu_verdict == "HANG collective_mismatch");

  const RunResult fixed = simulate(s, options_of("seed-fix"));
  const WorldComparison differ = compare_worlds(s, sim, gpu_of(fixed));
  REQUIRE(differ.match == WorldMatch::kDiffer);
  REQUIRE(differ.why == "verdict sim HANG collective_mismatch, gpu complete");
}
