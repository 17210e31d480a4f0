#include "sim/trace_file.h"

#include <fstream>
#include <istream>
#include <ostream>

#include <nlohmann/json.hpp>

#include "policy/assert.h"
#include "policy/fixes.h"
#include "policy/policy_config.h"
#include "sim/input_file.h"
#include "sim/line_reader.h"

namespace hcsim {

namespace {

using nlohmann::json;

json arrivals_json(const std::vector<Arrival>& v) {
  json a = json::array();
  for (const Arrival& x : v) a.push_back({x.request, x.time_ns});
  return a;
}

// Reads one line of at most `max` bytes. Returns false at the end of the stream; `complete` tells
// whether the line ended with a newline. A longer line is an error, so memory stays bounded.
bool read_line(std::istream& in, std::string& line, std::size_t max, bool& complete, const std::string& file, std::size_t number) {
  const LineRead r = read_bounded_line(in, line, max);
  if (r == LineRead::kTooLong) throw TraceError(file, number, "", "line longer than " + std::to_string(max) + " bytes: not a trace written by hcsim");
  complete = r == LineRead::kLine;
  return r != LineRead::kEnd;
}

std::optional<ActorKind> actor_by_name(const std::string& n) {
  for (int i = 0; i < kActorKindCount; ++i) {
    if (actor_name(static_cast<ActorKind>(i)) == n) return static_cast<ActorKind>(i);
  }
  return std::nullopt;
}

std::optional<EventKind> kind_by_name(const std::string& n) {
  for (int i = 0; i < kEventKindCount; ++i) {
    if (event_name(static_cast<EventKind>(i)) == n) return static_cast<EventKind>(i);
  }
  return std::nullopt;
}

std::int64_t integer(const json& j, const char* key, const std::string& file, std::size_t line, std::int64_t lo, std::int64_t hi) {
  if (!j.contains(key)) throw TraceError(file, line, key, "missing");
  const json& v = j.at(key);
  if (!v.is_number_integer()) throw TraceError(file, line, key, "expected an integer");
  const auto x = v.get<std::int64_t>();
  if (x < lo || x > hi) throw TraceError(file, line, key, "expected a value in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

std::string text(const json& j, const char* key, const std::string& file, std::size_t line) {
  if (!j.contains(key) || !j.at(key).is_string()) throw TraceError(file, line, key, "expected a string");
  return j.at(key).get<std::string>();
}

// An explored schedule: [["order"|"late", rank, alternatives, taken], ...].
std::vector<Decision> read_decisions(const json& j, const std::string& file) {
  const std::string form = "expected [\"order\" or \"late\", rank, alternatives >= 2, taken < alternatives], e.g. [\"late\", 1, 2, 1]";
  if (!j.is_array()) throw TraceError(file, 1, "decisions", "expected an array of decisions");
  if (j.size() > kTraceEventsMax) throw TraceError(file, 1, "decisions", "more decisions than a trace holds events");
  std::vector<Decision> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& d = j[i];
    const std::string where = "decisions[" + std::to_string(i) + "]";
    if (!d.is_array() || d.size() != 4 || !d[0].is_string() || !d[1].is_number_integer() || !d[2].is_number_integer() || !d[3].is_number_integer()) {
      throw TraceError(file, 1, where, form);
    }
    const std::string kind = d[0].get<std::string>();
    const auto rank = d[1].get<std::int64_t>();
    const auto alternatives = d[2].get<std::int64_t>();
    const auto taken = d[3].get<std::int64_t>();
    if ((kind != "order" && kind != "late") || rank < 0 || rank > 1 << 14 || alternatives < 2 || alternatives > 1 << 20 || taken < 0 ||
        taken >= alternatives) {
      throw TraceError(file, 1, where, form);
    }
    out.push_back({kind == "order" ? ChoiceKind::kOrder : ChoiceKind::kLate, static_cast<int>(rank), static_cast<int>(alternatives),
                   static_cast<int>(taken), 0});
  }
  return out;
}

std::vector<Arrival> read_arrivals(const json& j, const char* key, const std::string& file) {
  std::vector<Arrival> out;
  if (!j.contains(key) || !j.at(key).is_array()) throw TraceError(file, 1, key, "expected an array of [request, t_ns]");
  for (std::size_t i = 0; i < j.at(key).size(); ++i) {
    const json& a = j.at(key)[i];
    const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    if (!a.is_array() || a.size() != 2 || !a[0].is_number_integer() || !a[1].is_number_integer()) {
      throw TraceError(file, 1, where, "expected [request, t_ns]");
    }
    const auto request = a[0].get<std::int64_t>();
    const auto t = a[1].get<std::int64_t>();
    if (request < 0 || request > INT32_MAX || t < 0) throw TraceError(file, 1, where, "expected a request id >= 0 and a time >= 0");
    out.push_back({t, static_cast<RequestId>(request)});
  }
  return out;
}

TraceHeader parse_header(const std::string& line, const std::string& file) {
  json h;
  try {
    h = json::parse(line);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number past double
    throw TraceError(file, 1, "", std::string("the header is not valid JSON (") + e.what() +
                                      "); expected a trace written by 'hcsim run --record', whose first line is like "
                                      "{\"format\":\"hcsim-trace\",\"version\":1,\"scenario\":{...},...}");
  }
  if (!h.is_object() || !h.contains("format") || !h.at("format").is_string() || h.at("format").get<std::string>() != "hcsim-trace") {
    throw TraceError(file, 1, "format", "expected \"hcsim-trace\": not a hicache-sim trace");
  }
  const auto version = integer(h, "version", file, 1, 0, 1'000'000);
  if (version != kTraceFormatVersion) {
    throw TraceError(file, 1, "version", "this build reads version " + std::to_string(kTraceFormatVersion) + "; the trace is " + std::to_string(version));
  }
  TraceHeader t;
  if (!h.contains("scenario") || !h.at("scenario").is_object()) throw TraceError(file, 1, "scenario", "expected the scenario object");
  t.scenario_json = h.at("scenario").dump();
  t.scenario_name = text(h, "scenario_name", file, 1);
  t.variant = text(h, "variant", file, 1);
  t.policy = text(h, "policy", file, 1);
  t.seed = static_cast<std::uint64_t>(integer(h, "seed", file, 1, 0, INT64_MAX));
  t.build = text(h, "build", file, 1);
  t.world = text(h, "world", file, 1);
  t.events = static_cast<std::uint64_t>(integer(h, "events", file, 1, 0, INT64_MAX));
  t.verdict = text(h, "verdict", file, 1);
  bool known_verdict = false;
  for (const char* v : {"none", "deadlock", "collective_mismatch", "starvation", "lost_worker"}) known_verdict = known_verdict || t.verdict == v;
  if (!known_verdict) throw TraceError(file, 1, "verdict", "expected none, deadlock, collective_mismatch, starvation or lost_worker");
  if (t.world != "sim" && t.world != "gpu") throw TraceError(file, 1, "world", "expected \"sim\" or \"gpu\"");
  std::string error;
  if (!parse_variant(t.variant, &error)) throw TraceError(file, 1, "variant", error);
  if (!policy_by_name(t.policy)) throw TraceError(file, 1, "policy", "expected best_effort, wait_complete or timeout");
  t.verdict_at_ns = integer(h, "verdict_at_ns", file, 1, 0, INT64_MAX);
  if (!h.contains("digest") || !h.at("digest").is_number_unsigned()) throw TraceError(file, 1, "digest", "expected an unsigned integer");
  t.log_hash = h.at("digest").get<std::uint64_t>();
  t.arrivals = read_arrivals(h, "arrivals", file);
  t.aborts = read_arrivals(h, "aborts", file);
  if (h.contains("decisions")) t.decisions = read_decisions(h.at("decisions"), file);
  return t;
}

TraceEvent parse_event(const std::string& line, const std::string& file, std::size_t number) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number past double
    throw TraceError(file, number, "", std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw TraceError(file, number, "", "expected an event object");
  TraceEvent e;
  e.time_ns = integer(j, "t_ns", file, number, 0, INT64_MAX);
  e.rank = static_cast<std::int16_t>(integer(j, "rank", file, number, 0, 1023));
  const auto actor = actor_by_name(text(j, "actor", file, number));
  if (!actor) throw TraceError(file, number, "actor", "unknown actor \"" + j.at("actor").get<std::string>() + "\"");
  e.actor = *actor;
  const auto kind = kind_by_name(text(j, "kind", file, number));
  if (!kind) throw TraceError(file, number, "kind", "unknown kind \"" + j.at("kind").get<std::string>() + "\"");
  e.kind = *kind;
  e.request = static_cast<RequestId>(integer(j, "request", file, number, -1, INT32_MAX));
  if (!j.contains("fields") || !j.at("fields").is_object()) throw TraceError(file, number, "fields", "expected an object");
  const json& f = j.at("fields");
  const auto& names = event_field_names(e.kind);
  std::int64_t* slots[3] = {&e.a, &e.b, &e.c};
  std::size_t named = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (names[i].empty()) continue;
    ++named;
    const std::string key(names[i]);
    *slots[i] = integer(f, key.c_str(), file, number, INT64_MIN, INT64_MAX);
  }
  if (f.size() != named) throw TraceError(file, number, "fields", "expected exactly the fields of kind " + std::string(event_name(e.kind)));
  return e;
}

}  // namespace

TraceHeader trace_header_of(const std::string& scenario_json, const Scenario& scenario, const RunResult& run, const std::string& variant) {
  TraceHeader h;
  h.scenario_json = scenario_json;
  h.scenario_name = scenario.name;
  h.variant = variant;
  h.policy = std::string(policy_name(run.policy.policy));
  h.seed = run.seed;
  h.build = "hcsim 0.1.0";
  h.world = "sim";
  h.verdict = std::string(hang_kind_name(run.verdict.kind));
  h.verdict_at_ns = run.verdict.at_ns;
  h.log_hash = run.log.digest();
  h.arrivals = run.arrivals;
  h.aborts = run.aborts;
  return h;
}

RunOptions replay_options(const TraceRead& trace, const Recording& recording) {
  RunOptions o;
  std::string error;
  const auto fixes = parse_variant(trace.header.variant, &error);
  HCSIM_ASSERT(fixes);  // the reader checked the variant
  o.fixes = *fixes;
  o.policy = policy_by_name(trace.header.policy);
  o.seed = trace.header.seed;
  o.replay = &recording;
  return o;
}

void write_trace(std::ostream& out, const TraceHeader& h, const EventLog& log) {
  json header = {{"format", "hcsim-trace"},
                 {"version", kTraceFormatVersion},
                 {"build", h.build},
                 {"world", h.world},
                 {"scenario_name", h.scenario_name},
                 {"variant", h.variant},
                 {"policy", h.policy},
                 {"seed", h.seed},
                 {"events", log.count()},
                 {"verdict", h.verdict},
                 {"verdict_at_ns", h.verdict_at_ns},
                 {"digest", h.log_hash},
                 {"arrivals", arrivals_json(h.arrivals)},
                 {"aborts", arrivals_json(h.aborts)},
                 {"scenario", json::parse(h.scenario_json)}};
  if (!h.decisions.empty()) {
    json d = json::array();
    for (const Decision& x : h.decisions) d.push_back({x.kind == ChoiceKind::kOrder ? "order" : "late", x.rank, x.alternatives, x.taken});
    header["decisions"] = d;
  }
  out << header.dump() << '\n';
  for (const TraceEvent& e : log.events()) {
    json fields = json::object();
    const auto& names = event_field_names(e.kind);
    const std::int64_t values[3] = {e.a, e.b, e.c};
    for (std::size_t i = 0; i < 3; ++i) {
      if (!names[i].empty()) fields[std::string(names[i])] = values[i];
    }
    out << json{{"t_ns", e.time_ns}, {"rank", e.rank}, {"actor", actor_name(e.actor)}, {"kind", event_name(e.kind)},
                {"request", e.request}, {"fields", fields}}
               .dump()
        << '\n';
  }
}

TraceRead read_trace(const std::string& path) {
  std::ifstream in = open_input_file(path);
  return read_trace(in, path);
}

TraceRead read_trace(std::istream& in, const std::string& path) {
  TraceRead t;
  std::string line;
  bool complete = false;
  if (!read_line(in, line, kTraceHeaderBytesMax, complete, path, 1)) throw TraceError(path, 1, "", "empty file: no header");
  if (!complete) throw TraceError(path, 1, "", "the header line is cut off: nothing to replay");
  t.header = parse_header(line, path);
  t.lines = 1;
  for (std::size_t number = 2;; ++number) {
    if (!read_line(in, line, kTraceLineBytesMax, complete, path, number)) break;
    if (!complete) {  // the last line, cut mid-way: the trace ends before it
      t.cut_mid_line = true;
      break;
    }
    if (t.events.size() >= kTraceEventsMax) {
      t.events_capped = true;
      break;
    }
    t.events.push_back(parse_event(line, path, number));
    t.lines = number;
  }
  return t;
}

std::size_t first_departure(const std::vector<TraceEvent>& recorded, const std::vector<TraceEvent>& replayed) {
  std::size_t i = 0;
  while (i < recorded.size() && i < replayed.size() && recorded[i] == replayed[i]) ++i;
  return i;
}

void check_against(const TraceRead& trace, int ranks, std::size_t requests, TimeNs horizon_ns, const std::string& path) {
  for (const auto* list : {&trace.header.arrivals, &trace.header.aborts}) {
    const char* key = list == &trace.header.arrivals ? "arrivals" : "aborts";
    if (list->size() > requests) throw TraceError(path, 1, key, "more entries than the scenario's " + std::to_string(requests) + " requests");
    std::vector<bool> seen(requests, false);
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Arrival& a = (*list)[i];
      const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
      if (static_cast<std::size_t>(a.request) >= requests) throw TraceError(path, 1, where, "no request " + std::to_string(a.request) + " in the scenario");
      if (seen[static_cast<std::size_t>(a.request)]) throw TraceError(path, 1, where, "request " + std::to_string(a.request) + " listed twice");
      if (a.time_ns > horizon_ns) throw TraceError(path, 1, where, "after the scenario's horizon");
      seen[static_cast<std::size_t>(a.request)] = true;
    }
  }
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    const TraceEvent& e = trace.events[i];
    const std::size_t line = i + 2;
    if (e.rank >= ranks) throw TraceError(path, line, "rank", "the scenario has " + std::to_string(ranks) + " rank(s)");
    if (e.request >= 0 && static_cast<std::size_t>(e.request) >= requests) throw TraceError(path, line, "request", "no such request in the scenario");
    if (e.kind != EventKind::kStorageCall) continue;
    if (e.a < 0 || e.a >= kStorageOpCount) throw TraceError(path, line, "fields.op", "expected 0 to " + std::to_string(kStorageOpCount - 1));
    if (e.b != kStorageNever && e.b != kStorageRaises && (e.b < 0 || e.b > horizon_ns)) {
      throw TraceError(path, line, "fields.duration_ns", "expected -1 (never), -2 (raises) or 0 to the horizon");
    }
    if (e.b == kStorageRaises && is_copy(static_cast<StorageOp>(e.a))) {
      throw TraceError(path, line, "fields.duration_ns", "a host-device copy never raises: expected -1 (never) or 0 to the horizon");
    }
    if (e.c < 0 || e.c > (std::int64_t{1} << 24)) throw TraceError(path, line, "fields.result", "expected 0 to 2^24");
  }
}

CheckedTrace read_checked_trace(std::istream& in, const std::string& path) {
  CheckedTrace c{read_trace(in, path), {}};
  c.scenario = parse_scenario(c.trace.header.scenario_json, path + " (its scenario)");
  check_against(c.trace, c.scenario.world.ranks, c.scenario.workload.size(), c.scenario.world.bounds.horizon_ns, path);
  return c;
}

CheckedTrace read_checked_trace(const std::string& path) {
  std::ifstream in = open_input_file(path);
  return read_checked_trace(in, path);
}

Recording recording_of(const TraceRead& trace) {
  Recording r;
  r.decisions = trace.header.decisions;
  r.arrivals = trace.header.arrivals;
  r.aborts = trace.header.aborts;
  std::map<std::tuple<int, int, RequestId>, int> ordinals;
  for (const TraceEvent& e : trace.events) {
    if (e.kind != EventKind::kStorageCall) continue;
    const int op = static_cast<int>(e.a);
    const int ordinal = ordinals[{e.rank, op, e.request}]++;
    r.storage[{e.rank, op, e.request, ordinal}] = {e.b, e.c};
  }
  return r;
}

}  // namespace hcsim
