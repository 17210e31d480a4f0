// Write-through and load-back between device and host (HM@faa628694 write_backup, writing_check,
// loading_check, load_back; HCC _page_backup and the backup thread; incident S6). After a forward,
// each request's new pages are backed up to host slots allocated on this rank, which can fail on
// one rank alone when its host pool is fuller. Both directions are asynchronous copies: an ack is
// taken only once its copy completed on this rank (finish_event.query(), HM@faa628694:402-406).
// writing_check MIN-agrees how many leading acks to take, but before #26923 returned first when
// this rank had nothing in flight, and loading_check took its own acks without any agreement
// (HM@faa628694:399-400, 428-439): rank-local predicates around collectives and locks.
#include <algorithm>
#include <array>

#include "policy/assert.h"
#include "policy/rank.h"

namespace hcsim {

Task<> Rank::write_backup(Runtime& rt, RequestId rid) {
  const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
  const std::int32_t first_page = tree_.kv_match_pages(req.pages);
  const auto pages = static_cast<std::int32_t>(req.pages.size()) - first_page;  // rank-local: host trees may differ
  std::vector<std::int32_t> slots;
  // HiMamba backs the request's Mamba state up with its pages; hybrid SWA the SWA values of its
  // last new pages, up to a window.
  std::vector<std::int32_t> sidecar_slots;
  const std::int32_t wid = next_write_id_;
  // The present prefix must outlive the backup: the acked pages are inserted below it.
  const std::int32_t prefix_node = tree_.node_at(req.pages, first_page);
  tree_.lock(prefix_node);
  bool reserved = false;
  if (pages > 0) {
    const std::int32_t sidecars = cfg_.mamba() ? 1 : cfg_.swa() ? std::min(pages, cfg_.swa_window_pages) : 0;
    // write() returned None: evict_host, then write again.
    if (kv_pool_.available() < pages || sidecar_pool_.available() < sidecars) evict_host(rt, rid, pages, sidecars);
    reserved = kv_pool_.available() >= pages && sidecar_pool_.available() >= sidecars;
    if (reserved) {
      const bool kv_ok = kv_pool_.alloc(rt.now_ns(), pages, kWriteOwnerBase + wid, slots);
      const bool sidecar_ok = sidecars == 0 || sidecar_pool_.alloc(rt.now_ns(), sidecars, kWriteOwnerBase + wid, sidecar_slots);
      HCSIM_ASSERT(kv_ok && sidecar_ok);
    }
  }
  if (cfg_.has(Fix::kWriteReserveCommit) && !cache_groups_.empty()) {
    // Every rank votes, also one with nothing to back up (it does not object).
    std::array<std::int64_t, 1> all_reserved{reserved || pages <= 0 ? 1 : 0};
    for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, all_reserved);
    if (reserved && all_reserved[0] == 0) {  // another rank could not: abort here too
      for (std::int32_t s : slots) kv_pool_.free(rt, s);
      for (std::int32_t s : sidecar_slots) sidecar_pool_.free(rt, s);
      reserved = false;
    }
  }
  if (!reserved) tree_.unlock(prefix_node);
  if (pages <= 0) co_return;  // already on host: nothing to back up
  ++next_write_id_;
  rt.emit(rid, WriteBackupFields{.pages = pages, .committed = reserved ? 1 : 0, .write = wid});
  if (!reserved) co_return;
  HCSIM_ASSERT(ongoing_write_through_.size() < static_cast<std::size_t>(kv_pool_.capacity()));
  const TimeNs copied_ns = rt.copy_done_ns(StorageOp::kDeviceToHost, rid, pages);  // start_writing's finish_event
  ongoing_write_through_.emplace(wid, WriteThrough{rid, first_page, std::move(slots), copied_ns, prefix_node, std::move(sidecar_slots)});
  ack_write_queue_.push_back(wid);
}

// Upstream's writing_check returns before its all-reduce when nothing is in flight, until a fix
// makes it join every pass; the pass skips the call then. "all ranks have the same
// ongoing_write_through, can skip sync if empty": not so.
bool Rank::writing_check_agrees() const {
  return cfg_.has(Fix::kSyncedAckChecks) || cfg_.has(Fix::kWriteReserveCommit) || !ongoing_write_through_.empty();
}

Task<> Rank::writing_check(Runtime& rt) {
  HCSIM_ASSERT(writing_check_agrees());  // the pass skips it otherwise: no frame while no write is in flight
  std::array<std::int64_t, 1> acks{ready_write_acks(rt)};
  if (chains_ack_counts()) [[unlikely]] {
    co_await agree_ack_count_down_the_stages(rt, acks, AckQueue::kWrite);
  } else {
    for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, acks);
  }
  take_write_acks(rt, acks[0]);
}

