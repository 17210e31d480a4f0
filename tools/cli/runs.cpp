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
int verify_library(const std::vector<Scenario>& library, const Output& o) {
  int differ = 0, total = 0, expectations = 0;
  for (const Scenario& s : library) expectations += static_cast<int>(s.expect.size());
  Progress progress(o.progress_stream(), expectations, "runs", "expectations");
  nlohmann::json rows = nlohmann::json::array();
  for (const Scenario& s : library) {
    for (const Expectation& e : s.expect) {
      const ExpectationCheck c = check_expectation(s, e);
      const Verdict& v = c.result.verdict;
      ++total;
      differ += c.met ? 0 : 1;
      const std::vector<std::string> violated = violated_names(c.result.invariants);
      const std::string policy(policy_name(e.policy.value_or(s.policy.policy)));
      progress.update(total);
      if (o.json) {
        rows.push_back({{"met", c.met}, {"incident", s.incident}, {"scenario", s.name}, {"variant", e.variant}, {"policy", policy},
                        {"expected", c.expected}, {"verdict", std::string(hang_kind_name(v.kind))}, {"at_ms", static_cast<double>(v.at_ns) / 1e6},
                        {"violates", violated}});
        continue;
      }
      std::string joined;
      for (const auto& n : violated) joined += (joined.empty() ? "" : ",") + n;
      progress.clear_line();
      std::printf("%-4s %-4s %-30s %-38s %-13s expected %-20s got %s at %s; violates: %s\n", c.met ? "ok" : "DIFF", s.incident.c_str(),
                  s.name.c_str(), e.variant.c_str(), policy.c_str(), c.expected.c_str(), verdict_word(v).c_str(), format_ms(v.at_ns).c_str(),
                  joined.empty() ? "none" : joined.c_str());
    }
  }
  progress.finish();
  if (o.json) {
    print_json({{"expectations", rows}, {"total", total}, {"scenarios", library.size()}, {"differ", differ}});
  } else {
    std::printf("%d expectation(s) in %zu scenario(s), %d differ\n", total, library.size(), differ);
  }
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
int check_library_determinism(const std::vector<Scenario>& library, const Output& o) {
  int differ = 0, total = 0, expectations = 0;
  for (const Scenario& s : library) expectations += static_cast<int>(s.expect.size());
  Progress progress(o.progress_stream(), expectations, "runs", "expectations twice each");
  for (const Scenario& s : library) {
    for (const Expectation& e : s.expect) {
      ++total;
      progress.clear_line();
      differ += determinism_holds(s, expectation_options(e), e.variant) ? 0 : 1;
      progress.update(total);
    }
  }
  progress.finish();
  std::printf("%d run(s) in %zu scenario(s) checked twice each, %d differ\n", total, library.size(), differ);
  return differ ? kExitUnexpected : kExitOk;
}

// hcsim run --all --seeds N: one variant over N seeds of every scenario, a line each.
int sweep_library(const std::vector<Scenario>& library, VariantArgs va, const po::variables_map& vm, const std::string& expect, const Output& o) {
  take_seed(vm, va);
  const std::int64_t count = vm["seeds"].as<std::int64_t>();
  const int jobs = jobs_option(vm);
  std::int64_t hanging = 0, violating = 0;
  // Without --preset or --upstream each scenario runs at its own upstream_at, as 'run' does.
  auto options_for = [&](const Scenario& s) {
    VariantArgs own = va;
    own.fallback = s.upstream_at;
    return std::pair{own, run_options(own)};
  };
  for (const Scenario& s : library) check_seed_range(options_for(s).second.seed.value_or(s.seed), count);
  Progress progress(o.progress_stream(), count * static_cast<std::int64_t>(library.size()), "runs", "seeds of every scenario");
  nlohmann::json rows = nlohmann::json::array();
  if (!o.json) {
    std::printf("%-4s %-30s %-22s %-34s %-16s %s\n", "", "scenario", "hangs", "95% interval", "L3 loss (runs)", "invariants broken (runs), first failing seed");
  }
  std::int64_t before = 0;
  for (const Scenario& s : library) {
    const auto [own, opt] = options_for(s);
    if (const auto refused = family_refusal(own, s)) {  // e.g. an SWA family at a preset before the unified tree
      before += count;
      progress.update(before);
      if (o.json) {
        rows.push_back({{"incident", s.incident}, {"scenario", s.name}, {"skipped", *refused}});
      } else {
        progress.clear_line();
        std::printf("%-4s %-30s skipped: %s\n", s.incident.c_str(), s.name.c_str(), refused->c_str());
      }
      continue;
    }
    const SeedSweep sweep = sweep_seeds(s, opt, opt.seed.value_or(s.seed), count, jobs, [&](std::int64_t done) { progress.update(before + done); });
    before += count;
    const Interval ci = wilson_interval(sweep.hangs, count);
    hanging += sweep.hangs > 0 ? 1 : 0;
    violating += sweep.runs_with_violations > 0 ? 1 : 0;
    if (o.json) {
      rows.push_back({{"incident", s.incident}, {"scenario", s.name}, {"first_seed", opt.seed.value_or(s.seed)}, {"hangs", sweep.hangs},
                      {"wilson_95", {ci.low, ci.high}}, {"hang_kinds", sweep.hang_kinds}, {"runs_with_violations", sweep.runs_with_violations},
                      {"violations", sweep.violations}, {"runs_with_l3_loss", sweep.runs_with_l3_loss}, {"l3_lost_tokens", sweep.l3_lost_tokens},
                      {"first_failing_seed", optional_json(sweep.first_failing_seed)}});
      continue;
    }
    std::string broken;
    for (const auto& [name, k] : sweep.violations) broken += (broken.empty() ? "" : ", ") + name + " " + std::to_string(k);
    if (sweep.first_failing_seed) broken += (broken.empty() ? "" : "; ") + std::string("seed ") + std::to_string(*sweep.first_failing_seed);
    progress.clear_line();
    std::printf("%-4s %-30s %6lld of %-10lld %5.1f%% to %5.1f%%%17s %-16lld %s\n", s.incident.c_str(), s.name.c_str(), static_cast<long long>(sweep.hangs),
                static_cast<long long>(count), 100.0 * ci.low, 100.0 * ci.high, "", static_cast<long long>(sweep.runs_with_l3_loss),
                broken.empty() ? "none" : broken.c_str());
  }
  progress.finish();
  const bool own_dates = va.preset.empty() && va.upstream.empty();
  const std::string variant = own_dates ? "each scenario's upstream_at, else " + variant_name(va) : variant_name(va);
  const std::string upstream = own_dates ? "per scenario" : upstream_label(run_options(va).fixes);
  if (o.json) {
    print_json({{"variant", variant}, {"upstream", upstream}, {"seeds", count}, {"scenarios", rows},
                {"scenarios_with_hangs", hanging}, {"scenarios_with_broken_invariants", violating}});
  } else {
    std::printf("%zu scenario(s) x %lld seed(s), variant %s (%s): %lld with hangs, %lld with broken invariants\n", library.size(),
                static_cast<long long>(count), variant.c_str(), upstream.c_str(), static_cast<long long>(hanging),
                static_cast<long long>(violating));
  }
  return (expect == "complete" && hanging > 0) || (expect == "clean" && hanging + violating > 0) ? kExitUnexpected : kExitOk;
}

// hcsim run --seeds: the hang rate with its 95% interval, broken invariants, and the first seed to
// look at, with the command that reproduces it.
int run_seeds(const Scenario& s, const RunOptions& opt, const std::string& variant, const std::string& path, std::int64_t count,
              int jobs, const std::string& expect, const Output& o) {
  const std::uint64_t first = opt.seed.value_or(s.seed);
  check_seed_range(first, count);
  Progress progress(o.progress_stream(), count, "runs", "seeds");
  const SeedSweep sweep = sweep_seeds(s, opt, first, count, jobs, [&](std::int64_t done) { progress.update(done); });
  progress.finish();
  const auto n = static_cast<std::int64_t>(sweep.runs.size());
  const Interval ci = wilson_interval(sweep.hangs, n);
  const std::string policy(policy_name(opt.policy.value_or(s.policy.policy)));
  auto reproduce = [&](std::uint64_t seed) { return "hcsim run " + path + Variant::parse(variant, nullptr)->flags() + " --seed " + std::to_string(seed); };
  if (o.json) {
    nlohmann::json j = {{"scenario", s.name}, {"variant", variant}, {"upstream", upstream_label(opt.fixes)}, {"policy", policy},
                        {"first_seed", first}, {"seeds", n}, {"hangs", sweep.hangs}, {"wilson_95", {ci.low, ci.high}}, {"hang_kinds", sweep.hang_kinds},
                        {"runs_with_violations", sweep.runs_with_violations}, {"violations", sweep.violations},
                        {"runs_with_l3_loss", sweep.runs_with_l3_loss}, {"l3_lost_tokens", sweep.l3_lost_tokens},
                        {"wall_s", sweep.wall_s}, {"jobs", jobs}};
    for (const auto& [key, seed] : {std::pair{"first_hang", sweep.first_hang_seed}, {"first_failing", sweep.first_failing_seed},
                                    {"first_l3_loss", sweep.first_l3_loss_seed}}) {
      if (!seed) {
        j[key] = nullptr;
        continue;
      }
      const SeedRun& r = sweep.runs[static_cast<std::size_t>(*seed - first)];
      j[key] = {{"seed", *seed}, {"verdict", std::string(hang_kind_name(r.kind))}, {"at_ms", static_cast<double>(r.at_ns) / 1e6},
                {"reproduce", reproduce(*seed)}};
    }
    print_json(j);
  } else {
    std::printf("seeds      %llu..%llu of %s, variant %s (%s), policy %s\n", static_cast<unsigned long long>(first),
                static_cast<unsigned long long>(first + static_cast<std::uint64_t>(n) - 1), s.name.c_str(), variant.c_str(),
                upstream_label(opt.fixes).c_str(), policy.c_str());
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
      std::printf("%-10s seed %llu: %s at %s; reproduce: %s\n", label, static_cast<unsigned long long>(*seed),
                  r.kind == HangKind::kNone ? "complete" : ("HANG " + std::string(hang_kind_name(r.kind))).c_str(), format_ms(r.at_ns).c_str(),
                  reproduce(*seed).c_str());
    };
    show("first hang", sweep.first_hang_seed);
    if (sweep.first_failing_seed != sweep.first_hang_seed) show("first fail", sweep.first_failing_seed);
    show("first loss", sweep.first_l3_loss_seed);
    std::printf("wall       %.2f s, %.0f runs/s on %d thread(s)\n", sweep.wall_s, static_cast<double>(n) / sweep.wall_s, jobs);
  }
  if (expect == "complete" && sweep.hangs > 0) return kExitUnexpected;
  if (expect == "clean" && (sweep.hangs > 0 || sweep.runs_with_violations > 0)) return kExitUnexpected;
  if (expect == "hang" && sweep.hangs < n) return kExitUnexpected;
  return kExitOk;
}

}  // namespace

