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

#include "sim/determinism.h"
#include "sim/seed_sweep.h"
#include "tools/report.h"

namespace hcsim::cli {

namespace {

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

}  // namespace

int cmd_run(const Args& args) {
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

int cmd_demo(const Args& args) {
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

int cmd_scan(const Args& args) {
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

int cmd_verify(const Args& args) {
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

int cmd_list(const Args& args) {
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

int cmd_fixes(const Args& args) {
  (void)args;
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

}  // namespace hcsim::cli
