// Pipeline stages in whole runs: what parts the stages before the acknowledgement design (#22607's
// shape crash, #27285's chained counts, a dead scheduler, a deadlock between a proxy send and a
// request receive), how each is diagnosed across stages, what #27010 agrees across them, and how
// a PP hang shrinks.
#include <fstream>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "run/scenario.h"
#include "sim/shrink.h"
#include "sim/simulation.h"
#include "tests/run_events.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

RunResult run_at(const Scenario& s, const char* variant) { return simulate(s, options_of(variant)); }

// Where each scheduler is parked: "rank group" for one in a collective or channel.
std::set<std::string> scheduler_waits(const RunResult& r) {
  std::set<std::string> out;
  for (const ActorState& a : r.verdict.actors) {
    if (a.actor != ActorKind::kScheduler) continue;
    out.insert(std::to_string(a.rank) + " " + (a.wait == WaitKind::kCollective ? std::string(collective_op_name(a.op)) + " " + group_name(a.group)
                                                                               : describe_wait(a).substr(0, 4)));
  }
  return out;
}

}  // namespace

TEST_CASE("pipeline: stage skew in L3 contents is #22607's crash until the acknowledgement design agrees the hit") {
  const Scenario s = load_scenario_file("scenarios/pp-stage-l3-skew.json");
  REQUIRE(s.world.ranks == 2);
  REQUIRE(s.world.topology().pp == 2);
  const RunResult before = run_at(s, "2026-08-24");
  REQUIRE(before.verdict.kind == HangKind::kCrash);
  REQUIRE(before.verdict.group == Topology{.tp = 1, .pp = 2}.channel_to_next(GroupKind::kPpProxy, 0));
  REQUIRE(before.verdict.headline.find("received 64 tokens from rank 0") != std::string::npos);
  REQUIRE(before.verdict.headline.find("expected 1088") != std::string::npos);
  // Each stage published what its own store held.
  const auto commits = events_of(before, EventKind::kCommit);
  REQUIRE(commits.size() == 2);
  CHECK(commit_fields(*commits[0]).prefix_tokens + commit_fields(*commits[1]).prefix_tokens == 2048 + 1024);

  const RunResult after = run_at(s, "2026-08-25");
  REQUIRE_FALSE(after.verdict.hang());
  for (const InvariantResult& i : after.invariants) CHECK(i.held);
  for (int rank = 0; rank < 2; ++rank) {
    const auto c = events_of(after, EventKind::kCommit, rank);
    REQUIRE(c.size() == 1);
    CHECK(commit_fields(*c[0]).prefix_tokens == 1024);  // the same published length on every stage
  }
  // The hit and the acks were agreed across the stages, on the groups that span them.
  std::set<GroupKind> across;
  for (const TraceEvent* e : events_of(after, EventKind::kCollectiveEnter)) {
    const auto g = Group::from_code(collective_enter_fields(*e).group);
    REQUIRE(g);
    if (g->kind == GroupKind::kPrefetchPp || g->kind == GroupKind::kSyncPp) across.insert(g->kind);
  }
  CHECK(across == std::set<GroupKind>{GroupKind::kPrefetchPp, GroupKind::kSyncPp});
}

TEST_CASE("pipeline: #27285's chain makes a later stage take PP0's ack count, waiting for its own copy") {
  const Scenario s = load_scenario_file("scenarios/pp-write-ack-skew.json");
  const RunResult before = run_at(s, "2026-06-05");
  REQUIRE(before.verdict.kind == HangKind::kCrash);
  const RunResult after = run_at(s, "2026-06-06");
  REQUIRE_FALSE(after.verdict.hang());
  // B finds A's 16 pages on host on both stages, as PP0 decided.
  for (int rank = 0; rank < 2; ++rank) {
    const auto sched = events_of(after, EventKind::kSchedule, rank);
    REQUIRE(sched.size() == 2);
    CHECK(schedule_fields(*sched[1]).host_hit_tokens == 1024);
  }
  // Stage 1 received every count stage 0 sent, one per check, but the last, in flight as the run ends.
  std::int64_t sent = 0, received = 0;
  for (const TraceEvent* e : events_of(after, EventKind::kCollectiveEnter)) {
    const auto g = Group::from_code(collective_enter_fields(*e).group);
    if (g && g->kind == GroupKind::kPpSync) (e->rank == 0 ? sent : received) += 1;
  }
  CHECK(sent > 0);
  CHECK((received == sent || received == sent - 1));
}

