// hcsim: the hicache-sim command. Reads like its --help: one function per subcommand.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <map>
#include <fstream>
#include <iterator>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <boost/program_options.hpp>

#include "backend/gpu_run.h"
#include "policy/fixes.h"
#include "sim/determinism.h"
#include "sim/explore.h"
#include "sim/input_file.h"
#include "sim/json_node.h"
#include "sim/shrink.h"
#include "sim/limits.h"
#include "sim/scenario.h"
#include "sim/seed_sweep.h"
#include "sim/simulation.h"
#include "sim/sweep_grid.h"
#include "sim/trace_file.h"
#include "tools/bench.h"
#include "tools/chrome_trace.h"
#include "tools/plot.h"
#include "tools/report.h"
#include "tools/sweep.h"

namespace hcsim {
extern const char* const kSeedScenarioJson;
}

namespace {

namespace po = boost::program_options;
using namespace hcsim;

constexpr int kExitOk = 0;
constexpr int kExitInternal = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitUnexpected = 3;
constexpr int kExitWatchdog = 4;

struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* const kUsage = R"(hcsim: deterministic simulation of SGLang HiCache L3 prefetch termination

usage: hcsim COMMAND [options]

commands:
  run SCENARIO      simulate one scenario and explain the verdict
  demo              the seed bug (incident S1) under pre-fix and seed-fix, side by side
  scan SCENARIO     sweep one injected delay and show where a hang begins
  explore SCENARIO  search every schedule within a bound: a certificate, or the smallest failure as a trace
  shrink INPUT      the smallest scenario that fails the same way as a failing scenario or trace
  run --all         run every expectation of every scenario in the library, as a table
  list              the scenario library: descriptions, upstream references, expected verdicts
  verify SCENARIO.. run every expectation the given scenarios declare; fail if any differs
  replay TRACE      re-run a recorded trace (hcsim run --record) and say where it departs
  export TRACE      a trace as a Chrome/Perfetto timeline (--chrome) or a wait-for graph (--dot)
  bench             kernel events per second and seed-scenario runs per second
  gpu SCENARIO      run a scenario on the GPU backend: threads, Gloo, CUDA, files as L3
  validate SCENARIO run a scenario in both worlds and compare decisions, verdicts and times
  fixes             list the named upstream fixes and presets
  sweep GRID        every run of a grid of policies, fixes, knobs and seeds: CSV, JSON Lines, summary
  merge SHARD...    join the outputs of a sharded sweep into the unsharded one
  plot RESULTS      SVG figures from a sweep: hang-rate heatmap over two axes; latency against waste

Run 'hcsim COMMAND --help' for a command's options and examples.

limits, on every command (hcsim --limit NAME=N COMMAND ..., or anywhere after it; repeatable):
%LIMITS%An input over a limit fails at once, naming the file, the place and the limit to raise.

exit codes: 0 ok, 1 internal error, 2 bad input (file, JSON pointer and reason on stderr),
            3 a verdict differs from --expect or from a scenario's expectation (validate: the worlds differ)
            4 hcsim gpu: the watchdog found a hang, wrote its diagnosis and the trace, and ended the run
)";

// Options shared by run, scan and verify: which upstream code and policy to run.
struct VariantArgs {
  std::string preset{kDefaultPreset};
  std::vector<std::string> fixes;
  std::vector<std::string> without;
  std::string policy;
  std::optional<std::uint64_t> seed;
};

void add_variant_options(po::options_description& d, VariantArgs& a) {
  d.add_options()
      ("preset", po::value(&a.preset)->default_value(std::string(kDefaultPreset)), "pre-fix | seed-fix | timeout-bounded | all-fixes (see 'hcsim fixes')")
      ("fix", po::value(&a.fixes)->composing(), "add a named upstream fix to the preset (repeatable)")
      ("without", po::value(&a.without)->composing(), "remove a fix from the preset, e.g. a baseline one (repeatable)")
      ("policy", po::value(&a.policy), "override the scenario's policy: best_effort | wait_complete | timeout")
      ("seed", po::value<std::uint64_t>(), "random seed (default: the scenario's)");
}

std::string variant_name(const VariantArgs& a) {
  std::string v = a.preset;
  for (const auto& f : a.fixes) v += "+" + f;
  for (const auto& f : a.without) v += "~" + f;
  return v;
}

// A variant expression (PRESET[+FIX|~FIX]...) as the options that select it.
VariantArgs variant_args_of(const std::string& variant) {
  VariantArgs va;
  const auto first_op = variant.find_first_of("+~");
  va.preset = variant.substr(0, first_op);
  const std::string extra = first_op == std::string::npos ? "" : variant.substr(first_op);
  for (std::size_t at = 0; at < extra.size();) {  // bounded: each round moves past one fix
    const auto next = extra.find_first_of("+~", at + 1);
    (extra[at] == '+' ? va.fixes : va.without).push_back(extra.substr(at + 1, next == std::string::npos ? next : next - at - 1));
    at = next == std::string::npos ? extra.size() : next;
  }
  return va;
}

// The command-line flags that select a variant expression, for reproduce lines.
std::string variant_flags(const std::string& variant) {
  auto at = variant.find_first_of("+~");
  std::string flags = " --preset " + variant.substr(0, at);
  while (at != std::string::npos) {
    const auto next = variant.find_first_of("+~", at + 1);
    flags += (variant[at] == '+' ? " --fix " : " --without ") + variant.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    at = next;
  }
  return flags;
}

RunOptions run_options(const VariantArgs& a) {
  RunOptions o;
  std::string error;
  auto fixes = parse_variant(variant_name(a), &error);
  if (!fixes) throw BadInput(error + " (run 'hcsim fixes' for the names)");
  o.fixes = *fixes;
  if (!a.policy.empty()) {
    o.policy = policy_by_name(a.policy);
    if (!o.policy) throw BadInput("--policy: expected best_effort, wait_complete or timeout; got '" + a.policy + "'");
  }
  o.seed = a.seed;
  return o;
}

bool parse(const std::vector<std::string>& args, po::options_description& visible, po::positional_options_description* pos,
           po::variables_map& vm, const char* help_text) {
  po::options_description all;
  all.add(visible);
  po::command_line_parser p(args);
  p.options(all);
  if (pos) p.positional(*pos);
  po::store(p.run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << help_text << "\n" << visible << "\n";
    return false;
  }
  return true;
}

double wall_ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The scenario library: every *.json under `dir`, in incident order (S1, S2, ..., S15), then name.
std::vector<Scenario> load_library(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw BadInput(dir + ": not a directory of scenarios (run from the project root, or pass --scenarios DIR)");
  std::vector<Scenario> library;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".json") library.push_back(load_scenario_file(e.path().string()));
  }
  if (library.empty()) throw BadInput(dir + ": holds no *.json scenario");
  auto number = [](const Scenario& s) { return s.incident.size() > 1 ? std::atoi(s.incident.c_str() + 1) : 1 << 30; };
  std::sort(library.begin(), library.end(), [&](const Scenario& a, const Scenario& b) {
    return number(a) != number(b) ? number(a) < number(b) : a.name < b.name;
  });
  return library;
}

// Runs every declared expectation of each scenario; one line each, then a total. Exit 3 on any miss.
int verify_library(const std::vector<Scenario>& library) {
  int differ = 0, total = 0;
  for (const Scenario& s : library) {
    for (const Expectation& e : s.expect) {
      const ExpectationCheck c = check_expectation(s, e);
      const Verdict& v = c.result.verdict;
      ++total;
      differ += c.met ? 0 : 1;
      std::string violated;
      for (const auto& n : violated_names(c.result.invariants)) violated += (violated.empty() ? "" : ",") + n;
      std::printf("%-4s %-4s %-30s %-38s %-13s expected %-20s got %s at %s; violates: %s\n", c.met ? "ok" : "DIFF", s.incident.c_str(),
                  s.name.c_str(), e.variant.c_str(), std::string(policy_name(e.policy.value_or(s.policy.policy))).c_str(), c.expected.c_str(),
                  verdict_word(v).c_str(), format_ms(v.at_ns).c_str(), violated.empty() ? "none" : violated.c_str());
    }
  }
  std::printf("%d expectation(s) in %zu scenario(s), %d differ\n", total, library.size(), differ);
  return differ ? kExitUnexpected : kExitOk;
}

// hcsim run --check-determinism: one scenario and variant, run twice side by side. Prints one line
// when the runs agree; else the first differing event, both versions and what came just before.
bool determinism_holds(const Scenario& s, const RunOptions& options, const std::string& variant) {
  const DeterminismReport d = check_determinism([&](EventTap* tap) {
    RunOptions o = options;
    o.tap = tap;
    return simulate(s, o);
  });
  const std::string policy(policy_name(options.policy.value_or(s.policy.policy)));
  if (d.same()) {
    std::printf("same    %-30s %-38s %-13s %9llu events, digest %016llx\n", s.name.c_str(), variant.c_str(), policy.c_str(),
                static_cast<unsigned long long>(d.events_compared), static_cast<unsigned long long>(d.digest));
    return true;
  }
  std::printf("DIFFERS %-30s %-38s %-13s ", s.name.c_str(), variant.c_str(), policy.c_str());
  if (!d.first_difference) {
    std::printf("all %llu events agree, but the %s differs\n", static_cast<unsigned long long>(d.events_compared), d.result_difference.c_str());
    return false;
  }
  std::printf("at event %llu (from 0)\n", static_cast<unsigned long long>(*d.first_difference));
  if (!d.agreed_before.empty()) std::printf("  both runs, just before:\n");
  for (const TraceEvent& e : d.agreed_before) std::printf("           %s\n", format_event(e).c_str());
  std::printf("  run 1:   %s\n", d.first_run_event ? format_event(*d.first_run_event).c_str() : "(ended)");
  std::printf("  run 2:   %s\n", d.second_run_event ? format_event(*d.second_run_event).c_str() : "(ended)");
  return false;
}

