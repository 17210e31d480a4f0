// Pipeline stages: the topology's stage groups and channels, and the matcher's point-to-point
// transfers (a send returns at once, a receive waits for it, wait_sends waits until every send was
// taken, a length that differs is a crash, a receive whose send never comes is a stalled channel).
#include <catch2/catch.hpp>

#include <coroutine>
#include <cstdint>
#include <span>
#include <vector>

#include "policy/runtime.h"
#include "policy/task.h"
#include "policy/topology.h"
#include "run/hang_detector.h"
#include "sim/collectives.h"
#include "sim/kernel.h"
#include "tests/matcher_env.h"

namespace {

using namespace hcsim;

constexpr TimeNs kLatency = kMatcherLatencyNs;
using Env = MatcherEnv;
WorldCall transfer(Group channel, CollectiveOp op, std::vector<std::int64_t>& payload) { return collective_call(channel, op, payload); }

// As the simulated world submits: a send does not park its caller, a receive and wait_sends do.
struct Submit {
  Env& env;
  int rank;
  WorldCall& call;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) const {
    if (call.kind == WorldCall::Kind::kWaitSends) {
      std::uint64_t seq = 0;
      return !env.matcher.wait_sends(rank, call.group, h, seq);
    }
    env.matcher.enter(env.kernel, rank, call, h);
    return call.op != CollectiveOp::kSend;
  }
  void await_resume() const noexcept {}
};

Task<> actor(Env& env, int rank, std::vector<WorldCall*> calls, std::vector<TimeNs>& resumed_ns) {
  for (WorldCall* c : calls) {
    co_await Submit{env, rank, *c};
    resumed_ns.push_back(env.kernel.now_ns());
  }
}

struct Actors {
  std::vector<Task<>> tasks;
  void start(Env& env, TimeNs at, Task<> t) {
    tasks.push_back(std::move(t));
    env.kernel.schedule_at(at, tasks.back().handle());
  }
};

}  // namespace

TEST_CASE("pipeline topology: stage groups, channels to the next stage, names and codes", "[pp][topology]") {
  const Topology t{.tp = 2, .pp = 3};
  REQUIRE(t.ranks() == 6);
  REQUIRE(t.problem().empty());
  REQUIRE(t.stage(5) == 2);
  REQUIRE(t.tp_rank(5) == 1);
  const Group g = t.resolve(Group::kTp, 3);
  REQUIRE(g.stage == 1);
  REQUIRE(t.members(g) == std::vector<int>{2, 3});
  REQUIRE(group_name(g) == "tp_cpu_group@pp1");
  REQUIRE(Group::from_code(g.code()) == g);
  const Group ch = t.channel_to_next(GroupKind::kPpProxy, 3);
  REQUIRE(t.members(ch) == std::vector<int>{3, 5});
  REQUIRE(t.channel_from_previous(GroupKind::kPpProxy, 5) == ch);
  REQUIRE(group_name(ch) == "pp_proxy[1] pp1->pp2");
  REQUIRE(Group::from_code(ch.code()) == ch);
  // Per stage, as one stage has: the TP, prefetch and completion groups and one-rank CP groups of
  // each at both positions; the prefetch and completion groups across the stages at both positions;
  // then three kinds of channel from each of stages 0 and 1 at both positions.
  REQUIRE(t.communicators().size() == 3 * 9 + 2 * 2 + 3 * 2 * 2);
  REQUIRE(Topology{.tp = 2}.communicators().size() == 9);
  const Group across = t.resolve(Group{GroupKind::kSyncPp}, 3);
  REQUIRE(t.members(across) == std::vector<int>{1, 3, 5});
  REQUIRE(group_name(across) == "completion_pp_group[1]");
  REQUIRE(Group::from_code(across.code()) == across);
  // One stage keeps the codes and names of every earlier run.
  const Topology one{.tp = 2};
  REQUIRE(one.resolve(Group::kTp, 1) == Group::kTp);
  REQUIRE(Group::kTp.code() == 0);
  REQUIRE(group_name(one.resolve(Group::kPrefetchTp, 1)) == "prefetch_group");
  REQUIRE_FALSE(Topology{.tp = 4, .dp = 2, .pp = 2}.problem().empty());
}

