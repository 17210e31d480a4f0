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

// A draft model with a KV pool of its own (the SIDECAR plan, BSW@17313cf4b:263-268): DRAFT, laid out
// like KV. A DSA draft's DRAFT_INDEXER and an SWA draft's DRAFT_SWA (HPA:1070-1121) are not modelled.
constexpr SidecarPool kDraft{"draft", HitPolicy::kAllPages, IndicesFrom::kKv};
template <std::size_t N>
constexpr std::array<SidecarPool, N + 1> with_draft(const std::array<SidecarPool, N>& pools) {
  std::array<SidecarPool, N + 1> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = pools[i];
  out[N] = kDraft;
  return out;
}
constexpr std::array<SidecarPool, 1> kDenseDraft{{kDraft}};
constexpr auto kMambaDraft = with_draft(kMamba);
constexpr auto kSwaDraft = with_draft(kSwa);
constexpr auto kDsaDraft = with_draft(kDsa);
constexpr auto kDeepSeekV4Draft = with_draft(kDeepSeekV4);
static_assert(kDeepSeekV4Draft.size() <= kMaxSidecarPools);

}  // namespace

std::span<const SidecarPool> sidecar_stack(ModelFamily family, bool draft) {
  switch (family) {
    case ModelFamily::kDense: return draft ? std::span<const SidecarPool>(kDenseDraft) : std::span<const SidecarPool>{};
    case ModelFamily::kHybridMamba: return draft ? std::span<const SidecarPool>(kMambaDraft) : kMamba;
    case ModelFamily::kHybridSwa: return draft ? std::span<const SidecarPool>(kSwaDraft) : kSwa;
    case ModelFamily::kDsa: return draft ? std::span<const SidecarPool>(kDsaDraft) : kDsa;
    case ModelFamily::kDeepSeekV4: return draft ? std::span<const SidecarPool>(kDeepSeekV4Draft) : kDeepSeekV4;
  }
  HCSIM_ASSERT(false);
  return {};
}

}  // namespace hcsim
