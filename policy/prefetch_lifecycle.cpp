// The cache's side of a prefetch, on the scheduler thread, for HiMamba, HiRadixCache and the unified
// tree: registration (prefetch_from_storage), the termination check and TP agreement
// (check_prefetch_progress, can_terminate_prefetch), the result rule and the host-tree insert with
// the sidecar commit (HM@faa628694, URC@17313cf4b; docs/upstream-map.md has the ranges).
#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <utility>

#include "policy/assert.h"
#include "policy/rank.h"
#include "policy/termination.h"
#include "policy/trailing_pages.h"

namespace hcsim {

std::string_view skip_reason_name(SkipReason r) {
  switch (r) {
    case SkipReason::kThreshold: return "threshold";
    case SkipReason::kRateLimited: return "rate_limited";
    case SkipReason::kKvAlloc: return "kv_alloc";
    case SkipReason::kSidecarAlloc: return "sidecar_alloc";
    case SkipReason::kGroupDeclined: return "group_declined";
  }
  HCSIM_ASSERT(false);
  return {};
}

Task<> Rank::prefetch_from_storage(Runtime& rt, RequestId rid, std::int32_t host_hit_pages) {
  const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
  std::int32_t prefetch_pages = static_cast<std::int32_t>(req.pages.size()) - host_hit_pages;
  const std::int64_t page = cfg_.page_size_tokens;
  const std::int64_t requested_tokens = prefetch_pages * page;
  // Every predicate below is rank-local (domain doc 4 step 2b-e).
  tree_.touch(req.pages, host_hit_pages);
  // protect_host: the anchor path stays on host while the operation lives, evictions included.
  const std::int32_t anchor_node = tree_.node_at(req.pages, host_hit_pages);
  tree_.lock(anchor_node);
  const std::int32_t sidecar_slots = sidecar_slots_wanted(prefetch_pages, host_hit_pages);
  std::optional<SkipReason> skip;
  if (requested_tokens < cfg_.prefetch_threshold_tokens) {
    skip = SkipReason::kThreshold;
  } else if (prefetch_tokens_occupied_ >= prefetch_capacity_limit_) {
    skip = SkipReason::kRateLimited;
  } else if (cfg_.has(Fix::kHitThenAlloc)) {
    // #19320 (URC@7cd55c681:1895-1940): only the sidecar's own slot now; host KV slots wait for
    // the group's agreed hit (take_storage_hit).
    evict_host(rt, rid, 0, sidecar_slots);
    if (sidecar_pool_.available() < sidecar_slots) skip = SkipReason::kSidecarAlloc;
  } else {
    // _alloc_with_evict, then #26945 (HM@faa628694:1736-1754): with too few host pages even after
    // eviction, prefetch only the page-aligned free size if it still reaches the threshold.
    evict_host(rt, rid, prefetch_pages, sidecar_slots);
    const std::int32_t free_pages = kv_pool_.available();
    if (free_pages < prefetch_pages && free_pages * page < cfg_.prefetch_threshold_tokens) {
      skip = SkipReason::kKvAlloc;
    } else if (free_pages < prefetch_pages) {
      rt.emit(rid, RegisterShrinkFields{.requested_tokens = requested_tokens, .granted_tokens = free_pages * page, .free_pages = free_pages});
      prefetch_pages = free_pages;
    }
    if (!skip && sidecar_pool_.available() < sidecar_slots) skip = SkipReason::kSidecarAlloc;
  }
  const std::int64_t prefetch_tokens = prefetch_pages * page;
  if (cfg_.has(Fix::kRegistrationConsensus) && !cache_groups_.empty()) {
    std::array<std::int64_t, 1> vote{skip ? 0 : 1};
    for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, vote);
    if (!skip && vote[0] == 0) skip = SkipReason::kGroupDeclined;
  }
  if (skip) {
    tree_.unlock(anchor_node);
    rt.emit(rid, RegisterSkipFields{.prefetch_tokens = requested_tokens, .reason = static_cast<std::int64_t>(*skip)});
    co_return;
  }

