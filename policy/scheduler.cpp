// The scheduler thread of one rank: receive, drain the storage control queues, walk the waiting
// queue under a token budget, forward (managers/scheduler.py, domain doc 1.1 and 4 steps 9-14).
#include <algorithm>
#include <array>
#include <limits>

#include "policy/assert.h"
#include "policy/rank.h"

namespace hcsim {

namespace {
// Every queue of a rank holds each request at most once: the workload bounds them.
std::size_t queue_max(const std::vector<RequestSpec>& workload) { return std::max<std::size_t>(std::size_t{1} << 16, workload.size() + 1); }
}  // namespace

Rank::Rank(const PolicyConfig& cfg, const std::vector<RequestSpec>& workload, int rank)
    : cfg_(cfg),
      workload_(workload),
      rank_(rank),
      resources_(cfg.ranks.at(static_cast<std::size_t>(rank))),
      topology_(cfg.topology()),
      cache_groups_(cache_groups(topology_, cfg.path == CodePath::kHiMamba)),
      prefetch_groups_(prefetch_groups(topology_, cfg.has(Fix::kAckDesign))),
      completion_groups_(completion_groups(topology_)),
      kv_pool_(SlotPoolKind::kKv, resources_.host_kv_pages),
      sidecar_pool_(SlotPoolKind::kSidecar, resources_.host_sidecar_slots),
      tree_(resources_.host_kv_pages + 1),
      device_cache_pages_(static_cast<std::int32_t>(resources_.host_kv_pages / cfg.hicache_ratio)),
      prefetch_queue_(queue_max(workload)),
      prefetch_buffer_(queue_max(workload)),
      prefetch_sync_queue_(kAckQueueMax),
      backup_queue_(queue_max(workload)) {
  HCSIM_ASSERT(cfg.page_size_tokens > 0 && cfg.storage_batch_pages > 0);
  kv_pool_.occupy_resident(resources_.host_kv_occupied_pages);
  // prefetch_capacity_limit, CC@faa628694:512-514: int(0.8 * (host.size - device.size)) in tokens,
  // the device pool being the host pool over --hicache-ratio; never negative.
  const std::int64_t spare_tokens = static_cast<std::int64_t>(resources_.host_kv_pages - device_cache_pages_) * cfg.page_size_tokens;
  prefetch_capacity_limit_ = std::max<std::int64_t>(0, spare_tokens * 8 / 10);
  // #28614 (CC@da0f4f6f9:472): int(0.5 * host.size).
  if (cfg.has(Fix::kRateLimitHalfHost)) prefetch_capacity_limit_ = static_cast<std::int64_t>(resources_.host_kv_pages) * cfg.page_size_tokens / 2;
}

void Rank::bind(Runtime& rt) {
  prefetch_queue_.bind(rt, "prefetch_queue", ActorKind::kScheduler);
  prefetch_buffer_.bind(rt, "prefetch_buffer", ActorKind::kPrefetch);
  backup_queue_.bind(rt, "backup_queue", ActorKind::kScheduler);
  if (sync_thread()) prefetch_sync_queue_.bind(rt, "prefetch_sync_queue", ActorKind::kIo);
}

Task<> Rank::scheduler_loop(Runtime& rt) {
  HCSIM_ASSERT(rt.rank() == rank_ && rt.actor() == ActorKind::kScheduler);
  for (;;) {  // bounded by the world, which stops resuming actors at its horizon
    co_await recv_requests(rt);
    if (chains_ack_counts() || chains_queue_counts()) [[unlikely]] co_await drain_ack_count_sends(rt);  // no frame per tick otherwise
    // check_hicache_events (HM@faa628694:447-456): writing_check, loading_check, then the storage
    // control queues. Every pass: with no write-through backups, writing_check has an empty queue.
    // A check that joins no collective runs without a coroutine frame: most passes are idle.
    if (merged_tick_min()) {
      co_await check_hicache_events_merged(rt);
    } else {
      if (writing_check_agrees()) co_await writing_check(rt);
      if (loading_check_agrees()) {
        co_await loading_check(rt);
      } else {
        take_load_acks(rt, ready_load_acks(rt));
      }
      co_await drain_storage_control_queues(rt);
    }
    co_await get_new_batch_prefill_and_forward(rt);
  }
}

// TP rank 0 receives from the tokenizer and broadcasts (broadcast_pyobj: the sizes, then the data),
// so every rank's waiting queue holds the same requests in the same order, and sees the same aborts.
// With pipeline stages only the first stage's receives from the tokenizer; a later stage's from the
// stage before, and each stage but the last passes what it got on.
Task<> Rank::recv_requests(Runtime& rt) {
  if (topology_.dp_attention()) {
    co_await recv_requests_dp_attention(rt);
    co_return;
  }
  std::array<std::int64_t, 2> counts{0, 0};
  std::vector<std::int64_t>& ids = pass_.request_ids;  // the arrivals, then the aborts
  ids.clear();
  if (rank_ == 0) {
    counts[0] = rt.take_arrivals(pass_.taken);
    ids.assign(pass_.taken.begin(), pass_.taken.begin() + counts[0]);
    counts[1] = rt.take_aborts(pass_.taken);
    ids.insert(ids.end(), pass_.taken.begin(), pass_.taken.begin() + counts[1]);
  }
  if (!topology_.first_stage(rank_) && tp_rank() == 0) [[unlikely]] co_await recv_requests_from_previous_stage(rt, counts, ids);
  if (tp_size() > 1) {
    co_await rt.collective(Group::kTp, CollectiveOp::kBroadcast, counts);
    ids.resize(static_cast<std::size_t>(counts[0] + counts[1]));
    if (!ids.empty()) co_await rt.collective(Group::kTp, CollectiveOp::kBroadcast, ids);
  }
  HCSIM_ASSERT(counts[0] >= 0 && counts[1] >= 0 && static_cast<std::size_t>(counts[0] + counts[1]) == ids.size());
  if (!ids.empty()) {  // most passes take nothing: no frame for them
    co_await take_requests(rt, std::span<const std::int64_t>(ids).first(static_cast<std::size_t>(counts[0])),
                           std::span<const std::int64_t>(ids).subspan(static_cast<std::size_t>(counts[0])));
  }
  // The pass's buffer goes on to the next stage; the next pass starts it afresh.
  if (!topology_.last_stage(rank_) && tp_rank() == 0) [[unlikely]] co_await send_requests_to_next_stage(rt, counts, std::move(ids));
}

// With DP attention each replica's first rank receives its replica's requests and broadcasts them
// over the attention-TP group, then the attention-CP group; aborts, as control requests, go from
// TP rank 0 over the TP group (request_receiver.py@17313cf4b:105-107, 151-214).
Task<> Rank::recv_requests_dp_attention(Runtime& rt) {
  std::array<RequestId, kArrivalsPerPassMax>& taken = pass_.taken;  // written up to the count taken
  std::vector<std::int64_t> work;
  std::vector<std::int64_t> control;
  if (topology_.replica_leader(rank_)) work.assign(taken.begin(), taken.begin() + rt.take_arrivals(taken));
  if (rank_ == 0) control.assign(taken.begin(), taken.begin() + rt.take_aborts(taken));
  if (topology_.attn_tp() > 1) co_await broadcast_ids(rt, Group::kAttnTp, work);
  if (topology_.cp > 1) co_await broadcast_ids(rt, Group::kAttnCp, work);
  if (tp_size() > 1) co_await broadcast_ids(rt, Group::kTp, control);
  co_await take_requests(rt, work, control);
}

// broadcast_pyobj from the group's first rank: the length, then the items.
Task<> Rank::broadcast_ids(Runtime& rt, Group g, std::vector<std::int64_t>& ids) {
  std::array<std::int64_t, 1> count{static_cast<std::int64_t>(ids.size())};
  co_await rt.collective(g, CollectiveOp::kBroadcast, count);
  HCSIM_ASSERT(count[0] >= 0 && count[0] <= static_cast<std::int64_t>(2 * kArrivalsPerPassMax));
  ids.resize(static_cast<std::size_t>(count[0]));
  if (!ids.empty()) co_await rt.collective(g, CollectiveOp::kBroadcast, ids);
}

Task<> Rank::take_requests(Runtime& rt, std::span<const std::int64_t> arrivals, std::span<const std::int64_t> aborts) {
  for (const std::int64_t rid : arrivals) co_await add_request_to_queue(rt, static_cast<RequestId>(rid));
  for (const std::int64_t rid : aborts) co_await abort_request(rt, static_cast<RequestId>(rid));
}

// abort_request: a request still waiting leaves the queue, then release_aborted_request; one that
// was already scheduled has nothing left to abort.
Task<> Rank::abort_request(Runtime& rt, RequestId rid) {
  auto it = std::find(waiting_queue_.begin(), waiting_queue_.end(), rid);
  const bool waiting = it != waiting_queue_.end();
  rt.emit(rid, AbortFields{.was_waiting = waiting ? 1 : 0, .had_prefetch = ongoing_prefetch_.count(rid) ? 1 : 0});
  if (!waiting) co_return;
  waiting_queue_.erase(it);
  loaded_tokens_.erase(rid);
  co_await release_aborted_request(rt, rid);
  rt.work_finished(rid);  // an aborted request is owed nothing more
}

// _add_request_to_queue -> _prefetch_kvcache: match the host tree, prefetch the rest from L3.
Task<> Rank::add_request_to_queue(Runtime& rt, RequestId rid) {
  HCSIM_ASSERT(rid >= 0 && static_cast<std::size_t>(rid) < workload_.size());
  HCSIM_ASSERT(waiting_queue_.size() < queue_max(workload_));
  const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
  waiting_queue_.push_back(rid);
  rt.work_started(rid);
  rt.emit(rid, ArriveFields{.input_tokens = req.input_tokens});
  co_await prefetch_from_storage(rt, rid, host_match_pages(req));
}

std::int32_t Rank::host_match_pages(const RequestSpec& req) const {
  if (cfg_.swa()) return tree_.window_match_pages(req.pages, cfg_.swa_window_pages);
  return cfg_.mamba() ? tree_.match_pages(req.pages) : tree_.kv_match_pages(req.pages);
}

// check_hicache_events -> drain_storage_control_queues: MIN-agree on how many items of each queue
// every rank can drain, then drain exactly that many. The queues, in upstream's order: revokes
// (until #33613), agreed hits (from #19320), L3 backup acks, KV releases, and on the unified tree
// the Mamba or SWA pool's releases (URC@5e0271536:2147-2160, URC@17313cf4b:2344-2355). HiMamba
// frees sidecar slots directly, so it has no such queue.
Task<> Rank::drain_storage_control_queues(Runtime& rt) {
  StorageQueueCounts q = storage_queue_counts(rt.now_ns());
  if (chains_queue_counts()) [[unlikely]] {
    co_await agree_queue_counts_down_the_stages(rt, q);
  } else {
    for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, q.payload());
  }
  take_storage_queues(rt, q);
}

