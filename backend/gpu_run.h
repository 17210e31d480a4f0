// run_on_gpu(): one run of a scenario in the real world (backend/thread_world.h), the GPU
// backend's counterpart of simulate(): the same setup, the same ranks and policy code, the same
// judgement, and a RunResult the simulator's reports and trace writer take as they are.
//
//   GpuRunOptions g{.device = DeviceKind::kCuda, .ranks_per_gpu = 0};
//   GpuRunResult r = run_on_gpu(scenario, RunOptions{.fixes = *preset_by_name("pre-fix")}, g);
//   r.run.verdict;  r.stats.watchdog_fired;  r.device;
#pragma once

#include <cstdint>
#include <memory>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "backend/data_group.h"
#include "backend/device.h"
#include "backend/flight_recorder.h"
#include "backend/thread_world.h"
#include "run/run.h"

namespace hcsim {

// What carries the forward's collectives (data_group.h). Policy collectives are always on Gloo.
enum class DataTransport : std::uint8_t {
  kAuto,  // NCCL when every rank has its own GPU and the build has NCCL, else Gloo
  kGloo,
  kNccl,  // needs the CUDA device, one rank per GPU and NCCL in the build
};

struct GpuRunOptions {
  DeviceKind device = DeviceKind::kCuda;
  int ranks_per_gpu = 0;                       // 0: every rank on GPU 0
  DataTransport data = DataTransport::kAuto;
  // When set, makes each stage's data group for the forward, of `ranks` ranks (the stage's TP
  // ranks), instead (tests: a CPU stand-in with NCCL's semantics for mismatched counts).
  std::function<std::unique_ptr<DataGroup>(int ranks)> custom_data_group;
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

// Whether this build can put the forward on NCCL.
bool nccl_built();
// Why NCCL must not start in this process, or empty: NCCL_NVLS_ENABLE set to anything but 0 (NVLink
// multicast stays off; NcclGroup sets it to 0 when unset).
std::string nccl_environment_problem();

// Throws DeviceUnavailable when the device kind cannot be had, std::invalid_argument when NCCL is
// asked for where it cannot run (ranks sharing a GPU, the host device, a build without NCCL).
GpuRunResult run_on_gpu(const Scenario& scenario, const RunOptions& options, const GpuRunOptions& gpu);

}  // namespace hcsim
