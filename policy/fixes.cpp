#include "policy/fixes.h"

#include <array>

#include "policy/assert.h"

namespace hcsim {

namespace {

using enum UpstreamState;

// States and dates: the first-parent history of upstream main up to 2026-08-20 (17313cf4b) for
// merged changes; the public PR threads for the others. docs/upstream-map.md has the evidence.
constexpr std::array<FixInfo, kFixCount> kFixes = {{
    {Fix::kCompletionRaceGuard, true, "completion-race-guard", "sgl-project/sglang#9397", kMerged, "a3aee7c37", "2025-08-27", "",
     "a prefetch is complete only once hash_value is set: 0 of 0 pages is not done"},
    {Fix::kFailedReadTerminates, true, "failed-read-terminates", "sgl-project/sglang#9971", kMerged, "33467c05a", "2025-09-07", "",
     "a short L3 read marks the operation terminated (failed), so wait_complete does not wait on it forever"},
    {Fix::kRevokeMarksTerminated, false, "revoke-marks-terminated", "sgl-project/sglang#16747", kClosedUnmerged, "", "2026-01-08", "",
     "a prefetch revoked below the threshold is marked terminated at once, not only popped by the next drain"},
    {Fix::kPoolTransferGuard, false, "pool-transfer-guard", "sgl-project/sglang#27366", kMerged, "faa628694", "2026-06-05",
     "HiMamba; the same guard reached HiRadixCache with #27550 (991689fd0, 2026-06-09) and was in the unified tree since #26881",
     "KV complete with a sidecar transfer pending votes 'cannot terminate' before the MAX all-reduce"},
    {Fix::kTimeoutBeatsGuard, false, "timeout-beats-guard", "sgl-project/sglang#35181 (issue #35012)", kOpen, "", "2026-08-17",
     "proposed for HiRadixCache and the unified tree, after HiMamba was deleted",
     "completion needs KV and sidecars done (as the guard), but an expired timeout terminates regardless"},
    {Fix::kSidecarHitSync, false, "sidecar-hit-sync", "sgl-project/sglang#27264", kMerged, "631db6c75", "2026-06-05",
     "the unified tree only: HiMamba decided mamba_loaded per rank until it was deleted",
     "MIN-reduce [completed tokens, sidecar hit pages] so every rank commits the same sidecar state"},
    {Fix::kBulkProgressCheck, false, "bulk-progress-check", "sgl-project/sglang#33029 (issue #30760)", kOpen, "", "2026-07-31",
     "proposed for HiRadixCache",
     "one progress check per waiting request and pass, before the admission walk; under best_effort it ends every waiting "
     "prefetch at the first pass, as the PR's helper would (it calls check_prefetch_progress for each rid given)"},
    {Fix::kRegistrationConsensus, false, "registration-consensus", "sgl-project/sglang#38268 family", kClosedUnmerged, "", "2026-09-07",
     "proposed for the unified tree and HiRadixCache; sibling #38284 is open",
     "ranks MIN-agree on registering a prefetch, so all register it or none does"},
    {Fix::kSidecarReleaseByIo, false, "sidecar-release-by-io", "sgl-project/sglang#31668 (issue #31445)", kClosedUnmerged, "", "2026-07-18", "",
     "when an operation ends early, pool_transfers_done decides who frees its sidecar slot: the IO thread if still reading"},
    {Fix::kIoWorkerPool, false, "io-worker-pool", "sgl-project/sglang#31797", kClosedUnmerged, "", "2026-07-20", "",
     "prefetch_io_workers = 4: one long transfer no longer blocks every operation queued behind it"},
    {Fix::kNegativeCache, false, "negative-cache", "sgl-project/sglang#31315", kOpen, "", "2026-07-15", "the Mooncake store",
     "a key whose read failed is reported absent by hit queries for 10 s, so one stale replica costs one timeout"},
    {Fix::kTransferStallTimeout, false, "transfer-stall-timeout", "ai-dynamo/nixl#2047, vllm-project/vllm#46019", kOpen, "", "2026-08-05",
     "outside SGLang: NIXL (open) and vLLM (closed unmerged)",
     "an L3 read still in flight after 10 s fails; a late completion is dropped"},
    {Fix::kSyncedAckChecks, false, "synced-ack-checks", "sgl-project/sglang#26923 (issue #26921)", kMerged, "7f67965b4", "2026-06-22",
     "HiMamba and HiRadixCache; the unified tree had it since #27489 (d03182cd2, 2026-06-08)",
     "writing_check joins its MIN all-reduce even with no write in flight, and loading_check MIN-agrees how many load acks to take"},
    {Fix::kWriteReserveCommit, false, "write-reserve-commit", "sgl-project/sglang#31425 (issue #28429)", kOpen, "", "2026-07-16", "",
     "a write-through backup is reserved on every rank, MIN-agreed, then committed or aborted on every rank"},
    {Fix::kIoExceptionGuard, false, "io-exception-guard", "sgl-project/sglang#36882", kClosedUnmerged, "", "2026-08-28", "",
     "the IO thread catches a read that raises: the operation fails, the thread lives on"},
}};

// Names fixes had before a rename: variants and traces that use them still parse.
struct FormerName {
  std::string_view name;
  Fix fix;
};
constexpr std::array<FormerName, 1> kFormerNames = {{{"unconditional-writing-check", Fix::kSyncedAckChecks}}};

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
    {"pre-fix", kBaseline, "upstream HiMamba on 2026-06-05, before #27366: KV completion alone ends a prefetch"},
    {"seed-fix", kSeedFix, "upstream HiMamba at faa628694 (#27366, 2026-06-05): wait for sidecar transfers, even past a timeout"},
    {"timeout-bounded", kSeedFix.with(Fix::kTimeoutBeatsGuard),
     "hypothetical: #27366 with the semantics of #35181 (open): wait for sidecars, but never past the timeout"},
    {"all-fixes", every_fix(), "hypothetical: every named fix, most of them never merged"},
}};