// The queues of this date, in upstream's order: revoke (until #33613), hit (from #19320), backup
// acks, KV release, and the unified tree's sidecar release queue.
Rank::StorageQueueCounts Rank::storage_queue_counts(TimeNs now_ns) const {
  StorageQueueCounts q;
  auto add = [&](bool present, std::size_t size) {
    if (!present) return StorageQueueCounts::kAbsent;
    q.counts[q.size] = static_cast<std::int64_t>(size);
    return q.size++;
  };
  q.revoke_at = add(!(cfg_.has(Fix::kHitThenAlloc) && cfg_.has(Fix::kThresholdInDrain)), reached(revoke_queue_, now_ns));
  q.hit_at = add(cfg_.has(Fix::kHitThenAlloc), reached(hit_queue_, now_ns));
  q.ack_at = add(ack_design(), ack_prefetch_queue_.size());
  q.backup_at = add(true, ack_backup_queue_.size());
  q.release_at = add(true, kv_release_queue_.size());
  q.sidecar_at = add(cfg_.unified() && cfg_.sidecar(), sidecar_release_queue_.size());
  return q;
}

void Rank::take_storage_queues(Runtime& rt, const StorageQueueCounts& q) {
  for (std::int64_t i = 0; i < q.agreed(q.revoke_at); ++i) {
    const RequestId rid = revoke_queue_.front().item;
    revoke_queue_.pop_front();
    // keyed by rid: a stale revoke pops nothing. The KV slots went back via the queue.
    if (ongoing_prefetch_.count(rid)) revoke_pending_prefetch(rt, rid);
  }
  for (std::int64_t i = 0; i < q.agreed(q.hit_at); ++i) {
    PrefetchOperationPtr op = std::move(hit_queue_.front().item);
    hit_queue_.pop_front();
    take_storage_hit(rt, op);
  }
  take_prefetch_acks(rt, q.agreed(q.ack_at));
  for (std::int64_t i = 0; i < q.agreed(q.backup_at); ++i) {  // the nodes are backed up in L3
    auto locked = backup_nodes_.find(ack_backup_queue_.front());
    HCSIM_ASSERT(locked != backup_nodes_.end());
    tree_.unlock(locked->second);
    backup_nodes_.erase(locked);
    ack_backup_queue_.pop_front();
  }
  for (std::int64_t i = 0; i < q.agreed(q.release_at); ++i) {
    kv_pool_.free(rt, kv_release_queue_.front());
    kv_release_queue_.pop_front();
  }
  for (std::int64_t i = 0; i < q.agreed(q.sidecar_at); ++i) {
    sidecar_pool_.free(rt, sidecar_release_queue_.front());
    sidecar_release_queue_.pop_front();
  }
}

