// The Chrome Trace Event export: required fields per phase, async slices that pair up, flows that
// pair up, no two complete slices overlapping on one track, nothing drawn past the end of the run;
// and a hang shown as slices open to the end of the run, named by a global instant.
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "policy/variant.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "run/trace_file.h"
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

double end_of_run_us(const json& doc) { return doc.at("otherData").at("end_of_run_us").get<double>(); }

void validate(const json& doc) {
  REQUIRE(doc.is_object());
  REQUIRE(doc.contains("traceEvents"));
  const double end_us = end_of_run_us(doc) + 1e-6;  // microseconds as doubles: allow rounding
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
      REQUIRE(e.at("args").contains(e.at("name") == "process_sort_index" ? "sort_index" : "name"));
      continue;
    }
    REQUIRE(e.contains("ts"));
    REQUIRE(e.at("ts").get<double>() >= 0.0);
    CHECK(e.at("ts").get<double>() <= end_us);  // nothing past the end of the run
    CHECK(named_threads.count(track) == 1);  // every track is named
    if (ph == "X") {
      REQUIRE(e.contains("dur"));
      const double ts = e.at("ts").get<double>();
      complete[track].push_back({ts, ts + e.at("dur").get<double>()});
      CHECK(ts + e.at("dur").get<double>() <= end_us);
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
      CHECK((e.at("s") == "t" || e.at("s") == "g"));  // a track's instant, or the hang's across all
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
      {"scenarios/registration-divergence.json", "pre-fix"},
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

namespace {

std::vector<json> events_where(const json& doc, const std::function<bool(const json&)>& keep) {
  std::vector<json> out;
  for (const json& e : doc.at("traceEvents")) {
    if (keep(e)) out.push_back(e);
  }
  return out;
}

std::vector<json> hang_slices(const json& doc) {
  return events_where(doc, [](const json& e) { return e.at("ph") == "X" && e.contains("args") && e.at("args").value("hang", false); });
}

std::vector<json> global_instants(const json& doc) {
  return events_where(doc, [](const json& e) { return e.at("ph") == "i" && e.at("s") == "g"; });
}

// The rank each process_sort_index puts first.
int first_rank(const json& doc) {
  for (const json& e : doc.at("traceEvents")) {
    if (e.at("name") == "process_sort_index" && e.at("args").at("sort_index") == 0) return e.at("pid").get<int>();
  }
  return -1;
}

}  // namespace

TEST_CASE("a hung run's stuck collective is a slice open to the end of the run, named by a global instant") {
  // The committed Qwen3.5 TP=4 trace: rank 2 enters forward(2100) at seq 52, the others forward(52),
  // at 17.040 ms; the simulator watches 1 ms more (the settle window) and stops at 18.040 ms.
  const auto [trace, scenario] = read_checked_trace("traces/qwen35-tp4-wait-complete-hang.jsonl");
  const json doc = chrome_trace(trace, scenario);
  validate(doc);
  CHECK(doc.at("otherData").at("end_of_run_from") == "replay");
  CHECK(end_of_run_us(doc) == 18040.0);

  const std::vector<json> slices = hang_slices(doc);
  REQUIRE(slices.size() == 4);
  for (const json& s : slices) {
    INFO(s.dump());
    const int rank = s.at("pid").get<int>();
    const std::string op = rank == 2 ? "forward(2100)" : "forward(52)";
    CHECK(s.at("name") == "HANG tp_cpu_group seq 52 " + op);
    CHECK(s.at("tid") == static_cast<int>(ActorKind::kScheduler));
    CHECK(s.at("ts") == 17040.0);
    CHECK(s.at("ts").get<double>() + s.at("dur").get<double>() == end_of_run_us(doc));  // open to the end
    CHECK(s.at("args").at("group") == "tp_cpu_group");
    CHECK(s.at("args").at("seq") == 52);
    CHECK(s.at("args").at("op") == "forward");
    CHECK(s.at("args").at("size") == (rank == 2 ? 2100 : 52));
  }
  // The stuck forward is drawn once, as the hang: no forward slice starts with it.
  CHECK(events_where(doc, [](const json& e) { return e.at("ph") == "X" && e.at("name") == "forward" && e.at("ts") == 17040.0; }).empty());

  const std::vector<json> instants = global_instants(doc);
  REQUIRE(instants.size() == 1);
  const json& hang = instants.front();
  CHECK(hang.at("name") == "HANG collective_mismatch: tp_cpu_group seq 52");
  CHECK(hang.at("ts") == 17040.0);
  CHECK(hang.at("args").at("group") == "tp_cpu_group");
  CHECK(hang.at("args").at("seq") == 52);
  CHECK(hang.at("args").at("entered") == json::array({"rank 0 forward(52) at 17.040 ms", "rank 1 forward(52) at 17.040 ms",
                                                       "rank 2 forward(2100) at 17.040 ms", "rank 3 forward(52) at 17.040 ms"}));
  CHECK(hang.at("args").at("missing_ranks").empty());

  // The odd one out is listed first; the view's interval starts at the lagging Mamba read.
  CHECK(first_rank(doc) == 2);
  const std::vector<json> sidecar = events_where(doc, [](const json& e) {
    return e.at("ph") == "b" && e.at("name") == "sidecar_get" && e.at("pid") == 2 && e.at("args").value("cut_at_end_of_run", false);
  });
  REQUIRE(sidecar.size() == 1);
  CHECK(sidecar.front().at("args").at("due_us").get<double>() > 500'000.0);  // due ~488 ms later, drawn to 18.04 ms
  CHECK(doc.at("otherData").at("interest_us") == json::array({sidecar.front().at("ts"), 18040.0}));
}

TEST_CASE("the seed hang's timeline: the mismatched forwards open to the end, L3 calls cut there, the ranks named") {
  const TraceRead t = recorded("scenarios/himamba-sidecar-lag.json", "pre-fix");
  const json doc = chrome_trace(t, load_scenario_file("scenarios/himamba-sidecar-lag.json"));
  validate(doc);
  const double end_us = end_of_run_us(doc);
  CHECK(end_us == 16980.0);  // the verdict at 15.980 ms, and the 1 ms the simulator watched after it

  const std::vector<json> slices = hang_slices(doc);
  REQUIRE(slices.size() == 2);
  CHECK(slices[0].at("name") == "HANG tp_cpu_group seq 49 forward(52)");
  CHECK(slices[1].at("name") == "HANG tp_cpu_group seq 49 forward(2100)");
  for (const json& s : slices) CHECK(s.at("ts").get<double>() + s.at("dur").get<double>() == end_us);

  const std::vector<json> instants = global_instants(doc);
  REQUIRE(instants.size() == 1);
  CHECK(instants.front().at("args").at("entered") == json::array({"rank 0 forward(52) at 15.980 ms", "rank 1 forward(2100) at 15.980 ms"}));
  CHECK(instants.front().at("args").at("missing_ranks").empty());

  // Every L3 call in flight at the end ends there, saying when it was due; rank 1's Mamba read was
  // due at 503.560 ms.
  std::map<std::int64_t, json> begins;
  int cut = 0;
  for (const json& e : doc.at("traceEvents")) {
    if (e.at("ph") == "b") begins[e.at("id").get<std::int64_t>()] = e;
    if (e.at("ph") != "e") continue;
    const json& b = begins.at(e.at("id").get<std::int64_t>());
    const bool was_cut = b.at("args").value("cut_at_end_of_run", false);
    CHECK(was_cut == (e.at("ts").get<double>() == end_us && b.at("args").at("duration_ns").get<std::int64_t>() * 1e-3 + b.at("ts").get<double>() != end_us));
    if (!was_cut) continue;
    ++cut;
    CHECK(b.at("args").at("due_us").get<double>() > end_us);
  }
  CHECK(cut >= 1);
  CHECK_FALSE(events_where(doc, [](const json& e) {
                return e.at("ph") == "b" && e.at("name") == "sidecar_get" && e.at("pid") == 1 && e.at("args").value("due_us", 0.0) > 500000.0;
              }).empty());
}

TEST_CASE("another rank's op is named: a forward against an all_reduce, the forward's rank listed first") {
  const auto [trace, scenario] = read_checked_trace("traces/tp4-progress-check-mismatch.jsonl");
  const json doc = chrome_trace(trace, scenario);
  validate(doc);
  std::map<int, std::string> names;
  for (const json& s : hang_slices(doc)) names[s.at("pid").get<int>()] = s.at("name");
  CHECK(names == std::map<int, std::string>{{0, "HANG tp_cpu_group seq 67 forward(52)"},
                                            {1, "HANG tp_cpu_group seq 67 all_reduce(MAX)(2)"},
                                            {2, "HANG tp_cpu_group seq 67 all_reduce(MAX)(2)"},
                                            {3, "HANG tp_cpu_group seq 67 all_reduce(MAX)(2)"}});
  CHECK(first_rank(doc) == 0);
}

TEST_CASE("a hang read from the events alone (no replay reproduces it) names a rank that never entered") {
  // The seed hang as if a GPU run had recorded it (no replay is taken for one), with rank 1's entry
  // into the mismatched forward dropped: rank 1 never came.
  TraceRead t = recorded("scenarios/himamba-sidecar-lag.json", "pre-fix");
  t.header.world = "gpu";
  std::erase_if(t.events, [](const TraceEvent& e) { return e.kind == EventKind::kCollectiveEnter && e.rank == 1 && collective_enter_fields(e).sequence == 49; });
  const json doc = chrome_trace(t, load_scenario_file("scenarios/himamba-sidecar-lag.json"));
  validate(doc);
  CHECK(doc.at("otherData").at("end_of_run_from") == "trace events");
  CHECK(end_of_run_us(doc) == 15980.0);  // the last event and the verdict: the trace knows no later end

  const std::vector<json> slices = hang_slices(doc);
  REQUIRE(slices.size() == 1);
  CHECK(slices.front().at("name") == "HANG tp_cpu_group seq 49 forward(52)");  // a forward: a `forward` event of its size came first
  CHECK(slices.front().at("pid") == 0);
  CHECK(slices.front().at("dur") == 0.0);

  const std::vector<json> instants = global_instants(doc);
  REQUIRE(instants.size() == 1);
  CHECK(instants.front().at("args").at("from") == "trace events");
  CHECK(instants.front().at("args").at("entered") == json::array({"rank 0 forward(52) at 15.980 ms"}));
  CHECK(instants.front().at("args").at("missing_ranks") == json::array({1}));
  CHECK(first_rank(doc) == 1);
  CHECK_FALSE(events_where(doc, [](const json& e) {
                return e.at("name") == "process_name" && e.at("args").at("name") == "rank 1: never entered tp_cpu_group seq 49";
              }).empty());
}

TEST_CASE("a completed run has no hang slice and no hang instant, and nothing past its end") {
  const TraceRead t = recorded("scenarios/himamba-sidecar-lag.json", "seed-fix");
  REQUIRE(t.header.verdict == "none");
  const json doc = chrome_trace(t, load_scenario_file("scenarios/himamba-sidecar-lag.json"));
  validate(doc);
  CHECK(hang_slices(doc).empty());
  CHECK(global_instants(doc).empty());
  CHECK(events_where(doc, [](const json& e) { return e.at("name").get<std::string>().rfind("HANG", 0) == 0; }).empty());
  CHECK(end_of_run_us(doc) >= t.events.back().time_ns / 1000.0);
  CHECK(doc.at("otherData").at("interest_us") == json::array({0.0, end_of_run_us(doc)}));
  CHECK(first_rank(doc) == 0);
}
