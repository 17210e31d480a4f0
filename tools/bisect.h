// bisect(): one scenario at every point of the upstream timeline in a range, and the dated changes
// that altered its outcome (verdict, broken invariants, L3 tokens lost). Counterfactual fixes, a
// policy and a seed apply at every point alike. `hcsim bisect` prints it (tools/cli/bisect.cpp).
//
//   std::string error;
//   const auto range = bisect_range("", "", &error);  // every row, from the point before the first
//   const Bisection b = bisect(load_scenario_file("scenarios/himamba-sidecar-lag.json"), {.range = *range});
//   b.points.size()                        -> 12: a3aee7c37^ and the 11 rows of upstream_timeline()
//   b.transitions[0].kind                  -> TransitionKind::kOpened
//   b.transitions[0].change().pr           -> "#26881"
//   bisect_summary(b)[0]
//     -> "hang window opened by #26881 (736263f3d, 2026-06-04) and closed by #27366 (faa628694, 2026-06-05)"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/fixes.h"
#include "policy/upstream_timeline.h"
#include "policy/variant.h"
#include "run/scenario.h"
#include "sim/simulation.h"

namespace hcsim {

// The points a bisection runs: UpstreamPoint{start} (the starting state) and each row after it up
// to and including row `last`.
struct BisectRange {
  int start = -1;
  int last = 0;
};
// --from and --to as the user wrote them; empty: from before the first row, to the last row.
// FROM is the first change to test: a date (the first row merged on or after it) or a timeline
// commit (that row; COMMIT^ likewise); the starting state is the point just before it. TO is the
// newest point: a date (every row merged by the end of it) or a timeline commit (up to it).
// On failure nullopt, and why in `error`: UpstreamPoint::parse's reason, a FROM after TO, or a
// range that holds no row.
std::optional<BisectRange> bisect_range(std::string_view from, std::string_view to, std::string* error);

struct BisectOptions {
  BisectRange range;
  std::vector<Variant::Step> counterfactuals;  // added (+) or removed (~) at every point; known names
  std::optional<PrefetchPolicy> policy;         // unset: the scenario's
  std::optional<std::uint64_t> seed;            // unset: the scenario's
};

// What a bisection compares between neighbouring points.
struct BisectOutcome {
  HangKind verdict = HangKind::kNone;
  std::vector<std::string> violated;  // violated_names(invariants), in the judge's order
  std::int64_t l3_lost_tokens = 0;    // RunResult::l3_lost_tokens()
  bool operator==(const BisectOutcome&) const = default;
};

struct BisectPoint {
  UpstreamPoint at;
  Variant variant;  // the point as a variant: its row's commit (FIRST^ before the first) and the counterfactuals
  RunResult result;
  double wall_ms = 0.0;
  BisectOutcome outcome;
  // The row this point adds to the one before it, or null for the point before the first row.
  const UpstreamChange* row() const;
};

enum class TransitionKind : std::uint8_t {
  kOpened,   // complete -> a hang (or a crash)
  kClosed,   // a hang (or a crash) -> complete
  kChanged,  // another hang kind, other broken invariants, or other L3 tokens lost
};
std::string_view transition_kind_name(TransitionKind k);  // "opened", "closed", "changed"

struct BisectTransition {
  TransitionKind kind = TransitionKind::kChanged;
  int before = 0;  // indices into Bisection::points; after == before + 1
  int after = 0;
  const UpstreamChange* change_row = nullptr;  // the row of `after`: the change that did it
  std::vector<std::string> differences;        // "verdict complete -> HANG collective_mismatch", "l3 lost 0 -> 2048"
  const UpstreamChange& change() const { return *change_row; }
};

struct Bisection {
  std::vector<BisectPoint> points;  // oldest first
  std::vector<BisectTransition> transitions;
};

// Runs the scenario at every point of the range (in the simulator) and compares each neighbouring pair.
Bisection bisect(const Scenario& scenario, const BisectOptions& options);

// "#26881 (736263f3d, 2026-06-04)"
std::string change_text(const UpstreamChange& c);
// The bisection in a few lines: one per window, which change opened it and which closed it; then
// one per change that altered the outcome otherwise; or one saying that no change altered it.
std::vector<std::string> bisect_summary(const Bisection& b);

}  // namespace hcsim