// merged-tick-min (#30511, HR@17313cf4b:1002-1025, 1521-1550; URC@17313cf4b:2314-2366, 2525-2565):
// one MIN per tick of [ready write acks, ready load acks, storage queue sizes], then the checks and
// the drain take what it agreed, with no collective of their own.
Task<> Rank::check_hicache_events_merged(Runtime& rt) {
  const StorageQueueCounts q = storage_queue_counts(rt.now_ns());
  std::array<std::int64_t, 2 + StorageQueueCounts::kMax> ready{ready_write_acks(rt), ready_load_acks(rt)};
  std::copy(q.counts.begin(), q.counts.begin() + static_cast<std::ptrdiff_t>(q.size), ready.begin() + 2);
  const std::span<std::int64_t> payload(ready.data(), 2 + q.size);
  for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, payload);
  take_write_acks(rt, ready[0]);
  take_load_acks(rt, ready[1]);
  StorageQueueCounts agreed = q;
  std::copy(ready.begin() + 2, ready.begin() + 2 + static_cast<std::ptrdiff_t>(q.size), agreed.counts.begin());
  take_storage_queues(rt, agreed);
}

// _drain_storage_hit_queue (URC@7cd55c681, URC@17313cf4b:2044-2145): allocate host KV slots for
// the agreed hit, evicting, then falling back to the page-aligned free size if it still reaches the
// threshold. A rank-local decision: ranks whose host pools differ can decide differently.
void Rank::take_storage_hit(Runtime& rt, const PrefetchOperationPtr& op) {
  const RequestId rid = op->request_id;
  auto it = ongoing_prefetch_.find(rid);
  if (it == ongoing_prefetch_.end() || it->second.op != op) {  // ended before its hit came back
    op->io_released = true;
    if (op->io_frees_sidecar) free_sidecar_slots(rt, *op);
    return;
  }
  op->io_released = true;  // until it reaches the IO thread below
  const std::int64_t page = cfg_.page_size_tokens;
  const auto hit_pages = static_cast<std::int32_t>(op->hash_value.size());
  // Every revoke here is logged: the allocation outcome is rank-local, so a divergence starts here.
  auto revoke = [&] {
    rt.emit(rid, RevokeFields{.hit_tokens = hit_pages * page, .op = op->id});
    revoke_pending_prefetch(rt, rid);
  };
  if (op->terminated || (cfg_.has(Fix::kThresholdInDrain) && hit_pages * page < cfg_.prefetch_threshold_tokens)) {  // #33613
    revoke();
    return;
  }
  std::int32_t alloc_pages = hit_pages;
  if (kv_pool_.available() < alloc_pages) evict_host(rt, rid, alloc_pages, 0);
  if (kv_pool_.available() < alloc_pages) {
    const std::int32_t free_pages = kv_pool_.available();
    if (free_pages * page < cfg_.prefetch_threshold_tokens || free_pages == 0) {
      revoke();
      return;
    }
    rt.emit(rid, RegisterShrinkFields{.requested_tokens = hit_pages * page, .granted_tokens = free_pages * page, .free_pages = free_pages});
    alloc_pages = free_pages;
  }
  const bool ok = kv_pool_.alloc(rt.now_ns(), alloc_pages, op->id, op->host_indices);
  HCSIM_ASSERT(ok);
  op->host_allocated = true;
  op->io_released = false;
  op->hash_value.resize(static_cast<std::size_t>(alloc_pages));
  it->second.host_indices = op->host_indices;
  prefetch_buffer_.push(rt, op);
}

