#include "tools/cli/cli.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/gpu_run.h"
#include "backend/world_comparison.h"
#include "run/limits.h"
#include "tools/report.h"

namespace hcsim::cli {

namespace {

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
      ("device", po::value(&a.device)->default_value("cuda")->value_name("DEVICE"), "cuda | host (host memory, no GPU: the CPU side alone)")
      ("ranks-per-gpu", po::value(&a.ranks_per_gpu)->default_value(0)->value_name("N"), "ranks placed on each GPU; 0: every rank shares GPU 0")
      ("data-group", po::value(&a.data_group)->default_value("auto")->value_name("GROUP"),
       "what carries the forward's collectives: nccl (one communicator per rank; needs --ranks-per-gpu 1),\n"
       "gloo, or auto (nccl where it can run). Policy collectives are on Gloo CPU groups either way")
      ("watchdog-ms", po::value(&a.watchdog_ms)->default_value(1000)->value_name("MS"), "declare a hang when a collective stays open, or nothing progresses, this long")
      ("page-bytes", po::value(&a.page_bytes)->default_value(64 * 1024)->value_name("BYTES"), "real bytes of a KV page and a sidecar object in memory and on disk (timing follows the scenario)");
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
  if (st.actors_abandoned > 0) {
    out << "  " << st.actors_abandoned << " actor thread(s) could not be stopped (" << st.abandoned_actors << "); the process exits\n";
  }
}

}  // namespace