  auto op = std::make_shared<PrefetchOperation>();
  op->id = next_op_id_++;
  op->request_id = rid;
  op->start_time_ns = rt.now_ns();
  op->token_pages.assign(req.pages.begin() + host_hit_pages, req.pages.begin() + host_hit_pages + prefetch_pages);
  if (!cfg_.has(Fix::kHitThenAlloc)) {
    const bool kv_ok = kv_pool_.alloc(rt.now_ns(), prefetch_pages, op->id, op->host_indices);
    HCSIM_ASSERT(kv_ok);
    op->host_allocated = true;
  }
  if (sidecar_slots > 0) {
    const bool sidecar_ok = sidecar_pool_.alloc(rt.now_ns(), sidecar_slots, op->id, op->sidecar_slots);
    HCSIM_ASSERT(sidecar_ok);
  }
  // pool_transfers: the component with its buffer, if it took one; then each sidecar, a KV-derived
  // one always (its keys None until the read), an SWA-derived one beside an SWA transfer only, with
  // that transfer's keys (_build_sidecar_transfers, URC@17313cf4b:1442-1490).
  const auto pools = cfg_.stack();
  for (std::size_t tag = 0; tag < pools.size(); ++tag) {
    if (pools[tag].from != IndicesFrom::kKv && op->sidecar_slots.empty()) continue;
    op->pool_transfers.push_back({.tag = tag, .keys = pools[tag].from == IndicesFrom::kKv ? -1 : sidecar_slots, .hit_pages = 0, .read = {}});
  }
  op->pool_transfers_done = !op->has_pool_transfers();
  Ongoing entry;
  entry.op = op;
  entry.anchor_pages = host_hit_pages;
  entry.anchor_node = anchor_node;
  entry.host_indices = op->host_indices;
  entry.prefetch_tokens = prefetch_tokens;
  ongoing_prefetch_.emplace(rid, std::move(entry));
  HCSIM_ASSERT(static_cast<std::size_t>(op->id) == ops_.size());
  let_go_of_finished_ops();
  ops_.push_back(op);
  prefetch_tokens_occupied_ += prefetch_tokens;
  rt.emit(rid, RegisterFields{.prefetch_tokens = prefetch_tokens, .op = op->id, .sidecar_slot = op->first_sidecar_slot()});
  prefetch_queue_.push(rt, std::move(op));
}

void Rank::let_go_of_finished_ops() {
  while (ops_let_go_ < ops_.size() && ops_[ops_let_go_]->ended && ops_[ops_let_go_]->io_released) ops_[ops_let_go_++].reset();  // bounded: ops_
}

std::int32_t Rank::sidecar_slots_wanted(std::int32_t prefetch_pages, std::int32_t host_hit_pages) const {
  if (cfg_.mamba()) return 1;
  return cfg_.swa() ? swa_slots_wanted(cfg_.swa_window_pages, prefetch_pages, host_hit_pages) : 0;
}

bool Rank::local_can_terminate_now(Runtime& rt, const PrefetchOperation& op) const {
  return local_can_terminate(cfg_.policy, cfg_.in_force(), termination_inputs(cfg_, op, rt.now_ns()));
}

// check_prefetch_progress with can_terminate_prefetch inlined, as HM00d has it.
Task<bool> Rank::check_prefetch_progress(Runtime& rt, RequestId rid) {
  HCSIM_ASSERT(!ack_design());  // check_prefetch_progress_acked
  auto it = ongoing_prefetch_.find(rid);
  if (it == ongoing_prefetch_.end()) co_return true;  // rank-local early return: no collective
  PrefetchOperation& op = *it->second.op;
  TerminateReason why = TerminateReason::kBestEffort;
  if (!best_effort()) {  // best_effort returns before any collective
    const bool can = local_can_terminate_now(rt, op);
    std::array<std::int64_t, 2> vote{can ? 0 : 1, op.terminated ? 1 : 0};
    for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMax, vote);
    const bool decided = vote[0] == 0 || vote[1] == 1;
    rt.emit(rid, TerminateVoteFields{.can_terminate = can ? 1 : 0, .terminated = op.terminated ? 1 : 0, .group_decision = decided ? 1 : 0});
    if (!decided) co_return false;
    why = vote[1] == 1 ? TerminateReason::kAnyTerminated : TerminateReason::kAllCan;
  }
  // controller.terminate_prefetch: mark, then read.
  op.mark_terminate();
  if (!op.host_allocated) {  // hit-then-alloc, before the hit drain: nothing read, no result collective
    revoke_pending_prefetch(rt, rid);
    co_return true;
  }
  // [completed, one hit count per pool transfer] (URC@17313cf4b:1811-1850): an SWA prefetch
  // whose component took no part has none.
  PoolHits agreed{op.completed_tokens};
  const std::size_t transfers = op.pool_transfers.size();
  for (std::size_t i = 0; i < transfers; ++i) agreed[1 + i] = op.pool_transfers[i].hit_pages;
  const bool sync_sidecar = sync_pool_hits();
  const std::span<std::int64_t> payload(agreed.data(), 1 + (sync_sidecar ? transfers : 0));
  for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, payload);
  // HM00d reads mamba_loaded after the MIN, from whatever this rank's IO thread has by then.
  if (!sync_sidecar) {
    for (std::size_t i = 0; i < transfers; ++i) agreed[1 + i] = op.pool_transfers[i].hit_pages;
  }
  finish_prefetch(rt, rid, why, agreed[0], std::span<const std::int64_t>(agreed.data() + 1, transfers));
  co_return true;
}