// _get_new_batch_prefill_raw: walk the waiting queue in order; a request whose prefetch is still
// running is skipped (`continue`); the walk `break`s when this rank's budget is exhausted, which
// depends on rank-local memory and on the rank-local host tree. As PrefillAdder: device memory
// always bounds (NO_TOKEN), the prefill token budget only once the batch holds a request, and
// budgets count whole pages.
Task<> Rank::get_new_batch_prefill_and_forward(Runtime& rt) {
  const bool bulk = cfg_.has(Fix::kBulkProgressCheck) && !ack_design();  // a proposal on the path before it
  if (bulk) co_await bulk_check_prefetch_progress(rt);
  std::int64_t device_left_tokens = resources_.device_free_tokens;
  std::int64_t device_free_for_load_tokens = resources_.device_free_tokens;  // what init_load_back may allocate
  if (cfg_.has(Fix::kLoadBackAgreedCapacity)) {  // #33442: decide from the group's smallest snapshot
    std::array<std::int64_t, 1> snapshot{device_free_for_load_tokens};
    for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, snapshot);
    device_free_for_load_tokens = snapshot[0];
  }
  std::int64_t prefill_left_tokens = cfg_.max_prefill_tokens;
  pass_.start_walk(waiting_queue_);  // the walk's order, as the pass began
  std::vector<RequestId>& batch = pass_.batch;
  std::vector<std::int32_t>& load_back_slots = pass_.load_back_slots;  // the batch's host hits, loaded to the device
  std::int64_t batch_tokens = 0;
  bool batch_is_full = false;
  for (RequestId rid : pass_.order) {
    if (batch_is_full) {
      emit_batch_full(rt, rid, std::min(device_left_tokens, prefill_left_tokens), batch.size());
      break;
    }
    bool ready = false;
    if (bulk) {
      auto it = bulk_ready_.find(rid);
      ready = it == bulk_ready_.end() || it->second;
    } else {
      ready = ack_design() ? co_await check_prefetch_progress_acked(rt, rid) : co_await check_prefetch_progress(rt, rid);
    }
    if (!ready) continue;
    // req.storage_hit_length = pop_prefetch_loaded_tokens(rid), before the request is known to fit
    // (scheduler.py@faa628694:2674-2677): a request the walk stops at reports 0 when admitted later.
    auto loaded = loaded_tokens_.find(rid);
    const std::int64_t storage_hit_length = loaded == loaded_tokens_.end() ? 0 : loaded->second;
    if (loaded != loaded_tokens_.end()) loaded_tokens_.erase(loaded);
    const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
    // init_next_round_input: match_prefix again, now seeing any host nodes just inserted.
    std::int64_t host_hit_tokens = static_cast<std::int64_t>(host_match_pages(req)) * cfg_.page_size_tokens;
    std::int64_t extend_tokens = req.input_tokens - host_hit_tokens;
    auto paged = [&](std::int64_t tokens) { return (tokens + cfg_.page_size_tokens - 1) / cfg_.page_size_tokens * cfg_.page_size_tokens; };
    std::int64_t extend_paged = paged(extend_tokens);
    rt.emit(rid, MatchFields{.device_tokens = 0, .host_hit_tokens = host_hit_tokens, .extend_tokens = extend_tokens});
    if (extend_paged > device_left_tokens || (!batch.empty() && extend_paged > prefill_left_tokens)) {
      emit_batch_full(rt, rid, std::min(device_left_tokens, prefill_left_tokens), batch.size());
      break;
    }
    if (host_hit_tokens > 0 && !init_load_back(rt, rid, host_hit_tokens, device_free_for_load_tokens, device_left_tokens)) {
      host_hit_tokens = 0;
      extend_tokens = req.input_tokens;
      extend_paged = paged(extend_tokens);
      if (!batch.empty() && extend_paged >= prefill_left_tokens) {  // SP@17313cf4b:1333-1343: OTHER
        emit_batch_full(rt, rid, std::min(device_left_tokens, prefill_left_tokens), batch.size());
        break;
      }
    }
    device_left_tokens -= extend_paged;
    prefill_left_tokens -= extend_paged;
    batch_tokens += extend_tokens;
    batch.push_back(rid);
    rt.emit(rid, ScheduleFields{.extend_tokens = extend_tokens, .storage_hit_tokens = storage_hit_length, .host_hit_tokens = host_hit_tokens});
    const auto host_hit_pages = static_cast<std::int32_t>(host_hit_tokens / cfg_.page_size_tokens);
    tree_.kv_slots(req.pages, 0, host_hit_pages, load_back_slots);
    tree_.touch(req.pages, host_hit_pages);
    if (host_hit_pages > 0) load_back(rt, rid, host_hit_pages);
    if (device_left_tokens < cfg_.page_size_tokens || prefill_left_tokens <= 0) batch_is_full = true;
  }
  bulk_ready_.clear();
  bool any_batch = !batch.empty();
  if (topology_.dp_attention()) {
    // prepare_mlp_sync_batch: every pass gathers the replicas' batches over the TP group, and a
    // replica without one runs an idle batch beside the others (dp_attn.py@17313cf4b:228-300).
    std::array<std::int64_t, 1> replicas_with_batch{any_batch ? 1 : 0};
    co_await rt.collective(Group::kTp, CollectiveOp::kAllReduceMax, replicas_with_batch);
    any_batch = replicas_with_batch[0] == 1;
  }
  if (!any_batch) {
    if (pipeline()) [[unlikely]] co_await forward_in_pipeline(rt, -1, {});
    if (cfg_.sleep_on_idle) {
      co_await sleep_on_idle(rt);
    } else {
      co_await rt.sleep_ns(cfg_.scheduler_pass_ns);  // an empty pass sleeps one pass
    }
    co_return;
  }
  std::erase_if(waiting_queue_, [&](RequestId r) { return std::find(batch.begin(), batch.end(), r) != batch.end(); });
  if (!batch.empty()) rt.emit(kNoRequest, ForwardFields{.batch_tokens = batch_tokens, .batch_requests = static_cast<std::int64_t>(batch.size())});
  // The forward is a collective whose payload is the batch's token count: ranks that built
  // different batches launch forwards that never match. With DP attention the attention-TP group
  // runs the replica's own batch.
  std::array<std::int64_t, 1> forward{batch_tokens};
  if (pipeline()) [[unlikely]] {
    co_await forward_in_pipeline(rt, batch_tokens, load_back_slots);
  } else {
    co_await rt.forward(forward, load_back_slots, topology_.dp_attention() ? Group::kAttnTp : Group::kTp);
  }
  for (RequestId rid : batch) {
    if (cfg_.write_through) co_await write_backup(rt, rid);
    rt.work_finished(rid);
  }
}

