// The sidecar pools of a model family's host stack: what a prefetch reads beside the KV anchor, how
// each pool's hit folds at query time, and where its host indices come from (upstream's stack
// strategies, HPA@17313cf4b:1188-1662; docs/upstream-map.md, "Model families").
//
//   hybrid_mamba  -> mamba (own slot, trailing 1)
//   hybrid_swa    -> swa (own slots, trailing window)
//   dsa           -> indexer (KV-derived, all pages)
//   deepseek_v4   -> swa, compressed (KV-derived, all pages), compressed_state (SWA-derived, trailing window)
//   any, draft    -> ..., draft (KV-derived, all pages: build_full_draft_pools, HPA@17313cf4b:994-1067)
//
// A pool's index in its stack is its tag in L3 object keys: pool 0's object for a page is keyed by
// the page key itself, so single-pool stacks keep the keys they always had.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "policy/runtime.h"
#include "policy/upstream_timeline.h"

namespace hcsim {

// PoolHitPolicy: ALL_PAGES wants an object at every hit page (the leading run counts);
// TRAILING_PAGES at the hit's last N pages (Mamba: N = 1; SWA: the window).
enum class HitPolicy : std::uint8_t { kAllPages, kTrailingPages };
// indices_from_pool: a pool with host slots of its own (Mamba, SWA), or one laid out like another
// pool's slots (KV-derived, SWA-derived), which takes no slot and reads the other pool's keys.
enum class IndicesFrom : std::uint8_t { kOwn, kKv, kSwa };

struct SidecarPool {
  std::string_view name;
  HitPolicy hit = HitPolicy::kAllPages;
  IndicesFrom from = IndicesFrom::kKv;
};

// The family's sidecar pools, in upstream's pool_transfers order (components, then sidecars), with
// `draft`, a draft model's KV pool last (registered after the stack's own, URC@17313cf4b:481-488).
std::span<const SidecarPool> sidecar_stack(ModelFamily family, bool draft = false);
inline constexpr std::size_t kMaxSidecarPools = 4;

// The L3 key of pool `tag`'s object for `page` (tag 0: the page key itself).
constexpr PageKey object_key(std::size_t tag, PageKey page) {
  if (tag == 0) return page;
  // splitmix64 of the page key and the tag: distinct per pool, never a page key by design intent.
  PageKey z = page + 0x9E3779B97F4A7C15ULL * static_cast<PageKey>(tag + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace hcsim
