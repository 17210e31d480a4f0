// Golden tests over the shipped scenarios: every declared expectation holds, runs are
// deterministic, and the seed hang comes from timing, not from the variant.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

std::vector<std::string> shipped_scenarios() {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator("scenarios")) {
    if (e.path().extension() == ".json") paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

RunResult run(const Scenario& s, const char* variant, std::optional<PrefetchPolicy> policy = std::nullopt) {
  RunOptions o = options_of(variant);
  o.policy = policy;
  return simulate(s, o);
}

const TraceEvent* last_event(const RunResult& r, EventKind kind, int rank) {
  const TraceEvent* found = nullptr;
  for (const auto& e : r.log.events()) {
    if (e.kind == kind && e.rank == rank) found = &e;
  }
  return found;
}

}  // namespace

TEST_CASE("every shipped scenario meets each expectation it declares") {
  const auto paths = shipped_scenarios();
  REQUIRE(paths.size() >= 6);
  for (const auto& path : paths) {
    const Scenario s = load_scenario_file(path);
    for (const Expectation& e : s.expect) {
      const ExpectationCheck c = check_expectation(s, e);
      INFO(path << " variant " << e.variant << " policy " << policy_name(e.policy.value_or(s.policy.policy)) << ": expected "
                << c.expected << ", got " << c.result.verdict.headline);
      CHECK(c.met);
    }
  }
}

TEST_CASE("every shipped scenario declares a verdict for every preset") {
  for (const auto& path : shipped_scenarios()) {
    const Scenario s = load_scenario_file(path);
    for (const PresetInfo& p : all_presets()) {
      const bool declared = std::any_of(s.expect.begin(), s.expect.end(), [&](const Expectation& e) { return e.fixes == p.fixes; });
      // A preset whose code path the model does not run the family on (an SWA family before the
      // unified tree's route) is refused when run, so the scenario cannot declare it.
      const bool runnable = hybrid_swa_modelled(s.policy.family, code_path(s.policy.family, p.fixes));
      INFO(path << " lacks an expectation for preset " << p.name);
      CHECK((declared || !runnable));
      CHECK((runnable || !declared));
    }
  }
}

TEST_CASE("seed hang: pre-fix diverges on the Mamba commit and the forwards mismatch") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  const RunResult r = run(s, "pre-fix");
  REQUIRE(r.verdict.kind == HangKind::kCollectiveMismatch);
  REQUIRE(r.verdict.has_collective);
  CHECK(r.verdict.group == Group::kTp);
  REQUIRE(r.verdict.entered.size() == 2);
  // Both ranks reach the forward; their batches differ by the host hit rank 1 lost.
  for (const auto& e : r.verdict.entered) CHECK(e.op == CollectiveOp::kForward);
  CHECK(r.verdict.entered[0].size != r.verdict.entered[1].size);
  const TraceEvent* commit0 = last_event(r, EventKind::kCommit, 0);
  const TraceEvent* commit1 = last_event(r, EventKind::kCommit, 1);
  REQUIRE(commit0);
  REQUIRE(commit1);
  CHECK(commit_fields(*commit0).prefix_tokens == commit_fields(*commit1).prefix_tokens);  // the same KV prefix (MIN of completed tokens) ...
  CHECK(commit_fields(*commit0).sidecar_attached == 1);  // ... but only rank 0 had its sidecar when it committed
  CHECK(commit_fields(*commit1).sidecar_attached == 0);
  const TraceEvent* match0 = last_event(r, EventKind::kMatch, 0);
  const TraceEvent* match1 = last_event(r, EventKind::kMatch, 1);
  REQUIRE(match0);
  REQUIRE(match1);
  CHECK(match_fields(*match0).host_hit_tokens == 2048);
  CHECK(match_fields(*match1).host_hit_tokens == 0);
  // Rank 1's scheduler freed the Mamba slot its IO thread was still writing: flagged.
  CHECK(r.ranks[1].slot_violations == 1);
  CHECK(r.ranks[0].slot_violations == 0);
}

TEST_CASE("seed fix: every rank waits for every rank's sidecar, then commits the same state") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  const RunResult r = run(s, "seed-fix");
  REQUIRE_FALSE(r.verdict.hang());
  const TraceEvent* sidecar1 = last_event(r, EventKind::kSidecarDone, 1);
  const TraceEvent* commit0 = last_event(r, EventKind::kCommit, 0);
  REQUIRE(sidecar1);
  REQUIRE(commit0);
  CHECK(commit0->time_ns > sidecar1->time_ns);  // terminated only after the lagging read
  for (int rank : {0, 1}) {
    CHECK(commit_fields(*last_event(r, EventKind::kCommit, rank)).sidecar_attached == 1);
    CHECK(r.ranks[static_cast<std::size_t>(rank)].slot_violations == 0);
  }
}