// hcsim run --all --check-determinism: every declared expectation of the library, twice each.
int check_library_determinism(const std::vector<Scenario>& library) {
  int differ = 0, total = 0;
  for (const Scenario& s : library) {
    for (const Expectation& e : s.expect) {
      ++total;
      differ += determinism_holds(s, expectation_options(e), e.variant) ? 0 : 1;
    }
  }
  std::printf("%d run(s) in %zu scenario(s) checked twice each, %d differ\n", total, library.size(), differ);
  return differ ? kExitUnexpected : kExitOk;
}

int jobs_option(const po::variables_map& vm) {
  const int jobs = vm.count("jobs") ? vm["jobs"].as<int>() : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  if (jobs < 1 || jobs > 1024) throw BadInput("--jobs: expected a thread count in [1, 1024]");
  return jobs;
}

// hcsim run --all --seeds N: one variant over N seeds of every scenario, a line each.
int sweep_library(const std::vector<Scenario>& library, VariantArgs va, const po::variables_map& vm, const std::string& expect) {
  if (vm.count("seed")) va.seed = vm["seed"].as<std::uint64_t>();
  const RunOptions opt = run_options(va);
  const std::int64_t count = vm["seeds"].as<std::int64_t>();
  if (count < 1 || count > 100'000'000) throw BadInput("--seeds: expected a count in [1, 1e8]");
  const int jobs = jobs_option(vm);
  std::int64_t hanging = 0, violating = 0;
  std::printf("%-4s %-30s %-22s %-34s %-16s %s\n", "", "scenario", "hangs", "95% interval", "L3 loss (runs)", "invariants broken (runs), first failing seed");
  for (const Scenario& s : library) {
    const SeedSweep sweep = sweep_seeds(s, opt, opt.seed.value_or(s.seed), count, jobs);
    const Interval ci = wilson_interval(sweep.hangs, count);
    std::string broken;
    for (const auto& [name, k] : sweep.violations) broken += (broken.empty() ? "" : ", ") + name + " " + std::to_string(k);
    if (sweep.first_failing_seed) broken += (broken.empty() ? "" : "; ") + std::string("seed ") + std::to_string(*sweep.first_failing_seed);
    std::printf("%-4s %-30s %6lld of %-10lld %5.1f%% to %5.1f%%%17s %-16lld %s\n", s.incident.c_str(), s.name.c_str(), static_cast<long long>(sweep.hangs),
                static_cast<long long>(count), 100.0 * ci.low, 100.0 * ci.high, "", static_cast<long long>(sweep.runs_with_l3_loss),
                broken.empty() ? "none" : broken.c_str());
    hanging += sweep.hangs > 0 ? 1 : 0;
    violating += sweep.runs_with_violations > 0 ? 1 : 0;
  }
  std::printf("%zu scenario(s) x %lld seed(s), variant %s (%s): %lld with hangs, %lld with broken invariants\n", library.size(),
              static_cast<long long>(count), variant_name(va).c_str(), upstream_label(opt.fixes).c_str(), static_cast<long long>(hanging),
              static_cast<long long>(violating));
  return expect == "complete" && hanging > 0 ? kExitUnexpected : kExitOk;
}

// hcsim run --seeds: the hang rate with its 95% interval, broken invariants, and the first seed to
// look at, with the command that reproduces it.
int run_seeds(const Scenario& s, const RunOptions& opt, const std::string& variant, const std::string& path, std::int64_t count,
              int jobs, const std::string& expect) {
  if (count < 1 || count > 100'000'000) throw BadInput("--seeds: expected a count in [1, 1e8]");
  const std::uint64_t first = opt.seed.value_or(s.seed);
  const SeedSweep sweep = sweep_seeds(s, opt, first, count, jobs);
  const auto n = static_cast<std::int64_t>(sweep.runs.size());
  const Interval ci = wilson_interval(sweep.hangs, n);
  std::printf("seeds      %llu..%llu of %s, variant %s (%s), policy %s\n", static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + static_cast<std::uint64_t>(n) - 1), s.name.c_str(), variant.c_str(),
              upstream_label(opt.fixes).c_str(), std::string(policy_name(opt.policy.value_or(s.policy.policy))).c_str());
  std::printf("hangs      %lld of %lld = %.1f%% (95%% Wilson interval %.1f%% to %.1f%%)", static_cast<long long>(sweep.hangs),
              static_cast<long long>(n), 100.0 * static_cast<double>(sweep.hangs) / static_cast<double>(n), 100.0 * ci.low, 100.0 * ci.high);
  for (const auto& [kind, k] : sweep.hang_kinds) std::printf("; %s %lld", kind.c_str(), static_cast<long long>(k));
  std::printf("\ninvariants %lld run(s) broke at least one", static_cast<long long>(sweep.runs_with_violations));
  for (const auto& [name, k] : sweep.violations) std::printf("; %s %lld", name.c_str(), static_cast<long long>(k));
  std::printf("\nl3 lost    %lld run(s) published less than an agreed L3 hit; %lld token(s) in all, %.0f per run\n",
              static_cast<long long>(sweep.runs_with_l3_loss), static_cast<long long>(sweep.l3_lost_tokens),
              static_cast<double>(sweep.l3_lost_tokens) / static_cast<double>(n));
  auto show = [&](const char* label, std::optional<std::uint64_t> seed) {
    if (!seed) return;
    const SeedRun& r = sweep.runs[static_cast<std::size_t>(*seed - first)];
    std::printf("%-10s seed %llu: %s at %s; reproduce: hcsim run %s%s --seed %llu\n", label, static_cast<unsigned long long>(*seed),
                r.kind == HangKind::kNone ? "complete" : ("HANG " + std::string(hang_kind_name(r.kind))).c_str(), format_ms(r.at_ns).c_str(),
                path.c_str(), variant_flags(variant).c_str(), static_cast<unsigned long long>(*seed));
  };
  show("first hang", sweep.first_hang_seed);
  if (sweep.first_failing_seed != sweep.first_hang_seed) show("first fail", sweep.first_failing_seed);
  show("first loss", sweep.first_l3_loss_seed);
  std::printf("wall       %.2f s, %.0f runs/s on %d thread(s)\n", sweep.wall_s, static_cast<double>(n) / sweep.wall_s, jobs);
  if (expect == "complete" && sweep.hangs > 0) return kExitUnexpected;
  if (expect == "hang" && sweep.hangs < n) return kExitUnexpected;
  return kExitOk;
}

