#include "run/trace_file.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <istream>
#include <ostream>

#include <nlohmann/json.hpp>

#include "policy/assert.h"
#include "policy/fixes.h"
#include "policy/variant.h"
#include "policy/policy_config.h"
#include "run/input_file.h"
#include "run/json_node.h"
#include "run/line_reader.h"

namespace hcsim {

namespace {

using nlohmann::json;

// A digest as `hcsim run` prints it: 16 hex digits.
std::string digest_hex(std::uint64_t digest) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(digest));
  return text;
}

// A digest: 16 hex digits as written since the format quoted it, or the unsigned integer of traces
// written before, which still replay.
std::uint64_t digest_field(const json& h, const char* key, const std::string& file) {
  if (!h.contains(key)) throw TraceError(file, 1, key, "missing; expected 16 hex digits");
  const json& v = h.at(key);
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  const std::string text = v.is_string() ? v.get<std::string>() : std::string();
  if (text.size() != 16 || text.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw TraceError(file, 1, key, "expected 16 lowercase hex digits, like \"5ef4a6c1e0b2d3f7\"");
  }
  return std::stoull(text, nullptr, 16);
}

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

// Line `number` of `file` as JSON (parse_json_text: nesting bounded, keys once per object), or a
// TraceError naming the file, the line and the place (a JSON pointer, or a column); `expected`
// follows a syntax error.
json parse_line(const std::string& line, const std::string& file, std::size_t number, const std::string& expected = {}) {
  try {
    return parse_json_text(line);
  } catch (const JsonTextError& e) {
    std::string message = e.what();
    if (e.offset()) message = "column " + std::to_string(*e.offset() + 1) + ": " + message;  // a line is one line
    if (e.syntax() && !expected.empty()) message += "; expected " + expected;
    const bool at_root = e.pointer().empty() && e.kind() == JsonTextError::Kind::kDuplicateKey;
    throw TraceError(file, number, at_root ? "/" : e.pointer(), message);
  }
}

// If the text that starts with `first_line` (then the rest of `in`) is one of hcsim's other inputs,
// what to do with it instead; else "". Reads at most a scenario's bound.
std::string other_input_advice(const std::string& first_line, bool first_line_complete, std::istream& in, const std::string& path) {
  std::string text = first_line;
  if (first_line_complete) {
    text.push_back('\n');
    char chunk[1 << 16];
    for (std::streamsize got = 0; (got = in.rdbuf()->sgetn(chunk, sizeof chunk)) > 0;) {
      text.append(chunk, static_cast<std::size_t>(got));
      if (text.size() > static_cast<std::size_t>(kScenarioBytesMax)) return "";
    }
  }
  json j;
  try {
    j = parse_json_text(text);
  } catch (const JsonTextError&) {
    return "";
  }
  if (!j.is_object() || j.contains("format")) return "";
  if (j.contains("requests") && j.contains("tp")) return path + " is a scenario, not a trace: use hcsim run " + path;
  if (j.contains("axes") && j.contains("scenario")) return path + " is a sweep grid, not a trace: use hcsim sweep " + path;
  return "";
}

TraceHeader parse_header(const std::string& line, const std::string& file) {
  const json h = parse_line(line, file, 1,
                            "a trace written by 'hcsim run --record', whose first line is like "
                            "{\"format\":\"hcsim-trace\",\"version\":1,\"scenario\":{...},...}");
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
  if (!hang_kind_by_name(t.verdict)) throw TraceError(file, 1, "verdict", "expected none, deadlock, collective_mismatch, starvation, lost_worker or crash");
  if (t.world != "sim" && t.world != "gpu") throw TraceError(file, 1, "world", "expected \"sim\" or \"gpu\"");
  std::string error;
  if (!parse_variant(t.variant, &error)) throw TraceError(file, 1, "variant", error);
  if (!policy_by_name(t.policy)) throw TraceError(file, 1, "policy", "expected best_effort, wait_complete or timeout");
  t.verdict_at_ns = integer(h, "verdict_at_ns", file, 1, 0, INT64_MAX);
  t.log_hash = digest_field(h, "digest", file);
  if (h.contains("file_events") || h.contains("file_digest")) {
    t.file_events = static_cast<std::uint64_t>(integer(h, "file_events", file, 1, 0, static_cast<std::int64_t>(t.events)));
    t.file_digest = digest_field(h, "file_digest", file);
  }
  t.arrivals = read_arrivals(h, "arrivals", file);
  t.aborts = read_arrivals(h, "aborts", file);
  if (h.contains("decisions")) t.decisions = read_decisions(h.at("decisions"), file);
  return t;
}

TraceEvent parse_event(const std::string& line, const std::string& file, std::size_t number) {
  const json j = parse_line(line, file, number);
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
                 {"digest", digest_hex(h.log_hash)},
                 {"arrivals", arrivals_json(h.arrivals)},
                 {"aborts", arrivals_json(h.aborts)},
                 {"scenario", parse_json(h.scenario_json, "the recorded scenario")}};
  if (log.truncated()) {  // the file holds the events the log kept: say how many, and their digest
    header["file_events"] = log.events().size();
    header["file_digest"] = digest_hex(events_digest(log.events()));
  }
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
  try {
    if (!complete) throw TraceError(path, 1, "", "the header line is cut off: nothing to replay");
    t.header = parse_header(line, path);
  } catch (const TraceError&) {
    const std::string advice = other_input_advice(line, complete, in, path);
    if (!advice.empty()) throw TraceError(advice);
    throw;
  }
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
    const TraceEvent e = parse_event(line, path, number);
    if (!t.events.empty() && e.time_ns < t.events.back().time_ns) {
      throw TraceError(path, number, "t_ns",
                       std::to_string(e.time_ns) + " is earlier than line " + std::to_string(number - 1) + "'s " + std::to_string(t.events.back().time_ns) +
                           ": a run's events are in time order, so the file was edited or is damaged");
    }
    t.events.push_back(e);
    t.lines = number;
  }
  return t;
}