// bulk-progress-check (#33029): one MAX and one MIN per pass over the whole (rank-identical)
// waiting queue; requests this rank does not track contribute values that change nothing.
Task<> Rank::bulk_check_prefetch_progress(Runtime& rt) {
  bulk_ready_.clear();
  const std::size_t n = waiting_queue_.size();
  if (n == 0) co_return;
  std::vector<std::int64_t> votes(2 * n, 0);
  std::vector<bool> can(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    auto it = ongoing_prefetch_.find(waiting_queue_[i]);
    if (it == ongoing_prefetch_.end()) continue;
    const PrefetchOperation& op = *it->second.op;
    can[i] = best_effort() || local_can_terminate_now(rt, op);
    votes[2 * i] = can[i] ? 0 : 1;
    votes[2 * i + 1] = op.terminated ? 1 : 0;
  }
  for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMax, votes);
  constexpr std::int64_t kNoVote = std::numeric_limits<std::int64_t>::max();
  // Per request: [completed, one hit per pool of the stack, by tag] (at least one, as ever); a pool
  // this rank's operation has no transfer for does not vote.
  const std::size_t stride = 1 + std::max<std::size_t>(1, cfg_.stack().size());
  std::vector<std::int64_t> completed(stride * n, kNoVote);
  for (std::size_t i = 0; i < n; ++i) {
    const RequestId rid = waiting_queue_[i];
    const bool decided = votes[2 * i] == 0 || votes[2 * i + 1] == 1;
    bulk_ready_[rid] = decided;
    auto it = ongoing_prefetch_.find(rid);
    if (it == ongoing_prefetch_.end()) continue;
    rt.emit(rid, TerminateVoteFields{.can_terminate = can[i] ? 1 : 0,
                                     .terminated = it->second.op->terminated ? 1 : 0,
                                     .group_decision = decided ? 1 : 0});
    if (!decided) continue;
    it->second.op->mark_terminate();
    if (!it->second.op->host_allocated) {  // hit-then-alloc, before the hit drain
      revoke_pending_prefetch(rt, rid);
      continue;
    }
    const PrefetchOperation& op = *it->second.op;
    completed[stride * i] = op.completed_tokens;
    if (op.pool_transfers.empty()) completed[stride * i + 1] = 0;  // a stack without pools: as ever
    for (const PrefetchOperation::PoolTransfer& t : op.pool_transfers) completed[stride * i + 1 + t.tag] = t.hit_pages;
  }
  for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, completed);
  const bool sync_sidecar = sync_pool_hits();
  for (std::size_t i = 0; i < n; ++i) {
    const RequestId rid = waiting_queue_[i];
    auto it = ongoing_prefetch_.find(rid);
    if (!bulk_ready_[rid] || it == ongoing_prefetch_.end()) continue;
    const PrefetchOperation& op = *it->second.op;
    PoolHits hits{};
    for (std::size_t t = 0; t < op.pool_transfers.size(); ++t) {
      hits[t] = sync_sidecar ? completed[stride * i + 1 + op.pool_transfers[t].tag] : op.pool_transfers[t].hit_pages;
    }
    const TerminateReason why = best_effort()          ? TerminateReason::kBestEffort
                                : votes[2 * i + 1] == 1 ? TerminateReason::kAnyTerminated
                                                        : TerminateReason::kAllCan;
    finish_prefetch(rt, rid, why, completed[stride * i], std::span<const std::int64_t>(hits.data(), op.pool_transfers.size()));
  }
}