TEST_CASE("the seed hang comes from timing: shortening the lagging read removes it") {
  Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  s.perturbations = {};  // one delay varies, nothing else
  REQUIRE(s.delays.size() == 1);
  REQUIRE(s.delays[0].effect == DelayRule::Effect::kFixed);
  s.delays[0].a_ns = 0;  // rank 1's sidecar now lands with rank 0's, before the terminating pass
  CHECK_FALSE(run(s, "pre-fix").verdict.hang());
  // Scan the one delay: the verdict changes exactly once, from complete to hang.
  std::vector<bool> hangs;
  for (TimeNs us = 0; us <= 2000; us += 100) {
    s.delays[0].a_ns = us * 1000;
    hangs.push_back(run(s, "pre-fix").verdict.hang());
  }
  CHECK_FALSE(hangs.front());
  CHECK(hangs.back());
  CHECK(std::is_sorted(hangs.begin(), hangs.end()));  // false..false, true..true
}

TEST_CASE("the TP=4 seed scenario hangs under pre-fix with the lagging rank's forward apart") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag-tp4.json");
  const RunResult r = run(s, "pre-fix");
  REQUIRE(r.verdict.kind == HangKind::kCollectiveMismatch);
  // The matcher reports at the first entry that disagrees with the first one to enter.
  bool lagging_rank_entered = false;
  for (const auto& e : r.verdict.entered) lagging_rank_entered = lagging_rank_entered || e.rank == 2;
  CHECK(lagging_rank_entered);
  CHECK_FALSE(run(s, "seed-fix").verdict.hang());
}

TEST_CASE("same scenario and seed give the same digest; the digest covers the run") {
  for (const auto& path : shipped_scenarios()) {
    const Scenario s = load_scenario_file(path);
    const std::string variant = runnable_variant(s, "pre-fix");
    const RunResult a = run(s, variant.c_str());
    const RunResult b = run(s, variant.c_str());
    INFO(path);
    CHECK(a.log.digest() == b.log.digest());
    CHECK(a.log.count() == b.log.count());
    CHECK(a.kernel_events == b.kernel_events);
  }
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  CHECK(run(s, "pre-fix").log.digest() != run(s, "seed-fix").log.digest());
}

TEST_CASE("a random delay is reproduced by its seed and varied by another") {
  Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  s.delays[0].effect = DelayRule::Effect::kUniform;
  s.delays[0].a_ns = 0;
  s.delays[0].b_ns = 900'000'000;
  RunOptions o;
  o.fixes = *preset_by_name("seed-fix");
  o.seed = 11;
  const auto d1 = simulate(s, o).log.digest();
  CHECK(simulate(s, o).log.digest() == d1);
  o.seed = 12;
  CHECK(simulate(s, o).log.digest() != d1);
}

// Golden digests: the same on every build type and machine. A deliberate model change updates
// them (hcsim run scenarios/himamba-sidecar-lag.json --preset P | grep digest).
TEST_CASE("golden digests of the seed scenario") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  CHECK(run(s, "pre-fix").log.digest() == 0xbad8cedc9761b20dULL);
  CHECK(run(s, "seed-fix").log.digest() == 0xbf2626332e489a2aULL);
}

TEST_CASE("HM00d reads the Mamba hit after the MIN: a sidecar landing during the MIN counts") {
  Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  s.perturbations = {};  // exact timing below
  // Rank 1's sidecar lands at 10.690 ms, inside the terminating pass's MIN (10.680 to 10.700 ms).
  s.delays[0].a_ns = 330'000;
  const RunResult r = run(s, "pre-fix");
  CHECK_FALSE(r.verdict.hang());
  CHECK(commit_fields(*last_event(r, EventKind::kCommit, 1)).sidecar_attached == 1);
}

namespace {
// Two requests sharing a prefix on a model without sidecars: the second finds the first's pages.
const char* const kNoSidecar = R"({
  "name": "no-sidecar-reuse", "description": "V-A style: KV only", "tp": 2,
  "policy": {"name": "wait_complete", "page_size": 64, "sidecar": false},
  "storage": {"kv_page_bytes": 100000},
  "l3": [{"prefix": "doc", "kv_pages": 32}],
  "requests": [{"name": "A", "arrival_us": 0, "input_tokens": 2100, "prefix": "doc"},
               {"name": "B", "arrival_us": 50000, "input_tokens": 2200, "prefix": "doc"}],
  "expect": [{"variant": "pre-fix", "verdict": "complete"}]
})";
}  // namespace

