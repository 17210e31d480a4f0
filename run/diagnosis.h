// What a hang verdict says: the kind, when, which collective (group, sequence, who entered with
// what, who never came), and what every actor was doing. Built by the hang detector from actors,
// collectives and time alone.
//
//   hang: collective mismatch at t=11.034ms on tp_cpu_group seq 27
//     rank 0 entered forward(52)      at 11.014ms
//     rank 1 entered forward(2100)    at 11.014ms
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/runtime.h"

namespace hcsim {

// How a run failed. A crash is not a hang: the CPU transport (Gloo) checks a collective's payload
// length and aborts the process when ranks disagree on it, where a hang waits forever.
enum class HangKind : std::uint8_t { kNone, kDeadlock, kCollectiveMismatch, kStarvation, kLostWorker, kCrash };
std::string_view hang_kind_name(HangKind k);  // "none", "deadlock", "collective_mismatch", ..., "crash"
std::optional<HangKind> hang_kind_by_name(std::string_view name);

enum class WaitKind : std::uint8_t { kRunnable, kSleep, kSignal, kCollective, kStorage, kFinished, kDied };

struct ActorState {
  int rank = 0;
  ActorKind actor = ActorKind::kScheduler;
  int index = 0;  // among the rank's actors of this kind (IO workers)
  WaitKind wait = WaitKind::kRunnable;
  TimeNs since_ns = 0;
  Group group = Group::kTp;  // kCollective
  CollectiveOp op = CollectiveOp::kAllReduceMin;
  std::int64_t size = 0;
  std::uint64_t seq = 0;
  std::string signal_name;           // kSignal
  ActorKind producer = ActorKind::kScheduler;
  StorageOp storage_op = StorageOp::kHitQuery;  // kStorage
  RequestId request = kNoRequest;
  bool never_completes = false;
  TimeNs due_ns = 0;
  std::string error;                 // kDied
};
std::string describe_wait(const ActorState& a);
// What an actor blocked in `call` waits on, as both worlds describe it. `signal_name` and
// `producer` are the signal's (kWait); `never_completes` and `due_ns` the storage call's.
void describe_blocked_call(ActorState& s, const WorldCall& call, std::uint64_t seq, const std::string& signal_name,
                           ActorKind producer, bool never_completes, TimeNs due_ns);
// An actor whose coroutine returned: finished, or died of `error`.
void describe_ended(ActorState& s, const std::exception_ptr& error);
std::string actor_label(const ActorState& a);  // "rank 1 io", "rank 1 io 2"
std::string actor_label(int rank, ActorKind kind, int index);

struct CollectiveEntry {
  int rank = 0;
  CollectiveOp op = CollectiveOp::kAllReduceMin;
  std::int64_t size = 0;
  TimeNs at_ns = 0;
};

// A collective some members entered and not all have left.
struct OpenCollective {
  std::vector<CollectiveEntry> entries;  // in arrival order, one per rank at most
  TimeNs first_arrival_ns = 0;
  bool mismatched = false;               // members entered different (op, size): never completes
  bool entered(int rank) const {
    for (const CollectiveEntry& e : entries) {
      if (e.rank == rank) return true;
    }
    return false;
  }
};

struct MismatchPoint {
  Group group = Group::kTp;
  std::uint64_t seq = 0;
  TimeNs at_ns = 0;
};

// What diagnosis needs of a world's collectives: the simulator's matcher and the GPU backend's
// flight recorder both answer it, so both build the same verdict and wait-for graph.
class CollectiveLedger {
 public:
  virtual ~CollectiveLedger() = default;
  // The open collective of `g` with the lowest sequence (its sequence in `seq`), or null. A
  // pointer this returns stays valid until the collectives change.
  virtual const OpenCollective* oldest_open(Group g, std::uint64_t& seq) const = 0;
  virtual const OpenCollective* find_open(Group g, std::uint64_t seq) const = 0;
  // Where members first entered different collectives at one sequence, if they have.
  virtual std::optional<MismatchPoint> first_mismatch() const = 0;
  // Every communicator, and the ranks of one.
  virtual std::vector<Group> communicators() const = 0;
  virtual std::vector<int> members(Group g) const = 0;
};

struct Verdict {
  HangKind kind = HangKind::kNone;
  TimeNs at_ns = 0;
  std::string headline;
  bool has_collective = false;
  Group group = Group::kTp;
  std::uint64_t seq = 0;
  std::vector<CollectiveEntry> entered;
  std::vector<int> missing_ranks;
  RequestId request = kNoRequest;     // starvation: the request owed a schedule
  std::vector<int> ranks_pending;
  std::vector<ActorState> actors;
  bool hang() const { return kind != HangKind::kNone; }
};
// How reports word a verdict: "complete", "HANG collective_mismatch" or "CRASH".
std::string verdict_word(const Verdict& v);

}  // namespace hcsim
