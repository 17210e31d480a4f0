#include "sim/collectives.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

CollectiveMatcher::CollectiveMatcher(Topology topology, CollectiveCost cost)
    : ranks_(topology.ranks()), cost_(cost), comms_(topology.communicators()) {
  HCSIM_ASSERT(ranks_ > 0 && topology.problem().empty());
  comm_of_.assign(static_cast<std::size_t>(kGroupKindCount) * static_cast<std::size_t>(ranks_), kNoComm);
  for (int k = 0; k < kGroupKindCount; ++k) {
    if (point_to_point(static_cast<GroupKind>(k))) continue;  // a channel is found by its name
    for (int r = 0; r < ranks_; ++r) {
      const Group g = topology.resolve(Group{static_cast<GroupKind>(k)}, r);
      const auto it = std::find(comms_.begin(), comms_.end(), g);
      if (it == comms_.end()) continue;  // a stage-spanning kind with one stage
      comm_of_[static_cast<std::size_t>(k) * static_cast<std::size_t>(ranks_) + static_cast<std::size_t>(r)] =
          static_cast<std::size_t>(it - comms_.begin());
    }
  }
  std::size_t table_size = 16;
  while (table_size < 2 * comms_.size()) table_size *= 2;
  comm_table_.assign(table_size, CommSlot{});
  for (std::size_t c = 0; c < comms_.size(); ++c) {
    const auto code = static_cast<std::uint64_t>(comms_[c].code());
    std::size_t i = table_home(code, table_size - 1);
    while (comm_table_[i].index != kNoComm) {  // bounded: at most half full
      HCSIM_ASSERT(comm_table_[i].code != code);  // codes name communicators one to one
      i = (i + 1) & (table_size - 1);
    }
    comm_table_[i] = {code, c};
  }
  groups_.resize(comms_.size());
  for (std::size_t i = 0; i < comms_.size(); ++i) {
    groups_[i].members = topology.members(comms_[i]);
    groups_[i].next_seq.assign(static_cast<std::size_t>(ranks_), 0);
  }
  member_calls_.reserve(static_cast<std::size_t>(ranks_));
}

std::size_t CollectiveMatcher::index_of(Group g) const {
  const auto code = static_cast<std::uint64_t>(g.code());
  const std::size_t mask = comm_table_.size() - 1;
  for (std::size_t i = table_home(code, mask);; i = (i + 1) & mask) {  // ends: at most half full
    const CommSlot& slot = comm_table_[i];
    HCSIM_ASSERT(slot.index != kNoComm);  // a communicator of this topology
    if (slot.code == code) return slot.index;
  }
}

std::uint64_t CollectiveMatcher::next_seq(Group g, int rank) const {
  if (point_to_point(g.kind)) return groups_[index_of(g)].next_seq.at(static_cast<std::size_t>(rank));
  const std::size_t i = comm_index(g.kind, rank);  // a table lookup
  HCSIM_ASSERT(comms_[i] == g);                      // resolved for this rank
  return groups_[i].next_seq.at(static_cast<std::size_t>(rank));
}

const OpenCollective* CollectiveMatcher::oldest_open(Group g, std::uint64_t& seq) const {
  const GroupState& state = groups_[index_of(g)];
  for (std::uint64_t s = state.oldest; s < state.newest_end; ++s) {  // bounded: the ring's span
    const Pending& p = state.slot(s);
    if (!p.open) continue;
    // A send nobody waits on yet (no receive entered, its sender not in wait_sends) holds nobody up.
    const bool waited = !point_to_point(g.kind) || state.sends_waiter || p.entries.size() > 1 ||
                        (!p.entries.empty() && p.entries.front().op == CollectiveOp::kRecv);
    if (!waited) continue;
    seq = s;
    return &p;
  }
  return nullptr;
}

const OpenCollective* CollectiveMatcher::find_open(Group g, std::uint64_t seq) const { return pending(g, seq); }