// After the group decided to terminate: insert host nodes for the agreed prefix, commit (or not)
// the component, and hand back what is not kept (domain doc 3.5, 4 steps 11-13).
void Rank::finish_prefetch(Runtime& rt, RequestId rid, TerminateReason why, std::int64_t min_completed, std::span<const std::int64_t> pool_hits) {
  auto it = ongoing_prefetch_.find(rid);
  HCSIM_ASSERT(it != ongoing_prefetch_.end());
  Ongoing& entry = it->second;
  PrefetchOperation& op = *entry.op;
  HCSIM_ASSERT(min_completed >= 0 && min_completed <= op.completed_tokens);
  HCSIM_ASSERT(min_completed % cfg_.page_size_tokens == 0);
  HCSIM_ASSERT(pool_hits.size() == op.pool_transfers.size());
  const auto min_pages = static_cast<std::int32_t>(min_completed / cfg_.page_size_tokens);
  const auto local_pages = static_cast<std::int32_t>(op.completed_tokens / cfg_.page_size_tokens);
  rt.emit(rid, TerminateFields{.completed_tokens = op.completed_tokens, .group_min_tokens = min_completed, .op = op.id});
  if (cfg_.clamp_stack()) {
    finish_clamped_prefetch(rt, rid, why, min_completed, pool_hits);
    return;
  }
  if (op.has_pool_transfers() && cfg_.has(Fix::kHybridResultCheck) && !hybrid_result_complete(op, min_completed, pool_hits)) {
    discard_prefetch(rt, rid, why, min_completed);
    return;
  }

  const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
  const std::span<const PageKey> prefix(req.pages.data(), static_cast<std::size_t>(entry.anchor_pages + min_pages));
  const std::span<const std::int32_t> slots(entry.host_indices.data(), static_cast<std::size_t>(min_pages));
  const auto inserted = tree_.insert(prefix, entry.anchor_pages, slots);
  for (std::int32_t i = 0; i < min_pages; ++i) {
    if (i < inserted.matched_pages) {
      kv_pool_.free(rt, slots[static_cast<std::size_t>(i)]);  // duplicates of existing nodes
    } else {
      kv_pool_.to_tree(rt, slots[static_cast<std::size_t>(i)]);
    }
  }
  // HM00d: mamba_loaded comes from this rank's pool_storage_result unless synced (#27264). HiMamba
  // attaches the state to a new leaf; the unified tree to the insert's end node, new or not, unless
  // that node has a host Mamba state already (MC@5e0271536:500-531, MC@17313cf4b:804-840).
  // Loaded: every trailing key's object read on every rank (Mamba: the one state; SWA: the
  // window, all or nothing: SC@5e0271536:705-733, SC@17313cf4b:995-1033).
  const bool own = !op.sidecar_slots.empty();  // the component took part: pool transfer 0
  const bool sidecar_loaded = own && pool_hits[0] >= std::max<std::int64_t>(1, static_cast<std::int64_t>(op.sidecar_slots.size()));
  bool sidecar_attached = false;
  if (own && cfg_.swa()) {
    sidecar_attached = commit_swa_window(rt, entry, inserted.leaf, static_cast<std::int32_t>(prefix.size()), sidecar_loaded);
  } else if (own) {
    const bool target_free = cfg_.unified() ? !prefix.empty() && tree_.sidecar_slot(inserted.leaf) < 0
                                            : inserted.inserted_pages > 0;
    sidecar_attached = target_free && sidecar_loaded;
    if (sidecar_attached) {
      tree_.attach_sidecar(inserted.leaf, op.sidecar_slots.front());
      sidecar_pool_.to_tree(rt, op.sidecar_slots.front());
    } else {
      release_sidecar_slot(rt, op);  // pre-#31668: freed even if the IO thread is still writing it
    }
  }
  rt.emit(rid, CommitFields{.prefix_tokens = min_completed,
                            .matched_tokens = static_cast<std::int64_t>(inserted.matched_pages) * cfg_.page_size_tokens,
                            .sidecar_attached = sidecar_attached ? 1 : 0});
  report_derived_gap(rt, op, inserted.matched_pages, min_pages, sidecar_attached);
  report_hit_loss(rt, rid, entry, why, min_completed, sidecar_attached, false);
  // Read on this rank beyond the group MIN: released at the next drain.
  for (std::int32_t i = min_pages; i < local_pages; ++i) release_kv_slot_later(rt, entry.host_indices[static_cast<std::size_t>(i)]);
  loaded_tokens_[rid] = min_completed - static_cast<std::int64_t>(inserted.matched_pages) * cfg_.page_size_tokens;
  const bool all_hit = !op.hash_value.empty() && min_completed == static_cast<std::int64_t>(op.hash_value.size()) * cfg_.page_size_tokens;
  const bool pools_loaded = std::all_of(op.pool_transfers.begin(), op.pool_transfers.end(), [&](const PrefetchOperation::PoolTransfer& t) {
    return pool_hits[static_cast<std::size_t>(&t - op.pool_transfers.data())] >= std::max<std::int64_t>(1, t.keys);
  });
  const OpEnd end = op.failed ? OpEnd::kFailed : (all_hit && pools_loaded) ? OpEnd::kCompleted : OpEnd::kTerminated;
  release_ongoing(rt, rid, end);
}

