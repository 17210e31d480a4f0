// Mixed stacks (DeepSeek-V4): several sidecar pools per prefetch, one batch read over them, a
// packed MIN with one hit per pool, all or nothing from #31443, and backups writing every pool.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/sidecar_stack.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "tests/run_events.h"
#include "tests/variant_options.h"

using namespace hcsim;

TEST_CASE("stacks: each family's pools, their hit policies and index sources, in upstream's transfer order") {
  CHECK(sidecar_stack(ModelFamily::kDense).empty());
  REQUIRE(sidecar_stack(ModelFamily::kHybridMamba).size() == 1);
  CHECK(sidecar_stack(ModelFamily::kHybridMamba)[0].from == IndicesFrom::kOwn);
  CHECK(sidecar_stack(ModelFamily::kDsa)[0].from == IndicesFrom::kKv);
  const auto dsv4 = sidecar_stack(ModelFamily::kDeepSeekV4);
  REQUIRE(dsv4.size() == 3);
  CHECK((dsv4[0].name == "swa" && dsv4[0].hit == HitPolicy::kTrailingPages && dsv4[0].from == IndicesFrom::kOwn));
  CHECK((dsv4[1].name == "compressed" && dsv4[1].hit == HitPolicy::kAllPages && dsv4[1].from == IndicesFrom::kKv));
  CHECK((dsv4[2].name == "compressed_state" && dsv4[2].hit == HitPolicy::kTrailingPages && dsv4[2].from == IndicesFrom::kSwa));
  // Pool 0 keeps the page's own key; other pools' keys differ from it and from each other.
  CHECK(object_key(0, 42) == 42);
  CHECK(object_key(1, 42) != 42);
  CHECK(object_key(1, 42) != object_key(2, 42));
  CHECK(object_key(1, 42) != object_key(1, 43));
}

TEST_CASE("deepseek_v4: one read over three pools; from #31443 a short pool discards the whole prefetch on every rank") {
  const Scenario s = load_scenario_file("scenarios/deepseek-v4-compressed-evicted-before-read.json");
  const RunResult r = simulate(s, options_of("2026-08-20"));
  for (int rank : {0, 1}) {
    // One sidecar_done per pool transfer, in stack order: SWA window, compressed pages, states.
    const auto done = events_of(r, EventKind::kSidecarDone, rank);
    REQUIRE(done.size() == 3);
    CHECK(sidecar_done_fields(*done[0]).hit_pages == 2);
    CHECK(sidecar_done_fields(*done[1]).hit_pages == (rank == 0 ? 32 : 16));
    CHECK(sidecar_done_fields(*done[2]).hit_pages == 2);
    const auto commits = events_of(r, EventKind::kCommit, rank);
    REQUIRE(commits.size() == 1);
    CHECK(commit_fields(*commits[0]).prefix_tokens == 0);  // discarded, not clamped
    CHECK(events_of(r, EventKind::kIndexerGap, rank).empty());
  }

  const RunResult before = simulate(s, options_of("2026-07-20"));
  CHECK(events_of(before, EventKind::kIndexerGap, 0).empty());
  const auto gaps = events_of(before, EventKind::kIndexerGap, 1);
  REQUIRE(gaps.size() == 1);
  CHECK(indexer_gap_fields(*gaps[0]).pages == 16);
  for (int rank : {0, 1}) CHECK(commit_fields(*events_of(before, EventKind::kCommit, rank).at(0)).prefix_tokens == 32 * 64);
}

TEST_CASE("deepseek_v4: an SWA-derived state missing on one rank ends the group's hit at the hit query") {
  Scenario s = load_scenario_file("scenarios/deepseek-v4-compressed-evicted-before-read.json");
  s.l3[1].pools.clear();
  s.l3[1].pools.push_back({.tag = 2, .missing_pages = {32}, .stale_pages = {}});
  const RunResult r = simulate(s, options_of("2026-08-20"));
  // Rank 1 has no 2-page run of states ending anywhere: its hit is 0, and the group's MIN with it.
  for (int rank : {0, 1}) {
    const auto q = events_of(r, EventKind::kHitQuery, rank);
    REQUIRE(q.size() == 1);
    CHECK(hit_query_fields(*q[0]).local_hit_tokens == (rank == 0 ? 32 * 64 : 0));
    CHECK(hit_query_fields(*q[0]).group_min_hit_tokens == 0);
  }
}

TEST_CASE("deepseek_v4: a write-through backup writes the SWA window, every page's compressed cache and the window's states") {
  const std::string text = R"({"name": "w", "description": "w", "tp": 1, "upstream_at": "2026-08-20",
    "policy": {"name": "wait_complete", "page_size": 64, "model": "deepseek_v4", "swa_window_pages": 2, "write_through": true},
    "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 321}], "expect": [{"verdict": "complete"}]})";
  const Scenario s = parse_scenario(text, "w.json");
  const RunResult r = simulate(s, options_of("2026-08-20"));
  std::vector<std::int64_t> written;  // objects per sidecar_set call
  for (const TraceEvent* e : events_of(r, EventKind::kStorageCall, 0)) {
    if (storage_call_fields(*e).op == static_cast<std::int64_t>(StorageOp::kSidecarSet)) written.push_back(storage_call_fields(*e).result);
  }
  // 5 pages: 2 SWA values, 5 compressed caches, 2 states.
  CHECK(written == std::vector<std::int64_t>{9});
}

