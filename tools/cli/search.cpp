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
    const StorageCallFields call = storage_call_fields(e);
    return at + ": " + std::string(storage_op_name(static_cast<StorageOp>(call.op))) + " for " + request + " took explore.late alternative " + of +
           ", lasting " + format_ms(call.duration_ns);
  }
  return at + ": an L3 call took explore.late alternative " + of;
}

void check_explore_bounds(const ExploreBounds& bounds) {
  if (bounds.deviations_max < 0 || bounds.deviations_max > 64) throw BadInput("--deviations: expected 0 to 64");
  if (bounds.depth_max < 0) throw BadInput("--depth: expected 0 or more");
  if (bounds.schedules_max < 1) throw BadInput("--schedules: expected 1 or more");
  if (!(bounds.seconds_max >= 0)) throw BadInput("--seconds: expected 0 or more");
}

// --target as the failure explore looks for: any (run_fails), hang, or one hang kind.
std::function<bool(const RunResult&)> explore_target(const std::string& target) {
  if (target == "any") return run_fails;
  if (target == "hang") return [](const RunResult& run) { return run.verdict.hang(); };
  const std::optional<HangKind> kind = hang_kind_by_name(target);
  if (!kind || *kind == HangKind::kNone) {
    throw BadInput("--target: expected any, hang, deadlock, collective_mismatch, starvation, lost_worker or crash; got '" + target + "'");
  }
  return [k = *kind](const RunResult& run) { return run.verdict.kind == k; };
}

// An explore run as its answer tells it, in text or JSON.
struct ExploreAnswer {
  const Scenario& s;
  const ExploreBounds& bounds;
  const ExploreResult& r;
  std::string variant;
  std::string policy;
  std::string target;
  std::string record;  // the counterexample's trace, if one was found
  double wall_s = 0;

  // What was looked for and not found, and how far the search reached.
  std::string what() const { return target == "any" ? "no hang and no broken invariant" : target == "hang" ? "no hang" : "no " + target; }
  std::string scope() const {
    return r.exhausted ? "in every schedule the scenario allows (none deviates more than " + std::to_string(r.deviations_done) + " times)"
           : r.schedules == 0 ? "found: the bound stopped the search before its first schedule"
           : r.deviations_done < 0 ? "found before the bound stopped it, which ended the default schedule's level"
                                   : "reachable with at most " + std::to_string(r.deviations_done) + " deviation(s)";
  }
  std::string answer() const { return r.counterexample ? "found" : r.schedules_cut ? "bound_reached" : "certified"; }
  int exit_code() const { return r.counterexample ? kExitUnexpected : r.schedules_cut ? kExitBoundReached : kExitOk; }
};

nlohmann::json explore_json(const ExploreAnswer& a) {
  const ExploreResult& r = a.r;
  nlohmann::json j = {{"scenario", a.s.name}, {"variant", a.variant}, {"policy", a.policy}, {"target", a.target},
                      {"bounds", {{"deviations", a.bounds.deviations_max}, {"depth", a.bounds.depth_max}, {"schedules", a.bounds.schedules_max},
                                  {"seconds", a.bounds.seconds_max}}},
                      {"answer", a.answer()}, {"schedules", r.schedules}, {"pruned", r.pruned}, {"states", r.states},
                      {"decision_points_max", r.decision_points_max}, {"depth_cut", r.depth_cut}, {"time_cut", r.time_cut}, {"wall_s", a.wall_s}};
  if (r.counterexample) {
    const Counterexample& c = *r.counterexample;
    nlohmann::json decisions = nlohmann::json::array();
    for (std::size_t i = 0; i < c.decisions.size(); ++i) {
      if (c.decisions[i].taken != 0) decisions.push_back({{"index", i}, {"what", describe_decision(c.decisions[i], a.s, c.result.log)}});
    }
    j["found"] = {{"verdict", std::string(hang_kind_name(c.result.verdict.kind))}, {"at_ms", static_cast<double>(c.result.verdict.at_ns) / 1e6},
                  {"collective", collective_line(c.result.verdict)}, {"deviations", c.deviations}, {"decisions", decisions}, {"trace", a.record}};
  } else {
    j["scope"] = a.what() + " " + a.scope();
  }
  return j;
}

