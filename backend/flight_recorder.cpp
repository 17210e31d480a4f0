#include "backend/flight_recorder.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

namespace {

// A send alone on a channel: deposited, and nobody has entered the receive.
bool lone_send(const OpenCollective& o) { return o.entries.size() == 1 && o.entries.front().op == CollectiveOp::kSend; }

}  // namespace

FlightRecorder::FlightRecorder(Topology topology, std::size_t kept_per_rank)
    : ranks_(topology.ranks()), kept_per_rank_(kept_per_rank), recent_(static_cast<std::size_t>(topology.ranks())) {
  HCSIM_ASSERT(ranks_ > 0 && kept_per_rank > 0 && topology.problem().empty());
  for (const Group g : topology.communicators()) {
    Comm& c = comms_.emplace_back();
    c.group = g;
    c.members = topology.members(g);
    c.next_seq.assign(static_cast<std::size_t>(ranks_), 0);
  }
}

std::size_t FlightRecorder::index_of(Group g) const {
  for (std::size_t i = 0; i < comms_.size(); ++i) {
    if (comms_[i].group == g) return i;
  }
  HCSIM_ASSERT(false);  // a resolved communicator of the topology
  return 0;
}

TimeNs FlightRecorder::waited_since_ns(const Comm& c, const Open& o) {
  if (!point_to_point(c.group.kind)) return o.first_entry_ns;
  if (!lone_send(o.collective)) return o.last_entry_ns;  // since the receive entered
  return c.sends_waited_since_ns;
}

std::uint64_t FlightRecorder::enter(int rank, Group group, CollectiveOp op, std::int64_t size, TimeNs model_ns, TimeNs now_ns) {
  HCSIM_ASSERT(rank >= 0 && rank < ranks_);
  std::lock_guard<std::mutex> lock(mu_);
  Comm& comm = comms_[index_of(group)];
  const bool p2p = point_to_point(group.kind);
  HCSIM_ASSERT(std::find(comm.members.begin(), comm.members.end(), rank) != comm.members.end());
  HCSIM_ASSERT(!p2p || (op == CollectiveOp::kSend) == (rank == comm.members.front()));  // the sender sends
  const std::uint64_t seq = comm.next_seq[static_cast<std::size_t>(rank)]++;
  auto [it, fresh] = comm.open.try_emplace(seq);
  Open& o = it->second;
  OpenCollective& c = o.collective;
  if (fresh) {
    c.first_arrival_ns = model_ns;
    o.first_entry_ns = now_ns;
  }
  HCSIM_ASSERT(!c.entered(rank));
  c.first_arrival_ns = std::min(c.first_arrival_ns, model_ns);
  o.last_entry_ns = now_ns;
  c.entries.push_back({rank, op, size, model_ns});
  const CollectiveEntry& first = c.entries.front();
  if ((!p2p && first.op != op) || first.size != size) {
    c.mismatched = true;
    if (!mismatch_) {
      // When the differing members had all entered, on the model's clock, as the matcher sees it.
      TimeNs at_ns = 0;
      for (const CollectiveEntry& e : c.entries) at_ns = std::max(at_ns, e.at_ns);
      mismatch_ = MismatchPoint{group, seq, at_ns};
    }
  }
  auto& ring = recent_[static_cast<std::size_t>(rank)];
  if (ring.size() == kept_per_rank_) ring.pop_front();
  ring.push_back({rank, group, seq, op, size, now_ns, -1});
  return seq;
}

void FlightRecorder::exit(int rank, Group group, std::uint64_t seq, TimeNs now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& ring = recent_[static_cast<std::size_t>(rank)];
  for (auto it = ring.rbegin(); it != ring.rend(); ++it) {
    if (it->group == group && it->seq == seq) {
      it->exit_ns = now_ns;
      break;
    }
  }
  Comm& comm = comms_[index_of(group)];
  auto it = comm.open.find(seq);
  HCSIM_ASSERT(it != comm.open.end() && it->second.collective.entered(rank));
  Open& o = it->second;
  o.exit_sum_ns += now_ns;
  const int members = static_cast<int>(comm.members.size());
  if (++o.exited == members) {
    const OpenCollective& c = o.collective;
    const CollectiveOp op = c.entries.front().op;
    if (!c.mismatched && op != CollectiveOp::kForward && op != CollectiveOp::kSend && op != CollectiveOp::kRecv) {
      round_sum_ns_ += std::max<TimeNs>(0, o.exit_sum_ns / members - o.last_entry_ns);
      ++rounds_;
    }
    comm.open.erase(it);
    ++completed_;
  }
}

void FlightRecorder::waiting_for_sends(Group channel, bool waiting, TimeNs now_ns) {
  HCSIM_ASSERT(point_to_point(channel.kind));
  std::lock_guard<std::mutex> lock(mu_);
  comms_[index_of(channel)].sends_waited_since_ns = waiting ? now_ns : -1;
}

std::uint64_t FlightRecorder::completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_;
}

TimeNs FlightRecorder::oldest_open_since_ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  TimeNs oldest = -1;
  for (const Comm& c : comms_) {
    for (const auto& [seq, o] : c.open) {
      const TimeNs since = waited_since_ns(c, o);
      if (since >= 0 && (oldest < 0 || since < oldest)) oldest = since;
    }
  }
  return oldest;
}

FlightRecorder::Snapshot FlightRecorder::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  Snapshot s;
  for (const Comm& c : comms_) {
    s.comms.push_back(c.group);
    s.comm_members.push_back(c.members);
    auto& open = s.open.emplace_back();
    for (const auto& [seq, o] : c.open) open.emplace(seq, o.collective);
    s.sends_waited.push_back(c.sends_waited_since_ns >= 0 ? 1 : 0);
  }
  s.mismatch = mismatch_;
  for (const auto& ring : recent_) s.recent.emplace_back(ring.begin(), ring.end());
  s.completed = completed_;
  if (rounds_ > 0) s.mean_round_ns = round_sum_ns_ / static_cast<TimeNs>(rounds_);
  return s;
}

namespace {

std::size_t snapshot_index(const std::vector<Group>& comms, Group g) {
  const auto it = std::find(comms.begin(), comms.end(), g);
  HCSIM_ASSERT(it != comms.end());  // a communicator of the recorded topology
  return static_cast<std::size_t>(it - comms.begin());
}

}  // namespace

std::vector<int> FlightRecorder::Snapshot::members(Group g) const { return comm_members[snapshot_index(comms, g)]; }

const OpenCollective* FlightRecorder::Snapshot::oldest_open(Group g, std::uint64_t& seq) const {
  const std::size_t i = snapshot_index(comms, g);
  for (const auto& [s, o] : open[i]) {
    if (point_to_point(g.kind) && lone_send(o) && sends_waited[i] == 0) continue;  // holds nobody up
    seq = s;
    return &o;
  }
  return nullptr;
}

const OpenCollective* FlightRecorder::Snapshot::find_open(Group g, std::uint64_t seq) const {
  const auto& m = open[snapshot_index(comms, g)];
  auto it = m.find(seq);
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace hcsim
