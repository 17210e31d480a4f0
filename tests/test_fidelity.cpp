// Fidelity to upstream's HiMamba path, as the model was corrected against it: registration under
// host pressure (#26945), the rate limit (CC@faa628694:512-514), hit loss reported, and every fix
// carrying its upstream state.
#include <algorithm>
#include <string>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "policy/variant.h"
#include "tools/run_metrics.h"
#include "run/scenario.h"
#include "sim/seed_sweep.h"
#include "sim/simulation.h"
#include "tests/run_events.h"
#include "tests/variant_options.h"
#include "tools/report.h"

namespace hcsim {
namespace {

RunResult run(const Scenario& s, const char* variant, std::optional<PrefetchPolicy> policy = std::nullopt) {
  RunOptions o = options_of(variant);
  o.policy = policy;
  return simulate(s, o);
}


}  // namespace

TEST_CASE("a rank short of host pages shrinks its prefetch to them, and the group agrees on that much (#26945)") {
  const Scenario s = load_scenario_file("scenarios/host-pressure-shrink.json");
  for (const char* variant : {"pre-fix", "seed-fix", "timeout-bounded", "all-fixes"}) {
    INFO(variant);
    const RunResult r = run(s, variant);
    REQUIRE(r.verdict.kind == HangKind::kNone);
    // Rank 1 has 16 free pages of the 32 it wanted: it registers 16, and the hit's MIN is 16 pages.
    REQUIRE(events_of(r, EventKind::kRegisterShrink, 1).size() == 1);
    const RegisterShrinkFields shrink = register_shrink_fields(*events_of(r, EventKind::kRegisterShrink, 1)[0]);
    CHECK(shrink.requested_tokens == 2048);
    CHECK(shrink.granted_tokens == 1024);
    CHECK(events_of(r, EventKind::kRegisterShrink, 0).empty());
    for (int rank = 0; rank < 2; ++rank) {
      REQUIRE(events_of(r, EventKind::kHitQuery, rank).size() == 1);
      CHECK(hit_query_fields(*events_of(r, EventKind::kHitQuery, rank)[0]).group_min_hit_tokens == 1024);
      REQUIRE(events_of(r, EventKind::kSchedule, rank).size() == 1);
      CHECK(schedule_fields(*events_of(r, EventKind::kSchedule, rank)[0]).storage_hit_tokens == 1024);
    }
  }
}

TEST_CASE("below the threshold even after shrinking, a rank skips registration and the group hangs as before") {
  const Scenario s = load_scenario_file("scenarios/registration-divergence.json");
  const RunResult r = run(s, "pre-fix");
  CHECK(r.verdict.kind == HangKind::kCollectiveMismatch);
  const auto skips = events_of(r, EventKind::kRegisterSkip, 3);
  REQUIRE(skips.size() == 1);
  CHECK(register_skip_fields(*skips[0]).reason == static_cast<std::int64_t>(SkipReason::kKvAlloc));
  CHECK(events_of(r, EventKind::kRegisterShrink, 3).empty());
}

TEST_CASE("the rate limit is 0.8 x (host - device) tokens, the device pool being host / hicache_ratio") {
  // 64 host pages at ratio 2: a 32-page device pool, so 0.8 x 32 x 64 = 1638 tokens may be in flight.
  // Three 16-page prefetches arrive together: the third finds 2048 tokens occupied and is skipped.
  const char* const kThree = R"({
    "name": "rate-limit", "description": "three prefetches against the capacity limit", "tp": 1,
    "policy": {"name": "wait_complete", "page_size": 64, "sidecar": false, "hicache_ratio": 2},
    "ranks": {"defaults": {"host_kv_pages": 64}},
    "storage": {"kv_page_bytes": 100000},
    "l3": [{"prefix": "a", "kv_pages": 16}, {"prefix": "b", "kv_pages": 16}, {"prefix": "c", "kv_pages": 16}],
    "requests": [{"name": "A", "arrival_us": 0, "input_tokens": 1030, "prefix": "a"},
                 {"name": "B", "arrival_us": 0, "input_tokens": 1030, "prefix": "b"},
                 {"name": "C", "arrival_us": 0, "input_tokens": 1030, "prefix": "c"}],
    "expect": [{"variant": "pre-fix", "verdict": "complete"}]
  })";
  Scenario s = parse_scenario(kThree, "rate-limit");
  RunResult r = run(s, "pre-fix");
  REQUIRE(r.verdict.kind == HangKind::kNone);
  CHECK(events_of(r, EventKind::kRegister, 0).size() == 2);
  const auto skips = events_of(r, EventKind::kRegisterSkip, 0);
  REQUIRE(skips.size() == 1);
  CHECK(skips[0]->request == 2);
  CHECK(register_skip_fields(*skips[0]).reason == static_cast<std::int64_t>(SkipReason::kRateLimited));
  // At ratio 4 the device pool is 16 pages: 0.8 x 48 x 64 = 2457 tokens, room for the third.
  s.policy.hicache_ratio = 4.0;
  r = run(s, "pre-fix");
  CHECK(events_of(r, EventKind::kRegister, 0).size() == 3);
}

