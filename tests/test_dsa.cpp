// DSA: the KV-derived indexer (ALL_PAGES) folded at the hit query, read after full KV into the
// pages' own slots, and published clamped (#31443) or, before, regardless of what was read.
#include <array>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/trailing_pages.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "tests/run_events.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

RunResult run_at(const Scenario& s, const char* variant) { return simulate(s, options_of(variant)); }

}  // namespace

TEST_CASE("dsa: an ALL_PAGES hit is the leading run of pages with their object, within the KV hit") {
  const std::array<std::uint8_t, 6> present{1, 1, 1, 0, 1, 1};
  CHECK(all_pages_hit(present, 6) == 3);
  CHECK(all_pages_hit(present, 2) == 2);
  CHECK(all_pages_hit(present, 0) == 0);
  CHECK(all_pages_hit(present, 9) == 3);  // never past the pages queried
  CHECK(clamped_pages(32, 16) == 16);
  CHECK(clamped_pages(8, 32) == 8);
  CHECK(clamped_pages(32, 0) == 0);
}

TEST_CASE("dsa: from #31443 every rank publishes the group's indexer hit; before, rank 1 publishes pages it has no indexer for") {
  const Scenario s = load_scenario_file("scenarios/dsa-indexer-evicted-before-read.json");
  const RunResult clamped = run_at(s, "2026-08-20");
  for (const TraceEvent* e : events_of(clamped, EventKind::kCommit)) CHECK(commit_fields(*e).prefix_tokens == 16 * 64);
  CHECK(events_of(clamped, EventKind::kIndexerGap).empty());
  // The result MIN carries [completed, indexer hit]: two elements on both ranks.
  for (const TraceEvent* e : events_of(clamped, EventKind::kTerminate)) CHECK(terminate_fields(*e).group_min_tokens == 32 * 64);

  const RunResult garbled = run_at(s, "2026-06-20");  // HiRadixCache, before the clamp
  const auto gaps = events_of(garbled, EventKind::kIndexerGap);
  REQUIRE(gaps.size() == 1);
  CHECK(gaps.front()->rank == 1);
  CHECK(indexer_gap_fields(*gaps.front()).pages == 16);
  CHECK(indexer_gap_fields(*gaps.front()).published_pages == 32);
  // Summed successes before #31443: rank 1's read reports 16 of 32.
  for (const TraceEvent* e : events_of(garbled, EventKind::kSidecarDone)) CHECK(sidecar_done_fields(*e).hit_pages == (e->rank == 0 ? 32 : 16));
}

TEST_CASE("dsa: a stale indexer object counts at the hit query and misses at the read") {
  const Scenario s = load_scenario_file("scenarios/dsa-indexer-evicted-before-read.json");
  const RunResult r = run_at(s, "2026-08-20");
  for (const TraceEvent* e : events_of(r, EventKind::kHitQuery)) CHECK(hit_query_fields(*e).local_hit_tokens == 32 * 64);
}

TEST_CASE("dsa: a scenario before the model has DSA code is refused, naming the date") {
  const std::string text = R"({"name": "d", "description": "d", "tp": 1, "policy": {"name": "timeout", "model": "dsa"},
    "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 64}], "expect": [{"variant": "2026-04-13", "verdict": "complete"}]})";
  CHECK_THROWS_WITH(parse_scenario(text, "d.json"), Catch::Contains("from 2026-04-14"));
}

TEST_CASE("dsa: until #27550 HiRadixCache publishes the pages an indexer read still writes; from it the vote waits for the read") {
  const Scenario s = load_scenario_file("scenarios/dsa-indexer-lag.json");
  const RunResult racy = run_at(s, "2026-06-08");
  // Both ranks publish at the first vote after their KV reads, before either indexer read lands.
  const auto violations = events_of(racy, EventKind::kSlotViolation);
  REQUIRE_FALSE(violations.empty());
  for (const TraceEvent* e : violations) CHECK(slot_violation_fields(*e).pool == static_cast<std::int64_t>(SlotPoolKind::kKv));
  CHECK(events_of(racy, EventKind::kIndexerGap).size() == 2);

  const RunResult guarded = run_at(s, "2026-06-09");
  CHECK(events_of(guarded, EventKind::kSlotViolation).empty());
  CHECK(events_of(guarded, EventKind::kIndexerGap).empty());
  // Rank 1 votes 'cannot terminate' until its read lands ~488 ms late: R is scheduled after it.
  for (const TraceEvent* e : events_of(guarded, EventKind::kSchedule)) CHECK(e->time_ns > 488'000'000);
}
