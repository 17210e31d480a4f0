// Configuration of the per-rank model: the termination policy and its knobs, page geometry, the
// scheduler's budget, the fix set, and the per-rank resources that may differ between ranks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "policy/fixes.h"
#include "policy/sidecar_stack.h"
#include "policy/topology.h"
#include "policy/trace_event.h"
#include "policy/upstream_timeline.h"

namespace hcsim {

enum class PrefetchPolicy : std::uint8_t { kBestEffort, kWaitComplete, kTimeout };
std::string_view policy_name(PrefetchPolicy p);
std::optional<PrefetchPolicy> policy_by_name(std::string_view name);

// Upstream has two timeout formulas (domain doc 3.4):
//   linear (HR263 / Unified):   base + hit_tokens/1024 * per_ki_token, no cap (1 s, 0.25 s)
//   capped (PrefetchTimeoutConfig, HM00d): min(max, base + hit_tokens/1024 * per_ki_token)
//                                          (2.0 s, 0.1 s, 30 s)
enum class TimeoutFormula : std::uint8_t { kLinear, kCapped };
std::string_view timeout_formula_name(TimeoutFormula f);
std::optional<TimeoutFormula> timeout_formula_by_name(std::string_view name);

struct TimeoutConfig {
  TimeoutFormula formula = TimeoutFormula::kCapped;
  TimeNs base_ns = 2'000'000'000;
  TimeNs per_ki_token_ns = 100'000'000;
  TimeNs max_ns = 30'000'000'000;  // ignored by the linear formula
  static TimeoutConfig linear_defaults() { return {TimeoutFormula::kLinear, 1'000'000'000, 250'000'000, 0}; }
  static TimeoutConfig capped_defaults() { return {}; }
};

struct RankResources {
  std::int64_t device_free_tokens = 1 << 20;  // the admission budget's memory bound on this rank
  std::int32_t host_kv_pages = 4096;          // host KV pool, in pages
  std::int32_t host_kv_occupied_pages = 0;    // of which held from the start by resident host data
  std::int32_t host_sidecar_slots = 64;       // host Mamba state slots; hybrid SWA: the SWA host pool, in pages
};

struct PolicyConfig {
  PrefetchPolicy policy = PrefetchPolicy::kWaitComplete;
  TimeoutConfig timeout;
  FixSet fixes;  // the run's variant; what is in force on its path: in_force()
  std::int32_t page_size_tokens = 64;
  std::int32_t prefetch_threshold_tokens = 256;
  std::int32_t storage_batch_pages = 128;
  // How the storage backend reports a batch read's progress (CC@faa628694:935-972): the file
  // backend copies each page into the host pool and counts it then, page_copy_ns a page; a
  // zero-copy backend counts the batch's leading pages at once when the read returns.
  bool zero_copy_progress = false;
  TimeNs page_copy_ns = 0;
  ModelFamily family = ModelFamily::kHybridMamba;  // hybrid Mamba: one sidecar object per prefetch
  // hybrid SWA: the sliding window in pages (full_window_pages = ceil(window / page), SC@17313cf4b:776).
  std::int32_t swa_window_pages = 0;
  // A draft model (speculative decoding) with a KV pool of its own: upstream's SIDECAR draft plan.
  bool draft_sidecar = false;
  bool draft_in_force = false;                  // draft_sidecar on the unified tree from #30393: set with the fixes
  CodePath path = CodePath::kHiMamba;           // code_path(family, fixes): set with the fixes
  // The scenario set the timeout; else each run takes its code path's default at its date.
  bool timeout_given = false;
  bool write_through = false;                   // back up each forward's new pages to host (write_through)
  std::int64_t max_prefill_tokens = 16384;      // the admission walk's token budget
  // Upstream's --hicache-ratio, host pool over device pool. The device holds the most recently
  // used host_kv_pages / ratio pages of the host tree, which evict_host leaves alone.
  double hicache_ratio = 2.0;
  TimeNs scheduler_pass_ns = 1'000'000;         // one scheduler iteration without a forward
  // Upstream's --sleep-on-idle: a group with nothing waiting, in flight or queued sleeps until the
  // next request instead of passing every scheduler_pass_ns (off upstream by default).
  bool sleep_on_idle = false;
  std::vector<RankResources> ranks;             // one entry per rank, stage by stage
  int attn_dp = 1;                              // DP attention replicas (policy/topology.h)
  int attn_cp = 1;                              // attention context parallelism
  int pp = 1;                                   // pipeline stages

  Topology topology() const { return {.tp = static_cast<int>(ranks.size()) / pp, .dp = attn_dp, .cp = attn_cp, .pp = pp}; }

  // The family's sidecar pools in force on this run's path and date (sidecar_stack.h): a draft
  // model's pool only on the unified tree from #30393.
  std::span<const SidecarPool> stack() const { return sidecar_stack(family, draft_in_force); }
  // The pools whose objects L3 holds and backups write: the draft's at every date (before #30393
  // they rode along with each KV batch, unchecked).
  std::span<const SidecarPool> stored_stack() const { return sidecar_stack(family, draft_sidecar); }
  bool mamba() const { return family == ModelFamily::kHybridMamba; }
  // An SWA window buffer of the stack's own: hybrid SWA, DeepSeek-V4.
  bool swa() const { return family == ModelFamily::kHybridSwa || family == ModelFamily::kDeepSeekV4; }
  // A component with host slots of its own beside KV: the Mamba state or the SWA window.
  bool sidecar() const { return mamba() || swa(); }
  // Every pool KV-derived and ALL_PAGES (DSA): the result is clamped, never all-or-nothing.
  bool clamp_stack() const {
    const auto pools = stack();
    return !pools.empty() && std::all_of(pools.begin(), pools.end(), [](const SidecarPool& p) { return p.from == IndicesFrom::kKv && p.hit == HitPolicy::kAllPages; });
  }
  bool unified() const { return path == CodePath::kUnified; }
  // The fixes in force on this run's code path: the unified tree had four of them before it served
  // any model by default, and never took #23309's timeout (upstream_timeline.h).
  FixSet in_force() const {
    // The pending-sidecar guard is HiMamba's with #27366, HiRadixCache's with #27550. HiMamba never
    // chained ack counts across stages (#27285 changed HR and URC only).
    if (path == CodePath::kHiRadix) return fixes.has(Fix::kHiRadixPoolGuard) ? fixes.with(Fix::kPoolTransferGuard) : fixes.without(Fix::kPoolTransferGuard);
    // Nor did it live to see the acknowledgement design (deleted before #27010).
    if (!unified()) return fixes.without(Fix::kPpAckChain).without(Fix::kAckDesign).without(Fix::kVoteOnlyUnderTimeout);
    return fixes.with(Fix::kSyncedAckChecks).with(Fix::kSidecarHitSync).with(Fix::kPoolTransferGuard).with(Fix::kSidecarAfterKv).with(
        Fix::kPpAckChain).without(Fix::kPrefetchTimeoutConfig);
  }
  bool has(Fix f) const { return in_force().has(f); }
  // The default timeout of this path at this date, for a scenario that sets none.
  TimeoutConfig default_timeout() const {
    return has(Fix::kPrefetchTimeoutConfig) ? TimeoutConfig::capped_defaults() : TimeoutConfig::linear_defaults();
  }
  // Sets the fixes, and with them the code path and (unless the scenario set it) the timeout.
  void apply_fixes(const FixSet& f) {
    fixes = f;
    path = code_path(family, f);
    draft_in_force = draft_sidecar && unified() && has(Fix::kDraftSidecars);
    if (!timeout_given) timeout = default_timeout();
  }
};

}  // namespace hcsim
