#include "policy/sidecar_stack.h"

#include <array>

#include "policy/assert.h"

namespace hcsim {

namespace {

constexpr std::array<SidecarPool, 1> kMamba{{{"mamba", HitPolicy::kTrailingPages, IndicesFrom::kOwn}}};  // _MambaStrategy (HPA:1266)
constexpr std::array<SidecarPool, 1> kSwa{{{"swa", HitPolicy::kTrailingPages, IndicesFrom::kOwn}}};      // _SwaStrategy (HPA:1331)
constexpr std::array<SidecarPool, 1> kDsa{{{"indexer", HitPolicy::kAllPages, IndicesFrom::kKv}}};        // _DsaStrategy (HPA:1465)
// _DeepSeekV4Strategy (HPA:1188-1265): the SWA component, then C4, C4_INDEXER and C128 (KV-derived,
// one pool here: any of them missing a page has the same effect), then C4_STATE and
// C4_INDEXER_STATE on the SWA buffer's indices (one pool here, likewise). The unified-KV build,
// which offloads no SWA ring, is ROCm-only (env_gate.py@17313cf4b:10-12) and not modelled.
constexpr std::array<SidecarPool, 3> kDeepSeekV4{{{"swa", HitPolicy::kTrailingPages, IndicesFrom::kOwn},
                                                  {"compressed", HitPolicy::kAllPages, IndicesFrom::kKv},
                                                  {"compressed_state", HitPolicy::kTrailingPages, IndicesFrom::kSwa}}};

}  // namespace

std::span<const SidecarPool> sidecar_stack(ModelFamily family) {
  switch (family) {
    case ModelFamily::kDense: return {};
    case ModelFamily::kHybridMamba: return kMamba;
    case ModelFamily::kHybridSwa: return kSwa;
    case ModelFamily::kDsa: return kDsa;
    case ModelFamily::kDeepSeekV4: return kDeepSeekV4;
  }
  HCSIM_ASSERT(false);
  return {};
}

}  // namespace hcsim
