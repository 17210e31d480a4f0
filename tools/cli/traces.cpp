#include "tools/cli/cli.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "policy/assert.h"
#include "tools/chrome_trace.h"
#include "tools/report.h"

namespace hcsim::cli {

namespace {

// What to say on stderr (exit 3) when a replay under the recorded code departs from the recording:
// replay_departure's message, then both versions of the first disagreeing event; else "".
std::string departure_complaint(const TraceRead& trace, const std::vector<TraceEvent>& replayed, const std::string& path) {
  const auto d = replay_departure(trace, replayed);
  if (!d) return "";
  std::string m = d->message(path);
  m += "\n  recorded: " + format_event(trace.events[d->index]);
  m += "\n  replayed: " + (d->index < replayed.size() ? format_event(replayed[d->index]) : std::string("(nothing: the run ended)"));
  return m;
}

// The replay's comparison with the recording, line by line: printed as it goes, or kept for the
// JSON answer (without its indentation and newline).
class ReplayLines {
 public:
  explicit ReplayLines(bool json) : json_(json) {}

  template <typename... Values>
  void say(const char* format, Values... values) {
    std::string line;
    if constexpr (sizeof...(values) == 0) {
      line = format;
    } else {
      char text[4096];
      std::snprintf(text, sizeof text, format, values...);
      line = text;
    }
    if (json_) {
      lines_.push_back(line.substr(line.find_first_not_of(' ') == std::string::npos ? 0 : line.find_first_not_of(' ')));
      if (!lines_.back().empty() && lines_.back().back() == '\n') lines_.back().pop_back();
    } else {
      std::fputs(line.c_str(), stdout);
    }
  }

  const std::vector<std::string>& lines() const { return lines_; }