TEST_CASE("an agreed L3 hit a short read throws away is reported, in the result, metrics, seeds and --json") {
  const Scenario s = load_scenario_file("scenarios/short-read-loss.json");
  const RunResult r = run(s, "pre-fix");
  REQUIRE(r.verdict.kind == HangKind::kNone);
  for (const auto& inv : r.invariants) CHECK(inv.held);  // nothing else would tell
  REQUIRE(r.l3_losses.size() == 1);
  const HitLoss& loss = r.l3_losses.begin()->second;
  CHECK(loss.agreed_tokens == 640);
  CHECK(loss.published_tokens == 0);
  CHECK(loss.cause == HitLossCause::kShortRead);
  CHECK(r.l3_lost_tokens() == 640);

  RunOptions o = options_of("pre-fix");
  CHECK(simulate_for_metrics(s, o).l3_lost_tokens == 640);  // a sweep row's l3_lost_tokens
  const SeedSweep sweep = sweep_seeds(s, o, 1, 8, 2);
  CHECK(sweep.runs_with_l3_loss == 8);
  CHECK(sweep.l3_lost_tokens == 8 * 640);
  REQUIRE(sweep.first_l3_loss_seed);
  CHECK(*sweep.first_l3_loss_seed == 1);

  const nlohmann::json j = report_json(s, r, RunLabel{"pre-fix", 0.0});
  CHECK(j.at("l3_lost_tokens") == 640);
  CHECK(j.at("requests").at(0).at("l3_lost").at("cause") == "a rank's read came back short or failed");

  // A scenario can demand no loss: the same run then misses its expectation.
  Expectation e = s.expect.front();
  e.l3_lost_tokens = 0;
  CHECK_FALSE(check_expectation(s, e).met);
  e.l3_lost_tokens = 640;
  CHECK(check_expectation(s, e).met);
}

TEST_CASE("best_effort ending a prefetch before its hit query answers loses the hit the group then agrees on") {
  const Scenario s = load_scenario_file("scenarios/short-read-loss.json");
  const RunResult r = run(s, "pre-fix", PrefetchPolicy::kBestEffort);
  REQUIRE(r.l3_losses.size() == 1);
  CHECK(r.l3_losses.begin()->second.cause == HitLossCause::kEndedBeforeHit);
  CHECK(r.l3_losses.begin()->second.agreed_tokens == 640);
}

TEST_CASE("a prefix committed without its Mamba state is a loss, though every page was read") {
  // The seed bug without a hang: both ranks end R2's prefetch before their Mamba reads land.
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-tick.json");
  const RunResult r = run(s, "pre-fix");
  REQUIRE(r.verdict.kind == HangKind::kNone);
  REQUIRE(r.l3_losses.size() == 1);
  CHECK(r.l3_losses.begin()->second.cause == HitLossCause::kSidecarNotLoaded);
  CHECK(r.l3_losses.begin()->second.agreed_tokens == 1024);
  CHECK(run(s, "seed-fix").l3_losses.empty());  // the guard waits for the state
}

