// Named upstream fixes and the presets built from them.
//
// Each fix is named after what it changes, cites the upstream change that made or proposed it, and
// says where that change stands upstream: merged (commit and date), open, or closed unmerged.
// Fixes merged into HiMamba's code before the modelled era are "baseline": in every preset,
// removable to show the bug they fixed. A preset is a named set of fixes; a variant expression adds
// (+) or removes (~) fixes. A fix set either is upstream's HiMamba code at a date (upstream_at), or
// never existed together upstream: hypothetical.
//
//   pre-fix                           upstream HiMamba on 2026-06-05, before sgl-project/sglang#27366
//   seed-fix                          + pool-transfer-guard: upstream at faa628694 (#27366)
//   seed-fix+synced-ack-checks        upstream HiMamba on 2026-06-22 (7f67965b4, #26923)
//   timeout-bounded+sidecar-hit-sync  hypothetical: #35181 is open, #27264 reached only the unified tree
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
};
inline constexpr int kFixCount = 15;

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

// A state of upstream's HiMamba code: from `date` (commit `commit`) until the next state.
struct UpstreamAt {
  std::string_view date;
  std::string_view commit;
  std::string_view what;
  FixSet fixes;
};
std::span<const UpstreamAt> upstream_states();
// The upstream state `fixes` stands for, or null when no upstream code had exactly these fixes.
const UpstreamAt* upstream_at(const FixSet& fixes);
// "upstream HiMamba 2026-06-05 (faa628694)" or "hypothetical: never upstream as a whole".
std::string upstream_label(const FixSet& fixes);
// The preset a run without a named variant uses: the upstream code before the modelled fixes.
inline constexpr std::string_view kDefaultPreset = "pre-fix";

// A variant: a preset with named fixes added (+) and removed (~) in order, as a value.
//
//   Variant v = *Variant::parse("timeout-bounded+sidecar-hit-sync", &error);
//   v.text()   -> "timeout-bounded+sidecar-hit-sync"
//   v.flags()  -> " --preset timeout-bounded --fix sidecar-hit-sync"   (for reproduce lines)
//   v.fixes()  -> the preset's fixes with sidecar-hit-sync
struct Variant {
  struct Step {
    bool add = true;  // + adds the fix, ~ removes it
    std::string fix;
    bool operator==(const Step&) const = default;
  };
  std::string preset{kDefaultPreset};
  std::vector<Step> steps;

  // Checks every name (old names of renamed fixes included); on failure nullopt, and why in `error`.
  static std::optional<Variant> parse(std::string_view text, std::string* error);
  std::string text() const;
  std::string flags() const;  // the command-line options that select it
  FixSet fixes() const;       // the names must be known: a parsed variant's are
  bool operator==(const Variant&) const = default;
};

// Parses "PRESET[+FIX|~FIX]..." into a fix set; on failure returns nullopt and says why in `error`.
std::optional<FixSet> parse_variant(std::string_view expr, std::string* error);

}  // namespace hcsim
