// The single FIFO IO thread of one rank (CC-B prefetch_io_aux_func + HCC-B _page_transfer, domain
// doc 4 steps 6-8): KV pages in batches, then the sidecar, then pool_transfers_done on every path.
#include <algorithm>

#include "policy/assert.h"
#include "policy/rank.h"

namespace hcsim {

Task<> Rank::io_thread(Runtime& rt) {
  HCSIM_ASSERT(rt.rank() == rank_ && rt.actor() == ActorKind::kIo);
  const std::int64_t page = cfg_.page_size_tokens;
  for (;;) {  // bounded by the world, as the scheduler loop
    PrefetchOperationPtr op = co_await prefetch_buffer_.pop(rt);
    const RequestId rid = op->request_id;
    const auto hit_pages = static_cast<std::int64_t>(op->hash_value.size());
    HCSIM_ASSERT(static_cast<std::int64_t>(op->host_indices.size()) == hit_pages);
    for (std::int64_t first = 0; first < hit_pages; first += cfg_.storage_batch_pages) {
      const std::int64_t count = std::min<std::int64_t>(cfg_.storage_batch_pages, hit_pages - first);
      const std::span<const PageKey> keys(op->hash_value.data() + first, static_cast<std::size_t>(count));
      const std::span<const std::int32_t> slots(op->host_indices.data() + first, static_cast<std::size_t>(count));
      for (std::int32_t s : slots) kv_pool_.begin_write(rt, s, op->id);
      const std::int64_t read_pages = co_await rt.storage(StorageOp::kKvGet, rid, keys, {}, stall_timeout_ns());
      HCSIM_ASSERT(read_pages >= 0 && read_pages <= count);
      for (std::int32_t s : slots) kv_pool_.end_write(rt, s, op->id);
      const std::int64_t before = op->completed_tokens;
      if (read_pages > 0) op->increment(read_pages * page);  // refused once terminated
      rt.emit(EventKind::kKvBatchDone, rid, read_pages, op->completed_tokens, op->id);
      if (op->completed_tokens != before + count * page) {  // short read, or terminated meanwhile
        if (read_pages < count && cfg_.fixes.has(Fix::kNegativeCache) && negative_until_.size() < kNegativeCacheMax) {
          negative_until_[keys[static_cast<std::size_t>(read_pages)]] = rt.now_ns() + kNegativeCacheTtlNs;
        }
        // #9971: a failed read ends the operation; before it, the read just stopped, and
        // wait_complete waited on pages that would never come.
        if (!op->terminated && cfg_.fixes.has(Fix::kFailedReadTerminates)) {
          op->failed = true;
          op->mark_terminate();
        }
        break;
      }
    }
    // Sidecar phase: runs when every KV page arrived, even if the scheduler terminated the
    // operation meanwhile (V-B has no is_terminated guard here).
    if (op->has_pool_transfers && op->completed_tokens == hit_pages * page) {
      const std::span<const PageKey> trailing(op->hash_value.data() + hit_pages - 1, 1);
      sidecar_pool_.begin_write(rt, op->sidecar_slot, op->id);
      const std::int64_t got = co_await rt.storage(StorageOp::kSidecarGet, rid, trailing, {}, stall_timeout_ns());
      sidecar_pool_.end_write(rt, op->sidecar_slot, op->id);
      op->sidecar_hit_pages = got;  // V-B: sum of successes
      rt.emit(EventKind::kSidecarDone, rid, got, op->sidecar_slot, op->id);
    }
    op->pool_transfers_done = true;  // unconditionally, on every path
    op->io_released = true;
    if (op->io_frees_sidecar) sidecar_pool_.free(rt, op->sidecar_slot);  // sidecar-release-by-io
    rt.emit(EventKind::kTransferEnd, rid, op->completed_tokens, op->id);
    // append_host_mem_release(host_indices[completed_tokens:])
    for (std::size_t i = static_cast<std::size_t>(op->completed_tokens / page); i < op->host_indices.size(); ++i) {
      release_kv_slot_later(rt, op->host_indices[i]);
    }
  }
}

}  // namespace hcsim
