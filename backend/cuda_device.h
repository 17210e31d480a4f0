// The CUDA Device with its load-back path chosen. make_device(kCuda) uses the gather kernel;
// measure_load_back (cuda_bench.h) shows whether cudaMemcpyBatchAsync beats it on a machine.
//
//   auto dev = make_cuda_device(geometry, LoadBackPath::kBatchMemcpy);
//   dev->describe();   // "NVIDIA H100 80GB HBM3, CUDA runtime 13.0, 2 rank(s) on GPU 0"
#pragma once

#include <cstdint>
#include <memory>

#include "backend/device.h"

namespace hcsim {

enum class LoadBackPath : std::uint8_t {
  kGatherKernel,  // one kernel reads the slots through mapped pinned memory (16-byte loads)
  kBatchMemcpy,   // one cudaMemcpyBatchAsync of per-page copies (copy engines)
};

// Throws DeviceUnavailable without a GPU, or when a rank's GPU does not exist.
std::unique_ptr<Device> make_cuda_device(const PoolGeometry& geometry, LoadBackPath path);

}  // namespace hcsim
