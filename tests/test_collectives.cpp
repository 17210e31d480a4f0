// CollectiveMatcher: reductions, broadcast, per-group sequencing, mismatches and stalled partials,
// driven by a Kernel and small coroutines that enter hand-built WorldCalls.
#include <catch2/catch.hpp>

#include <coroutine>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "policy/runtime.h"
#include "policy/task.h"
#include "sim/collectives.h"
#include "run/diagnosis.h"
#include "run/hang_detector.h"
#include "sim/kernel.h"
#include "tests/matcher_env.h"

namespace {

using namespace hcsim;

constexpr TimeNs kLatency = kMatcherLatencyNs;
using Env = MatcherEnv;
WorldCall collective(Group g, CollectiveOp op, std::vector<std::int64_t>& payload) { return collective_call(g, op, payload); }

// What the world does for an actor's collective: hand it and the actor's handle to the matcher.
struct Enter {
  Env& env;
  int rank;
  WorldCall& call;
  std::uint64_t& seq;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { seq = env.matcher.enter(env.kernel, rank, call, h); }
  void await_resume() const noexcept {}
};

struct Resumed {
  TimeNs at_ns;
  int rank;
  std::uint64_t seq;
  bool operator==(const Resumed&) const = default;
};

// Enters each call in turn; records when it was resumed and with which sequence number.
Task<> member(Env& env, int rank, std::vector<WorldCall*> calls, std::vector<Resumed>& log) {
  for (WorldCall* c : calls) {
    std::uint64_t seq = 0;
    co_await Enter{env, rank, *c, seq};
    log.push_back({env.kernel.now_ns(), rank, seq});
  }
}

// Keeps the member tasks alive for the whole test (the world owns them in real runs).
struct Members {
  std::vector<Task<>> tasks;
  void start(Env& env, TimeNs at, Task<> t) {
    tasks.push_back(std::move(t));
    env.kernel.schedule_at(at, tasks.back().handle());
  }
};

}  // namespace

TEST_CASE("collectives: 2-rank all_reduce MIN and MAX reduce element-wise and resume at now + latency",
          "[collectives]") {
  const auto op = GENERATE(CollectiveOp::kAllReduceMin, CollectiveOp::kAllReduceMax);
  Env env(2);
  std::vector<std::int64_t> p0{5, 1, 7, -3};
  std::vector<std::int64_t> p1{3, 4, 7, -8};
  WorldCall c0 = collective(Group::kTp, op, p0);
  WorldCall c1 = collective(Group::kTp, op, p1);
  std::vector<Resumed> log;
  Members m;
  m.start(env, 100, member(env, 0, {&c0}, log));
  m.start(env, 250, member(env, 1, {&c1}, log));  // the last member arrives at 250

  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  const std::vector<std::int64_t> expected =
      op == CollectiveOp::kAllReduceMin ? std::vector<std::int64_t>{3, 1, 7, -8} : std::vector<std::int64_t>{5, 4, 7, -3};
  REQUIRE(p0 == expected);
  REQUIRE(p1 == expected);
  // Both resumed at the last arrival plus the latency, in rank order.
  REQUIRE(log == std::vector<Resumed>{{250 + kLatency, 0, 0}, {250 + kLatency, 1, 0}});
  REQUIRE(env.matcher.completed() == 1);
  REQUIRE(env.matcher.open_count(Group::kTp) == 0);
  REQUIRE_FALSE(env.matcher.mismatch());
  for (const auto& t : m.tasks) REQUIRE(t.done());
}

TEST_CASE("collectives: broadcast copies rank 0's payload to every other rank", "[collectives]") {
  Env env(3);
  std::vector<std::int64_t> p0{11, 22, 33};
  std::vector<std::int64_t> p1{0, 0, 0};
  std::vector<std::int64_t> p2{-1, -2, -3};
  WorldCall c0 = collective(Group::kPrefetchTp, CollectiveOp::kBroadcast, p0);
  WorldCall c1 = collective(Group::kPrefetchTp, CollectiveOp::kBroadcast, p1);
  WorldCall c2 = collective(Group::kPrefetchTp, CollectiveOp::kBroadcast, p2);
  std::vector<Resumed> log;
  Members m;
  // Rank 0 is the root even though it is not the first to arrive.
  m.start(env, 10, member(env, 2, {&c2}, log));
  m.start(env, 20, member(env, 1, {&c1}, log));
  m.start(env, 30, member(env, 0, {&c0}, log));

  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  const std::vector<std::int64_t> expected{11, 22, 33};
  REQUIRE(p0 == expected);
  REQUIRE(p1 == expected);
  REQUIRE(p2 == expected);
  REQUIRE(log == std::vector<Resumed>{{30 + kLatency, 0, 0}, {30 + kLatency, 1, 0}, {30 + kLatency, 2, 0}});
}

