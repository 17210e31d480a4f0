// SimWorld and the hang detector end to end, with hand-built actors instead of the policy model:
// each verdict kind comes out of what the actors do, and names who waits on what.
#include <array>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "run/storage.h"
#include "run/wait_for_graph.h"
#include "sim/world.h"

using namespace hcsim;

namespace {

struct Fixture {
  StorageModel storage{StorageConfig{}, 2, {}, 1};
  WorldConfig cfg;
  Fixture() {
    storage.seal();
    cfg.ranks = 2;
    cfg.bounds.check_period_ns = 1'000'000;
    cfg.bounds.starvation_ns = 50'000'000;
    cfg.bounds.horizon_ns = 1'000'000'000;
  }
};

// Takes request 0 on rank 0, broadcasts it, then finishes it after an all_reduce.
Task<> serve_one(Runtime& rt) {
  std::array<RequestId, 4> arrivals{};
  std::array<std::int64_t, 1> n{rt.rank() == 0 ? rt.take_arrivals(arrivals) : 0};
  co_await rt.collective(Group::kTp, CollectiveOp::kBroadcast, n);
  REQUIRE(n[0] == 1);
  rt.work_started(0);
  std::array<std::int64_t, 1> v{rt.rank()};
  co_await rt.collective(Group::kTp, CollectiveOp::kAllReduceMax, v);
  rt.work_finished(0);
  for (;;) co_await rt.sleep_ns(1'000'000);  // stays alive, as a scheduler does
}

}  // namespace

