// run_on_gpu(): one run of a scenario in the real world (backend/thread_world.h), the GPU
// backend's counterpart of simulate(): the same setup, the same ranks and policy code, the same
// judgement, and a RunResult the simulator's reports and trace writer take as they are.
//
//   GpuRunOptions g{.device = DeviceKind::kCuda, .ranks_per_gpu = 0};
//   GpuRunResult r = run_on_gpu(scenario, RunOptions{.fixes = *preset_by_name("pre-fix")}, g);
//   r.run.verdict;  r.stats.watchdog_fired;  r.device;
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/device.h"
#include "backend/flight_recorder.h"
#include "backend/thread_world.h"
#include "sim/simulation.h"

namespace hcsim {

struct GpuRunOptions {
  DeviceKind device = DeviceKind::kCuda;
  int ranks_per_gpu = 0;                       // 0: every rank on GPU 0
  TimeNs watchdog_ns = 1'000'000'000;
  std::int64_t page_bytes = 64 * 1024;         // real bytes of a KV page in memory and on disk
  std::int64_t sidecar_bytes = 64 * 1024;
  std::filesystem::path l3_dir;                // empty: a fresh directory under the temp dir, removed after
};

struct GpuRunResult {
  RunResult run;
  std::string device;                          // what ran it
  ThreadWorldStats stats;
  std::vector<std::vector<CollectiveRecord>> flight;  // the flight recorder, by rank, oldest first
  std::int64_t leaked_slots_at_exit = 0;
  TimeNs mean_collective_round_ns = -1;        // measured policy collective cost; -1: none completed
};

// Throws DeviceUnavailable when the device kind cannot be had.
GpuRunResult run_on_gpu(const Scenario& scenario, const RunOptions& options, const GpuRunOptions& gpu);

}  // namespace hcsim
