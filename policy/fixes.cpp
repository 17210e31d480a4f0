#include "policy/fixes.h"

#include <array>

#include "policy/assert.h"

namespace hcsim {

namespace {

constexpr std::array<FixInfo, kFixCount> kFixes = {{
    {Fix::kPoolTransferGuard, "pool-transfer-guard", "sgl-project/sglang#27550",
     "KV complete with a sidecar transfer pending votes 'cannot terminate' before the MAX all-reduce"},
    {Fix::kTimeoutBeatsGuard, "timeout-beats-guard", "sgl-project/sglang#35181 (issue #35012)",
     "completion needs KV and sidecars done (as the guard), but an expired timeout terminates regardless"},
    {Fix::kSidecarHitSync, "sidecar-hit-sync", "sgl-project/sglang#27264",
     "MIN-reduce [completed tokens, sidecar hit pages] so every rank commits the same sidecar state"},
    {Fix::kBulkProgressCheck, "bulk-progress-check", "sgl-project/sglang#33029 (issue #30760)",
     "one progress collective per pass over the waiting queue, before the admission walk"},
    {Fix::kRegistrationConsensus, "registration-consensus", "sgl-project/sglang#38268 family",
     "ranks MIN-agree on registering a prefetch, so all register it or none does"},
    {Fix::kSidecarReleaseByIo, "sidecar-release-by-io", "sgl-project/sglang#31668 (issue #31445)",
     "when an operation ends early, pool_transfers_done decides who frees its sidecar slot: the IO thread if still reading"},
    {Fix::kIoWorkerPool, "io-worker-pool", "sgl-project/sglang#31797",
     "prefetch_io_workers = 4: one long transfer no longer blocks every operation queued behind it"},
    {Fix::kNegativeCache, "negative-cache", "sgl-project/sglang#31315",
     "a key whose read failed is reported absent by hit queries for 10 s, so one stale replica costs one timeout"},
}};

constexpr FixSet kSeedFix = FixSet{}.with(Fix::kPoolTransferGuard);
constexpr std::array<PresetInfo, 3> kPresets = {{
    {"pre-fix", FixSet{}, "HiMamba before #27550: KV completion alone ends a prefetch"},
    {"seed-fix", kSeedFix, "#27550: wait for sidecar transfers, even past a timeout"},
    {"timeout-bounded", kSeedFix.with(Fix::kTimeoutBeatsGuard),
     "#27550 with #35181 semantics: wait for sidecars, but never past the timeout"},
}};

}  // namespace

std::span<const FixInfo> all_fixes() { return kFixes; }

const FixInfo& fix_info(Fix f) {
  auto i = static_cast<std::size_t>(f);
  HCSIM_ASSERT(i < kFixes.size() && kFixes[i].fix == f);
  return kFixes[i];
}

std::optional<Fix> fix_by_name(std::string_view name) {
  for (const auto& f : kFixes) {
    if (f.name == name) return f.fix;
  }
  return std::nullopt;
}

std::string FixSet::names() const {
  std::string out;
  for (const auto& f : kFixes) {
    if (!has(f.fix)) continue;
    if (!out.empty()) out += ',';
    out += f.name;
  }
  return out.empty() ? "none" : out;
}

std::span<const PresetInfo> all_presets() { return kPresets; }

std::optional<FixSet> preset_by_name(std::string_view name) {
  for (const auto& p : kPresets) {
    if (p.name == name) return p.fixes;
  }
  return std::nullopt;
}

std::optional<FixSet> parse_variant(std::string_view expr, std::string* error) {
  auto plus = expr.find('+');
  auto preset = preset_by_name(expr.substr(0, plus));
  if (!preset) {
    if (error) *error = "unknown preset '" + std::string(expr.substr(0, plus)) + "'";
    return std::nullopt;
  }
  FixSet set = *preset;
  while (plus != std::string_view::npos) {
    auto next = expr.find('+', plus + 1);
    auto name = expr.substr(plus + 1, next == std::string_view::npos ? next : next - plus - 1);
    auto fix = fix_by_name(name);
    if (!fix) {
      if (error) *error = "unknown fix '" + std::string(name) + "'";
      return std::nullopt;
    }
    set = set.with(*fix);
    plus = next;
  }
  return set;
}

}  // namespace hcsim
