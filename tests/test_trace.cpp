// Traces: record then replay reproduces every library scenario; a trace cut mid-line still reads
// and replays; a malformed line names the file, line and field; a fix on replay avoids the hang.
// Nothing in a file is trusted: events out of time order, an edited or deleted event, an edited
// embedded scenario, nesting 100,000 deep and repeated keys are each refused or reported by name.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "policy/fixes.h"
#include "policy/variant.h"
#include "run/json_node.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "run/trace_file.h"
#include "run/workload.h"
#include "tests/variant_options.h"

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

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_all(path));
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::string write_lines(const std::vector<std::string>& lines, const std::string& name) {
  const std::string path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  for (const auto& l : lines) out << l << '\n';
  return path;
}

// The message of the TraceError or ScenarioError that reading `path` as replay does throws.
std::string checked_error(const std::string& path) {
  try {
    (void)read_checked_trace(path);
  } catch (const TraceError& e) {
    return e.what();
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "no error";
}

std::string hex(std::uint64_t d) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(d));
  return text;
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
  for (const auto& e : std::filesystem::directory_iterator("scenarios")) {
    if (e.path().extension() == ".json") paths.push_back(e.path().string());  // not scenarios/conformance/
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    for (const char* preset : {"pre-fix", "all-fixes"}) {
      const std::string runnable = runnable_variant(load_scenario_file(path), preset);
      const char* variant = runnable.c_str();
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

TEST_CASE("a trace cut at any line, or mid-line, reads up to its end and replays; replay refuses a cut at a line boundary") {
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
    CHECK_FALSE(replay_departure(t, r.log.events()));
    // What replay reads: a cut mid-line is a killed write, a prefix the digest cannot check; whole
    // lines short of the header's count read as deleted lines.
    if (t.cut_mid_line) {
      CHECK(read_checked_trace(path).trace.events_check == EventsCheck::kCutOff);
    } else if (cut < full.size()) {
      CHECK(checked_error(path).find("whole event line(s), the header says") != std::string::npos);
    } else {
      CHECK(read_checked_trace(path).trace.events_check == EventsCheck::kHashed);
    }
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
  StorageCallFields edited = storage_call_fields(t.events[index]);
  edited.duration_ns = INT64_MAX;
  set_fields(t.events[index], edited);
  CHECK(error_of(t).find("fields.duration_ns") != std::string::npos);
  t = good;
  edited = storage_call_fields(t.events[index]);
  edited.op = -1;
  set_fields(t.events[index], edited);
  CHECK(error_of(t).find("fields.op") != std::string::npos);
}

TEST_CASE("events out of time order are refused, naming the line and both times") {
  const std::string good = temp_path("ordered.jsonl");
  record("scenarios/himamba-sidecar-lag.json", "pre-fix", good);
  std::vector<std::string> lines = lines_of(good);
  const auto t_ns = [&](std::size_t i) { return nlohmann::json::parse(lines[i]).at("t_ns").get<std::int64_t>(); };
  std::size_t i = 1;  // the first event line whose next is later
  while (i + 1 < lines.size() && t_ns(i) == t_ns(i + 1)) ++i;
  REQUIRE(i + 1 < lines.size());
  const std::int64_t earlier = t_ns(i), later = t_ns(i + 1);
  std::swap(lines[i], lines[i + 1]);  // file lines i + 1 and i + 2
  const std::string path = write_lines(lines, "swapped.jsonl");
  const std::string what = checked_error(path);
  INFO(what);
  CHECK(what.find(path + ":" + std::to_string(i + 2) + ": t_ns: " + std::to_string(earlier) + " is earlier than line " + std::to_string(i + 1) +
                  "'s " + std::to_string(later)) != std::string::npos);
  CHECK(what.find("the file was edited or is damaged") != std::string::npos);
  CHECK_THROWS_AS(read_trace(path), TraceError);  // the reader itself refuses it
}

TEST_CASE("an edited trace is refused: a deleted event line by the count, an edited field by the hash") {
  const std::string good = temp_path("hashed.jsonl");
  const RunResult recorded = record("scenarios/himamba-sidecar-lag.json", "pre-fix", good);
  const TraceRead whole = read_checked_trace(good).trace;
  CHECK(whole.events_check == EventsCheck::kHashed);
  CHECK(events_digest(whole.events) == recorded.log.digest());  // the reader recomputes the log's digest
  const std::vector<std::string> lines = lines_of(good);
  const std::size_t events = lines.size() - 1;

  std::vector<std::string> deleted = lines;
  deleted.erase(deleted.begin() + static_cast<std::ptrdiff_t>(events / 2));
  const std::string what_deleted = checked_error(write_lines(deleted, "deleted.jsonl"));
  INFO(what_deleted);
  CHECK(what_deleted.find("holds " + std::to_string(events - 1) + " whole event line(s), the header says " + std::to_string(events)) != std::string::npos);
  CHECK(what_deleted.find("the file was edited or is damaged") != std::string::npos);

  // A storage call one nanosecond slower: every line is valid, in order and within the scenario.
  std::vector<std::string> edited = lines;
  std::size_t call = 1;
  while (call < edited.size() && edited[call].find("\"storage_call\"") == std::string::npos) ++call;
  REQUIRE(call < edited.size());
  nlohmann::json e = nlohmann::json::parse(edited[call]);
  e["fields"]["duration_ns"] = e["fields"]["duration_ns"].get<std::int64_t>() + 1;
  edited[call] = e.dump();
  const std::string edited_path = write_lines(edited, "edited.jsonl");
  REQUIRE_NOTHROW(read_trace(edited_path));  // each line alone is fine
  const std::string what_edited = checked_error(edited_path);
  INFO(what_edited);
  CHECK(what_edited.find(edited_path + ": the events hash to ") != std::string::npos);
  CHECK(what_edited.find(", the header says " + hex(recorded.log.digest()) + ": the file was edited or is damaged") != std::string::npos);

  // A cut-off file stays readable: the digest covers events it lacks.
  std::vector<std::string> cut(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(events / 2));
  std::string text;
  for (const auto& l : cut) text += l + "\n";
  text += lines[events / 2].substr(0, 10);
  const std::string cut_path = temp_path("cut-mid.jsonl");
  std::ofstream(cut_path, std::ios::binary) << text;
  CHECK(read_checked_trace(cut_path).trace.events_check == EventsCheck::kCutOff);
}

TEST_CASE("a log that kept only its first events is written with their count and digest, and checked by them") {
  const Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  const RunResult r = simulate(s, RunOptions{});
  EventLog kept(10);  // keeps its first 10 events, digests them all
  for (const TraceEvent& e : r.log.events()) kept.append(e);
  REQUIRE(kept.truncated());
  const TraceHeader h = trace_header_of(read_all("scenarios/himamba-sidecar-lag.json"), s, r, "seed-fix");
  const std::string path = temp_path("kept.jsonl");
  {
    std::ofstream f(path, std::ios::binary);
    write_trace(f, h, kept);
  }
  const TraceRead t = read_checked_trace(path).trace;
  CHECK(t.events.size() == 10);
  CHECK(t.header.events == r.log.count());
  CHECK(t.header.file_events == 10u);
  CHECK(t.events_check == EventsCheck::kHashed);
  std::vector<std::string> lines = lines_of(path);
  lines.erase(lines.begin() + 3);
  CHECK(checked_error(write_lines(lines, "kept-deleted.jsonl")).find("holds 9 whole event line(s), the header says 10") != std::string::npos);
}

TEST_CASE("a trace whose embedded scenario was edited says the scenario does not produce its events") {
  const std::string good = temp_path("embedded.jsonl");
  record("scenarios/himamba-sidecar-lag.json", "pre-fix", good);
  {
    const TraceRead t = read_checked_trace(good).trace;
    const Scenario s = parse_scenario(t.header.scenario_json, "embedded");
    const Recording rec = recording_of(t);
    CHECK_FALSE(replay_departure(t, simulate(s, replay_options(t, rec)).log.events()));  // unedited: none
  }
  std::vector<std::string> lines = lines_of(good);
  nlohmann::json header = nlohmann::json::parse(lines[0]);
  header["scenario"]["requests"][0]["input_tokens"] = header["scenario"]["requests"][0]["input_tokens"].get<int>() + 64;
  lines[0] = header.dump();
  const std::string path = write_lines(lines, "embedded-edited.jsonl");
  const CheckedTrace c = read_checked_trace(path);  // the events themselves are untouched
  const Recording rec = recording_of(c.trace);
  const RunResult r = simulate(c.scenario, replay_options(c.trace, rec));
  const auto d = replay_departure(c.trace, r.log.events());
  REQUIRE(d);
  CHECK(d->before_l3);
  CHECK(c.trace.events[d->index].kind == EventKind::kArrive);  // the arrival carries the request's input tokens
  const std::string what = d->message(path);
  INFO(what);
  CHECK(what.find(path + ": the embedded scenario does not produce the recorded events") != std::string::npos);
  CHECK(what.find("departs at line " + std::to_string(d->index + 2)) != std::string::npos);
}

TEST_CASE("JSON nested 100,000 deep is refused before parsing, quickly, in every trace line and workload line") {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string deep(100'000, '[');
  const auto error_of = [](const std::string& text, const std::string& name) {
    std::istringstream in(text);
    try {
      (void)read_checked_trace(in, name);
    } catch (const TraceError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string nested = "arrays and objects nested deeper than 64 levels";
  // The header, with the scenario it embeds.
  const std::string in_header = error_of("{\"format\":\"hcsim-trace\",\"scenario\":" + deep + "\n", "deep-header.jsonl");
  INFO(in_header);
  CHECK(in_header.find("deep-header.jsonl:1: column 99: " + nested) != std::string::npos);
  // An event line after a good header, of arrays and of objects.
  const std::string good = temp_path("deep-good.jsonl");
  record("scenarios/himamba-sidecar-lag.json", "pre-fix", good);
  const std::string header_line = lines_of(good)[0];
  const std::string in_event = error_of(header_line + "\n" + deep + "\n", "deep-event.jsonl");
  CHECK(in_event.find("deep-event.jsonl:2: column 65: " + nested) != std::string::npos);
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += "{\"a\":";
  const std::string in_fields = error_of(header_line + "\n" + objects + "\n", "deep-fields.jsonl");
  CHECK(in_fields.find("deep-fields.jsonl:2: column 321: " + nested) != std::string::npos);
  // A workload line (a Mooncake trace).
  std::istringstream workload(deep + "\n");
  try {
    (void)load_mooncake_trace(workload, "deep-workload.jsonl", 64);
    FAIL("a workload line nested 100,000 deep was accepted");
  } catch (const ScenarioError& e) {
    CHECK(std::string(e.what()).find("deep-workload.jsonl:1: /: line 1, column 65: " + nested) != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));  // linear: well under a second in a debug build
}

TEST_CASE("a key repeated in a trace line is refused, naming the line, the object's pointer and the key") {
  const std::string good = temp_path("dup-good.jsonl");
  record("scenarios/himamba-sidecar-lag.json", "pre-fix", good);
  std::vector<std::string> lines = lines_of(good);
  std::vector<std::string> header = lines;
  const std::string tokens = "\"input_tokens\":";
  const std::size_t at = header[0].find(tokens);
  REQUIRE(at != std::string::npos);
  header[0].insert(at, tokens + "1,");
  const std::string in_header = checked_error(write_lines(header, "dup-header.jsonl"));
  INFO(in_header);
  CHECK(in_header.find("dup-header.jsonl:1: /scenario/requests/0: duplicate key \"input_tokens\"") != std::string::npos);
  std::vector<std::string> event = lines;
  event[1].insert(event[1].find("\"fields\":{") + 10, "\"group\":7,");
  REQUIRE(event[1].find("\"group\":7,") != std::string::npos);
  const std::string in_event = checked_error(write_lines(event, "dup-event.jsonl"));
  INFO(in_event);
  CHECK(in_event.find("dup-event.jsonl:2: /fields: duplicate key \"group\"") != std::string::npos);
  std::vector<std::string> root = lines;
  root[1].insert(1, "\"rank\":0,");
  CHECK(checked_error(write_lines(root, "dup-root.jsonl")).find("dup-root.jsonl:2: /: duplicate key \"rank\"") != std::string::npos);
}

TEST_CASE("a scenario or a sweep grid given as a trace says what it is and which command takes it") {
  CHECK(checked_error("scenarios/himamba-sidecar-lag.json") ==
        "scenarios/himamba-sidecar-lag.json is a scenario, not a trace: use hcsim run scenarios/himamba-sidecar-lag.json");
  CHECK(checked_error("grids/seed-family.json") == "grids/seed-family.json is a sweep grid, not a trace: use hcsim sweep grids/seed-family.json");
  // A one-line scenario, without a final newline.
  const std::string one_line = temp_path("one-line.json");
  std::ofstream(one_line, std::ios::binary) << nlohmann::json::parse(read_all("scenarios/himamba-sidecar-lag.json")).dump();
  CHECK(checked_error(one_line).find("is a scenario, not a trace: use hcsim run") != std::string::npos);
}