// The walk stops at `rid`: the batch is full, with this much budget left.
void Rank::emit_batch_full(Runtime& rt, RequestId rid, std::int64_t budget_tokens_left, std::size_t batch_requests) {
  rt.emit(rid, BatchFullFields{.budget_tokens_left = budget_tokens_left, .batch_requests = static_cast<std::int64_t>(batch_requests)});
}

// init_load_back allocates device slots for the whole host hit now, after evicting, or loads none
// of it (HR@17313cf4b:1374-1432, URC@17313cf4b:1337-1440). Free device memory is this rank's, and no
// collective agrees on the outcome: ranks that differ forward different token counts (#33442). The
// batch's extends are allocated later, so only earlier load-backs have taken from `device_free`.
bool Rank::init_load_back(Runtime& rt, RequestId rid, std::int64_t host_hit_tokens, std::int64_t& device_free_tokens,
                          std::int64_t& budget_tokens) {
  HCSIM_ASSERT(host_hit_tokens > 0);
  if (host_hit_tokens > device_free_tokens) {
    rt.emit(rid, LoadBackFailedFields{.host_hit_tokens = host_hit_tokens, .device_free_tokens = device_free_tokens});
    return false;
  }
  device_free_tokens -= host_hit_tokens;
  budget_tokens -= host_hit_tokens;  // rem_total_tokens reads the allocator's free size (SP@17313cf4b:671-692)
  return true;
}