// A stack of KV-derived pools only (DSA): from #31443 the usable prefix is clamped to the group's
// pool hits (HR@17313cf4b:1690-1721, URC@17313cf4b:1855-1862); before it, the group's KV pages
// were published whatever the pool reads returned (URC@1a53f231d^:2023-2040 inserts
// [:min_completed]), and a page whose object was not read is garbage, silently (#30057).
void Rank::finish_clamped_prefetch(Runtime& rt, RequestId rid, TerminateReason why, std::int64_t min_completed, std::span<const std::int64_t> pool_hits) {
  Ongoing& entry = ongoing_prefetch_.at(rid);
  PrefetchOperation& op = *entry.op;
  const std::int64_t page = cfg_.page_size_tokens;
  const auto local_pages = static_cast<std::int32_t>(op.completed_tokens / page);
  const std::int64_t min_hit = pool_hits.empty() ? 0 : *std::min_element(pool_hits.begin(), pool_hits.end());
  const bool clamp = cfg_.has(Fix::kHybridResultCheck);
  const auto publish_pages = static_cast<std::int32_t>(clamp ? clamped_pages(min_completed / page, min_hit) : min_completed / page);
  const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
  const std::span<const PageKey> prefix(req.pages.data(), static_cast<std::size_t>(entry.anchor_pages + publish_pages));
  const std::span<const std::int32_t> slots(entry.host_indices.data(), static_cast<std::size_t>(publish_pages));
  const auto inserted = tree_.insert(prefix, entry.anchor_pages, slots);
  for (std::int32_t i = 0; i < publish_pages; ++i) {
    const auto s = static_cast<std::size_t>(i);
    if (i < inserted.matched_pages) {
      kv_pool_.free(rt, slots[s]);  // duplicates of existing nodes
    } else {
      kv_pool_.to_tree(rt, slots[s]);
    }
  }
  const bool objects_whole = report_derived_gap(rt, op, inserted.matched_pages, publish_pages, false) == 0;
  rt.emit(rid, CommitFields{.prefix_tokens = publish_pages * page,
                            .matched_tokens = static_cast<std::int64_t>(inserted.matched_pages) * page,
                            .sidecar_attached = objects_whole ? 1 : 0});
  report_hit_loss(rt, rid, entry, why, min_completed, objects_whole && publish_pages * page == min_completed, false);
  // With the acknowledgement design the completion ack frees [completed:] and nothing frees what the
  // clamp cut from [0, completed) (#37145: "owned by nobody").
  if (!ack_design()) {
    for (std::int32_t i = publish_pages; i < local_pages; ++i) release_kv_slot_later(rt, entry.host_indices[static_cast<std::size_t>(i)]);
  }
  loaded_tokens_[rid] = (publish_pages - inserted.matched_pages) * page;
  const auto hit_pages = static_cast<std::int64_t>(op.hash_value.size());
  const bool all_hit = hit_pages > 0 && min_completed == hit_pages * page && min_hit >= hit_pages;
  release_ongoing(rt, rid, op.failed ? OpEnd::kFailed : all_hit ? OpEnd::kCompleted : OpEnd::kTerminated);
}

// Model bookkeeping: the published new pages [first_new, published) some derived pool's object of
// which this rank did not read (a KV-derived pool: any such page; an SWA-derived one: a page of
// the window it covers, once that window was committed). Each is garbage upstream, silently.
std::int64_t Rank::report_derived_gap(Runtime& rt, const PrefetchOperation& op, std::int32_t first_new, std::int32_t published,
                                      bool window_committed) {
  const auto pools = cfg_.stack();
  const auto hit = static_cast<std::int64_t>(op.hash_value.size());
  std::int64_t gap_pages = 0;
  for (std::int32_t i = first_new; i < published; ++i) {
    bool gap = false;
    for (const PrefetchOperation::PoolTransfer& t : op.pool_transfers) {
      const IndicesFrom from = pools[t.tag].from;
      if (from == IndicesFrom::kOwn || (from == IndicesFrom::kSwa && !window_committed)) continue;
      const std::int64_t keys = std::max<std::int64_t>(t.keys, 0);
      const std::int64_t first = from == IndicesFrom::kKv ? 0 : std::min<std::int64_t>(hit, published) - keys;
      if (i < first) continue;  // before the window this pool covers
      // A window committed short of the hit holds pages whose states the read never fetched.
      const bool read_elsewhere = from == IndicesFrom::kSwa && published < hit;
      const auto idx = static_cast<std::size_t>(i - first);
      gap = gap || read_elsewhere || idx >= t.read.size() || !t.read[idx];
    }
    gap_pages += gap ? 1 : 0;
  }
  if (gap_pages > 0) rt.emit(op.request_id, IndexerGapFields{.pages = gap_pages, .published_pages = published - first_new, .op = op.id});
  return gap_pages;
}

