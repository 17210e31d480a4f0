// CollectiveMatcher: matches the collectives of each communicator by per-rank sequence number. A
// call completes when every member of its communicator (policy/topology.h) has entered the same
// (sequence, op, size); entering a sequence with a different op or size is a mismatch, reported at
// once. A forward's size is the token count it carries; a forward also costs compute time.
// A point-to-point channel is a communicator of two: the sender's n-th send and the receiver's n-th
// receive are one sequence. A send returns at once and leaves a copy of its payload; a receive
// waits for it; a length that differs is a mismatch; wait_sends waits until every send was taken.
//
//   rank 0: seq 5 all_reduce(MAX) size 2 ; rank 1: seq 5 forward size 2100  -> mismatch
//   rank 0: seq 3 send size 3013 on pp_proxy[0] pp0->pp1 ; rank 2: seq 3 recv size 2048  -> mismatch
#pragma once

#include <coroutine>
#include <cstdint>
#include <optional>
#include <vector>

#include "policy/assert.h"
#include "policy/runtime.h"
#include "policy/topology.h"
#include "run/diagnosis.h"
#include "run/world_config.h"
#include "sim/kernel.h"

namespace hcsim {

class CollectiveMatcher final : public CollectiveLedger {
 public:
  CollectiveMatcher(Topology topology, CollectiveCost cost);

  struct Pending : OpenCollective {
    std::vector<std::coroutine_handle<>> handles;   // by rank; null until entered (and for a send)
    std::vector<WorldCall*> calls;                  // by rank; null for a send, which has returned
    std::vector<std::int64_t> sent;                 // a send's payload, copied
    bool open = false;                              // some member entered, and it has not completed
  };

  // The communicator `rank` enters when policy code names the kind `g`.
  Group resolve(Group g, int rank) const { return point_to_point(g.kind) ? g : comms_[comm_index(g.kind, rank)]; }
  // Enters `call`, whose group is resolved, for `rank`, returning the sequence number it got.
  // Completes the collective when the last member enters; a conflicting entry marks the sequence
  // mismatched (it never completes) and records the first such point. A send does not keep `h`:
  // its caller goes on at once.
  std::uint64_t enter(Kernel& kernel, int rank, WorldCall& call, std::coroutine_handle<> h);
  // wait_sends: true if every send `rank` made on `channel` was received; else parks `h` until it
  // is and sets `seq` to the oldest send not yet received.
  bool wait_sends(int rank, Group channel, std::coroutine_handle<> h, std::uint64_t& seq);

  const std::optional<MismatchPoint>& mismatch() const { return mismatch_; }
  // The oldest collective of `g` some member waits in: on a channel, a send whose receiver has
  // entered or whose sender waits for it.
  const OpenCollective* oldest_open(Group g, std::uint64_t& seq) const override;
  const OpenCollective* find_open(Group g, std::uint64_t seq) const override;
  std::optional<MismatchPoint> first_mismatch() const override { return mismatch_; }
  std::vector<Group> communicators() const override { return comms_; }
  std::vector<int> members(Group g) const override { return groups_[index_of(g)].members; }
  // Collectives of `g` some member has entered and that have not completed (a mismatched one never
  // does), and the one of them at `seq` (null if none). A pointer is valid until the next enter.
  std::size_t open_count(Group g) const;
  const Pending* pending(Group g, std::uint64_t seq) const { return groups_[index_of(g)].open_at(seq); }
  std::uint64_t next_seq(Group g, int rank) const;
  std::uint64_t completed() const { return completed_; }

 private:
  // A communicator's collectives from its oldest open one to its newest, in a ring indexed by
  // sequence. Members enter sequences in order, so a new one is always the next past the newest,
  // and a run that enters thousands has a few open at once: the ring's slots and their vectors
  // are allocated once and reused. An open collective holds the oldest in place until it
  // completes; a mismatched one never does, nor does a channel's send nobody receives, and the
  // ring grows past them.
  struct GroupState {
    std::vector<int> members;
    std::vector<std::uint64_t> next_seq;  // by rank; members only
    std::vector<Pending> ring;            // slot of sequence s: s & (ring.size() - 1); a power of two
    std::uint64_t oldest = 0;             // no sequence before it is open
    std::uint64_t newest_end = 0;         // one past the newest sequence entered
    std::coroutine_handle<> sends_waiter;  // a channel's sender in wait_sends

    Pending& slot(std::uint64_t seq) { return ring[seq & (ring.size() - 1)]; }
    const Pending& slot(std::uint64_t seq) const { return ring[seq & (ring.size() - 1)]; }
    const Pending* open_at(std::uint64_t seq) const {
      if (seq < oldest || seq >= newest_end || !slot(seq).open) return nullptr;
      return &slot(seq);
    }
  };
  static constexpr std::size_t kRingSlotsFirst = 4;
  // The open collective `seq` of `g`, begun (the ring doubled if full) if it is the next one.
  Pending& pending_at(GroupState& g, std::uint64_t seq, TimeNs now_ns);
  // Marks `seq` of `g` completed and moves the oldest past what completed.
  static void close(GroupState& g, std::uint64_t seq);
  void complete(Kernel& kernel, Pending& p);
  void complete_point_to_point(Kernel& kernel, GroupState& g, Pending& p);
  bool sends_taken(const GroupState& g) const;
  static constexpr std::size_t kNoComm = SIZE_MAX;
  std::size_t comm_index(GroupKind kind, int rank) const {
    const std::size_t i = comm_of_[static_cast<std::size_t>(kind) * static_cast<std::size_t>(ranks_) + static_cast<std::size_t>(rank)];
    HCSIM_ASSERT(i != kNoComm);  // a kind this topology has no group of (a stage-spanning kind with one stage)
    return i;
  }
  std::size_t index_of(Group g) const;

  int ranks_;
  CollectiveCost cost_;
  std::vector<Group> comms_;            // every communicator, by index
  // index_of's table, by a communicator's event code (one to one): open addressing, at most half
  // full. The hang check asks for every communicator's oldest open collective each period.
  struct CommSlot {
    std::uint64_t code = 0;
    std::size_t index = kNoComm;  // kNoComm: empty
  };
  static std::size_t table_home(std::uint64_t code, std::size_t mask) {
    return static_cast<std::size_t>((code * 0x9e3779b97f4a7c15ULL) >> 32) & mask;
  }
  std::vector<CommSlot> comm_table_;
  std::vector<std::size_t> comm_of_;    // by kind, then rank: index into comms_ and groups_
  std::vector<GroupState> groups_;      // by communicator index
  std::vector<WorldCall*> member_calls_;  // complete's scratch: a collective's calls, by rank
  std::optional<MismatchPoint> mismatch_;
  std::uint64_t completed_ = 0;
};

}  // namespace hcsim
