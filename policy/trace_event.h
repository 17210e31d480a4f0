// The one event schema both worlds emit: what happened, when, on which rank and actor, for which
// request, with up to three integer fields whose names depend on the kind.
//
//   t=10.700ms rank 1 scheduler commit req=0 prefix_tokens=2048 matched_tokens=0 sidecar_attached=0
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace hcsim {

using TimeNs = std::int64_t;
using RequestId = std::int32_t;
inline constexpr RequestId kNoRequest = -1;

enum class ActorKind : std::uint8_t { kScheduler, kPrefetch, kIo, kBackup, kWorld };
inline constexpr int kActorKindCount = 5;
std::string_view actor_name(ActorKind a);

enum class EventKind : std::uint8_t {
  kArrive,             // request entered the waiting queue
  kRegister,           // prefetch operation created
  kRegisterSkip,       // prefetch not registered (threshold, rate limit, allocation)
  kHitQuery,           // prefetch thread: local and group-MIN hit
  kRevoke,             // hit below threshold, operation revoked
  kKvBatchDone,        // IO thread: one KV batch read
  kSidecarDone,        // IO thread: sidecar read returned
  kTransferEnd,        // IO thread: op finished (pool_transfers_done set)
  kTerminateVote,      // scheduler: local can/terminated and the group MAX
  kTerminate,          // scheduler: operation terminated, local and group-MIN completed tokens
  kCommit,             // scheduler: host tree insert and sidecar commit
  kMatch,              // scheduler: match_prefix after the commit
  kSchedule,           // scheduler: request added to the batch
  kForward,            // scheduler: batch forward entered
  kBatchFull,          // scheduler: the admission walk stopped here, budget left
  kOpEnd,              // scheduler: the operation's terminal state on this rank
  kAbort,              // scheduler: a client abort reached the request
  kWriteBackup,        // scheduler: a write-through backup of a request's new pages, or its failure
  kWriteAcked,         // scheduler: writing_check drained a backup's ack into the host tree
  kBackupDone,         // backup thread: host pages written to L3
  kSlotViolation,      // host slot written or freed by an actor that does not own it
  kCollectiveEnter,    // world: an actor entered a collective
  kStorageCall,        // world: an L3 call started, with how long it takes and what it returns
  kHostEvict,          // scheduler: evict_host freed host tree pages and Mamba states
  kRegisterShrink,     // scheduler: host memory short, the prefetch shrunk to the free pages (#26945)
  kHitLost,            // scheduler: less published than the group agreed to prefetch, and why
  kLoadAcked,          // scheduler: loading_check took a load-back's ack, unlocking its node
};
inline constexpr int kEventKindCount = 27;
// kStorageCall's duration field for a call that never returns, and for one that raises.
inline constexpr std::int64_t kStorageNever = -1;
inline constexpr std::int64_t kStorageRaises = -2;
std::string_view event_name(EventKind k);
// Names of the fields a, b, c for a kind; an empty name means the field is unused.
const std::array<std::string_view, 3>& event_field_names(EventKind k);

struct TraceEvent {
  TimeNs time_ns = 0;
  std::int16_t rank = 0;
  ActorKind actor = ActorKind::kWorld;
  EventKind kind = EventKind::kArrive;
  RequestId request = kNoRequest;
  std::int64_t a = 0, b = 0, c = 0;

  bool operator==(const TraceEvent&) const = default;
};

}  // namespace hcsim
