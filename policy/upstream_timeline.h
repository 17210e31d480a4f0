// Upstream as it was on a date: the dated changes of upstream main that the model follows, in
// first-parent order, and the code path that served a model family under a set of them.
//
//   const auto at = UpstreamPoint::parse("2026-06-04", &error);   // or "faa628694", "faa628694^"
//   FixSet f = fixes_at(*at);          // completion-race-guard, ..., sidecar-after-kv
//   code_path(ModelFamily::kHybridMamba, f)  -> CodePath::kHiMamba
//   upstream_label(f)  -> "upstream 2026-06-04 (736263f3d, #26881) until 2026-06-05 (faa628694, #27366)"
//
// One set of changes serves every family: where the unified tree had a change before it served any
// model by default (the pending-sidecar guard, the synced result MIN, the synced ack checks, the
// sidecar read after KV, the uncapped timeout), the unified path has it built in, and the dated row
// is the one that brought it to the path that served those models then (HiMamba, HiRadixCache).
#pragma once

#include <cstdint>
#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "policy/fixes.h"

namespace hcsim {

// What a scenario's model is made of, as far as the L3 path cares.
enum class ModelFamily : std::uint8_t {
  kDense,        // KV only (dense or MLA): HiRadixCache
  kHybridMamba,  // KV plus one Mamba state per prefetch (Qwen3-Next, Qwen3.5)
  kHybridSwa,    // KV plus an SWA window of per-page values (the unified tree's _SwaStrategy: FULL + SWA)
  kDsa,          // KV plus a KV-derived indexer object per page (DeepSeek V3.2, GLM-5.x: _DsaStrategy)
  // A mixed stack (_DeepSeekV4Strategy): the SWA window, KV-derived compressed caches at every page
  // and SWA-derived compressor states over the window.
  kDeepSeekV4,
};
inline constexpr std::array<ModelFamily, 5> kModelFamilies{ModelFamily::kDense, ModelFamily::kHybridMamba, ModelFamily::kHybridSwa,
                                                          ModelFamily::kDsa, ModelFamily::kDeepSeekV4};
std::string_view model_family_name(ModelFamily f);  // "dense", "hybrid_mamba", "hybrid_swa", "dsa", "deepseek_v4"
std::optional<ModelFamily> model_family_by_name(std::string_view name);

// The upstream tree class whose prefetch code runs.
enum class CodePath : std::uint8_t { kHiRadix, kHiMamba, kUnified };
std::string_view code_path_name(CodePath p);  // "HiRadixCache", "HiMambaRadixCache", "UnifiedRadixCache"
// mem_cache/registry.py: dense models run HiRadixCache; hybrid Mamba runs HiMamba until #27759
// routes it to the unified tree; DSA runs HiRadixCache with the hybrid controller until #30468. Hybrid SWA with HiCache ran HiRadixCache with hybrid SWA memory off
// until #27759 (REG@5e0271536): kHiRadix, which the model does not run for that family
// (hybrid_swa_modelled; prepare_run refuses such a run).
CodePath code_path(ModelFamily family, const FixSet& fixes);
// Whether the model runs `family` on `path`: the SWA families only on the unified tree.
inline bool hybrid_swa_modelled(ModelFamily family, CodePath path) {
  return (family != ModelFamily::kHybridSwa && family != ModelFamily::kDeepSeekV4) || path == CodePath::kUnified;
}
inline constexpr std::string_view kHybridSwaBeforeUnified =
    "HiCache on hybrid SWA models ran HiRadixCache with hybrid SWA memory off before 2026-06-11 (#27759); not modelled";

// The first date the model has code for `family`: HiCache's prefetch policies (#8692) for dense
// models; HiMamba's Mamba state in L3 through the hybrid controller (#20457, 0986bed8e) for hybrid
// Mamba; the unified tree's routing (#27759) for hybrid SWA.
std::string_view family_since(ModelFamily family);
// The first date the model has code for a scenario: its family's, or, with attention CP, that of
// the CP reductions (#20460, 2026-04-27: HiRadixCache and the controller's prefetch groups),
// whichever is later.
std::string_view model_since(ModelFamily family, bool attention_cp);
// Whether `text` (a date or commit) lies before model_since; a preset is never.
bool before_model(std::string_view text, ModelFamily family, bool attention_cp);
// What a scenario is, as refusals name it: "hybrid_mamba", "dense with attention CP".
std::string model_scope(ModelFamily family, bool attention_cp);

// One merged upstream change the model follows.
struct UpstreamChange {
  std::string_view date;    // the squash commit's date, in its committer's zone
  std::string_view commit;  // on upstream main
  std::string_view pr;      // "#26881"
  Fix fix;                  // the behaviour it brought
  std::string_view what;
};
// Oldest first; the last row is the newest upstream the model follows.
std::span<const UpstreamChange> upstream_timeline();
// The newest upstream commit the model follows, and its date.
inline constexpr std::string_view kUpstreamPinCommit = "8e04f66a7";
inline constexpr std::string_view kUpstreamPinDate = "2026-08-28";

// A point on the timeline: every change up to and including row `last` (-1: before the first).
struct UpstreamPoint {
  int last = -1;
  // "YYYY-MM-DD" (every change merged by the end of that day), a timeline commit, or COMMIT^ (the
  // point just before it). On failure nullopt, and why in `error`.
  static std::optional<UpstreamPoint> parse(std::string_view text, std::string* error);
  bool operator==(const UpstreamPoint&) const = default;
};
// Whether `text` is meant as an upstream point (a date or a commit), not a preset name.
bool looks_like_upstream_point(std::string_view text);
FixSet fixes_at(UpstreamPoint at);

// The first point at which exactly `fixes` are in force, or nullopt when no upstream had them.
std::optional<UpstreamPoint> upstream_at(const FixSet& fixes);
// "upstream 2026-06-05 (faa628694, #27366) until 2026-06-11 (5e0271536, #27759)", or
// "hypothetical: never upstream as a whole".
std::string upstream_label(const FixSet& fixes);

}  // namespace hcsim