TEST_CASE("pipeline: a stage that reads late is a dead scheduler after #27285 and a cross-stage deadlock before it") {
  const Scenario s = load_scenario_file("scenarios/pp-stage-read-skew.json");
  const RunResult chained = run_at(s, "2026-08-20");
  REQUIRE(chained.verdict.kind == HangKind::kLostWorker);
  REQUIRE(chained.verdict.headline.find("rank 2 scheduler died (IndexError: pop from empty list: ack_load_queue holds 0 of the 1") !=
          std::string::npos);

  const RunResult unchained = run_at(s, "pre-fix");
  REQUIRE(unchained.verdict.kind == HangKind::kDeadlock);
  // Stage 0 waits for stage 1 to take its proxy; stage 1 waits for stage 0's next request list
  // (its rank 3 for rank 2's broadcast of it).
  CHECK(scheduler_waits(unchained) == std::set<std::string>{"0 send pp_proxy[0] pp0->pp1", "1 send pp_proxy[1] pp0->pp1",
                                                             "2 recv pp_requests[0] pp0->pp1", "3 broadcast tp_cpu_group@pp1"});
  // The open channel names the stage that never came.
  REQUIRE(unchained.verdict.has_collective);
  CHECK(unchained.verdict.missing_ranks == std::vector<int>{2});
  // The wait-for graph closes the cycle across the stages: rank 0 waits on the proxy channel for
  // rank 2, which waits on the request channel for rank 0.
  const std::string dot = unchained.wait_for_dot();
  CHECK(dot.find("\"rank 0 scheduler\" -> \"pp_proxy[0] pp0->pp1 seq 0\"") != std::string::npos);
  CHECK(dot.find("\"pp_proxy[0] pp0->pp1 seq 0\" -> \"rank 2 scheduler\"") != std::string::npos);
  CHECK(dot.find("\"rank 2 scheduler\" -> \"pp_requests[0] pp0->pp1 seq 4\"") != std::string::npos);
  CHECK(dot.find("\"pp_requests[0] pp0->pp1 seq 4\" -> \"rank 0 scheduler\"") != std::string::npos);
  CHECK(dot.find("waiting for its send\\nto be received") != std::string::npos);

  const RunResult acked = run_at(s, "2026-08-25");
  REQUIRE_FALSE(acked.verdict.hang());
  CHECK(acked.l3_lost_tokens() == 2048);  // PP0's clock ended it everywhere, with the acks' 0
}

TEST_CASE("pipeline: a PP hang shrinks to one TP rank per stage, and fails the same way") {
  const nlohmann::json scenario = nlohmann::json::parse(std::ifstream("scenarios/pp-stage-read-skew.json"));
  const RunOptions o = options_of("2026-08-20");
  const ShrinkResult r = shrink(scenario, "pp-stage-read-skew.json", o, ShrinkBounds{});
  CHECK(r.signature.kind == HangKind::kLostWorker);
  CHECK(r.scenario["tp"].get<int>() == 1);  // each stage keeps its own ranks
  CHECK(r.scenario["pp"].get<int>() == 2);
  CHECK(r.scenario["requests"][0]["input_tokens"].get<int>() < 2112);
  CHECK_FALSE(r.runs_cut);
  const Scenario back = parse_scenario(r.scenario.dump(), "shrunk.json");
  CHECK(signature_of(simulate(back, o)) == r.signature);
}