TEST_CASE("every fix says where its upstream change stands; only exact upstream fix sets carry a date") {
  for (const FixInfo& f : all_fixes()) {
    INFO(f.name);
    CHECK_FALSE(f.date.empty());
    CHECK(f.commit.empty() == (f.state != UpstreamState::kMerged));
    if (f.baseline) CHECK(f.state == UpstreamState::kMerged);
  }
  CHECK(fix_info(Fix::kPoolTransferGuard).upstream.find("#27366") != std::string_view::npos);
  CHECK(fix_info(Fix::kPoolTransferGuard).commit == "faa628694");
  CHECK_FALSE(fix_info(Fix::kRevokeMarksTerminated).baseline);  // #16747 was closed unmerged
  CHECK(fix_info(Fix::kRevokeMarksTerminated).state == UpstreamState::kClosedUnmerged);
  CHECK(fix_info(Fix::kSyncedAckChecks).commit == "7f67965b4");

  std::string error;
  CHECK(upstream_label(*parse_variant("pre-fix", &error)) == "upstream 2026-06-04 (736263f3d, #26881) until 2026-06-05 (faa628694, #27366)");
  CHECK(upstream_label(*parse_variant("seed-fix", &error)) == "upstream 2026-06-05 (faa628694, #27366) until 2026-06-06 (42fe02528, #27285)");
  CHECK(upstream_label(*parse_variant("2026-08-20", &error)) == "upstream 2026-08-06 (f6de147b8, #33613) until 2026-08-25 (829138a31, #27010)");
  // Each preset that names an upstream state is that state: the same fixes as its date.
  CHECK(*parse_variant("pre-fix", &error) == *parse_variant("faa628694^", &error));
  CHECK(*parse_variant("seed-fix", &error) == *parse_variant("2026-06-05", &error));
  for (const char* hypothetical : {"timeout-bounded", "all-fixes", "pre-fix~completion-race-guard", "seed-fix+sidecar-hit-sync",
                                   "2026-08-20+timeout-beats-guard"}) {
    INFO(hypothetical);
    CHECK_FALSE(upstream_at(*parse_variant(hypothetical, &error)).has_value());
  }
  // The name before the rename still parses: old variants and traces replay.
  CHECK(*parse_variant("pre-fix+unconditional-writing-check", &error) == *parse_variant("pre-fix+synced-ack-checks", &error));
}

}  // namespace hcsim

namespace hcsim {

TEST_CASE("the diagnosis names the first fact that differed between ranks, with its time") {
  // The seed hang: rank 0's Mamba read returned before the terminating pass, rank 1's had not.
  const Scenario seed = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  const RunResult hang = simulate(seed, options_of("pre-fix"));
  auto origin = divergence_origin(hang);
  REQUIRE(origin);
  REQUIRE(origin->facts.size() == 2);
  REQUIRE(origin->facts[0] != nullptr);
  CHECK(origin->facts[0]->kind == EventKind::kSidecarDone);
  CHECK(origin->facts[0]->time_ns == origin->at_ns);
  CHECK(origin->facts[1] == nullptr);  // nothing yet
  CHECK(origin_text(*origin, hang, seed).find("rank 1: nothing yet") != std::string::npos);

  // An allocation: rank 3 alone cannot register.
  const Scenario reg = load_scenario_file("scenarios/registration-divergence.json");
  const RunResult reg_run = simulate(reg, options_of("pre-fix"));  // the origin points into its log
  origin = divergence_origin(reg_run);
  REQUIRE(origin);
  REQUIRE(origin->facts.size() == 8);
  REQUIRE(origin->facts[0] != nullptr);
  REQUIRE(origin->facts[3] != nullptr);
  CHECK(origin->facts[0]->kind == EventKind::kRegister);
  CHECK(origin->facts[3]->kind == EventKind::kRegisterSkip);

  // A write-through backup committed on one rank and not on the other.
  const Scenario skew = load_scenario_file("scenarios/writing-check-skew.json");
  const RunResult skew_run = simulate(skew, options_of("pre-fix"));
  origin = divergence_origin(skew_run);
  REQUIRE(origin);
  REQUIRE(origin->facts.size() == 2);
  REQUIRE((origin->facts[0] != nullptr && origin->facts[1] != nullptr));
  CHECK(origin->facts[0]->kind == EventKind::kWriteBackup);
  CHECK(write_backup_fields(*origin->facts[0]).committed != write_backup_fields(*origin->facts[1]).committed);

  // seed-fix: the ranks never part, so there is no origin to name.
  CHECK_FALSE(divergence_origin(simulate(seed, options_of("seed-fix"))));
}

}  // namespace hcsim

