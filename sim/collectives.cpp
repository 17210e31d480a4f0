#include "sim/collectives.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

CollectiveMatcher::CollectiveMatcher(int ranks, CollectiveCost cost) : ranks_(ranks), cost_(cost) {
  HCSIM_ASSERT(ranks > 0);
  groups_.resize(kGroupCount);
  for (auto& g : groups_) g.next_seq.assign(static_cast<std::size_t>(ranks), 0);
}

std::uint64_t CollectiveMatcher::next_seq(Group g, int rank) const {
  return groups_[static_cast<std::size_t>(g)].next_seq.at(static_cast<std::size_t>(rank));
}

const OpenCollective* CollectiveMatcher::oldest_open(Group g, std::uint64_t& seq) const {
  const auto& pending = groups_[static_cast<std::size_t>(g)].pending;
  if (pending.empty()) return nullptr;
  seq = pending.begin()->first;
  return &pending.begin()->second;
}

const OpenCollective* CollectiveMatcher::find_open(Group g, std::uint64_t seq) const {
  const auto& pending = groups_[static_cast<std::size_t>(g)].pending;
  auto it = pending.find(seq);
  return it == pending.end() ? nullptr : &it->second;
}

std::uint64_t CollectiveMatcher::enter(Kernel& kernel, int rank, WorldCall& call, std::coroutine_handle<> h) {
  HCSIM_ASSERT(call.kind == WorldCall::Kind::kCollective);
  HCSIM_ASSERT(rank >= 0 && rank < ranks_);
  GroupState& g = groups_[static_cast<std::size_t>(call.group)];
  const std::uint64_t seq = g.next_seq[static_cast<std::size_t>(rank)]++;
  auto [it, fresh] = g.pending.try_emplace(seq);
  Pending& p = it->second;
  if (fresh) {
    p.handles.assign(static_cast<std::size_t>(ranks_), {});
    p.calls.assign(static_cast<std::size_t>(ranks_), nullptr);
    p.first_arrival_ns = kernel.now_ns();
  }
  HCSIM_ASSERT(!p.handles[static_cast<std::size_t>(rank)]);
  const CollectiveEntry entry{rank, call.op, collective_size(call), kernel.now_ns()};
  p.entries.push_back(entry);
  p.handles[static_cast<std::size_t>(rank)] = h;
  p.calls[static_cast<std::size_t>(rank)] = &call;
  const CollectiveEntry& first = p.entries.front();
  if (first.op != entry.op || first.size != entry.size) {
    p.mismatched = true;
    if (!mismatch_) {
      mismatch_ = MismatchPoint{call.group, seq, kernel.now_ns()};
      kernel.stop();  // the world decides what follows
    }
  }
  if (!p.mismatched && p.entries.size() == static_cast<std::size_t>(ranks_)) {
    complete(kernel, p);
    g.pending.erase(it);
  }
  return seq;
}

void CollectiveMatcher::complete(Kernel& kernel, Pending& p) {
  WorldCall& root = *p.calls[0];
  const std::size_t n = root.payload.size();
  switch (root.op) {
    case CollectiveOp::kAllReduceMin:
    case CollectiveOp::kAllReduceMax: {
      const bool is_min = root.op == CollectiveOp::kAllReduceMin;
      for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v = root.payload[i];
        for (WorldCall* c : p.calls) v = is_min ? std::min(v, c->payload[i]) : std::max(v, c->payload[i]);
        for (WorldCall* c : p.calls) c->payload[i] = v;
      }
      break;
    }
    case CollectiveOp::kBroadcast:  // from the group's first rank
      for (WorldCall* c : p.calls) std::copy(root.payload.begin(), root.payload.end(), c->payload.begin());
      break;
    case CollectiveOp::kForward:
    case CollectiveOp::kBarrier: break;
  }
  const TimeNs cost = cost_.duration_ns(root.op, collective_size(root));
  for (std::size_t r = 0; r < p.handles.size(); ++r) kernel.schedule_at(kernel.now_ns() + cost, p.handles[r], static_cast<int>(r));
  ++completed_;
}

}  // namespace hcsim