std::size_t CollectiveMatcher::open_count(Group g) const {
  const GroupState& state = groups_[index_of(g)];
  std::size_t n = 0;
  for (std::uint64_t s = state.oldest; s < state.newest_end; ++s) n += state.slot(s).open ? 1 : 0;
  return n;
}

CollectiveMatcher::Pending& CollectiveMatcher::pending_at(GroupState& g, std::uint64_t seq, TimeNs now_ns) {
  // A member's next sequence is open (another member entered it) or the next past the newest: this
  // member entered every one before it, and one every member entered has completed or is open.
  HCSIM_ASSERT(seq >= g.oldest && seq <= g.newest_end);
  if (seq < g.newest_end) {
    Pending& p = g.slot(seq);
    HCSIM_ASSERT(p.open);
    return p;
  }
  if (g.newest_end - g.oldest == g.ring.size()) {  // full (or not yet made): double it, in order
    std::vector<Pending> grown(std::max(kRingSlotsFirst, 2 * g.ring.size()));
    for (Pending& fresh : grown) {
      fresh.handles.resize(static_cast<std::size_t>(ranks_));
      fresh.calls.resize(static_cast<std::size_t>(ranks_));
    }
    for (std::uint64_t s = g.oldest; s < g.newest_end; ++s) grown[s & (grown.size() - 1)] = std::move(g.slot(s));
    g.ring = std::move(grown);
  }
  ++g.newest_end;
  Pending& p = g.slot(seq);  // closed, so its handles and calls are null (close cleared them)
  p.entries.clear();
  p.mismatched = false;
  p.sent.clear();
  p.first_arrival_ns = now_ns;
  p.open = true;
  return p;
}

void CollectiveMatcher::close(GroupState& g, std::uint64_t seq) {
  Pending& p = g.slot(seq);
  for (const CollectiveEntry& e : p.entries) {
    p.handles[static_cast<std::size_t>(e.rank)] = {};
    p.calls[static_cast<std::size_t>(e.rank)] = nullptr;
  }
  p.open = false;
  while (g.oldest < g.newest_end && !g.slot(g.oldest).open) ++g.oldest;  // bounded: the ring's span
}

std::uint64_t CollectiveMatcher::enter(Kernel& kernel, int rank, WorldCall& call, std::coroutine_handle<> h) {
  HCSIM_ASSERT(call.kind == WorldCall::Kind::kCollective);
  HCSIM_ASSERT(rank >= 0 && rank < ranks_);
  const bool p2p = point_to_point(call.group.kind);
  const std::size_t index = p2p ? index_of(call.group) : comm_index(call.group.kind, rank);
  GroupState& g = groups_[index];
  HCSIM_ASSERT(comms_[index] == call.group);  // resolved for this rank
  // A channel's sender sends and its receiver receives, nothing else.
  HCSIM_ASSERT(p2p == (call.op == CollectiveOp::kSend || call.op == CollectiveOp::kRecv));
  HCSIM_ASSERT(!p2p || (call.op == CollectiveOp::kSend) == (rank == g.members.front()));
  const std::uint64_t seq = g.next_seq[static_cast<std::size_t>(rank)]++;
  Pending& p = pending_at(g, seq, kernel.now_ns());
  HCSIM_ASSERT(!p.handles[static_cast<std::size_t>(rank)] && !p.entered(rank));
  const CollectiveEntry entry{rank, call.op, collective_size(call), kernel.now_ns()};
  p.entries.push_back(entry);
  if (call.op == CollectiveOp::kSend) {
    p.sent.assign(call.payload.begin(), call.payload.end());
  } else {
    p.handles[static_cast<std::size_t>(rank)] = h;
    p.calls[static_cast<std::size_t>(rank)] = &call;
  }
  const CollectiveEntry& first = p.entries.front();
  if ((!p2p && first.op != entry.op) || first.size != entry.size) {
    p.mismatched = true;
    if (!mismatch_) {
      mismatch_ = MismatchPoint{call.group, seq, kernel.now_ns()};
      kernel.stop();  // the world decides what follows
    }
  }
  if (!p.mismatched && p.entries.size() == g.members.size()) {
    if (p2p) {
      complete_point_to_point(kernel, g, p);
    } else {
      complete(kernel, p);
    }
    close(g, seq);
    if (p2p && g.sends_waiter && sends_taken(g)) {
      kernel.schedule_at(kernel.now_ns() + cost_.latency_ns, g.sends_waiter, g.members.front());
      g.sends_waiter = {};
    }
  }
  return seq;
}