// HiMamba was the default for hybrid models with HiCache until #27759 (2026-06-11) and was deleted
// by #33468 (2026-08-07). #28614 (2026-06-26) changed the rate limit, which the model does not follow.
constexpr std::array<UpstreamAt, 3> kUpstreamStates = {{
    {"2026-06-05", "faa628694^", "HiMamba before the seed fix: #26881 (06-04) reads the sidecar after KV, #26945 shrinks registration",
     kBaseline},
    {"2026-06-05", "faa628694", "the seed fix #27366: a pending sidecar votes 'cannot terminate'", kSeedFix},
    {"2026-06-22", "7f67965b4", "#26923: writing_check always all-reduces, loading_check MIN-agrees its acks",
     kSeedFix.with(Fix::kSyncedAckChecks)},
}};

}  // namespace

std::span<const FixInfo> all_fixes() { return kFixes; }

std::string_view upstream_state_name(UpstreamState s) {
  switch (s) {
    case kMerged: return "merged";
    case kOpen: return "open";
    case kClosedUnmerged: return "closed unmerged";
  }
  HCSIM_ASSERT(false);
  return {};
}

const FixInfo& fix_info(Fix f) {
  auto i = static_cast<std::size_t>(f);
  HCSIM_ASSERT(i < kFixes.size() && kFixes[i].fix == f);
  return kFixes[i];
}

std::optional<Fix> fix_by_name(std::string_view name) {
  for (const auto& f : kFixes) {
    if (f.name == name) return f.fix;
  }
  for (const auto& f : kFormerNames) {
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

std::span<const UpstreamAt> upstream_states() { return kUpstreamStates; }

const UpstreamAt* upstream_at(const FixSet& fixes) {
  for (const auto& u : kUpstreamStates) {
    if (u.fixes == fixes) return &u;
  }
  return nullptr;
}

std::string upstream_label(const FixSet& fixes) {
  const UpstreamAt* at = upstream_at(fixes);
  if (at == nullptr) return "hypothetical: never upstream as a whole";
  return "upstream HiMamba " + std::string(at->date) + " (" + std::string(at->commit) + ")";
}

std::optional<Variant> Variant::parse(std::string_view text, std::string* error) {
  Variant v;
  const auto op = text.find_first_of("+~");
  v.preset = std::string(text.substr(0, op));
  if (!preset_by_name(v.preset)) {
    if (error) *error = "unknown preset '" + v.preset + "'";
    return std::nullopt;
  }
  for (auto at = op; at != std::string_view::npos;) {  // bounded: each round moves past one fix
    const auto next = text.find_first_of("+~", at + 1);
    const auto name = text.substr(at + 1, next == std::string_view::npos ? next : next - at - 1);
    if (!fix_by_name(name)) {
      if (error) *error = "unknown fix '" + std::string(name) + "'";
      return std::nullopt;
    }
    v.steps.push_back({text[at] == '+', std::string(name)});
    at = next;
  }
  return v;
}

std::string Variant::text() const {
  std::string out = preset;
  for (const Step& s : steps) out.append(s.add ? "+" : "~").append(s.fix);
  return out;
}

std::string Variant::flags() const {
  std::string out = " --preset " + preset;
  for (const Step& s : steps) out.append(s.add ? " --fix " : " --without ").append(s.fix);
  return out;
}

FixSet Variant::fixes() const {
  const auto base = preset_by_name(preset);
  HCSIM_ASSERT(base.has_value());
  FixSet set = *base;
  for (const Step& s : steps) {
    const auto fix = fix_by_name(s.fix);
    HCSIM_ASSERT(fix.has_value());
    set = s.add ? set.with(*fix) : set.without(*fix);
  }
  return set;
}

std::optional<FixSet> parse_variant(std::string_view expr, std::string* error) {
  const auto v = Variant::parse(expr, error);
  return v ? std::optional<FixSet>(v->fixes()) : std::nullopt;
}

}  // namespace hcsim
