#include "backend/flight_recorder.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

namespace {
// Where a group's state lives: by kind, for the whole groups the GPU world has.
std::size_t slot_of(Group g) {
  HCSIM_ASSERT(g.index == Group::kWhole);
  return static_cast<std::size_t>(g.kind);
}
}  // namespace

FlightRecorder::FlightRecorder(int ranks, std::size_t kept_per_rank)
    : ranks_(ranks), kept_per_rank_(kept_per_rank), recent_(static_cast<std::size_t>(ranks)) {
  HCSIM_ASSERT(ranks > 0 && kept_per_rank > 0);
  for (auto& v : next_seq_) v.assign(static_cast<std::size_t>(ranks), 0);
}

std::uint64_t FlightRecorder::enter(int rank, Group group, CollectiveOp op, std::int64_t size, TimeNs now_ns) {
  HCSIM_ASSERT(rank >= 0 && rank < ranks_);
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t g = slot_of(group);
  const std::uint64_t seq = next_seq_[g][static_cast<std::size_t>(rank)]++;
  auto [it, fresh] = open_[g].try_emplace(seq);
  OpenCollective& c = it->second.collective;
  if (fresh) c.first_arrival_ns = now_ns;
  HCSIM_ASSERT(!c.entered(rank));
  c.entries.push_back({rank, op, size, now_ns});
  const CollectiveEntry& first = c.entries.front();
  if (first.op != op || first.size != size) {
    c.mismatched = true;
    if (!mismatch_) mismatch_ = MismatchPoint{group, seq, now_ns};
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
  auto& open = open_[slot_of(group)];
  auto it = open.find(seq);
  HCSIM_ASSERT(it != open.end() && it->second.collective.entered(rank));
  Open& o = it->second;
  o.exit_sum_ns += now_ns;
  if (++o.exited == ranks_) {
    const OpenCollective& c = o.collective;
    if (!c.mismatched && c.entries.front().op != CollectiveOp::kForward) {
      TimeNs last_entry_ns = 0;
      for (const CollectiveEntry& e : c.entries) last_entry_ns = std::max(last_entry_ns, e.at_ns);
      round_sum_ns_ += std::max<TimeNs>(0, o.exit_sum_ns / ranks_ - last_entry_ns);
      ++rounds_;
    }
    open.erase(it);
    ++completed_;
  }
}

std::uint64_t FlightRecorder::completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_;
}

TimeNs FlightRecorder::oldest_open_since_ns() const {
  std::lock_guard<std::mutex> lock(mu_);
  TimeNs oldest = -1;
  for (const auto& m : open_) {
    for (const auto& [seq, o] : m) {
      if (oldest < 0 || o.collective.first_arrival_ns < oldest) oldest = o.collective.first_arrival_ns;
    }
  }
  return oldest;
}

FlightRecorder::Snapshot FlightRecorder::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  Snapshot s;
  s.ranks = ranks_;
  for (std::size_t g = 0; g < open_.size(); ++g) {
    for (const auto& [seq, o] : open_[g]) s.open[g].emplace(seq, o.collective);
  }
  s.mismatch = mismatch_;
  for (const auto& ring : recent_) s.recent.emplace_back(ring.begin(), ring.end());
  s.completed = completed_;
  if (rounds_ > 0) s.mean_round_ns = round_sum_ns_ / static_cast<TimeNs>(rounds_);
  return s;
}

std::vector<int> FlightRecorder::Snapshot::members(Group g) const {
  slot_of(g);
  std::vector<int> out(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) out[static_cast<std::size_t>(r)] = r;
  return out;
}

const OpenCollective* FlightRecorder::Snapshot::oldest_open(Group g, std::uint64_t& seq) const {
  const auto& m = open[slot_of(g)];
  if (m.empty()) return nullptr;
  seq = m.begin()->first;
  return &m.begin()->second;
}

const OpenCollective* FlightRecorder::Snapshot::find_open(Group g, std::uint64_t seq) const {
  const auto& m = open[slot_of(g)];
  auto it = m.find(seq);
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace hcsim
