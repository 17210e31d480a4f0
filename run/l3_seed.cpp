#include "run/l3_seed.h"

#include <algorithm>

#include "policy/sidecar_stack.h"

namespace hcsim {

void seed_l3(const Scenario& scenario, const std::function<void(const L3Object&)>& put) {
  const auto stack = scenario.policy.stored_stack();
  for (const L3Contents& c : scenario.l3) {
    const auto keys = prefix_page_keys(c.prefix, c.kv_pages);
    // Pool 0's objects: the pages given, or, for a KV-derived pool (the DSA indexer), every page.
    std::vector<std::uint8_t> at(keys.size(), 0);
    const bool kv_derived_first = !stack.empty() && stack[0].from == IndicesFrom::kKv;
    if (kv_derived_first && !c.sidecar_pages_given) std::fill(at.begin(), at.end(), std::uint8_t{1});
    for (std::int32_t p : c.sidecar_at_pages) at[static_cast<std::size_t>(p - 1)] = 1;
    auto page_key = [&](std::int32_t p) { return keys[static_cast<std::size_t>(p - 1)]; };
    for (int r = 0; r < scenario.world.ranks; ++r) {
      if (!c.on_rank(r)) continue;
      for (PageKey k : keys) put({L3Object::Kind::kKvPage, r, k});
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (at[i]) put({L3Object::Kind::kObject, r, keys[i]});
      }
      for (std::int32_t p : c.sidecar_stale_pages) put({L3Object::Kind::kStaleObject, r, page_key(p)});
      for (std::int32_t p : c.stale_pages) put({L3Object::Kind::kStalePage, r, page_key(p)});
      // Derived pools: where their source's objects are (every page from KV; pool 0's from SWA).
      for (std::size_t tag = 1; tag < stack.size(); ++tag) {
        const auto given = std::find_if(c.pools.begin(), c.pools.end(), [&](const L3Contents::DerivedPool& d) { return d.tag == tag; });
        std::vector<std::uint8_t> here = stack[tag].from == IndicesFrom::kKv ? std::vector<std::uint8_t>(keys.size(), 1) : at;
        if (given != c.pools.end()) {
          for (std::int32_t p : given->missing_pages) here[static_cast<std::size_t>(p - 1)] = 0;
        }
        for (std::size_t i = 0; i < keys.size(); ++i) {
          if (here[i]) put({L3Object::Kind::kObject, r, object_key(tag, keys[i])});
        }
        if (given == c.pools.end()) continue;
        for (std::int32_t p : given->stale_pages) put({L3Object::Kind::kStaleObject, r, object_key(tag, page_key(p))});
      }
    }
  }
}

}  // namespace hcsim
