// The rules of a sidecar whose objects cover the trailing pages of a prefix (upstream's
// TRAILING_PAGES pools): the Mamba state (one page, N = 1) and the SWA window (N pages). Pure
// functions, so a test can pin each rule without a run:
//
//   trailing_pages_hit({1,1,0,1,1}, 5, 2)    -> 5   (pages 3 and 4 have their objects)
//   trailing_pages_hit({1,1,0,1,1}, 5, 3)    -> 2   (no 3-page run ends later than page 1)
//   swa_slots_wanted(4, 9, 7) -> 4;  swa_slots_wanted(4, 2, 0) -> 2;  swa_slots_wanted(4, 2, 7) -> 0
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

namespace hcsim {

// The largest L <= kv_hit_pages such that pages [max(0, L - trailing), L) all have their object
// (the file backend's batch_exists_v2 folding, HS@17313cf4b:636-645); 0 when none does.
inline std::int64_t trailing_pages_hit(std::span<const std::uint8_t> present, std::int64_t kv_hit_pages, std::int64_t trailing) {
  const std::int64_t hit = std::min<std::int64_t>(kv_hit_pages, static_cast<std::int64_t>(present.size()));
  // One pass: the longest run of present pages ending at each page, then the last end it covers.
  std::int64_t run = 0;
  std::int64_t best = 0;
  for (std::int64_t end = 1; end <= hit; ++end) {
    run = present[static_cast<std::size_t>(end - 1)] ? run + 1 : 0;
    if (run >= std::min(trailing, end)) best = end;
  }
  return best;
}

// An ALL_PAGES pool's hit (the DSA indexer): the leading run of pages within the KV hit that have
// their object (the file backend's batch_exists_v2 boundary, HS@17313cf4b:628-650).
inline std::int64_t all_pages_hit(std::span<const std::uint8_t> present, std::int64_t kv_hit_pages) {
  const std::int64_t hit = std::min<std::int64_t>(kv_hit_pages, static_cast<std::int64_t>(present.size()));
  std::int64_t run = 0;
  while (run < hit && present[static_cast<std::size_t>(run)]) ++run;
  return run;
}

// The clamp of a KV-derived ALL_PAGES stack (HR@17313cf4b:1690-1721, URC@17313cf4b:1855-1862): the
// usable prefix is the group's KV pages, cut to the group's indexer hit.
inline std::int64_t clamped_pages(std::int64_t min_completed_pages, std::int64_t min_indexer_pages) {
  return std::max<std::int64_t>(0, std::min(min_completed_pages, min_indexer_pages));
}

// The SWA slots a cache-mode prefetch of `prefetch_pages` takes at registration (SC@17313cf4b:767-803):
// a full window if it covers one; a sub-window only at the root (no host hit), where the sequence
// is its own window; mid-tree none (the window's head is not on host for sure).
inline std::int32_t swa_slots_wanted(std::int32_t window_pages, std::int32_t prefetch_pages, std::int32_t host_hit_pages) {
  if (window_pages <= 0 || prefetch_pages <= 0) return 0;
  if (prefetch_pages >= window_pages) return window_pages;
  return host_hit_pages == 0 ? prefetch_pages : 0;
}

// The all-or-nothing publish of a hybrid result (URC@1a53f231d:2096-2145, URC@17313cf4b:1864-1870):
// every KV page of the hit, and for every pool transfer as many objects as it has keys (Mamba: 1;
// SWA: min(N, hit); a KV-derived pool: every hit page, its keys None (-1) if its read never ran),
// MIN over the ranks.
inline bool hybrid_result_complete(std::int64_t hit_pages, std::int64_t page_tokens, std::int64_t min_completed_tokens,
                                   std::span<const std::int64_t> pool_hits, std::span<const std::int64_t> pool_keys) {
  if (hit_pages <= 0 || min_completed_tokens != hit_pages * page_tokens || pool_hits.size() != pool_keys.size()) return false;
  for (std::size_t i = 0; i < pool_hits.size(); ++i) {
    if (pool_keys[i] < 0 || pool_hits[i] != pool_keys[i]) return false;
  }
  return true;
}

}  // namespace hcsim