// hcsim run --record: the run as a trace, with its scenario verbatim so a replay needs nothing else.
void record_trace(const std::string& out_path, const std::string& scenario_path, const Scenario& s, const RunResult& r,
                  const std::string& variant, const std::string& world = "sim", const std::vector<Decision>& decisions = {}) {
  std::ifstream in(scenario_path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TraceHeader h = trace_header_of(text, s, r, variant);
  h.world = world;
  h.decisions = decisions;
  std::ofstream out(out_path, std::ios::binary);
  write_trace(out, h, r.log);
  if (!out.flush()) throw BadInput("--record: cannot write " + out_path);
  if (r.log.truncated()) {
    std::cerr << "hcsim: recorded the first " << r.log.events().size() << " of " << r.log.count() << " events\n";
  }
}

int cmd_replay(const std::vector<std::string>& args) {
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

int cmd_export(const std::vector<std::string>& args) {
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

int cmd_run(const std::vector<std::string>& args) {
  VariantArgs va;
  std::string path, dot, expect, library_dir = "scenarios";
  po::options_description d("run options");
  d.add_options()("help,h", "show this help")("scenario", po::value(&path), "scenario JSON file")
      ("all", "run every expectation of every scenario in the library instead (exit 3 if any differs)")
      ("scenarios", po::value(&library_dir)->default_value("scenarios"), "the library directory for --all");
  add_variant_options(d, va);
  d.add_options()
      ("seeds", po::value<std::int64_t>(), "run N seeds (from --seed) with the scenario's perturbations; report the hang rate")
      ("jobs,j", po::value<int>(), "threads for --seeds (default: all cores)")
      ("dot", po::value(&dot), "write the wait-for graph at the end of the run (Graphviz DOT) to FILE")
      ("record", po::value<std::string>(), "write the run as a trace (JSON Lines, docs/trace-format.md) to FILE")
      ("json", "print the report as JSON instead of text")
      ("check-determinism", "run twice side by side and name the first event where the runs differ (exit 3 if any)")
      ("expect", po::value(&expect), "hang | complete: exit 3 if the verdict differs");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim run SCENARIO [options]\n"
             "       hcsim run --all [--scenarios DIR]\n\n"
             "Simulates SCENARIO and prints the verdict, the collective and ranks involved, what each actor\n"
             "waits on, where the ranks' published state diverged and the first fact that differed between\n"
             "them (origin), the agreed L3 hits requests did not get (l3 lost), per-request outcomes and a\n"
             "digest. The variant line says which upstream HiMamba code it stands for, or that it is\n"
             "hypothetical (hcsim fixes lists both).\n\n"
             "examples:\n"
             "  hcsim run scenarios/himamba-sidecar-lag.json --preset pre-fix --expect hang\n"
             "  hcsim run scenarios/himamba-sidecar-lag.json --preset seed-fix --dot wait.dot\n"
             "  hcsim run scenarios/stalled-sidecar-timeout.json --preset timeout-bounded --fix sidecar-hit-sync\n"
             "  hcsim run scenarios/himamba-sidecar-lag.json --seeds 1000          # hang rate, first failing seed\n"
             "  hcsim run scenarios/short-read-loss.json --json                     # l3_lost_tokens: 640\n"
             "  hcsim run --all\n"
             "  hcsim run --all --seeds 1000 --preset all-fixes                     # every scenario, 1000 seeds each\n"
             "  hcsim run --all --check-determinism                                 # every expectation, run twice\n")) {
    return kExitOk;
  }
  const bool check = vm.count("check-determinism") > 0;
  if (check && (vm.count("seeds") || vm.count("record") || vm.count("json") || vm.count("dot") || !expect.empty())) {
    throw BadInput("--check-determinism: runs and compares only; drop --seeds, --record, --json, --dot and --expect");
  }
  if (vm.count("all")) {
    if (!path.empty()) throw BadInput("run: give a SCENARIO or --all, not both");
    if (check) return check_library_determinism(load_library(library_dir));
    if (vm.count("seeds")) return sweep_library(load_library(library_dir), va, vm, expect);
    return verify_library(load_library(library_dir));
  }
  if (path.empty()) throw BadInput("run: missing SCENARIO (see 'hcsim run --help')");
  if (vm.count("seed")) va.seed = vm["seed"].as<std::uint64_t>();
  if (!expect.empty() && expect != "hang" && expect != "complete") throw BadInput("--expect: expected hang or complete; got '" + expect + "'");
  const Scenario s = load_scenario_file(path);
  const RunOptions opt = run_options(va);
  if (check) return determinism_holds(s, opt, variant_name(va)) ? kExitOk : kExitUnexpected;
  if (vm.count("seeds")) return run_seeds(s, opt, variant_name(va), path, vm["seeds"].as<std::int64_t>(), jobs_option(vm), expect);
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r = simulate(s, opt);
  const RunLabel label{variant_name(va), wall_ms_since(t0)};
  if (vm.count("json")) {
    std::cout << report_json(s, r, label).dump(2) << "\n";
  } else {
    print_report(std::cout, s, r, label);
  }
  if (!dot.empty()) {
    std::ofstream f(dot);
    if (!(f << r.wait_for_dot)) throw BadInput("--dot: cannot write " + dot);
  }
  if (vm.count("record")) record_trace(vm["record"].as<std::string>(), path, s, r, variant_name(va));
  if (!expect.empty() && (expect == "hang") != r.verdict.hang()) {
    std::cerr << "hcsim: expected " << expect << ", got " << verdict_word(r.verdict) << "\n";
    return kExitUnexpected;
  }
  return kExitOk;
}

int cmd_demo(const std::vector<std::string>& args) {
  po::options_description d("demo options");
  d.add_options()("help,h", "show this help");
  po::variables_map vm;
  if (!parse(args, d, nullptr, vm,
             "usage: hcsim demo\n\n"
             "Runs the seed bug, incident S1 (HiMamba, TP=2, wait_complete, rank 1's Mamba sidecar read lags),\n"
             "under pre-fix and under seed-fix (sgl-project/sglang#27366), side by side. Needs no files.\n")) {
    return kExitOk;
  }
  const Scenario s = parse_scenario(kSeedScenarioJson, "scenarios/himamba-sidecar-lag.json (built in)");
  std::vector<std::pair<std::string, RunResult>> runs;
  std::vector<double> walls;
  for (const char* preset : {"pre-fix", "seed-fix"}) {
    VariantArgs va;
    va.preset = preset;
    const auto t0 = std::chrono::steady_clock::now();
    runs.emplace_back(preset, simulate(s, run_options(va)));
    walls.push_back(wall_ms_since(t0));
  }
  std::cout << "hicache-sim demo: " << s.description << "\n\n";
  auto row = [&](const char* name, auto cell) {
    std::printf("  %-12s", name);
    for (const auto& [preset, r] : runs) std::printf("  %-44s", cell(r).c_str());
    std::printf("\n");
  };
  std::printf("  %-12s", "");
  for (const auto& [preset, r] : runs) std::printf("  %-44s", preset.c_str());
  std::printf("\n");
  row("fixes", [](const RunResult& r) { return r.policy.fixes.names(); });
  row("verdict", [](const RunResult& r) { return verdict_word(r.verdict); });
  row("at", [](const RunResult& r) { return format_ms(r.verdict.at_ns); });
  row("collective", [](const RunResult& r) {
    return r.verdict.has_collective ? std::string(group_name(r.verdict.group)) + " seq " + std::to_string(r.verdict.seq) : std::string("-");
  });
  for (std::size_t k = 0; k < runs.front().second.ranks.size(); ++k) {
    const std::string name = "rank " + std::to_string(k);
    row(name.c_str(), [&](const RunResult& r) {
      for (const auto& e : r.verdict.entered) {
        if (e.rank == static_cast<int>(k)) return "entered " + std::string(collective_op_name(e.op)) + "(" + std::to_string(e.size) + ")";
      }
      for (const TraceEvent& e : r.log.events()) {
        if (e.kind == EventKind::kSchedule && e.rank == static_cast<int>(k)) {
          return "scheduled at " + format_ms(e.time_ns) + ", L3 hit " + std::to_string(e.b);
        }
      }
      return std::string("-");
    });
  }
  std::printf("\n");
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::cout << "---- " << runs[i].first << " ----\n";
    print_report(std::cout, s, runs[i].second, RunLabel{runs[i].first, walls[i]});
    std::cout << "\n";
  }
  return kExitOk;
}

// A deviation as the user reads it: for a late call, which call it was (the rank's L3 call that
// started at the decision's instant) and how long it then took.
std::string describe_decision(const Decision& d, const Scenario& s, const EventLog& log) {
  const std::string of = std::to_string(d.taken + 1) + " of " + std::to_string(d.alternatives);
  const std::string at = format_ms(d.at_ns) + " rank " + std::to_string(d.rank);
  if (d.kind == ChoiceKind::kOrder) return at + ": same-instant event " + of + " ran first";
  for (const TraceEvent& e : log.events()) {
    if (e.kind != EventKind::kStorageCall || e.rank != d.rank || e.time_ns != d.at_ns) continue;
    const std::string request = e.request >= 0 && static_cast<std::size_t>(e.request) < s.workload.size()
                                    ? s.workload[static_cast<std::size_t>(e.request)].name
                                    : std::to_string(e.request);
    return at + ": " + std::string(storage_op_name(static_cast<StorageOp>(e.a))) + " for " + request + " took explore.late alternative " + of +
           ", lasting " + format_ms(e.b);
  }
  return at + ": an L3 call took explore.late alternative " + of;
}

