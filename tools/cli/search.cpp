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

#include "sim/explore.h"
#include "run/input_file.h"
#include "run/json_node.h"
#include "run/limits.h"
#include "sim/shrink.h"
#include "tools/report.h"

namespace hcsim::cli {

namespace {

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

}  // namespace

int cmd_explore(const Args& args) {
  VariantArgs va;
  std::string path, record, target = "any";
  ExploreBounds bounds;
  po::options_description d("explore options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenario", po::value(&path)->value_name("SCENARIO"), "scenario JSON file ('-': standard input)");
  add_variant_options(d, va);
  d.add_options()
      ("deviations", po::value(&bounds.deviations_max)->default_value(bounds.deviations_max)->value_name("N"),
       "search every schedule with at most N choices other than the first")
      ("depth", po::value(&bounds.depth_max)->default_value(bounds.depth_max)->value_name("N"),
       "decision points per schedule open to deviation; later ones take the first")
      ("schedules", po::value(&bounds.schedules_max)->default_value(bounds.schedules_max)->value_name("N"), "stop after this many runs")
      ("seconds", po::value(&bounds.seconds_max)->default_value(0)->value_name("S"), "stop after this much wall time (0: no limit)")
      ("target", po::value(&target)->default_value(target)->value_name("WHAT"),
       "what to look for: any (a hang or a broken invariant), hang, or a hang kind: deadlock | collective_mismatch | starvation | lost_worker")
      ("record", po::value(&record)->value_name("FILE"),
       "write the counterexample, if one is found, as a trace to FILE (default: results/explore-NAME.jsonl, NAME the scenario's)");
  add_output_options(d);
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
             "reachable within the bound, with the schedules and distinct states searched.\n\n"
             "exit codes: 0 certified (none within the bound), 3 found (the trace is written), 5 the --schedules or\n"
             "--seconds bound stopped the search first (no answer: raise it).\n\n"
             "examples:\n"
             "  ./build/hcsim explore scenarios/himamba-sidecar-tick.json --preset pre-fix --target collective_mismatch   # the seed hang\n"
             "  ./build/hcsim explore scenarios/himamba-sidecar-tick.json --preset seed-fix --deviations 3\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("explore: missing SCENARIO (see 'hcsim explore --help')");
  if (bounds.deviations_max < 0 || bounds.deviations_max > 64) throw BadInput("--deviations: expected 0 to 64");
  if (bounds.depth_max < 0) throw BadInput("--depth: expected 0 or more");
  if (bounds.schedules_max < 1) throw BadInput("--schedules: expected 1 or more");
  if (!(bounds.seconds_max >= 0)) throw BadInput("--seconds: expected 0 or more");
  take_seed(vm, va);
  refuse_trace(path, "explore", "hcsim replay " + path);
  const Scenario s = load_scenario_file(path);
  const RunOptions opt = run_options(va);
  const std::string variant = variant_name(va);
  const Output o = output_options(vm);
  if (record.empty()) record = default_output("explore-" + safe_file_name(s.name) + ".jsonl");
  std::FILE* report = report_stream({record}, o.json);
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
  Progress progress(o.progress_stream(), bounds.schedules_max, "schedules", "schedules, to the --schedules bound");
  const ExploreResult r = explore(s, opt, bounds, fails, [&](std::int64_t done) { progress.update(done); });
  progress.finish();
  const double wall_s = wall_ms_since(t0) / 1000.0;
  const std::string policy(policy_name(opt.policy.value_or(s.policy.policy)));
  const std::string what = target == "any" ? "no hang and no broken invariant" : target == "hang" ? "no hang" : "no " + target;
  const std::string scope = r.exhausted ? "in every schedule the scenario allows (none deviates more than " + std::to_string(r.deviations_done) +
                                              " times)"
                                        : r.schedules == 0 ? "found: the bound stopped the search before its first schedule"
                                        : r.deviations_done < 0 ? "found before the bound stopped it, which ended the default schedule's level"
                                                                : "reachable with at most " + std::to_string(r.deviations_done) + " deviation(s)";
  const std::string answer = r.counterexample ? "found" : r.schedules_cut ? "bound_reached" : "certified";
  const int code = r.counterexample ? kExitUnexpected : r.schedules_cut ? kExitBoundReached : kExitOk;
  if (r.counterexample) record_trace(record, path, s, r.counterexample->result, variant, "sim", r.counterexample->decisions);
  if (o.json) {
    nlohmann::json j = {{"scenario", s.name}, {"variant", variant}, {"policy", policy}, {"target", target},
                        {"bounds", {{"deviations", bounds.deviations_max}, {"depth", bounds.depth_max}, {"schedules", bounds.schedules_max},
                                    {"seconds", bounds.seconds_max}}},
                        {"answer", answer}, {"schedules", r.schedules}, {"pruned", r.pruned}, {"states", r.states},
                        {"decision_points_max", r.decision_points_max}, {"depth_cut", r.depth_cut}, {"time_cut", r.time_cut}, {"wall_s", wall_s}};
    if (r.counterexample) {
      const Counterexample& c = *r.counterexample;
      nlohmann::json decisions = nlohmann::json::array();
      for (std::size_t i = 0; i < c.decisions.size(); ++i) {
        if (c.decisions[i].taken != 0) decisions.push_back({{"index", i}, {"what", describe_decision(c.decisions[i], s, c.result.log)}});
      }
      j["found"] = {{"verdict", std::string(hang_kind_name(c.result.verdict.kind))}, {"at_ms", static_cast<double>(c.result.verdict.at_ns) / 1e6},
                    {"collective", collective_line(c.result.verdict)}, {"deviations", c.deviations}, {"decisions", decisions}, {"trace", record}};
    } else {
      j["scope"] = what + " " + scope;
    }
    print_json(j);
    return code;
  }
  std::fprintf(report, "explore    %s under %s, policy %s: at most %d deviation(s), depth %d, %lld schedules\n", s.name.c_str(), variant.c_str(),
              policy.c_str(), bounds.deviations_max, bounds.depth_max, static_cast<long long>(bounds.schedules_max));
  std::fprintf(report, "searched   %lld schedule(s), %lld stopped at a state already reached; %lld distinct state(s); up to %lld decision points "
              "in a schedule; %.2f s\n",
              static_cast<long long>(r.schedules), static_cast<long long>(r.pruned), static_cast<long long>(r.states),
              static_cast<long long>(r.decision_points_max), wall_s);
  if (r.counterexample) {
    const Counterexample& c = *r.counterexample;
    std::fprintf(report, "found      %s at %s with %d deviation(s) from the default schedule\n", verdict_word(c.result.verdict).c_str(),
                format_ms(c.result.verdict.at_ns).c_str(), c.deviations);
    if (const std::string line = collective_line(c.result.verdict); !line.empty()) std::fprintf(report, "           %s\n", line.c_str());
    for (std::size_t i = 0; i < c.decisions.size(); ++i) {
      if (c.decisions[i].taken != 0) std::fprintf(report, "           decision %zu: %s\n", i, describe_decision(c.decisions[i], s, c.result.log).c_str());
    }
    std::fprintf(report, "trace      %s (hcsim replay %s re-runs it; hcsim export --chrome shows it)\n", record.c_str(), record.c_str());
    return code;
  }
  std::fprintf(report, "%s %s %s%s%s\n", r.schedules_cut ? "incomplete" : "certified ", what.c_str(), scope.c_str(),
              !r.schedules_cut ? "" : r.time_cut ? " (the time bound stopped the search: raise --seconds)" : " (the schedule bound stopped the search: raise --schedules)",
              r.depth_cut ? "; decision points past --depth took the first alternative" : "");
  return code;
}
int cmd_shrink(const Args& args) {
  VariantArgs va;
  std::string path, out, record;
  ShrinkBounds bounds;
  po::options_description d("shrink options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")
      ("input", po::value(&path)->value_name("INPUT"), "a scenario JSON file ('-': standard input), or a trace (.jsonl) whose scenario to shrink");
  add_variant_options(d, va);
  d.add_options()
      ("out,o", po::value(&out)->value_name("FILE"), "write the smallest failing scenario to FILE (default: results/NAME-shrunk.json)")
      ("record", po::value(&record)->value_name("FILE"), "also run it and write the run as a trace to FILE")
      ("runs", po::value(&bounds.runs_max)->default_value(bounds.runs_max)->value_name("N"), "stop after this many runs")
      ("json", "print the answer as JSON");
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
             "  ./build/hcsim shrink traces/qwen35-tp4-wait-complete-hang.jsonl -o results/qwen35-small.json --record results/qwen35-small.jsonl\n"
             "  ./build/hcsim shrink scenarios/himamba-sidecar-lag-tp4.json --preset pre-fix\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("shrink: missing SCENARIO or TRACE (see 'hcsim shrink --help')");
  if (bounds.runs_max < 1) throw BadInput("--runs: expected 1 or more");
  nlohmann::json scenario;
  std::string source = path;
  const bool from_trace = looks_like_trace(path);
  if (from_trace && path == "-") throw BadInput("shrink: a trace on standard input: give its file name (a trace is read line by line)");
  if (from_trace) {
    const TraceRead trace = read_checked_trace(path).trace;
    scenario = parse_json(trace.header.scenario_json, path + " line 1 /scenario");
    source = path + " (its scenario)";
    if (vm["preset"].defaulted() && va.fixes.empty() && va.without.empty()) {
      const VariantArgs recorded = variant_args_of(*Variant::parse(trace.header.variant, nullptr));  // checked by the trace reader
      va.preset = recorded.preset;
      va.fixes = recorded.fixes;
      va.without = recorded.without;
    }
    if (va.policy.empty()) va.policy = trace.header.policy;
    if (!vm.count("seed")) va.seed = trace.header.seed;
  } else {
    scenario = parse_json(read_bounded_file(path, kScenarioBytesMax, "a scenario is a description, not data"), path);
  }
  if (!scenario.is_object()) throw BadInput(source + ": /: expected a scenario object (docs/scenario-format.md)");
  take_seed(vm, va);
  RunOptions opt = run_options(va);
  if (va.seed) scenario["seed"] = *va.seed;  // the result carries the seed it fails with
  opt.seed.reset();
  const std::string variant = variant_name(va);
  const auto t0 = std::chrono::steady_clock::now();
  ShrinkResult r = shrink(scenario, source, opt, bounds);
  const std::string policy(policy_name(opt.policy.value_or(r.result.policy.policy)));
  // Successive halvings of one number read as one step: "/delays/0/fixed_us 488000 -> 412 (16 runs kept)".
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < r.steps.size();) {
    const std::string& step = r.steps[i];
    const auto arrow = step.find(" -> ");
    const auto field_end = arrow == std::string::npos ? std::string::npos : step.rfind(' ', arrow - 1);
    std::size_t j = i + 1;
    if (field_end != std::string::npos) {
      const std::string field = step.substr(0, field_end + 1);
      while (j < r.steps.size() && r.steps[j].starts_with(field) && r.steps[j].find(" -> ") != std::string::npos) ++j;
    }
    const std::string& last = r.steps[j - 1];
    kept.push_back(j - i == 1 ? step : step.substr(0, arrow) + last.substr(last.find(" -> ")) + " (" + std::to_string(j - i) + " steps)");
    i = j;
  }
  const std::string name = scenario.value("name", "scenario");
  if (out.empty()) out = default_output(safe_file_name(name) + "-shrunk.json");
  std::FILE* report = report_stream({out, record}, vm.count("json") > 0);
  // The result names its failure as its one expectation, and is checked by reading it back.
  r.scenario["name"] = name + "-shrunk";
  r.scenario["description"] = "Shrunk by hcsim shrink from " + path + ": " + describe(r.signature) + " under " + variant + ", " + policy;
  r.scenario["expect"] = nlohmann::json::array({{{"variant", variant}, {"policy", policy}, {"verdict", std::string(hang_kind_name(r.signature.kind))}}});
  const std::string text = r.scenario.dump(2) + "\n";
  write_output(out, text);
  const Scenario written = out == "-" ? parse_scenario(text, out) : load_scenario_file(out);
  const RunResult again = simulate(written, opt);
  if (!(signature_of(again) == r.signature)) {
    std::cerr << "hcsim: " << out << " does not fail the same way when read back\n";
    return kExitInternal;
  }
  if (!record.empty()) record_trace_of_text(record, text, written, again, variant);
  auto count = [](const nlohmann::json& s, const char* key) { return s.contains(key) ? s[key].size() : std::size_t{0}; };
  const double wall_s = wall_ms_since(t0) / 1000.0;
  if (vm.count("json")) {
    print_json({{"scenario", name}, {"variant", variant}, {"policy", policy}, {"failure", describe(r.signature)}, {"kept", kept},
                {"result", {{"tp", r.scenario["tp"]}, {"requests", count(r.scenario, "requests")}, {"delay_rules", count(r.scenario, "delays")},
                            {"l3_objects", count(r.scenario, "l3")}, {"perturbations_kept", r.scenario.contains("perturbations")}}},
                {"runs", r.runs}, {"runs_cut", r.runs_cut}, {"wall_s", wall_s}, {"wrote", out},
                {"verdict", std::string(hang_kind_name(again.verdict.kind))}, {"at_ms", static_cast<double>(again.verdict.at_ns) / 1e6},
                {"trace", record.empty() ? nlohmann::json() : nlohmann::json(record)}});
    return kExitOk;
  }
  std::fprintf(report, "shrink     %s under %s, policy %s: %s\n", name.c_str(), variant.c_str(), policy.c_str(), describe(r.signature).c_str());
  for (const std::string& k : kept) std::fprintf(report, "  kept     %s\n", k.c_str());
  std::fprintf(report, "result     tp %d, %zu request(s), %zu delay rule(s), %zu L3 object(s)%s; %lld run(s), %.2f s%s\n", r.scenario["tp"].get<int>(),
               count(r.scenario, "requests"), count(r.scenario, "delays"), count(r.scenario, "l3"),
               r.scenario.contains("perturbations") ? ", perturbations kept" : "", static_cast<long long>(r.runs), wall_s,
               r.runs_cut ? " (the run bound stopped it: --runs)" : "");
  std::fprintf(report, "wrote      %s: %s at %s (hcsim run %s%s)\n", out.c_str(), verdict_word(again.verdict).c_str(),
               format_ms(again.verdict.at_ns).c_str(), out.c_str(), Variant::parse(variant, nullptr)->flags().c_str());
  if (!record.empty()) std::fprintf(report, "trace      %s (hcsim replay %s)\n", record.c_str(), record.c_str());
  return kExitOk;
}

}  // namespace hcsim::cli
