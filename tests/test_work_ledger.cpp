// What both worlds share of their bookkeeping (run/work_ledger.h, run/actor_table.h) and the order
// in which a check's verdicts are tried (run/hang_detector.h, outright_verdict and bound_verdict):
// the texts and the precedence the simulator and the GPU backend's watchdog both rely on.
#include <array>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "run/actor_table.h"
#include "run/hang_detector.h"
#include "run/work_ledger.h"

using namespace hcsim;

namespace {

// A collective ledger with at most one open collective (scheduler group, seq 3) and a mismatch flag.
class FakeLedger final : public CollectiveLedger {
 public:
  std::optional<OpenCollective> open;
  bool mismatched = false;

  const OpenCollective* oldest_open(Group g, std::uint64_t& seq) const override {
    if (g != Group::kTp || !open) return nullptr;
    seq = 3;
    return &*open;
  }
  const OpenCollective* find_open(Group g, std::uint64_t seq) const override {
    return g == Group::kTp && seq == 3 && open ? &*open : nullptr;
  }
  std::optional<MismatchPoint> first_mismatch() const override {
    if (!mismatched) return std::nullopt;
    return MismatchPoint{Group::kTp, 3, 7'000};
  }
  std::vector<Group> communicators() const override { return {Group::kTp, Group::kPrefetchTp}; }
  std::vector<int> members(Group) const override { return {0, 1}; }
};

// Rank 0 entered the open collective at t=5us; rank 1 never did.
OpenCollective rank0_alone() {
  OpenCollective c;
  c.entries.push_back({0, CollectiveOp::kAllReduceMax, 1, 5'000});
  c.first_arrival_ns = 5'000;
  return c;
}

struct Check {
  FakeLedger collectives;
  WorkLedger work{2, 2};
  DetectorBounds bounds;
  Check() {
    bounds.starvation_ns = 50'000'000;
    bounds.collective_stall_ns = 20'000'000;
    bounds.horizon_ns = 1'000'000'000;
  }
  WorldCheck at(TimeNs now_ns) const {
    WorldCheck c;
    c.now_ns = now_ns;
    c.ranks = 2;
    c.collectives = &collectives;
    c.work = &work;
    c.bounds = &bounds;
    return c;
  }
  void finish_all() {
    for (RequestId r = 0; r < 2; ++r) {
      work.start(r, 0);
      for (int k = 0; k < 2; ++k) (void)work.finish(r, k);
    }
  }
};

Task<> dies() {
  throw WorldCallRaised("batch_get raised");
  co_return;
}

}  // namespace

TEST_CASE("work ledger: a request is owed from its first start until every rank finished it") {
  WorkLedger w(3, 2);
  CHECK_FALSE(w.all_done());
  CHECK(w.owed().empty());
  CHECK(w.oldest_owed_start_ns() == -1);
  w.start(1, 2'000);
  w.start(0, 3'000);
  w.start(1, 9'000);  // a later rank's start does not move the first
  REQUIRE(w.owed().size() == 2);
  CHECK(w.owed()[0].request == 0);  // in request order, not start order
  CHECK(w.owed()[1].started_ns == 2'000);
  CHECK(w.oldest_owed_start_ns() == 2'000);
  CHECK_FALSE(w.finish(1, 1));
  CHECK(w.owed()[1].ranks_pending == std::vector<int>{0});
  CHECK_FALSE(w.finish(1, 0));
  CHECK(w.owed_count() == 1);
  CHECK(w.oldest_owed_start_ns() == 3'000);  // request 1 is paid: the next oldest decides
}

TEST_CASE("work ledger: done once every request finished on every rank; the last finish says so") {
  WorkLedger w(2, 2);
  // Finished everywhere before any start (ranks that dropped it): never owed.
  CHECK_FALSE(w.finish(1, 0));
  CHECK_FALSE(w.finish(1, 1));
  w.start(1, 1'000);
  CHECK(w.owed_count() == 0);
  w.start(0, 2'000);
  CHECK_FALSE(w.finish(0, 0));
  CHECK_FALSE(w.all_done());
  CHECK(w.finish(0, 1));
  CHECK(w.all_done());
  CHECK(w.owed().empty());
}

TEST_CASE("actor table: indexes, states, the last due transfer and a lost worker, as both worlds report them") {
  ActorTable t;
  const std::size_t io0 = t.add_actor(1, ActorKind::kIo);
  const std::size_t sched = t.add_actor(1, ActorKind::kScheduler);
  const std::size_t io1 = t.add_actor(1, ActorKind::kIo);
  CHECK(t.actor(io0).index == 0);
  CHECK(t.actor(io1).index == 1);
  const SignalId queue = t.add_signal("work_queue", 1, ActorKind::kScheduler);
  WorldCall wait;
  wait.kind = WorldCall::Kind::kWait;
  wait.signal = queue;
  t.wait(io0).block(WaitKind::kSignal, wait, 4'000);
  WorldCall get;
  get.kind = WorldCall::Kind::kStorage;
  get.storage_op = StorageOp::kKvGet;
  get.request = 7;
  t.wait(io1).block(WaitKind::kStorage, get, 1'000);
  t.wait(io1).plan.duration_ns = 9'000;
  t.set_task(sched, dies());
  t.task(sched).handle().resume();
  const auto left = [&t](std::size_t i) { return t.task(i).done(); };
  CHECK(t.last_due_transfer_ns(left) == 10'000);
  CHECK(t.last_due_transfer_ns([](std::size_t) { return true; }) == 0);  // actors gone: no transfer counts

  Verdict deadlock;
  deadlock.kind = HangKind::kDeadlock;
  deadlock.headline = "deadlock: no actor can run";
  const Verdict v = t.finish(deadlock, left);
  REQUIRE(v.actors.size() == 3);
  CHECK(v.actors[0].signal_name == "work_queue");
  CHECK(v.actors[1].wait == WaitKind::kDied);
  CHECK(v.actors[2].due_ns == 10'000);
  CHECK(v.kind == HangKind::kLostWorker);
  CHECK(v.headline == "lost worker: rank 1 scheduler died (batch_get raised), and the run then deadlock: no actor can run");
  t.wait(io1).run();
  CHECK(t.state(io1, false).wait == WaitKind::kRunnable);
  CHECK(t.state(sched, false).wait == WaitKind::kRunnable);  // not left: its task is not read
}

TEST_CASE("verdict order: a mismatch beats completion, the watchdog, a deadlock and the event bound") {
  Check k;
  k.finish_all();
  k.collectives.open = rank0_alone();
  k.collectives.mismatched = true;
  WorldCheck c = k.at(40'000);
  c.quiet_since_ns = 30'000;
  c.watchdog_fired = true;
  c.none_runnable = true;
  c.event_bound_reached = 100;
  const auto v = outright_verdict(c);
  REQUIRE(v);
  CHECK(v->kind == HangKind::kCollectiveMismatch);
  CHECK(v->at_ns == 7'000);
  CHECK(v->headline == "collective mismatch: ranks entered different collectives at one sequence number");
}

TEST_CASE("verdict order: completion is dated when the run went quiet, and beats nothing runnable") {
  Check k;
  k.finish_all();
  WorldCheck c = k.at(40'000);
  CHECK_FALSE(outright_verdict(c));  // done but not yet drained: the world drains first
  c.quiet_since_ns = 30'000;
  c.none_runnable = true;
  const auto v = outright_verdict(c);
  REQUIRE(v);
  CHECK_FALSE(v->hang());
  CHECK(v->at_ns == 30'000);
  CHECK(v->headline == "complete: every request was scheduled on every rank");
}

TEST_CASE("verdict order: the watchdog names a collective some rank never entered, else a deadlock") {
  Check k;
  k.work.start(0, 0);
  WorldCheck c = k.at(2'005'000);
  c.watchdog_fired = true;
  auto v = outright_verdict(c);
  REQUIRE(v);
  CHECK(v->kind == HangKind::kDeadlock);
  CHECK(v->headline == "deadlock: no actor can run and 1 request(s) are still owed a schedule");
  k.collectives.open = rank0_alone();
  v = outright_verdict(c);
  REQUIRE(v);
  CHECK(v->kind == HangKind::kCollectiveMismatch);
  CHECK(v->missing_ranks == std::vector<int>{1});
  CHECK(v->headline == "collective mismatch: 1 rank(s) never entered the collective others have waited in for 2 ms");
}

TEST_CASE("verdict order: nothing runnable is a deadlock before the event bound; the bound has its own text") {
  Check k;
  k.work.start(1, 0);
  WorldCheck c = k.at(9'000);
  c.none_runnable = true;
  c.event_bound_reached = 100;
  auto v = outright_verdict(c);
  REQUIRE(v);
  CHECK(v->kind == HangKind::kDeadlock);
  c.none_runnable = false;
  v = outright_verdict(c);
  REQUIRE(v);
  CHECK(v->kind == HangKind::kStarvation);
  CHECK(v->at_ns == 9'000);
  CHECK(v->headline ==
        "starvation: the run reached its bound of 100 events with requests still owed a schedule (raise it with --limit events=N)");
  c.event_bound_reached = 0;
  CHECK_FALSE(outright_verdict(c));
}

TEST_CASE("verdict order: a stalled collective, then a starved request, then the horizon") {
  Check k;
  k.work.start(1, 1'000);
  k.collectives.open = rank0_alone();
  CHECK_FALSE(bound_verdict(k.at(10'000'000)));  // within every bound
  auto v = bound_verdict(k.at(k.bounds.horizon_ns));
  REQUIRE(v);
  CHECK(v->kind == HangKind::kCollectiveMismatch);  // past all three: the stall is named first
  WorldCheck c = k.at(k.bounds.horizon_ns);
  c.stall_bound = false;                            // the watchdog bounds open collectives itself
  c.collectives = nullptr;
  v = bound_verdict(c);
  REQUIRE(v);
  CHECK(v->kind == HangKind::kStarvation);
  CHECK(v->request == 1);
  CHECK(v->ranks_pending == std::vector<int>{0, 1});
  CHECK(v->headline == "starvation: a request has waited 999 ms for a schedule while the ranks keep running");
  for (int r = 0; r < 2; ++r) (void)k.work.finish(1, r);
  v = bound_verdict(c);
  REQUIRE(v);
  CHECK(v->kind == HangKind::kStarvation);
  CHECK(v->request == kNoRequest);
  CHECK(v->headline == "starvation: the horizon passed with requests still owed a schedule");
  c.now_ns = k.bounds.horizon_ns - 1;
  CHECK_FALSE(bound_verdict(c));
}