void print_explore_text(std::FILE* report, const ExploreAnswer& a) {
  const ExploreResult& r = a.r;
  std::fprintf(report, "explore    %s under %s, policy %s: at most %d deviation(s), depth %d, %lld schedules\n", a.s.name.c_str(), a.variant.c_str(),
              a.policy.c_str(), a.bounds.deviations_max, a.bounds.depth_max, static_cast<long long>(a.bounds.schedules_max));
  std::fprintf(report, "searched   %lld schedule(s), %lld stopped at a state already reached; %lld distinct state(s); up to %lld decision points "
              "in a schedule; %.2f s\n",
              static_cast<long long>(r.schedules), static_cast<long long>(r.pruned), static_cast<long long>(r.states),
              static_cast<long long>(r.decision_points_max), a.wall_s);
  if (r.counterexample) {
    const Counterexample& c = *r.counterexample;
    std::fprintf(report, "found      %s at %s with %d deviation(s) from the default schedule\n", verdict_word(c.result.verdict).c_str(),
                format_ms(c.result.verdict.at_ns).c_str(), c.deviations);
    if (const std::string line = collective_line(c.result.verdict); !line.empty()) std::fprintf(report, "           %s\n", line.c_str());
    for (std::size_t i = 0; i < c.decisions.size(); ++i) {
      if (c.decisions[i].taken != 0) std::fprintf(report, "           decision %zu: %s\n", i, describe_decision(c.decisions[i], a.s, c.result.log).c_str());
    }
    std::fprintf(report, "trace      %s (hcsim replay %s re-runs it; hcsim export --chrome shows it)\n", a.record.c_str(), a.record.c_str());
    return;
  }
  std::fprintf(report, "%s %s %s%s%s\n", r.schedules_cut ? "incomplete" : "certified ", a.what().c_str(), a.scope().c_str(),
              !r.schedules_cut ? "" : r.time_cut ? " (the time bound stopped the search: raise --seconds)" : " (the schedule bound stopped the search: raise --schedules)",
              r.depth_cut ? "; decision points past --depth took the first alternative" : "");
}

// What shrink starts from: a scenario file's JSON, or a trace's scenario, whose variant, policy
// and seed then fill in those `va` leaves unset. `source` names it in errors.
struct ShrinkInput {
  nlohmann::json scenario;
  std::string source;
};

ShrinkInput read_shrink_input(const std::string& path, const po::variables_map& vm, VariantArgs& va) {
  ShrinkInput in{.scenario = nlohmann::json(), .source = path};
  const bool from_trace = looks_like_trace(path);
  if (from_trace && path == "-") throw BadInput("shrink: a trace on standard input: give its file name (a trace is read line by line)");
  if (from_trace) {
    const TraceRead trace = read_checked_trace(path).trace;
    in.scenario = parse_json(trace.header.scenario_json, path + " line 1 /scenario");
    in.source = path + " (its scenario)";
    if (va.preset.empty() && va.upstream.empty() && va.fixes.empty() && va.without.empty()) {
      const VariantArgs recorded = variant_args_of(*Variant::parse(trace.header.variant, nullptr));  // checked by the trace reader
      va.preset = recorded.preset;
      va.upstream = recorded.upstream;
      va.fixes = recorded.fixes;
      va.without = recorded.without;
    }
    if (va.policy.empty()) va.policy = trace.header.policy;
    if (!vm.count("seed")) va.seed = trace.header.seed;
  } else {
    in.scenario = parse_json(read_bounded_file(path, kScenarioBytesMax, "a scenario is a description, not data"), path);
  }
  if (!in.scenario.is_object()) throw BadInput(in.source + ": /: expected a scenario object (docs/scenario-format.md)");
  if (in.scenario.contains("upstream_at") && in.scenario["upstream_at"].is_string()) va.fallback = in.scenario["upstream_at"].get<std::string>();
  return in;
}

// The changes shrink kept, successive halvings of one number read as one step:
// "/delays/0/fixed_us 488000 -> 412 (16 steps)".
std::vector<std::string> merged_steps(const std::vector<std::string>& steps) {
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < steps.size();) {
    const std::string& step = steps[i];
    const auto arrow = step.find(" -> ");
    const auto field_end = arrow == std::string::npos ? std::string::npos : step.rfind(' ', arrow - 1);
    std::size_t j = i + 1;
    if (field_end != std::string::npos) {
      const std::string field = step.substr(0, field_end + 1);
      while (j < steps.size() && steps[j].starts_with(field) && steps[j].find(" -> ") != std::string::npos) ++j;
    }
    const std::string& last = steps[j - 1];
    kept.push_back(j - i == 1 ? step : step.substr(0, arrow) + last.substr(last.find(" -> ")) + " (" + std::to_string(j - i) + " steps)");
    i = j;
  }
  return kept;
}

// A shrunk scenario and its run read back, as the answer tells them.
struct ShrinkAnswer {
  const ShrinkResult& r;
  const RunResult& again;  // the written scenario's run
  std::vector<std::string> kept;
  std::string name;        // the scenario shrunk
  std::string variant;
  std::string policy;
  std::string out;
  std::string record;
  double wall_s = 0;
};

std::size_t count_of(const nlohmann::json& s, const char* key) { return s.contains(key) ? s[key].size() : std::size_t{0}; }