 private:
  bool json_;
  std::vector<std::string> lines_;
};

// What replay runs: the recorded preset, additions and removals, then the user's; or the user's
// preset alone. The recorded policy unless one is given, and always the recorded seed.
VariantArgs replay_variant(const TraceHeader& recorded, const std::string& preset, const std::vector<std::string>& fixes,
                           const std::vector<std::string>& without, const std::string& policy) {
  VariantArgs va = preset.empty() ? variant_args_of(*Variant::parse(recorded.variant, nullptr)) : VariantArgs{};  // checked on reading
  if (!preset.empty()) (looks_like_upstream_point(preset) ? va.upstream : va.preset) = preset;
  va.fixes.insert(va.fixes.end(), fixes.begin(), fixes.end());
  va.without.insert(va.without.end(), without.begin(), without.end());
  va.policy = policy.empty() ? recorded.policy : policy;
  va.seed = recorded.seed;
  return va;
}

// The recording, how far its events were checked, and how far the replay follows them (`same`:
// the recorded events it reproduces before it departs).
void say_replay_events(ReplayLines& out, const TraceRead& trace, const RunResult& r, std::size_t same) {
  const auto& recorded = trace.events;
  const auto& replayed = r.log.events();
  out.say("replay     recorded %s under %s: %s at %s; %zu event(s) in the file%s\n", trace.header.scenario_name.c_str(),
          trace.header.variant.c_str(), trace.header.verdict.c_str(), format_ms(trace.header.verdict_at_ns).c_str(), recorded.size(),
          trace.cut_mid_line ? ", then a line cut off" : "");
  switch (trace.events_check) {
    case EventsCheck::kHashed:
      out.say("           the file's events hash to the header's event-log hash\n");
      break;
    case EventsCheck::kCutOff:
      out.say("           the file is cut off: its events are a prefix, which the header's event-log hash (of all %llu) cannot check\n",
              static_cast<unsigned long long>(trace.header.events));
      break;
    case EventsCheck::kUncheckable:
      out.say("           the file holds the run's first %zu of %llu events and no hash of them: not checked\n", recorded.size(),
              static_cast<unsigned long long>(trace.header.events));
      break;
    case EventsCheck::kNotChecked:
      HCSIM_ASSERT(false);  // read_checked_trace checks
  }
  out.say("           L3 calls: %lld from the recording, %lld modelled\n", static_cast<long long>(r.replayed_calls),
          static_cast<long long>(r.modelled_calls));
  if (same == recorded.size() && !trace.cut_mid_line && r.log.count() == trace.header.events) {
    out.say("           the replay follows the recording event for event\n");
  } else if (same == recorded.size()) {
    out.say("           the replay follows the recording through its last event (line %zu)\n", trace.lines);
  } else {
    out.say("           the replay departs at line %zu: recorded %s\n", same + 2, format_event(recorded[same]).c_str());
    out.say("           %*s replayed %s\n", static_cast<int>(std::to_string(same + 2).size()) + 25, "",
            same < replayed.size() ? format_event(replayed[same]).c_str() : "(nothing)");
  }
}

// Where a recording holds less than the run (cut off, capped, or the writer's share): the L3 calls
// in flight at its end.
void say_in_flight_at_end(ReplayLines& out, const TraceRead& trace) {
  const auto& recorded = trace.events;
  if (!trace.cut_mid_line && !trace.events_capped && recorded.size() >= trace.header.events) return;
  const TimeNs end_ns = recorded.empty() ? 0 : recorded.back().time_ns;
  out.say("           the recording ends at line %zu, t=%s%s; in flight then:\n", trace.lines, format_ms(end_ns).c_str(),
          trace.cut_mid_line ? " (the next line is cut off)" : trace.events_capped ? " (the reader's event limit)" : " (the writer kept no more)");
  int in_flight = 0;
  for (const TraceEvent& e : recorded) {
    if (e.kind != EventKind::kStorageCall) continue;
    const StorageCallFields call = storage_call_fields(e);
    if (call.duration_ns >= 0 && e.time_ns + call.duration_ns <= end_ns) continue;
    ++in_flight;
    out.say("             rank %d %s: %s for request %d%s\n", e.rank, std::string(actor_name(e.actor)).c_str(),
            std::string(storage_op_name(static_cast<StorageOp>(call.op))).c_str(), e.request,
            call.duration_ns >= 0 ? (", due at " + format_ms(e.time_ns + call.duration_ns)).c_str()
            : call.duration_ns == kStorageNever ? ", never returning"
                                                : ", raising");
  }
  if (in_flight == 0) out.say("             no L3 call\n");
}

// Whether the replay reproduced the recording's verdict and, for a simulator's trace, its event-log hash.
struct ReplayVerdict {
  bool same_verdict = false;
  bool reproduced = false;
};

ReplayVerdict say_replay_verdict(ReplayLines& out, const TraceRead& trace, const RunResult& r, const std::string& variant) {
  const bool recorded_hang = trace.header.verdict != "none";
  // A real run's timings are not the model's: a GPU trace reproduces when the verdict does.
  const bool from_gpu = trace.header.world == "gpu";
  ReplayVerdict v;
  v.same_verdict = std::string(hang_kind_name(r.verdict.kind)) == trace.header.verdict;
  v.reproduced = v.same_verdict && (from_gpu || r.log.digest() == trace.header.log_hash);
  if (v.reproduced) {
    out.say(from_gpu ? "           same verdict as the GPU recording\n" : "           same verdict and event-log hash as the recording\n");
  } else if (recorded_hang && !r.verdict.hang()) {
    out.say("           the recorded %s is avoided under %s\n", trace.header.verdict.c_str(), variant.c_str());
  } else if (!recorded_hang && r.verdict.hang()) {
    out.say("           the recording completed; under %s the run hangs\n", variant.c_str());
  } else {
    out.say("           verdict %s (recorded: %s)\n", verdict_word(r.verdict).c_str(), trace.header.verdict.c_str());
  }
  return v;
}

// Under the recorded code, the replay must follow the recorded events and a whole trace must
// reproduce: what to say on stderr (exit 3) when it does not; else "".
std::string replay_complaint(const TraceRead& trace, const RunResult& r, const std::string& path, const ReplayVerdict& v) {
  std::string complaint = departure_complaint(trace, r.log.events(), path);
  const bool whole = !trace.cut_off() && trace.events.size() == trace.header.events;
  if (complaint.empty() && whole && !v.reproduced) {
    complaint = path + ": the replay under the recorded code did not reproduce the recording's " +
                (v.same_verdict ? "event-log hash" : "verdict") + " (a changed model, or a trace from another build)";
  }
  return complaint;
}

nlohmann::json replay_json(const TraceRead& trace, std::size_t same, bool same_code, const RunResult& r, const ReplayVerdict& v,
                           const std::vector<std::string>& lines, const std::string& complaint) {
  const auto& recorded = trace.events;
  return {{"recorded", {{"scenario", trace.header.scenario_name}, {"variant", trace.header.variant},
                        {"verdict", trace.header.verdict}, {"at_ms", static_cast<double>(trace.header.verdict_at_ns) / 1e6},
                        {"world", trace.header.world}, {"events_in_file", recorded.size()}, {"cut_mid_line", trace.cut_mid_line}}},
          {"same_code", same_code},
          {"follows_recording", same == recorded.size()},
          {"departs_at_line", same == recorded.size() ? nlohmann::json() : nlohmann::json(same + 2)},
          {"reproduced", v.reproduced},
          {"l3_calls", {{"from_recording", r.replayed_calls}, {"modelled", r.modelled_calls}}},
          {"lines", lines},
          {"problem", complaint.empty() ? nlohmann::json() : nlohmann::json(complaint)}};
}

}  // namespace

int cmd_replay(const Args& args) {
  std::string path, preset, policy;
  std::vector<std::string> fixes, without;
  po::options_description d("replay options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("trace", po::value(&path)->value_name("TRACE"), "trace file (JSON Lines)")
      ("preset", po::value(&preset)->value_name("PRESET"), "replay under this preset instead of the recorded variant")
      ("upstream", po::value(&preset)->value_name("DATE"), "replay under upstream as it was on a date (or at a timeline commit)")
      ("fix", po::value(&fixes)->composing()->value_name("FIX"), "add a named fix (repeatable): would it have avoided the failure?")
      ("without", po::value(&without)->composing()->value_name("FIX"), "remove a fix (repeatable)")
      ("policy", po::value(&policy)->value_name("POLICY"), "replay under this policy instead of the recorded one")
      ("json", "print the report and the comparison with the recording as JSON");
  po::positional_options_description pos;
  pos.add("trace", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim replay TRACE [--preset P] [--fix F]... [--without F]... [--policy P]\n\n"
             "Re-runs the model driven by the trace's recorded arrivals, aborts and L3 call timings and results\n"
             "instead of its seed. Prints the report, whether the verdict and event-log hash match the\n"
             "recording, and the first event where the replay departs from it. With --fix and friends: would\n"
             "that upstream code have avoided the recorded failure? A trace cut off mid-line replays up to its\n"
             "end, which is reported with what was in flight there.\n\n"
             "Nothing in the file is trusted: events must be in time order, and a whole file's events must hash\n"
             "to the header's digest (an edited or damaged file is refused).\n\n"
             "exit status:\n"
             "  0  under the recorded code, the replay follows the recording and reproduces its verdict and\n"
             "     event-log hash (a GPU trace: its verdict); under other code (--preset, --fix, --without,\n"
             "     --policy), departing from the recording is the answer, and the status is 0 whatever it is\n"
             "  2  not a trace, a malformed one, or one edited or damaged (events out of time order, or not\n"
             "     hashing to the header's digest); a scenario file says to use 'hcsim run'\n"
             "  3  under the recorded code, the replay departs from the recorded events (the first disagreeing\n"
             "     line is named; at the first events, the embedded scenario does not produce them), or a whole\n"
             "     trace's verdict or event-log hash is not reproduced\n\n"
             "examples:\n"
             "  ./build/hcsim run scenarios/himamba-sidecar-lag-tp4.json --record results/qwen35.jsonl\n"
             "  ./build/hcsim replay results/qwen35.jsonl --fix pool-transfer-guard\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("replay: missing TRACE (see 'hcsim replay --help')");
  const auto [trace, s] = read_checked_trace(path);
  const bool same_code = preset.empty() && fixes.empty() && without.empty() && policy.empty();
  const VariantArgs va = replay_variant(trace.header, preset, fixes, without, policy);
  RunOptions opt = run_options(va);
  const Recording recording = recording_of(trace);
  opt.replay = &recording;
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r = simulate(s, opt);
  const RunLabel label{variant_name(va), wall_ms_since(t0)};
  const bool json = vm.count("json") > 0;
  ReplayLines out(json);
  if (!json) print_report(std::cout, s, r, label);
  const std::size_t same = first_departure(trace.events, r.log.events());
  say_replay_events(out, trace, r, same);
  say_in_flight_at_end(out, trace);
  const ReplayVerdict v = say_replay_verdict(out, trace, r, variant_name(va));
  const std::string complaint = same_code ? replay_complaint(trace, r, path, v) : "";
  if (json) print_json({{"report", report_json(s, r, label)}, {"replay", replay_json(trace, same, same_code, r, v, out.lines(), complaint)}});
  // Under the recorded code, the replay must follow the recorded events and a whole trace must
  // reproduce; under other code, differing is the answer.
  if (complaint.empty()) return kExitOk;
  std::cerr << "hcsim: " << complaint << "\n";
  return kExitUnexpected;
}

int cmd_export(const Args& args) {
  std::string path, chrome, dot;
  po::options_description d("export options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("trace", po::value(&path)->value_name("TRACE"), "trace file (JSON Lines)")
      ("chrome", po::value(&chrome)->value_name("FILE"), "write Chrome Trace Event JSON (Perfetto, speedscope, chrome://tracing) to FILE ('-': standard output)")
      ("dot", po::value(&dot)->value_name("FILE"), "replay the trace and write the wait-for graph at its end (Graphviz DOT) to FILE ('-': standard output)")
      ("all-actors", "--dot: draw every actor, idle ones too (by default they are folded into a note per rank)");
  po::positional_options_description pos;
  pos.add("trace", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim export [--chrome OUT.json] [--dot OUT.dot] TRACE\n\n"
             "Turns a trace into a timeline: one process per rank, one track per actor, L3 calls as async\n"
             "slices, forwards as complete slices, policy decisions as instants with their fields, queue\n"
             "depths and prefetch occupancy as counters, flows from each prefetch to its termination.\n"
             "The trace is checked as 'hcsim replay' checks it (exit 2 if edited or damaged); --dot replays it,\n"
             "and exits 3 if the replay departs from the recording (the graph is then the replay's).\n\n"
             "example:\n"
             "  ./build/hcsim export --chrome results/qwen35.json --dot results/qwen35.dot traces/qwen35-tp4-wait-complete-hang.jsonl\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("export: missing TRACE (see 'hcsim export --help')");
  if (chrome.empty() && dot.empty()) throw BadInput("export: say what to write: --chrome FILE and/or --dot FILE");
  const auto [trace, s] = read_checked_trace(path);
  // With a file on standard output, what was written is said on standard error.
  std::FILE* said = chrome == "-" || dot == "-" ? stderr : stdout;
  if (!chrome.empty()) {
    write_output(chrome, chrome_trace(trace, s).dump() + "\n");
    std::fprintf(said, "wrote %s: %zu events of %s\n", chrome.c_str(), trace.events.size(), path.c_str());
  }
  if (!dot.empty()) {
    const Recording recording = recording_of(trace);
    RunOptions opt = replay_options(trace, recording);
    const RunResult r = simulate(s, opt);
    write_output(dot, r.wait_for_dot({.all_actors = vm.count("all-actors") > 0}));
    std::fprintf(said, "wrote %s: the wait-for graph at %s (%s)\n", dot.c_str(), format_ms(r.verdict.at_ns).c_str(), verdict_word(r.verdict).c_str());
    if (const std::string complaint = departure_complaint(trace, r.log.events(), path); !complaint.empty()) {
      std::cerr << "hcsim: " << complaint << "\n  the graph is the replay's\n";
      return kExitUnexpected;
    }
  }
  return kExitOk;
}

}  // namespace hcsim::cli
