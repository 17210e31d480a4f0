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
     "HiMamba; HiRadixCache got the same guard with #27550 (hiradix-pool-guard, 2026-06-09); the unified tree had it since #26881",
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
    {Fix::kPrefetchTimeoutConfig, true, "prefetch-timeout-config", "sgl-project/sglang#23309", kMerged, "5495026a3", "2026-05-11",
     "HiRadixCache and HiMamba; the unified tree never adopted it (1 s + 0.25 s per Ki token, no cap)",
     "a scenario that sets no timeout gets 2 s + 0.1 s per Ki token, capped at 30 s, instead of 1 s + 0.25 s uncapped"},
    {Fix::kSidecarAfterKv, true, "sidecar-after-kv", "sgl-project/sglang#26881", kMerged, "736263f3d", "2026-06-04",
     "the hybrid cache controller, shared by HiMamba and the unified tree (which has it built in)",
     "the IO thread reads sidecar objects after every KV page arrived, then sets pool_transfers_done; before, it read them first"},
    {Fix::kUnifiedTreeRoute, false, "unified-tree-route", "sgl-project/sglang#27759", kMerged, "5e0271536", "2026-06-11",
     "mem_cache/registry.py; #30468 (2026-07-14) extended it to models without HiCache and to DSA",
     "hybrid models with HiCache run the unified radix tree: hybrid Mamba instead of HiMamba (deleted by #33468, 2026-08-07), "
     "hybrid SWA instead of HiRadixCache with hybrid SWA memory off"},
    {Fix::kRateLimitHalfHost, false, "rate-limit-half-host", "sgl-project/sglang#28614", kMerged, "da0f4f6f9", "2026-06-26", "",
     "prefetch registration is rate-limited at int(0.5 x host pool tokens) in flight, not int(0.8 x (host - device))"},
    {Fix::kHitThenAlloc, false, "hit-then-alloc", "sgl-project/sglang#19320", kMerged, "7cd55c681", "2026-07-16", "",
     "registration allocates no host KV slots; the scheduler's hit drain allocates the group's agreed hit, evicting, then "
     "falling back to the free size if it reaches the threshold, else revokes"},
    {Fix::kHybridResultCheck, false, "hybrid-result-check", "sgl-project/sglang#31443", kMerged, "1a53f231d", "2026-07-21",
     "the unified tree and HiRadixCache; HiMamba was unreachable by then",
     "a hybrid result is published whole (all KV pages and the sidecar) or not at all; a terminated operation reads no sidecar"},
    {Fix::kThresholdInDrain, false, "threshold-in-drain", "sgl-project/sglang#33613", kMerged, "f6de147b8", "2026-08-06", "",
     "the revoke queue is gone: the prefetch thread always hands the agreed hit to the scheduler, whose drain revokes below "
     "the threshold"},
    {Fix::kLoadBackAgreedCapacity, false, "load-back-agreed-capacity", "sgl-project/sglang#33442", kClosedUnmerged, "", "2026-08-03",
     "proposed for the unified tree's load_back; HiRadixCache and HiMamba decide the same way",
     "every pass the ranks MIN-agree on their free device memory, and init_load_back decides from that snapshot, so all load a "
     "host hit back or none does"},
    {Fix::kDsaUnifiedRoute, false, "dsa-unified-route", "sgl-project/sglang#30468", kMerged, "afa3c06d1", "2026-07-14",
     "mem_cache/registry.py (REG@afa3c06d1)", "DSA models with HiCache run the unified radix tree instead of HiRadixCache with the hybrid controller"},
    {Fix::kDraftSidecars, false, "draft-sidecars", "sgl-project/sglang#30393", kMerged, "8e11feb68", "2026-08-06",
     "the unified tree (kv_cache_builder.py@17313cf4b:77-95); HiRadixCache keeps the legacy piggyback objects",
     "a draft model with a KV pool of its own (the SIDECAR draft plan: EAGLE3, standalone EAGLE) is a KV-derived ALL_PAGES "
     "sidecar in the hit query, the read and the result; before, its objects rode along with each KV batch, unchecked"},
    {Fix::kMergedTickMin, false, "merged-tick-min", "sgl-project/sglang#30511", kMerged, "50029f05a", "2026-07-29",
     "HiRadixCache and the unified tree with pp_size 1; HiMamba keeps its three collectives",
     "check_hicache_events MIN-agrees the ready write acks, the ready load acks and the storage queue sizes in one all-reduce per "
     "tick, where writing_check, loading_check and the drain each ran one"},
    {Fix::kHiRadixPoolGuard, false, "hiradix-pool-guard", "sgl-project/sglang#27550", kMerged, "991689fd0", "2026-06-09",
     "HiRadixCache (HR@991689fd0:1345-1350), for the DSA indexer; HiMamba's is pool-transfer-guard",
     "HiRadixCache: KV complete with a sidecar transfer pending votes 'cannot terminate', so the indexer read is never "
     "published, nor its pages loaded back, while it still writes"},
    {Fix::kPpAckChain, false, "pp-ack-chain", "sgl-project/sglang#27285", kMerged, "42fe02528", "2026-06-06",
     "HiRadixCache and the unified tree with pp_size > 1 (HR@42fe02528:224-273, URC@42fe02528); HiMamba never had it",
     "writing_check and loading_check: PP0 counts its ready acks and MIN-agrees them, each later stage receives the count from "
     "the stage before and sends it on, then takes that many acks, waiting for their copies; before, every stage counted its own"},
    {Fix::kAckDesign, false, "ack-design", "sgl-project/sglang#27010", kMerged, "829138a31", "2026-08-25",
     "HiRadixCache and the unified tree, from copies of upstream read at 001067ff (after #27010, before #36425); HiMamba was gone. "
     "With it, io-worker-pool keeps one IO thread and bulk-progress-check has no effect",
     "the IO thread acks every 128-page batch with its cumulative tokens (one ack per batch even after a failure), then the pool "
     "hits, then completion; a sync thread MIN-agrees each ack over TP and the pipeline stages; the hit MIN spans the stages too; "
     "the scheduler's drain takes PP0's queue counts, later stages waiting until they hold them; completion publishes through "
     "the drain, and the vote is PP0's: best_effort terminates, wait_complete never does, timeout reads PP0's clock"},
    {Fix::kVoteOnlyUnderTimeout, false, "vote-only-under-timeout", "sgl-project/sglang#36425", kMerged, "8e04f66a7", "2026-08-28",
     "the unified tree (URC@8e04f66a7); with ack-design",
     "check_prefetch_progress decides best_effort and wait_complete without a collective, and a rank whose operation is "
     "terminated skips the vote; only timeout runs PP0's MAX and its chain"},
    {Fix::kClampSkipsKvDerived, false, "clamp-skips-kv-derived", "sgl-project/sglang#37145", kClosedUnmerged, "", "2026-08-30",
     "HiRadixCache with ack-design; the unified tree skips them already (URC@001067ff)",
     "HiRadixCache's clamp of a prefetch result leaves out the KV-derived pools (the DSA indexer), whose hits the acknowledgement "
     "design folds into the completed tokens; without it they count as 0 hits, nothing is published and the read pages stay "
     "owned by nobody"},
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

