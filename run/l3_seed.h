// What a scenario's /l3 puts in each rank's store, the same for both worlds: KV pages, stale
// pages, and each sidecar pool's objects (policy/sidecar_stack.h) under their object keys.
//
//   deepseek_v4, {"kv_pages": 4, "sidecar_at_pages": [3, 4], "pools": {"compressed": {"missing_pages": [2]}}}
//   -> KV pages 1-4; SWA objects at pages 3 and 4; compressed objects at 1, 3 and 4;
//      compressed_state objects at 3 and 4 (where the SWA objects are).
#pragma once

#include <cstdint>
#include <functional>

#include "run/scenario.h"

namespace hcsim {

struct L3Object {
  enum class Kind : std::uint8_t { kKvPage, kStalePage, kObject, kStaleObject };
  Kind kind = Kind::kKvPage;
  int rank = 0;
  PageKey key = 0;  // a page key, or an object key
};

// Calls `put` for every item of the scenario's L3 contents, rank by rank, KV pages first, in page order.
void seed_l3(const Scenario& scenario, const std::function<void(const L3Object&)>& put);

}  // namespace hcsim
