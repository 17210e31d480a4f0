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

#include "tools/chrome_trace.h"
#include "tools/report.h"

namespace hcsim::cli {

int cmd_replay(const Args& args) {
  std::string path, preset, policy;
  std::vector<std::string> fixes, without;
  po::options_description d("replay options");
  d.add_options()("help,h", "show this help")("trace", po::value(&path), "trace file (JSON Lines)")
      ("preset", po::value(&preset), "replay under this preset instead of the recorded variant")
      ("fix", po::value(&fixes)->composing(), "add a named fix (repeatable): would it have avoided the failure?")
      ("without", po::value(&without)->composing(), "remove a fix (repeatable)")
      ("policy", po::value(&policy), "replay under this policy instead of the recorded one");
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
             "examples:\n"
             "  hcsim run scenarios/himamba-sidecar-lag-tp4.json --record /tmp/qwen35.jsonl\n"
             "  hcsim replay /tmp/qwen35.jsonl --fix pool-transfer-guard\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("replay: missing TRACE (see 'hcsim replay --help')");
  const auto [trace, s] = read_checked_trace(path);
  const bool same_code = preset.empty() && fixes.empty() && without.empty() && policy.empty();
  // The recorded preset, additions and removals, then ours; or our preset alone.
  VariantArgs va = preset.empty() ? variant_args_of(trace.header.variant) : VariantArgs{};
  if (!preset.empty()) va.preset = preset;
  va.fixes.insert(va.fixes.end(), fixes.begin(), fixes.end());
  va.without.insert(va.without.end(), without.begin(), without.end());
  va.policy = policy.empty() ? trace.header.policy : policy;
  va.seed = trace.header.seed;
  RunOptions opt = run_options(va);
  const Recording recording = recording_of(trace);
  opt.replay = &recording;
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r = simulate(s, opt);
  print_report(std::cout, s, r, RunLabel{variant_name(va), wall_ms_since(t0)});

  const auto& recorded = trace.events;
  const auto& replayed = r.log.events();
  const std::size_t same = first_departure(recorded, replayed);
  std::printf("replay     recorded %s under %s: %s at %s; %zu event(s) in the file%s\n", trace.header.scenario_name.c_str(),
              trace.header.variant.c_str(), trace.header.verdict.c_str(), format_ms(trace.header.verdict_at_ns).c_str(), recorded.size(),
              trace.cut_mid_line ? ", then a line cut off" : "");
  std::printf("           L3 calls: %lld from the recording, %lld modelled\n", static_cast<long long>(r.replayed_calls),
              static_cast<long long>(r.modelled_calls));
  if (same == recorded.size() && !trace.cut_mid_line && r.log.count() == trace.header.events) {
    std::printf("           the replay follows the recording event for event\n");
  } else if (same == recorded.size()) {
    std::printf("           the replay follows the recording through its last event (line %zu)\n", trace.lines);
  } else {
    std::printf("           the replay departs at line %zu: recorded %s\n", same + 2, format_event(recorded[same]).c_str());
    std::printf("           %*s replayed %s\n", static_cast<int>(std::to_string(same + 2).size()) + 25, "",
                same < replayed.size() ? format_event(replayed[same]).c_str() : "(nothing)");
  }
  if (trace.cut_mid_line || trace.events_capped || recorded.size() < trace.header.events) {
    const TimeNs end_ns = recorded.empty() ? 0 : recorded.back().time_ns;
    std::printf("           the recording ends at line %zu, t=%s%s; in flight then:\n", trace.lines, format_ms(end_ns).c_str(),
                trace.cut_mid_line ? " (the next line is cut off)" : trace.events_capped ? " (the reader's event limit)" : " (a whole line boundary)");
    int in_flight = 0;
    for (const TraceEvent& e : recorded) {
      if (e.kind != EventKind::kStorageCall) continue;
      if (e.b >= 0 && e.time_ns + e.b <= end_ns) continue;
      ++in_flight;
      std::printf("             rank %d %s: %s for request %d%s\n", e.rank, std::string(actor_name(e.actor)).c_str(),
                  std::string(storage_op_name(static_cast<StorageOp>(e.a))).c_str(), e.request,
                  e.b >= 0 ? (", due at " + format_ms(e.time_ns + e.b)).c_str() : e.b == kStorageNever ? ", never returning" : ", raising");
    }
    if (in_flight == 0) std::printf("             no L3 call\n");
  }
  const bool recorded_hang = trace.header.verdict != "none";
  // A real run's timings are not the model's: a GPU trace reproduces when the verdict does.
  const bool from_gpu = trace.header.world == "gpu";
  const bool same_verdict = std::string(hang_kind_name(r.verdict.kind)) == trace.header.verdict;
  const bool reproduced = same_verdict && (from_gpu || r.log.digest() == trace.header.log_hash);
  if (reproduced) {
    std::printf(from_gpu ? "           same verdict as the GPU recording\n" : "           same verdict and event-log hash as the recording\n");
  } else if (recorded_hang && !r.verdict.hang()) {
    std::printf("           the recorded %s is avoided under %s\n", trace.header.verdict.c_str(), variant_name(va).c_str());
  } else if (!recorded_hang && r.verdict.hang()) {
    std::printf("           the recording completed; under %s the run hangs\n", variant_name(va).c_str());
  } else {
    std::printf("           verdict %s (recorded: %s)\n", verdict_word(r.verdict).c_str(), trace.header.verdict.c_str());
  }
  // Under the recorded code, a whole trace must reproduce; under other code, differing is the answer.
  const bool whole = !trace.cut_mid_line && !trace.events_capped && recorded.size() == trace.header.events;
  if (same_code && whole && !reproduced) {
    std::cerr << "hcsim: the replay did not reproduce the recording (a changed model, or a trace from another build)\n";
    return kExitUnexpected;
  }
  return kExitOk;
}

int cmd_export(const Args& args) {
  std::string path, chrome, dot;
  po::options_description d("export options");
  d.add_options()("help,h", "show this help")("trace", po::value(&path), "trace file (JSON Lines)")
      ("chrome", po::value(&chrome), "write Chrome Trace Event JSON (Perfetto, speedscope, chrome://tracing) to FILE")
      ("dot", po::value(&dot), "replay the trace and write the wait-for graph at its end (Graphviz DOT) to FILE");
  po::positional_options_description pos;
  pos.add("trace", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim export [--chrome OUT.json] [--dot OUT.dot] TRACE\n\n"
             "Turns a trace into a timeline: one process per rank, one track per actor, L3 calls as async\n"
             "slices, forwards as complete slices, policy decisions as instants with their fields, queue\n"
             "depths and prefetch occupancy as counters, flows from each prefetch to its termination.\n\n"
             "example:\n"
             "  hcsim export --chrome /tmp/qwen35.json --dot /tmp/qwen35.dot traces/qwen35-tp4-wait-complete-hang.jsonl\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("export: missing TRACE (see 'hcsim export --help')");
  if (chrome.empty() && dot.empty()) throw BadInput("export: say what to write: --chrome FILE and/or --dot FILE");
  const auto [trace, s] = read_checked_trace(path);
  if (!chrome.empty()) {
    std::ofstream out(chrome, std::ios::binary);
    out << chrome_trace(trace, s).dump() << "\n";
    if (!out.flush()) throw BadInput("--chrome: cannot write " + chrome);
    std::printf("wrote %s: %zu events of %s\n", chrome.c_str(), trace.events.size(), path.c_str());
  }
  if (!dot.empty()) {
    const Recording recording = recording_of(trace);
    const RunOptions opt = replay_options(trace, recording);
    const RunResult r = simulate(s, opt);
    std::ofstream out(dot, std::ios::binary);
    if (!(out << r.wait_for_dot)) throw BadInput("--dot: cannot write " + dot);
    std::printf("wrote %s: the wait-for graph at %s (%s)\n", dot.c_str(), format_ms(r.verdict.at_ns).c_str(), verdict_word(r.verdict).c_str());
  }
  return kExitOk;
}

}  // namespace hcsim::cli