bool Rank::hybrid_result_complete(const PrefetchOperation& op, std::int64_t min_completed, std::span<const std::int64_t> pool_hits) const {
  PoolHits keys{};
  for (std::size_t i = 0; i < op.pool_transfers.size(); ++i) keys[i] = op.pool_transfers[i].keys;
  return hcsim::hybrid_result_complete(static_cast<std::int64_t>(op.hash_value.size()), cfg_.page_size_tokens, min_completed, pool_hits,
                                       std::span<const std::int64_t>(keys.data(), op.pool_transfers.size()));
}

bool Rank::commit_swa_window(Runtime& rt, const Ongoing& entry, std::int32_t leaf, std::int32_t total_pages, bool loaded) {
  PrefetchOperation& op = *entry.op;
  const auto buffer = static_cast<std::int32_t>(op.sidecar_slots.size());
  // Mid-tree, a window shrunk below a full one is missing its head (SC@17313cf4b:1020-1026).
  const bool short_graft = entry.anchor_pages > 0 && buffer < cfg_.swa_window_pages;
  if (!loaded || total_pages == 0 || buffer == 0 || short_graft) {
    release_sidecar_slot(rt, op);
    return false;
  }
  // The buffer holds pages [total_pages - buffer, total_pages); walk leaf -> anchor.
  const std::int32_t first = total_pages - buffer;
  std::int32_t depth = total_pages;
  for (std::int32_t node = leaf; depth > entry.anchor_pages && depth > first; --depth, node = tree_.parent(node)) {
    const std::int32_t slot = op.sidecar_slots[static_cast<std::size_t>(depth - 1 - first)];
    if (tree_.sidecar_slot(node) < 0) {
      tree_.attach_sidecar(node, slot);
      sidecar_pool_.to_tree(rt, slot);
    } else {
      release_sidecar_slot_later(rt, slot);  // the node has its SWA value already
    }
  }
  for (std::int32_t i = 0; i < depth - first; ++i) release_sidecar_slot_later(rt, op.sidecar_slots[static_cast<std::size_t>(i)]);  // above the anchor
  return true;
}

// The all-or-nothing failure (URC@1a53f231d:2096-2145): KV [:completed] and the sidecar slot go
// back through the release queues, nothing is inserted, the request loads nothing.
void Rank::discard_prefetch(Runtime& rt, RequestId rid, TerminateReason why, std::int64_t min_completed) {
  auto it = ongoing_prefetch_.find(rid);
  HCSIM_ASSERT(it != ongoing_prefetch_.end());
  Ongoing& entry = it->second;
  PrefetchOperation& op = *entry.op;
  const auto local_pages = static_cast<std::size_t>(op.completed_tokens / cfg_.page_size_tokens);
  for (std::size_t i = 0; i < local_pages; ++i) release_kv_slot_later(rt, entry.host_indices[i]);
  if (!op.sidecar_slots.empty()) release_sidecar_slot(rt, op);  // derived pools hold no slot of their own
  rt.emit(rid, CommitFields{.prefix_tokens = 0, .matched_tokens = 0, .sidecar_attached = 0});
  report_hit_loss(rt, rid, entry, why, min_completed, false, true);
  loaded_tokens_[rid] = 0;
  release_ongoing(rt, rid, op.failed ? OpEnd::kFailed : OpEnd::kTerminated);
}

// Model bookkeeping, no upstream counterpart: upstream logs nothing when the ranks agreed on an L3
// hit and the request then gets less of it, so such a run looks clean.
void Rank::report_hit_loss(Runtime& rt, RequestId rid, const Ongoing& entry, TerminateReason why, std::int64_t min_completed,
                           bool sidecar_attached, bool discarded) {
  const PrefetchOperation& op = *entry.op;
  const std::int64_t agreed = static_cast<std::int64_t>(op.hash_value.size()) * cfg_.page_size_tokens;
  if (agreed == 0) return;  // no agreed hit: revoked below the threshold, or never queried
  // What the request can use is what match_prefix now finds beyond the anchor (HiMamba's rule
  // needs the Mamba state at the end), within the agreed hit.
  const RequestSpec& req = workload_[static_cast<std::size_t>(rid)];
  const std::int64_t usable_pages = std::max(0, host_match_pages(req) - entry.anchor_pages);
  const std::int64_t published = std::min(agreed, usable_pages * cfg_.page_size_tokens);
  if (published >= agreed) return;
  HitLossCause cause = discarded ? HitLossCause::kDiscarded : cfg_.clamp_stack() ? HitLossCause::kIndexerClamped : HitLossCause::kSidecarNotLoaded;
  if (min_completed < agreed) {
    cause = why == TerminateReason::kAnyTerminated ? HitLossCause::kShortRead
            : why == TerminateReason::kBestEffort  ? HitLossCause::kBestEffort
                                                   : HitLossCause::kTimedOut;
  }
  // Hybrid SWA publishes KV without a window when its SWA component took no part, or mid-tree
  // with a short one: the prefix then does not match either.
  HCSIM_ASSERT(cause != HitLossCause::kSidecarNotLoaded || cfg_.swa() || (op.has_pool_transfers() && !sidecar_attached));
  HCSIM_ASSERT(cause != HitLossCause::kIndexerClamped || !sidecar_attached);
  rt.emit(rid, HitLostFields{.agreed_tokens = agreed, .published_tokens = published, .cause = static_cast<std::int64_t>(cause)});
}