int cmd_run(const Args& args) {
  VariantArgs va;
  std::string path, dot, record, expect, library_dir = "scenarios";
  po::options_description d("run options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenario", po::value(&path)->value_name("SCENARIO"), "scenario JSON file ('-': standard input)")
      ("all", "run every expectation of every scenario in the library instead (exit 3 if any differs)")
      ("scenarios", po::value(&library_dir)->default_value("scenarios")->value_name("DIR"), "the library directory for --all");
  add_variant_options(d, va);
  d.add_options()
      ("seeds", po::value<std::int64_t>()->value_name("N"), "run N seeds (from --seed) with the scenario's perturbations; report the hang rate")
      ("jobs,j", po::value<int>()->value_name("N"), "threads for --seeds (default: all cores)")
      ("dot", po::value(&dot)->value_name("FILE"), "write the wait-for graph at the end of the run (Graphviz DOT) to FILE ('-': standard output)")
      ("all-actors", "--dot: draw every actor, idle ones too (by default they are folded into a note per rank)")
      ("record", po::value(&record)->value_name("FILE"), "write the run as a trace (JSON Lines, docs/trace-format.md) to FILE")
      ("check-determinism", "run twice side by side and name the first event where the runs differ (exit 3 if any)")
      ("expect", po::value(&expect)->value_name("WHAT"),
       "hang | complete | clean (complete, no invariant broken): exit 3 if the run differs; with --seeds, any run");
  add_output_options(d);
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim run SCENARIO [options]\n"
             "       hcsim run --all [--scenarios DIR]\n\n"
             "Simulates SCENARIO and prints the verdict, the collective and ranks involved, what each actor\n"
             "waits on, where the ranks' published state diverged and the first fact that differed between\n"
             "them (origin), the agreed L3 hits requests did not get (l3 lost), per-request outcomes and a\n"
             "digest. The variant line says which upstream it stands for (a range of dates of the timeline), or\n"
             "that it is hypothetical (hcsim fixes lists both); the next line names the code path that runs.\n\n"
             "examples:\n"
             "  hcsim run scenarios/himamba-sidecar-lag.json --preset pre-fix --expect hang\n"
             "  hcsim run scenarios/himamba-sidecar-lag.json --preset seed-fix --dot results/wait.dot\n"
             "  hcsim run scenarios/stalled-sidecar-timeout.json --preset timeout-bounded --fix sidecar-hit-sync\n"
             "  hcsim run scenarios/himamba-sidecar-lag.json --seeds 1000          # hang rate, first failing seed\n"
             "  hcsim run scenarios/short-read-loss.json --json                     # l3_lost_tokens: 640\n"
             "  hcsim run --all\n"
             "  hcsim run --all --seeds 1000 --preset all-fixes                     # every scenario, 1000 seeds each\n"
             "  hcsim run --all --check-determinism                                 # every expectation, run twice\n")) {
    return kExitOk;
  }
  const Output o = output_options(vm);
  const bool check = vm.count("check-determinism") > 0;
  if (check && (vm.count("seeds") || !record.empty() || o.json || !dot.empty() || !expect.empty())) {
    throw BadInput("--check-determinism: runs and compares only; drop --seeds, --record, --json, --dot and --expect");
  }
  if (!expect.empty() && expect != "hang" && expect != "complete" && expect != "clean") {
    throw BadInput("--expect: expected hang, complete or clean; got '" + expect + "'");
  }
  if (vm.count("jobs") && !vm.count("seeds")) throw BadInput("--jobs: threads for --seeds; one run takes one");
  if (vm.count("all")) {
    if (!path.empty()) throw BadInput("run: give a SCENARIO or --all, not both");
    const bool variant_given = vm.count("preset") || vm.count("upstream") || vm.count("fix") || vm.count("without") || vm.count("policy") || vm.count("seed");
    if (variant_given && !vm.count("seeds")) {
      throw BadInput("run --all: each expectation names its variant and policy; --preset, --upstream, --fix, --without, --policy and --seed apply with --seeds");
    }
    if (expect == "hang" && vm.count("seeds")) throw BadInput("--expect hang: with --all, expect complete or clean");
    if (!dot.empty() || !record.empty()) throw BadInput("run --all: --dot and --record write one run; give a SCENARIO");
    if (check) return check_library_determinism(load_library(library_dir), o);
    if (vm.count("seeds")) return sweep_library(load_library(library_dir), va, vm, expect, o);
    if (!expect.empty()) throw BadInput("run --all: each scenario declares what it expects; --expect is for one SCENARIO or --seeds");
    return verify_library(load_library(library_dir), o);
  }
  if (path.empty()) throw BadInput("run: missing SCENARIO (see 'hcsim run --help')");
  refuse_trace(path, "run", "hcsim replay " + path);
  take_seed(vm, va);
  const Scenario s = load_scenario_file(path);
  va.fallback = s.upstream_at;
  check_family_date(va, s);
  RunOptions opt = run_options(va);
  const WaitForGraphOptions graph{.all_actors = vm.count("all-actors") > 0};
  if (check) return determinism_holds(s, opt, variant_name(va)) ? kExitOk : kExitUnexpected;
  if (vm.count("seeds")) {
    if (!dot.empty() || !record.empty()) throw BadInput("run --seeds: --dot and --record write one run; drop --seeds, or pick a seed with --seed");
    return run_seeds(s, opt, variant_name(va), path, vm["seeds"].as<std::int64_t>(), jobs_option(vm), expect, o);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult r = simulate(s, opt);
  const RunLabel label{variant_name(va), wall_ms_since(t0)};
  // A file on standard output sends the report to standard error, so neither is mixed into the other.
  std::ostream& report = report_stream({dot, record}, o.json) == stderr ? std::cerr : std::cout;
  if (o.json) {
    report << json_text(report_json(s, r, label));
  } else {
    print_report(report, s, r, label);
  }
  if (!dot.empty()) write_output(dot, r.wait_for_dot(graph));
  if (!record.empty()) record_trace(record, path, s, r, variant_name(va));
  if (expect.empty()) return kExitOk;
  const std::vector<std::string> broken = violated_names(r.invariants);
  const bool as_expected = expect == "hang" ? r.verdict.hang() : expect == "complete" ? !r.verdict.hang() : !r.verdict.hang() && broken.empty();
  if (as_expected) return kExitOk;
  std::string why = verdict_word(r.verdict);
  for (const auto& n : broken) why += (why.empty() ? "" : ", ") + std::string("broke ") + n;
  std::cerr << "hcsim: expected " << expect << ", got " << why << "\n";
  return kExitUnexpected;
}

