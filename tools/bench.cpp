#include "tools/bench.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>

#ifdef HCSIM_HAVE_CUDA
#include "backend/cuda_bench.h"
#endif
#include "backend/gloo_mesh.h"
#include "policy/task.h"
#include "sim/kernel.h"
#include "sim/scenario.h"
#include "sim/simulation.h"

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
};

ScenarioFigures bench_scenario(const Scenario& s, const char* preset, double seconds) {
  RunOptions o;
  o.fixes = *preset_by_name(preset);
  std::uint64_t runs = 0;
  ScenarioFigures f;
  const auto t0 = Clock::now();
  double elapsed = 0;
  do {
    const RunResult r = simulate(s, o);
    f.kernel_events = r.kernel_events;
    f.verdict = r.verdict.hang() ? "hang" : "complete";
    ++runs;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds && runs < 1'000'000);
  f.ms_per_run = elapsed * 1e3 / static_cast<double>(runs);
  f.runs_per_s = static_cast<double>(runs) / elapsed;
  return f;
}

}  // namespace

namespace {

// One policy agreement round (the descriptor exchange every collective makes) over Gloo on
// loopback, per TP size: the median of many rounds, each rank on its own thread.
double agreement_round_us(int tp, int rounds) {
  GlooMesh mesh(tp);
  std::vector<double> per_round(static_cast<std::size_t>(rounds));
  std::vector<std::thread> ranks;
  for (int r = 0; r < tp; ++r) {
    ranks.emplace_back([&, r] {
      std::vector<std::int64_t> frame(16, r);
      std::vector<std::int64_t> frames(16 * static_cast<std::size_t>(tp));
      for (int i = 0; i < rounds; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        mesh.all_gather(GlooChannel::kScheduler, r, frame, frames);
        if (r == 0) per_round[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      }
    });
  }
  for (auto& t : ranks) t.join();
  std::sort(per_round.begin(), per_round.end());
  return per_round[per_round.size() / 2];
}

int bench_gpu() {
#ifdef HCSIM_HAVE_CUDA
  for (const auto& [page_bytes, pages] : {std::pair<std::int64_t, std::int32_t>{4096, 16384}, {65536, 2048}}) {
    const LoadBackFigure f = measure_load_back(page_bytes, pages, 21);
    std::printf("load-back %3lld KiB pages x %5d: gather kernel %.1f GB/s, cudaMemcpyBatchAsync %.1f GB/s, bulk pinned cudaMemcpy %.1f GB/s; "
                "gather at %.0f%% of bulk; %s\n",
                static_cast<long long>(page_bytes / 1024), pages, f.gather_gbps, f.batch_memcpy_gbps, f.bulk_memcpy_gbps,
                100.0 * f.gather_gbps / f.bulk_memcpy_gbps, f.verified ? "verified" : "CHECKSUM MISMATCH");
  }
#else
  std::printf("load-back: this hcsim was built without CUDA\n");
#endif
  for (int tp : {2, 4, 8}) std::printf("policy agreement round over Gloo, TP %d: %.1f us (median of 2000)\n", tp, agreement_round_us(tp, 2000));
  return 0;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  double seconds = 1.0;
  int actors = 1000, iterations = 5000;
  po::options_description d("bench options");
  d.add_options()("help,h", "show this help")
      ("seconds", po::value(&seconds)->default_value(1.0), "time spent on each scenario measurement")
      ("actors", po::value(&actors)->default_value(1000), "kernel benchmark: concurrent actors")
      ("iterations", po::value(&iterations)->default_value(5000), "kernel benchmark: sleeps per actor")
      ("gpu", "instead: load-back bandwidth (gather of 4 KiB and 64 KiB pages) against a bulk pinned cudaMemcpy in\n"
              "the same run, and the cost of one policy agreement round over Gloo at TP 2, 4 and 8");
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
  if (vm.count("gpu")) return bench_gpu();
  const KernelFigures k = bench_kernel(actors, iterations);
  std::printf("kernel: %.2f M events/s (%llu events, %d actors)\n", k.events_per_s / 1e6, static_cast<unsigned long long>(k.events), actors);
  const Scenario s = parse_scenario(kSeedScenarioJson, "seed scenario (built in)");
  for (const char* preset : {"pre-fix", "seed-fix"}) {
    const ScenarioFigures f = bench_scenario(s, preset, seconds);
    std::printf("seed scenario %-9s %-8s %.4f ms per run, %.0f runs/s (%llu kernel events per run)\n", preset, f.verdict.c_str(), f.ms_per_run,
                f.runs_per_s, static_cast<unsigned long long>(f.kernel_events));
  }
  return 0;
}

}  // namespace hcsim