namespace hcsim {

TEST_CASE("a load-back copy late on one rank alone skews the write-through checks before #26923, by timing only") {
  Scenario s = load_scenario_file("scenarios/load-ack-skew.json");
  const RunResult skewed = simulate(s, options_of("pre-fix"));
  // One rank's writing_check MIN (1 element) meets the other's drain MIN (3): Gloo checks the
  // length and aborts, so the run ends as a crash, not a hang.
  CHECK(skewed.verdict.kind == HangKind::kCrash);
  CHECK(skewed.verdict.headline.find("with 1 and 3 elements") != std::string::npos);
  const auto origin = divergence_origin(skewed);
  REQUIRE(origin);
  REQUIRE(origin->facts.size() == 2);
  REQUIRE((origin->facts[0] != nullptr && origin->facts[1] != nullptr));
  CHECK(origin->facts[0]->kind == EventKind::kHostEvict);  // rank 0 could evict A's pages, rank 1 could not
  CHECK(host_evict_fields(*origin->facts[0]).pages > host_evict_fields(*origin->facts[1]).pages);
  // HiMamba on 2026-06-22 takes a load ack only once every rank's copy completed.
  CHECK(simulate(s, options_of("seed-fix+synced-ack-checks")).verdict.kind == HangKind::kNone);
  // The same scenario with both copies on time: nothing differs, nothing hangs.
  s.delays.clear();
  CHECK(simulate(s, options_of("pre-fix")).verdict.kind == HangKind::kNone);
}

}  // namespace hcsim

namespace hcsim {

namespace {
// One rank, a 32-page hit of 10 MB pages: the read takes ~64 ms, the file backend's page copies
// ~32 ms more (1 ms a page), and the timeout fires at 80 ms, between the read's end and the copies'.
const char* const kSlowPages = R"({
  "name": "slow-pages", "description": "a timeout during a batch's page copies", "tp": 1,
  "policy": {"name": "timeout", "page_size": 64, "sidecar": false,
             "timeout": {"formula": "linear", "base_ms": 80, "per_ki_token_ms": 0}},
  "storage": {"kv_page_bytes": 10000000, "host_copy_gbps": 10},
  "l3": [{"prefix": "doc", "kv_pages": 32}],
  "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 2100, "prefix": "doc"}],
  "expect": [{"variant": "pre-fix", "verdict": "complete"}]
})";
}  // namespace

TEST_CASE("the file backend counts a batch page by page, so a timeout cuts it; a zero-copy backend counts it whole") {
  Scenario s = parse_scenario(kSlowPages, "slow-pages");
  const RunResult file = simulate(s, options_of("pre-fix"));
  REQUIRE(file.verdict.kind == HangKind::kNone);
  const auto sched = events_of(file, EventKind::kSchedule, 0);
  REQUIRE(sched.size() == 1);
  const std::int64_t storage_hit_tokens = schedule_fields(*sched[0]).storage_hit_tokens;
  CHECK(storage_hit_tokens > 0);     // some pages were copied and counted before the timeout
  CHECK(storage_hit_tokens < 2048);  // not all of them
  CHECK(storage_hit_tokens % 64 == 0);
  REQUIRE(file.l3_losses.size() == 1);
  CHECK(file.l3_losses.begin()->second.cause == HitLossCause::kTimedOut);
  CHECK(file.l3_losses.begin()->second.lost_tokens() == 2048 - storage_hit_tokens);

  s.storage.zero_copy = true;  // the batch counts when the read returns, before the timeout
  const RunResult zero = simulate(s, options_of("pre-fix"));
  REQUIRE(zero.verdict.kind == HangKind::kNone);
  REQUIRE(events_of(zero, EventKind::kSchedule, 0).size() == 1);
  CHECK(schedule_fields(*events_of(zero, EventKind::kSchedule, 0)[0]).storage_hit_tokens == 2048);
  CHECK(zero.l3_losses.empty());
}

