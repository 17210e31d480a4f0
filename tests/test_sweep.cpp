// Sweeps: a results file depends only on the grid and its seeds (not on threads or shards), a
// killed sweep resumes to the same file, merges refuse what does not add up, and bad grids are
// named by file and JSON pointer. Outputs: written whole or not at all, one writer per prefix, a
// full disk reported by file and resumable, results in format 3 (a header file beside the rows).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "tests/cat.h"
#include "run/scenario.h"
#include "tools/sweep_grid.h"
#include "tools/output_file.h"
#include "tools/plot.h"
#include "tools/progress.h"
#include "tools/sweep.h"

using namespace hcsim;
namespace fs = std::filesystem;

namespace {

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

// The temporary files an atomic write left behind in `dir` (there should be none).
std::vector<std::string> leftovers(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) names.push_back(e.path().string());
  }
  return names;
}

// While it lives, files of this process grow to `bytes` at most, as under `ulimit -f`; writes past
// it fail with EFBIG, SIGXFSZ being ignored as hcsim's main ignores it.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    previous_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = saved_;
    limited.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  void (*previous_)(int) = nullptr;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// `f` on another thread; its answer, or "(blocked)" if it has none within 10 s. A FIFO reader stuck
// in open() is then released by opening the FIFO for writing.
std::string within_10s(const std::function<std::string()>& f, const fs::path& fifo) {
  auto answer = std::async(std::launch::async, f);
  if (answer.wait_for(std::chrono::seconds(10)) == std::future_status::ready) return answer.get();
  const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
  if (fd >= 0) ::close(fd);
  answer.wait();
  return "(blocked)";
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
  // Points that differ only in their variant share one scenario: parsed once, held once.
  CHECK(g.point_of(0).scenario == g.point_of(10).scenario);
  CHECK(g.point_of(0).scenario != g.point_of(5).scenario);
  // A large grid says how far its expansion is.
  std::vector<std::int64_t> done;
  (void)parse_sweep_grid(small_grid(), "g.json", [&](std::int64_t points_done, std::int64_t points) {
    done.push_back(points_done);
    CHECK(points == 8);
  });
  CHECK(done == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8});
}

TEST_CASE("a workload axis: each point gets its workload, points that differ only in their variant share it") {
  const std::string scenario = fs::absolute("scenarios/himamba-sidecar-lag.json").string();
  const SweepGrid g = parse_sweep_grid(cat(R"({"scenario": ")", scenario, R"(",
    "axes": [{"name": "variant", "values": ["pre-fix", "seed-fix"]},
             {"name": "workload", "values": ["scenario", {"name": "poisson-20", "kind": "poisson", "requests": 20, "rate_per_s": 50,
                                                          "input_tokens": [1024, 8192], "prefixes": 4, "shared_prefix_tokens": 2048}]}]})"),
                                       "g.json");
  REQUIRE(g.points.size() == 4);
  CHECK(g.points[0].scenario == g.points[2].scenario);
  CHECK(g.points[1].scenario == g.points[3].scenario);
  CHECK(g.points[0].scenario != g.points[1].scenario);
  CHECK(g.points[1].scenario->workload.size() == 20);
  CHECK(g.points[0].scenario->workload.size() != 20);
  CHECK(g.points[3].variant == "seed-fix");
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
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "tp", "values": [1]}]})")), Catch::Contains("expected \"variant\", \"upstream\", \"workload\" or a JSON pointer"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "/tp", "values": [2]}, {"name": "/tp", "values": [4]}]})")), Catch::Contains("appears twice"));
  // An upstream axis takes dates or timeline commits, and not beside a variant axis.
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "upstream", "values": ["2026-06-04", "2027-01-01"]}]})")),
             Catch::Contains("g.json: /axes/0/values/1") && Catch::Contains("up to 2026-08-28"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "upstream", "values": ["pre-fix"]}]})")), Catch::Contains("YYYY-MM-DD"));
  CHECK_THAT(error_of(cat(head, R"("axes": [{"name": "variant", "values": ["pre-fix"]}, {"name": "upstream", "values": ["2026-06-04"]}]})")),
             Catch::Contains("give one axis"));
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
  CHECK(read_file(dir / "merged.grid.json") == read_file(dir / "one.grid.json"));
  CHECK_THAT(read_file(dir / "s2.grid.json"), Catch::Contains("\"shard\": \"2/3\""));
  CHECK_FALSE(fs::exists(dir / "one.lock"));  // the lock goes with the sweep

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
  summary_of(rows).write(table, (dir / "summary.md").string());
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
  // As a kill leaves them: the JSON Lines file ahead of the CSV, each ending in a torn row. Every
  // line of the JSON Lines file is a row; the CSV starts with its column names.
  auto cut_after_lines = [](const std::string& text, int lines, std::size_t torn_bytes) {
    std::size_t at = 0;
    for (int i = 0; i < lines; ++i) at = text.find('\n', at) + 1;
    return text.substr(0, at + torn_bytes);
  };
  fs::copy_file(dir / "full.grid.json", dir / "part.grid.json");
  std::ofstream(dir / "part.jsonl", std::ios::binary) << cut_after_lines(jsonl, 17, 25);
  std::ofstream(dir / "part.csv", std::ios::binary) << cut_after_lines(csv, 1 + 11, 7);
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