std::int64_t Rank::ready_write_acks(Runtime& rt) const {
  std::int64_t acks = 0;  // the leading acks whose copy has completed here
  for (std::int32_t wid : ack_write_queue_) {
    if (ongoing_write_through_.at(wid).copy_done_ns > rt.now_ns()) break;
    ++acks;
  }
  return acks;
}

void Rank::take_write_acks(Runtime& rt, std::int64_t acks) {
  HCSIM_ASSERT(acks >= 0 && static_cast<std::size_t>(acks) <= ack_write_queue_.size());
  for (std::int64_t i = 0; i < acks; ++i) {
    const std::int32_t wid = ack_write_queue_.front();
    ack_write_queue_.pop_front();
    auto it = ongoing_write_through_.find(wid);
    HCSIM_ASSERT(it != ongoing_write_through_.end());
    const WriteThrough& w = it->second;
    const RequestSpec& req = workload_[static_cast<std::size_t>(w.request)];
    const auto end = static_cast<std::size_t>(w.first_page) + w.slots.size();
    // The host tree may have grown since the backup: insert from the deepest node present.
    const std::int32_t present = std::min<std::int32_t>(tree_.kv_match_pages(req.pages), static_cast<std::int32_t>(end));
    const std::int32_t first_new = std::max(present, w.first_page);
    const std::span<const PageKey> prefix(req.pages.data(), end);
    const std::span<const std::int32_t> fresh(w.slots.data() + (first_new - w.first_page), end - static_cast<std::size_t>(first_new));
    const auto inserted = tree_.insert(prefix, first_new, fresh);
    tree_.unlock(w.prefix_node);
    tree_.lock(inserted.leaf);  // the backup thread reads these pages until its ack is drained
    attach_write_sidecars(rt, inserted.leaf, w.sidecar_slots);
    for (std::int32_t k = 0; k < first_new - w.first_page; ++k) kv_pool_.free(rt, w.slots[static_cast<std::size_t>(k)]);
    for (std::int32_t s : fresh) kv_pool_.to_tree(rt, s);
    rt.emit(w.request, WriteAckedFields{.pages = static_cast<std::int64_t>(w.slots.size()),
                                        .matched_pages = inserted.matched_pages + (first_new - w.first_page),
                                        .write = wid});
    // write_through also backs the pages up to L3, on the backup thread.
    Backup b{next_backup_id_++, w.request, std::vector<PageKey>(req.pages.begin() + w.first_page, req.pages.begin() + static_cast<std::ptrdiff_t>(end)), {}, {}, {}};
    tree_.kv_slots(prefix, w.first_page, static_cast<std::int32_t>(end) - w.first_page, b.slots);
    backup_sidecars(inserted.leaf, b.pages, b.sidecar_slots, b.sidecar_keys);
    backup_nodes_.emplace(b.id, inserted.leaf);
    backup_queue_.push(rt, std::move(b));
    ongoing_write_through_.erase(it);
  }
}

// Slot i of `slots` belongs to the i-th of the path's last slots.size() nodes (Mamba: one, the leaf).
void Rank::attach_write_sidecars(Runtime& rt, std::int32_t leaf, const std::vector<std::int32_t>& slots) {
  std::int32_t node = leaf;
  for (std::size_t i = slots.size(); i-- > 0; node = tree_.parent(node)) {
    HCSIM_ASSERT(node > HostRadixTree::kRoot);  // the path holds the backed-up pages
    if (tree_.sidecar_slot(node) < 0) {
      tree_.attach_sidecar(node, slots[i]);
      sidecar_pool_.to_tree(rt, slots[i]);
    } else {
      sidecar_pool_.free(rt, slots[i]);  // the node has its state already
    }
  }
}

