// FlightRecorder: every collective's entry and exit on every rank (group, sequence, op, size,
// time), as PyTorch's NCCL flight recorder keeps them, and the collectives still open. The
// watchdog reads a snapshot of it, which answers the same ledger questions as the simulator's
// matcher, so a GPU hang gets the simulator's diagnosis.
//
//   std::uint64_t seq = fr.enter(rank, Group::kTp, CollectiveOp::kForward, 2100, now);
//   ... fr.exit(rank, Group::kTp, seq, now);
//   auto snap = fr.snapshot();  mismatch_verdict(snap);
//
// The GPU world runs each group kind as one group spanning every rank (no DP attention or
// attention CP), so a group is recorded by its kind.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "run/diagnosis.h"

namespace hcsim {

struct CollectiveRecord {
  int rank = 0;
  Group group = Group::kTp;
  std::uint64_t seq = 0;
  CollectiveOp op = CollectiveOp::kAllReduceMin;
  std::int64_t size = 0;
  TimeNs enter_ns = 0;
  TimeNs exit_ns = -1;  // -1: not left
};

class FlightRecorder {
 public:
  explicit FlightRecorder(int ranks, std::size_t kept_per_rank = 4096);

  // Thread-safe. enter() gives the rank's next sequence number in `group`.
  std::uint64_t enter(int rank, Group group, CollectiveOp op, std::int64_t size, TimeNs now_ns);
  void exit(int rank, Group group, std::uint64_t seq, TimeNs now_ns);

  // A consistent copy for diagnosis, taken under the recorder's lock.
  class Snapshot final : public CollectiveLedger {
   public:
    const OpenCollective* oldest_open(Group g, std::uint64_t& seq) const override;
    const OpenCollective* find_open(Group g, std::uint64_t seq) const override;
    std::optional<MismatchPoint> first_mismatch() const override { return mismatch; }
    std::vector<Group> communicators() const override { return {Group::kTp, Group::kPrefetchTp, Group{GroupKind::kSyncTp}}; }
    std::vector<int> members(Group g) const override;

    int ranks = 0;
    std::array<std::map<std::uint64_t, OpenCollective>, kGroupKindCount> open;  // by kind
    std::optional<MismatchPoint> mismatch;
    std::vector<std::vector<CollectiveRecord>> recent;  // by rank, oldest first
    std::uint64_t completed = 0;
    // The mean cost of one policy collective (not a forward): from the last member's entry to the
    // members' mean exit, as the simulator's collective latency models it. -1: none completed.
    TimeNs mean_round_ns = -1;
  };
  Snapshot snapshot() const;

  std::uint64_t completed() const;
  // When the oldest collective still open was first entered, or -1 if none is open.
  TimeNs oldest_open_since_ns() const;

 private:
  struct Open {
    OpenCollective collective;
    int exited = 0;
    TimeNs exit_sum_ns = 0;
  };
  int ranks_;
  std::size_t kept_per_rank_;
  mutable std::mutex mu_;
  std::array<std::vector<std::uint64_t>, kGroupKindCount> next_seq_;  // by kind, by rank
  std::array<std::map<std::uint64_t, Open>, kGroupKindCount> open_;
  std::optional<MismatchPoint> mismatch_;
  std::vector<std::deque<CollectiveRecord>> recent_;  // by rank, bounded by kept_per_rank
  std::uint64_t completed_ = 0;
  TimeNs round_sum_ns_ = 0;      // over completed policy collectives
  std::uint64_t rounds_ = 0;
};

}  // namespace hcsim
