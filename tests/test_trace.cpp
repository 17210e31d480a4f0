// Traces: record then replay reproduces every library scenario; a trace cut anywhere still reads
// and replays; a malformed line names the file, line and field; a fix on replay avoids the hang.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "sim/scenario.h"
#include "sim/simulation.h"
#include "sim/trace_file.h"

using namespace hcsim;

namespace {

std::string temp_path(const std::string& name) { return (std::filesystem::temp_directory_path() / ("hcsim-test-" + name)).string(); }

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Records `path` under `variant` into a trace file and returns the run.
RunResult record(const std::string& path, const char* variant, const std::string& out) {
  const Scenario s = load_scenario_file(path);
  RunOptions o;
  o.fixes = *parse_variant(variant, nullptr);
  RunResult r = simulate(s, o);
  const TraceHeader h = trace_header_of(read_all(path), s, r, variant);
  std::ofstream f(out, std::ios::binary);
  write_trace(f, h, r.log);
  return r;
}

RunResult replay(const TraceRead& t, FixSet fixes) {
  const Scenario s = parse_scenario(t.header.scenario_json, "embedded");
  const Recording rec = recording_of(t);
  RunOptions o = replay_options(t, rec);
  o.fixes = fixes;
  return simulate(s, o);
}

}  // namespace

TEST_CASE("record then replay gives the same verdict and digest for every scenario of the library") {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator("scenarios")) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    for (const char* variant : {"pre-fix", "all-fixes"}) {
      const std::string out = temp_path("roundtrip.jsonl");
      const RunResult recorded = record(path, variant, out);
      const TraceRead t = read_trace(out);
      INFO(path << " " << variant);
      REQUIRE_FALSE(t.cut_mid_line);
      REQUIRE(t.events.size() == recorded.log.events().size());
      const RunResult again = replay(t, *parse_variant(variant, nullptr));
      CHECK(again.verdict.kind == recorded.verdict.kind);
      CHECK(again.log.digest() == recorded.log.digest());
      CHECK(first_departure(t.events, again.log.events()) == t.events.size());
      CHECK(again.modelled_calls == 0);
    }
  }
}

TEST_CASE("a trace cut at any line, or mid-line, reads up to its end and replays") {
  const std::string full_path = temp_path("full.jsonl");
  record("scenarios/himamba-sidecar-lag.json", "pre-fix", full_path);
  const std::string full = read_all(full_path);
  std::vector<std::size_t> cuts;  // after each newline, and in the middle of each line
  for (std::size_t i = 0, start = 0; i < full.size(); ++i) {
    if (full[i] != '\n') continue;
    cuts.push_back((start + i) / 2);
    cuts.push_back(i + 1);
    start = i + 1;
  }
  const std::size_t header_end = full.find('\n') + 1;
  for (std::size_t cut : cuts) {
    const std::string path = temp_path("cut.jsonl");
    std::ofstream(path, std::ios::binary) << full.substr(0, cut);
    INFO("cut at byte " << cut);
    if (cut < header_end) {
      CHECK_THROWS_AS(read_trace(path), TraceError);  // nothing to replay without a header
      continue;
    }
    const TraceRead t = read_trace(path);
    CHECK(t.cut_mid_line == (full[cut - 1] != '\n'));
    const RunResult r = replay(t, *preset_by_name("pre-fix"));
    CHECK(first_departure(t.events, r.log.events()) == t.events.size());  // the same run, as far as recorded
  }
}

TEST_CASE("a malformed trace line names the file, the line and the field") {
  const std::string good = temp_path("good.jsonl");
  record("scenarios/himamba-sidecar-lag.json", "pre-fix", good);
  std::vector<std::string> lines;
  std::istringstream in(read_all(good));
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  auto error_with = [&](std::size_t line, const std::string& replacement) {
    std::vector<std::string> bad = lines;
    bad[line - 1] = replacement;
    const std::string path = temp_path("bad.jsonl");
    std::ofstream out(path, std::ios::binary);
    for (const auto& l : bad) out << l << '\n';
    out.close();
    try {
      (void)read_trace(path);
    } catch (const TraceError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string broken = error_with(5, "{\"t_ns\": 12, \"rank\"");
  CHECK(broken.find(":5: ") != std::string::npos);
  CHECK(broken.find("not valid JSON") != std::string::npos);
  const std::string typed = error_with(6, R"({"t_ns":"soon","rank":0,"actor":"io","kind":"arrive","request":0,"fields":{"input_tokens":1}})");
  CHECK(typed.find(":6: t_ns: expected an integer") != std::string::npos);
  const std::string kind = error_with(7, R"({"t_ns":1,"rank":0,"actor":"io","kind":"teleport","request":0,"fields":{}})");
  CHECK(kind.find(":7: kind: unknown kind \"teleport\"") != std::string::npos);
  const std::string fields = error_with(8, R"({"t_ns":1,"rank":0,"actor":"io","kind":"arrive","request":0,"fields":{"input_tokens":1,"x":2}})");
  CHECK(fields.find(":8: fields: expected exactly the fields of kind arrive") != std::string::npos);
  const std::string header = error_with(1, R"({"format":"something-else"})");
  CHECK(header.find(":1: format:") != std::string::npos);
}

TEST_CASE("replaying the TP=4 seed hang with pool-transfer-guard avoids it") {
  const std::string path = temp_path("qwen35.jsonl");
  const RunResult recorded = record("scenarios/himamba-sidecar-lag-tp4.json", "pre-fix", path);
  REQUIRE(recorded.verdict.hang());
  const TraceRead t = read_trace(path);
  const RunResult fixed = replay(t, *parse_variant("pre-fix+pool-transfer-guard", nullptr));
  CHECK_FALSE(fixed.verdict.hang());
  CHECK(first_departure(t.events, fixed.log.events()) < t.events.size());  // and says where it parts
}

TEST_CASE("a trace's values are checked against its scenario before they reach the model") {
  const std::string path = temp_path("checked.jsonl");
  record("scenarios/himamba-sidecar-lag.json", "pre-fix", path);
  const TraceRead good = read_trace(path);
  const Scenario s = parse_scenario(good.header.scenario_json, "embedded");
  auto error_of = [&](TraceRead t) {
    try {
      check_against(t, s.world.ranks, s.workload.size(), s.world.bounds.horizon_ns, "t.jsonl");
    } catch (const TraceError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of(good) == "no error");
  TraceRead t = good;
  t.header.arrivals[0].request = 5;
  CHECK(error_of(t).find("t.jsonl:1: arrivals[0]: no request 5") != std::string::npos);
  t = good;
  t.header.arrivals.push_back(t.header.arrivals.front());  // the scenario has one request
  CHECK(error_of(t).find("t.jsonl:1: arrivals: more entries than the scenario's 1 requests") != std::string::npos);
  t = good;
  t.events[3].rank = 9;
  CHECK(error_of(t).find("t.jsonl:5: rank:") != std::string::npos);
  auto call = std::find_if(good.events.begin(), good.events.end(), [](const TraceEvent& e) { return e.kind == EventKind::kStorageCall; });
  REQUIRE(call != good.events.end());
  const std::size_t index = static_cast<std::size_t>(call - good.events.begin());
  t = good;
  t.events[index].b = INT64_MAX;
  CHECK(error_of(t).find("fields.duration_ns") != std::string::npos);
  t = good;
  t.events[index].a = -1;
  CHECK(error_of(t).find("fields.op") != std::string::npos);
}