// release_aborted_request (HR263 / HM00d): terminate, then a barrier, but only on a rank that has
// the operation: a rank-local predicate in front of a collective.
Task<> Rank::release_aborted_request(Runtime& rt, RequestId rid) {
  auto it = ongoing_prefetch_.find(rid);
  if (it == ongoing_prefetch_.end()) co_return;
  PrefetchOperationPtr op = it->second.op;  // keeps the operation across the barrier
  op->mark_terminate();
  if (!op->host_allocated) {  // hit-then-alloc, before the hit drain (URC@17313cf4b:1920-1958)
    revoke_pending_prefetch(rt, rid);
    co_return;
  }
  const std::int64_t completed = op->completed_tokens;
  for (const Group g : cache_groups_) co_await rt.collective(g, CollectiveOp::kBarrier, std::span<std::int64_t>{});
  it = ongoing_prefetch_.find(rid);
  HCSIM_ASSERT(it != ongoing_prefetch_.end());
  // host_indices[:completed] go back through the queue; the IO thread releases the rest.
  const auto completed_pages = static_cast<std::size_t>(completed / cfg_.page_size_tokens);
  for (std::size_t i = 0; i < completed_pages; ++i) release_kv_slot_later(rt, it->second.host_indices[i]);
  if (!op->sidecar_slots.empty()) release_sidecar_slot(rt, *op);
  release_ongoing(rt, rid, OpEnd::kAborted);
}

void Rank::release_sidecar_slot(Runtime& rt, PrefetchOperation& op) {
  HCSIM_ASSERT(!op.sidecar_slots.empty());
  // sidecar-release-by-io, and the acknowledgement design's completion drain, free a slot still
  // being read once its transfer is over.
  if ((cfg_.has(Fix::kSidecarReleaseByIo) || ack_design()) && !op.pool_transfers_done && !op.io_released) {
    op.io_frees_sidecar = true;
    return;
  }
  for (std::int32_t slot : op.sidecar_slots) {
    if (cfg_.unified()) {
      release_sidecar_slot_later(rt, slot);
    } else {
      sidecar_pool_.free(rt, slot);  // HM@faa628694:1392-1398, 1846-1850
    }
  }
}

// extra_host_mem_release_queues (URC@5e0271536:2040-2043, URC@17313cf4b:1622): one entry per slot.
void Rank::release_sidecar_slot_later(Runtime& rt, std::int32_t slot) {
  HCSIM_ASSERT(sidecar_release_queue_.size() < static_cast<std::size_t>(sidecar_pool_.capacity()));
  if (sidecar_pool_.queue_release(rt, slot)) sidecar_release_queue_.push_back(slot);
}

void Rank::free_sidecar_slots(Runtime& rt, const PrefetchOperation& op) {
  for (std::int32_t slot : op.sidecar_slots) sidecar_pool_.free(rt, slot);
}

void Rank::revoke_pending_prefetch(Runtime& rt, RequestId rid) {
  auto it = ongoing_prefetch_.find(rid);
  HCSIM_ASSERT(it != ongoing_prefetch_.end());
  if (!it->second.op->sidecar_slots.empty()) release_sidecar_slot(rt, *it->second.op);
  release_ongoing(rt, rid, OpEnd::kRevoked);
}

