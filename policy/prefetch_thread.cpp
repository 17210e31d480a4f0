// The prefetch thread of one rank (CC-B prefetch_thread_func, domain doc 4 steps 3-5): the L3 hit
// query, MIN agreement on the hit over its own group, then revoke or hand the operation to IO.
#include <algorithm>
#include <array>

#include "policy/assert.h"
#include "policy/rank.h"
#include "policy/trailing_pages.h"

namespace hcsim {

Task<> Rank::prefetch_thread(Runtime& rt) {
  HCSIM_ASSERT(rt.rank() == rank_ && rt.actor() == ActorKind::kPrefetch);
  std::vector<std::uint8_t> sidecar_present;
  for (;;) {  // bounded by the world, as the scheduler loop
    PrefetchOperationPtr op = co_await prefetch_queue_.pop(rt);
    const RequestId rid = op->request_id;
    // batch_exists_v2: the leading KV run, limited by the sidecar's trailing page (TRAILING_PAGES).
    // From #19320 an operation the scheduler ended before its query is not queried: hit 0, and
    // the MIN below still runs (CC@7cd55c681:1061-1064).
    const std::size_t pages = op->token_pages.size();
    sidecar_present.assign(pages * std::max<std::size_t>(1, cfg_.stack().size()), 0);  // one block of pages per pool
    const bool skip_query = cfg_.has(Fix::kHitThenAlloc) && op->terminated;
    auto hit_pages = skip_query ? std::int64_t{0} : co_await rt.storage(StorageOp::kHitQuery, rid, op->token_pages, sidecar_present);
    HCSIM_ASSERT(hit_pages >= 0 && static_cast<std::size_t>(hit_pages) <= op->token_pages.size());
    if (cfg_.has(Fix::kNegativeCache)) {  // a recently failed key ends the hit
      for (std::int64_t i = 0; i < hit_pages; ++i) {
        auto neg = negative_until_.find(op->token_pages[static_cast<std::size_t>(i)]);
        if (neg != negative_until_.end() && neg->second > rt.now_ns()) {
          hit_pages = i;
          break;
        }
      }
    }
    // Each pool's boundary against the KV run, and the least of them (HS@17313cf4b:628-650): a
    // trailing window is not checked again at the smaller length; its read then misses.
    const std::int64_t kv_hit_pages = hit_pages;
    for (const PrefetchOperation::PoolTransfer& t : op->pool_transfers) {
      const std::span<const std::uint8_t> present(sidecar_present.data() + t.tag * pages, pages);
      const std::int64_t boundary = cfg_.stack()[t.tag].hit == HitPolicy::kAllPages ? all_pages_hit(present, kv_hit_pages)
                                                                                     : trailing_pages_hit(present, kv_hit_pages, t.keys);
      hit_pages = std::min(hit_pages, boundary);
    }
    std::array<std::int64_t, 1> hit_tokens{hit_pages * cfg_.page_size_tokens};
    const std::int64_t local_hit_tokens = hit_tokens[0];
    for (const Group g : prefetch_groups_) co_await rt.collective(g, CollectiveOp::kAllReduceMin, hit_tokens);
    rt.emit(rid, HitQueryFields{.local_hit_tokens = local_hit_tokens, .group_min_hit_tokens = hit_tokens[0], .op = op->id});

    // #33613 leaves the threshold to the scheduler's hit drain (take_storage_hit).
    const bool threshold_in_drain = cfg_.has(Fix::kHitThenAlloc) && cfg_.has(Fix::kThresholdInDrain);
    if (!threshold_in_drain && hit_tokens[0] < std::max(cfg_.prefetch_threshold_tokens, cfg_.page_size_tokens)) {
      rt.emit(rid, RevokeFields{.hit_tokens = hit_tokens[0], .op = op->id});
      op->io_released = true;  // never reaches the IO thread
      if (op->io_frees_sidecar) free_sidecar_slots(rt, *op);  // left to us by an early end
      if (cfg_.has(Fix::kRevokeMarksTerminated)) op->mark_terminate();  // #16747
      HCSIM_ASSERT(revoke_queue_.size() < workload_.size());  // one revoke per registered request at most
      revoke_queue_.push_back({rid, rt.now_ns()});
      for (std::int32_t slot : op->host_indices) release_kv_slot_later(rt, slot);  // not the sidecar slot (HM00d)
      op->host_indices.clear();
      continue;
    }
    if (op->ended && op->end != OpEnd::kAborted && hit_tokens[0] > 0) {  // the scheduler gave up on it before this agreement
      rt.emit(rid, HitLostFields{.agreed_tokens = hit_tokens[0],
                                 .published_tokens = 0,
                                 .cause = static_cast<std::int64_t>(HitLossCause::kEndedBeforeHit)});
    }
    const auto agreed_pages = static_cast<std::size_t>(hit_tokens[0] / cfg_.page_size_tokens);
    op->hash_value.assign(op->token_pages.begin(), op->token_pages.begin() + static_cast<std::ptrdiff_t>(agreed_pages));
    if (cfg_.has(Fix::kHitThenAlloc)) {  // prefetch_hit_queue (CC@7cd55c681:1047-1085)
      HCSIM_ASSERT(hit_queue_.size() < workload_.size());  // one operation per registered request at most
      hit_queue_.push_back({std::move(op), rt.now_ns()});
      continue;
    }
    for (std::size_t i = agreed_pages; i < op->host_indices.size(); ++i) release_kv_slot_later(rt, op->host_indices[i]);
    op->host_indices.resize(agreed_pages);
    prefetch_buffer_.push(rt, std::move(op));
  }
}

}  // namespace hcsim
