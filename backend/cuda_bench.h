// Load-back bandwidth on GPU 0: the gather kernel over mapped pinned memory, cudaMemcpyBatchAsync of
// the same pages, and one bulk pinned cudaMemcpy of the same bytes as the ceiling both aim for.
//
//   LoadBackFigure f = measure_load_back(4096, 16384, 20);   // 64 MiB per copy, 20 timed runs each
//   f.gather_gbps / f.bulk_memcpy_gbps                        // the gather's share of the link (GB/s = 1e9 B/s)
#pragma once

#include <cstdint>

namespace hcsim {

struct LoadBackFigure {
  std::int64_t page_bytes = 0;
  std::int32_t pages = 0;
  double gather_gbps = 0;        // slot list upload + gather kernel
  double batch_memcpy_gbps = 0;  // one cudaMemcpyBatchAsync of per-page copies
  double bulk_memcpy_gbps = 0;   // one contiguous pinned cudaMemcpyAsync of pages * page_bytes
  bool verified = false;         // both gathers' device checksums equal the host's
};

// Median of `reps` timed repetitions of each copy (CUDA events, after one warm-up). The pages are a
// fixed-seed shuffled choice of slots from a pinned pool twice their number, so the gather is a real
// gather. page_bytes must be a positive multiple of 16. Throws DeviceUnavailable without a GPU.
LoadBackFigure measure_load_back(std::int64_t page_bytes, std::int32_t pages, int reps);

}  // namespace hcsim