int cmd_explore(const std::vector<std::string>& args) {
  VariantArgs va;
  std::string path, record = "hcsim-explore.jsonl", target = "any";
  ExploreBounds bounds;
  po::options_description d("explore options");
  d.add_options()("help,h", "show this help")("scenario", po::value(&path), "scenario JSON file");
  add_variant_options(d, va);
  d.add_options()
      ("deviations", po::value(&bounds.deviations_max)->default_value(bounds.deviations_max), "search every schedule with at most N choices other than the first")
      ("depth", po::value(&bounds.depth_max)->default_value(bounds.depth_max), "decision points per schedule open to deviation; later ones take the first")
      ("schedules", po::value(&bounds.schedules_max)->default_value(bounds.schedules_max), "stop after this many runs")
      ("seconds", po::value(&bounds.seconds_max)->default_value(0), "stop after this much wall time (0: no limit)")
      ("target", po::value(&target)->default_value(target), "what to look for: any (a hang or a broken invariant), hang, or a hang kind: "
                                                           "deadlock | collective_mismatch | starvation | lost_worker")
      ("record", po::value(&record)->default_value(record), "write the counterexample, if one is found, as a trace to FILE");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim explore SCENARIO [--preset P] [--fix F]... [--deviations N] [--depth N] [--schedules N] [--seconds S]\n\n"
             "Searches the schedules the scenario allows instead of sampling seeds. Open decisions are the order of one\n"
             "rank's events due at the same instant, and, for each L3 call an explore.late rule of the scenario matches,\n"
             "which of its extra delays it gets (docs/scenario-format.md). The default schedule takes the first of\n"
             "each; the search runs every schedule with at most --deviations other choices, fewest first, and stops a\n"
             "run at a state it already reached. It answers either with the first failure (a hang or a broken\n"
             "invariant) with the fewest deviations, written as a trace that 'hcsim replay' re-runs, or that none is\n"
             "reachable within the bound, with the schedules and distinct states searched. Exit 3 when one is found.\n\n"
             "examples:\n"
             "  hcsim explore scenarios/himamba-sidecar-tick.json --preset pre-fix --target collective_mismatch   # the seed hang\n"
             "  hcsim explore scenarios/himamba-sidecar-tick.json --preset seed-fix --deviations 3\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("explore: missing SCENARIO (see 'hcsim explore --help')");
  if (bounds.deviations_max < 0 || bounds.deviations_max > 64) throw BadInput("--deviations: expected 0 to 64");
  if (bounds.depth_max < 0) throw BadInput("--depth: expected 0 or more");
  if (bounds.schedules_max < 1) throw BadInput("--schedules: expected 1 or more");
  if (!(bounds.seconds_max >= 0)) throw BadInput("--seconds: expected 0 or more");
  if (vm.count("seed")) va.seed = vm["seed"].as<std::uint64_t>();
  const Scenario s = load_scenario_file(path);
  const RunOptions opt = run_options(va);
  const std::string variant = variant_name(va);
  std::function<bool(const RunResult&)> fails = run_fails;
  if (target == "hang") {
    fails = [](const RunResult& run) { return run.verdict.hang(); };
  } else if (target != "any") {
    std::optional<HangKind> kind;
    for (auto k : {HangKind::kDeadlock, HangKind::kCollectiveMismatch, HangKind::kStarvation, HangKind::kLostWorker}) {
      if (hang_kind_name(k) == target) kind = k;
    }
    if (!kind) throw BadInput("--target: expected any, hang, deadlock, collective_mismatch, starvation or lost_worker; got '" + target + "'");
    fails = [k = *kind](const RunResult& run) { return run.verdict.kind == k; };
  }
  const auto t0 = std::chrono::steady_clock::now();
  const ExploreResult r = explore(s, opt, bounds, fails);
  const double wall_s = wall_ms_since(t0) / 1000.0;
  std::printf("explore    %s under %s, policy %s: at most %d deviation(s), depth %d, %lld schedules\n", s.name.c_str(), variant.c_str(),
              std::string(policy_name(opt.policy.value_or(s.policy.policy))).c_str(), bounds.deviations_max, bounds.depth_max,
              static_cast<long long>(bounds.schedules_max));
  std::printf("searched   %lld schedule(s), %lld stopped at a state already reached; %lld distinct state(s); up to %lld decision points "
              "in a schedule; %.2f s\n",
              static_cast<long long>(r.schedules), static_cast<long long>(r.pruned), static_cast<long long>(r.states),
              static_cast<long long>(r.decision_points_max), wall_s);
  if (r.counterexample) {
    const Counterexample& c = *r.counterexample;
    std::printf("found      %s at %s with %d deviation(s) from the default schedule\n", verdict_word(c.result.verdict).c_str(),
                format_ms(c.result.verdict.at_ns).c_str(), c.deviations);
    if (const std::string line = collective_line(c.result.verdict); !line.empty()) std::printf("           %s\n", line.c_str());
    for (std::size_t i = 0; i < c.decisions.size(); ++i) {
      if (c.decisions[i].taken != 0) std::printf("           decision %zu: %s\n", i, describe_decision(c.decisions[i], s, c.result.log).c_str());
    }
    record_trace(record, path, s, c.result, variant, "sim", c.decisions);
    std::printf("trace      %s (hcsim replay %s re-runs it; hcsim export --chrome shows it)\n", record.c_str(), record.c_str());
    return kExitUnexpected;
  }
  const bool whole = !r.schedules_cut;
  const std::string what = target == "any" ? "no hang and no broken invariant" : target == "hang" ? "no hang" : "no " + target;
  const std::string scope = r.exhausted ? "in every schedule the scenario allows (none deviates more than " + std::to_string(r.deviations_done) +
                                              " times)"
                                        : r.deviations_done < 0 ? "found before the bound stopped it, which ended the default schedule's level"
                                                                : "reachable with at most " + std::to_string(r.deviations_done) + " deviation(s)";
  std::printf("%s %s %s%s%s\n", whole ? "certified " : "incomplete", what.c_str(), scope.c_str(),
              whole ? "" : r.time_cut ? " (the time bound stopped the search: raise --seconds)" : " (the schedule bound stopped the search: raise --schedules)",
              r.depth_cut ? "; decision points past --depth took the first alternative" : "");
  return kExitOk;
}

int cmd_shrink(const std::vector<std::string>& args) {
  VariantArgs va;
  std::string path, out = "shrunk.json", record;
  ShrinkBounds bounds;
  po::options_description d("shrink options");
  d.add_options()("help,h", "show this help")("input", po::value(&path), "a scenario JSON file, or a trace (.jsonl) whose scenario to shrink");
  add_variant_options(d, va);
  d.add_options()
      ("out,o", po::value(&out)->default_value(out), "write the smallest failing scenario to FILE")
      ("record", po::value(&record), "also run it and write the run as a trace to FILE")
      ("runs", po::value(&bounds.runs_max)->default_value(bounds.runs_max), "stop after this many runs");
  po::positional_options_description pos;
  pos.add("input", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim shrink SCENARIO|TRACE [--preset P] [--fix F]... [--seed N] [-o OUT.json] [--record OUT.jsonl]\n\n"
             "Finds a smaller scenario that fails the same way: the same hang kind, at a collective of the same group\n"
             "and operations. It drops requests (halves first), delay, jitter and L3 rules and perturbations, lowers\n"
             "the TP size, and shrinks token counts, L3 pages, delays and arrival times, keeping each change the\n"
             "failure survives, until none helps. Prints every change kept, writes the result (with the failure as its\n"
             "expectation) and checks that it fails when read back. A trace is shrunk from its scenario, variant,\n"
             "policy and seed, run by the model (not replayed): it must fail that way.\n\n"
             "examples:\n"
             "  hcsim shrink traces/qwen35-tp4-wait-complete-hang.jsonl -o qwen35-small.json --record qwen35-small.jsonl\n"
             "  hcsim shrink scenarios/himamba-sidecar-lag-tp4.json --preset pre-fix\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("shrink: missing SCENARIO or TRACE (see 'hcsim shrink --help')");
  if (bounds.runs_max < 1) throw BadInput("--runs: expected 1 or more");
  nlohmann::json scenario;
  std::string source = path;
  const bool from_trace = path.size() > 6 && path.ends_with(".jsonl");
  if (from_trace) {
    const TraceRead trace = read_checked_trace(path).trace;
    scenario = nlohmann::json::parse(trace.header.scenario_json);
    source = path + " (its scenario)";
    if (vm["preset"].defaulted() && va.fixes.empty() && va.without.empty()) {
      const VariantArgs recorded = variant_args_of(trace.header.variant);
      va.preset = recorded.preset;
      va.fixes = recorded.fixes;
      va.without = recorded.without;
    }
    if (va.policy.empty()) va.policy = trace.header.policy;
    if (!vm.count("seed")) va.seed = trace.header.seed;
  } else {
    scenario = parse_json(read_bounded_file(path, kScenarioBytesMax, "a scenario is a description, not data"), path);
  }
  if (vm.count("seed")) va.seed = vm["seed"].as<std::uint64_t>();
  RunOptions opt = run_options(va);
  if (va.seed) scenario["seed"] = *va.seed;  // the result carries the seed it fails with
  opt.seed.reset();
  const std::string variant = variant_name(va);
  const auto t0 = std::chrono::steady_clock::now();
  ShrinkResult r = shrink(scenario, source, opt, bounds);
  const std::string policy(policy_name(opt.policy.value_or(r.result.policy.policy)));
  std::printf("shrink     %s under %s, policy %s: %s\n", scenario.value("name", "").c_str(), variant.c_str(), policy.c_str(),
              describe(r.signature).c_str());
  // Successive halvings of one number read as one step: "/delays/0/fixed_us 488000 -> 412 (16 runs kept)".
  for (std::size_t i = 0; i < r.steps.size();) {
    const std::string& step = r.steps[i];
    const auto arrow = step.find(" -> ");
    const auto field_end = arrow == std::string::npos ? std::string::npos : step.rfind(' ', arrow - 1);
    std::size_t j = i + 1;
    if (field_end != std::string::npos) {
      const std::string field = step.substr(0, field_end + 1);
      while (j < r.steps.size() && r.steps[j].starts_with(field) && r.steps[j].find(" -> ") != std::string::npos) ++j;
    }
    if (j - i == 1) {
      std::printf("  kept     %s\n", step.c_str());
    } else {
      const std::string& last = r.steps[j - 1];
      std::printf("  kept     %s%s (%zu steps)\n", step.substr(0, arrow).c_str(), last.substr(last.find(" -> ")).c_str(), j - i);
    }
    i = j;
  }
  auto count = [](const nlohmann::json& s, const char* key) { return s.contains(key) ? s[key].size() : std::size_t{0}; };
  std::printf("result     tp %d, %zu request(s), %zu delay rule(s), %zu L3 object(s)%s; %lld run(s), %.2f s%s\n", r.scenario["tp"].get<int>(),
              count(r.scenario, "requests"), count(r.scenario, "delays"), count(r.scenario, "l3"),
              r.scenario.contains("perturbations") ? ", perturbations kept" : "", static_cast<long long>(r.runs), wall_ms_since(t0) / 1000.0,
              r.runs_cut ? " (the run bound stopped it: --runs)" : "");
  // The result names its failure as its one expectation, and is checked by reading it back.
  r.scenario["name"] = scenario.value("name", "scenario") + "-shrunk";
  r.scenario["description"] = "Shrunk by hcsim shrink from " + path + ": " + describe(r.signature) + " under " + variant + ", " + policy;
  r.scenario["expect"] = nlohmann::json::array({{{"variant", variant}, {"policy", policy}, {"verdict", std::string(hang_kind_name(r.signature.kind))}}});
  {
    std::ofstream f(out, std::ios::binary);
    if (!(f << r.scenario.dump(2) << "\n")) throw BadInput("-o: cannot write " + out);
  }
  const Scenario written = load_scenario_file(out);
  const RunResult again = simulate(written, opt);
  if (!(signature_of(again) == r.signature)) {
    std::cerr << "hcsim: " << out << " does not fail the same way when read back\n";
    return kExitInternal;
  }
  std::printf("wrote      %s: %s at %s (hcsim run %s%s)\n", out.c_str(), verdict_word(again.verdict).c_str(), format_ms(again.verdict.at_ns).c_str(),
              out.c_str(), variant_flags(variant).c_str());
  if (!record.empty()) {
    record_trace(record, out, written, again, variant);
    std::printf("trace      %s (hcsim replay %s)\n", record.c_str(), record.c_str());
  }
  return kExitOk;
}

int cmd_scan(const std::vector<std::string>& args) {
  VariantArgs va;
  std::string path, values;
  int rule = 0;
  po::options_description d("scan options");
  d.add_options()("help,h", "show this help")("scenario", po::value(&path), "scenario JSON file")
      ("rule", po::value(&rule)->default_value(0), "index of the delay rule to vary (in the scenario's /delays)")
      ("values-us", po::value(&values), "FROM:TO:STEP, the fixed delay in microseconds");
  add_variant_options(d, va);
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim scan SCENARIO --values-us FROM:TO:STEP [--rule N] [variant options]\n\n"
             "Re-runs SCENARIO with delay rule N set to each fixed delay and prints the verdict per value,\n"
             "then where the verdict changes: a hang that comes from timing shows a boundary.\n\n"
             "example:\n"
             "  hcsim scan scenarios/himamba-sidecar-lag.json --values-us 0:1000:50 --preset pre-fix\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("scan: missing SCENARIO (see 'hcsim scan --help')");
  if (vm.count("seed")) va.seed = vm["seed"].as<std::uint64_t>();
  long long from = 0, to = 0, step = 0;
  if (std::sscanf(values.c_str(), "%lld:%lld:%lld", &from, &to, &step) != 3 || step <= 0 || to < from || from < 0 ||
      (to - from) / step > 100'000) {
    throw BadInput("--values-us: expected FROM:TO:STEP with 0 <= FROM <= TO, STEP > 0 and at most 100000 steps; got '" + values + "'");
  }
  Scenario s = load_scenario_file(path);
  if (rule < 0 || static_cast<std::size_t>(rule) >= s.delays.size()) {
    throw BadInput(path + ": /delays/" + std::to_string(rule) + ": no such delay rule (the scenario has " + std::to_string(s.delays.size()) + ")");
  }
  const RunOptions opt = run_options(va);
  std::printf("scan of %s, delay rule %d (%s), variant %s\n", s.name.c_str(), rule, describe(s.delays[static_cast<std::size_t>(rule)]).c_str(),
              variant_name(va).c_str());
  std::printf("  %12s  %-28s %-14s %s\n", "delay_us", "verdict", "at", "collective");
  std::optional<bool> previous;
  long long previous_value = 0;
  std::vector<std::string> boundaries;
  for (long long us = from; us <= to; us += step) {
    s.delays[static_cast<std::size_t>(rule)].effect = DelayRule::Effect::kFixed;
    s.delays[static_cast<std::size_t>(rule)].a_ns = us * 1000;
    const RunResult r = simulate(s, opt);
    std::printf("  %12lld  %-28s %-14s %s\n", us, verdict_word(r.verdict).c_str(), format_ms(r.verdict.at_ns).c_str(), collective_line(r.verdict).c_str());
    if (previous && *previous != r.verdict.hang()) {
      boundaries.push_back((r.verdict.hang() ? "hang begins between " : "hang ends between ") + std::to_string(previous_value) + " and " +
                           std::to_string(us) + " us");
    }
    previous = r.verdict.hang();
    previous_value = us;
  }
  if (boundaries.empty()) std::printf("no change of verdict over the range\n");
  for (const auto& b : boundaries) std::printf("%s\n", b.c_str());
  return kExitOk;
}

int cmd_verify(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  po::options_description d("verify options");
  d.add_options()("help,h", "show this help")("scenario", po::value(&paths)->composing(), "scenario JSON files");
  po::positional_options_description pos;
  pos.add("scenario", -1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim verify SCENARIO...\n\n"
             "Runs every expectation each scenario declares (variant, policy, verdict) and prints one line per\n"
             "expectation; exits 3 if any verdict differs.\n\n"
             "example:\n  hcsim verify scenarios/*.json\n")) {
    return kExitOk;
  }
  if (paths.empty()) throw BadInput("verify: no SCENARIO given (see 'hcsim verify --help')");
  std::vector<Scenario> library;
  for (const auto& path : paths) library.push_back(load_scenario_file(path));
  return verify_library(library);
}

