// The acknowledgement design (#27010, merged 829138a31, 2026-08-25; #36425, 8e04f66a7, 2026-08-28),
// as upstream's files read at 001067ff and 8e04f66a7 have it (docs/pp-design.md): the IO thread
// acks every KV batch with its cumulative tokens, then the pool hits, then completion; the sync
// thread MIN-agrees each ack over attention CP, attention TP and the pipeline stages; the
// scheduler's drain takes PP0's count of acks and applies them, publishing on completion; the
// vote is PP0's, chained down the stages.
#include <algorithm>
#include <array>

#include "policy/assert.h"
#include "policy/rank.h"
#include "policy/termination.h"

namespace hcsim {

void Rank::push_ack(Runtime& rt, const PrefetchOperationPtr& op, PrefetchAck::Kind kind) {
  PrefetchAck ack;
  ack.op = op;
  ack.kind = kind;
  ack.completed_tokens = op->io_completed_tokens;
  HCSIM_ASSERT(op->pool_transfers.size() <= PrefetchAck::kPoolsMax);
  for (std::size_t i = 0; i < op->pool_transfers.size(); ++i) ack.pool_hits[i] = op->pool_transfers[i].hit_pages;
  prefetch_sync_queue_.push(rt, std::move(ack));
}

// _page_transfer after #27010 (CC@001067ff): every batch is acked, read or not, so every rank
// sends the same number of acks; reads stop at a short batch or a termination, and a short batch
// no longer marks the operation terminated. The KV-derived pools are read with each KV batch. Then
// the sidecar phase for the other pools (HCC: one pool-hits ack, "even the operation has been
// canceled"), then completion.
Task<> Rank::page_transfer_acked(Runtime& rt, PrefetchOperation& op) {
  const std::int64_t page = cfg_.page_size_tokens;
  const auto hit_pages = static_cast<std::int64_t>(op.hash_value.size());
  HCSIM_ASSERT(static_cast<std::int64_t>(op.host_indices.size()) == hit_pages);
  const PrefetchOperationPtr self = ops_.at(static_cast<std::size_t>(op.id));
  HCSIM_ASSERT(self != nullptr);  // in flight on the IO thread: not let go
  bool reading = true;
  for (std::int64_t first = 0; first < hit_pages; first += cfg_.storage_batch_pages) {
    const std::int64_t count = std::min<std::int64_t>(cfg_.storage_batch_pages, hit_pages - first);
    reading = reading && !op.terminated;
    if (reading) {
      const std::span<const PageKey> keys(op.hash_value.data() + first, static_cast<std::size_t>(count));
      const std::span<const std::int32_t> slots(op.host_indices.data() + first, static_cast<std::size_t>(count));
      std::int64_t read_pages = 0;
      bool raised = false;
      try {
        read_pages = co_await read_into(rt, kv_pool_, slots, StorageOp::kKvGet, op, keys);
      } catch (const WorldCallRaised&) {
        if (!cfg_.has(Fix::kIoExceptionGuard)) throw;  // the thread dies, as upstream's
        raised = true;  // io-exception-guard: no more reads, and the acks go on
      }
      if (raised) {
        reading = false;
        op.failed = true;
        push_ack(rt, self, PrefetchAck::Kind::kProgress);
        continue;
      }
      HCSIM_ASSERT(read_pages >= 0 && read_pages <= count);
      if (cfg_.page_copy_ns > 0 && !cfg_.zero_copy_progress) co_await rt.sleep_ns(cfg_.page_copy_ns * read_pages);
      // _page_transfer_kv_batch: the KV-derived pools are read with the batch, and the batch hit
      // is the least of their hits and KV's.
      read_pages = std::min(read_pages, co_await read_kv_derived_batch(rt, op, first, count));
      op.io_completed_tokens += read_pages * page;
      rt.emit(op.request_id, KvBatchDoneFields{.pages_read = read_pages, .completed_tokens = op.io_completed_tokens, .op = op.id});
      if (read_pages < count) {  // no more reads, and no termination: the acks carry it (CC@001067ff _page_transfer)
        reading = false;
        op.failed = true;
      }
    }
    push_ack(rt, self, PrefetchAck::Kind::kProgress);
  }
  const bool kv_complete = hit_pages > 0 && op.io_completed_tokens == hit_pages * page;
  const auto pools = cfg_.stack();
  const bool own_or_swa = std::any_of(op.pool_transfers.begin(), op.pool_transfers.end(),
                                      [&](const PrefetchOperation::PoolTransfer& t) { return pools[t.tag].from != IndicesFrom::kKv; });
  if (op.has_pool_transfers()) {
    if (own_or_swa && kv_complete && !op.terminated) co_await sidecar_transfer(rt, op, /*kv_derived=*/false);
    push_ack(rt, self, PrefetchAck::Kind::kPoolHits);
  }
  push_ack(rt, self, PrefetchAck::Kind::kCompleted);
}

Task<std::int64_t> Rank::read_kv_derived_batch(Runtime& rt, PrefetchOperation& op, std::int64_t first, std::int64_t count) {
  const auto pools = cfg_.stack();
  std::vector<PageKey> keys;
  for (PrefetchOperation::PoolTransfer& t : op.pool_transfers) {
    if (pools[t.tag].from != IndicesFrom::kKv) continue;
    t.keys = first + count;  // the pages this pool has been asked for so far
    for (std::int64_t i = first; i < first + count; ++i) keys.push_back(object_key(t.tag, op.hash_value[static_cast<std::size_t>(i)]));
  }
  if (keys.empty()) co_return count;
  const std::vector<std::int32_t> no_slots(keys.size(), -1);  // laid out like KV: no slot of their own
  const std::span<const std::int32_t> kv_slots(op.host_indices.data() + first, static_cast<std::size_t>(count));
  std::vector<std::uint8_t> read(keys.size(), 0);
  co_await read_into(rt, sidecar_pool_, no_slots, StorageOp::kSidecarGet, op, keys, read, kv_slots);
  std::int64_t hit = count;
  std::size_t at = 0;
  for (PrefetchOperation::PoolTransfer& t : op.pool_transfers) {
    if (pools[t.tag].from != IndicesFrom::kKv) continue;
    const auto batch = std::span<const std::uint8_t>(read).subspan(at, static_cast<std::size_t>(count));
    at += static_cast<std::size_t>(count);
    t.read.insert(t.read.end(), batch.begin(), batch.end());
    hit = std::min(hit, static_cast<std::int64_t>(std::find(batch.begin(), batch.end(), std::uint8_t{0}) - batch.begin()));
  }
  co_return hit;
}

std::array<std::int64_t, PrefetchAck::kPoolsMax> Rank::acked_pool_hits(const PrefetchOperation& op) const {
  const auto pools = cfg_.stack();
  const bool skip_kv_derived = cfg_.unified() || cfg_.has(Fix::kClampSkipsKvDerived);
  std::array<std::int64_t, PrefetchAck::kPoolsMax> hits{};
  for (std::size_t p = 0; p < op.pool_transfers.size(); ++p) {
    const PrefetchOperation::PoolTransfer& t = op.pool_transfers[p];
    if (pools[t.tag].from == IndicesFrom::kKv) {
      hits[p] = skip_kv_derived ? static_cast<std::int64_t>(op.hash_value.size()) : 0;  // judged by completed_tokens alone
    } else {
      hits[p] = op.pool_transfers_done ? t.hit_pages : 0;
    }
  }
  return hits;
}

// prefetch_sync_thread_func (CC@001067ff): each progress and pool-hits ack is MIN-agreed over the
// completion groups, in the order the IO thread sent them; completion carries nothing to agree.
Task<> Rank::prefetch_sync_thread(Runtime& rt) {
  HCSIM_ASSERT(rt.rank() == rank_ && rt.actor() == ActorKind::kSync && ack_design());
  for (;;) {  // bounded by the world, as the scheduler loop
    PrefetchAck ack = co_await prefetch_sync_queue_.pop(rt);
    if (ack.kind == PrefetchAck::Kind::kProgress) {
      std::array<std::int64_t, 1> tokens{ack.completed_tokens};
      for (const Group g : completion_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, tokens);
      ack.completed_tokens = tokens[0];
    } else if (ack.kind == PrefetchAck::Kind::kPoolHits) {
      for (const Group g : completion_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, ack.pool_hits);
    }
    HCSIM_ASSERT(ack_prefetch_queue_.size() < kAckQueueMax);
    ack_prefetch_queue_.push_back(std::move(ack));
  }
}

// _drain_ack_prefetch (URC@001067ff): an ack of an operation still ongoing updates it; completion
// publishes what the group read if the operation is still ongoing, and in every case hands back
// the slots beyond it and, with its sidecars never done, the sidecar slots.
void Rank::take_prefetch_acks(Runtime& rt, std::int64_t acks) {
  HCSIM_ASSERT(acks >= 0 && static_cast<std::size_t>(acks) <= ack_prefetch_queue_.size());
  for (std::int64_t i = 0; i < acks; ++i) {
    const PrefetchAck ack = std::move(ack_prefetch_queue_.front());
    ack_prefetch_queue_.pop_front();
    PrefetchOperation& op = *ack.op;
    auto it = ongoing_prefetch_.find(op.request_id);
    const bool ongoing = it != ongoing_prefetch_.end() && it->second.op == ack.op;
    switch (ack.kind) {
      case PrefetchAck::Kind::kProgress:
        if (!ongoing) break;
        HCSIM_ASSERT(ack.completed_tokens >= op.completed_tokens);  // cumulative, and a MIN of cumulatives
        op.completed_tokens = ack.completed_tokens;
        break;
      case PrefetchAck::Kind::kPoolHits:
        if (!ongoing) break;
        for (std::size_t p = 0; p < op.pool_transfers.size(); ++p) op.pool_transfers[p].hit_pages = ack.pool_hits[p];
        op.pool_transfers_done = true;
        break;
      case PrefetchAck::Kind::kCompleted: {
        if (ongoing) {
          const auto hits = acked_pool_hits(op);
          op.mark_terminate();
          finish_prefetch(rt, op.request_id, TerminateReason::kAllCan, op.completed_tokens,
                          std::span<const std::int64_t>(hits.data(), op.pool_transfers.size()));
        }
        op.io_released = true;
        const auto kept_pages = static_cast<std::size_t>(op.completed_tokens / cfg_.page_size_tokens);
        for (std::size_t s = kept_pages; s < op.host_indices.size(); ++s) release_kv_slot_later(rt, op.host_indices[s]);
        if (op.io_frees_sidecar) {
          for (std::int32_t slot : op.sidecar_slots) release_sidecar_slot_later(rt, slot);
        }
        break;
      }
    }
  }
}

// can_terminate_prefetch after #27010, on PP0: best_effort terminates, wait_complete never does
// (completion comes through the acks), timeout when PP0's clock says so.
bool Rank::pp0_can_terminate(Runtime& rt, const PrefetchOperation& op) const {
  switch (cfg_.policy) {
    case PrefetchPolicy::kBestEffort: return true;
    case PrefetchPolicy::kWaitComplete: return false;
    case PrefetchPolicy::kTimeout: return termination_inputs(cfg_, op, rt.now_ns()).timed_out;
  }
  HCSIM_ASSERT(false);
  return false;
}

// check_prefetch_progress after #27010 (URC@001067ff): PP0 votes, every other stage sends 0, the
// MAX runs over PP0's groups and down the stages, on every call. From #36425 (URC@8e04f66a7)
// best_effort and wait_complete decide without a collective, and so does a rank whose operation is
// terminated: only timeout's undecided ranks vote.
Task<bool> Rank::check_prefetch_progress_acked(Runtime& rt, RequestId rid) {
  auto it = ongoing_prefetch_.find(rid);
  if (it == ongoing_prefetch_.end()) co_return true;
  const PrefetchOperationPtr op = it->second.op;
  const bool first = topology_.first_stage(rank_);
  bool terminate = false;
  bool voted = true;
  if (cfg_.has(Fix::kVoteOnlyUnderTimeout) && (op->terminated || cfg_.policy != PrefetchPolicy::kTimeout)) {
    terminate = op->terminated || best_effort();
    voted = false;
  } else {
    const bool pp0_terminates = cfg_.has(Fix::kVoteOnlyUnderTimeout) ? pp0_can_terminate(rt, *op) : op->terminated || pp0_can_terminate(rt, *op);
    std::array<std::int64_t, 1> vote{first && pp0_terminates ? 1 : 0};
    co_await agree_from_first_stage(rt, vote, CollectiveOp::kAllReduceMax, pipeline());
    terminate = vote[0] == 1;
  }
  if (voted) rt.emit(rid, TerminateVoteFields{.can_terminate = terminate ? 1 : 0, .terminated = op->terminated ? 1 : 0, .group_decision = terminate ? 1 : 0});
  if (!terminate) co_return false;
  it = ongoing_prefetch_.find(rid);
  if (it == ongoing_prefetch_.end() || it->second.op != op) co_return true;  // ended while voting
  op->mark_terminate();
  if (!op->host_allocated) {
    revoke_pending_prefetch(rt, rid);
    co_return true;
  }
  // _handle_prefetch_result: the values are the group's already; the pool hits only once their ack came.
  const auto hits = acked_pool_hits(*op);
  const TerminateReason why = best_effort() ? TerminateReason::kBestEffort : TerminateReason::kAllCan;
  finish_prefetch(rt, rid, why, op->completed_tokens, std::span<const std::int64_t>(hits.data(), op->pool_transfers.size()));
  co_return true;
}

// _drain_queue on a later stage: q.get() blocks until the queue holds PP0's count.
Task<> Rank::await_queues_hold(Runtime& rt, const StorageQueueCounts& q) {
  const auto short_of = [&] {
    return static_cast<std::int64_t>(reached(revoke_queue_, rt.now_ns())) < q.agreed(q.revoke_at) ||
           static_cast<std::int64_t>(reached(hit_queue_, rt.now_ns())) < q.agreed(q.hit_at) ||
           static_cast<std::int64_t>(ack_prefetch_queue_.size()) < q.agreed(q.ack_at) ||
           static_cast<std::int64_t>(ack_backup_queue_.size()) < q.agreed(q.backup_at) ||
           static_cast<std::int64_t>(kv_release_queue_.size()) < q.agreed(q.release_at) ||
           static_cast<std::int64_t>(sidecar_release_queue_.size()) < q.agreed(q.sidecar_at);
  };
  while (short_of()) co_await rt.sleep_ns(kQueueWaitPollNs);  // bounded by the world, as the scheduler loop
}

}  // namespace hcsim