std::size_t first_departure(const std::vector<TraceEvent>& recorded, const std::vector<TraceEvent>& replayed) {
  std::size_t i = 0;
  while (i < recorded.size() && i < replayed.size() && recorded[i] == replayed[i]) ++i;
  return i;
}

std::optional<Departure> replay_departure(const TraceRead& trace, const std::vector<TraceEvent>& replayed) {
  if (trace.header.world == "gpu") return std::nullopt;
  const auto& recorded = trace.events;
  const std::size_t same = first_departure(recorded, replayed);
  if (same == recorded.size()) return std::nullopt;
  const auto first_call = std::find_if(recorded.begin(), recorded.end(), [](const TraceEvent& e) { return e.kind == EventKind::kStorageCall; });
  return Departure{same, same <= static_cast<std::size_t>(first_call - recorded.begin())};
}

std::string Departure::message(const std::string& path) const {
  const std::string line = std::to_string(index + 2);
  if (before_l3) {
    return path + ": the embedded scenario does not produce the recorded events: replayed under the recorded code, it departs at line " + line +
           (index == 0 ? " (the first event)" : "") + ", before any recorded L3 call has returned (was the scenario edited?)";
  }
  return path + ": the replay under the recorded code departs from the recording at line " + line +
         " (a changed model, a trace from another build, or an edited scenario or trace)";
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
    const StorageCallFields call = storage_call_fields(e);
    if (call.op < 0 || call.op >= kStorageOpCount) throw TraceError(path, line, "fields.op", "expected 0 to " + std::to_string(kStorageOpCount - 1));
    if (call.duration_ns != kStorageNever && call.duration_ns != kStorageRaises && (call.duration_ns < 0 || call.duration_ns > horizon_ns)) {
      throw TraceError(path, line, "fields.duration_ns", "expected -1 (never), -2 (raises) or 0 to the horizon");
    }
    if (call.duration_ns == kStorageRaises && is_copy(static_cast<StorageOp>(call.op))) {
      throw TraceError(path, line, "fields.duration_ns", "a host-device copy never raises: expected -1 (never) or 0 to the horizon");
    }
    if (call.result < 0 || call.result > (std::int64_t{1} << 24)) throw TraceError(path, line, "fields.result", "expected 0 to 2^24");
  }
}

std::uint64_t events_digest(const std::vector<TraceEvent>& events) {
  EventLog log(0);  // keeps none; digests all
  for (const TraceEvent& e : events) log.append(e);
  return log.digest();
}

void check_events(TraceRead& t, const std::string& path) {
  const std::uint64_t in_file = t.events.size();
  const std::uint64_t expected = t.events_expected();
  const std::string edited = ": the file was edited or is damaged";
  if (in_file > expected) {
    throw TraceError(path + ": the file holds " + std::to_string(in_file) + (t.events_capped ? " or more" : "") + " events, the header says " + std::to_string(expected) + edited);
  }
  if (t.cut_off()) {  // a prefix: the header's digest covers events the file lacks
    t.events_check = EventsCheck::kCutOff;
    return;
  }
  // Before file_events existed, a writer whose log kept only its first 2^20 events wrote those and no
  // digest of them.
  constexpr std::uint64_t kEventsKeptByOlderWriters = std::uint64_t{1} << 20;
  if (!t.header.file_events && in_file == kEventsKeptByOlderWriters && t.header.events > in_file) {
    t.events_check = EventsCheck::kUncheckable;
    return;
  }
  if (in_file != expected) {
    throw TraceError(path + ": the file holds " + std::to_string(in_file) + " whole event line(s), the header says " + std::to_string(expected) + edited +
                     " (lines deleted, or cut at a line boundary: only a last line cut mid-way reads as a killed write)");
  }
  const std::uint64_t digest = events_digest(t.events);
  const std::uint64_t recorded = t.header.file_digest.value_or(t.header.log_hash);
  if (digest != recorded) {
    throw TraceError(path + ": the events hash to " + digest_hex(digest) + ", the header says " + digest_hex(recorded) + edited);
  }
  t.events_check = EventsCheck::kHashed;
}

CheckedTrace read_checked_trace(std::istream& in, const std::string& path, HashCheck hash) {
  CheckedTrace c{read_trace(in, path), {}};
  c.scenario = parse_scenario(c.trace.header.scenario_json, path + " (its scenario)");
  check_against(c.trace, c.scenario.world.ranks, c.scenario.workload.size(), c.scenario.world.bounds.horizon_ns, path);
  if (hash == HashCheck::kRequire) check_events(c.trace, path);
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
    const StorageCallFields call = storage_call_fields(e);
    const int op = static_cast<int>(call.op);
    const int ordinal = ordinals[{e.rank, op, e.request}]++;
    r.storage[{e.rank, op, e.request, ordinal}] = {call.duration_ns, call.result};
  }
  return r;
}

}  // namespace hcsim
