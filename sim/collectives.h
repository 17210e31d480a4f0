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
#include <map>
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
  // Collectives some member has entered and some has not, per communicator, by sequence.
  const std::map<std::uint64_t, Pending>& pending(Group g) const { return groups_[index_of(g)].pending; }
  std::uint64_t next_seq(Group g, int rank) const;
  std::uint64_t completed() const { return completed_; }

 private:
  struct GroupState {
    std::vector<int> members;
    std::vector<std::uint64_t> next_seq;  // by rank; members only
    std::map<std::uint64_t, Pending> pending;
    // Completed collectives' map nodes, emptied, for the next ones: a run enters thousands and has
    // a few open at once, so their nodes and vectors are allocated once. At most kSpareNodesMax.
    std::vector<std::map<std::uint64_t, Pending>::node_type> spare;
    std::coroutine_handle<> sends_waiter;  // a channel's sender in wait_sends
  };
  static constexpr std::size_t kSpareNodesMax = 4;
  // The pending collective `seq` of `g`, added (from a spare node if there is one) if new.
  Pending& pending_at(GroupState& g, std::uint64_t seq, TimeNs now_ns);
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
  std::vector<std::size_t> comm_of_;    // by kind, then rank: index into comms_ and groups_
  std::vector<GroupState> groups_;      // by communicator index
  std::optional<MismatchPoint> mismatch_;
  std::uint64_t completed_ = 0;
};

}  // namespace hcsim
