// The Chrome Trace Event export: required fields per phase, async slices that pair up, flows that
// pair up, and no two complete slices overlapping on one track.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "sim/scenario.h"
#include "sim/simulation.h"
#include "sim/trace_file.h"
#include "tools/chrome_trace.h"

using namespace hcsim;
using nlohmann::json;

namespace {

TraceRead recorded(const std::string& path, const char* variant) {
  const Scenario s = load_scenario_file(path);
  RunOptions o;
  o.fixes = *parse_variant(variant, nullptr);
  const RunResult r = simulate(s, o);
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const TraceHeader h = trace_header_of(text, s, r, variant);
  const std::string out = (std::filesystem::temp_directory_path() / "hcsim-test-chrome.jsonl").string();
  std::ofstream f(out, std::ios::binary);
  write_trace(f, h, r.log);
  f.close();
  return read_trace(out);
}

void validate(const json& doc) {
  REQUIRE(doc.is_object());
  REQUIRE(doc.contains("traceEvents"));
  const json& events = doc.at("traceEvents");
  REQUIRE(events.is_array());
  REQUIRE(events.size() > 10);
  std::map<std::pair<std::string, std::int64_t>, int> open_async;  // (cat, id) -> open slices
  std::set<std::int64_t> flow_starts;
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> complete;  // (pid, tid) -> [ts, end)
  std::set<std::pair<int, int>> named_threads;
  for (const json& e : events) {
    REQUIRE(e.contains("ph"));
    REQUIRE(e.contains("pid"));
    REQUIRE(e.contains("tid"));
    REQUIRE(e.contains("name"));
    const std::string ph = e.at("ph");
    const std::pair<int, int> track{e.at("pid").get<int>(), e.at("tid").get<int>()};
    if (ph == "M") {
      if (e.at("name") == "thread_name") named_threads.insert(track);
      REQUIRE(e.at("args").contains("name"));
      continue;
    }
    REQUIRE(e.contains("ts"));
    REQUIRE(e.at("ts").get<double>() >= 0.0);
    CHECK(named_threads.count(track) == 1);  // every track is named
    if (ph == "X") {
      REQUIRE(e.contains("dur"));
      const double ts = e.at("ts").get<double>();
      complete[track].push_back({ts, ts + e.at("dur").get<double>()});
    } else if (ph == "b") {
      REQUIRE(e.contains("id"));
      REQUIRE(e.contains("cat"));
      ++open_async[{e.at("cat").get<std::string>(), e.at("id").get<std::int64_t>()}];
    } else if (ph == "e") {
      auto key = std::make_pair(e.at("cat").get<std::string>(), e.at("id").get<std::int64_t>());
      REQUIRE(open_async[key] == 1);  // ends what began, once
      --open_async[key];
    } else if (ph == "i") {
      REQUIRE(e.contains("s"));
      REQUIRE(e.contains("args"));
    } else if (ph == "C") {
      REQUIRE(e.at("args").is_object());
      REQUIRE_FALSE(e.at("args").empty());
    } else if (ph == "s") {
      flow_starts.insert(e.at("id").get<std::int64_t>());
    } else if (ph == "f") {
      CHECK(flow_starts.count(e.at("id").get<std::int64_t>()) == 1);  // a flow ends where one began
    } else {
      FAIL("unexpected phase " << ph);
    }
  }
  for (const auto& [key, n] : open_async) CHECK(n == 0);
  for (auto& [track, slices] : complete) {
    std::sort(slices.begin(), slices.end());
    for (std::size_t i = 1; i < slices.size(); ++i) {
      INFO("pid " << track.first << " tid " << track.second);
      CHECK(slices[i].first >= slices[i - 1].second);  // no two complete slices overlap on a track
    }
  }
}

}  // namespace

TEST_CASE("the Chrome export is well-formed Trace Event JSON for hangs, completions and several IO workers") {
  const std::pair<const char*, const char*> runs[] = {
      {"scenarios/himamba-sidecar-lag-tp4.json", "pre-fix"},
      {"scenarios/himamba-sidecar-lag.json", "seed-fix"},
      {"scenarios/io-head-of-line.json", "pre-fix+io-worker-pool"},
      {"scenarios/writing-check-skew.json", "all-fixes"},
      {"scenarios/abort-during-sidecar-read.json", "seed-fix"},
  };
  for (const auto& [path, variant] : runs) {
    INFO(path << " " << variant);
    const TraceRead t = recorded(path, variant);
    const json doc = chrome_trace(t, load_scenario_file(path));
    validate(doc);
    // Round trip through text, as a viewer reads it.
    validate(json::parse(doc.dump()));
  }
}
