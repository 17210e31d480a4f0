// Named upstream fixes and the presets built from them.
//
// Each fix is named after what it changes, cites the upstream change that made or proposed it, and
// says where that change stands upstream: merged (commit and date), open, or closed unmerged.
// Merged ones are rows of the upstream timeline (policy/upstream_timeline.h), so an upstream date
// stands for the fixes merged by then. Fixes in pre-fix are "baseline", removable to show the bug
// they fixed. A variant is a preset or an upstream date (or timeline commit) with fixes added (+)
// and removed (~). A fix set either is upstream at some date (upstream_at), or never existed
// together upstream: hypothetical.
//
//   pre-fix                           upstream 2026-06-04 (#26881) until sgl-project/sglang#27366
//   seed-fix                          + pool-transfer-guard: upstream at faa628694 (#27366)
//   2026-08-20                        upstream main at 17313cf4b: hybrid models on the unified tree
//   2026-08-20+timeout-beats-guard    hypothetical: #35181 (open) on today's upstream
//   pre-fix~completion-race-guard     hypothetical: the baseline without #9397
//
// Only policy/ branches on a fix; everything else passes a FixSet through.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hcsim {

enum class Fix : std::uint8_t {
  kCompletionRaceGuard,   // baseline: an empty hash_value is never complete
  kFailedReadTerminates,  // baseline: a short read terminates the operation
  kRevokeMarksTerminated, // a revoked operation is marked terminated (proposed, never merged)
  kPoolTransferGuard,     // KV complete but sidecar pending votes "cannot terminate"
  kTimeoutBeatsGuard,     // an expired timeout terminates even with a sidecar pending
  kSidecarHitSync,        // sidecar hit pages MIN-reduced with completed tokens before the commit
  kBulkProgressCheck,     // one progress collective per pass over the whole waiting queue
  kRegistrationConsensus, // ranks agree (MIN) on registering a prefetch before any registers it
  kSidecarReleaseByIo,    // a sidecar slot still being read is freed by the IO thread, not the scheduler
  kIoWorkerPool,          // four IO workers per rank instead of one FIFO thread
  kNegativeCache,         // keys whose read failed count as absent to hit queries for a TTL
  kTransferStallTimeout,  // an L3 read in flight for 10 s counts as failed; a late completion is dropped
  kSyncedAckChecks,       // writing_check always joins its MIN; loading_check MIN-agrees its load acks
  kWriteReserveCommit,    // write-through backups are reserved, MIN-agreed, then committed or aborted everywhere
  kIoExceptionGuard,      // an L3 read that raises fails its operation; the IO thread lives on
  // Dated changes merged upstream that the fixes above do not cover (policy/upstream_timeline.h):
  kPrefetchTimeoutConfig, // the default timeout is 2 s + 0.1 s per Ki token, capped at 30 s (was 1 s + 0.25 s, no cap)
  kSidecarAfterKv,        // sidecar objects are read after every KV page, not before
  kUnifiedTreeRoute,      // hybrid models with HiCache run the unified radix tree, not HiMamba
  kRateLimitHalfHost,     // the prefetch rate limit is half the host pool, not 0.8 x (host - device)
  kHitThenAlloc,          // host KV slots are allocated by the scheduler after the group agreed on the hit
  kHybridResultCheck,     // a hybrid prefetch publishes all of KV and sidecar or nothing; no sidecar read once terminated
  kThresholdInDrain,      // no revoke queue: the scheduler's hit drain applies the threshold
  // Proposed after the dated changes above:
  kLoadBackAgreedCapacity,  // load-back decides from a MIN-agreed snapshot of free device memory
  kDsaUnifiedRoute,         // DSA models with HiCache run the unified radix tree, not HiRadixCache (dated)
  kDraftSidecars,           // a draft model's own KV pool is a KV-derived sidecar of the unified tree (dated)
  kMergedTickMin,           // one MIN per tick for the write and load acks and the storage queue sizes (dated)
  kHiRadixPoolGuard,        // HiRadixCache's pending-sidecar guard, as pool-transfer-guard is HiMamba's (dated)
  kPpAckChain,              // with pipeline stages, PP0 decides the write and load ack counts and chains them on (dated)
  kAckDesign,               // the acknowledgement design: per-batch acks MIN-agreed over TP and PP, completion via the drain (dated)
  kVoteOnlyUnderTimeout,    // the termination vote's collective runs under the timeout policy only (dated)
  kClampSkipsKvDerived,     // HiRadixCache's clamp leaves out KV-derived pools, whose hits the acks carry (proposed)
};
inline constexpr int kFixCount = 31;

// Where a fix's upstream change stands (as of the last public record read, 2026-09).
enum class UpstreamState : std::uint8_t { kMerged, kOpen, kClosedUnmerged };
std::string_view upstream_state_name(UpstreamState s);  // "merged", "open", "closed unmerged"

struct FixInfo {
  Fix fix;
  bool baseline;  // merged into HiMamba's code before the modelled era: part of every preset
  std::string_view name;
  std::string_view upstream;  // the change that made or proposed it
  UpstreamState state;
  std::string_view commit;    // merged: the squash commit on upstream main; else empty
  std::string_view date;      // merged: its commit date; else the PR's date
  std::string_view scope;     // where upstream has it, when that is not the HiMamba path
  std::string_view summary;
};
std::span<const FixInfo> all_fixes();
const FixInfo& fix_info(Fix f);
// A fix by name; names a fix had before a rename are accepted too, so old traces still replay.
std::optional<Fix> fix_by_name(std::string_view name);

class FixSet {
 public:
  constexpr FixSet() = default;
  constexpr bool has(Fix f) const { return (bits_ >> static_cast<unsigned>(f)) & 1U; }
  constexpr FixSet with(Fix f) const {
    FixSet s = *this;
    s.bits_ |= 1U << static_cast<unsigned>(f);
    return s;
  }
  constexpr FixSet without(Fix f) const {
    FixSet s = *this;
    s.bits_ &= ~(1U << static_cast<unsigned>(f));
    return s;
  }
  constexpr bool operator==(const FixSet&) const = default;
  // The fixes beyond the baseline, and any baseline fix missing:
  // "pool-transfer-guard,timeout-beats-guard", "none", "none; without completion-race-guard".
  std::string names() const;

 private:
  std::uint32_t bits_ = 0;
};

struct PresetInfo {
  std::string_view name;
  FixSet fixes;
  std::string_view summary;
};
std::span<const PresetInfo> all_presets();
std::optional<FixSet> preset_by_name(std::string_view name);

// The preset a run without a named variant uses: the upstream code before the modelled fixes.
inline constexpr std::string_view kDefaultPreset = "pre-fix";

}  // namespace hcsim