TEST_CASE("without a sidecar the host match is the plain KV prefix") {
  const Scenario s = parse_scenario(kNoSidecar, "no-sidecar");
  const RunResult r = run(s, "pre-fix");
  REQUIRE_FALSE(r.verdict.hang());
  for (const auto& e : r.log.events()) {
    if (e.kind == EventKind::kSchedule) CHECK(schedule_fields(e).host_hit_tokens == 2048);  // A after its prefetch, B from the host tree
    if (e.kind == EventKind::kRegister) CHECK(e.request == 0);  // B needs no prefetch of its own
  }
}

TEST_CASE("a request larger than the prefill budget is still admitted alone") {
  Scenario s = parse_scenario(kNoSidecar, "no-sidecar");
  s.policy.max_prefill_tokens = 1024;  // both requests extend by more than this
  s.workload[1].pages.clear();
  s.workload[1].input_tokens = 5000;
  const RunResult r = run(s, "pre-fix");
  CHECK_FALSE(r.verdict.hang());
}

TEST_CASE("S6 with the unconditional all-reduce: leaked host slots grow with simulated time") {
  Scenario s = load_scenario_file("scenarios/writing-check-skew.json");
  const RunResult r = run(s, "pre-fix+synced-ack-checks");
  REQUIRE_FALSE(r.verdict.hang());
  REQUIRE(r.leaks_over_time.size() >= 3);
  for (std::size_t i = 1; i < r.leaks_over_time.size(); ++i) {
    CHECK(r.leaks_over_time[i].at_ns > r.leaks_over_time[i - 1].at_ns);
    CHECK(r.leaks_over_time[i].leaked_slots > r.leaks_over_time[i - 1].leaked_slots);
  }
  // With reserve/commit every rank backs up the same requests: nothing is left undrained.
  CHECK(run(s, "pre-fix+write-reserve-commit").leaks_over_time.empty());
}

TEST_CASE("write-through backs every drained write up to L3, on the backup thread") {
  const Scenario s = load_scenario_file("scenarios/writing-check-skew.json");
  const RunResult r = run(s, "all-fixes");
  REQUIRE_FALSE(r.verdict.hang());
  int acked = 0, backed_up = 0;
  for (const auto& e : r.log.events()) {
    if (e.kind == EventKind::kWriteAcked) ++acked;
    if (e.kind != EventKind::kBackupDone) continue;
    ++backed_up;
    CHECK(e.actor == ActorKind::kBackup);
    CHECK(backup_done_fields(e).pages_written == backup_done_fields(e).pages);  // every page written
  }
  CHECK(acked > 0);
  CHECK(backed_up == acked);
}

namespace {
// R is aborted while its hit query is in flight; the hit then falls below the threshold and R's
// operation is revoked by the prefetch thread.
const char* const kAbortBeforeRevoke = R"({
  "name": "abort-before-revoke", "description": "abort, then revoke", "tp": 2,
  "policy": {"name": "timeout", "page_size": 64, "sidecar": true},
  "storage": {"kv_page_bytes": 1531250, "sidecar_bytes": 1000000},
  "l3": [{"prefix": "doc", "kv_pages": 2, "sidecar_at_pages": [2]}],
  "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 2100, "prefix": "doc", "abort_us": 10000},
               {"name": "N", "arrival_us": 100000, "input_tokens": 600}],
  "delays": [{"op": "hit_query", "requests": ["R"], "fixed_us": 50000}],
  "expect": [{"variant": "all-fixes", "verdict": "complete", "violations": [], "outcomes": {"R": {"ended": "aborted"}}}]
})";
}  // namespace

TEST_CASE("a sidecar slot left to the IO thread by an abort is freed when the operation is revoked instead") {
  const Scenario s = parse_scenario(kAbortBeforeRevoke, "abort-before-revoke");
  for (const Expectation& e : s.expect) {
    const ExpectationCheck c = check_expectation(s, e);
    INFO(c.expected << "; got " << c.result.verdict.headline);
    CHECK(c.met);
  }
}

TEST_CASE("a complete run stops one quiescence window after its last schedule when nothing is in flight") {
  for (const char* path : {"scenarios/himamba-sidecar-lag.json", "scenarios/registration-divergence.json"}) {
    const Scenario s = load_scenario_file(path);
    const RunResult r = run(s, "all-fixes");
    INFO(path);
    REQUIRE_FALSE(r.verdict.hang());
    CHECK(r.end_ns <= r.verdict.at_ns + s.world.bounds.quiesce_ns + s.policy.scheduler_pass_ns);
  }
}

