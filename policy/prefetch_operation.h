// PrefetchOperation: upstream's per-request, per-rank prefetch state (domain doc section 2).
//
// Shared by the scheduler, the prefetch thread and the IO thread of one rank, as the Python object
// is upstream. `increment` is refused once terminated, as upstream's locked increment is.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "policy/runtime.h"
#include "policy/sidecar_stack.h"

namespace hcsim {

// How an operation ended, on one rank; each operation ends exactly once (an invariant).
enum class OpEnd : std::uint8_t { kCompleted, kTerminated, kRevoked, kAborted, kFailed };
std::string_view op_end_name(OpEnd e);

// Why the group decided to end an operation (the outcome of its termination vote).
enum class TerminateReason : std::uint8_t {
  kAllCan,         // every rank could terminate: complete, or (timeout) out of time
  kAnyTerminated,  // some rank had it terminated: a read of its came back short
  kBestEffort,     // best_effort ends it at the first check, without a vote
};
// Why less was published than the group agreed to prefetch (hit_lost's `cause`).
enum class HitLossCause : std::uint8_t {
  kShortRead,        // a rank's read came back short or raised, which terminates it on every rank
  kTimedOut,         // the timeout policy ended it before every page arrived
  kBestEffort,       // best_effort ended it before every page arrived
  kSidecarNotLoaded, // KV published, but without its Mamba state the prefix does not match
  kEndedBeforeHit,   // the scheduler ended it before the group agreed on its hit (best_effort, timeout)
  kDiscarded,        // every KV page read, but a sidecar key missed on some rank: discarded whole (#31443)
  kIndexerClamped,   // DSA: cut to the pages whose indexer objects every rank read (#31443's clamp)
};
std::string_view hit_loss_cause_name(HitLossCause c);

struct PrefetchOperation {
  std::int32_t id = 0;
  RequestId request_id = kNoRequest;
  std::vector<std::int32_t> host_indices;  // host KV slots, one per page; shrunk to the hit
  bool host_allocated = false;             // host_indices is not None: at registration, or (hit-then-alloc) the hit drain
  std::vector<PageKey> token_pages;        // the page-aligned key to look up
  std::vector<PageKey> hash_value;         // the hit prefix, set by the prefetch thread
  std::int64_t completed_tokens = 0;       // KV tokens read into host memory, page multiples
  bool terminated = false;
  TimeNs start_time_ns = 0;                // on this rank
  // One entry per sidecar pool taking part ("pool_transfers"), in stack order (sidecar_stack.h).
  struct PoolTransfer {
    std::size_t tag = 0;               // the pool's index in the family's stack
    std::int64_t keys = -1;            // len(transfer.keys); -1: None, as a derived pool's until its read ran
    std::int64_t hit_pages = 0;        // pool_storage_result.extra_pool_hit_pages (V-B: sum of successes)
    std::vector<std::uint8_t> read;    // which of its keys' objects the read returned
  };
  std::vector<PoolTransfer> pool_transfers;
  // The own pool's host slots, one per trailing page it reads (Mamba: one state slot; SWA: the
  // window buffer, one slot per page, shrunk by _sync_trailing_keys).
  std::vector<std::int32_t> sidecar_slots;
  bool pool_transfers_done = true;         // upstream: not bool(pool_transfers)
  // Bookkeeping of this model, not upstream fields:
  bool failed = false;        // a KV read came back short while the operation was live
  bool io_released = false;   // the IO thread is done with it (or it never reached IO: revoked)
  bool ended = false;         // the scheduler gave it its terminal state
  OpEnd end = OpEnd::kCompleted;  // which, once ended
  bool io_frees_sidecar = false;  // sidecar-release-by-io: the IO thread frees the slot when done
  // ack-design (#27010): the KV tokens this rank's IO thread read; completed_tokens is then the
  // group's MIN of them, as the scheduler drained it from the acks.
  std::int64_t io_completed_tokens = 0;

  std::int32_t first_sidecar_slot() const { return sidecar_slots.empty() ? -1 : sidecar_slots.front(); }
  bool has_pool_transfers() const { return !pool_transfers.empty(); }

  bool increment(std::int64_t tokens) {
    if (terminated) return false;
    completed_tokens += tokens;
    return true;
  }
  void mark_terminate() { terminated = true; }
};

using PrefetchOperationPtr = std::shared_ptr<PrefetchOperation>;

// ack-design (#27010): what the IO thread reports of an operation, in order: one progress ack per
// KV batch (cumulative tokens), one pool-hits ack if it has pool transfers, then completion. Every
// rank reports the same number, whatever its reads returned.
struct PrefetchAck {
  enum class Kind : std::uint8_t { kProgress, kPoolHits, kCompleted };
  static constexpr std::size_t kPoolsMax = kMaxSidecarPools;  // fixed length, rank-independent (one per PoolName)
  PrefetchOperationPtr op;
  Kind kind = Kind::kProgress;
  std::int64_t completed_tokens = 0;            // kProgress
  std::array<std::int64_t, kPoolsMax> pool_hits{};  // kPoolHits, by pool transfer
};

}  // namespace hcsim
