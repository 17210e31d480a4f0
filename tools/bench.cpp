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
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

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
#include "policy/variant.h"
#include "policy/assert.h"
#include "sim/four_ary_heap.h"
#include "sim/kernel.h"
#include "tools/run_metrics.h"
#include "tools/sweep_grid.h"
#include "run/scenario.h"
#include "tools/progress.h"

namespace hcsim {
extern const char* const kSeedScenarioJson;

namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_s() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("model name")) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown CPU";
}

// The kernel's and the anchor's pattern: `actors` each waiting a pseudo-random time under 10 us,
// `iterations` times.
std::uint64_t next_state(std::uint64_t state) { return state * 6364136223846793005ULL + 1442695040888963407ULL; }
TimeNs sleep_of(std::uint64_t state) { return static_cast<TimeNs>((state >> 33) % 10'000); }

// A kernel-only actor.
struct KernelSleep {
  Kernel& kernel;
  TimeNs duration_ns;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { kernel.schedule_at(kernel.now_ns() + duration_ns, h); }
  void await_resume() const noexcept {}
};

Task<> sleeper(Kernel& k, std::uint64_t state, int iterations) {
  for (int i = 0; i < iterations; ++i) {
    state = next_state(state);
    co_await KernelSleep{k, sleep_of(state)};
  }
}

std::uint64_t actor_seed(int a) { return static_cast<std::uint64_t>(a) * 0x9e3779b97f4a7c15ULL + 1; }

std::uint64_t run_kernel(int actors, int iterations) {
  Kernel k;
  std::vector<Task<>> tasks;
  tasks.reserve(static_cast<std::size_t>(actors));
  for (int a = 0; a < actors; ++a) {
    tasks.push_back(sleeper(k, actor_seed(a), iterations));
    k.schedule_at(0, tasks.back().handle());
  }
  k.run(INT64_MAX);
  return k.events_processed();
}

// The same waits as plain events in the kernel's heap: no coroutine, no actor, no model.
std::uint64_t run_bare_heap(int actors, int iterations) {
  struct Wake {
    TimeNs time_ns;
    std::uint64_t seq;
    std::uint64_t state;
    int left;
  };
  struct Earlier {
    bool operator()(const Wake& a, const Wake& b) const { return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.seq < b.seq; }
  };
  FourAryHeap<Wake, Earlier> heap;
  heap.reserve(static_cast<std::size_t>(actors));
  std::uint64_t seq = 0, events = 0;
  for (int a = 0; a < actors; ++a) heap.push({0, seq++, actor_seed(a), iterations});
  while (!heap.empty()) {  // bounded: actors x (iterations + 1) pops
    Wake w = heap.pop();
    ++events;
    if (w.left == 0) continue;
    w.state = next_state(w.state);
    heap.push({w.time_ns + sleep_of(w.state), seq++, w.state, w.left - 1});
  }
  return events;
}

// One bench line: medians over repetitions, each repetition as many runs as fill `seconds` (one
// at least), timed by the wall clock and by this thread's CPU clock.
struct Figure {
  std::string name;
  std::string measures;
  bool ran = false;
  std::string not_run;
  std::uint64_t runs_per_repetition = 0;
  std::uint64_t events_per_run = 0;
  double wall_ms_per_run = 0;
  double cpu_ms_per_run = 0;
  std::string outcome;  // the run's verdict, for the model's lines
  double events_per_s() const { return wall_ms_per_run > 0 ? static_cast<double>(events_per_run) / wall_ms_per_run * 1e3 : 0; }
  double cpu_events_per_s() const { return cpu_ms_per_run > 0 ? static_cast<double>(events_per_run) / cpu_ms_per_run * 1e3 : 0; }
};

double median(std::vector<double> v) {
  HCSIM_ASSERT(!v.empty());
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// `once()` runs one run and returns its events.
template <typename Once>
void measure(Figure& f, int repetitions, double seconds, Once once) {
  std::vector<double> wall_ms, cpu_ms;
  for (int r = 0; r < repetitions; ++r) {
    std::uint64_t runs = 0;
    const auto w0 = Clock::now();
    const double c0 = thread_cpu_s();
    double elapsed = 0;
    do {  // bounded: by time, and by a run count no benchmark reaches
      f.events_per_run = once();
      ++runs;
      elapsed = std::chrono::duration<double>(Clock::now() - w0).count();
    } while (elapsed < seconds && runs < 10'000'000);
    wall_ms.push_back(elapsed * 1e3 / static_cast<double>(runs));
    cpu_ms.push_back((thread_cpu_s() - c0) * 1e3 / static_cast<double>(runs));
    f.runs_per_repetition = runs;
  }
  f.wall_ms_per_run = median(wall_ms);
  f.cpu_ms_per_run = median(cpu_ms);
  f.ran = true;
}

// A full run as a sweep runs it: from the in-memory scenario to the row's figures and digest.
std::uint64_t run_model(const Scenario& s, const RunOptions& o, std::string& outcome) {
  const RunMetrics m = simulate_for_metrics(s, o);
  outcome = m.verdict == HangKind::kNone ? "complete" : std::string(hang_kind_name(m.verdict));
  return m.events;
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

namespace {

constexpr const char* kReplayGrid = "grids/mooncake-replay-benchmark.json";

// The Mooncake replay benchmark's run, or why it cannot run here.
std::optional<std::pair<Scenario, RunOptions>> replay_run(std::string& why) {
  if (!std::filesystem::exists(kReplayGrid)) {
    why = std::string(kReplayGrid) + " not found: run hcsim bench from the project root";
    return std::nullopt;
  }
  const char* traces = std::getenv("HCSIM_TRACES");
  if (traces == nullptr || *traces == '\0') {
    why = "HCSIM_TRACES is not set (the folder of the public Mooncake traces, e.g. ../shared/traces-public)";
    return std::nullopt;
  }
  if (!std::filesystem::exists(std::filesystem::path(traces) / "conversation_trace.jsonl")) {
    why = std::string("no conversation_trace.jsonl in HCSIM_TRACES=") + traces;
    return std::nullopt;
  }
  const SweepGrid g = load_sweep_grid(kReplayGrid);
  return std::make_pair(*g.point_of(0).scenario, g.options_of(0));
}

void print_figures(const std::vector<Figure>& figures, const Figure& heap, int repetitions, double seconds) {
  std::printf("hcsim bench: one thread; each figure the median of %d repetitions of at least %.2f s; %s, %u cores\n\n", repetitions, seconds,
              cpu_model().c_str(), std::max(1U, std::thread::hardware_concurrency()));
  std::printf("%-30s %10s %11s %12s %12s %11s %11s %9s\n", "line", "runs/rep", "events/run", "wall ms/run", "CPU ms/run", "M events/s", "CPU M ev/s",
              "% of heap");
  for (const Figure& f : figures) {
    if (!f.ran) {
      std::printf("%-30s not run: %s\n", f.name.c_str(), f.not_run.c_str());
      continue;
    }
    std::printf("%-30s %10llu %11llu %12.4f %12.4f %11.2f %11.2f %8.0f%%%s%s\n", f.name.c_str(), static_cast<unsigned long long>(f.runs_per_repetition),
                static_cast<unsigned long long>(f.events_per_run), f.wall_ms_per_run, f.cpu_ms_per_run, f.events_per_s() / 1e6,
                f.cpu_events_per_s() / 1e6, 100.0 * f.cpu_events_per_s() / heap.cpu_events_per_s(), f.outcome.empty() ? "" : "  ",
                f.outcome.c_str());
  }
  std::printf("\nwhat each line measures:\n");
  for (const Figure& f : figures) std::printf("  %-28s %s\n", f.name.c_str(), f.measures.c_str());
  std::printf("  %% of heap: the line's events per CPU second over the bare heap's, measured in this process.\n");
}

void print_json(const std::vector<Figure>& figures, int repetitions, double seconds) {
  const Figure& heap = figures.front();
  nlohmann::json out = {{"cpu", cpu_model()}, {"repetitions", repetitions}, {"seconds", seconds}, {"lines", nlohmann::json::array()}};
  for (const Figure& f : figures) {
    nlohmann::json j = {{"name", f.name}, {"measures", f.measures}, {"ran", f.ran}};
    if (!f.ran) {
      j["not_run"] = f.not_run;
    } else {
      j.update({{"runs_per_repetition", f.runs_per_repetition}, {"events_per_run", f.events_per_run}, {"wall_ms_per_run", f.wall_ms_per_run},
                {"cpu_ms_per_run", f.cpu_ms_per_run}, {"events_per_s", f.events_per_s()}, {"cpu_events_per_s", f.cpu_events_per_s()},
                {"cpu_share_of_heap", f.cpu_events_per_s() / heap.cpu_events_per_s()}});
      if (!f.outcome.empty()) j["outcome"] = f.outcome;
    }
    out["lines"].push_back(j);
  }
  std::cout << out.dump(2) << "\n";
}

// Every line, measured in turn: the two anchors, the seed scenario's three, the replay's.
std::vector<Figure> measure_lines(int repetitions, double seconds, int actors, int iterations, bool replay_too, bool quiet) {
  std::vector<Figure> figures;
  figures.reserve(6);  // every line below: a line's reference stays good
  auto line = [&](std::string name, std::string measures) -> Figure& {
    Figure& f = figures.emplace_back();
    f.name = std::move(name);
    f.measures = std::move(measures);
    return f;
  };
  line("4-ary heap (bare)", "pops of " + std::to_string(actors) + " actors' random waits (< 10 us, " + std::to_string(iterations) +
                                " each) from the kernel's heap type, as plain structs: the anchor");
  line("kernel (bare)", "the same waits as coroutines resumed by the kernel: the simulator's engine without a model");
  const Scenario seed = parse_scenario(kSeedScenarioJson, "seed scenario (built in)");
  struct ModelLine {
    const char* name;
    const char* variant;
    const char* measures;
  };
  const std::array<ModelLine, 3> model_lines{{
      {"seed pre-fix (HiMamba)", "pre-fix", "the seed scenario before #27366: 2 ranks, the mismatch hang at 16 ms, diagnosed"},
      {"seed seed-fix (HiMamba)", "seed-fix", "the seed scenario at #27366: 505 ms of model time to completion, all invariants judged"},
      {"seed 2026-08-20 (unified tree)", "2026-08-20", "the seed scenario on upstream at 2026-08-20: the unified radix tree's path"},
  }};
  for (const ModelLine& m : model_lines) line(m.name, m.measures);
  Figure& replay = line("Mooncake replay, TP 4", "12,031 requests of the conversation trace at TP 4 (timeout, seed-fix, zero-copy L3, "
                                                "host eviction, write-through): " + std::string(kReplayGrid));
  Progress progress(quiet ? nullptr : stderr, static_cast<std::int64_t>(figures.size()), "lines", "bench");
  int done = 0;
  measure(figures[0], repetitions, seconds, [&] { return run_bare_heap(actors, iterations); });
  progress.update(++done);
  measure(figures[1], repetitions, seconds, [&] { return run_kernel(actors, iterations); });
  progress.update(++done);
  for (std::size_t i = 0; i < model_lines.size(); ++i) {
    Figure& f = figures[2 + i];
    RunOptions o;
    o.fixes = *parse_variant(model_lines[i].variant, nullptr);
    measure(f, repetitions, seconds, [&] { return run_model(seed, o, f.outcome); });
    progress.update(++done);
  }
  if (!replay_too) {
    replay.not_run = "--no-replay";
  } else if (const auto run = replay_run(replay.not_run)) {
    measure(replay, repetitions, 0, [&] { return run_model(run->first, run->second, replay.outcome); });
  }
  progress.update(++done);
  progress.finish();
  return figures;
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  constexpr unsigned kHelpColumns = 120;
  double seconds = 0.5;
  int repetitions = 5, actors = 1000, iterations = 5000;
  po::options_description d("bench options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")
      ("repetitions", po::value(&repetitions)->default_value(5)->value_name("N"), "repetitions of each line; the figures are their medians")
      ("seconds", po::value(&seconds)->default_value(0.5)->value_name("S"), "least time of one repetition (a line runs whole runs: one at least)")
      ("actors", po::value(&actors)->default_value(1000)->value_name("N"), "kernel and heap lines: concurrent actors")
      ("iterations", po::value(&iterations)->default_value(5000)->value_name("N"), "kernel and heap lines: waits per actor")
      ("no-replay", "leave out the Mooncake replay line (a few seconds a repetition)")
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
                 "Events per second of the full model beside two anchors measured in the same process: a bare four-ary\n"
                 "heap (the kernel's queue, with no coroutine or model) and the bare kernel (coroutines sleeping random\n"
                 "times). The model's lines: the seed scenario pre-fix (its hang at 16 ms) and at the seed fix (505 ms\n"
                 "of model time) on HiMamba, on the unified tree at 2026-08-20, and the Mooncake conversation trace at\n"
                 "TP 4 (grids/mooncake-replay-benchmark.json; needs HCSIM_TRACES). Each is a whole run as a sweep runs\n"
                 "it, from the in-memory scenario to its figures and digest. Every figure is a median of repetitions,\n"
                 "in wall and in this thread's CPU time: on a shared machine, compare CPU figures, within one run.\n\n"
                 "example:\n"
                 "  HCSIM_TRACES=../shared/traces-public ./build/hcsim bench\n\n"
              << d << "\n";
    return 0;
  }
  if (seconds <= 0 || seconds > 600 || repetitions < 1 || repetitions > 1000 || actors < 1 || actors > 1'000'000 || iterations < 1 ||
      iterations > 100'000'000) {
    std::cerr << "hcsim bench: --seconds in (0, 600], --repetitions in [1, 1000], --actors in [1, 1e6], --iterations in [1, 1e8]\n";
    return 2;
  }
  if (vm.count("gpu")) {
    if (vm.count("json")) {
      std::cerr << "hcsim bench: --json is for the simulator's figures; --gpu prints text\n";
      return 2;
    }
    return bench_gpu();
  }
  const std::vector<Figure> figures = measure_lines(repetitions, seconds, actors, iterations, vm.count("no-replay") == 0, vm.count("quiet") > 0);
  if (vm.count("json") == 0) {
    print_figures(figures, figures.front(), repetitions, seconds);
    return 0;
  }
  print_json(figures, repetitions, seconds);
  return 0;
}

}  // namespace hcsim
