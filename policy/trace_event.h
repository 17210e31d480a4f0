// The one event schema both worlds emit: what happened, when, on which rank and actor, for which
// request, with up to three integer fields whose names depend on the kind.
//
//   t=10.700ms rank 1 scheduler commit req=0 prefix_tokens=2048 matched_tokens=0 sidecar_attached=0
#pragma once

#include <array>
#include <cstdint>
#include <iterator>
#include <string_view>

#include "policy/assert.h"

namespace hcsim {

using TimeNs = std::int64_t;
using RequestId = std::int32_t;
inline constexpr RequestId kNoRequest = -1;

// kSync: the acknowledgement design's prefetch sync thread (#27010); after kWorld so that the codes
// of earlier traces stand.
enum class ActorKind : std::uint8_t { kScheduler, kPrefetch, kIo, kBackup, kWorld, kSync };
inline constexpr int kActorKindCount = 6;
std::string_view actor_name(ActorKind a);

enum class EventKind : std::uint8_t {
  kArrive,             // request entered the waiting queue
  kRegister,           // prefetch operation created
  kRegisterSkip,       // prefetch not registered (threshold, rate limit, allocation)
  kHitQuery,           // prefetch thread: local and group-MIN hit
  kRevoke,             // operation revoked: hit below the threshold, or no host memory for it (hit-then-alloc)
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
  kLoadBackFailed,     // scheduler: too little free device memory for a host hit: loaded none of it
  kIndexerGap,         // scheduler: KV pages published whose derived sidecar objects were not read (garbled output)
};
inline constexpr int kEventKindCount = 29;
// kStorageCall's duration field for a call that never returns, and for one that raises.
inline constexpr std::int64_t kStorageNever = -1;
inline constexpr std::int64_t kStorageRaises = -2;
std::string_view event_name(EventKind k);
// Names of the fields a, b, c for a kind, from the table below; an empty name means the field is unused.
const std::array<std::string_view, 3>& event_field_names(EventKind k);

// The one table of event kinds and their fields, in EventKind order: the kind (without its k), its
// trace name, then the names of the fields a, b and c (unused_b / unused_c: the kind leaves it 0).
// The trace format (docs/trace-format.md) writes these names in this order; the views below and
// event_name() / event_field_names() are generated from it.
#define HCSIM_EVENT_KINDS(X)                                                       \
  X(Arrive, arrive, input_tokens, unused_b, unused_c)                              \
  X(Register, register, prefetch_tokens, op, sidecar_slot)                         \
  X(RegisterSkip, register_skip, prefetch_tokens, reason, unused_c)                \
  X(HitQuery, hit_query, local_hit_tokens, group_min_hit_tokens, op)               \
  X(Revoke, revoke, hit_tokens, op, unused_c)                                      \
  X(KvBatchDone, kv_batch_done, pages_read, completed_tokens, op)                  \
  X(SidecarDone, sidecar_done, hit_pages, slot, op)                                \
  X(TransferEnd, transfer_end, completed_tokens, op, unused_c)                     \
  X(TerminateVote, terminate_vote, can_terminate, terminated, group_decision)      \
  X(Terminate, terminate, completed_tokens, group_min_tokens, op)                  \
  X(Commit, commit, prefix_tokens, matched_tokens, sidecar_attached)               \
  X(Match, match, device_tokens, host_hit_tokens, extend_tokens)                   \
  X(Schedule, schedule, extend_tokens, storage_hit_tokens, host_hit_tokens)        \
  X(Forward, forward, batch_tokens, batch_requests, unused_c)                      \
  X(BatchFull, batch_full, budget_tokens_left, batch_requests, unused_c)           \
  X(OpEnd, op_end, state, completed_tokens, op)                                    \
  X(Abort, abort, was_waiting, had_prefetch, unused_c)                             \
  X(WriteBackup, write_backup, pages, committed, write)                            \
  X(WriteAcked, write_acked, pages, matched_pages, write)                          \
  X(BackupDone, backup_done, pages, pages_written, backup)                         \
  X(SlotViolation, slot_violation, slot, pool, owner)                              \
  X(CollectiveEnter, collective_enter, group, sequence, payload_size)              \
  X(StorageCall, storage_call, op, duration_ns, result)                            \
  X(HostEvict, host_evict, pages, sidecars, pages_needed)                          \
  X(RegisterShrink, register_shrink, requested_tokens, granted_tokens, free_pages) \
  X(HitLost, hit_lost, agreed_tokens, published_tokens, cause)                     \
  X(LoadAcked, load_acked, node, acks_left, unused_c)                              \
  X(LoadBackFailed, load_back_failed, host_hit_tokens, device_free_tokens, unused_c)      \
  X(IndexerGap, indexer_gap, pages, published_pages, op)

struct TraceEvent {
  TimeNs time_ns = 0;
  std::int16_t rank = 0;
  ActorKind actor = ActorKind::kWorld;
  EventKind kind = EventKind::kArrive;
  RequestId request = kNoRequest;
  // Read by name through the kind's view (schedule_fields(e).storage_hit_tokens); by position only
  // where all three are treated alike (the trace writer and reader, the digest).
  std::int64_t a = 0, b = 0, c = 0;

  bool operator==(const TraceEvent&) const = default;
};

// A typed view of one kind's fields, by name: ScheduleFields{extend_tokens, storage_hit_tokens,
// host_hit_tokens}, read with schedule_fields(e), which asserts e's kind. A writer builds one with
// designated initializers (order checked by the compiler) and emits it with Runtime::emit.
#define HCSIM_EVENT_VIEW(Kind, trace_name, field_a, field_b, field_c) \
  struct Kind##Fields {                                               \
    static constexpr EventKind kKind = EventKind::k##Kind;            \
    std::int64_t field_a = 0, field_b = 0, field_c = 0;               \
  };                                                                  \
  inline Kind##Fields trace_name##_fields(const TraceEvent& e) {      \
    HCSIM_ASSERT(e.kind == EventKind::k##Kind);                       \
    return {e.a, e.b, e.c};                                           \
  }
HCSIM_EVENT_KINDS(HCSIM_EVENT_VIEW)
#undef HCSIM_EVENT_VIEW

// Overwrites an event's fields with a view of its kind (a test editing a trace).
template <class Fields>
void set_fields(TraceEvent& e, const Fields& fields) {
  HCSIM_ASSERT(e.kind == Fields::kKind);
  const auto& [a, b, c] = fields;
  e.a = a;
  e.b = b;
  e.c = c;
}

// The table lists every kind once, in EventKind order.
static_assert([] {
#define HCSIM_EVENT_KIND_ENUMERATOR(Kind, trace_name, field_a, field_b, field_c) EventKind::k##Kind,
  constexpr EventKind table_order[] = {HCSIM_EVENT_KINDS(HCSIM_EVENT_KIND_ENUMERATOR)};
#undef HCSIM_EVENT_KIND_ENUMERATOR
  if (std::size(table_order) != kEventKindCount) return false;
  for (int i = 0; i < kEventKindCount; ++i) {
    if (table_order[i] != static_cast<EventKind>(i)) return false;
  }
  return true;
}());

}  // namespace hcsim