TEST_CASE("outputs are written whole or not at all; a failure throws OutputError naming the file and leaves no temporary file") {
  const fs::path dir = fresh_dir("atomic");
  const std::string path = (dir / "out.txt").string();
  write_file_atomically(path, "old\n");
  CHECK(read_file(path) == "old\n");
  {
    AtomicOutput out(path);
    out << "new, never committed " << 42 << "\n";
    CHECK(read_file(path) == "old\n");
  }
  CHECK(read_file(path) == "old\n");
  CHECK(leftovers(dir).empty());
  {
    const FileSizeLimit limit(4096);  // a write past it fails as on a full disk, half-way through
    CHECK_THROWS_WITH(write_file_atomically(path, std::string(10000, 'x')), Catch::Contains(path + ": cannot write: File too large"));
  }
  CHECK(read_file(path) == "old\n");
  CHECK(leftovers(dir).empty());
  write_file_atomically(path, "new\n");
  CHECK(read_file(path) == "new\n");

  CHECK_THROWS_AS(write_file_atomically(dir.string(), "x"), OutputError);
  CHECK_THROWS_WITH(write_file_atomically(dir.string(), "x"), Catch::Contains(dir.string() + ": cannot write: it is a folder"));
  CHECK_THROWS_WITH(write_file_atomically((dir / "no" / "such" / "x.svg").string(), "x"),
                    Catch::Contains("x.svg: cannot write: no such folder '" + (dir / "no" / "such").string() + "'"));
  CHECK_THROWS_WITH(write_file_atomically("/dev/full", "x"), Catch::Contains("/dev/full: cannot write: No space left on device"));
  {
    AtomicOutput out("/dev/full");  // a large stream: the first failure is kept, and said at commit
    for (int i = 0; i < 100'000; ++i) out << "line " << i << "\n";
    CHECK_THROWS_WITH(out.commit(), Catch::Contains("/dev/full: cannot write: No space left on device"));
  }
  CHECK(leftovers(dir).empty());

  ensure_parent_folder((dir / "a" / "b" / "c.txt").string());
  CHECK(fs::is_directory(dir / "a" / "b"));
  ensure_parent_folder("-");
  ensure_parent_folder("bare-name.txt");
  CHECK_THROWS_WITH(ensure_parent_folder((dir / "out.txt" / "x.txt").string()), Catch::Contains("x.txt: cannot create its folder"));
  fs::remove_all(dir);
}

TEST_CASE("two sweeps on one output: the second is refused naming the first, and no run is written twice") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("lock");
  const std::string pid = std::to_string(::getpid());
  {
    const OutputLock running((dir / "r").string(), "sweep");
    CHECK_THAT(read_file(dir / "r.lock"), Catch::StartsWith("pid " + pid + ", hcsim sweep, started ") && Catch::EndsWith(" UTC\n"));
    CHECK_THROWS_AS(sweep_to(g, dir / "r", 1), OutputError);
    CHECK_THROWS_WITH(sweep_to(g, dir / "r", 1), Catch::Contains((dir / "r").string() + ": in use by another hcsim (pid " + pid + ", hcsim sweep, started ") &&
                                                     Catch::Contains("): wait for it or choose another -o"));
    CHECK_FALSE(fs::exists(dir / "r.jsonl"));  // refused before a file was touched
    CHECK(output_holder((dir / "r").string()).value_or("") == read_file(dir / "r.lock").substr(0, read_file(dir / "r.lock").size() - 1));
  }
  CHECK_FALSE(fs::exists(dir / "r.lock"));
  CHECK_FALSE(output_holder((dir / "r").string()).has_value());

  // Two at once, for real: one runs every run; the other is refused, or comes after and finds them done.
  sweep_to(g, dir / "alone", 1);
  std::string errors[2];
  std::int64_t ran[2] = {0, 0};
  auto sweep = [&](int i) {
    try {
      ran[i] = sweep_to(g, dir / "r", 1).ran;
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  };
  std::thread a(sweep, 0), b(sweep, 1);
  a.join();
  b.join();
  CHECK(ran[0] + ran[1] == 40);
  for (const std::string& e : errors) CHECK((e.empty() || e.find("in use by another hcsim (pid " + pid + ", hcsim sweep") != std::string::npos));
  CHECK(read_file(dir / "r.jsonl") == read_file(dir / "alone.jsonl"));
  CHECK(read_file(dir / "r.csv") == read_file(dir / "alone.csv"));
  CHECK_FALSE(fs::exists(dir / "r.lock"));
  fs::remove_all(dir);
}

TEST_CASE("merge never writes over its inputs, nor reads a shard still being written") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("merge-inputs");
  sweep_to(g, dir / "s1", 1, 1, 2);
  sweep_to(g, dir / "s2", 1, 2, 2);
  const std::string s1 = (dir / "s1").string(), s2 = (dir / "s2").string();
  const std::string s1_rows = read_file(dir / "s1.jsonl");
  CHECK_THROWS_AS(merge_sweeps({s1, s2}, s1), OutputError);
  CHECK_THROWS_WITH(merge_sweeps({s1, s2}, s1), Catch::Contains(s1 + ": is also a shard given to merge (" + s1 + "); merging onto an input would overwrite it"));
  CHECK_THROWS_WITH(merge_sweeps({s1, s2}, (dir / "." / "sub" / ".." / "s2").string()), Catch::Contains("is also a shard given to merge (" + s2 + ")"));
  fs::create_hard_link(dir / "s1.jsonl", dir / "alias.jsonl");  // another name, the same file
  CHECK_THROWS_WITH(merge_sweeps({s1, s2}, (dir / "alias").string()), Catch::Contains("is also a shard given to merge (" + s1 + ")"));
  CHECK(read_file(dir / "s1.jsonl") == s1_rows);
  {
    const OutputLock running(s2, "sweep");
    CHECK_THROWS_WITH(merge_sweeps({s1, s2}, (dir / "m").string()), Catch::Contains(s2 + ".jsonl: /: still being written (pid ") &&
                                                                       Catch::Contains("wait for that sweep to end, then merge"));
  }
  merge_sweeps({s1, s2}, (dir / "m").string());
  CHECK(read_sweep_rows((dir / "m.jsonl").string()).rows.size() == 40);
  CHECK(read_file(dir / "s1.jsonl") == s1_rows);
  CHECK(leftovers(dir).empty());
  fs::remove_all(dir);
}