constexpr FixSet kBaseline = baseline_fixes();
constexpr FixSet kSeedFix = kBaseline.with(Fix::kPoolTransferGuard);
// Every fix on the HiMamba path: the dated changes that came after HiMamba stopped serving models,
// and a proposal made after it was deleted, are left out, so the preset stays on the path its
// scenarios were written for.
constexpr FixSet himamba_fixes() {
  FixSet s;
  for (const auto& f : kFixes) {
    const bool later = f.fix == Fix::kUnifiedTreeRoute || f.fix == Fix::kRateLimitHalfHost || f.fix == Fix::kHitThenAlloc ||
                       f.fix == Fix::kHybridResultCheck || f.fix == Fix::kThresholdInDrain || f.fix == Fix::kLoadBackAgreedCapacity ||
                       f.fix == Fix::kDsaUnifiedRoute || f.fix == Fix::kDraftSidecars || f.fix == Fix::kMergedTickMin ||
                       f.fix == Fix::kAckDesign || f.fix == Fix::kVoteOnlyUnderTimeout || f.fix == Fix::kClampSkipsKvDerived;
    s = later ? s : s.with(f.fix);
  }
  return s;
}
constexpr std::array<PresetInfo, 4> kPresets = {{
    {"pre-fix", kBaseline, "upstream 2026-06-04 (736263f3d, #26881) until #27366: KV completion alone ends a prefetch"},
    {"seed-fix", kSeedFix, "upstream at faa628694 (#27366, 2026-06-05): wait for sidecar transfers, even past a timeout"},
    {"timeout-bounded", kSeedFix.with(Fix::kTimeoutBeatsGuard),
     "hypothetical: #27366 with the semantics of #35181 (open): wait for sidecars, but never past the timeout"},
    {"all-fixes", himamba_fixes(), "hypothetical: every named fix of the HiMamba path, most of them never merged"},
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

}  // namespace hcsim