// L3 backups on the backup thread do not count: the scheduler does not wait for them, and their
// acks are drained by the first pass after the idle sleep.
bool Rank::idle() const {
  return waiting_queue_.empty() && ongoing_prefetch_.empty() && prefetch_queue_.size() == 0 && prefetch_buffer_.size() == 0 &&
         revoke_queue_.empty() && hit_queue_.empty() && kv_release_queue_.empty() && sidecar_release_queue_.empty() && ongoing_write_through_.empty() && ack_write_queue_.empty() &&
         ack_load_queue_.empty();
}

// An empty pass's sleep with sleep_on_idle (upstream's maybe_sleep_on_idle): a group whose ranks
// all have nothing to do sleeps until the next request or for one poll period, whichever comes
// first; they agree first, as a rank with queued work must keep passing to drain it. Otherwise
// the pass sleeps one pass.
Task<> Rank::sleep_on_idle(Runtime& rt) {
  HCSIM_ASSERT(cfg_.sleep_on_idle);
  TimeNs sleep_ns = cfg_.scheduler_pass_ns;
  std::array<std::int64_t, 1> group_idle{idle() ? 1 : 0};
  if (tp_size() > 1) co_await rt.collective(Group::kTp, CollectiveOp::kAllReduceMin, group_idle);
  const TimeNs next_ns = rt.next_arrival_ns();
  const TimeNs until_ns = next_ns < 0 ? rt.now_ns() + kIdlePollNs : std::min(next_ns, rt.now_ns() + kIdlePollNs);
  if (group_idle[0] == 1 && until_ns > rt.now_ns() + sleep_ns) sleep_ns = until_ns - rt.now_ns();
  co_await rt.sleep_ns(sleep_ns);
}

}  // namespace hcsim