int cmd_demo(const Args& args) {
  po::options_description d("demo options", kHelpColumns, kHelpColumns / 2);
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
          return "scheduled at " + format_ms(e.time_ns) + ", L3 hit " + std::to_string(schedule_fields(e).storage_hit_tokens);
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
  po::options_description d("scan options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenario", po::value(&path)->value_name("SCENARIO"), "scenario JSON file ('-': standard input)")
      ("rule", po::value(&rule)->default_value(0)->value_name("N"), "index of the delay rule to vary (in the scenario's /delays)")
      ("values-us", po::value(&values)->value_name("FROM:TO:STEP"), "the fixed delays to try, in microseconds");
  add_variant_options(d, va);
  add_output_options(d);
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
  take_seed(vm, va);
  long long from = 0, to = 0, step = 0;
  int used = 0;
  constexpr long long kDelayUsMax = 3'600'000'000LL;  // an hour: past any horizon a scenario can have
  if (std::sscanf(values.c_str(), "%lld:%lld:%lld%n", &from, &to, &step, &used) != 3 || used != static_cast<int>(values.size()) || step <= 0 ||
      to < from || from < 0 || to > kDelayUsMax || (to - from) / step > 100'000) {
    throw BadInput("--values-us: expected FROM:TO:STEP with 0 <= FROM <= TO <= 3600000000, STEP > 0 and at most 100000 steps; got '" + values + "'");
  }
  refuse_trace(path, "scan", "hcsim replay " + path);
  Scenario s = load_scenario_file(path);
  if (rule < 0 || static_cast<std::size_t>(rule) >= s.delays.size()) {
    throw BadInput(path + ": /delays/" + std::to_string(rule) + ": no such delay rule (the scenario has " + std::to_string(s.delays.size()) + ")");
  }
  va.fallback = s.upstream_at;
  check_family_date(va, s);
  const RunOptions opt = run_options(va);
  const Output o = output_options(vm);
  const std::string rule_text = describe(s.delays[static_cast<std::size_t>(rule)]);
  if (!o.json) {
    std::printf("scan of %s, delay rule %d (%s), variant %s\n", s.name.c_str(), rule, rule_text.c_str(), variant_name(va).c_str());
    std::printf("  %12s  %-28s %-14s %s\n", "delay_us", "verdict", "at", "collective");
  }
  std::optional<bool> previous;
  long long previous_value = 0;
  std::vector<std::string> boundaries;
  nlohmann::json points = nlohmann::json::array();
  Progress progress(o.progress_stream(), (to - from) / step + 1, "runs", "delays");
  for (long long us = from, done = 1; us <= to; us += step, ++done) {
    s.delays[static_cast<std::size_t>(rule)].effect = DelayRule::Effect::kFixed;
    s.delays[static_cast<std::size_t>(rule)].a_ns = us * 1000;
    const RunResult r = simulate(s, opt);
    if (o.json) {
      points.push_back({{"delay_us", us}, {"verdict", std::string(hang_kind_name(r.verdict.kind))}, {"at_ms", static_cast<double>(r.verdict.at_ns) / 1e6},
                        {"collective", collective_line(r.verdict)}});
    } else {
      progress.clear_line();
      std::printf("  %12lld  %-28s %-14s %s\n", us, verdict_word(r.verdict).c_str(), format_ms(r.verdict.at_ns).c_str(), collective_line(r.verdict).c_str());
    }
    progress.update(done);
    if (previous && *previous != r.verdict.hang()) {
      boundaries.push_back((r.verdict.hang() ? "hang begins between " : "hang ends between ") + std::to_string(previous_value) + " and " +
                           std::to_string(us) + " us");
    }
    previous = r.verdict.hang();
    previous_value = us;
  }
  progress.finish();
  if (o.json) {
    print_json({{"scenario", s.name}, {"rule", rule}, {"rule_text", rule_text}, {"variant", variant_name(va)}, {"points", points},
                {"boundaries", boundaries}});
    return kExitOk;
  }
  if (boundaries.empty()) std::printf("no change of verdict over the range\n");
  for (const auto& b : boundaries) std::printf("%s\n", b.c_str());
  return kExitOk;
}

