// A table of bad inputs, one of each way a file can be wrong, through every reader hcsim has
// (scenario, grid, workload, Mooncake trace, recorded trace, sweep results, the files themselves,
// --limit). Each
// must be refused with a message that starts with the file and the place (JSON pointer or line)
// and says what was expected; limits say how to raise them. Huge claims fail before the memory.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/variant.h"
#include "run/limits.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "tools/sweep_grid.h"
#include "run/trace_file.h"
#include "run/workload.h"
#include "tools/sweep.h"

namespace {

using namespace hcsim;
using nlohmann::json;

json scenario() {
  return json::parse(R"({
    "name": "table", "description": "a valid scenario the table breaks one field of", "tp": 2,
    "policy": {"name": "wait_complete", "page_size": 64, "sidecar": true},
    "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 2048, "prefix": "doc"}],
    "l3": [{"prefix": "doc", "kv_pages": 32, "sidecar_at_pages": [32]}],
    "expect": [{"variant": "seed-fix", "verdict": "complete"}]})");
}

// Sets `pointer` in the valid scenario to `value` (null erases it).
std::string scenario_with(const std::string& pointer, const json& value) {
  json s = scenario();
  if (value.is_null()) {
    const json::json_pointer p(pointer);
    s[p.parent_pointer()].erase(p.back());
  } else {
    s[json::json_pointer(pointer)] = value;
  }
  return s.dump();
}

std::string mooncake_line(double timestamp, std::int64_t input_length) {
  json ids = json::array();
  for (std::int64_t i = 0; i < (input_length + 511) / 512; ++i) ids.push_back(i);
  std::string line = json{{"timestamp", timestamp}, {"input_length", input_length}, {"output_length", 1}, {"hash_ids", ids}}.dump();
  line.push_back('\n');
  return line;
}

struct BadInput {
  std::string what;                     // the row, for the report
  std::function<void()> read;           // must throw ScenarioError or TraceError
  std::string starts;                   // the file and the place
  std::vector<std::string> says;        // fragments the message must hold
};

std::string message_of(const BadInput& row) {
  try {
    row.read();
  } catch (const ScenarioError& e) {
    return e.what();
  } catch (const TraceError& e) {
    return e.what();
  }
  return "(accepted)";
}

void parse(const std::string& text) { (void)parse_scenario(text, "bad.json"); }
void mooncake(const std::string& text, std::int32_t page_size = 64) {
  std::istringstream in(text);
  (void)load_mooncake_trace(in, "t.jsonl", page_size);
}
void trace(const std::string& text) {
  std::istringstream in(text);
  (void)read_checked_trace(in, "r.jsonl");
}

// A file under the temporary folder, named per process: test runs side by side do not collide.
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "-" + name)).string();
}

struct TempFile {
  std::string path;
  TempFile(const std::string& name, const std::string& text) : path(temp_path(name)) {
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

// Sweep results: PREFIX.jsonl with PREFIX.grid.json beside it (docs/sweep-format.md).
const std::string kResultsName = "hcsim-table-results";
std::string results_path() { return temp_path(kResultsName + ".jsonl"); }
std::string results_header_path() { return temp_path(kResultsName + ".grid.json"); }
json results_header() {
  return json::parse(R"({"format": "hcsim-sweep", "version": 3, "grid_digest": "0123456789abcdef", "runs": 4,
                         "seeds": {"first": 1, "count": 4}, "axes": [], "wall_time": false})");
}
json results_row() {
  return json::parse(R"({"run": 0, "seed": 1, "axes": {}, "variant": "pre-fix", "policy": "wait_complete", "tp": 2, "page_size": 64,
                         "verdict": "complete", "hang": false, "violated": [], "requests": 1, "scheduled": 1, "starved": 0,
                         "sched_p50_us": 0, "sched_p99_us": 0, "tokens_loaded": 0, "l3_lost_tokens": 0, "kv_bytes_discarded": 0,
                         "events": 10, "end_us": 5, "digest": "00000000000000ff"})");
}
// The valid row with `pointer` set to `value`.
std::string results_row_with(const std::string& pointer, const json& value) {
  json r = results_row();
  r[json::json_pointer(pointer)] = value;
  return r.dump() + "\n";
}
void results(const std::string& rows, const std::string& header = results_header().dump(2)) {
  const TempFile h(kResultsName + ".grid.json", header);
  const TempFile r(kResultsName + ".jsonl", rows);
  (void)read_sweep_rows(r.path);
}
void results_without_header(const std::string& rows) {
  const TempFile r(kResultsName + ".jsonl", rows);
  (void)read_sweep_rows(r.path);
}

