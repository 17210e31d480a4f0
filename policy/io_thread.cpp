// The IO thread of one rank (CC-B prefetch_io_aux_func + HCC-B _page_transfer, domain doc 4 steps
// 6-8): KV pages in batches, then the sidecar, then pool_transfers_done on every path. Upstream's
// loop catches only queue.Empty, so a read that raises kills the thread; with io-exception-guard
// (#36882) the operation fails instead and the thread goes on.
#include <algorithm>

#include "policy/assert.h"
#include "policy/rank.h"
#include "policy/trailing_pages.h"

namespace hcsim {

// One L3 read into `slots`: the slots are being written for exactly as long as the call runs,
// also when it raises. `kv_laid_out`: the KV slots whose indices a KV-derived pool writes at.
Task<std::int64_t> Rank::read_into(Runtime& rt, HostSlotPool& pool, std::span<const std::int32_t> slots, StorageOp op,
                                   const PrefetchOperation& prefetch, std::span<const PageKey> keys, std::span<std::uint8_t> present,
                                   std::span<const std::int32_t> kv_laid_out) {
  for (std::int32_t s : slots) {
    if (s >= 0) pool.begin_write(rt, s, prefetch.id);  // -1: a pool laid out like another's, no slot here
  }
  for (std::int32_t s : kv_laid_out) kv_pool_.begin_write(rt, s, prefetch.id);
  std::int64_t result = 0;
  bool raised = false;
  try {
    result = co_await rt.storage(op, prefetch.request_id, keys, present, stall_timeout_ns(), slots);
  } catch (const WorldCallRaised&) {
    raised = true;
  }
  for (std::int32_t s : slots) {
    if (s >= 0) pool.end_write(rt, s, prefetch.id);
  }
  for (std::int32_t s : kv_laid_out) kv_pool_.end_write(rt, s, prefetch.id);
  if (raised) throw WorldCallRaised("L3 " + std::string(storage_op_name(op)) + " raised");
  co_return result;
}

void Rank::sync_trailing_keys(Runtime& rt, PrefetchOperation& op) {
  const auto hit = static_cast<std::int64_t>(op.hash_value.size());
  for (PrefetchOperation::PoolTransfer& t : op.pool_transfers) {
    if (cfg_.stack()[t.tag].hit == HitPolicy::kTrailingPages) t.keys = std::min(std::max<std::int64_t>(t.keys, 1), hit);
  }
  const std::size_t keys = std::min(op.sidecar_slots.size(), op.hash_value.size());
  for (std::size_t i = keys; i < op.sidecar_slots.size(); ++i) release_sidecar_slot_later(rt, op.sidecar_slots[i]);
  op.sidecar_slots.resize(keys);
}

// The sidecar phase's one batch_get_v2 over every pool transfer (HCC@17313cf4b:650-661): a trailing
// pool reads the objects of the hit's last pages (Mamba: the state after the last page; SWA and
// what is derived from it: the window's pages), into the own pool's slots; a KV-derived pool the
// object of every hit page, into a host pool laid out like KV, which takes no slot of its own.
Task<> Rank::sidecar_transfer(Runtime& rt, PrefetchOperation& op, bool kv_derived) {
  HCSIM_ASSERT(op.has_pool_transfers() && !op.hash_value.empty());
  sync_trailing_keys(rt, op);
  const auto pools = cfg_.stack();
  const auto read_here = [&](const PrefetchOperation::PoolTransfer& t) { return kv_derived || pools[t.tag].from != IndicesFrom::kKv; };
  std::vector<PageKey> keys;  // each transfer's object keys, in transfer order
  std::vector<std::int32_t> slots;  // the own pool's slot for each key; -1 where the pool has none
  for (PrefetchOperation::PoolTransfer& t : op.pool_transfers) {
    if (!read_here(t)) continue;
    if (pools[t.tag].from == IndicesFrom::kKv) t.keys = static_cast<std::int64_t>(op.hash_value.size());  // _resolve_sidecar_derived_pool_transfers
    HCSIM_ASSERT(t.keys >= 0 && static_cast<std::size_t>(t.keys) <= op.hash_value.size());
    const std::size_t first_page = op.hash_value.size() - static_cast<std::size_t>(t.keys);
    for (std::size_t i = 0; i < static_cast<std::size_t>(t.keys); ++i) {
      keys.push_back(object_key(t.tag, op.hash_value[first_page + i]));
      slots.push_back(pools[t.tag].from == IndicesFrom::kOwn ? op.sidecar_slots[i] : -1);
    }
  }
  // A KV-derived pool writes at the hit's KV slot indices: those slots are written as long as the read
  // runs (the race #27550 closed on HiRadixCache: a publish or load-back of them meanwhile).
  const bool any_kv_derived = std::any_of(op.pool_transfers.begin(), op.pool_transfers.end(), [&](const PrefetchOperation::PoolTransfer& t) {
    return read_here(t) && pools[t.tag].from == IndicesFrom::kKv;
  });
  const std::vector<std::int32_t> kv_laid_out = any_kv_derived ? op.host_indices : std::vector<std::int32_t>{};
  std::vector<std::uint8_t> read(keys.size(), 0);  // the operation learns it when the read returns
  // The call's result counts the objects read; `read` says which, and of which pool.
  const std::int64_t successes = co_await read_into(rt, sidecar_pool_, slots, StorageOp::kSidecarGet, op, keys, read, kv_laid_out);
  std::size_t first = 0;
  const auto transfers_read = static_cast<std::size_t>(std::count_if(op.pool_transfers.begin(), op.pool_transfers.end(), read_here));
  for (PrefetchOperation::PoolTransfer& t : op.pool_transfers) {
    if (!read_here(t)) continue;
    t.read.assign(read.begin() + static_cast<std::ptrdiff_t>(first), read.begin() + static_cast<std::ptrdiff_t>(first) + t.keys);
    first += static_cast<std::size_t>(t.keys);
    // One transfer: its successes are the call's result (a stalled read cancelled by the stall
    // timeout reports the result without its objects).
    const auto sum = transfers_read == 1 ? successes : static_cast<std::int64_t>(std::count(t.read.begin(), t.read.end(), std::uint8_t{1}));
    const auto run = static_cast<std::int64_t>(std::find(t.read.begin(), t.read.end(), std::uint8_t{0}) - t.read.begin());
    // V-B: the sum of successes; #31443 (HS@1a53f231d): the leading run. One key: the same.
    t.hit_pages = cfg_.has(Fix::kHybridResultCheck) ? std::min(sum, run) : sum;
    const bool own = pools[t.tag].from == IndicesFrom::kOwn;
    rt.emit(op.request_id, SidecarDoneFields{.hit_pages = t.hit_pages, .slot = own ? op.first_sidecar_slot() : -1, .op = op.id});
  }
}

Task<> Rank::page_transfer(Runtime& rt, PrefetchOperation& op) {
  const std::int64_t page = cfg_.page_size_tokens;
  const RequestId rid = op.request_id;
  const auto hit_pages = static_cast<std::int64_t>(op.hash_value.size());
  HCSIM_ASSERT(static_cast<std::int64_t>(op.host_indices.size()) == hit_pages);
  // Before #26881 the hybrid controller read the sidecar objects first, unless terminated
  // (HCC@736263f3d^:620-628), so KV completion implied the sidecar had landed.
  if (op.has_pool_transfers() && !cfg_.has(Fix::kSidecarAfterKv) && !op.terminated && hit_pages > 0) co_await sidecar_transfer(rt, op);
  for (std::int64_t first = 0; first < hit_pages; first += cfg_.storage_batch_pages) {
    const std::int64_t count = std::min<std::int64_t>(cfg_.storage_batch_pages, hit_pages - first);
    const std::span<const PageKey> keys(op.hash_value.data() + first, static_cast<std::size_t>(count));
    const std::span<const std::int32_t> slots(op.host_indices.data() + first, static_cast<std::size_t>(count));
    const std::int64_t read_pages = co_await read_into(rt, kv_pool_, slots, StorageOp::kKvGet, op, keys);
    HCSIM_ASSERT(read_pages >= 0 && read_pages <= count);
    const std::int64_t before = op.completed_tokens;
    if (cfg_.zero_copy_progress) {
      if (read_pages > 0) op.increment(read_pages * page);  // _page_get_zero_copy; refused once terminated
    } else {
      // _generic_page_get: each page is copied from the read buffer into its slot, then counted;
      // the scheduler may terminate the operation between two pages.
      for (std::int64_t i = 0; i < read_pages; ++i) {
        if (cfg_.page_copy_ns > 0) co_await rt.sleep_ns(cfg_.page_copy_ns);
        if (!op.increment(page)) break;
      }
    }
    rt.emit(rid, KvBatchDoneFields{.pages_read = read_pages, .completed_tokens = op.completed_tokens, .op = op.id});
    if (op.completed_tokens != before + count * page) {  // short read, or terminated meanwhile
      if (read_pages < count && cfg_.has(Fix::kNegativeCache) && negative_until_.size() < kNegativeCacheMax) {
        negative_until_[keys[static_cast<std::size_t>(read_pages)]] = rt.now_ns() + kNegativeCacheTtlNs;
      }
      // #9971: a failed read ends the operation; before it, the read just stopped, and
      // wait_complete waited on pages that would never come.
      if (!op.terminated && cfg_.has(Fix::kFailedReadTerminates)) {
        op.failed = true;
        op.mark_terminate();
      }
      co_return;
    }
  }
  // Sidecar phase (#26881, HCC@736263f3d:618-633): runs when every KV page arrived, even if the
  // scheduler terminated the operation meanwhile, until #31443 put the is_terminated guard back
  // (HCC@1a53f231d:657-661).
  const bool skip_terminated = cfg_.has(Fix::kHybridResultCheck) && op.terminated;
  if (op.has_pool_transfers() && cfg_.has(Fix::kSidecarAfterKv) && op.completed_tokens == hit_pages * page && hit_pages > 0 && !skip_terminated) {
    co_await sidecar_transfer(rt, op);
  }
}

Task<> Rank::io_thread(Runtime& rt) {
  HCSIM_ASSERT(rt.rank() == rank_ && rt.actor() == ActorKind::kIo);
  for (;;) {  // bounded by the world, as the scheduler loop
    PrefetchOperationPtr op = co_await prefetch_buffer_.pop(rt);
    bool raised = false;
    try {
      if (ack_design()) {
        co_await page_transfer_acked(rt, *op);
      } else {
        co_await page_transfer(rt, *op);
      }
    } catch (const WorldCallRaised&) {
      if (!cfg_.has(Fix::kIoExceptionGuard)) throw;  // the thread dies, as upstream's
      raised = true;
    }
    if (raised) {  // io-exception-guard: the operation fails, the thread lives
      HCSIM_ASSERT(!ack_design());  // page_transfer_acked keeps acking instead
      op->failed = true;
      op->mark_terminate();
    }
    if (ack_design()) {  // the scheduler's completion drain releases what is left (take_prefetch_acks)
      rt.emit(op->request_id, TransferEndFields{.completed_tokens = op->io_completed_tokens, .op = op->id});
      continue;
    }
    op->pool_transfers_done = true;  // unconditionally, on every path
    op->io_released = true;
    if (op->io_frees_sidecar) free_sidecar_slots(rt, *op);  // sidecar-release-by-io
    rt.emit(op->request_id, TransferEndFields{.completed_tokens = op->completed_tokens, .op = op->id});
    // append_host_mem_release(host_indices[completed_tokens:])
    const auto done_pages = static_cast<std::size_t>(op->completed_tokens / cfg_.page_size_tokens);
    for (std::size_t i = done_pages; i < op->host_indices.size(); ++i) release_kv_slot_later(rt, op->host_indices[i]);
  }
}

}  // namespace hcsim