int cmd_list(const std::vector<std::string>& args) {
  std::string dir = "scenarios";
  po::options_description d("list options");
  d.add_options()("help,h", "show this help")("scenarios", po::value(&dir)->default_value("scenarios"), "the library directory");
  po::positional_options_description pos;
  pos.add("scenarios", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim list [DIR]\n\n"
             "Lists the scenario library: incident id, name and description, the upstream references, and the\n"
             "verdict each scenario expects per variant (and policy, where it overrides the scenario's).\n")) {
    return kExitOk;
  }
  for (const Scenario& s : load_library(dir)) {
    std::printf("%-4s %-32s tp %-2d %-13s %s\n", s.incident.empty() ? "-" : s.incident.c_str(), s.name.c_str(), s.world.ranks,
                std::string(policy_name(s.policy.policy)).c_str(), s.description.c_str());
    std::string refs;
    for (const auto& u : s.upstream) refs += (refs.empty() ? "" : ", ") + u;
    std::printf("       upstream  %s\n", refs.empty() ? "-" : refs.c_str());
    std::string expects;
    for (const Expectation& e : s.expect) {
      const std::string want = e.any_hang ? "hang" : e.verdict == HangKind::kNone ? "complete" : std::string(hang_kind_name(e.verdict));
      expects += (expects.empty() ? "" : "; ") + e.variant + (e.policy ? " (" + std::string(policy_name(*e.policy)) + ")" : "") + ": " + want;
    }
    std::printf("       expects   %s\n", expects.c_str());
  }
  return kExitOk;
}

int cmd_fixes(const std::vector<std::string>&) {
  std::printf("named fixes, with where their upstream change stands:\n");
  for (const FixInfo& f : all_fixes()) {
    const std::string state = f.state == UpstreamState::kMerged ? "merged " + std::string(f.commit) + " " + std::string(f.date)
                                                                 : std::string(upstream_state_name(f.state)) + " (PR " + std::string(f.date) + ")";
    std::printf("  %-24s %-9s %-42s %s\n", std::string(f.name).c_str(), f.baseline ? "baseline" : "", std::string(f.upstream).c_str(), state.c_str());
    if (!f.scope.empty()) std::printf("  %-24s %-9s where: %s\n", "", "", std::string(f.scope).c_str());
    std::printf("  %-24s %-9s %s\n", "", "", std::string(f.summary).c_str());
  }
  std::printf("\npresets:\n");
  for (const PresetInfo& p : all_presets()) std::printf("  %-16s %-44s %s\n", std::string(p.name).c_str(), p.fixes.names().c_str(), std::string(p.summary).c_str());
  std::printf("\nupstream HiMamba code, by date (a variant with exactly these fixes stands for it; any other is hypothetical):\n");
  for (const UpstreamAt& u : upstream_states()) {
    std::printf("  %s %-11s %-44s %s\n", std::string(u.date).c_str(), std::string(u.commit).c_str(), u.fixes.names().c_str(), std::string(u.what).c_str());
  }
  std::printf("\nBaseline fixes (merged into HiMamba before the modelled era) are in every preset; the presets list what they add.\n"
              "A variant is PRESET[+FIX|~FIX]..., e.g. timeout-bounded+sidecar-hit-sync or pre-fix~completion-race-guard;\n"
              "on the command line: --preset P --fix F --without F.\n");
  return kExitOk;
}


// Options shared by gpu and validate: where and how the real world runs.
struct GpuArgs {
  std::string device = "cuda";
  int ranks_per_gpu = 0;
  std::string data_group = "auto";
  std::int64_t watchdog_ms = 1000;
  std::int64_t page_bytes = 64 * 1024;
};

void add_gpu_options(po::options_description& d, GpuArgs& a) {
  d.add_options()
      ("device", po::value(&a.device)->default_value("cuda"), "cuda | host (host memory, no GPU: the CPU side alone)")
      ("ranks-per-gpu", po::value(&a.ranks_per_gpu)->default_value(0), "ranks placed on each GPU; 0: every rank shares GPU 0")
      ("data-group", po::value(&a.data_group)->default_value("auto"),
       "what carries the forward's collectives: nccl (one communicator per rank; needs --ranks-per-gpu 1),\n"
       "gloo, or auto (nccl where it can run). Policy collectives are on Gloo CPU groups either way")
      ("watchdog-ms", po::value(&a.watchdog_ms)->default_value(1000), "declare a hang when a collective stays open, or nothing progresses, this long")
      ("page-bytes", po::value(&a.page_bytes)->default_value(64 * 1024), "real bytes of a KV page and a sidecar object in memory and on disk (timing follows the scenario)");
}

GpuRunOptions gpu_options(const GpuArgs& a) {
  GpuRunOptions g;
  if (a.device != "cuda" && a.device != "host") throw BadInput("--device: expected cuda or host; got '" + a.device + "'");
  g.device = a.device == "cuda" ? DeviceKind::kCuda : DeviceKind::kHost;
  if (a.ranks_per_gpu < 0) throw BadInput("--ranks-per-gpu: expected 0 or more");
  g.ranks_per_gpu = a.ranks_per_gpu;
  if (a.data_group == "nccl") {
    if (!nccl_built()) throw BadInput("--data-group nccl: this hcsim was built without NCCL (tools/gpu-node.sh pack builds it with NCCL)");
    if (g.device != DeviceKind::kCuda) throw BadInput("--data-group nccl: needs --device cuda");
    if (g.ranks_per_gpu != 1) throw BadInput("--data-group nccl: needs --ranks-per-gpu 1 (NCCL takes one GPU per rank)");
    g.data = DataTransport::kNccl;
  } else if (a.data_group == "gloo") {
    g.data = DataTransport::kGloo;
  } else if (a.data_group != "auto") {
    throw BadInput("--data-group: expected auto, nccl or gloo; got '" + a.data_group + "'");
  }
  const bool may_use_nccl = g.data != DataTransport::kGloo && g.device == DeviceKind::kCuda && g.ranks_per_gpu == 1 && nccl_built();
  if (may_use_nccl && !nccl_environment_problem().empty()) throw BadInput(nccl_environment_problem());
  if (a.watchdog_ms < 10 || a.watchdog_ms > 3'600'000) throw BadInput("--watchdog-ms: expected 10 to 3600000");
  g.watchdog_ns = a.watchdog_ms * 1'000'000;
  if (a.page_bytes < 16 || a.page_bytes % 16 != 0 || a.page_bytes > (std::int64_t{64} << 20)) {
    throw BadInput("--page-bytes: expected a multiple of 16 from 16 to 67108864");
  }
  g.page_bytes = a.page_bytes;
  g.sidecar_bytes = a.page_bytes;
  return g;
}

