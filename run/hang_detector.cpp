#include "run/hang_detector.h"

#include <string>
#include <utility>

#include "policy/assert.h"

namespace hcsim {

namespace {

// A collective some members have waited in since `v.entered.front()`, and others never entered.
void name_stalled_collective(Verdict& v, TimeNs now_ns) {
  v.headline = "collective mismatch: " + std::to_string(v.missing_ranks.size()) +
               " rank(s) never entered the collective others have waited in for " +
               std::to_string((now_ns - v.entered.front().at_ns) / 1'000'000) + " ms";
}

Verdict starvation_verdict(TimeNs now_ns, std::string headline) {
  Verdict v;
  v.kind = HangKind::kStarvation;
  v.at_ns = now_ns;
  v.headline = std::move(headline);
  return v;
}

// The watchdog's stuck world: a collective some rank never entered is named as such; without one,
// nothing moves and nothing waits on a missing rank: a deadlock.
Verdict watchdog_verdict(const WorldCheck& c) {
  if (c.none_runnable) return deadlock_verdict(*c.collectives, c.now_ns, c.work->owed_count());
  auto partial = oldest_partial_collective(*c.collectives, c.now_ns, HangKind::kCollectiveMismatch);
  if (!partial || partial->missing_ranks.empty()) return deadlock_verdict(*c.collectives, c.now_ns, c.work->owed_count());
  name_stalled_collective(*partial, c.now_ns);
  return std::move(*partial);
}

void check_contract(const WorldCheck& c) {
  HCSIM_ASSERT(c.work != nullptr && c.bounds != nullptr);
  HCSIM_ASSERT(c.ranks > 0 && c.now_ns >= 0);
}

// The open collective with the earliest first entry, over every communicator.
struct OldestOpen {
  const OpenCollective* open = nullptr;
  Group group;
  std::uint64_t seq = 0;
};
OldestOpen oldest_open_collective(const CollectiveLedger& m) {
  OldestOpen oldest;
  for (const Group g : m.communicators()) {
    std::uint64_t seq = 0;
    const OpenCollective* p = m.oldest_open(g, seq);  // per group, the lowest sequence is the oldest
    if (!p || (oldest.open && oldest.open->entries.front().at_ns <= p->first_arrival_ns)) continue;
    oldest = {p, g, seq};
  }
  return oldest;
}

Verdict partial_collective_verdict(const CollectiveLedger& m, const OldestOpen& o, TimeNs now_ns, HangKind kind) {
  Verdict v;
  v.kind = kind;
  v.at_ns = now_ns;
  v.has_collective = true;
  v.group = o.group;
  v.seq = o.seq;
  v.entered = o.open->entries;
  for (int r : m.members(o.group)) {
    if (!o.open->entered(r)) v.missing_ranks.push_back(r);
  }
  return v;
}

}  // namespace

std::optional<Verdict> oldest_partial_collective(const CollectiveLedger& m, TimeNs now_ns, HangKind kind) {
  const OldestOpen oldest = oldest_open_collective(m);
  if (oldest.open == nullptr) return std::nullopt;
  return partial_collective_verdict(m, oldest, now_ns, kind);
}

Verdict mismatch_verdict(const CollectiveLedger& m) {
  const auto point = m.first_mismatch();
  HCSIM_ASSERT(point.has_value());
  const OpenCollective* p = m.find_open(point->group, point->seq);
  HCSIM_ASSERT(p);  // a mismatched sequence never completes
  Verdict v;
  v.kind = HangKind::kCollectiveMismatch;
  v.at_ns = point->at_ns;
  v.has_collective = true;
  v.group = point->group;
  v.seq = point->seq;
  v.entered = p->entries;
  for (int r : m.members(point->group)) {
    if (!p->entered(r)) v.missing_ranks.push_back(r);
  }
  v.headline = "collective mismatch: ranks entered different collectives at one sequence number";
  if (point_to_point(point->group.kind)) {  // a send and a receive of different lengths
    HCSIM_ASSERT(v.entered.size() == 2);
    const CollectiveEntry& sent = v.entered[0].op == CollectiveOp::kSend ? v.entered[0] : v.entered[1];
    const CollectiveEntry& wanted = v.entered[0].op == CollectiveOp::kSend ? v.entered[1] : v.entered[0];
    const std::string unit = point->group.kind == GroupKind::kPpProxy ? " tokens" : " elements";
    v.kind = HangKind::kCrash;
    v.headline = "crash: rank " + std::to_string(wanted.rank) + " received " + std::to_string(sent.size) + unit + " from rank " +
                 std::to_string(sent.rank) + " on " + group_name(point->group) + " where it expected " + std::to_string(wanted.size) +
                 ": a receiver cannot take a payload of another shape";
    return v;
  }
  // Two data collectives of the CPU transport whose payload lengths differ: Gloo checks the length
  // a peer sends against its own buffer and aborts (op.preamble.length <= op.nbytes, #39147). A
  // forward is a GPU collective, which waits instead.
  auto on_cpu = [](const CollectiveEntry& e) { return e.op != CollectiveOp::kForward && e.op != CollectiveOp::kBarrier; };
  const CollectiveEntry* first = nullptr;  // the first data collective of the CPU transport entered
  for (const CollectiveEntry& e : v.entered) {
    if (!on_cpu(e)) continue;
    if (first == nullptr) first = &e;
    if (e.size != first->size) {
      v.kind = HangKind::kCrash;
      v.headline = "crash: rank " + std::to_string(first->rank) + " and rank " + std::to_string(e.rank) + " entered " +
                   std::string(collective_op_name(first->op)) + " and " + std::string(collective_op_name(e.op)) + " with " +
                   std::to_string(first->size) + " and " + std::to_string(e.size) +
                   " elements at one sequence number; the transport aborts on a payload length that differs";
      break;
    }
  }
  return v;
}

std::optional<Verdict> check_stalled_collectives(const CollectiveLedger& m, TimeNs now_ns,
                                                 const DetectorBounds& bounds) {
  // A periodic check: the verdict is made only for a collective that has stalled.
  const OldestOpen oldest = oldest_open_collective(m);
  if (oldest.open == nullptr || now_ns - oldest.open->entries.front().at_ns < bounds.collective_stall_ns) return std::nullopt;
  Verdict v = partial_collective_verdict(m, oldest, now_ns, HangKind::kCollectiveMismatch);
  name_stalled_collective(v, now_ns);
  return v;
}

std::optional<Verdict> check_starvation(const std::vector<WorkItem>& owed, TimeNs now_ns, const DetectorBounds& bounds) {
  for (const WorkItem& w : owed) {  // in request order: the first starved request is named
    if (now_ns - w.started_ns < bounds.starvation_ns) continue;
    Verdict v;
    v.kind = HangKind::kStarvation;
    v.at_ns = now_ns;
    v.request = w.request;
    v.ranks_pending = w.ranks_pending;
    v.headline = "starvation: a request has waited " + std::to_string((now_ns - w.started_ns) / 1'000'000) +
                 " ms for a schedule while the ranks keep running";
    return v;
  }
  return std::nullopt;
}

void name_lost_worker(Verdict& v) {
  if (v.kind != HangKind::kStarvation && v.kind != HangKind::kDeadlock) return;
  for (const ActorState& a : v.actors) {
    if (a.wait != WaitKind::kDied) continue;
    v.headline = "lost worker: " + actor_label(a) + " died (" + a.error + "), and the run then " + v.headline;
    v.kind = HangKind::kLostWorker;
    return;
  }
}

Verdict deadlock_verdict(const CollectiveLedger& m, TimeNs now_ns, std::size_t work_owed) {
  auto v = oldest_partial_collective(m, now_ns, HangKind::kDeadlock);
  Verdict out = v ? std::move(*v) : Verdict{};
  out.kind = HangKind::kDeadlock;
  out.at_ns = now_ns;
  out.headline = "deadlock: no actor can run and " + std::to_string(work_owed) + " request(s) are still owed a schedule";
  return out;
}

std::optional<Verdict> outright_verdict(const WorldCheck& c) {
  check_contract(c);
  HCSIM_ASSERT(c.collectives != nullptr);
  if (c.collectives->first_mismatch()) return mismatch_verdict(*c.collectives);
  // A watchdog fires on a quiet run only when its transport failed: the run broke, done or not.
  if (c.watchdog_fired) return watchdog_verdict(c);
  if (c.quiet_since_ns >= 0) {
    HCSIM_ASSERT(c.work->all_done());
    Verdict v;
    v.at_ns = c.quiet_since_ns;
    v.headline = "complete: every request was scheduled on every rank";
    return v;
  }
  if (c.none_runnable) return deadlock_verdict(*c.collectives, c.now_ns, c.work->owed_count());
  if (c.event_bound_reached > 0) {
    return starvation_verdict(c.now_ns, "starvation: the run reached its bound of " + std::to_string(c.event_bound_reached) +
                                            " events with requests still owed a schedule (raise it with --limit events=N)");
  }
  return std::nullopt;
}

std::optional<Verdict> bound_verdict(const WorldCheck& c) {
  check_contract(c);
  HCSIM_ASSERT(c.collectives != nullptr || !c.stall_bound);
  if (c.stall_bound) {
    if (auto v = check_stalled_collectives(*c.collectives, c.now_ns, *c.bounds)) return v;
  }
  // The oldest owed request decides whether any starves; only then is the list built.
  const TimeNs oldest_ns = c.work->oldest_owed_start_ns();
  if (oldest_ns >= 0 && c.now_ns - oldest_ns >= c.bounds->starvation_ns) {
    if (auto v = check_starvation(c.work->owed(), c.now_ns, *c.bounds)) return v;
  }
  if (c.now_ns >= c.bounds->horizon_ns) {
    return starvation_verdict(c.now_ns, "starvation: the horizon passed with requests still owed a schedule");
  }
  return std::nullopt;
}

}  // namespace hcsim
