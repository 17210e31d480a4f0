#include "policy/termination.h"

#include <algorithm>
#include <limits>

#include "policy/assert.h"

namespace hcsim {

TimeNs prefetch_timeout_ns(const TimeoutConfig& cfg, std::int64_t hit_pages, std::int32_t page_size_tokens) {
  HCSIM_ASSERT(hit_pages >= 0 && page_size_tokens > 0);
  // Integer nanoseconds: per_ki_token * tokens / 1024, saturating at the largest time.
  const std::int64_t tokens = hit_pages * page_size_tokens;
  TimeNs product = 0;
  TimeNs scaled = 0;
  if (__builtin_mul_overflow(cfg.per_ki_token_ns, tokens, &product) ||
      __builtin_add_overflow(cfg.base_ns, product / 1024, &scaled)) {
    scaled = std::numeric_limits<TimeNs>::max();
  }
  if (cfg.formula == TimeoutFormula::kCapped) return std::min(cfg.max_ns, scaled);
  return scaled;
}

bool local_can_terminate(PrefetchPolicy policy, const FixSet& fixes, const TerminationInputs& in) {
  HCSIM_ASSERT(policy != PrefetchPolicy::kBestEffort);  // decided before any vote
  const bool pool_pending = in.has_pool && !in.pool_done;
  if (fixes.has(Fix::kTimeoutBeatsGuard)) {
    // #35181: completion includes the sidecars; the timeout is an independent condition.
    const bool completed = in.kv_done && !pool_pending;
    if (policy == PrefetchPolicy::kWaitComplete) return completed;
    return completed || in.timed_out;
  }
  bool can = policy == PrefetchPolicy::kWaitComplete ? in.kv_done : (in.kv_done || in.timed_out);
  // #27366 (HM@faa628694:1665-1666): placed after the policy evaluation, so it also overrides an
  // expired timeout.
  if (fixes.has(Fix::kPoolTransferGuard) && in.kv_done && pool_pending) can = false;
  return can;
}

TerminationInputs termination_inputs(const PolicyConfig& cfg, const PrefetchOperation& op, TimeNs now_ns) {
  TerminationInputs in;
  const auto hit_pages = static_cast<std::int64_t>(op.hash_value.size());
  // #9397: an empty hash_value is never complete (0 == 0 must not count as done).
  const bool hit_known = hit_pages > 0 || !cfg.has(Fix::kCompletionRaceGuard);
  in.kv_done = hit_known && op.completed_tokens == hit_pages * cfg.page_size_tokens;
  in.has_pool = op.has_pool_transfers();
  in.pool_done = op.pool_transfers_done;
  in.timed_out = now_ns - op.start_time_ns > prefetch_timeout_ns(cfg.timeout, hit_pages, cfg.page_size_tokens);
  return in;
}

}  // namespace hcsim