void print_gpu_section(std::ostream& out, const Scenario& s, const GpuRunResult& g) {
  const ThreadWorldStats& st = g.stats;
  out << "gpu world: " << g.device << "\n";
  out << "  forward's collectives: " << st.data_group << "; policy collectives: Gloo CPU groups\n";
  if (g.mean_collective_round_ns >= 0) {
    out << "  policy collective round: " << g.mean_collective_round_ns / 1'000 << " us (modelled: " << s.world.collective.latency_ns / 1'000
        << " us); worst lag behind the model's clock at a sleep: " << st.model_lag_max_ns / 1'000 << " us";
    if (st.sleeps_behind_model > 0) out << ", " << st.sleeps_behind_model << " sleep(s) could not absorb it: the model's pace was lost";
    out << "\n";
  }
  out << "  L3 files: " << st.storage_calls << " calls, " << st.pages_read << " objects read, " << st.pages_written << " written, "
      << st.pages_corrupt << " corrupt; " << st.storage_overruns << " call(s) slower than the model";
  if (st.storage_overruns > 0) out << " (worst by " << st.storage_overrun_max_ns / 1'000 << " us)";
  out << "\n  forwards: " << st.forwards << ", pages loaded back to the device: " << st.load_back_pages << "\n";
  out << "  host slots leaked at exit: " << g.leaked_slots_at_exit << "\n";
  if (!st.watchdog_fired) return;
  out << "watchdog: fired at " << st.watchdog_fired_ns / 1'000'000 << " ms: " << st.watchdog_reason << "\n";
  if (!st.data_group_aborted.empty()) out << "  " << st.data_group_aborted << ", and closed the Gloo groups\n";
  out << "flight recorder (last collectives per rank):\n";
  for (const auto& ring : g.flight) {
    const std::size_t from = ring.size() > 4 ? ring.size() - 4 : 0;
    for (std::size_t i = from; i < ring.size(); ++i) {
      const CollectiveRecord& c = ring[i];
      out << "  rank " << c.rank << " " << group_name(c.group) << " seq " << c.seq << " " << collective_op_name(c.op) << "(" << c.size
          << ") entered " << c.enter_ns / 1'000 << " us, " << (c.exit_ns < 0 ? std::string("never left") : "left " + std::to_string(c.exit_ns / 1'000) + " us") << "\n";
    }
  }
  if (st.actors_abandoned > 0) out << "  " << st.actors_abandoned << " actor thread(s) could not be stopped; the process exits\n";
}

int cmd_gpu(const std::vector<std::string>& args) {
  VariantArgs va;
  GpuArgs ga;
  std::string path, record, dot, expect;
  po::options_description d("gpu options");
  d.add_options()("help,h", "show this help")("scenario", po::value(&path), "scenario JSON file");
  add_variant_options(d, va);
  add_gpu_options(d, ga);
  d.add_options()
      ("record", po::value(&record), "write the run as a trace to FILE (a hang is always recorded: default hcsim-gpu-hang.jsonl)")
      ("dot", po::value(&dot), "write the wait-for graph to FILE")
      ("json", "print the report as JSON")
      ("expect", po::value(&expect), "hang | complete: exit 3 if the verdict differs");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim gpu SCENARIO [options]\n\n"
             "Runs SCENARIO in the real world: one OS thread per actor, policy collectives on Gloo CPU groups over\n"
             "loopback, the forward as a CUDA kernel with load-back of its host hits, L3 as files read into pinned\n"
             "memory with the scenario's delays as real waits. A watchdog reads the flight recorder: when a\n"
             "collective stays open or nothing progresses for --watchdog-ms, it prints the simulator's diagnosis,\n"
             "aborts the groups, writes the trace and exits with code 4. The trace replays in the simulator.\n\n"
             "examples:\n"
             "  hcsim gpu scenarios/himamba-sidecar-lag.json --preset pre-fix     # hangs; the watchdog explains\n"
             "  hcsim gpu scenarios/himamba-sidecar-lag.json --preset seed-fix --record run.jsonl\n"
             "  hcsim replay hcsim-gpu-hang.jsonl                                 # the GPU hang in the simulator\n"
             "  hcsim gpu scenarios/himamba-sidecar-lag.json --device host        # no GPU: CPU side only\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("gpu: missing SCENARIO (see 'hcsim gpu --help')");
  if (vm.count("seed")) va.seed = vm["seed"].as<std::uint64_t>();
  if (!expect.empty() && expect != "hang" && expect != "complete") throw BadInput("--expect: expected hang or complete; got '" + expect + "'");
  const Scenario s = load_scenario_file(path);
  const RunOptions opt = run_options(va);
  const auto t0 = std::chrono::steady_clock::now();
  const GpuRunResult g = run_on_gpu(s, opt, gpu_options(ga));
  const RunLabel label{variant_name(va) + " (gpu)", wall_ms_since(t0)};
  if (vm.count("json")) {
    std::cout << report_json(s, g.run, label).dump(2) << "\n";
  } else {
    print_report(std::cout, s, g.run, label);
    print_gpu_section(std::cout, s, g);
  }
  if (!dot.empty()) {
    std::ofstream f(dot);
    if (!(f << g.run.wait_for_dot)) throw BadInput("--dot: cannot write " + dot);
  }
  if (record.empty() && g.stats.watchdog_fired) record = "hcsim-gpu-hang.jsonl";
  if (!record.empty()) {
    record_trace(record, path, s, g.run, variant_name(va), "gpu");
    std::cout << "trace: " << record << "\n";
  }
  std::cout.flush();
  int code = !expect.empty() && (expect == "hang") != g.run.verdict.hang() ? kExitUnexpected : kExitOk;
  if (g.stats.watchdog_fired) code = kExitWatchdog;
  if (g.stats.actors_abandoned > 0) std::_Exit(code);  // threads stuck in calls nothing interrupts
  return code;
}

// What validate compares per request and rank: the termination decisions in order.
std::map<std::pair<RequestId, int>, std::vector<std::string>> decisions_of(const RunResult& r) {
  std::map<std::pair<RequestId, int>, std::vector<std::string>> out;
  for (const TraceEvent& e : r.log.events()) {
    std::string d;
    switch (e.kind) {
      case EventKind::kRegister: d = "register"; break;
      case EventKind::kRegisterSkip: d = "skip(" + std::to_string(e.a) + ")"; break;
      case EventKind::kRevoke: d = "revoke"; break;
      case EventKind::kTerminate: d = "terminate"; break;
      case EventKind::kOpEnd: d = "end(" + std::string(op_end_name(static_cast<OpEnd>(e.a))) + ")"; break;
      case EventKind::kSchedule: d = "schedule(L3 " + std::to_string(e.b) + ")"; break;
      default: continue;
    }
    out[{e.request, e.rank}].push_back(std::move(d));
  }
  return out;
}

TimeNs first_time(const RunResult& r, EventKind kind, RequestId request, int rank) {
  for (const TraceEvent& e : r.log.events()) {
    if (e.kind == kind && e.request == request && e.rank == rank) return e.time_ns;
  }
  return -1;
}

// How many times validate runs a GPU run that lost the model's pace and got another verdict.
constexpr int kValidateAttemptsMax = 3;

// One validate line: the simulator's run against the GPU backend's.
struct WorldComparison {
  std::string status;       // same | DIFFER | unpaced
  std::string why;          // empty when the same
  std::string gpu_verdict;
  bool lost_pace = false;   // the real run fell behind the model's clock, or its I/O outlasted the model
  TimeNs round_ns = 0;      // the measured policy collective round
  TimeNs worst_ns = 0;      // the largest difference of a prefetch end or schedule time
};