int cmd_gpu(const Args& args) {
  VariantArgs va;
  GpuArgs ga;
  std::string path, record, dot, expect;
  po::options_description d("gpu options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenario", po::value(&path)->value_name("SCENARIO"), "scenario JSON file ('-': standard input)");
  add_variant_options(d, va);
  add_gpu_options(d, ga);
  d.add_options()
      ("record", po::value(&record)->value_name("FILE"),
       "write the run as a trace to FILE (a hang is always recorded: default results/gpu-hang-NAME.jsonl, NAME the scenario's)")
      ("dot", po::value(&dot)->value_name("FILE"), "write the wait-for graph to FILE")
      ("all-actors", "--dot: draw every actor, idle ones too")
      ("json", "print the report as JSON")
      ("expect", po::value(&expect)->value_name("WHAT"), "hang | complete: exit 3 if the verdict differs");
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
             "  hcsim gpu scenarios/himamba-sidecar-lag.json --preset seed-fix --record results/run.jsonl\n"
             "  hcsim replay results/gpu-hang-himamba-sidecar-lag.jsonl          # the GPU hang in the simulator\n"
             "  hcsim gpu scenarios/himamba-sidecar-lag.json --device host        # no GPU: CPU side only\n")) {
    return kExitOk;
  }
  if (path.empty()) throw BadInput("gpu: missing SCENARIO (see 'hcsim gpu --help')");
  refuse_trace(path, "gpu", "hcsim replay " + path);
  take_seed(vm, va);
  if (!expect.empty() && expect != "hang" && expect != "complete") throw BadInput("--expect: expected hang or complete; got '" + expect + "'");
  const Scenario s = load_scenario_file(path);
  const bool json = vm.count("json") > 0;
  std::FILE* report = report_stream({dot, record}, json);
  va.fallback = s.upstream_at;
  check_family_date(va, s);
  RunOptions opt = run_options(va);
  const WaitForGraphOptions graph{.all_actors = vm.count("all-actors") > 0};
  const auto t0 = std::chrono::steady_clock::now();
  const GpuRunResult g = run_on_gpu(s, opt, gpu_options(ga));
  const RunLabel label{variant_name(va) + " (gpu)", wall_ms_since(t0)};
  if (!dot.empty()) write_output(dot, g.run.wait_for_dot(graph));
  if (record.empty() && g.stats.watchdog_fired) record = default_output("gpu-hang-" + safe_file_name(s.name) + ".jsonl");
  if (!record.empty()) record_trace(record, path, s, g.run, variant_name(va), "gpu");
  if (json) {
    const ThreadWorldStats& st = g.stats;
    nlohmann::json j = report_json(s, g.run, label);
    j["gpu"] = {{"device", g.device}, {"data_group", st.data_group}, {"mean_collective_round_us", g.mean_collective_round_ns / 1'000},
                {"model_lag_max_us", st.model_lag_max_ns / 1'000}, {"sleeps_behind_model", st.sleeps_behind_model},
                {"storage_calls", st.storage_calls}, {"storage_overruns", st.storage_overruns}, {"pages_read", st.pages_read},
                {"pages_written", st.pages_written}, {"pages_corrupt", st.pages_corrupt}, {"forwards", st.forwards},
                {"load_back_pages", st.load_back_pages}, {"leaked_slots_at_exit", g.leaked_slots_at_exit},
                {"watchdog", st.watchdog_fired ? nlohmann::json{{"at_ms", st.watchdog_fired_ns / 1'000'000}, {"reason", st.watchdog_reason},
                                                                {"data_group_aborted", st.data_group_aborted}}
                                               : nlohmann::json()},
                {"trace", record.empty() ? nlohmann::json() : nlohmann::json(record)}};
    print_json(j);
  } else {
    std::ostringstream text;
    print_report(text, s, g.run, label);
    print_gpu_section(text, s, g);
    if (!record.empty()) text << "trace: " << record << "\n";
    std::fputs(text.str().c_str(), report);
  }
  std::fflush(report);
  int code = !expect.empty() && (expect == "hang") != g.run.verdict.hang() ? kExitUnexpected : kExitOk;
  if (g.stats.watchdog_fired) code = kExitWatchdog;
  if (g.stats.actors_abandoned > 0) std::_Exit(code);  // threads stuck in calls nothing interrupts
  return code;
}

namespace {

// How many times validate runs a GPU run that lost the model's pace and got another verdict.
constexpr int kValidateAttemptsMax = 3;

// Every scenario validate runs, read before any run so that a bad file fails the command at once:
// each at its own TP size, or at each of `tps`. A size lacking a rank the scenario names is
// skipped, with a line that says so, and counted in `skipped`; so is a scenario with attention
// groups, which the GPU world does not run (pipeline stages it runs).
std::vector<Scenario> validate_scenarios(const std::vector<std::string>& paths, const std::vector<int>& tps, int& skipped) {
  for (const int tp : tps) {
    if (tp < 1 || tp > limit_value(Limit::kRanks)) {
      throw BadInput("--tp: expected 1 to " + std::to_string(limit_value(Limit::kRanks)) + "; got " + std::to_string(tp) + " " + limit_hint(Limit::kRanks));
    }
  }
  std::vector<Scenario> scenarios;
  for (const std::string& path : paths) {
    refuse_trace(path, "validate", "hcsim replay " + path);
    Scenario own = load_scenario_file(path);
    if (const Topology t = own.world.topology(); t.dp_attention() || t.cp > 1) {
      std::printf("skipped %s: %s; the GPU world runs every group over a stage's TP ranks\n", path.c_str(), t.split_text().c_str());
      ++skipped;
      continue;
    }
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
  return scenarios;
}

// One expectation of a scenario in both worlds, compared (backend/world_comparison.h).
struct ValidatedRun {
  WorldComparison comparison;
  bool abandoned = false;  // actor threads of the GPU run could not be stopped
  std::string abandoned_actors;  // which, and in what call
};

ValidatedRun validate_expectation(const Scenario& s, const Expectation& e, const GpuRunOptions& gopt) {
  RunOptions o;
  o.fixes = e.fixes;
  o.policy = e.policy;
  const RunResult sim = simulate(s, o);
  ValidatedRun v;
  int attempts = 0;
  // A run that lost the model's pace can end with another verdict (a transfer landing on the
  // other side of a termination check). That says nothing of the policy, so it is run again.
  do {
    ++attempts;
    const GpuRunResult gpu = run_on_gpu(s, o, gopt);
    v.comparison = compare_worlds(s, sim, gpu);
    v.abandoned = gpu.stats.actors_abandoned > 0;
    v.abandoned_actors = gpu.stats.abandoned_actors;
  } while (!v.abandoned && v.comparison.match == WorldMatch::kDiffer && v.comparison.lost_pace && attempts < kValidateAttemptsMax);
  std::string& why = v.comparison.why;
  if (attempts > 1) why.append(why.empty() ? "" : "; ").append(std::to_string(attempts)).append(" attempts: the earlier lost the model's pace");
  return v;
}

void print_validate_line(const Scenario& s, const Expectation& e, const WorldComparison& c) {
  const Topology t = s.world.topology();
  const std::string size = (t.pp > 1 ? "pp " + std::to_string(t.pp) + " x " : std::string()) + "tp " + std::to_string(t.tp);
  std::printf("%-7s %-34s %-4s %-16s %-13s %-20s round %3lld us, times within %.2f ms%s%s\n", std::string(world_match_name(c.match)).c_str(),
              s.name.c_str(), size.c_str(), e.variant.c_str(), std::string(policy_name(e.policy.value_or(s.policy.policy))).c_str(),
              c.gpu_verdict.c_str(), static_cast<long long>(c.round_ns / 1'000), static_cast<double>(c.worst_ns) / 1e6, c.why.empty() ? "" : ": ",
              c.why.c_str());
  std::fflush(stdout);
}

}  // namespace

int cmd_validate(const Args& args) {
  GpuArgs ga;
  std::vector<std::string> paths;
  std::vector<int> tps;
  po::options_description d("validate options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenario", po::value(&paths)->composing()->value_name("SCENARIO"), "scenario JSON files");
  d.add_options()("tp", po::value(&tps)->multitoken()->value_name("N..."),
                  "run every scenario at each of these TP sizes instead of its own, e.g. --tp 2 4 8; a scenario naming a\n"
                  "rank the size lacks is listed as skipped")
      ("quiet,q", "no progress on standard error");
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
  int skipped = 0;
  const std::vector<Scenario> scenarios = validate_scenarios(paths, tps, skipped);
  int differ = 0;
  int unpaced = 0;
  int runs = 0;
  std::int64_t planned = 0;
  for (const Scenario& s : scenarios) planned += static_cast<std::int64_t>(s.expect.size());
  Progress progress(vm.count("quiet") ? nullptr : stderr, planned, "runs", "runs in both worlds");
  for (const Scenario& s : scenarios) {
    for (const Expectation& e : s.expect) {
      const ValidatedRun v = validate_expectation(s, e, gopt);
      ++runs;
      differ += v.comparison.match == WorldMatch::kDiffer ? 1 : 0;
      unpaced += v.comparison.match == WorldMatch::kUnpaced ? 1 : 0;
      progress.clear_line();
      print_validate_line(s, e, v.comparison);
      progress.update(runs);
      if (v.abandoned) {
        std::printf("validate: actor threads of the last gpu run could not be stopped (%s); ending here after %d run(s), %d differ\n",
                    v.abandoned_actors.c_str(), runs, differ);
        std::fflush(stdout);
        std::_Exit(kExitInternal);
      }
    }
  }
  progress.finish();
  std::printf("%d run(s) in both worlds, %d differ, %d compared on the verdict alone (unpaced)", runs, differ, unpaced);
  if (skipped > 0) std::printf(", %d scenario size(s) skipped", skipped);
  std::printf("\n");
  return differ == 0 ? kExitOk : kExitUnexpected;
}

}  // namespace hcsim::cli
