// The invariant checkers over hand-written event logs: each one holds on a clean log and names what
// broke it on a bad one.
#include <algorithm>

#include <catch2/catch.hpp>

#include "policy/prefetch_operation.h"
#include "run/invariants.h"

using namespace hcsim;

namespace {

TraceEvent ev(TimeNs t, int rank, EventKind kind, RequestId rid, std::int64_t a = 0, std::int64_t b = 0, std::int64_t c = 0) {
  return {t, static_cast<std::int16_t>(rank), ActorKind::kScheduler, kind, rid, a, b, c};
}

const InvariantResult& find(const std::vector<InvariantResult>& all, const std::string& name) {
  auto it = std::find_if(all.begin(), all.end(), [&](const InvariantResult& r) { return r.name == name; });
  REQUIRE(it != all.end());
  return *it;
}

PolicyConfig timeout_policy() {
  PolicyConfig p;
  p.policy = PrefetchPolicy::kTimeout;  // capped: 2 s + 0.1 s per 1024 tokens
  return p;
}

std::vector<InvariantResult> check(const EventLog& log, const Verdict& v, int ranks = 2,
                                   std::vector<std::vector<HostSlotPool::Leak>> leaked = {}, TimeNs end_ns = 100,
                                   RequestOwners owners = {}) {
  static const PolicyConfig policy = timeout_policy();
  static InvariantEvents events;
  events = {};
  for (const TraceEvent& e : log.events()) events.on_event(e);
  InvariantInputs in;
  in.verdict = &v;
  in.events = &events;
  in.policy = &policy;
  in.pass_slack_ns = 1'000'000;
  in.ranks = ranks;
  if (owners.replica_of.empty()) owners.replica_ranks = ranks;  // every rank runs every request
  in.owners = &owners;
  in.end_ns = end_ns;
  in.leaked = leaked.empty() ? std::vector<std::vector<HostSlotPool::Leak>>(static_cast<std::size_t>(ranks)) : leaked;
  return check_invariants(in);
}

// One op (id 0) for request 0 on both ranks, committed identically and ended once.
EventLog clean_log() {
  EventLog log;
  for (int r = 0; r < 2; ++r) log.append(ev(1, r, EventKind::kRegister, 0, 2048, 0, 0));
  for (int r = 0; r < 2; ++r) log.append(ev(5, r, EventKind::kCommit, 0, 2048, 0, 1));
  for (int r = 0; r < 2; ++r) log.append(ev(5, r, EventKind::kOpEnd, 0, static_cast<std::int64_t>(OpEnd::kCompleted), 2048, 0));
  return log;
}

}  // namespace

TEST_CASE("invariants: a clean complete run violates nothing") {
  const auto all = check(clean_log(), Verdict{});
  CHECK(violated_names(all).empty());
  CHECK(all.size() == kInvariantNames.size());
}

TEST_CASE("invariants: ranks publishing different sidecar state for one request") {
  EventLog log;
  log.append(ev(5, 0, EventKind::kCommit, 3, 2048, 0, 1));
  log.append(ev(5, 1, EventKind::kCommit, 3, 2048, 0, 0));
  const auto all = check(log, Verdict{});
  const auto& r = find(all, "identical_published_prefix");
  REQUIRE_FALSE(r.held);
  REQUIRE(r.details.size() == 1);
  CHECK(r.details[0].find("request 3") != std::string::npos);
  CHECK(r.details[0].find("without sidecar state") == std::string::npos);  // rank 0 had it
}

TEST_CASE("invariants: an operation ended twice, or never in a complete run") {
  EventLog twice = clean_log();
  twice.append(ev(6, 1, EventKind::kOpEnd, 0, static_cast<std::int64_t>(OpEnd::kAborted), 0, 0));
  const auto twice_results = check(twice, Verdict{});
  CHECK_FALSE(find(twice_results, "one_terminal_state").held);

  EventLog never;
  never.append(ev(1, 0, EventKind::kRegister, 0, 2048, 7, 0));
  const auto never_results = check(never, Verdict{}, 1);
  CHECK_FALSE(find(never_results, "one_terminal_state").held);
  Verdict hang;
  hang.kind = HangKind::kStarvation;  // a hung run may leave operations live
  const auto hung_results = check(never, hang, 1);
  CHECK(find(hung_results, "one_terminal_state").held);
}