WorldComparison compare_worlds(const Scenario& s, const RunResult& sim, const GpuRunResult& gpu) {
  WorldComparison c;
  c.gpu_verdict = verdict_word(gpu.run.verdict);
  c.round_ns = gpu.mean_collective_round_ns;
  const auto ds = decisions_of(sim);
  const auto dg = decisions_of(gpu.run);
  if (sim.verdict.kind != gpu.run.verdict.kind) {
    c.why = "verdict sim " + verdict_word(sim.verdict) + ", gpu " + verdict_word(gpu.run.verdict);
  } else if (sim.verdict.has_collective && (sim.verdict.group != gpu.run.verdict.group || sim.verdict.seq != gpu.run.verdict.seq)) {
    c.why = "collective sim " + std::string(group_name(sim.verdict.group)) + " seq " + std::to_string(sim.verdict.seq) + ", gpu " +
            std::string(group_name(gpu.run.verdict.group)) + " seq " + std::to_string(gpu.run.verdict.seq);
  } else if (ds != dg) {
    for (const auto& [key, seq] : ds) {
      auto it = dg.find(key);
      if (it == dg.end() || it->second != seq) {
        auto joined = [](const std::vector<std::string>& v) {
          std::string out;
          for (const std::string& d : v) out += (out.empty() ? "" : " ") + d;
          return out.empty() ? std::string("none") : out;
        };
        c.why = "decisions of " + s.workload[static_cast<std::size_t>(key.first)].name + " on rank " + std::to_string(key.second) +
                ": sim [" + joined(seq) + "], gpu [" + (it == dg.end() ? std::string("none") : joined(it->second)) + "]";
        break;
      }
    }
    if (c.why.empty()) c.why = "the gpu run made decisions the simulator did not";
  }
  // Real I/O that outlasted the model moves a transfer's end past the pass the model ends it before.
  c.lost_pace = gpu.stats.sleeps_behind_model > 0 || gpu.stats.storage_overruns > 0;
  c.status = c.why.empty() ? "same" : "DIFFER";
  if (!c.why.empty() && c.lost_pace) {
    // Past the verdict, the comparison needs the model's pace; a machine whose collectives are too
    // slow for the scenario cannot keep it, and that is not a difference between the worlds.
    if (sim.verdict.kind == gpu.run.verdict.kind) c.status = "unpaced";
    c.why += "; a Gloo round of " + std::to_string(gpu.mean_collective_round_ns / 1'000) + " us (modelled " +
             std::to_string(s.world.collective.latency_ns / 1'000) + " us) left the run up to " +
             std::to_string(gpu.stats.model_lag_max_ns / 1'000) + " us behind the model's clock";
    if (gpu.stats.storage_overruns > 0) c.why += ", and " + std::to_string(gpu.stats.storage_overruns) + " L3 call(s) outlasted the model";
  }
  for (const auto& [key, seq] : ds) {
    for (EventKind k : {EventKind::kOpEnd, EventKind::kSchedule}) {
      const TimeNs a = first_time(sim, k, key.first, key.second);
      const TimeNs b = first_time(gpu.run, k, key.first, key.second);
      if (a >= 0 && b >= 0) c.worst_ns = std::max(c.worst_ns, b > a ? b - a : a - b);
    }
  }
  return c;
}

int cmd_validate(const std::vector<std::string>& args) {
  GpuArgs ga;
  std::vector<std::string> paths;
  std::vector<int> tps;
  po::options_description d("validate options");
  d.add_options()("help,h", "show this help")("scenario", po::value(&paths)->composing(), "scenario JSON files");
  d.add_options()("tp", po::value(&tps)->multitoken(),
                  "run every scenario at each of these TP sizes instead of its own, e.g. --tp 2 4 8; a scenario naming a\n"
                  "rank the size lacks is listed as skipped");
  add_gpu_options(d, ga);
  po::positional_options_description pos;
  pos.add("scenario", -1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim validate SCENARIO... [options]\n\n"
             "Runs every expectation (variant and policy) each scenario declares in the simulator and on the GPU\n"
             "backend, and compares per request and rank the sequence of termination decisions (register, skip,\n"
             "revoke, terminate, terminal state, schedule with its L3 tokens), which must be identical, and the\n"
             "verdicts, which must agree. Prefetch end and schedule times are reported with their difference.\n"
             "The real world keeps the model's pace: a scheduler's sleep absorbs a real collective's excess over\n"
             "the modelled cost, so passes, and collective sequence numbers, line up. Where the sleeps could not\n"
             "absorb it (this machine's Gloo round is too slow for the scenario) and only the decisions or the\n"
             "sequence differ, the run is listed as 'unpaced' with the measured round and lag, not as a difference;\n"
             "one that lost the pace and got another verdict is run again, up to 3 times in all.\n"
             "Exit 3 if any run differs.\n\n"
             "examples:\n"
             "  hcsim validate scenarios/himamba-sidecar-lag.json\n"
             "  hcsim validate scenarios/*.json --device host\n"
             "  hcsim validate scenarios/*.json --ranks-per-gpu 1 --tp 2 4 8   # a node of 8 GPUs: the forward on NCCL\n")) {
    return kExitOk;
  }
  if (paths.empty()) throw BadInput("validate: missing SCENARIO (see 'hcsim validate --help')");
  const GpuRunOptions gopt = gpu_options(ga);
  int differ = 0;
  int unpaced = 0;
  int runs = 0;
  for (const int tp : tps) {
    if (tp < 1 || tp > limit_value(Limit::kRanks)) {
      throw BadInput("--tp: expected 1 to " + std::to_string(limit_value(Limit::kRanks)) + "; got " + std::to_string(tp) + " " + limit_hint(Limit::kRanks));
    }
  }
  // Every scenario is read before any run: a bad file fails the command at once.
  std::vector<Scenario> scenarios;
  int skipped = 0;
  for (const std::string& path : paths) {
    Scenario own = load_scenario_file(path);
    if (tps.empty()) scenarios.push_back(std::move(own));
    for (const int tp : tps) {
      try {
        scenarios.push_back(load_scenario_file_at_tp(path, tp));
      } catch (const ScenarioError& e) {  // good at its own size: this size lacks a rank it names
        std::printf("skipped %s: %s\n", path.c_str(), e.what());
        ++skipped;
      }
    }
  }
  for (const Scenario& s : scenarios) {
    for (const Expectation& e : s.expect) {
      RunOptions o;
      o.fixes = e.fixes;
      o.policy = e.policy;
      const RunResult sim = simulate(s, o);
      WorldComparison c;
      int attempts = 0;
      // A run that lost the model's pace can end with another verdict (a transfer landing on the
      // other side of a termination check). That says nothing of the policy, so it is run again.
      bool abandoned = false;
      do {
        ++attempts;
        const GpuRunResult gpu = run_on_gpu(s, o, gopt);
        c = compare_worlds(s, sim, gpu);
        abandoned = gpu.stats.actors_abandoned > 0;
      } while (!abandoned && c.status == "DIFFER" && c.lost_pace && attempts < kValidateAttemptsMax);
      ++runs;
      differ += c.status == "DIFFER" ? 1 : 0;
      unpaced += c.status == "unpaced" ? 1 : 0;
      if (attempts > 1) c.why += (c.why.empty() ? "" : "; ") + std::to_string(attempts) + " attempts: the earlier lost the model's pace";
      std::printf("%-7s %-34s tp %d %-16s %-13s %-20s round %3lld us, times within %.2f ms%s%s\n", c.status.c_str(), s.name.c_str(), s.world.ranks,
                  e.variant.c_str(), std::string(policy_name(e.policy.value_or(s.policy.policy))).c_str(), c.gpu_verdict.c_str(),
                  static_cast<long long>(c.round_ns / 1'000), static_cast<double>(c.worst_ns) / 1e6, c.why.empty() ? "" : ": ", c.why.c_str());
      std::fflush(stdout);
      if (abandoned) {
        std::printf("validate: actor threads of the last gpu run could not be stopped; ending here after %d run(s), %d differ\n", runs, differ);
        std::fflush(stdout);
        std::_Exit(kExitInternal);
      }
    }
  }
  std::printf("%d run(s) in both worlds, %d differ, %d compared on the verdict alone (unpaced)", runs, differ, unpaced);
  if (skipped > 0) std::printf(", %d scenario size(s) skipped", skipped);
  std::printf("\n");
  return differ == 0 ? kExitOk : kExitUnexpected;
}

std::pair<int, int> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  int k = 0, n = 0;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    std::size_t used = 0;
    k = std::stoi(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("K");
    n = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("N");
  } catch (const std::exception&) {
    throw BadInput("--shard: expected K/N, e.g. 2/4; got '" + text + "'");
  }
  if (n < 1 || n > 100000 || k < 1 || k > n) throw BadInput("--shard: expected 1 <= K <= N <= 100000; got '" + text + "'");
  return {k, n};
}

int cmd_sweep(const std::vector<std::string>& args) {
  std::string grid_path, out, shard = "1/1";
  int jobs = 0;
  po::options_description d("sweep options");
  d.add_options()("help,h", "show this help")("grid", po::value(&grid_path), "grid JSON file (docs/sweep-format.md)")
      ("out,o", po::value(&out), "write PREFIX.jsonl, PREFIX.csv and PREFIX.summary.md (default: the grid's name, here)")
      ("jobs,j", po::value(&jobs)->default_value(0), "threads; 0: all cores")
      ("shard", po::value(&shard)->default_value("1/1"), "run only shard K of N: the runs whose number is K-1 modulo N")
      ("wall-time", "add each run's wall time to the rows (the files then differ from run to run)")
      ("quiet,q", "no progress");
  po::positional_options_description pos;
  pos.add("grid", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim sweep GRID.json [options]\n\n"
             "Runs every point of GRID (axes: the variant, or any scenario field by JSON pointer) for every seed,\n"
             "on all cores, and appends one row per run, in run order, to PREFIX.jsonl and PREFIX.csv: the\n"
             "parameters, the verdict and hang kind, broken invariants, time from arrival to schedule (p50, p99),\n"
             "tokens loaded from L3, agreed L3 tokens not published (l3_lost_tokens), KV bytes read then discarded, starved\n"
             "requests, events. The files depend only on the grid and seeds, not on -j or --shard. A killed sweep\n"
             "started again with the same --out continues where its files end. At the end, a table per (policy,\n"
             "variant) with hang rates and 95% Wilson intervals, also written as PREFIX.summary.md.\n\n"
             "examples:\n"
             "  hcsim sweep grids/seed-family.json -o results/seed-family\n"
             "  hcsim sweep grids/seed-family.json -o shard-2 --shard 2/4     # one of four machines\n"
             "  hcsim merge -o results/seed-family shard-1 shard-2 shard-3 shard-4\n")) {
    return kExitOk;
  }
  if (grid_path.empty()) throw BadInput("sweep: missing GRID (see 'hcsim sweep --help')");
  if (jobs < 0 || jobs > 1024) throw BadInput("--jobs: expected 0 to 1024");
  const SweepGrid grid = load_sweep_grid(grid_path);
  if (out.empty()) out = std::filesystem::path(grid_path).stem().string();
  SweepConfig c;
  c.grid = &grid;
  c.out_prefix = out;
  c.jobs = jobs > 0 ? jobs : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::tie(c.shard, c.shards) = parse_shard(shard);
  c.wall_time = vm.count("wall-time") > 0;
  c.progress = vm.count("quiet") ? nullptr : stderr;
  std::fprintf(stderr, "sweep: %zu point(s) x %lld seed(s) = %lld runs%s, %d thread(s) -> %s.jsonl, %s.csv\n", grid.points.size(),
               static_cast<long long>(grid.seeds), static_cast<long long>(grid.runs()), c.shards > 1 ? (", shard " + shard).c_str() : "", c.jobs,
               out.c_str(), out.c_str());
  const SweepStats st = run_sweep(c);
  if (st.resumed > 0) std::fprintf(stderr, "sweep: %lld run(s) were already in the files; ran the other %lld\n", static_cast<long long>(st.resumed),
                                   static_cast<long long>(st.ran));
  std::fprintf(stderr, "sweep: %lld run(s) in %.2f s: %.0f runs/s, %.0f runs/min\n", static_cast<long long>(st.ran), st.wall_s,
               st.wall_s > 0 ? static_cast<double>(st.ran) / st.wall_s : 0.0, st.wall_s > 0 ? 60.0 * static_cast<double>(st.ran) / st.wall_s : 0.0);
  if (c.shards == 1) write_summary(read_sweep_rows(out + ".jsonl"), std::cout, out + ".summary.md");
  return kExitOk;
}

int cmd_merge(const std::vector<std::string>& args) {
  std::vector<std::string> shards;
  std::string out;
  po::options_description d("merge options");
  d.add_options()("help,h", "show this help")("shard", po::value(&shards)->composing(), "shard output PREFIX (its .jsonl and .csv)")
      ("out,o", po::value(&out), "write PREFIX.jsonl, PREFIX.csv and PREFIX.summary.md");
  po::positional_options_description pos;
  pos.add("shard", -1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim merge -o PREFIX SHARD_PREFIX...\n\n"
             "Joins the outputs of 'hcsim sweep --shard K/N' into the files the unsharded sweep writes, byte for\n"
             "byte. Refuses shards of different grids, a run in two shards, and runs in none (a shard missing or\n"
             "unfinished: rerun it, it resumes).\n\n"
             "example:\n"
             "  hcsim merge -o results/seed-family shard-1 shard-2 shard-3 shard-4\n")) {
    return kExitOk;
  }
  if (out.empty()) throw BadInput("merge: missing -o PREFIX (see 'hcsim merge --help')");
  if (shards.empty()) throw BadInput("merge: no shard outputs given (see 'hcsim merge --help')");
  try {
    merge_sweeps(shards, out);
  } catch (const std::runtime_error& e) {
    throw BadInput(std::string("merge: ") + e.what());
  }
  write_summary(read_sweep_rows(out + ".jsonl"), std::cout, out + ".summary.md");
  return kExitOk;
}

int cmd_plot(const std::vector<std::string>& args) {
  std::string results, out;
  std::vector<std::string> heatmap, where;
  po::options_description d("plot options");
  d.add_options()("help,h", "show this help")("results", po::value(&results), "a sweep's PREFIX.jsonl")
      ("heatmap", po::value(&heatmap)->multitoken(), "X Y: hang rate over two fields (axis names, or policy, variant, tp, page_size)")
      ("tradeoff", "time to schedule against KV read then discarded, a point per (policy, variant)")
      ("where", po::value(&where)->composing(), "FIELD=VALUE: only rows with this value (repeatable)")
      ("out,o", po::value(&out), "the SVG file to write");
  po::positional_options_description pos;
  pos.add("results", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim plot RESULTS.jsonl (--heatmap X Y | --tradeoff) [--where FIELD=VALUE]... -o FILE.svg\n\n"
             "Draws a figure from a sweep's results as a self-contained SVG. A heatmap shows the hang rate, its 95%\n"
             "Wilson interval and the run count per pair of values of two fields, other fields pooled unless fixed\n"
             "with --where. The trade-off plot puts each (policy, variant) at its p99 time to schedule and its KV\n"
             "bytes read then discarded per run; a hollow mark means some of its runs hang.\n\n"
             "examples:\n"
             "  hcsim plot results/seed-family.jsonl --heatmap /delays/0/fixed_us variant --where policy=timeout -o hang.svg\n"
             "  hcsim plot results/seed-family.jsonl --tradeoff --where /tp=2 -o tradeoff.svg\n")) {
    return kExitOk;
  }
  if (results.empty()) throw BadInput("plot: missing RESULTS (see 'hcsim plot --help')");
  if (out.empty()) throw BadInput("plot: missing -o FILE.svg");
  if (heatmap.empty() == (vm.count("tradeoff") == 0)) throw BadInput("plot: give one of --heatmap X Y and --tradeoff");
  if (!heatmap.empty() && heatmap.size() != 2) throw BadInput("--heatmap: expected two fields, X and Y");
  RowFilters filters;
  for (const std::string& w : where) {
    const auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0) throw BadInput("--where: expected FIELD=VALUE; got '" + w + "'");
    filters.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  std::string svg;
  try {
    const SweepRows rows = read_sweep_rows(results);
    svg = heatmap.empty() ? tradeoff_svg(rows, filters) : hang_heatmap_svg(rows, heatmap[0], heatmap[1], filters);
  } catch (const std::runtime_error& e) {
    throw BadInput("plot: " + results + ": " + e.what());
  }
  std::ofstream f(out);
  if (!(f << svg)) throw BadInput("plot: cannot write " + out);
  std::printf("wrote %s\n", out.c_str());
  return kExitOk;
}


