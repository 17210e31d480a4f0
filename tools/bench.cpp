#include "tools/bench.h"

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#ifdef HCSIM_HAVE_CUDA
#include "backend/cuda_bench.h"
#endif
#ifdef HCSIM_HAVE_NCCL
#include "backend/nccl_bench.h"
#endif
#include "backend/data_group.h"
#include "backend/device.h"
#include "backend/gloo_mesh.h"
#include "backend/gpu_run.h"
#include "backend/round_timing.h"
#include "backend/thread_world.h"
#include "policy/task.h"
#include "policy/upstream_timeline.h"
#include "policy/variant.h"
#include "sim/kernel.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "tools/progress.h"

namespace hcsim {
extern const char* const kSeedScenarioJson;

namespace {

using Clock = std::chrono::steady_clock;

// A kernel-only actor: sleeps a pseudo-random time, `iterations` times.
struct KernelSleep {
  Kernel& kernel;
  TimeNs duration_ns;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { kernel.schedule_at(kernel.now_ns() + duration_ns, h); }
  void await_resume() const noexcept {}
};

Task<> sleeper(Kernel& k, std::uint64_t state, int iterations) {
  for (int i = 0; i < iterations; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    co_await KernelSleep{k, static_cast<TimeNs>((state >> 33) % 10'000)};
  }
}

struct KernelFigures {
  double events_per_s = 0;
  std::uint64_t events = 0;
};

KernelFigures bench_kernel(int actors, int iterations) {
  Kernel k;
  std::vector<Task<>> tasks;
  tasks.reserve(static_cast<std::size_t>(actors));
  for (int a = 0; a < actors; ++a) {
    tasks.push_back(sleeper(k, static_cast<std::uint64_t>(a) * 0x9e3779b97f4a7c15ULL + 1, iterations));
    k.schedule_at(0, tasks.back().handle());
  }
  const auto t0 = Clock::now();
  k.run(INT64_MAX);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return {static_cast<double>(k.events_processed()) / s, k.events_processed()};
}

struct ScenarioFigures {
  double ms_per_run = 0;
  double runs_per_s = 0;
  std::uint64_t kernel_events = 0;
  std::string verdict;
  std::string_view code_path;
};

ScenarioFigures bench_scenario(const Scenario& s, const char* variant, double seconds) {
  RunOptions o;
  o.fixes = *parse_variant(variant, nullptr);
  std::uint64_t runs = 0;
  ScenarioFigures f;
  const auto t0 = Clock::now();
  double elapsed = 0;
  do {
    const RunResult r = simulate(s, o);
    f.kernel_events = r.kernel_events;
    f.verdict = r.verdict.hang() ? "hang" : "complete";
    f.code_path = code_path_name(r.policy.path);
    ++runs;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds && runs < 1'000'000);
  f.ms_per_run = elapsed * 1e3 / static_cast<double>(runs);
  f.runs_per_s = static_cast<double>(runs) / elapsed;
  return f;
}

}  // namespace

namespace {

constexpr int kTransportRounds = 2000;
constexpr std::size_t kForwardFloats = 2048;  // a 2,048-token forward: one float per token, as the thread world sends
constexpr std::array<int, 4> kBenchTps{1, 2, 4, 8};

// What one transport costs per message the thread world sends, at one TP size; negative: not run.
struct TransportRow {
  double all_reduce_min_us = -1;    // a policy all_reduce(MIN) of 3 int64
  double agreement_us = -1;         // the 16-word descriptor all-gather every collective starts with
  double forward_frame_us = -1;     // the forward's descriptor on the data group
  double forward_sum_us = -1;       // the forward's activations sum on the data group
  std::string not_run;              // why, when not run
};

// Gloo over loopback, as the thread world uses it: policy messages on the scheduler's CPU group, the
// forward's on the data group.
TransportRow gloo_row(int tp) {
  constexpr std::array<const char*, 2> kGroups{"tp_cpu_group", "data_group"};
  GlooMesh mesh(groups_over_all_ranks(tp, kGroups));
  const std::unique_ptr<DataGroup> data = make_gloo_data_group(mesh, 1);
  const auto n = static_cast<std::size_t>(tp);
  std::vector<std::vector<std::int64_t>> words(n, std::vector<std::int64_t>(3, 1));
  std::vector<std::vector<std::int64_t>> frame(n, std::vector<std::int64_t>(kCollectiveFrameWords, 1));
  std::vector<std::vector<std::int64_t>> frames(n, std::vector<std::int64_t>(kCollectiveFrameWords * n));
  std::vector<std::vector<float>> activations(n, std::vector<float>(kForwardFloats, 1.0f));
  auto abort = [&] { mesh.abort(); };
  TransportRow row;
  row.all_reduce_min_us = median_round_us(
      tp, kTransportRounds, [&](int r) { mesh.all_reduce(0, r, words[static_cast<std::size_t>(r)], GlooReduce::kMin); },
      abort);
  row.agreement_us = median_round_us(
      tp, kTransportRounds,
      [&](int r) { mesh.all_gather(0, r, frame[static_cast<std::size_t>(r)], frames[static_cast<std::size_t>(r)]); },
      abort);
  row.forward_frame_us = median_round_us(
      tp, kTransportRounds, [&](int r) { data->all_gather(r, frame[static_cast<std::size_t>(r)], frames[static_cast<std::size_t>(r)]); },
      abort);
  row.forward_sum_us =
      median_round_us(tp, kTransportRounds, [&](int r) { data->all_reduce_sum(r, activations[static_cast<std::size_t>(r)]); }, abort);
  return row;
}

// NCCL, one rank per GPU: the same messages, the policy's in device memory (what NCCL would cost
// the policy if it ran there), the forward's through the thread world's data group.
TransportRow nccl_row(int tp) {
  TransportRow row;
#ifdef HCSIM_HAVE_NCCL
  row.not_run = nccl_environment_problem();
  if (!row.not_run.empty()) return row;
  try {
    const NcclLatency l = measure_nccl_latency(tp, kForwardFloats, kTransportRounds);
    row.all_reduce_min_us = l.all_reduce_min_us;
    row.agreement_us = l.all_gather_frame_us;
    row.forward_frame_us = l.forward_frame_us;
    row.forward_sum_us = l.forward_sum_us;
  } catch (const DeviceUnavailable& e) {
    row.not_run = e.what();
  } catch (const std::runtime_error& e) {  // NCCL failed here: the other figures still stand
    row.not_run = std::string("NCCL failed: ") + e.what();
  }
#else
  (void)tp;
  row.not_run = "this hcsim was built without NCCL";
#endif
  return row;
}

void print_transport_table(const char* transport, const std::vector<TransportRow>& rows) {
  const std::array<std::pair<const char*, double TransportRow::*>, 4> lines{{
      {"all_reduce(MIN) of 3 int64 (a policy message)", &TransportRow::all_reduce_min_us},
      {"all_gather of the 16-word descriptor", &TransportRow::agreement_us},
      {"forward: descriptor on the data group", &TransportRow::forward_frame_us},
      {"forward: sum of 2,048 floats on the data group", &TransportRow::forward_sum_us},
  }};
  for (const auto& [what, field] : lines) {
    std::printf("  %-4s %-48s", transport, what);
    for (const TransportRow& row : rows) {
      if (row.*field < 0) {
        std::printf(" %9s", "-");
      } else {
        std::printf(" %9.1f", row.*field);
      }
    }
    std::printf("\n");
  }
}

int bench_gpu() {
#ifdef HCSIM_HAVE_CUDA
  try {
    for (const auto& [page_bytes, pages] : {std::pair<std::int64_t, std::int32_t>{4096, 16384}, {65536, 2048}}) {
      const LoadBackFigure f = measure_load_back(page_bytes, pages, 21);
      std::printf("load-back %3lld KiB pages x %5d: gather kernel %.1f GB/s, cudaMemcpyBatchAsync %.1f GB/s, bulk pinned cudaMemcpy %.1f GB/s; "
                  "gather at %.0f%% of bulk; %s\n",
                  static_cast<long long>(page_bytes / 1024), pages, f.gather_gbps, f.batch_memcpy_gbps, f.bulk_memcpy_gbps,
                  100.0 * f.gather_gbps / f.bulk_memcpy_gbps, f.verified ? "verified" : "CHECKSUM MISMATCH");
    }
  } catch (const DeviceUnavailable& e) {
    std::printf("load-back not run: %s\n", e.what());
  }
#else
  std::printf("load-back not run: this hcsim was built without CUDA\n");
#endif
  std::vector<TransportRow> gloo;
  std::vector<TransportRow> nccl;
  for (const int tp : kBenchTps) {
    gloo.push_back(gloo_row(tp));
    nccl.push_back(nccl_row(tp));
  }
  std::printf("\ncollective latency in us, median of %d rounds; ranks are threads, NCCL's one per GPU:\n", kTransportRounds);
  std::printf("  %-53s", "");
  for (const int tp : kBenchTps) std::printf("      TP %d", tp);
  std::printf("\n");
  print_transport_table("Gloo", gloo);
  print_transport_table("NCCL", nccl);
  for (std::size_t i = 0; i < kBenchTps.size(); ++i) {
    if (!nccl[i].not_run.empty()) std::printf("  NCCL at TP %d not run: %s\n", kBenchTps[i], nccl[i].not_run.c_str());
  }
  std::printf("A policy agreement round is the Gloo descriptor all-gather: policy collectives stay on Gloo CPU groups, as upstream's.\n");
  return 0;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  constexpr unsigned kHelpColumns = 120;
  double seconds = 1.0;
  int actors = 1000, iterations = 5000;
  po::options_description d("bench options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")
      ("seconds", po::value(&seconds)->default_value(1.0)->value_name("S"), "time spent on each scenario measurement")
      ("actors", po::value(&actors)->default_value(1000)->value_name("N"), "kernel benchmark: concurrent actors")
      ("iterations", po::value(&iterations)->default_value(5000)->value_name("N"), "kernel benchmark: sleeps per actor")
      ("json", "print the figures as JSON (not with --gpu)")
      ("quiet,q", "no progress on standard error")
      ("gpu", "instead: load-back bandwidth (gather of 4 KiB and 64 KiB pages) against a bulk pinned cudaMemcpy in\n"
              "the same run, and Gloo's and NCCL's latency for the messages the policy and the forward send, at TP\n"
              "1, 2, 4 and 8 (NCCL where the node has a GPU per rank)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(d).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << "usage: hcsim bench [options]\n\n"
                 "Measures the kernel (events per second: actors sleeping random times on one queue) and the seed\n"
                 "scenario (wall time per full run, from an in-memory scenario to its verdict). Wall-clock figures:\n"
                 "run on a quiet machine and compare like with like.\n\n"
              << d << "\n";
    return 0;
  }
  if (seconds <= 0 || seconds > 600 || actors < 1 || actors > 1'000'000 || iterations < 1 || iterations > 100'000'000) {
    std::cerr << "hcsim bench: --seconds in (0, 600], --actors in [1, 1e6], --iterations in [1, 1e8]\n";
    return 2;
  }
  if (vm.count("gpu")) {
    if (vm.count("json")) {
      std::cerr << "hcsim bench: --json is for the simulator's figures; --gpu prints text\n";
      return 2;
    }
    return bench_gpu();
  }
  const bool json = vm.count("json") > 0;
  // The seed scenario on HiMamba before and at the seed fix, and on the unified tree at the newest
  // upstream the model follows: the two code paths in one run.
  constexpr std::array<const char*, 3> kVariants{"pre-fix", "seed-fix", "2026-08-20"};
  Progress progress(vm.count("quiet") ? nullptr : stderr, 1 + static_cast<int>(kVariants.size()), "measurements",
                    "kernel, seed scenario pre-fix, seed-fix and 2026-08-20");
  const KernelFigures k = bench_kernel(actors, iterations);
  progress.update(1);
  nlohmann::json out = {{"kernel", {{"events_per_s", k.events_per_s}, {"events", k.events}, {"actors", actors}}}};
  if (!json) {
    progress.clear_line();
    std::printf("kernel: %.2f M events/s (%llu events, %d actors)\n", k.events_per_s / 1e6, static_cast<unsigned long long>(k.events), actors);
  }
  const Scenario s = parse_scenario(kSeedScenarioJson, "seed scenario (built in)");
  int done = 1;
  for (const char* variant : kVariants) {
    const ScenarioFigures f = bench_scenario(s, variant, seconds);
    progress.update(++done);
    out["seed_scenario"][variant] = {{"verdict", f.verdict},       {"code_path", f.code_path},          {"ms_per_run", f.ms_per_run},
                                     {"runs_per_s", f.runs_per_s}, {"kernel_events_per_run", f.kernel_events}};
    if (json) continue;
    progress.clear_line();
    std::printf("seed scenario %-10s %-8s %.4f ms per run, %.0f runs/s (%llu kernel events per run, %s)\n", variant, f.verdict.c_str(),
                f.ms_per_run, f.runs_per_s, static_cast<unsigned long long>(f.kernel_events), std::string(f.code_path).c_str());
  }
  progress.finish();
  if (json) std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace hcsim
