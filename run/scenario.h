// Scenario: one reproducible situation, loaded from JSON (docs/scenario-format.md) with strict
// validation. Every error names the file, the JSON pointer and what was expected:
//
//   scenarios/x.json: /policy/name: expected one of best_effort, wait_complete, timeout; got "wait"
//
// A scenario declares its expected verdict per variant (a preset plus fixes) and policy.
#pragma once

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/fixes.h"
#include "policy/policy_config.h"
#include "policy/request.h"
#include "run/diagnosis.h"
#include "run/input_file.h"
#include "run/storage.h"
#include "run/world_config.h"

namespace hcsim {

inline constexpr std::int64_t kScenarioBytesMax = 16 << 20;

struct L3Contents {
  std::string prefix;
  std::int32_t kv_pages = 0;
  std::vector<std::int32_t> sidecar_at_pages;  // a sidecar object holds the state after page n
  std::vector<std::int32_t> stale_pages;       // found by hit queries, but reads of them time out
  std::vector<std::int32_t> sidecar_stale_pages;  // sidecar objects hit queries find and reads miss
  bool sidecar_pages_given = false;  // without sidecar_at_pages, a dsa model has an indexer object at every page
  // A derived pool of the stack (tag >= 1, policy/sidecar_stack.h): its objects are where its source's
  // are (a KV-derived pool: every page; an SWA-derived one: the SWA objects), less `missing_pages`.
  struct DerivedPool {
    std::size_t tag = 0;
    std::vector<std::int32_t> missing_pages;  // no object
    std::vector<std::int32_t> stale_pages;    // an object hit queries find and reads miss
  };
  std::vector<DerivedPool> pools;
  std::vector<int> ranks;                      // empty: every rank
  bool on_rank(int rank) const { return ranks.empty() || std::find(ranks.begin(), ranks.end(), rank) != ranks.end(); }
};

struct Expectation {
  std::string variant;  // a variant expression, PRESET[+FIX]... (policy/fixes.h)
  FixSet fixes;
  std::optional<PrefetchPolicy> policy;  // unset: the scenario's policy
  HangKind verdict = HangKind::kNone;    // kNone: complete
  bool any_hang = false;                 // "hang" without a kind
  std::optional<std::vector<std::string>> violations;  // the invariants expected to break, exactly
  std::optional<std::int64_t> l3_lost_tokens;          // agreed L3 tokens not published, exactly (0: no loss)
  struct Outcome {                                     // per request, on every rank
    RequestId request = kNoRequest;
    std::optional<std::int64_t> storage_hit_tokens;    // tokens loaded from L3, exactly
    std::optional<TimeNs> scheduled_within_ns;         // from arrival to schedule, at most
    std::optional<TimeNs> scheduled_after_ns;          // from arrival to schedule, at least
    std::optional<std::string> ended;                  // its prefetch's terminal state, or "not_registered"
  };
  std::vector<Outcome> outcomes;
};

// Random perturbations a scenario declares; every run draws them from its seed (hcsim run --seeds).
struct Perturbations {
  std::vector<DelayRule> jitter;         // added to every matching storage call
  std::int32_t device_free_pages_lo = 0;  // per rank: device_free_tokens += pages * page_size,
  std::int32_t device_free_pages_hi = 0;  //   pages uniform in [lo, hi]
  TimeNs arrival_lo_ns = 0;               // per request: arrival += uniform in [lo, hi]
  TimeNs arrival_hi_ns = 0;
};

struct Scenario {
  std::string path;
  std::string name;
  std::string description;
  std::string incident;
  std::vector<std::string> upstream;
  // The upstream point (date or timeline commit) an expectation without a variant, or a run
  // without --preset or --upstream, stands for; empty: pre-fix.
  std::string upstream_at;
  std::uint64_t seed = 1;
  PolicyConfig policy;  // without fixes: a run adds its variant's
  WorldConfig world;
  StorageConfig storage;
  std::vector<L3Contents> l3;
  std::vector<DelayRule> delays;
  Perturbations perturbations;
  std::vector<LateRule> explore_late;  // "explore": {"late": [...]}: the decisions hcsim explore enumerates
  std::vector<RequestSpec> workload;
  std::vector<Expectation> expect;
};

Scenario load_scenario_file(const std::string& path);
// The scenario in `path` with its "tp" replaced by `tp`, checked as a whole again (a rank it names
// must exist at that size): how a library scenario runs at other TP sizes.
Scenario load_scenario_file_at_tp(const std::string& path, int tp);
Scenario parse_scenario(const std::string& text, const std::string& source);

// The page keys of `pages` pages of a named prefix: a hash chain, so equal prefixes share keys.
std::vector<PageKey> prefix_page_keys(const std::string& prefix, std::int32_t pages);

}  // namespace hcsim
