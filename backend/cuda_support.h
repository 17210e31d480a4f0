// What the CUDA translation units share: checked calls, the GPU-count check, the two load-back paths
// (a gather kernel reading mapped pinned memory, and cudaMemcpyBatchAsync) and the checksum that
// verifies them. Included by .cu files only; defined in cuda_device.cu.
//
//   HCSIM_CUDA_CHECK(cudaSetDevice(gpu));
//   -> std::runtime_error "backend/cuda_device.cu:212: cudaSetDevice(gpu) failed: invalid device ordinal"
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/device.h"

// CUDA 12.8 introduced cudaMemcpyBatchAsync with a failIdx argument that 13.0 removed; only the 13.0
// form is written here.
#if CUDART_VERSION < 13000
#error "the CUDA backend needs CUDA 13.0 or newer (cudaMemcpyBatchAsync without failIdx)"
#endif

namespace hcsim {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);

#define HCSIM_CUDA_CHECK(call)                                                          \
  do {                                                                                  \
    const cudaError_t hcsim_cuda_status = (call);                                       \
    if (hcsim_cuda_status != cudaSuccess) [[unlikely]] {                                \
      ::hcsim::throw_cuda_error(hcsim_cuda_status, #call, __FILE__, __LINE__);          \
    }                                                                                   \
  } while (0)

// Restores the calling thread's current GPU when it goes: code that visits each rank's GPU leaves
// its caller where it was.
class CurrentGpuKept {
 public:
  CurrentGpuKept() noexcept {
    if (cudaGetDevice(&gpu_) != cudaSuccess) gpu_ = -1;  // nothing to restore
  }
  ~CurrentGpuKept() {
    if (gpu_ >= 0) (void)cudaSetDevice(gpu_);
  }
  CurrentGpuKept(const CurrentGpuKept&) = delete;
  CurrentGpuKept& operator=(const CurrentGpuKept&) = delete;

 private:
  int gpu_ = 0;
};

// Allocations of `count` elements, nullptr for none; the caller frees them (cudaFreeHost, cudaFree).
// Pinned memory on the host (cudaHostAlloc with `flags`), device memory on the current GPU.
template <typename T>
T* alloc_pinned(std::int64_t count, unsigned flags) {
  if (count == 0) return nullptr;
  void* p = nullptr;
  HCSIM_CUDA_CHECK(cudaHostAlloc(&p, static_cast<std::size_t>(count) * sizeof(T), flags));
  return static_cast<T*>(p);
}

template <typename T>
T* alloc_device(std::int64_t count) {
  if (count == 0) return nullptr;
  void* p = nullptr;
  HCSIM_CUDA_CHECK(cudaMalloc(&p, static_cast<std::size_t>(count) * sizeof(T)));
  return static_cast<T*>(p);
}

// How many GPUs the driver reports; throws DeviceUnavailable("no CUDA GPU: <reason>") for none.
int require_cuda_gpus();

// Blocks of the gather kernel resident at once on the current GPU: the grid that keeps every SM loading.
int gather_grid_blocks();

// Copies `pages` pages of `page_bytes` (a multiple of 16) from the mapped pinned pool, read through
// its device pointer `pool_mapped`, at the slots listed in device memory `slots_device`, into pages
// [0, pages) of device memory `dst`. Asynchronous on `stream`.
void launch_gather(const std::byte* pool_mapped, const std::int32_t* slots_device, std::int32_t pages,
                   std::int64_t page_bytes, std::byte* dst, int grid_blocks, cudaStream_t stream);

// The same copy as per-page cudaMemcpyBatchAsync entries, built ahead of the call so that a timed
// region holds the call alone.
class PageCopyBatch {
 public:
  void assign(const std::byte* pool_host, std::span<const std::int32_t> slots, std::int64_t page_bytes,
              std::byte* dst);
  void enqueue(cudaStream_t stream) const;

 private:
  std::vector<void*> dsts_;
  std::vector<const void*> srcs_;
  std::vector<std::size_t> sizes_;
};

// Sum of the 64-bit words of `bytes` (a multiple of 8) of device memory at `src`, using the 8-byte
// device scratch `sum_device`. Waits for `stream`.
std::uint64_t checksum_device_bytes(const std::byte* src, std::int64_t bytes, unsigned long long* sum_device,
                                    cudaStream_t stream);

}  // namespace hcsim