int cmd_verify(const Args& args) {
  std::vector<std::string> paths;
  po::options_description d("verify options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenario", po::value(&paths)->composing()->value_name("SCENARIO"), "scenario JSON files");
  add_output_options(d);
  po::positional_options_description pos;
  pos.add("scenario", -1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim verify SCENARIO...\n\n"
             "Runs every expectation each scenario declares (variant, policy, verdict) and prints one line per\n"
             "expectation; exits 3 if any verdict differs.\n\n"
             "example:\n  ./build/hcsim verify scenarios/*.json\n")) {
    return kExitOk;
  }
  if (paths.empty()) throw BadInput("verify: no SCENARIO given (see 'hcsim verify --help')");
  std::vector<Scenario> library;
  for (const auto& path : paths) {
    refuse_trace(path, "verify", "hcsim replay " + path);
    library.push_back(load_scenario_file(path));
  }
  return verify_library(library, output_options(vm));
}

int cmd_list(const Args& args) {
  std::string dir = "scenarios";
  po::options_description d("list options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenarios", po::value(&dir)->default_value("scenarios")->value_name("DIR"), "the library directory")
      ("json", "print the list as JSON");
  po::positional_options_description pos;
  pos.add("scenarios", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim list [DIR]\n\n"
             "Lists the scenario library: incident id, name and description, the upstream references, and the\n"
             "verdict each scenario expects per variant (and policy, where it overrides the scenario's).\n")) {
    return kExitOk;
  }
  nlohmann::json all = nlohmann::json::array();
  for (const Scenario& s : load_library(dir)) {
    nlohmann::json expects = nlohmann::json::array();
    std::string expects_text;
    for (const Expectation& e : s.expect) {
      const std::string want = e.any_hang ? "hang" : e.verdict == HangKind::kNone ? "complete" : std::string(hang_kind_name(e.verdict));
      expects.push_back({{"variant", e.variant}, {"policy", e.policy ? nlohmann::json(std::string(policy_name(*e.policy))) : nlohmann::json()},
                         {"verdict", want}});
      expects_text += (expects_text.empty() ? "" : "; ") + e.variant + (e.policy ? " (" + std::string(policy_name(*e.policy)) + ")" : "") + ": " + want;
    }
    const std::string policy(policy_name(s.policy.policy));
    if (vm.count("json")) {
      all.push_back({{"incident", s.incident}, {"name", s.name}, {"tp", s.world.topology().tp}, {"pp", s.world.pp}, {"attention", {{"dp", s.world.attn_dp}, {"cp", s.world.attn_cp}}},
                     {"policy", policy}, {"description", s.description},
                     {"upstream", s.upstream}, {"expects", expects}});
      continue;
    }
    std::printf("%-4s %-32s tp %-2d %-13s %s\n", s.incident.empty() ? "-" : s.incident.c_str(), s.name.c_str(), s.world.topology().tp, policy.c_str(),
                s.description.c_str());
    std::string refs;
    for (const auto& u : s.upstream) refs += (refs.empty() ? "" : ", ") + u;
    std::printf("       upstream  %s\n", refs.empty() ? "-" : refs.c_str());
    if (const std::string split = s.world.topology().split_text(); !split.empty()) std::printf("       ranks     %s\n", split.c_str());
    std::printf("       expects   %s\n", expects_text.c_str());
  }
  if (vm.count("json")) print_json(all);
  return kExitOk;
}