TEST_CASE("results format 3: a grid header beside rows, every line a row, digests as strings; format 2 is refused with what to do") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("format");
  sweep_to(g, dir / "r", 2);
  const nlohmann::json header = nlohmann::json::parse(read_file(dir / "r.grid.json"));
  CHECK(header["format"] == "hcsim-sweep");
  CHECK(header["version"] == 3);
  CHECK(header["grid_digest"].is_string());
  CHECK(header["runs"] == 40);
  const std::vector<std::string> rows = lines_of(read_file(dir / "r.jsonl"));
  REQUIRE(rows.size() == 40);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const nlohmann::json row = nlohmann::json::parse(rows[i]);
    CHECK(row["run"] == i);
    CHECK((row["digest"].is_string() && row["digest"].get<std::string>().size() == 16));
  }
  const std::vector<std::string> csv = lines_of(read_file(dir / "r.csv"));
  REQUIRE(csv.size() == 41);
  CHECK_THAT(csv[0], Catch::EndsWith(",digest"));
  for (std::size_t i = 1; i < csv.size(); ++i) {
    const std::string digest = nlohmann::json::parse(rows[i - 1])["digest"];
    CHECK_THAT(csv[i], Catch::EndsWith(",\"" + digest + "\""));
  }
  CHECK(read_sweep_rows((dir / "r.jsonl").string()).header["grid_digest"] == header["grid_digest"]);

  // Format 2: the header on the first line of the .jsonl, no .grid.json.
  nlohmann::json old_header = header;
  old_header["version"] = 2;
  old_header.erase("wall_time");
  std::ofstream(dir / "old.jsonl", std::ios::binary) << old_header.dump() << "\n" << rows[0] << "\n";
  std::ofstream(dir / "old.csv", std::ios::binary) << csv[0] << "\n";
  const std::string old_rows = read_file(dir / "old.jsonl");
  const std::string old_path = (dir / "old.jsonl").string();
  CHECK_THROWS_AS(read_sweep_rows(old_path), ScenarioError);
  CHECK_THROWS_WITH(read_sweep_rows(old_path), Catch::Contains(old_path + ": /: hcsim sweep results of format 2") &&
                                                   Catch::Contains("this hcsim reads format 3") && Catch::Contains("re-run the sweep"));
  CHECK_THROWS_WITH(sweep_to(g, dir / "old", 1), Catch::Contains("results of format 2"));
  CHECK(read_file(dir / "old.jsonl") == old_rows);  // not cut, not appended to
  // A header of another version; rows without their header.
  nlohmann::json v4 = header;
  v4["version"] = 4;
  std::ofstream(dir / "v4.grid.json", std::ios::binary) << v4.dump(2) << "\n";
  fs::copy_file(dir / "r.jsonl", dir / "v4.jsonl");
  CHECK_THROWS_WITH(read_sweep_rows((dir / "v4.jsonl").string()), Catch::Contains("v4.grid.json: /version: hcsim sweep results of format 4"));
  fs::copy_file(dir / "r.jsonl", dir / "lone.jsonl");
  CHECK_THROWS_WITH(read_sweep_rows((dir / "lone.jsonl").string()), Catch::Contains("lone.jsonl: /: its grid header") && Catch::Contains("lone.grid.json is missing"));
  CHECK_THROWS_WITH(sweep_to(g, dir / "lone", 1), Catch::Contains("lone.jsonl: /: holds rows, but") && Catch::Contains("is missing"));
  fs::remove_all(dir);
}

