#include "policy/fixes.h"

#include <array>

#include "policy/assert.h"

namespace hcsim {

namespace {

constexpr std::array<FixInfo, kFixCount> kFixes = {{
    {Fix::kCompletionRaceGuard, true, "completion-race-guard", "sgl-project/sglang#9397",
     "a prefetch is complete only once hash_value is set: 0 of 0 pages is not done"},
    {Fix::kFailedReadTerminates, true, "failed-read-terminates", "sgl-project/sglang#9971",
     "a short L3 read marks the operation terminated (failed), so wait_complete does not wait on it forever"},
    {Fix::kRevokeMarksTerminated, true, "revoke-marks-terminated", "sgl-project/sglang#16747",
     "a prefetch revoked below the threshold is marked terminated"},
    {Fix::kPoolTransferGuard, false, "pool-transfer-guard", "sgl-project/sglang#27550",
     "KV complete with a sidecar transfer pending votes 'cannot terminate' before the MAX all-reduce"},
    {Fix::kTimeoutBeatsGuard, false, "timeout-beats-guard", "sgl-project/sglang#35181 (issue #35012)",
     "completion needs KV and sidecars done (as the guard), but an expired timeout terminates regardless"},
    {Fix::kSidecarHitSync, false, "sidecar-hit-sync", "sgl-project/sglang#27264",
     "MIN-reduce [completed tokens, sidecar hit pages] so every rank commits the same sidecar state"},
    {Fix::kBulkProgressCheck, false, "bulk-progress-check", "sgl-project/sglang#33029 (issue #30760)",
     "one progress collective per pass over the waiting queue, before the admission walk"},
    {Fix::kRegistrationConsensus, false, "registration-consensus", "sgl-project/sglang#38268 family",
     "ranks MIN-agree on registering a prefetch, so all register it or none does"},
    {Fix::kSidecarReleaseByIo, false, "sidecar-release-by-io", "sgl-project/sglang#31668 (issue #31445)",
     "when an operation ends early, pool_transfers_done decides who frees its sidecar slot: the IO thread if still reading"},
    {Fix::kIoWorkerPool, false, "io-worker-pool", "sgl-project/sglang#31797",
     "prefetch_io_workers = 4: one long transfer no longer blocks every operation queued behind it"},
    {Fix::kNegativeCache, false, "negative-cache", "sgl-project/sglang#31315",
     "a key whose read failed is reported absent by hit queries for 10 s, so one stale replica costs one timeout"},
    {Fix::kTransferStallTimeout, false, "transfer-stall-timeout", "ai-dynamo/nixl#2047, vllm-project/vllm#46019",
     "an L3 read still in flight after 10 s fails; a late completion is dropped"},
    {Fix::kUnconditionalWritingCheck, false, "unconditional-writing-check", "sgl-project/sglang#27489 (issue #26921)",
     "writing_check joins its MIN all-reduce even when this rank has no write in flight"},
    {Fix::kWriteReserveCommit, false, "write-reserve-commit", "sgl-project/sglang#31425 (issue #28429)",
     "a write-through backup is reserved on every rank, MIN-agreed, then committed or aborted on every rank"},
    {Fix::kIoExceptionGuard, false, "io-exception-guard", "sgl-project/sglang#36882",
     "the IO thread catches a read that raises: the operation fails, the thread lives on"},
}};

constexpr FixSet baseline_fixes() {
  FixSet s;
  for (const auto& f : kFixes) s = f.baseline ? s.with(f.fix) : s;
  return s;
}
constexpr FixSet every_fix() {
  FixSet s;
  for (const auto& f : kFixes) s = s.with(f.fix);
  return s;
}

constexpr FixSet kBaseline = baseline_fixes();
constexpr FixSet kSeedFix = kBaseline.with(Fix::kPoolTransferGuard);
constexpr std::array<PresetInfo, 4> kPresets = {{
    {"pre-fix", kBaseline, "HiMamba before #27550: KV completion alone ends a prefetch"},
    {"seed-fix", kSeedFix, "#27550: wait for sidecar transfers, even past a timeout"},
    {"timeout-bounded", kSeedFix.with(Fix::kTimeoutBeatsGuard),
     "#27550 with #35181 semantics: wait for sidecars, but never past the timeout"},
    {"all-fixes", every_fix(), "every named fix: the fully fixed model"},
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
  std::string added;
  std::string removed;
  for (const auto& f : kFixes) {
    std::string& list = f.baseline ? removed : added;
    if (f.baseline == has(f.fix)) continue;  // a baseline fix present, or an extra fix absent
    if (!list.empty()) list.append(",");
    list.append(f.name);
  }
  std::string out = added.empty() ? std::string("none") : added;
  if (!removed.empty()) out.append("; without ").append(removed);
  return out;
}

std::span<const PresetInfo> all_presets() { return kPresets; }

std::optional<FixSet> preset_by_name(std::string_view name) {
  for (const auto& p : kPresets) {
    if (p.name == name) return p.fixes;
  }
  return std::nullopt;
}

std::optional<FixSet> parse_variant(std::string_view expr, std::string* error) {
  const auto op = expr.find_first_of("+~");
  auto preset = preset_by_name(expr.substr(0, op));
  if (!preset) {
    if (error) *error = "unknown preset '" + std::string(expr.substr(0, op)) + "'";
    return std::nullopt;
  }
  FixSet set = *preset;
  for (auto at = op; at != std::string_view::npos;) {
    const auto next = expr.find_first_of("+~", at + 1);
    const auto name = expr.substr(at + 1, next == std::string_view::npos ? next : next - at - 1);
    auto fix = fix_by_name(name);
    if (!fix) {
      if (error) *error = "unknown fix '" + std::string(name) + "'";
      return std::nullopt;
    }
    set = expr[at] == '+' ? set.with(*fix) : set.without(*fix);
    at = next;
  }
  return set;
}

}  // namespace hcsim