void Rank::evict_host(Runtime& rt, RequestId rid, std::int32_t kv_pages, std::int32_t sidecar_slots) {
  std::int64_t evicted_pages = 0;
  std::int64_t evicted_sidecars = 0;
  // Each round removes a tree node or a node's Mamba state, so the loops end with the tree.
  // Upstream evicts only host copies of nodes the device has evicted: the device keeps the most
  // recently used device_cache_pages_, and the least recently used leaves go first.
  while (kv_pool_.available() < kv_pages && tree_.node_count() - 1 > device_cache_pages_) {
    const auto victim = tree_.evict_lru_leaf();
    if (!victim) break;  // every leaf is locked
    kv_pool_.free(rt, victim->kv_slot);
    ++evicted_pages;
    if (victim->sidecar_slot >= 0) {
      sidecar_pool_.free(rt, victim->sidecar_slot);
      ++evicted_sidecars;
    }
  }
  while (sidecar_pool_.available() < sidecar_slots) {
    const auto slot = tree_.evict_lru_sidecar();
    if (!slot) break;
    sidecar_pool_.free(rt, *slot);
    ++evicted_sidecars;
  }
  if (evicted_pages + evicted_sidecars > 0) {
    rt.emit(rid, HostEvictFields{.pages = evicted_pages, .sidecars = evicted_sidecars, .pages_needed = kv_pages});
  }
}

void Rank::release_kv_slot_later(Runtime& rt, std::int32_t slot) {
  HCSIM_ASSERT(kv_release_queue_.size() < static_cast<std::size_t>(kv_pool_.capacity()));  // each slot at most once
  if (kv_pool_.queue_release(rt, slot)) kv_release_queue_.push_back(slot);
}

void Rank::release_ongoing(Runtime& rt, RequestId rid, OpEnd end) {
  auto it = ongoing_prefetch_.find(rid);
  HCSIM_ASSERT(it != ongoing_prefetch_.end());
  PrefetchOperation& op = *it->second.op;
  op.ended = true;
  op.end = end;
  tree_.unlock(it->second.anchor_node);
  rt.emit(rid, OpEndFields{.state = static_cast<std::int64_t>(end), .completed_tokens = op.completed_tokens, .op = op.id});
  prefetch_tokens_occupied_ -= it->second.prefetch_tokens;
  HCSIM_ASSERT(prefetch_tokens_occupied_ >= 0);
  ongoing_prefetch_.erase(it);
}

// Whether a slot owned by work is held where nobody will free it.
bool Rank::leaked(const HostSlotPool::Record& r, TimeNs now_ns) const {
  if (r.owner == SlotOwner::kReleaseQueued) return true;  // no MIN-agreed drain took it
  if (r.owner != SlotOwner::kOperation) return false;
  if (r.op_id >= kWriteOwnerBase) {
    // A write-through backup whose copy completed long ago and was never drained: its slots stay locked.
    auto w = ongoing_write_through_.find(r.op_id - kWriteOwnerBase);
    return w != ongoing_write_through_.end() && now_ns - w->second.copy_done_ns > kAckDrainGraceNs;
  }
  if (r.op_id < 0) return false;
  const PrefetchOperation* op = ops_[static_cast<std::size_t>(r.op_id)].get();
  return op == nullptr || (op->ended && op->io_released);
}

// Who holds a leaked slot, and why nobody will free it.
std::string Rank::leak_owner(const HostSlotPool::Record& r) const {
  if (r.owner == SlotOwner::kReleaseQueued) return "the release queue, which no MIN-agreed drain took";
  if (r.op_id >= kWriteOwnerBase) return "write-through backup " + std::to_string(r.op_id - kWriteOwnerBase) + ", acked and never drained";
  return "prefetch op " + std::to_string(r.op_id) + ", which ended";
}

std::vector<HostSlotPool::Leak> Rank::leaked_slots(TimeNs now_ns) const {
  std::vector<HostSlotPool::Leak> out;
  for (const HostSlotPool* pool : {&kv_pool_, &sidecar_pool_}) {
    for (const auto& r : pool->work_census()) {
      if (leaked(r, now_ns)) out.push_back({r, leak_owner(r)});
    }
  }
  return out;
}

std::int64_t Rank::leaked_slot_count(TimeNs now_ns) const {
  // The verdict depends on the slot's owner and operation (and rank state the count leaves
  // alone), and an operation's slots were taken together and mostly sit together in the census:
  // it is worked out once per run of them, not once a slot.
  std::int64_t n = 0;
  for (const HostSlotPool* pool : {&kv_pool_, &sidecar_pool_}) {
    std::optional<std::pair<SlotOwner, std::int32_t>> judged;
    bool verdict = false;
    n += pool->count_work([&](const HostSlotPool::Record& r) {
      if (judged != std::pair{r.owner, r.op_id}) {
        judged = std::pair{r.owner, r.op_id};
        verdict = leaked(r, now_ns);
      }
      return verdict;
    });
  }
  return n;
}

}  // namespace hcsim