namespace {

std::string fix_state(const FixInfo& f) {
  return f.state == UpstreamState::kMerged ? "merged " + std::string(f.commit) + " " + std::string(f.date)
                                           : std::string(upstream_state_name(f.state)) + " (PR " + std::string(f.date) + ")";
}

std::vector<std::string> fix_names(const FixSet& fixes) {
  std::vector<std::string> out;
  for (const FixInfo& f : all_fixes()) {
    if (fixes.has(f.fix)) out.emplace_back(f.name);
  }
  return out;
}

nlohmann::json timeline_json() {
  nlohmann::json rows = nlohmann::json::array();
  for (const UpstreamChange& c : upstream_timeline()) {
    rows.push_back({{"date", c.date}, {"commit", c.commit}, {"pr", c.pr}, {"fix", fix_info(c.fix).name}, {"what", c.what}});
  }
  return rows;
}

nlohmann::json fixes_json() {
  nlohmann::json fixes = nlohmann::json::array(), presets = nlohmann::json::array();
  for (const FixInfo& f : all_fixes()) {
    fixes.push_back({{"name", f.name}, {"baseline", f.baseline}, {"upstream", f.upstream}, {"state", upstream_state_name(f.state)},
                     {"commit", f.commit}, {"date", f.date}, {"scope", f.scope}, {"summary", f.summary}});
  }
  for (const PresetInfo& p : all_presets()) {
    presets.push_back({{"name", p.name}, {"fixes", fix_names(p.fixes)}, {"upstream", upstream_label(p.fixes)}, {"summary", p.summary}});
  }
  return {{"fixes", fixes}, {"presets", presets}, {"timeline", timeline_json()}};
}

// What a run at `at` gets, for each model family: its code path and the fixes in force there.
nlohmann::json upstream_json(const std::string& text, UpstreamPoint at) {
  const FixSet fixes = fixes_at(at);
  nlohmann::json families = nlohmann::json::array();
  for (ModelFamily family : kModelFamilies) {
    PolicyConfig cfg;
    cfg.family = family;
    cfg.apply_fixes(fixes);
    if (!hybrid_swa_modelled(family, cfg.path)) {
      families.push_back({{"model", model_family_name(family)}, {"code_path", nullptr}, {"not_modelled", kHybridSwaBeforeUnified}});
      continue;
    }
    families.push_back({{"model", model_family_name(family)}, {"code_path", code_path_name(cfg.path)}, {"in_force", fix_names(cfg.in_force())},
                        {"default_timeout", std::string(timeout_formula_name(cfg.timeout.formula))}});
  }
  return {{"upstream", text}, {"label", upstream_label(fixes)}, {"fixes", fix_names(fixes)}, {"families", families}};
}

int print_upstream(const std::string& text, bool json) {
  std::string error;
  const auto at = UpstreamPoint::parse(text, &error);
  if (!at) throw BadInput("--upstream: " + error);
  const nlohmann::json j = upstream_json(text, *at);
  if (json) {
    print_json(j);
    return kExitOk;
  }
  std::printf("upstream %s: %s\n", text.c_str(), j["label"].get<std::string>().c_str());
  for (const auto& f : j["families"]) {
    if (f.contains("not_modelled")) {
      std::printf("\n  %-13s %s\n", f["model"].get<std::string>().c_str(), f["not_modelled"].get<std::string>().c_str());
      continue;
    }
    std::printf("\n  %-13s runs %s; default timeout %s\n", f["model"].get<std::string>().c_str(), f["code_path"].get<std::string>().c_str(),
                f["default_timeout"].get<std::string>().c_str());
    std::printf("  %-13s in force:", "");
    for (const auto& name : f["in_force"]) std::printf(" %s", name.get<std::string>().c_str());
    std::printf("\n");
  }
  std::printf("\nA named fix added to a date is a counterfactual: --upstream %s --fix timeout-beats-guard.\n", text.c_str());
  return kExitOk;
}

}  // namespace

