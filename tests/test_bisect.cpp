// bisect(): the seed scenario over the upstream timeline. The seed bug's window opens with #26881
// (the sidecar read after every KV page) and closes with #27366 (the pool-transfer guard); a policy
// that never waits on the sidecar, or the guard as a counterfactual from the start, never opens it.
#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/upstream_timeline.h"
#include "run/scenario.h"
#include "tools/bisect.h"

using namespace hcsim;

namespace {

// Tests run from the project root (tests/meson.build: workdir).
const char* const kSeedScenario = "scenarios/himamba-sidecar-lag.json";

BisectRange range_of(const char* from, const char* to) {
  std::string error;
  const auto range = bisect_range(from, to, &error);
  INFO(from << " .. " << to << ": " << error);
  REQUIRE(range);
  return *range;
}

std::vector<const BisectTransition*> of_kind(const Bisection& b, TransitionKind k) {
  std::vector<const BisectTransition*> out;
  for (const BisectTransition& t : b.transitions) {
    if (t.kind == k) out.push_back(&t);
  }
  return out;
}

int hanging_points(const Bisection& b) {
  return static_cast<int>(std::count_if(b.points.begin(), b.points.end(), [](const BisectPoint& p) { return p.result.verdict.hang(); }));
}

}  // namespace

TEST_CASE("bisect: #26881 opens the seed bug's window and #27366 closes it", "[bisect]") {
  const Scenario s = load_scenario_file(kSeedScenario);
  const Bisection b = bisect(s, BisectOptions{range_of("", ""), {}, {}, {}});

  // Every row of the timeline, after the point before the first.
  REQUIRE(b.points.size() == upstream_timeline().size() + 1);
  CHECK(b.points.front().at == UpstreamPoint{-1});
  CHECK(b.points.front().row() == nullptr);
  CHECK(b.points.front().variant.preset == std::string(upstream_timeline()[0].commit) + "^");
  CHECK(b.points.back().row()->commit == upstream_timeline().back().commit);

  const auto opened = of_kind(b, TransitionKind::kOpened);
  const auto closed = of_kind(b, TransitionKind::kClosed);
  REQUIRE(opened.size() == 1);
  REQUIRE(closed.size() == 1);
  CHECK(opened[0]->change().pr == "#26881");
  CHECK(opened[0]->change().commit == "736263f3d");
  CHECK(opened[0]->change().fix == Fix::kSidecarAfterKv);
  CHECK(closed[0]->change().pr == "#27366");
  CHECK(closed[0]->change().commit == "faa628694");
  CHECK(closed[0]->change().fix == Fix::kPoolTransferGuard);
  CHECK(closed[0]->before == opened[0]->after);  // a window one upstream day wide

  // The point inside the window: the seed bug's mismatch, its broken invariants and its loss.
  const BisectPoint& inside = b.points[static_cast<std::size_t>(opened[0]->after)];
  CHECK(inside.outcome.verdict == HangKind::kCollectiveMismatch);
  CHECK(inside.result.policy.path == CodePath::kHiMamba);
  CHECK(std::find(inside.outcome.violated.begin(), inside.outcome.violated.end(), "matching_collectives") != inside.outcome.violated.end());
  CHECK(inside.outcome.l3_lost_tokens == 2048);
  CHECK(hanging_points(b) == 1);
  CHECK(b.points.back().result.policy.path == CodePath::kUnified);

  const std::vector<std::string> summary = bisect_summary(b);
  REQUIRE(!summary.empty());
  CHECK(summary[0] == "hang window opened by #26881 (736263f3d, 2026-06-04) and closed by #27366 (faa628694, 2026-06-05)");
  const auto& differences = opened[0]->differences;
  CHECK(std::find(differences.begin(), differences.end(), "verdict complete -> HANG collective_mismatch") != differences.end());
}

TEST_CASE("bisect: a range of dates runs the rows within it, from the point before the first", "[bisect]") {
  const BisectRange r = range_of("2026-06-01", "2026-06-30");
  const Bisection b = bisect(load_scenario_file(kSeedScenario), BisectOptions{r, {}, {}, {}});
  REQUIRE(b.points.size() == 8);  // 5495026a3 (the starting state), then #26881 .. #28614
  CHECK(b.points.front().row()->pr == "#23309");
  CHECK(b.points.back().row()->pr == "#28614");
  REQUIRE(of_kind(b, TransitionKind::kOpened).size() == 1);
  CHECK(of_kind(b, TransitionKind::kOpened)[0]->change().pr == "#26881");

  // A commit names its own row as the first change; COMMIT^ the same starting state.
  CHECK(range_of("736263f3d", "").start == range_of("736263f3d^", "").start);
  CHECK(range_of("736263f3d", "").start == r.start);
  CHECK(range_of("", "faa628694").last == range_of("", "2026-06-05").last);
}

TEST_CASE("bisect: with best_effort nothing opens", "[bisect]") {
  const Bisection b = bisect(load_scenario_file(kSeedScenario), BisectOptions{range_of("", ""), {}, PrefetchPolicy::kBestEffort, {}});
  CHECK(of_kind(b, TransitionKind::kOpened).empty());
  CHECK(hanging_points(b) == 0);
  for (const BisectPoint& p : b.points) CHECK(p.result.policy.policy == PrefetchPolicy::kBestEffort);
  CHECK(bisect_summary(b)[0].starts_with("no upstream change"));
}

TEST_CASE("bisect: with the pool-transfer guard from the start the window never opens", "[bisect]") {
  const Bisection b = bisect(load_scenario_file(kSeedScenario), BisectOptions{range_of("", ""), {{true, "pool-transfer-guard"}}, {}, {}});
  CHECK(of_kind(b, TransitionKind::kOpened).empty());
  CHECK(of_kind(b, TransitionKind::kClosed).empty());
  CHECK(hanging_points(b) == 0);
  for (const BisectPoint& p : b.points) CHECK(p.result.policy.fixes.has(Fix::kPoolTransferGuard));
  // The counterfactual is what kept it closed: the same range without it hangs at #26881.
  CHECK(hanging_points(bisect(load_scenario_file(kSeedScenario), BisectOptions{range_of("", ""), {}, {}, {}})) == 1);
}

TEST_CASE("bisect: a --from after --to, an empty range and a date off the timeline are refused", "[bisect]") {
  std::string error;
  CHECK_FALSE(bisect_range("2026-06-05", "2026-06-04", &error));
  CHECK(error.find("--from 2026-06-05 is after --to 2026-06-04") != std::string::npos);
  CHECK_FALSE(bisect_range("faa628694", "736263f3d", &error));
  CHECK(error.find("is after") != std::string::npos);
  CHECK_FALSE(bisect_range("2026-06-07", "2026-06-08", &error));  // no row merged in between
  CHECK(error.find("no change of the upstream timeline") != std::string::npos);
  // A date outside the timeline: UpstreamPoint::parse's own reasons, named by the flag.
  CHECK_FALSE(bisect_range("2020-01-01", "", &error));
  CHECK(error.starts_with("--from: "));
  CHECK(error.find("#8692") != std::string::npos);
  CHECK_FALSE(bisect_range("", "2027-01-01", &error));
  CHECK(error.starts_with("--to: "));
  CHECK(error.find("2026-08-28") != std::string::npos);
  CHECK_FALSE(bisect_range("deadbeef1", "", &error));
  CHECK(error.find("not on the model's timeline") != std::string::npos);
}