// The usage, with the limits' defaults as this build has them.
std::string usage() {
  std::string limits;
  for (int i = 0; i < kLimitCount; ++i) {
    const auto l = static_cast<Limit>(i);
    std::string entry = std::string(limit_name(l)) + "=" + std::to_string(limit_default(l));
    entry.resize(std::max<std::size_t>(entry.size() + 2, 20), ' ');
    limits.append("  ").append(entry).append(limit_description(l)).append("\n");
  }
  std::string text = kUsage;
  text.replace(text.find("%LIMITS%"), 8, limits);
  return text;
}

// Takes every "--limit NAME=N" (or "--limit=NAME=N") out of `args` and sets it.
void take_limits(std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size();) {
    std::string assignment;
    if (args[i] == "--limit") {
      if (i + 1 == args.size()) throw BadInput("--limit: expected NAME=VALUE after it (see 'hcsim --help')");
      assignment = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    } else if (args[i].starts_with("--limit=")) {
      assignment = args[i].substr(8);
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
      continue;
    }
    if (const std::string error = set_limit(assignment); !error.empty()) throw BadInput(error);
  }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // the sanitizers reserve terabytes of shadow memory up front
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// The memory limit, for the simulator's commands: the GPU backend's drivers map memory of their own.
void limit_memory(const std::string& command) {
  const std::int64_t mib = limit_value(Limit::kMemoryMib);
  if (mib == 0 || kSanitized || command == "gpu" || command == "validate" || command == "bench") return;
  const rlim_t bytes = static_cast<rlim_t>(mib) << 20;
  rlimit current{};
  if (getrlimit(RLIMIT_DATA, &current) != 0 || (current.rlim_max != RLIM_INFINITY && current.rlim_max < bytes)) return;
  const rlimit wanted{bytes, current.rlim_max};
  setrlimit(RLIMIT_DATA, &wanted);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    take_limits(args);
  } catch (const BadInput& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage();
    return args.empty() ? kExitBadInput : kExitOk;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  limit_memory(command);
  try {
    if (command == "run") return cmd_run(args);
    if (command == "demo") return cmd_demo(args);
    if (command == "scan") return cmd_scan(args);
    if (command == "explore") return cmd_explore(args);
    if (command == "shrink") return cmd_shrink(args);
    if (command == "verify") return cmd_verify(args);
    if (command == "list") return cmd_list(args);
    if (command == "replay") return cmd_replay(args);
    if (command == "export") return cmd_export(args);
    if (command == "bench") return cmd_bench(args);
    if (command == "fixes") return cmd_fixes(args);
    if (command == "gpu") return cmd_gpu(args);
    if (command == "validate") return cmd_validate(args);
    if (command == "sweep") return cmd_sweep(args);
    if (command == "merge") return cmd_merge(args);
    if (command == "plot") return cmd_plot(args);
    std::cerr << "hcsim: unknown command '" << command << "'\n\n" << usage();
    return kExitBadInput;
  } catch (const ScenarioError& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const TraceError& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const DeviceUnavailable& e) {
    std::cerr << "hcsim: " << e.what() << " (--device host runs without a GPU)\n";
    return kExitBadInput;
  } catch (const BadInput& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const po::error& e) {
    std::cerr << "hcsim " << command << ": " << e.what() << " (see 'hcsim " << command << " --help')\n";
    return kExitBadInput;
  } catch (const std::bad_alloc&) {
    std::cerr << "hcsim: out of memory: the run needs more than " << limit_value(Limit::kMemoryMib) << " MiB " << limit_hint(Limit::kMemoryMib)
              << ", or than the machine has\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "hcsim: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}