TEST_CASE("invariants: an operation open past its timeout plus two passes breaks the bound") {
  EventLog log;
  log.append(ev(0, 0, EventKind::kRegister, 0, 2048, 4, 0));
  log.append(ev(100, 0, EventKind::kHitQuery, 0, 2048, 2048, 4));  // 32 pages: 2 s + 0.2 s
  Verdict starved;
  starved.kind = HangKind::kStarvation;
  const auto early = check(log, starved, 1, {}, 2'200'000'000);
  CHECK(find(early, "termination_bound").held);
  const auto late = check(log, starved, 1, {}, 2'300'000'000);
  REQUIRE_FALSE(find(late, "termination_bound").held);
  CHECK(find(late, "termination_bound").details[0].find("still open") != std::string::npos);
  log.append(ev(2'150'000'000, 0, EventKind::kOpEnd, 0, static_cast<std::int64_t>(OpEnd::kTerminated), 0, 4));
  CHECK(find(check(log, Verdict{}, 1, {}, 9'000'000'000), "termination_bound").held);
}

TEST_CASE("invariants: slot violations, mismatches and leaks are each reported") {
  EventLog log = clean_log();
  log.append(ev(7, 1, EventKind::kSlotViolation, 0, 5, static_cast<std::int64_t>(SlotPoolKind::kSidecar),
                static_cast<std::int64_t>(SlotOwner::kWriting)));
  Verdict mismatch;
  mismatch.kind = HangKind::kCollectiveMismatch;
  mismatch.has_collective = true;
  auto names = violated_names(check(log, mismatch));
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"matching_collectives", "slot_ownership"});

  HostSlotPool::Leak leak{{SlotPoolKind::kKv, 9, SlotOwner::kReleaseQueued, 0, 40}, "the release queue"};
  const auto leak_results = check(clean_log(), Verdict{}, 2, {{leak}, {}});
  const auto& cons = find(leak_results, "slot_conservation");
  REQUIRE_FALSE(cons.held);
  CHECK(cons.details[0].find("slot 9") != std::string::npos);
  CHECK(cons.details[0].find("age 0.000 ms") != std::string::npos);  // 100 ns old, printed in ms
  // Conservation is judged at quiescence only: a hung run is not quiescent.
  Verdict hang;
  hang.kind = HangKind::kDeadlock;
  const auto hung_leak_results = check(clean_log(), hang, 2, {{leak}, {}});
  CHECK(find(hung_leak_results, "slot_conservation").held);
}

TEST_CASE("invariants: with DP attention a request is compared among its replica's ranks only") {
  // TP 4, two replicas: request 0 on ranks 2 and 3, which publish the same; ranks 0 and 1 never see it.
  EventLog log;
  for (int r = 2; r < 4; ++r) log.append(ev(1, r, EventKind::kRegister, 0, 2048, 0, 0));
  for (int r = 2; r < 4; ++r) log.append(ev(5, r, EventKind::kCommit, 0, 2048, 0, 1));
  for (int r = 2; r < 4; ++r) log.append(ev(5, r, EventKind::kOpEnd, 0, static_cast<std::int64_t>(OpEnd::kCompleted), 2048, 0));
  const Verdict complete;
  const auto held = check(log, complete, 4, {}, 100, RequestOwners{{1}, 2});
  REQUIRE(find(held, "identical_published_prefix").held);
  // Rank 3 publishing differently from rank 2 is still caught.
  log.append(ev(6, 3, EventKind::kCommit, 0, 1024, 0, 1));
  const auto broken = check(log, complete, 4, {}, 100, RequestOwners{{1}, 2});
  REQUIRE_FALSE(find(broken, "identical_published_prefix").held);
  REQUIRE(find(broken, "identical_published_prefix").details.front().find("rank 2 committed 1 time(s), rank 3 2") != std::string::npos);
}
