// FlightRecorder: every collective's and point-to-point transfer's entry and exit on every rank
// (communicator, sequence, op, size, time), as PyTorch's NCCL flight recorder keeps them, and what
// is still open. The watchdog reads a snapshot of it, which answers the same ledger questions as the
// simulator's matcher, so a GPU hang gets the simulator's diagnosis.
//
//   FlightRecorder fr(Topology{.tp = 2});
//   std::uint64_t seq = fr.enter(rank, Group::kTp, CollectiveOp::kForward, 2100, model_now, now);
//   ... fr.exit(rank, Group::kTp, seq, now);
//   auto snap = fr.snapshot();  mismatch_verdict(snap);
//
// Communicators are the topology's, resolved (tp_cpu_group@pp1, pp_proxy[0] pp0->pp1). On a
// channel, the sender's n-th send and the receiver's n-th receive are one transfer: the sender
// leaves at once (an isend), and the transfer closes when the receiver leaves. A send nobody waits
// on yet (no receive entered, its sender not in wait_sends) holds nobody up, as in the matcher.
//
// Two clocks: what diagnosis reads (an entry's time, which open collective is the oldest) is on
// the model's clock, which the thread world keeps, so a hang names the collective the simulator
// names even where real entries land microseconds apart; how long something has been open, for
// the watchdog, and the per-rank records are on the real clock.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "policy/topology.h"
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
  explicit FlightRecorder(Topology topology, std::size_t kept_per_rank = 4096);

  // Thread-safe. enter() gives the rank's next sequence number in `group`, a resolved communicator;
  // `model_ns` is the rank's model time, `now_ns` the real one.
  std::uint64_t enter(int rank, Group group, CollectiveOp op, std::int64_t size, TimeNs model_ns, TimeNs now_ns);
  void exit(int rank, Group group, std::uint64_t seq, TimeNs now_ns);
  // The sender of `channel` waits (or no longer waits) until its sends are received.
  void waiting_for_sends(Group channel, bool waiting, TimeNs now_ns);

  // A consistent copy for diagnosis, taken under the recorder's lock.
  class Snapshot final : public CollectiveLedger {
   public:
    const OpenCollective* oldest_open(Group g, std::uint64_t& seq) const override;
    const OpenCollective* find_open(Group g, std::uint64_t seq) const override;
    std::optional<MismatchPoint> first_mismatch() const override { return mismatch; }
    std::vector<Group> communicators() const override { return comms; }
    std::vector<int> members(Group g) const override;

    std::vector<Group> comms;                                     // the topology's communicators
    std::vector<std::vector<int>> comm_members;                   // by communicator
    std::vector<std::map<std::uint64_t, OpenCollective>> open;    // by communicator
    std::vector<char> sends_waited;                               // by communicator: its sender in wait_sends
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
    OpenCollective collective;   // on the model's clock
    TimeNs first_entry_ns = 0;   // real
    TimeNs last_entry_ns = 0;    // real
    int exited = 0;
    TimeNs exit_sum_ns = 0;      // real
  };
  struct Comm {
    Group group;
    std::vector<int> members;
    std::vector<std::uint64_t> next_seq;  // by rank
    std::map<std::uint64_t, Open> open;
    TimeNs sends_waited_since_ns = -1;    // a channel's sender in wait_sends since; -1: not
  };
  std::size_t index_of(Group g) const;
  // When (real) an open collective or transfer of `c` began to hold someone up; -1: not yet.
  static TimeNs waited_since_ns(const Comm& c, const Open& o);

  int ranks_;
  std::size_t kept_per_rank_;
  mutable std::mutex mu_;
  std::vector<Comm> comms_;
  std::optional<MismatchPoint> mismatch_;
  std::vector<std::deque<CollectiveRecord>> recent_;  // by rank, bounded by kept_per_rank
  std::uint64_t completed_ = 0;
  TimeNs round_sum_ns_ = 0;      // over completed policy collectives
  std::uint64_t rounds_ = 0;
};

}  // namespace hcsim
