#include "sim/collectives.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

CollectiveMatcher::CollectiveMatcher(Topology topology, CollectiveCost cost)
    : ranks_(topology.tp), cost_(cost), comms_(topology.communicators()) {
  HCSIM_ASSERT(ranks_ > 0 && topology.problem().empty());
  comm_of_.resize(static_cast<std::size_t>(kGroupKindCount) * static_cast<std::size_t>(ranks_));
  for (int k = 0; k < kGroupKindCount; ++k) {
    for (int r = 0; r < ranks_; ++r) {
      const Group g = topology.resolve(Group{static_cast<GroupKind>(k)}, r);
      comm_of_[static_cast<std::size_t>(k) * static_cast<std::size_t>(ranks_) + static_cast<std::size_t>(r)] =
          static_cast<std::size_t>(std::find(comms_.begin(), comms_.end(), g) - comms_.begin());
    }
  }
  groups_.resize(comms_.size());
  for (std::size_t i = 0; i < comms_.size(); ++i) {
    groups_[i].members = topology.members(comms_[i]);
    groups_[i].next_seq.assign(static_cast<std::size_t>(ranks_), 0);
  }
}

std::size_t CollectiveMatcher::index_of(Group g) const {
  const auto it = std::find(comms_.begin(), comms_.end(), g);
  HCSIM_ASSERT(it != comms_.end());  // a communicator of this topology
  return static_cast<std::size_t>(it - comms_.begin());
}

std::uint64_t CollectiveMatcher::next_seq(Group g, int rank) const {
  const std::size_t i = comm_index(g.kind, rank);  // a table lookup: every collective asks
  HCSIM_ASSERT(comms_[i] == g);                      // resolved for this rank
  return groups_[i].next_seq.at(static_cast<std::size_t>(rank));
}

const OpenCollective* CollectiveMatcher::oldest_open(Group g, std::uint64_t& seq) const {
  const auto& pending = groups_[index_of(g)].pending;
  if (pending.empty()) return nullptr;
  seq = pending.begin()->first;
  return &pending.begin()->second;
}

const OpenCollective* CollectiveMatcher::find_open(Group g, std::uint64_t seq) const {
  const auto& pending = groups_[index_of(g)].pending;
  auto it = pending.find(seq);
  return it == pending.end() ? nullptr : &it->second;
}

std::uint64_t CollectiveMatcher::enter(Kernel& kernel, int rank, WorldCall& call, std::coroutine_handle<> h) {
  HCSIM_ASSERT(call.kind == WorldCall::Kind::kCollective);
  HCSIM_ASSERT(rank >= 0 && rank < ranks_);
  GroupState& g = groups_[comm_index(call.group.kind, rank)];
  HCSIM_ASSERT(comms_[comm_index(call.group.kind, rank)] == call.group);  // resolved for this rank
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
  if (!p.mismatched && p.entries.size() == g.members.size()) {
    complete(kernel, p);
    g.pending.erase(it);
  }
  return seq;
}

void CollectiveMatcher::complete(Kernel& kernel, Pending& p) {
  std::erase(p.calls, nullptr);  // the members' calls, by rank
  WorldCall& root = *p.calls.front();
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
    case CollectiveOp::kBroadcast:  // from the group's lowest rank
      for (WorldCall* c : p.calls) std::copy(root.payload.begin(), root.payload.end(), c->payload.begin());
      break;
    case CollectiveOp::kForward:
    case CollectiveOp::kBarrier: break;
  }
  const TimeNs cost = cost_.duration_ns(root.op, collective_size(root));
  for (std::size_t r = 0; r < p.handles.size(); ++r) {
    if (p.handles[r]) kernel.schedule_at(kernel.now_ns() + cost, p.handles[r], static_cast<int>(r));
  }
  ++completed_;
}

}  // namespace hcsim
