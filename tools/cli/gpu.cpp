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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/gpu_run.h"
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
  if (st.actors_abandoned > 0) out << "  " << st.actors_abandoned << " actor thread(s) could not be stopped; the process exits\n";
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
  RunOptions opt = run_options(va);
  opt.wait_for.all_actors = vm.count("all-actors") > 0;
  const auto t0 = std::chrono::steady_clock::now();
  const GpuRunResult g = run_on_gpu(s, opt, gpu_options(ga));
  const RunLabel label{variant_name(va) + " (gpu)", wall_ms_since(t0)};
  if (!dot.empty()) write_output(dot, g.run.wait_for_dot);
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
    refuse_trace(path, "validate", "hcsim replay " + path);
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
  std::int64_t planned = 0;
  for (const Scenario& s : scenarios) planned += static_cast<std::int64_t>(s.expect.size());
  Progress progress(vm.count("quiet") ? nullptr : stderr, planned, "runs", "runs in both worlds");
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
      progress.clear_line();
      std::printf("%-7s %-34s tp %d %-16s %-13s %-20s round %3lld us, times within %.2f ms%s%s\n", c.status.c_str(), s.name.c_str(), s.world.ranks,
                  e.variant.c_str(), std::string(policy_name(e.policy.value_or(s.policy.policy))).c_str(), c.gpu_verdict.c_str(),
                  static_cast<long long>(c.round_ns / 1'000), static_cast<double>(c.worst_ns) / 1e6, c.why.empty() ? "" : ": ", c.why.c_str());
      std::fflush(stdout);
      progress.update(runs);
      if (abandoned) {
        std::printf("validate: actor threads of the last gpu run could not be stopped; ending here after %d run(s), %d differ\n", runs, differ);
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