TEST_CASE("draft sidecar: from #30393 a draft miss on one rank shortens the group's hit and discards a Mamba prefetch") {
  CHECK(sidecar_stack(ModelFamily::kHybridMamba, true).size() == 2);
  CHECK(sidecar_stack(ModelFamily::kHybridMamba, true)[1].name == "draft");
  CHECK(sidecar_stack(ModelFamily::kDeepSeekV4, true).size() == kMaxSidecarPools);
  const Scenario s = load_scenario_file("scenarios/draft-miss-discards-mamba-prefetch.json");
  const RunResult r = simulate(s, options_of("2026-08-20"));
  for (int rank : {0, 1}) {
    const auto q = events_of(r, EventKind::kHitQuery, rank);
    REQUIRE(q.size() == 1);
    CHECK(hit_query_fields(*q[0]).local_hit_tokens == (rank == 0 ? 32 : 16) * 64);
    CHECK(hit_query_fields(*q[0]).group_min_hit_tokens == 16 * 64);
    // The Mamba key moved to page 16, which has no state; the 16 draft objects were read.
    const auto done = events_of(r, EventKind::kSidecarDone, rank);
    REQUIRE(done.size() == 2);
    CHECK(sidecar_done_fields(*done[0]).hit_pages == 0);
    CHECK(sidecar_done_fields(*done[1]).hit_pages == 16);
    CHECK(commit_fields(*events_of(r, EventKind::kCommit, rank).at(0)).prefix_tokens == 0);
  }
  // The day before #30393 the draft's objects are not part of the prefetch: one pool, all 32 pages.
  const RunResult before = simulate(s, options_of("8e11feb68^"));
  for (int rank : {0, 1}) {
    CHECK(events_of(before, EventKind::kSidecarDone, rank).size() == 1);
    CHECK(commit_fields(*events_of(before, EventKind::kCommit, rank).at(0)).prefix_tokens == 32 * 64);
  }
}

TEST_CASE("draft sidecar: a packed draft or an unknown plan is refused; a draft pool is named only with a draft") {
  const std::string base = R"({"name": "d", "description": "d", "tp": 1, "policy": {"name": "wait_complete", "draft": "DRAFT"},
    "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 640, "prefix": "p"}], "l3": [{"prefix": "p", "kv_pages": 4, "pools": {"draft": {"missing_pages": [2]}}}],
    "expect": [{"variant": "2026-08-20", "verdict": "complete"}]})";
  auto with = [&](const std::string& plan) { return std::string(base).replace(base.find("DRAFT"), 5, plan); };
  CHECK_THROWS_WITH(parse_scenario(with("packed"), "d.json"), Catch::Contains("d.json: /policy/draft: a packed draft"));
  CHECK_THROWS_WITH(parse_scenario(with("eagle"), "d.json"), Catch::Contains("expected \"sidecar\""));
  const Scenario ok = parse_scenario(with("sidecar"), "d.json");
  REQUIRE(ok.l3.at(0).pools.size() == 1);
  CHECK(ok.l3[0].pools[0].tag == 1);  // after the Mamba state
  std::string no_draft = base;
  no_draft.replace(no_draft.find(", \"draft\": \"DRAFT\""), 18, "");
  CHECK_THROWS_WITH(parse_scenario(no_draft, "d.json"), Catch::Contains("no derived pool \"draft\" in the hybrid_mamba stack"));
}

TEST_CASE("deepseek_v4: a prefetch mid-tree shorter than the window has no SWA transfer; a short compressed read discards it whole") {
  // A's write-through puts 10 pages on host; B extends them by 2 pages from L3, less than the
  // 4-page window, so B's operation has the compressed pool only (no SWA buffer mid-tree,
  // SC@17313cf4b:776-795, and no state pool without one).
  const std::string text = R"({"name": "m", "description": "m", "tp": 1, "upstream_at": "2026-08-20",
    "policy": {"name": "wait_complete", "page_size": 64, "prefetch_threshold_tokens": 64, "model": "deepseek_v4", "swa_window_pages": 4,
               "write_through": true},
    "l3": [{"prefix": "doc", "kv_pages": 12, "sidecar_at_pages": [9, 10, 11, 12], "pools": {"compressed": {"stale_pages": [12]}}}],
    "requests": [{"name": "A", "arrival_us": 0, "input_tokens": 641, "prefix": "doc"},
                 {"name": "B", "arrival_us": 200000, "input_tokens": 769, "prefix": "doc"}],
    "expect": [{"verdict": "complete"}]})";
  const Scenario s = parse_scenario(text, "m.json");
  const RunResult r = simulate(s, options_of("2026-08-20"));
  CHECK_FALSE(r.verdict.hang());
  const RequestId b = 1;
  std::vector<std::int64_t> hits;  // B's sidecar reads
  for (const TraceEvent* e : events_of(r, EventKind::kSidecarDone, 0)) {
    if (e->request == b) hits.push_back(sidecar_done_fields(*e).hit_pages);
  }
  CHECK(hits == std::vector<std::int64_t>{1});  // compressed only: page 11 read, page 12 stale
  bool discarded = false;
  for (const TraceEvent* e : events_of(r, EventKind::kCommit, 0)) discarded = discarded || (e->request == b && commit_fields(*e).prefix_tokens == 0);
  CHECK(discarded);
}