TEST_CASE("write-through acks are taken only once every rank's device-to-host copy completed") {
  const char* const kWrite = R"({
    "name": "write-ack", "description": "a slow device-to-host copy on one rank", "tp": 2,
    "policy": {"name": "wait_complete", "page_size": 64, "sidecar": false, "write_through": true},
    "storage": {"kv_page_bytes": 100000},
    "requests": [{"name": "A", "arrival_us": 0, "input_tokens": 2048, "prefix": "a"},
                 {"name": "B", "arrival_us": 50000, "input_tokens": 128, "prefix": "b"}],
    "delays": [{"op": "d2h_copy", "ranks": [1], "requests": ["A"], "fixed_us": 20000}],
    "expect": [{"variant": "pre-fix", "verdict": "complete"}]
  })";
  Scenario s = parse_scenario(kWrite, "write-ack");
  const auto acked_after_backup_ns = [](const RunResult& r, int rank) {
    const auto backups = events_of(r, EventKind::kWriteBackup, rank);  // A's, then B's
    const auto acks = events_of(r, EventKind::kWriteAcked, rank);
    REQUIRE(backups.size() == 2);
    REQUIRE(acks.size() >= 1);
    REQUIRE(acks[0]->request == 0);
    return acks[0]->time_ns - backups[0]->time_ns;
  };
  const RunResult slow = simulate(s, options_of("pre-fix"));
  REQUIRE(slow.verdict.kind == HangKind::kNone);
  // writing_check MIN-agrees the completed acks: rank 0 waits for rank 1's copy too.
  CHECK(acked_after_backup_ns(slow, 0) >= 20'000'000);
  CHECK(acked_after_backup_ns(slow, 1) >= 20'000'000);
  s.delays.clear();
  const RunResult fast = simulate(s, options_of("pre-fix"));
  CHECK(acked_after_backup_ns(fast, 0) < 5'000'000);
}

}  // namespace hcsim

namespace hcsim {

TEST_CASE("from #19320 an operation ended before its hit query is not queried; the hit MIN still runs (CC@7cd55c681:1061-1064)") {
  // best_effort ends both prefetches at the first pass, before the hit drain; the prefetch thread is
  // still querying A then, and finds B terminated.
  const Scenario s = parse_scenario(R"({"name": "skip-query", "description": "two prefetches ended before B's query", "tp": 2,
    "policy": {"name": "best_effort", "page_size": 64, "model": "dense"},
    "storage": {"call_latency_us": 100, "read_gbps": 5.0, "kv_page_bytes": 1531250},
    "l3": [{"prefix": "a", "kv_pages": 8}, {"prefix": "b", "kv_pages": 8}],
    "requests": [{"name": "A", "arrival_us": 0, "input_tokens": 530, "prefix": "a"}, {"name": "B", "arrival_us": 0, "input_tokens": 530, "prefix": "b"}],
    "expect": [{"variant": "2026-08-20", "verdict": "complete"}]})",
                                    "skip-query.json");
  auto count = [](const RunResult& r, EventKind kind, bool (*keep)(const TraceEvent&)) {
    return std::count_if(r.log.events().begin(), r.log.events().end(), [&](const TraceEvent& e) { return e.kind == kind && e.rank == 0 && keep(e); });
  };
  auto hit_query_call = [](const TraceEvent& e) { return e.actor == ActorKind::kPrefetch && storage_call_fields(e).op == static_cast<std::int64_t>(StorageOp::kHitQuery); };
  auto prefetch_collective = [](const TraceEvent& e) { return e.actor == ActorKind::kPrefetch; };
  const RunResult now = run(s, "2026-08-20");
  CHECK(count(now, EventKind::kStorageCall, hit_query_call) == 1);
  CHECK(count(now, EventKind::kCollectiveEnter, prefetch_collective) == 2);
  const RunResult before = run(s, "2026-07-15");
  CHECK(count(before, EventKind::kStorageCall, hit_query_call) == 2);
  CHECK(count(before, EventKind::kCollectiveEnter, prefetch_collective) == 2);
}

}  // namespace hcsim
