#include "run/hang_detector.h"

#include <string>

#include "policy/assert.h"

namespace hcsim {

std::vector<WorkItem> owed_work(const std::vector<TimeNs>& started_ns, const std::vector<std::vector<bool>>& finished, int ranks) {
  std::vector<WorkItem> owed;
  for (std::size_t r = 0; r < started_ns.size(); ++r) {
    if (started_ns[r] < 0) continue;
    WorkItem w{static_cast<RequestId>(r), started_ns[r], {}};
    for (int k = 0; k < ranks; ++k) {
      if (!finished[r][static_cast<std::size_t>(k)]) w.ranks_pending.push_back(k);
    }
    if (!w.ranks_pending.empty()) owed.push_back(std::move(w));
  }
  return owed;
}

std::optional<Verdict> oldest_partial_collective(const CollectiveLedger& m, int ranks, TimeNs now_ns, HangKind kind) {
  std::optional<Verdict> oldest;
  for (int gi = 0; gi < kGroupCount; ++gi) {
    const auto g = static_cast<Group>(gi);
    std::uint64_t seq = 0;
    const OpenCollective* p = m.oldest_open(g, seq);  // per group, the lowest sequence is the oldest
    if (!p || (oldest && oldest->entered.front().at_ns <= p->first_arrival_ns)) continue;
    Verdict v;
    v.kind = kind;
    v.at_ns = now_ns;
    v.has_collective = true;
    v.group = g;
    v.seq = seq;
    v.entered = p->entries;
    for (int r = 0; r < ranks; ++r) {
      if (!p->entered(r)) v.missing_ranks.push_back(r);
    }
    oldest = std::move(v);
  }
  return oldest;
}

Verdict mismatch_verdict(const CollectiveLedger& m, int ranks) {
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
  for (int r = 0; r < ranks; ++r) {
    if (!p->entered(r)) v.missing_ranks.push_back(r);
  }
  v.headline = "collective mismatch: ranks entered different collectives at one sequence number";
  return v;
}

std::optional<Verdict> check_stalled_collectives(const CollectiveLedger& m, int ranks, TimeNs now_ns,
                                                 const DetectorBounds& bounds) {
  auto v = oldest_partial_collective(m, ranks, now_ns, HangKind::kCollectiveMismatch);
  if (!v || now_ns - v->entered.front().at_ns < bounds.collective_stall_ns) return std::nullopt;
  v->headline = "collective mismatch: " + std::to_string(v->missing_ranks.size()) +
                " rank(s) never entered the collective others have waited in for " +
                std::to_string((now_ns - v->entered.front().at_ns) / 1'000'000) + " ms";
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

Verdict deadlock_verdict(const CollectiveLedger& m, int ranks, TimeNs now_ns, std::size_t work_owed) {
  auto v = oldest_partial_collective(m, ranks, now_ns, HangKind::kDeadlock);
  Verdict out = v ? std::move(*v) : Verdict{};
  out.kind = HangKind::kDeadlock;
  out.at_ns = now_ns;
  out.headline = "deadlock: no actor can run and " + std::to_string(work_owed) + " request(s) are still owed a schedule";
  return out;
}

}  // namespace hcsim