TEST_CASE("world: ranks that do the same collectives complete") {
  Fixture f;
  SimWorld w(f.cfg, f.storage, {{0, 0}}, 1);
  for (int r = 0; r < 2; ++r) {
    Runtime& rt = w.add_actor(r, ActorKind::kScheduler);
    w.spawn(rt, serve_one(rt));
  }
  const Verdict v = w.run();
  CHECK_FALSE(v.hang());
  CHECK(v.at_ns == 40'000);  // two collectives at the default 20 us each
}

TEST_CASE("world: a rank blocked on a signal nobody raises, with its peer in a collective, is a deadlock") {
  Fixture f;
  SimWorld w(f.cfg, f.storage, {{0, 0}}, 1);
  Runtime& r0 = w.add_actor(0, ActorKind::kScheduler);
  Runtime& r1 = w.add_actor(1, ActorKind::kScheduler);
  const SignalId never_raised = r1.make_signal("work_queue", ActorKind::kIo);
  auto in_collective = [](Runtime& rt) -> Task<> {
    rt.work_started(0);
    std::array<std::int64_t, 2> v{0, 0};
    co_await rt.collective(Group::kTp, CollectiveOp::kAllReduceMax, v);
  };
  auto waiting = [](Runtime& rt, SignalId s) -> Task<> {
    rt.work_started(0);
    co_await rt.wait(s);
  };
  w.spawn(r0, in_collective(r0));
  w.spawn(r1, waiting(r1, never_raised));
  const Verdict v = w.run();
  REQUIRE(v.kind == HangKind::kDeadlock);
  REQUIRE(v.has_collective);
  CHECK(v.group == Group::kTp);
  CHECK(v.seq == 0);
  REQUIRE(v.entered.size() == 1);
  CHECK(v.entered[0].rank == 0);
  CHECK(v.missing_ranks == std::vector<int>{1});
  REQUIRE(v.actors.size() == 2);
  CHECK(v.actors[0].wait == WaitKind::kCollective);
  CHECK(v.actors[1].wait == WaitKind::kSignal);
  CHECK(v.actors[1].signal_name == "work_queue");
  // The wait-for graph points rank 0 at rank 1, which has not entered the collective.
  const std::string dot = wait_for_graph_dot(v, w.collectives());
  CHECK(dot.find("has not entered seq 0") != std::string::npos);
}

TEST_CASE("world: a request stuck after an actor died is a lost worker, with the actor's error") {
  Fixture f;
  SimWorld w(f.cfg, f.storage, {{0, 0}}, 1);
  Runtime& io = w.add_actor(0, ActorKind::kIo);
  Runtime& sched = w.add_actor(0, ActorKind::kScheduler);
  auto dies = [](Runtime& rt) -> Task<> {
    co_await rt.sleep_ns(5'000'000);
    throw hcsim::WorldCallRaised("batch_get raised");
  };
  auto polls = [](Runtime& rt) -> Task<> {
    rt.work_started(0);
    for (;;) co_await rt.sleep_ns(1'000'000);
  };
  w.spawn(io, dies(io));
  w.spawn(sched, polls(sched));
  const Verdict v = w.run();
  REQUIRE(v.kind == HangKind::kLostWorker);
  CHECK(v.at_ns >= f.cfg.bounds.starvation_ns);  // the death alone is no verdict; the stuck request is
  CHECK(v.headline.find("batch_get raised") != std::string::npos);
  REQUIRE(v.actors.size() == 2);
  CHECK(v.actors[0].wait == WaitKind::kDied);
  CHECK(v.actors[0].error == "batch_get raised");
}

TEST_CASE("world: a request owed past the bound while the ranks keep running is starvation") {
  Fixture f;
  SimWorld w(f.cfg, f.storage, {{0, 0}}, 1);
  auto spins = [](Runtime& rt) -> Task<> {
    rt.work_started(0);
    for (;;) {
      std::array<std::int64_t, 1> v{0};
      co_await rt.collective(Group::kTp, CollectiveOp::kAllReduceMin, v);
      co_await rt.sleep_ns(1'000'000);
    }
  };
  for (int r = 0; r < 2; ++r) {
    Runtime& rt = w.add_actor(r, ActorKind::kScheduler);
    w.spawn(rt, spins(rt));
  }
  const Verdict v = w.run();
  REQUIRE(v.kind == HangKind::kStarvation);
  CHECK(v.request == 0);
  CHECK(v.ranks_pending == std::vector<int>{0, 1});
  CHECK(v.at_ns >= f.cfg.bounds.starvation_ns);
}

TEST_CASE("world: a collective one rank never enters while it keeps running is a mismatch after the stall bound") {
  Fixture f;
  f.cfg.bounds.collective_stall_ns = 20'000'000;
  SimWorld w(f.cfg, f.storage, {{0, 0}}, 1);
  Runtime& r0 = w.add_actor(0, ActorKind::kPrefetch);
  Runtime& r1 = w.add_actor(1, ActorKind::kPrefetch);
  auto enters = [](Runtime& rt) -> Task<> {
    rt.work_started(0);
    std::array<std::int64_t, 1> v{0};
    co_await rt.collective(Group::kPrefetchTp, CollectiveOp::kAllReduceMin, v);
  };
  auto elsewhere = [](Runtime& rt) -> Task<> {
    for (;;) co_await rt.sleep_ns(1'000'000);
  };
  w.spawn(r0, enters(r0));
  w.spawn(r1, elsewhere(r1));
  const Verdict v = w.run();
  REQUIRE(v.kind == HangKind::kCollectiveMismatch);
  CHECK(v.group == Group::kPrefetchTp);
  CHECK(v.missing_ranks == std::vector<int>{1});
  CHECK(v.at_ns >= 20'000'000);
}

TEST_CASE("storage: pages set on one rank are found by that rank's later hit queries only") {
  StorageModel storage(StorageConfig{}, 2, {}, 1);
  storage.seal();
  const std::array<PageKey, 3> keys{11, 12, 13};
  std::array<std::uint8_t, 3> present{};
  WorldCall query;
  query.kind = WorldCall::Kind::kStorage;
  query.storage_op = StorageOp::kHitQuery;
  query.keys = keys;
  query.present = present;
  CHECK(storage.plan(0, query, 0).result == 0);
  WorldCall set = query;
  set.storage_op = StorageOp::kKvSet;
  set.present = {};
  CHECK(storage.plan(0, set, 0).result == 3);
  CHECK(storage.plan(0, query, 1).result == 3);
  CHECK(storage.plan(1, query, 1).result == 0);
}