TEST_CASE("collectives: a matched forward costs latency + base + per-token compute", "[collectives]") {
  Env env(2);
  std::vector<std::int64_t> p0{2100};
  std::vector<std::int64_t> p1{2100};
  WorldCall c0 = collective(Group::kTp, CollectiveOp::kForward, p0);
  WorldCall c1 = collective(Group::kTp, CollectiveOp::kForward, p1);
  REQUIRE(collective_size(c0) == 2100);  // a forward's size is its token count
  std::vector<Resumed> log;
  Members m;
  m.start(env, 0, member(env, 0, {&c0}, log));
  m.start(env, 0, member(env, 1, {&c1}, log));
  REQUIRE(env.kernel.run(1'000'000'000) == Kernel::RunEnd::kQueueEmpty);
  const TimeNs done = kLatency + 1'000'000 + 200 * 2100;
  REQUIRE(log == std::vector<Resumed>{{done, 0, 0}, {done, 1, 0}});
  REQUIRE(p0 == std::vector<std::int64_t>{2100});  // a forward carries no reduction
}

TEST_CASE("collectives: sequence numbers advance per rank per group; groups are independent", "[collectives]") {
  Env env(2);
  // Scheduler group: two all-reduces per rank. Prefetch group: one broadcast per rank, entered by a
  // second actor of each rank while its scheduler is still inside a scheduler-group collective.
  std::vector<std::int64_t> s0a{1}, s0b{10}, s1a{2}, s1b{20}, f0{7}, f1{0};
  WorldCall cs0a = collective(Group::kTp, CollectiveOp::kAllReduceMax, s0a);
  WorldCall cs0b = collective(Group::kTp, CollectiveOp::kAllReduceMin, s0b);
  WorldCall cs1a = collective(Group::kTp, CollectiveOp::kAllReduceMax, s1a);
  WorldCall cs1b = collective(Group::kTp, CollectiveOp::kAllReduceMin, s1b);
  WorldCall cf0 = collective(Group::kPrefetchTp, CollectiveOp::kBroadcast, f0);
  WorldCall cf1 = collective(Group::kPrefetchTp, CollectiveOp::kBroadcast, f1);
  std::vector<Resumed> sched_log, prefetch_log;
  Members m;
  m.start(env, 0, member(env, 0, {&cs0a, &cs0b}, sched_log));
  m.start(env, 5, member(env, 0, {&cf0}, prefetch_log));
  m.start(env, 6, member(env, 1, {&cf1}, prefetch_log));
  m.start(env, 50'000, member(env, 1, {&cs1a, &cs1b}, sched_log));

  // Before rank 1's scheduler arrives: the prefetch broadcast completed on its own.
  REQUIRE(env.kernel.run(40'000) == Kernel::RunEnd::kReachedTime);
  REQUIRE(prefetch_log == std::vector<Resumed>{{6 + kLatency, 0, 0}, {6 + kLatency, 1, 0}});
  REQUIRE(f1 == std::vector<std::int64_t>{7});
  REQUIRE(sched_log.empty());
  REQUIRE(env.matcher.open_count(Group::kTp) == 1);
  REQUIRE(env.matcher.open_count(Group::kPrefetchTp) == 0);
  REQUIRE(env.matcher.next_seq(Group::kTp, 0) == 1);
  REQUIRE(env.matcher.next_seq(Group::kTp, 1) == 0);
  REQUIRE(env.matcher.next_seq(Group::kPrefetchTp, 0) == 1);
  REQUIRE(env.matcher.next_seq(Group::kPrefetchTp, 1) == 1);

  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  const TimeNs first = 50'000 + kLatency;
  const TimeNs second = first + kLatency;
  REQUIRE(sched_log == std::vector<Resumed>{{first, 0, 0}, {first, 1, 0}, {second, 0, 1}, {second, 1, 1}});
  REQUIRE(s0a == std::vector<std::int64_t>{2});
  REQUIRE(s1b == std::vector<std::int64_t>{10});
  REQUIRE(env.matcher.next_seq(Group::kTp, 0) == 2);
  REQUIRE(env.matcher.next_seq(Group::kTp, 1) == 2);
  REQUIRE(env.matcher.next_seq(Group::kPrefetchTp, 0) == 1);  // untouched by scheduler traffic
  REQUIRE(env.matcher.next_seq(Group::kPrefetchTp, 1) == 1);
  REQUIRE(env.matcher.completed() == 3);
  REQUIRE_FALSE(env.matcher.mismatch());
}

TEST_CASE("collectives: all_reduce(MAX) against forward at one sequence is a mismatch that stops the kernel",
          "[collectives]") {
  Env env(2);
  std::vector<std::int64_t> vote{1, 0};
  std::vector<std::int64_t> tokens{2100};
  WorldCall c0 = collective(Group::kTp, CollectiveOp::kAllReduceMax, vote);
  WorldCall c1 = collective(Group::kTp, CollectiveOp::kForward, tokens);
  // Something that would run after the mismatch if the kernel kept going.
  std::vector<Resumed> log, later;
  std::vector<std::int64_t> q0{0}, q1{0};
  WorldCall after0 = collective(Group::kPrefetchTp, CollectiveOp::kAllReduceMin, q0);
  WorldCall after1 = collective(Group::kPrefetchTp, CollectiveOp::kAllReduceMin, q1);
  Members m;
  m.start(env, 1'000, member(env, 0, {&c0}, log));
  m.start(env, 2'000, member(env, 1, {&c1}, log));
  m.start(env, 3'000, member(env, 0, {&after0}, later));
  m.start(env, 3'000, member(env, 1, {&after1}, later));

  // The kernel stops right after the conflicting entry.
  REQUIRE(env.kernel.run(1'000'000'000) == Kernel::RunEnd::kStopped);
  REQUIRE(env.kernel.now_ns() == 2'000);
  REQUIRE(env.kernel.pending() == 2);  // the t=3000 members never started
  REQUIRE(log.empty());
  REQUIRE(later.empty());

  const auto& point = env.matcher.mismatch();
  REQUIRE(point);
  REQUIRE(point->group == Group::kTp);
  REQUIRE(point->seq == 0);
  REQUIRE(point->at_ns == 2'000);

  const Verdict v = mismatch_verdict(env.matcher);
  REQUIRE(v.kind == HangKind::kCollectiveMismatch);
  REQUIRE(v.hang());
  REQUIRE(v.at_ns == 2'000);
  REQUIRE(v.has_collective);
  REQUIRE(v.group == Group::kTp);
  REQUIRE(v.seq == 0);
  REQUIRE(v.entered.size() == 2);
  CHECK(v.entered[0].rank == 0);
  CHECK(v.entered[0].op == CollectiveOp::kAllReduceMax);
  CHECK(v.entered[0].size == 2);
  CHECK(v.entered[0].at_ns == 1'000);
  CHECK(v.entered[1].rank == 1);
  CHECK(v.entered[1].op == CollectiveOp::kForward);
  CHECK(v.entered[1].size == 2100);  // a forward's size is its token count
  CHECK(v.entered[1].at_ns == 2'000);
  CHECK(v.missing_ranks.empty());
  REQUIRE_THAT(v.headline, Catch::Contains("collective mismatch"));

  // Nothing completed: neither payload was touched, and the sequence stays pending for good.
  REQUIRE(env.matcher.completed() == 0);
  REQUIRE(vote == std::vector<std::int64_t>{1, 0});
  REQUIRE(tokens == std::vector<std::int64_t>{2100});
  REQUIRE(env.matcher.pending(Group::kTp, 0) != nullptr);
  REQUIRE(env.matcher.pending(Group::kTp, 0)->mismatched);

  // Running on (the world lets late ranks settle) never completes the mismatched sequence, and
  // keeps the first mismatch point; unrelated groups still work.
  REQUIRE(env.kernel.run(1'000'000'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(log.empty());
  REQUIRE(later.size() == 2);
  REQUIRE(env.matcher.completed() == 1);
  REQUIRE(env.matcher.mismatch()->at_ns == 2'000);
}

TEST_CASE("collectives: same op with a different size is also a mismatch", "[collectives]") {
  Env env(2);
  std::vector<std::int64_t> p0{1, 2};
  std::vector<std::int64_t> p1{1, 2, 3};
  WorldCall c0 = collective(Group::kPrefetchTp, CollectiveOp::kAllReduceMin, p0);
  WorldCall c1 = collective(Group::kPrefetchTp, CollectiveOp::kAllReduceMin, p1);
  std::vector<Resumed> log;
  Members m;
  m.start(env, 0, member(env, 0, {&c0}, log));
  m.start(env, 0, member(env, 1, {&c1}, log));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kStopped);
  REQUIRE(env.matcher.mismatch());
  const Verdict v = mismatch_verdict(env.matcher);
  REQUIRE(v.group == Group::kPrefetchTp);
  REQUIRE(v.entered.size() == 2);
  REQUIRE(v.entered[0].size == 2);
  REQUIRE(v.entered[1].size == 3);
  REQUIRE(log.empty());
}

TEST_CASE("collectives: a 3-rank mismatch names the rank that has not entered yet", "[collectives]") {
  Env env(3);
  std::vector<std::int64_t> p0{0, 0}, p1{5};
  WorldCall c0 = collective(Group::kTp, CollectiveOp::kAllReduceMax, p0);
  WorldCall c1 = collective(Group::kTp, CollectiveOp::kForward, p1);
  std::vector<Resumed> log;
  Members m;
  m.start(env, 10, member(env, 0, {&c0}, log));
  m.start(env, 20, member(env, 1, {&c1}, log));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kStopped);
  const Verdict v = mismatch_verdict(env.matcher);
  REQUIRE(v.missing_ranks == std::vector<int>{2});
  REQUIRE(v.entered.size() == 2);
}

TEST_CASE("collectives: a partial collective is pending, and a stall only once the bound has passed",
          "[collectives][hang]") {
  Env env(2);
  std::vector<std::int64_t> p0{1, 0};
  WorldCall c0 = collective(Group::kTp, CollectiveOp::kAllReduceMax, p0);
  std::vector<Resumed> log;
  Members m;
  const TimeNs entered_at = 7'000;
  m.start(env, entered_at, member(env, 0, {&c0}, log));  // rank 1 never comes

  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(log.empty());
  REQUIRE_FALSE(env.matcher.mismatch());

  REQUIRE(env.matcher.open_count(Group::kTp) == 1);
  REQUIRE(env.matcher.pending(Group::kTp, 0) != nullptr);
  const auto& p = *env.matcher.pending(Group::kTp, 0);
  REQUIRE(p.first_arrival_ns == entered_at);
  REQUIRE(p.entries.size() == 1);
  REQUIRE(p.entries[0].rank == 0);
  REQUIRE(p.handles[0]);
  REQUIRE_FALSE(p.handles[1]);
  REQUIRE(env.matcher.open_count(Group::kPrefetchTp) == 0);

  // oldest_partial_collective has no bound: it names the partial at once, with the missing rank.
  const auto oldest = oldest_partial_collective(env.matcher, entered_at + 1, HangKind::kDeadlock);
  REQUIRE(oldest);
  REQUIRE(oldest->kind == HangKind::kDeadlock);
  REQUIRE(oldest->group == Group::kTp);
  REQUIRE(oldest->seq == 0);
  REQUIRE(oldest->missing_ranks == std::vector<int>{1});
  REQUIRE(oldest->entered.size() == 1);

  // check_stalled_collectives waits for the stall bound ("a member this late is taken as never coming").
  DetectorBounds bounds;
  bounds.collective_stall_ns = 10'000'000;
  REQUIRE_FALSE(check_stalled_collectives(env.matcher, entered_at, bounds));
  REQUIRE_FALSE(check_stalled_collectives(env.matcher, entered_at + bounds.collective_stall_ns - 1, bounds));
  const auto stalled = check_stalled_collectives(env.matcher, entered_at + bounds.collective_stall_ns, bounds);
  REQUIRE(stalled);
  REQUIRE(stalled->kind == HangKind::kCollectiveMismatch);
  REQUIRE(stalled->at_ns == entered_at + bounds.collective_stall_ns);
  REQUIRE(stalled->group == Group::kTp);
  REQUIRE(stalled->seq == 0);
  REQUIRE(stalled->missing_ranks == std::vector<int>{1});
  REQUIRE(stalled->entered.at(0).op == CollectiveOp::kAllReduceMax);
  REQUIRE(stalled->entered.at(0).size == 2);
  REQUIRE_THAT(stalled->headline, Catch::Contains("1 rank(s) never entered") && Catch::Contains("10 ms"));
}

TEST_CASE("collectives: the oldest partial collective across groups is reported", "[collectives][hang]") {
  Env env(2);
  std::vector<std::int64_t> ps{0}, pf{0};
  WorldCall cs = collective(Group::kTp, CollectiveOp::kAllReduceMin, ps);
  WorldCall cf = collective(Group::kPrefetchTp, CollectiveOp::kAllReduceMin, pf);
  std::vector<Resumed> log;
  Members m;
  m.start(env, 500, member(env, 0, {&cs}, log));  // scheduler partial: rank 1 missing, later
  m.start(env, 100, member(env, 1, {&cf}, log));  // prefetch partial: rank 0 missing, older
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  const auto v = oldest_partial_collective(env.matcher, 1'000, HangKind::kDeadlock);
  REQUIRE(v);
  REQUIRE(v->group == Group::kPrefetchTp);
  REQUIRE(v->missing_ranks == std::vector<int>{0});
  REQUIRE(v->entered.at(0).at_ns == 100);
}

TEST_CASE("collectives: split attention groups match and reduce apart; a broadcast's root is the group's lowest rank",
          "[collectives][topology]") {
  // TP 4 as two DP attention replicas: attention-TP groups {0, 1} and {2, 3}.
  Env env(Topology{.tp = 4, .dp = 2});
  std::vector<std::vector<std::int64_t>> p{{5}, {3}, {9}, {7}};
  std::vector<WorldCall> calls;
  for (int r = 0; r < 4; ++r) {
    calls.push_back(collective(env.matcher.resolve(Group::kAttnTp, r), CollectiveOp::kAllReduceMin, p[static_cast<std::size_t>(r)]));
  }
  REQUIRE(calls[1].group == Group{GroupKind::kAttnTp, 0});
  REQUIRE(calls[2].group == Group{GroupKind::kAttnTp, 1});
  std::vector<Resumed> log;
  Members m;
  m.start(env, 10, member(env, 0, {&calls[0]}, log));
  m.start(env, 20, member(env, 1, {&calls[1]}, log));
  m.start(env, 30, member(env, 2, {&calls[2]}, log));  // rank 3 never comes
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  // Replica 0 completed without replica 1; each reduced over its own members only.
  REQUIRE(p[0] == std::vector<std::int64_t>{3});
  REQUIRE(p[1] == std::vector<std::int64_t>{3});
  REQUIRE(p[2] == std::vector<std::int64_t>{9});
  REQUIRE(log == std::vector<Resumed>{{20 + kLatency, 0, 0}, {20 + kLatency, 1, 0}});
  const auto stuck = oldest_partial_collective(env.matcher, 100, HangKind::kDeadlock);
  REQUIRE(stuck);
  REQUIRE(stuck->group == Group{GroupKind::kAttnTp, 1});
  REQUIRE(group_name(stuck->group) == "attn_tp_cpu_group[1]");
  REQUIRE(stuck->missing_ranks == std::vector<int>{3});  // not ranks 0 and 1: another group's

  // A broadcast over replica 1's group takes rank 2's payload.
  std::vector<std::int64_t> b2{42}, b3{0};
  WorldCall c2 = collective(env.matcher.resolve(Group::kAttnTp, 2), CollectiveOp::kBroadcast, b2);
  WorldCall c3 = collective(env.matcher.resolve(Group::kAttnTp, 3), CollectiveOp::kBroadcast, b3);
  Env fresh(Topology{.tp = 4, .dp = 2});
  Members m2;
  std::vector<Resumed> log2;
  m2.start(fresh, 10, member(fresh, 3, {&c3}, log2));
  m2.start(fresh, 20, member(fresh, 2, {&c2}, log2));
  REQUIRE(fresh.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(b3 == std::vector<std::int64_t>{42});
}

TEST_CASE("collectives: an attention kind that spans every TP rank is tp_cpu_group and shares its sequence", "[collectives][topology]") {
  Env env(Topology{.tp = 2});
  REQUIRE(env.matcher.resolve(Group::kAttnTp, 1) == Group::kTp);
  REQUIRE(env.matcher.resolve(Group::kPrefetchTp, 1) == Group::kPrefetchTp);  // the prefetch thread's own group
  std::vector<std::int64_t> a0{1}, f1{64};
  WorldCall vote0 = collective(env.matcher.resolve(Group::kAttnTp, 0), CollectiveOp::kAllReduceMax, a0);
  WorldCall fwd1 = collective(Group::kTp, CollectiveOp::kForward, f1);
  std::vector<Resumed> log;
  Members m;
  m.start(env, 10, member(env, 0, {&vote0}, log));
  m.start(env, 10, member(env, 1, {&fwd1}, log));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kStopped);  // the matcher stops the world at a mismatch
  // One communicator, one sequence: the vote and the forward meet at seq 0 and mismatch.
  REQUIRE(env.matcher.mismatch());
  REQUIRE(env.matcher.mismatch()->group == Group::kTp);
}