int cmd_fixes(const Args& args) {
  po::options_description d("fixes options", kHelpColumns, kHelpColumns / 2);
  std::string upstream;
  d.add_options()("help,h", "show this help")("json", "print the fixes, presets and upstream timeline as JSON")(
      "upstream", po::value(&upstream)->value_name("DATE"),
      "what is in force at an upstream date (YYYY-MM-DD) or timeline commit: each model family's code path and fixes");
  po::variables_map vm;
  if (!parse(args, d, nullptr, vm,
             "usage: hcsim fixes [--upstream DATE] [--json]\n\n"
             "Lists the named upstream fixes a variant can add or remove, each with the upstream change that made\n"
             "or proposed it and where that change stands (merged with its commit and date, open, or closed\n"
             "unmerged); the presets; and the upstream timeline: the dated changes of upstream main the model\n"
             "follows. A variant may start from a date or a timeline commit instead of a preset: every change\n"
             "merged by then is in force, and the date picks the code path that served the scenario's model.\n\n"
             "examples:\n"
             "  ./build/hcsim fixes\n"
             "  ./build/hcsim fixes --upstream 2026-08-20              # today's upstream: hybrid models on the unified tree\n"
             "  ./build/hcsim fixes --upstream faa628694^              # just before the seed fix\n"
             "  ./build/hcsim run scenarios/himamba-sidecar-lag.json --upstream 2026-06-04\n")) {
    return kExitOk;
  }
  if (vm.count("upstream")) return print_upstream(upstream, vm.count("json") > 0);
  if (vm.count("json")) {
    print_json(fixes_json());
    return kExitOk;
  }
  // Column widths from the data, so a long reference never pushes a column out of line.
  int name_w = 0, upstream_w = 0;
  for (const FixInfo& f : all_fixes()) {
    name_w = std::max(name_w, static_cast<int>(f.name.size()));
    upstream_w = std::max(upstream_w, static_cast<int>(f.upstream.size()));
  }
  const int indent = name_w + 2 + 9;  // the name, a gap, "baseline"; then a gap
  std::printf("named fixes, with where their upstream change stands:\n");
  for (const FixInfo& f : all_fixes()) {
    std::printf("  %-*s  %-9s %-*s  %s\n", name_w, std::string(f.name).c_str(), f.baseline ? "baseline" : "", upstream_w,
                std::string(f.upstream).c_str(), fix_state(f).c_str());
    if (!f.scope.empty()) std::printf("  %*s where: %s\n", indent, "", std::string(f.scope).c_str());
    std::printf("  %*s %s\n", indent, "", std::string(f.summary).c_str());
  }
  int preset_w = 0;
  for (const PresetInfo& p : all_presets()) preset_w = std::max(preset_w, static_cast<int>(p.name.size()));
  std::printf("\npresets:\n");
  for (const PresetInfo& p : all_presets()) {
    std::printf("  %-*s  %s\n", preset_w, std::string(p.name).c_str(), std::string(p.summary).c_str());
    std::printf("  %*s  fixes: %s\n", preset_w, "", p.fixes.names().c_str());
  }
  std::printf("\nupstream timeline (first-parent history of upstream main to %s, %s); a date or commit stands for\n"
              "every row up to it:\n",
              std::string(kUpstreamPinDate).c_str(), std::string(kUpstreamPinCommit).c_str());
  for (const UpstreamChange& c : upstream_timeline()) {
    std::printf("  %s %-9s %-7s %-23s %s\n", std::string(c.date).c_str(), std::string(c.commit).c_str(), std::string(c.pr).c_str(),
                std::string(fix_info(c.fix).name).c_str(), std::string(c.what).c_str());
  }
  std::printf("\nBaseline fixes are those of pre-fix; the presets list what they add or remove.\n"
              "A variant is PRESET|DATE[+FIX|~FIX]..., e.g. timeout-bounded+sidecar-hit-sync or 2026-08-20+timeout-beats-guard;\n"
              "on the command line: --preset P or --upstream DATE, --fix F, --without F.\n");
  return kExitOk;
}

}  // namespace hcsim::cli