// Each row's message starts with its place and holds every fragment, and prints whatever the bytes.
void check_refusals(const std::vector<BadInput>& table) {
  for (const BadInput& row : table) {
    const std::string message = message_of(row);
    INFO(row.what << ": " << message);
    CHECK_THAT(message, Catch::StartsWith(row.starts));
    for (const std::string& fragment : row.says) CHECK_THAT(message, Catch::Contains(fragment));
    // Whatever bytes the input held, the message prints.
    for (const char c : message) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
  }
}

}  // namespace

TEST_CASE("every bad scenario, grid or workload is refused with its file, its place, the expected form and the limit to raise") {
  reset_limits();
  // A scenario claiming 10^12 pages: 60,000 requests of 2^24 tokens at one token per page.
  json huge = scenario();
  huge["policy"]["page_size"] = 1;
  huge["requests"] = json::array();
  for (int i = 0; i < 60'000; ++i) huge["requests"].push_back({{"name", std::string("r").append(std::to_string(i))}, {"arrival_us", i}, {"input_tokens", 1 << 24}});
  huge["expect"] = json::array({{{"variant", "seed-fix"}, {"verdict", "hang"}}});
  const TempFile grid_scenario("hcsim-table-scenario.json", scenario().dump());

  check_refusals({
      {"not JSON", [] { parse("{\"name\": "); }, "bad.json: /: ", {"not valid JSON", "expected a scenario object", "\"tp\": 2"}},
      {"a number past double", [] { parse(R"({"name": 1e999})"); }, "bad.json: /: ", {"not valid JSON", "number overflow"}},
      {"missing key", [] { parse(scenario_with("/tp", nullptr)); }, "bad.json: /: ", {"missing required key \"tp\""}},
      {"unknown key", [] { parse(scenario_with("/policy/nmae", "x")); }, "bad.json: /policy/nmae: ", {"unknown key", "allowed here: name, timeout"}},
      {"wrong type", [] { parse(scenario_with("/tp", "2")); }, "bad.json: /tp: ", {"expected an integer in [1, 64]; got \"2\""}},
      {"out of range", [] { parse(scenario_with("/tp", 0)); }, "bad.json: /tp: ", {"expected an integer in [1, 64]; got 0"}},
      {"over the ranks limit", [] { parse(scenario_with("/tp", 100)); }, "bad.json: /tp: ", {"100 ranks", "limit ranks = 64", "--limit ranks=N"}},
      {"unknown choice", [] { parse(scenario_with("/policy/name", "wait")); }, "bad.json: /policy/name: ",
       {"expected one of best_effort, wait_complete, timeout; got \"wait\""}},
      {"bad page size", [] { parse(scenario_with("/policy/page_size", 48)); }, "bad.json: /policy/page_size: ", {"dividing 1024", "got 48"}},
      {"unknown request", [] { parse(scenario_with("/delays", json::parse(R"([{"op": "kv_get", "requests": ["Q"], "fixed_us": 5}])"))); },
       "bad.json: /delays/0/requests/0: ", {"no request named \"Q\""}},
      {"two effects", [] { parse(scenario_with("/delays", json::parse(R"([{"op": "kv_get", "fixed_us": 5, "never": true}])"))); },
       "bad.json: /delays/0: ", {"expected exactly one effect"}},
      {"bad variant", [] { parse(scenario_with("/expect/0/variant", "seed-fix+nope")); }, "bad.json: /expect/0/variant: ", {"PRESET[+FIX|~FIX]"}},
      {"10^12 pages claimed", [&] { parse(huge.dump()); }, "bad.json: /requests/3/input_tokens: ",
       {"more than 67108864 pages", "--limit pages=N"}},
      {"host pools over the pages limit",
       [] {
         json s = scenario();
         s["tp"] = 8;
         s["ranks"] = {{"defaults", {{"host_kv_pages", 1 << 24}}}};
         parse(s.dump());
       },
       "bad.json: /ranks: ", {"host pools", "--limit pages=N"}},
      {"L3 contents over the pages limit",
       [] { parse(scenario_with("/l3", json::parse(R"([{"prefix": "a", "kv_pages": 16777216}, {"prefix": "b", "kv_pages": 16777216}])"))); },
       "bad.json: /l3/1/kv_pages: ", {"L3 contents", "--limit pages=N"}},
      {"grid without axes", [&] { (void)parse_sweep_grid(json{{"scenario", grid_scenario.path}}.dump(), "g.json"); }, "g.json: /: ",
       {"missing required key \"axes\""}},
      {"grid point the scenario rejects",
       [&] {
         (void)parse_sweep_grid(json{{"scenario", grid_scenario.path}, {"axes", {{{"name", "/tp"}, {"values", {2, 0}}}}}}.dump(), "g.json");
       },
       "g.json: /axes", {"expected an integer in [1, 64]; got 0"}},
      {"grid naming a missing scenario", [] { (void)parse_sweep_grid(R"({"scenario": "no-such.json", "axes": []})", "g.json"); },
       "g.json: /scenario: ", {"does not exist"}},
      {"workload over the requests limit",
       [] { (void)parse_workload(R"({"kind": "poisson", "requests": 5000000, "rate_per_s": 1, "input_tokens": [1, 2], "prefixes": 1, "shared_prefix_tokens": 0})", "w.json"); },
       "w.json: /requests: ", {"5000000 requests", "--limit requests=N"}},
  });
}

TEST_CASE("every bad trace, results file or input file is refused with its file, its place and the expected form") {
  reset_limits();
  // A Mooncake trace past the pages limit at page size 1: the fifth line of 2^24 tokens crosses 2^26.
  std::string long_trace;
  for (int i = 0; i < 6; ++i) long_trace += mooncake_line(i, 1 << 24);
  const std::string header = json{{"format", "hcsim-trace"}, {"version", 1}}.dump();
  check_refusals({
      {"Mooncake: garbage", [] { mooncake("\x01\x02garbage\n"); }, "t.jsonl:1: /: ", {"not valid JSON", "\"hash_ids\": [7, 8]"}},
      {"Mooncake: ids and length disagree", [] { mooncake(mooncake_line(0, 1024) + R"({"timestamp": 1, "input_length": 1100, "output_length": 1, "hash_ids": [1, 2]})"); },
       "t.jsonl:2: /hash_ids: ", {"expected ceil(input_length/512) = 3 ids; got 2"}},
      {"Mooncake: a line without end", [] { mooncake(std::string(5 << 20, 'x')); }, "t.jsonl:1: /: ", {"longer than 4 MiB", "one JSON object per line"}},
      {"Mooncake: past the pages limit", [&] { mooncake(long_trace, 1); }, "t.jsonl:5: /input_length: ", {"more than 67108864 pages", "--limit pages=N"}},
      {"trace: not JSON", [] { trace("garbage\n"); }, "r.jsonl:1: ", {"not valid JSON", "hcsim run --record", "\"format\":\"hcsim-trace\""}},
      {"trace: another format", [] { trace("{\"format\": \"chrome\"}\n"); }, "r.jsonl:1: format: ", {"expected \"hcsim-trace\""}},
      {"trace: header cut off", [&] { trace(header); }, "r.jsonl:1: ", {"cut off"}},
      {"results: format 2",
       [] {
         json old = results_header();
         old["version"] = 2;
         results(old.dump() + "\n" + results_row().dump() + "\n");
       },
       results_path() + ": /: ", {"results of format 2", "this hcsim reads format 3", "re-run the sweep"}},
      {"results: a header of another version",
       [] {
         json h = results_header();
         h["version"] = 9;
         results(results_row().dump() + "\n", h.dump());
       },
       results_header_path() + ": /version: ", {"results of format 9", "re-run the sweep"}},
      {"results: rows without their header", [] { results_without_header(results_row().dump() + "\n"); }, results_path() + ": /: ",
       {"its grid header", ".grid.json is missing"}},
      {"results: not JSON", [] { results("garbage\n"); }, results_path() + ":1: /: ", {"not valid JSON", "one JSON object per line"}},
      {"results: a field of another type", [] { results(results_row_with("/hang", "yes")); }, results_path() + ":1: /hang: ",
       {"expected a boolean; got \"yes\""}},
      {"results: a digest as a number", [] { results(results_row_with("/digest", 255)); }, results_path() + ":1: /digest: ",
       {"expected a string; got an integer"}},
      {"results: an unknown field", [] { results(results_row_with("/tokens_lost", 3)); }, results_path() + ":1: /tokens_lost: ", {"unknown key"}},
      {"results: a run past the grid", [] { results(results_row_with("/run", 9)); }, results_path() + ":1: /run: ", {"expected an integer in [0, 3]; got 9"}},
      {"results: more rows than runs",
       [] {
         std::string rows;
         for (int i = 0; i < 5; ++i) rows += results_row_with("/run", i % 4);
         results(rows);
       },
       results_path() + ":5: /: ", {"more rows than the 4 runs"}},
      {"results: a line without end", [] { results(std::string(9 << 20, 'x')); }, results_path() + ":1: /: ", {"longer than 8 MiB", "one JSON object per line"}},
      {"results: a device", [] { (void)read_sweep_rows("/dev/zero"); }, "/dev/zero: /: ", {"not a regular file"}},
      {"file: missing", [] { (void)load_scenario_file("no-such-dir/x.json"); }, "no-such-dir/x.json: /: ", {"does not exist"}},
      {"file: a device", [] { (void)load_scenario_file("/dev/zero"); }, "/dev/zero: /: ", {"not a regular file"}},
      {"file: a directory", [] { (void)load_mooncake_trace("scenarios", 64); }, "scenarios: /: ", {"is a directory"}},
  });
}

TEST_CASE("--limit takes NAME=VALUE, says what is wrong, and raises what the inputs may hold") {
  reset_limits();
  CHECK_THAT(set_limit("pages"), Catch::Contains("expected NAME=VALUE"));
  CHECK_THAT(set_limit("page=10"), Catch::Contains("no limit named 'page' (the limits: pages, requests, ranks, events, memory_mib)"));
  CHECK_THAT(set_limit("pages=-1"), Catch::Contains("--limit pages: expected an integer in [1, 1099511627776]; got '-1'"));
  CHECK_THAT(set_limit("ranks=2.5"), Catch::Contains("expected an integer"));
  CHECK_THAT(set_limit("ranks=100000"), Catch::Contains("[1, 16384]"));
  CHECK_THAT(set_limit("events=0"), Catch::Contains("[1, "));
  CHECK(set_limit("memory_mib=0").empty());  // no memory limit
  CHECK(set_limit("events=1e9").empty());
  CHECK(limit_value(Limit::kEvents) == 1'000'000'000);
  CHECK(set_limit("events=9007199254740993").empty());  // past 2^53: taken as written, not through a double
  CHECK(limit_value(Limit::kEvents) == 9007199254740993);

  // Raised, a scenario over the default ranks limit parses; at the default it did not.
  CHECK(set_limit("ranks=128").empty());
  CHECK(parse_scenario(scenario_with("/tp", 100), "raised.json").world.ranks == 100);
  reset_limits();
  CHECK_THROWS_AS(parse_scenario(scenario_with("/tp", 100), "default.json"), ScenarioError);
}

TEST_CASE("a run that would go on and on ends at its event bound with a verdict that names the limit") {
  // A transfer that never completes keeps seed-fix's scheduler polling for over 100,000 events.
  const Scenario s = load_scenario_file("scenarios/never-completing-transfer.json");
  RunOptions o;
  std::string error;
  o.fixes = *parse_variant("seed-fix", &error);
  REQUIRE(simulate(s, o).kernel_events > 20'000);
  REQUIRE(set_limit("events=5000").empty());
  const RunResult r = simulate(s, o);
  reset_limits();
  CHECK(r.verdict.kind == HangKind::kStarvation);
  CHECK_THAT(r.verdict.headline, Catch::Contains("bound of 5000 events") && Catch::Contains("--limit events=N"));
  CHECK(r.kernel_events <= 5000);
}

TEST_CASE("results readers refuse a FIFO at once: nothing blocks on it") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hcsim-fifo-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "r.grid.json") << results_header().dump(2);
  REQUIRE(::mkfifo((dir / "r.jsonl").c_str(), 0600) == 0);
  REQUIRE(::mkfifo((dir / "s.csv").c_str(), 0600) == 0);
  fs::copy_file(dir / "r.grid.json", dir / "s.grid.json");
  std::ofstream(dir / "s.jsonl") << results_row().dump() << "\n";
  // The answer within 10 s, or "(blocked)": then a writer's open releases the reader stuck in open().
  auto within_10s = [&](const std::function<void()>& read, const fs::path& fifo) {
    auto answer = std::async(std::launch::async, [&] {
      try {
        read();
      } catch (const ScenarioError& e) {
        return std::string(e.what());
      }
      return std::string("(accepted)");
    });
    if (answer.wait_for(std::chrono::seconds(10)) == std::future_status::ready) return answer.get();
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    answer.wait();
    return std::string("(blocked)");
  };
  CHECK_THAT(within_10s([&] { (void)read_sweep_rows((dir / "r.jsonl").string()); }, dir / "r.jsonl"), Catch::Contains("r.jsonl: /: not a regular file"));
  CHECK_THAT(within_10s([&] { merge_sweeps({(dir / "r").string()}, (dir / "m").string()); }, dir / "r.jsonl"), Catch::Contains("r.jsonl: /: not a regular file"));
  CHECK_THAT(within_10s([&] { merge_sweeps({(dir / "s").string()}, (dir / "m").string()); }, dir / "s.csv"), Catch::Contains("s.csv: /: not a regular file"));
  fs::remove_all(dir);
}