TEST_CASE("sleep_on_idle: an idle group sleeps until the next request, and every request is still served") {
  Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  s.delays.clear();
  s.perturbations = {};
  RequestSpec later = s.workload[0];
  later.id = 1;
  later.name = std::string(1, 'S');
  later.arrival_ns = 3'000'000'000;  // three idle seconds after R
  s.workload.push_back(later);
  const RunResult passing = run(s, "seed-fix");
  s.policy.sleep_on_idle = true;
  const RunResult sleeping = run(s, "seed-fix");
  for (const RunResult* r : {&passing, &sleeping}) {
    REQUIRE_FALSE(r->verdict.hang());
    for (RequestId q : {0, 1}) {
      const TraceEvent* sched = nullptr;
      for (const TraceEvent& e : r->log.events()) {
        if (e.kind == EventKind::kSchedule && e.rank == 0 && e.request == q) sched = &e;
      }
      REQUIRE(sched);
      CHECK(sched->time_ns - s.workload[static_cast<std::size_t>(q)].arrival_ns < 20'000'000);
    }
  }
  // Three thousand idle passes of two ranks are gone.
  CHECK(sleeping.kernel_events * 10 < passing.kernel_events);
}

namespace {
// Write-through fills a 64-page host pool with A, B and C (32 pages each); A comes back later. The
// device holds 64 / hicache_ratio of the most recent pages, which the host may not evict.
const char* const kHostEviction = R"({
  "name": "host-eviction", "description": "LRU host eviction brings a prefix back from L3", "tp": 2,
  "policy": {"name": "wait_complete", "page_size": 64, "sidecar": false, "write_through": true, "hicache_ratio": 4},
  "ranks": {"defaults": {"host_kv_pages": 64}},
  "storage": {"kv_page_bytes": 100000},
  "requests": [{"name": "A", "arrival_us": 0, "input_tokens": 2048, "prefix": "a"},
               {"name": "B", "arrival_us": 50000, "input_tokens": 2048, "prefix": "b"},
               {"name": "C", "arrival_us": 100000, "input_tokens": 2048, "prefix": "c"},
               {"name": "A2", "arrival_us": 200000, "input_tokens": 2100, "prefix": "a"}],
  "expect": [{"variant": "pre-fix", "verdict": "complete"}]
})";

std::int64_t count_events(const RunResult& r, EventKind kind, int rank) {
  return std::count_if(r.log.events().begin(), r.log.events().end(), [&](const TraceEvent& e) { return e.kind == kind && e.rank == rank; });
}
}  // namespace

TEST_CASE("a full host cache evicts its least recently used pages, and an evicted prefix comes back from L3") {
  Scenario s = parse_scenario(kHostEviction, "host-eviction");
  s.policy.family = GENERATE(ModelFamily::kDense, ModelFamily::kHybridMamba);  // with a sidecar, write-through backs the Mamba state up too
  INFO("sidecar " << s.policy.sidecar());
  const RunResult r = run(s, "pre-fix");
  REQUIRE(r.verdict.kind == HangKind::kNone);
  for (const auto& inv : r.invariants) CHECK(inv.held);
  for (int rank = 0; rank < 2; ++rank) {
    INFO("rank " << rank);
    CHECK(r.ranks[static_cast<std::size_t>(rank)].slot_violations == 0);
    // C's backup evicts A's 32 pages; A2's prefetch evicts B's.
    CHECK(count_events(r, EventKind::kHostEvict, rank) == 2);
    const TraceEvent* a2 = last_event(r, EventKind::kSchedule, rank);
    REQUIRE(a2);
    CHECK(a2->request == 3);
    CHECK(schedule_fields(*a2).storage_hit_tokens == 2048);  // all 32 pages from L3
    if (s.policy.sidecar()) CHECK(commit_fields(*last_event(r, EventKind::kCommit, rank)).sidecar_attached == 1);  // with A's Mamba state
  }

  // When the device holds the whole pool, nothing may be evicted: C's backup fails, and A2 finds
  // A still on host.
  s.policy.hicache_ratio = 1.0;
  const RunResult held = run(s, "pre-fix");
  REQUIRE(held.verdict.kind == HangKind::kNone);
  CHECK(count_events(held, EventKind::kHostEvict, 0) == 0);
  const TraceEvent* backup = last_event(held, EventKind::kWriteBackup, 0);
  REQUIRE(backup);
  CHECK(backup->request == 2);
  CHECK(write_backup_fields(*backup).committed == 0);
  const TraceEvent* a2 = last_event(held, EventKind::kSchedule, 0);
  CHECK(schedule_fields(*a2).storage_hit_tokens == 0);  // nothing from L3
  CHECK(schedule_fields(*a2).host_hit_tokens == 2048);
}