bool CollectiveMatcher::sends_taken(const GroupState& g) const {
  for (std::uint64_t s = g.oldest; s < g.newest_end; ++s) {  // bounded: the ring's span
    const Pending& p = g.slot(s);
    if (p.open && !p.entries.empty() && p.entries.front().op == CollectiveOp::kSend) return false;
  }
  return true;
}

bool CollectiveMatcher::wait_sends(int rank, Group channel, std::coroutine_handle<> h, std::uint64_t& seq) {
  HCSIM_ASSERT(point_to_point(channel.kind));
  GroupState& g = groups_[index_of(channel)];
  HCSIM_ASSERT(rank == g.members.front() && !g.sends_waiter);  // the sender, waiting once
  for (std::uint64_t s = g.oldest; s < g.newest_end; ++s) {  // bounded: the ring's span
    const Pending& p = g.slot(s);
    if (!p.open || p.entries.empty() || p.entries.front().op != CollectiveOp::kSend) continue;
    seq = s;
    g.sends_waiter = h;
    return false;
  }
  return true;
}

// The receiver takes the sender's copy; the sender went on when it sent.
void CollectiveMatcher::complete_point_to_point(Kernel& kernel, GroupState& g, Pending& p) {
  const int receiver = g.members.back();
  WorldCall& recv = *p.calls[static_cast<std::size_t>(receiver)];
  HCSIM_ASSERT(recv.op == CollectiveOp::kRecv && recv.payload.size() == p.sent.size());
  std::copy(p.sent.begin(), p.sent.end(), recv.payload.begin());
  kernel.schedule_at(kernel.now_ns() + cost_.duration_ns(CollectiveOp::kRecv, collective_size(recv)),
                     p.handles[static_cast<std::size_t>(receiver)], receiver);
  ++completed_;
}

void CollectiveMatcher::complete(Kernel& kernel, Pending& p) {
  // The members' calls, by rank: every member entered, so there are as many as entries.
  std::vector<WorldCall*>& member_calls = member_calls_;
  member_calls.clear();
  for (WorldCall* c : p.calls) {
    if (c != nullptr) member_calls.push_back(c);
  }
  HCSIM_ASSERT(member_calls.size() == p.entries.size() && !member_calls.empty());
  WorldCall& root = *member_calls.front();
  const std::size_t n = root.payload.size();
  switch (root.op) {
    case CollectiveOp::kAllReduceMin:
    case CollectiveOp::kAllReduceMax: {
      const bool is_min = root.op == CollectiveOp::kAllReduceMin;
      for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v = root.payload[i];
        for (WorldCall* c : member_calls) v = is_min ? std::min(v, c->payload[i]) : std::max(v, c->payload[i]);
        for (WorldCall* c : member_calls) c->payload[i] = v;
      }
      break;
    }
    case CollectiveOp::kBroadcast:  // from the group's lowest rank
      for (WorldCall* c : member_calls) std::copy(root.payload.begin(), root.payload.end(), c->payload.begin());
      break;
    case CollectiveOp::kForward:
    case CollectiveOp::kBarrier: break;
    case CollectiveOp::kSend:
    case CollectiveOp::kRecv: HCSIM_ASSERT(false);  // complete_point_to_point
  }
  const TimeNs cost = cost_.duration_ns(root.op, collective_size(root));
  for (std::size_t r = 0; r < p.handles.size(); ++r) {
    if (p.handles[r]) kernel.schedule_at(kernel.now_ns() + cost, p.handles[r], static_cast<int>(r));
  }
  ++completed_;
}

}  // namespace hcsim