TEST_CASE("point to point: a send returns at once; the receive takes its copy one latency later", "[pp][collectives]") {
  Env env(Topology{.tp = 1, .pp = 2});
  const Group ch = env.topology.channel_to_next(GroupKind::kPpSync, 0);
  std::vector<std::int64_t> sent{7, 9};
  std::vector<std::int64_t> got{0, 0};
  WorldCall send = transfer(ch, CollectiveOp::kSend, sent);
  WorldCall recv = transfer(ch, CollectiveOp::kRecv, got);
  std::vector<TimeNs> sender_ns;
  std::vector<TimeNs> receiver_ns;
  Actors a;
  a.start(env, 100, actor(env, 0, {&send}, sender_ns));
  a.start(env, 5'000, actor(env, 1, {&recv}, receiver_ns));
  sent = {7, 9};
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(sender_ns == std::vector<TimeNs>{100});
  REQUIRE(receiver_ns == std::vector<TimeNs>{5'000 + kLatency});
  REQUIRE(got == std::vector<std::int64_t>{7, 9});
  REQUIRE_FALSE(env.matcher.mismatch());
  REQUIRE(env.matcher.open_count(ch) == 0);
}

TEST_CASE("point to point: sends pile up unreceived, then each receive takes its own, in order", "[pp][collectives]") {
  // Ten sends open ten sequences at once: more than the matcher's first ring holds, so it grows
  // with the oldest still open, and every receive must still find its own send's copy.
  Env env(Topology{.tp = 1, .pp = 2});
  const Group ch = env.topology.channel_to_next(GroupKind::kPpSync, 0);
  constexpr int kSends = 10;
  std::vector<std::vector<std::int64_t>> sent(kSends);
  std::vector<std::vector<std::int64_t>> got(kSends, std::vector<std::int64_t>{0, 0});
  std::vector<WorldCall> sends;
  std::vector<WorldCall> recvs;
  for (int i = 0; i < kSends; ++i) {
    sent[static_cast<std::size_t>(i)] = {i, 100 + i};
    sends.push_back(transfer(ch, CollectiveOp::kSend, sent[static_cast<std::size_t>(i)]));
    recvs.push_back(transfer(ch, CollectiveOp::kRecv, got[static_cast<std::size_t>(i)]));
  }
  std::vector<WorldCall*> send_calls;
  std::vector<WorldCall*> recv_calls;
  for (int i = 0; i < kSends; ++i) {
    send_calls.push_back(&sends[static_cast<std::size_t>(i)]);
    recv_calls.push_back(&recvs[static_cast<std::size_t>(i)]);
  }
  std::vector<TimeNs> sender_ns;
  std::vector<TimeNs> receiver_ns;
  Actors a;
  a.start(env, 100, actor(env, 0, send_calls, sender_ns));
  REQUIRE(env.kernel.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(env.matcher.open_count(ch) == kSends);
  REQUIRE(env.matcher.pending(ch, 0) != nullptr);
  REQUIRE(env.matcher.pending(ch, kSends - 1)->sent == std::vector<std::int64_t>{kSends - 1, 100 + kSends - 1});
  REQUIRE(env.matcher.pending(ch, kSends) == nullptr);

  a.start(env, 5'000, actor(env, 1, recv_calls, receiver_ns));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(receiver_ns.size() == kSends);
  for (int i = 0; i < kSends; ++i) REQUIRE(got[static_cast<std::size_t>(i)] == std::vector<std::int64_t>{i, 100 + i});
  REQUIRE(env.matcher.open_count(ch) == 0);
  REQUIRE(env.matcher.pending(ch, 0) == nullptr);
  REQUIRE_FALSE(env.matcher.mismatch());
  REQUIRE(env.matcher.completed() == kSends);
}

TEST_CASE("point to point: wait_sends parks the sender until its sends were received", "[pp][collectives]") {
  Env env(Topology{.tp = 1, .pp = 2});
  const Group ch = env.topology.channel_to_next(GroupKind::kPpRequests, 0);
  std::vector<std::int64_t> first{1};
  std::vector<std::int64_t> second{2};
  std::vector<std::int64_t> got1{0};
  std::vector<std::int64_t> got2{0};
  WorldCall s1 = transfer(ch, CollectiveOp::kSend, first);
  WorldCall s2 = transfer(ch, CollectiveOp::kSend, second);
  WorldCall drain;
  drain.kind = WorldCall::Kind::kWaitSends;
  drain.group = ch;
  drain.op = CollectiveOp::kSend;
  WorldCall r1 = transfer(ch, CollectiveOp::kRecv, got1);
  WorldCall r2 = transfer(ch, CollectiveOp::kRecv, got2);
  std::vector<TimeNs> sender_ns;
  std::vector<TimeNs> receiver_ns;
  Actors a;
  a.start(env, 0, actor(env, 0, {&s1, &s2, &drain}, sender_ns));
  a.start(env, 10'000, actor(env, 1, {&r1}, receiver_ns));
  a.start(env, 20'000, actor(env, 1, {&r2}, receiver_ns));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  // The sends return at once; the drain returns a latency after the second receive took its send.
  REQUIRE(sender_ns == std::vector<TimeNs>{0, 0, 20'000 + kLatency});
  REQUIRE(got1 == std::vector<std::int64_t>{1});
  REQUIRE(got2 == std::vector<std::int64_t>{2});
  for (const auto& t : a.tasks) REQUIRE(t.done());
}

TEST_CASE("point to point: a length that differs is a crash naming both ranks and the channel", "[pp][collectives][hang]") {
  Env env(Topology{.tp = 1, .pp = 2});
  const Group ch = env.topology.channel_to_next(GroupKind::kPpProxy, 0);
  std::vector<std::int64_t> sent{64};     // tokens of the sender's batch
  std::vector<std::int64_t> wanted{1088};  // tokens of the receiver's
  WorldCall send = transfer(ch, CollectiveOp::kSend, sent);
  WorldCall recv = transfer(ch, CollectiveOp::kRecv, wanted);
  std::vector<TimeNs> ns;
  Actors a;
  a.start(env, 0, actor(env, 1, {&recv}, ns));
  a.start(env, 3'000, actor(env, 0, {&send}, ns));
  env.kernel.run(1'000'000);
  REQUIRE(env.matcher.mismatch());
  const Verdict v = mismatch_verdict(env.matcher);
  REQUIRE(v.kind == HangKind::kCrash);
  REQUIRE(v.group == ch);
  REQUIRE(v.headline == "crash: rank 1 received 64 tokens from rank 0 on pp_proxy[0] pp0->pp1 where it expected 1088: a receiver cannot take a payload of another shape");
  REQUIRE(wanted == std::vector<std::int64_t>{1088});  // never delivered
}

TEST_CASE("point to point: a receive whose send never comes stalls its channel past the bound", "[pp][collectives][hang]") {
  Env env(Topology{.tp = 2, .pp = 2});
  const Group ch = env.topology.channel_to_next(GroupKind::kPpSync, 1);  // rank 1 -> rank 3
  std::vector<std::int64_t> got{0};
  WorldCall recv = transfer(ch, CollectiveOp::kRecv, got);
  std::vector<TimeNs> ns;
  Actors a;
  a.start(env, 1'000, actor(env, 3, {&recv}, ns));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  DetectorBounds bounds;
  REQUIRE_FALSE(check_stalled_collectives(env.matcher, bounds.collective_stall_ns, bounds));
  const auto v = check_stalled_collectives(env.matcher, bounds.collective_stall_ns + 1'000, bounds);
  REQUIRE(v);
  REQUIRE(v->group == ch);
  REQUIRE(v->missing_ranks == std::vector<int>{1});
  REQUIRE(ns.empty());
}

TEST_CASE("point to point: a send nobody waits on holds nobody up; its sender in wait_sends does", "[pp][collectives][hang]") {
  Env env(Topology{.tp = 1, .pp = 2});
  const Group ch = env.topology.channel_to_next(GroupKind::kPpRequests, 0);
  std::vector<std::int64_t> sent{3};
  WorldCall send = transfer(ch, CollectiveOp::kSend, sent);
  WorldCall drain;
  drain.kind = WorldCall::Kind::kWaitSends;
  drain.group = ch;
  drain.op = CollectiveOp::kSend;
  std::vector<TimeNs> ns;
  Actors a;
  a.start(env, 0, actor(env, 0, {&send}, ns));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  std::uint64_t seq = 99;
  CHECK(env.matcher.oldest_open(ch, seq) == nullptr);  // deposited, not waited on
  a.start(env, 1'000, actor(env, 0, {&drain}, ns));
  REQUIRE(env.kernel.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  const OpenCollective* open = env.matcher.oldest_open(ch, seq);
  REQUIRE(open != nullptr);
  CHECK(seq == 0);
  CHECK(open->entries.front().op == CollectiveOp::kSend);
}
