// Sweeps: a results file depends only on the grid and its seeds (not on threads or shards), a
// killed sweep resumes to the same file, merges refuse what does not add up, and bad grids are
// named by file and JSON pointer.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "sim/scenario.h"
#include "sim/sweep_grid.h"
#include "tools/plot.h"
#include "tools/sweep.h"

using namespace hcsim;
namespace fs = std::filesystem;

namespace {

// Concatenation through a stream: GCC 12 warns falsely (-Wrestrict) on some chains of operator+.
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / cat("hcsim-test-sweep-", ::getpid(), "-", name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A small grid over the seed scenario: 2 policies x 2 variants x 2 delays x 5 seeds = 40 runs.
std::string small_grid() {
  const std::string scenario = fs::absolute("scenarios/himamba-sidecar-lag.json").string();
  return cat(R"({"scenario": ")", scenario, R"(", "seeds": {"first": 3, "count": 5},
    "axes": [{"name": "/policy/name", "values": ["wait_complete", "timeout"]},
             {"name": "variant", "values": ["pre-fix", "seed-fix"]},
             {"name": "/delays/0/fixed_us", "values": [0, 488000]}]})");
}

SweepStats sweep_to(const SweepGrid& g, const fs::path& prefix, int jobs, int shard = 1, int shards = 1) {
  SweepConfig c;
  c.grid = &g;
  c.out_prefix = prefix.string();
  c.jobs = jobs;
  c.shard = shard;
  c.shards = shards;
  return run_sweep(c);
}

std::string error_of(const std::string& grid_text) {
  try {
    (void)parse_sweep_grid(grid_text, "g.json");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a grid runs point by point, seed by seed, and each point is the scenario with its values") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  REQUIRE(g.points.size() == 8);
  REQUIRE(g.runs() == 40);
  CHECK(g.seed_of(0) == 3);
  CHECK(g.seed_of(4) == 7);
  CHECK(g.seed_of(5) == 3);
  // The last axis varies fastest: run 5 is the second point (delay 488 ms), run 10 the third.
  CHECK(g.point_of(5).scenario->delays[0].a_ns == 488'000'000);
  CHECK(g.point_of(0).scenario->delays[0].a_ns == 0);
  CHECK(g.point_of(10).variant == "seed-fix");
  CHECK(g.point_of(20).scenario->policy.policy == PrefetchPolicy::kTimeout);
  CHECK(in_shard(6, 3, 4));
  CHECK_FALSE(in_shard(6, 2, 4));
}

TEST_CASE("a bad grid is named by file and pointer, a value the scenario rejects with the scenario's reason") {
  const std::string scenario = fs::absolute("scenarios/himamba-sidecar-lag.json").string();
  const std::string head = cat(R"({"scenario": ")", scenario, R"(", )");
  CHECK_THAT(error_of(cat(head, R"("axes": [], "sede": 1})")), Catch::Contains("g.json: /sede: unknown key"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "/tp", "values": [2, 0]}]})")),
             Catch::Contains("g.json: /axes/0/values/1: the scenario rejects the point (/tp = 0)") && Catch::Contains("/tp"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "variant", "values": ["pre-fix+no-such-fix"]}]})")),
             Catch::Contains("g.json: /axes/0/values/0") && Catch::Contains("no-such-fix"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "/nowhere/x", "values": [1]}]})")), Catch::Contains("/axes/0/name: the scenario has nothing at /nowhere"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "tp", "values": [1]}]})")), Catch::Contains("expected \"variant\", \"workload\" or a JSON pointer"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "/tp", "values": [2]}, {"name": "/tp", "values": [4]}]})")), Catch::Contains("appears twice"));
  CHECK_THAT(error_of(R"({"scenario": "no/such.json", "axes": []})"), Catch::Contains("no/such.json: /: cannot open"));
}

TEST_CASE("the results files depend on the grid and seeds only: not on threads, not on shards") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("determinism");
  CHECK(sweep_to(g, dir / "one", 1).ran == 40);
  CHECK(sweep_to(g, dir / "two", 2).ran == 40);
  CHECK(read_file(dir / "one.jsonl") == read_file(dir / "two.jsonl"));
  CHECK(read_file(dir / "one.csv") == read_file(dir / "two.csv"));

  for (int k = 1; k <= 3; ++k) CHECK(sweep_to(g, dir / cat("s", k), 2, k, 3).shard_runs == (k == 1 ? 14 : 13));
  merge_sweeps({(dir / "s3").string(), (dir / "s1").string(), (dir / "s2").string()}, (dir / "merged").string());
  CHECK(read_file(dir / "merged.jsonl") == read_file(dir / "one.jsonl"));
  CHECK(read_file(dir / "merged.csv") == read_file(dir / "one.csv"));

  // The rows say what happened: the seed bug hangs under pre-fix at 488 ms, not under seed-fix.
  const SweepRows rows = read_sweep_rows((dir / "one.jsonl").string());
  REQUIRE(rows.rows.size() == 40);
  int prefix_hangs = 0, seedfix_hangs = 0;
  for (const auto& r : rows.rows) {
    if (r["axes"]["/delays/0/fixed_us"] != 488000 || r["policy"] != "wait_complete") continue;
    (r["variant"] == "pre-fix" ? prefix_hangs : seedfix_hangs) += r["hang"].get<bool>() ? 1 : 0;
  }
  CHECK(prefix_hangs == 5);
  CHECK(seedfix_hangs == 0);
  std::ostringstream table;
  write_summary(rows, table, (dir / "summary.md").string());
  CHECK_THAT(table.str(), Catch::Contains("## wait_complete / pre-fix") && Catch::Contains("| /delays/0/fixed_us = 488000 | 5 | 5 | 100.0% |"));
  fs::remove_all(dir);
}