nlohmann::json shrink_json(const ShrinkAnswer& a) {
  const nlohmann::json& result = a.r.scenario;
  return {{"scenario", a.name}, {"variant", a.variant}, {"policy", a.policy}, {"failure", describe(a.r.signature)}, {"kept", a.kept},
          {"result", {{"tp", result["tp"]}, {"pp", result.value("pp", 1)}, {"requests", count_of(result, "requests")}, {"delay_rules", count_of(result, "delays")},
                      {"l3_objects", count_of(result, "l3")}, {"perturbations_kept", result.contains("perturbations")}}},
          {"runs", a.r.runs}, {"runs_cut", a.r.runs_cut}, {"wall_s", a.wall_s}, {"wrote", a.out},
          {"verdict", std::string(hang_kind_name(a.again.verdict.kind))}, {"at_ms", static_cast<double>(a.again.verdict.at_ns) / 1e6},
          {"trace", a.record.empty() ? nlohmann::json() : nlohmann::json(a.record)}};
}

void print_shrink_text(std::FILE* report, const ShrinkAnswer& a) {
  const nlohmann::json& result = a.r.scenario;
  std::fprintf(report, "shrink     %s under %s, policy %s: %s\n", a.name.c_str(), a.variant.c_str(), a.policy.c_str(), describe(a.r.signature).c_str());
  for (const std::string& k : a.kept) std::fprintf(report, "  kept     %s\n", k.c_str());
  std::fprintf(report, "result     tp %d%s, %zu request(s), %zu delay rule(s), %zu L3 object(s)%s; %lld run(s), %.2f s%s\n", result["tp"].get<int>(),
               result.contains("pp") && result["pp"].get<int>() > 1 ? (", pp " + std::to_string(result["pp"].get<int>())).c_str() : "",
               count_of(result, "requests"), count_of(result, "delays"), count_of(result, "l3"),
               result.contains("perturbations") ? ", perturbations kept" : "", static_cast<long long>(a.r.runs), a.wall_s,
               a.r.runs_cut ? " (the run bound stopped it: --runs)" : "");
  std::fprintf(report, "wrote      %s: %s at %s (hcsim run %s%s)\n", a.out.c_str(), verdict_word(a.again.verdict).c_str(),
               format_ms(a.again.verdict.at_ns).c_str(), a.out.c_str(), Variant::parse(a.variant, nullptr)->flags().c_str());
  if (!a.record.empty()) std::fprintf(report, "trace      %s (hcsim replay %s)\n", a.record.c_str(), a.record.c_str());
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
       "what to look for: any (a hang, a crash or a broken invariant), hang, or a kind: deadlock | collective_mismatch | starvation | lost_worker | crash")
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
  check_explore_bounds(bounds);
  take_seed(vm, va);
  refuse_trace(path, "explore", "hcsim replay " + path);
  const Scenario s = load_scenario_file(path);
  va.fallback = s.upstream_at;
  check_family_date(va, s);
  const RunOptions opt = run_options(va);
  const std::string variant = variant_name(va);
  const Output o = output_options(vm);
  if (record.empty()) record = default_output("explore-" + safe_file_name(s.name) + ".jsonl");
  std::FILE* report = report_stream({record}, o.json);
  const std::function<bool(const RunResult&)> fails = explore_target(target);
  const auto t0 = std::chrono::steady_clock::now();
  Progress progress(o.progress_stream(), bounds.schedules_max, "schedules", "schedules, to the --schedules bound");
  const ExploreResult r = explore(s, opt, bounds, fails, [&](std::int64_t done) { progress.update(done); });
  progress.finish();
  const ExploreAnswer a{.s = s, .bounds = bounds, .r = r, .variant = variant, .policy = std::string(policy_name(opt.policy.value_or(s.policy.policy))),
                        .target = target, .record = record, .wall_s = wall_ms_since(t0) / 1000.0};
  if (r.counterexample) record_trace(record, path, s, r.counterexample->result, variant, "sim", r.counterexample->decisions);
  if (o.json) {
    print_json(explore_json(a));
  } else {
    print_explore_text(report, a);
  }
  return a.exit_code();
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
  ShrinkInput in = read_shrink_input(path, vm, va);
  take_seed(vm, va);
  RunOptions opt = run_options(va);
  if (va.seed) in.scenario["seed"] = *va.seed;  // the result carries the seed it fails with
  opt.seed.reset();
  const std::string variant = variant_name(va);
  const auto t0 = std::chrono::steady_clock::now();
  ShrinkResult r = shrink(in.scenario, in.source, opt, bounds);
  const std::string policy(policy_name(opt.policy.value_or(r.result.policy.policy)));
  const std::string name = in.scenario.value("name", "scenario");
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
  const ShrinkAnswer a{.r = r, .again = again, .kept = merged_steps(r.steps), .name = name, .variant = variant, .policy = policy,
                       .out = out, .record = record, .wall_s = wall_ms_since(t0) / 1000.0};
  if (vm.count("json")) {
    print_json(shrink_json(a));
  } else {
    print_shrink_text(report, a);
  }
  return kExitOk;
}

}  // namespace hcsim::cli