// Mamba: the leaf's state, if it has one. Hybrid SWA: the SWA values the last pages' nodes hold, up
// to a window (a node whose value was evicted meanwhile writes none). Then each derived pool's
// objects, from no slot here: a KV-derived pool's at every page, an SWA-derived pool's at the SWA
// values' pages (HCC@17313cf4b:664-721, URC@17313cf4b:1493-1519).
void Rank::backup_sidecars(std::int32_t leaf, std::span<const PageKey> pages, std::vector<std::int32_t>& slots, std::vector<PageKey>& keys) const {
  const auto pools = cfg_.stored_stack();
  if (!pools.empty() && pools[0].from == IndicesFrom::kOwn) {
    const std::size_t count = cfg_.swa() ? std::min(pages.size(), static_cast<std::size_t>(cfg_.swa_window_pages)) : 1;
    std::int32_t node = leaf;
    for (std::size_t i = 0; i < count && node > HostRadixTree::kRoot; ++i, node = tree_.parent(node)) {
      if (tree_.sidecar_slot(node) < 0) continue;
      slots.insert(slots.begin(), tree_.sidecar_slot(node));
      keys.insert(keys.begin(), pages[pages.size() - 1 - i]);
    }
  }
  const std::size_t own = keys.size();
  for (std::size_t tag = 0; tag < pools.size(); ++tag) {
    if (pools[tag].from == IndicesFrom::kKv) {
      for (PageKey p : pages) keys.push_back(object_key(tag, p));
    } else if (pools[tag].from == IndicesFrom::kSwa) {
      for (std::size_t i = 0; i < own; ++i) keys.push_back(object_key(tag, keys[i]));
    }
  }
  slots.resize(keys.size(), -1);
}

void Rank::load_back(Runtime& rt, RequestId rid, std::int32_t host_hit_pages) {
  const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
  const std::int32_t node = tree_.node_at(req.pages, host_hit_pages);
  tree_.lock(node);  // inc_lock_ref until the ack is taken
  HCSIM_ASSERT(ack_load_queue_.size() < workload_.size() + static_cast<std::size_t>(kv_pool_.capacity()));
  ack_load_queue_.push_back({rid, node, rt.copy_done_ns(StorageOp::kHostToDevice, rid, host_hit_pages)});
}

// loading_check: the leading load acks whose copy completed on this rank, and from #26923 only as
// many as completed on every rank (HM@7f67965b4:429-453).
// Without agreement each rank takes what completed on it: the caller does, with no frame.
// HiRadixCache's loading_check MIN-agrees from #27285 (HR@42fe02528:942-951), at any pp size.
bool Rank::loading_check_agrees() const {
  return chains_ack_counts() || cfg_.has(Fix::kSyncedAckChecks) || cfg_.has(Fix::kPpAckChain);
}

Task<> Rank::loading_check(Runtime& rt) {
  HCSIM_ASSERT(loading_check_agrees());
  std::array<std::int64_t, 1> acks{ready_load_acks(rt)};
  if (chains_ack_counts()) [[unlikely]] {
    co_await agree_ack_count_down_the_stages(rt, acks, AckQueue::kLoad);
  } else {
    for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, acks);
  }
  take_load_acks(rt, acks[0]);
}

std::int64_t Rank::ready_load_acks(Runtime& rt) const {
  std::int64_t acks = 0;
  for (const LoadBack& l : ack_load_queue_) {
    if (l.done_ns > rt.now_ns()) break;
    ++acks;
  }
  return acks;
}

void Rank::take_load_acks(Runtime& rt, std::int64_t acks) {
  HCSIM_ASSERT(acks >= 0 && static_cast<std::size_t>(acks) <= ack_load_queue_.size());
  for (std::int64_t i = 0; i < acks; ++i) {
    const LoadBack l = ack_load_queue_.front();
    ack_load_queue_.pop_front();
    tree_.unlock(l.node);  // dec_lock_ref
    rt.emit(l.request, LoadAckedFields{.node = l.node, .acks_left = static_cast<std::int64_t>(ack_load_queue_.size())});
  }
}

// backup_thread_func: backup_queue -> _page_backup (L2 to L3 writes) -> ack_backup_queue, whose
// count the scheduler's drain MIN-agrees on. HCC._page_backup writes the Mamba state first, result
// unchecked, then the KV pages (HCC@faa628694:635-643).
Task<> Rank::backup_thread(Runtime& rt) {
  HCSIM_ASSERT(rt.rank() == rank_ && rt.actor() == ActorKind::kBackup);
  for (;;) {  // bounded by the world, as the scheduler loop
    Backup b = co_await backup_queue_.pop(rt);
    if (!b.sidecar_slots.empty()) co_await rt.storage(StorageOp::kSidecarSet, b.request, b.sidecar_keys, {}, 0, b.sidecar_slots);
    const std::int64_t written = co_await rt.storage(StorageOp::kKvSet, b.request, b.pages, {}, 0, b.slots);
    rt.emit(b.request, BackupDoneFields{.pages = static_cast<std::int64_t>(b.pages.size()), .pages_written = written, .backup = b.id});
    HCSIM_ASSERT(ack_backup_queue_.size() < static_cast<std::size_t>(kv_pool_.capacity()));
    ack_backup_queue_.push_back(b.id);
  }
}

}  // namespace hcsim