TEST_CASE("a sweep refuses a FIFO or a device where its files go, at once") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("fifo");
  REQUIRE(::mkfifo((dir / "f.jsonl").c_str(), 0600) == 0);
  const std::string answer = within_10s(
      [&] {
        try {
          sweep_to(g, dir / "f", 1);
        } catch (const ScenarioError& e) {
          return std::string(e.what());
        }
        return std::string("(accepted)");
      },
      dir / "f.jsonl");
  CHECK_THAT(answer, Catch::Contains("f.jsonl: /: not a regular file"));
  fs::remove_all(dir);
}

TEST_CASE("a full disk mid-sweep ends in an OutputError naming the file; the files keep whole rows and the sweep resumes") {
  const SweepGrid g = parse_sweep_grid(small_grid(), "g.json");
  const fs::path dir = fresh_dir("full-disk");
  sweep_to(g, dir / "whole", 2);
  {
    const FileSizeLimit limit(8192);  // the rows take about 20 KiB
    CHECK_THROWS_AS(sweep_to(g, dir / "r", 2), OutputError);
  }
  // Whole rows only, as a kill would leave them at worst: every line ends and parses.
  const std::string rows = read_file(dir / "r.jsonl");
  CHECK(rows.size() <= 8192);
  CHECK((rows.empty() || rows.back() == '\n'));
  for (const std::string& line : lines_of(rows)) CHECK(nlohmann::json::parse(line).contains("run"));
  CHECK_FALSE(fs::exists(dir / "r.lock"));
  {
    const FileSizeLimit limit(8192);
    CHECK_THROWS_WITH(sweep_to(g, dir / "r", 2), Catch::Contains("r.jsonl: cannot write: File too large") &&
                                                     Catch::Contains("the file keeps its whole rows and the same command resumes"));
  }
  sweep_to(g, dir / "r", 2);
  CHECK(read_file(dir / "r.jsonl") == read_file(dir / "whole.jsonl"));
  CHECK(read_file(dir / "r.csv") == read_file(dir / "whole.csv"));
  fs::remove_all(dir);
}

TEST_CASE("progress: nothing for work done within a second; then the rate of the recent work, not counting what was done before") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  auto contents = [&] {
    std::fflush(f);
    std::rewind(f);
    std::string text;
    for (int c; (c = std::fgetc(f)) != EOF;) text.push_back(static_cast<char>(c));
    return text;
  };
  {
    Progress quick(f, 100, "runs", "quick");
    quick.update(100);
    quick.finish();
  }
  CHECK(contents().empty());
  {
    Progress p(f, 100, "runs", "test", 20);
    CHECK(p.rate_per_s() == 0.0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    p.update(60);
    const double rate = p.rate_per_s();  // 40 runs in a little over 1.1 s
    CHECK(rate > 5.0);
    CHECK(rate < 40.0);
    p.finish();
    p.finish();  // once
  }
  const std::string text = contents();
  CHECK_THAT(text, Catch::StartsWith("test: 60/100 runs in 1.") && Catch::Contains(" runs/s)\n"));
  CHECK(lines_of(text).size() == 1);
  std::fclose(f);
}