TEST_CASE("merge refuses a run in two shards, runs in none, and shards of another grid") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("merge");
  sweep_to(g, dir / "s1", 1, 1, 2);
  sweep_to(g, dir / "s2", 1, 2, 2);
  CHECK_THROWS_WITH(merge_sweeps({(dir / "s1").string()}, (dir / "m").string()), Catch::Contains("20 of 40 runs are in no shard (the first: run 1)"));
  CHECK_THROWS_WITH(merge_sweeps({(dir / "s1").string(), (dir / "s2").string(), (dir / "s1").string()}, (dir / "m").string()),
                    Catch::Contains("run 0 is in both"));
  std::string other = small_grid();
  other.replace(other.find("\"count\": 5"), 10, "\"count\": 4");
  const SweepGrid g2 = parse_sweep_grid(other, "g2.json");
  sweep_to(g2, dir / "o2", 1, 2, 2);
  CHECK_THROWS_WITH(merge_sweeps({(dir / "s1").string(), (dir / "o2").string()}, (dir / "m").string()), Catch::Contains("a shard of another grid"));
  fs::remove_all(dir);
}

TEST_CASE("a killed sweep resumes: torn rows are cut and redone, nothing is run twice") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("resume");
  sweep_to(g, dir / "full", 2);
  const std::string jsonl = read_file(dir / "full.jsonl");
  const std::string csv = read_file(dir / "full.csv");
  // As a kill leaves them: the JSON Lines file ahead of the CSV, each ending in a torn row.
  auto cut_after_rows = [](const std::string& text, int rows, std::size_t torn_bytes) {
    std::size_t at = 0;
    for (int i = 0; i <= rows; ++i) at = text.find('\n', at) + 1;  // the header, then rows
    return text.substr(0, at + torn_bytes);
  };
  std::ofstream(dir / "part.jsonl", std::ios::binary) << cut_after_rows(jsonl, 17, 25);
  std::ofstream(dir / "part.csv", std::ios::binary) << cut_after_rows(csv, 11, 7);
  const SweepStats st = sweep_to(g, dir / "part", 2);
  CHECK(st.resumed == 11);
  CHECK(st.ran == 29);
  CHECK(read_file(dir / "part.jsonl") == jsonl);
  CHECK(read_file(dir / "part.csv") == csv);
  // A finished sweep started again runs nothing.
  CHECK(sweep_to(g, dir / "part", 2).ran == 0);
  CHECK(read_file(dir / "part.jsonl") == jsonl);
  // Files of another grid are not appended to.
  std::string other = small_grid();
  other.replace(other.find("\"first\": 3"), 10, "\"first\": 4");
  const SweepGrid g2 = parse_sweep_grid(other, "g2.json");
  CHECK_THROWS_WITH(sweep_to(g2, dir / "part", 1), Catch::Contains("holds the results of another grid"));
  fs::remove_all(dir);
}

TEST_CASE("plots: a heatmap cell per pair of values with its rate and runs; unknown fields are named") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("plot");
  sweep_to(g, dir / "r", 2);
  const SweepRows rows = read_sweep_rows((dir / "r.jsonl").string());
  const std::string heat = hang_heatmap_svg(rows, "/delays/0/fixed_us", "variant", {{"policy", "wait_complete"}});
  CHECK_THAT(heat, Catch::StartsWith("<svg") && Catch::Contains("20 runs"));
  CHECK_THAT(heat, Catch::Contains("<title>488000, pre-fix: 5 of 5 hang</title>") && Catch::Contains("<title>488000, seed-fix: 0 of 5 hang</title>"));
  CHECK_THAT(heat, Catch::Contains(">100.0%<") && Catch::Contains(">0.0%<"));
  CHECK_THROWS_WITH(hang_heatmap_svg(rows, "/tp", "variant", {}), Catch::Contains("no row has the field \"/tp\""));
  CHECK_THROWS_WITH(hang_heatmap_svg(rows, "variant", "policy", {{"policy", "best_effort"}}), Catch::Contains("no row matches"));
  const std::string trade = tradeoff_svg(rows, {});
  CHECK_THAT(trade, Catch::Contains("<title>wait_complete / pre-fix: 5 of 10 hang</title>") && Catch::Contains("<title>timeout / seed-fix: 0 of 10 hang</title>"));
  fs::remove_all(dir);
}
