// The CUDA Device: per rank, pinned mapped host pools (cudaHostAlloc), a device KV pool, a
// non-blocking stream, and the kernels that load pages back, verify them and stand in for a forward.
// Also the load-back paths and checksum that cuda_bench.cu measures (cuda_support.h).
#ifndef HCSIM_HAVE_CUDA
#error "cuda_device.cu is built only with -DHCSIM_HAVE_CUDA (host_device.cpp defines make_device otherwise)"
#endif

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cuda_device.h"
#include "backend/cuda_support.h"
#include "backend/host_device.h"
#include "policy/assert.h"

namespace hcsim {

namespace {

constexpr int kGatherThreads = 256;
// 16-byte loads each gather thread issues before its first store. PCIe reads take about a
// microsecond, so bandwidth needs many loads outstanding; with every SM full this keeps megabytes in
// flight, far past the link's bandwidth-delay product.
constexpr int kGatherWordsInFlight = 4;
constexpr int kChecksumThreads = 256;
constexpr int kChecksumBlocksMax = 1024;
constexpr int kForwardThreads = 256;
constexpr unsigned kMappedPoolFlags = cudaHostAllocMapped | cudaHostAllocPortable;

__global__ void __launch_bounds__(kGatherThreads)
    gather_pages_kernel(const uint4* __restrict__ pool, const std::int32_t* __restrict__ slots,
                        std::int64_t words_per_page, std::int64_t total_words, uint4* __restrict__ dst) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; first < total_words;
       first += stride * kGatherWordsInFlight) {
    // Slot lookups, then all pool loads, then all stores: the pool loads are independent of each
    // other, so they are all on the link at once instead of one round trip each.
    std::int64_t sources[kGatherWordsInFlight];
#pragma unroll
    for (int j = 0; j < kGatherWordsInFlight; ++j) {
      const std::int64_t w = first + j * stride;
      sources[j] = 0;
      if (w < total_words) {
        const std::int64_t page = w / words_per_page;
        sources[j] = slots[page] * words_per_page + (w - page * words_per_page);
      }
    }
    uint4 words[kGatherWordsInFlight];
#pragma unroll
    for (int j = 0; j < kGatherWordsInFlight; ++j) {
      if (first + j * stride < total_words) words[j] = pool[sources[j]];
    }
#pragma unroll
    for (int j = 0; j < kGatherWordsInFlight; ++j) {
      const std::int64_t w = first + j * stride;
      if (w < total_words) dst[w] = words[j];
    }
  }
}

__global__ void __launch_bounds__(kChecksumThreads)
    checksum_kernel(const unsigned long long* __restrict__ words, std::int64_t count, unsigned long long* sum) {
  unsigned long long local = 0;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    local += words[i];
  }
  for (int offset = 16; offset > 0; offset /= 2) local += __shfl_down_sync(0xffffffffu, local, offset);
  // Addition modulo 2^64 commutes, so the atomics' order does not change the sum.
  if (threadIdx.x % 32 == 0) atomicAdd(sum, local);
}

__device__ std::uint64_t global_timer_ns() {
  std::uint64_t t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Writes the activations, then spins until `duration_ns` has passed since the kernel began, so the
// kernel lasts the forward's duration (or the writes' time, if longer). One thread spins; the rest
// finish, so the GPU stays free for other ranks' kernels.
__global__ void __launch_bounds__(kForwardThreads)
    forward_spin_kernel(std::uint64_t duration_ns, std::int64_t tokens, float* activations, float value) {
  __shared__ std::uint64_t started_ns;
  if (threadIdx.x == 0) started_ns = global_timer_ns();
  __syncthreads();
  for (std::int64_t i = threadIdx.x; i < tokens; i += blockDim.x) activations[i] = value;
  if (threadIdx.x == 0) {
    while (global_timer_ns() - started_ns < duration_ns) {
    }
  }
}

template <typename T>
T* device_view(T* mapped_host) {
  if (mapped_host == nullptr) return nullptr;
  void* p = nullptr;
  HCSIM_CUDA_CHECK(cudaHostGetDevicePointer(&p, mapped_host, 0));
  return static_cast<T*>(p);
}

// One rank's CUDA resources. Filled after construction, so a failure part way leaves a value whose
// destructor frees what was made.
struct RankResources {
  int gpu = 0;
  int gather_grid_blocks = 0;
  cudaStream_t stream = nullptr;
  std::byte* kv_host = nullptr;              // pinned, mapped
  const std::byte* kv_mapped = nullptr;      // kv_host as the gather kernel reads it
  std::byte* sidecar_host = nullptr;         // pinned, mapped
  std::byte* device_pool = nullptr;          // device_pages pages
  std::int32_t* slots_staging = nullptr;     // pinned: the async copy's source must be
  std::int32_t* slots_device = nullptr;      // the gather list of one chunk
  float* activations_host = nullptr;         // pinned, mapped
  float* activations_mapped = nullptr;
  unsigned long long* checksum_device = nullptr;
  PageCopyBatch batch;

  RankResources() = default;
  RankResources(const RankResources&) = delete;
  RankResources& operator=(const RankResources&) = delete;

  ~RankResources() {
    // Errors are ignored: a destructor must not throw, and there is nothing left to recover.
    (void)cudaSetDevice(gpu);
    if (stream != nullptr) {
      (void)cudaStreamSynchronize(stream);
      (void)cudaStreamDestroy(stream);
    }
    (void)cudaFreeHost(kv_host);
    (void)cudaFreeHost(sidecar_host);
    (void)cudaFreeHost(slots_staging);
    (void)cudaFreeHost(activations_host);
    (void)cudaFree(device_pool);
    (void)cudaFree(slots_device);
    (void)cudaFree(checksum_device);
    (void)cudaGetLastError();
  }
};

std::string runtime_version_text() {
  int version = 0;
  HCSIM_CUDA_CHECK(cudaRuntimeGetVersion(&version));
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

class CudaDevice final : public Device {
 public:
  CudaDevice(const PoolGeometry& geometry, LoadBackPath path) : geometry_(geometry), path_(path) {
    check_pool_geometry(geometry_);
    const int gpus = require_cuda_gpus();
    for (int rank = 0; rank < geometry_.ranks; ++rank) {
      if (gpu_for(rank) >= gpus) {
        throw DeviceUnavailable("rank " + std::to_string(rank) + " needs GPU " + std::to_string(gpu_for(rank)) + " at " +
                                std::to_string(geometry_.ranks_per_gpu) + " rank(s) per GPU, but " + std::to_string(gpus) +
                                " GPU(s) found; --ranks-per-gpu 0 places every rank on GPU 0");
      }
    }
    ranks_.reserve(static_cast<std::size_t>(geometry_.ranks));
    for (int rank = 0; rank < geometry_.ranks; ++rank) {
      ranks_.push_back(std::make_unique<RankResources>());
      allocate(*ranks_.back(), rank);
    }
    // CUDA loads a kernel's module at its first launch (lazy loading: tens of ms). Launch each
    // kernel once here, so that cost does not land in a run's first forward.
    std::vector<float> activations(1);
    for (int rank = 0; rank < geometry_.ranks; ++rank) {
      forward(rank, 0, 0, activations);
      const std::int32_t slot = 0;
      if (geometry_.kv_slots > 0 && geometry_.device_pages > 0) load_back(rank, std::span<const std::int32_t>(&slot, 1));
    }
    description_ = describe_gpus();
  }

  std::string describe() const override { return description_; }
  DeviceKind kind() const override { return DeviceKind::kCuda; }
  int gpu_of(int rank) const override { return resources(rank).gpu; }

  std::byte* kv_slot(int rank, std::int32_t slot) override {
    HCSIM_ASSERT(slot >= 0 && slot < geometry_.kv_slots);
    return resources(rank).kv_host + slot * geometry_.kv_page_bytes;
  }

  std::byte* sidecar_slot(int rank, std::int32_t slot) override {
    HCSIM_ASSERT(slot >= 0 && slot < geometry_.sidecar_slots);
    return resources(rank).sidecar_host + slot * geometry_.sidecar_bytes;
  }

  void load_back(int rank, std::span<const std::int32_t> slots) override {
    RankResources& r = resources(rank);
    HCSIM_ASSERT(slots.empty() || geometry_.device_pages > 0);
    for (const std::int32_t slot : slots) HCSIM_ASSERT(slot >= 0 && slot < geometry_.kv_slots);
    HCSIM_CUDA_CHECK(cudaSetDevice(r.gpu));
    const auto chunk_pages_max = static_cast<std::size_t>(geometry_.device_pages);
    for (std::size_t begin = 0; begin < slots.size(); begin += chunk_pages_max) {
      const std::span<const std::int32_t> chunk = slots.subspan(begin, std::min(chunk_pages_max, slots.size() - begin));
      if (path_ == LoadBackPath::kGatherKernel) {
        std::copy(chunk.begin(), chunk.end(), r.slots_staging);
        HCSIM_CUDA_CHECK(cudaMemcpyAsync(r.slots_device, r.slots_staging, chunk.size_bytes(), cudaMemcpyHostToDevice,
                                         r.stream));
        launch_gather(r.kv_mapped, r.slots_device, static_cast<std::int32_t>(chunk.size()), geometry_.kv_page_bytes,
                      r.device_pool, r.gather_grid_blocks, r.stream);
      } else {
        r.batch.assign(r.kv_host, chunk, geometry_.kv_page_bytes, r.device_pool);
        r.batch.enqueue(r.stream);
      }
      // Per chunk, not once at the end: the next chunk rewrites the staging list and device pages.
      HCSIM_CUDA_CHECK(cudaStreamSynchronize(r.stream));
    }
  }

  std::uint64_t device_checksum(int rank, std::int32_t pages) override {
    RankResources& r = resources(rank);
    HCSIM_ASSERT(pages >= 0 && pages <= geometry_.device_pages);
    HCSIM_CUDA_CHECK(cudaSetDevice(r.gpu));
    return checksum_device_bytes(r.device_pool, pages * geometry_.kv_page_bytes, r.checksum_device, r.stream);
  }

  void forward(int rank, std::int64_t tokens, TimeNs duration_ns, std::span<float> activations) override {
    RankResources& r = resources(rank);
    HCSIM_ASSERT(duration_ns >= 0);
    HCSIM_ASSERT(tokens >= 0 && tokens <= geometry_.activation_floats);
    HCSIM_ASSERT(static_cast<std::size_t>(tokens) <= activations.size());
    HCSIM_CUDA_CHECK(cudaSetDevice(r.gpu));
    forward_spin_kernel<<<1, kForwardThreads, 0, r.stream>>>(static_cast<std::uint64_t>(duration_ns), tokens,
                                                             r.activations_mapped, static_cast<float>(rank + 1));
    HCSIM_CUDA_CHECK(cudaGetLastError());
    HCSIM_CUDA_CHECK(cudaStreamSynchronize(r.stream));
    std::copy_n(r.activations_host, tokens, activations.begin());
  }

 private:
  int gpu_for(int rank) const { return geometry_.ranks_per_gpu == 0 ? 0 : rank / geometry_.ranks_per_gpu; }

  RankResources& resources(int rank) const {
    HCSIM_ASSERT(rank >= 0 && rank < geometry_.ranks);
    return *ranks_[static_cast<std::size_t>(rank)];
  }

  void allocate(RankResources& r, int rank) const {
    const PoolGeometry& g = geometry_;
    r.gpu = gpu_for(rank);
    HCSIM_CUDA_CHECK(cudaSetDevice(r.gpu));
    r.gather_grid_blocks = gather_grid_blocks();
    HCSIM_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
    r.kv_host = alloc_pinned<std::byte>(g.kv_slots * g.kv_page_bytes, kMappedPoolFlags);
    r.kv_mapped = device_view(r.kv_host);
    r.sidecar_host = alloc_pinned<std::byte>(g.sidecar_slots * g.sidecar_bytes, kMappedPoolFlags);
    r.device_pool = alloc_device<std::byte>(g.device_pages * g.kv_page_bytes);
    if (r.device_pool != nullptr) {
      // Pages never loaded then checksum the same on every run.
      HCSIM_CUDA_CHECK(cudaMemset(r.device_pool, 0, static_cast<std::size_t>(g.device_pages * g.kv_page_bytes)));
    }
    r.slots_staging = alloc_pinned<std::int32_t>(g.device_pages, cudaHostAllocPortable);
    r.slots_device = alloc_device<std::int32_t>(g.device_pages);
    r.activations_host = alloc_pinned<float>(g.activation_floats, kMappedPoolFlags);
    r.activations_mapped = device_view(r.activations_host);
    r.checksum_device = alloc_device<unsigned long long>(1);
  }

  std::string describe_gpus() const {
    const int first_gpu = ranks_.front()->gpu;
    const int last_gpu = ranks_.back()->gpu;
    cudaDeviceProp prop{};
    HCSIM_CUDA_CHECK(cudaGetDeviceProperties(&prop, first_gpu));
    const std::string where = first_gpu == last_gpu
                                  ? "GPU " + std::to_string(first_gpu)
                                  : "GPUs " + std::to_string(first_gpu) + "-" + std::to_string(last_gpu);
    return std::string(prop.name) + ", CUDA runtime " + runtime_version_text() + ", " +
           std::to_string(geometry_.ranks) + " rank(s) on " + where;
  }

  PoolGeometry geometry_;
  LoadBackPath path_;
  std::vector<std::unique_ptr<RankResources>> ranks_;
  std::string description_;
};

}  // namespace

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + cudaGetErrorString(status));
}

int require_cuda_gpus() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    throw DeviceUnavailable(std::string("no CUDA GPU: ") + cudaGetErrorString(status));
  }
  if (count == 0) throw DeviceUnavailable("no CUDA GPU: the driver reports 0 devices");
  return count;
}

int gather_grid_blocks() {
  int gpu = 0;
  HCSIM_CUDA_CHECK(cudaGetDevice(&gpu));
  int sms = 0;
  HCSIM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, gpu));
  int blocks_per_sm = 0;
  HCSIM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, gather_pages_kernel, kGatherThreads, 0));
  return sms * std::max(blocks_per_sm, 1);
}

void launch_gather(const std::byte* pool_mapped, const std::int32_t* slots_device, std::int32_t pages,
                   std::int64_t page_bytes, std::byte* dst, int grid_blocks, cudaStream_t stream) {
  HCSIM_ASSERT(page_bytes > 0 && page_bytes % static_cast<std::int64_t>(sizeof(uint4)) == 0);
  HCSIM_ASSERT(pages >= 0 && grid_blocks > 0);
  if (pages == 0) return;
  const std::int64_t words_per_page = page_bytes / static_cast<std::int64_t>(sizeof(uint4));
  const std::int64_t total_words = pages * words_per_page;
  // No more blocks than the words need: a small load-back should not launch idle blocks.
  const std::int64_t blocks = std::min<std::int64_t>(grid_blocks, (total_words + kGatherThreads - 1) / kGatherThreads);
  gather_pages_kernel<<<static_cast<unsigned>(blocks), kGatherThreads, 0, stream>>>(
      reinterpret_cast<const uint4*>(pool_mapped), slots_device, words_per_page, total_words,
      reinterpret_cast<uint4*>(dst));
  HCSIM_CUDA_CHECK(cudaGetLastError());
}

void PageCopyBatch::assign(const std::byte* pool_host, std::span<const std::int32_t> slots, std::int64_t page_bytes,
                           std::byte* dst) {
  dsts_.resize(slots.size());
  srcs_.resize(slots.size());
  sizes_.assign(slots.size(), static_cast<std::size_t>(page_bytes));
  for (std::size_t page = 0; page < slots.size(); ++page) {
    dsts_[page] = dst + static_cast<std::int64_t>(page) * page_bytes;
    srcs_[page] = pool_host + static_cast<std::int64_t>(slots[page]) * page_bytes;
  }
}

void PageCopyBatch::enqueue(cudaStream_t stream) const {
  if (dsts_.empty()) return;
  // Stream order: host writes to the pool, made before this call, are what gets copied.
  cudaMemcpyAttributes attributes{};
  attributes.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
  attributes.flags = cudaMemcpyFlagDefault;
  std::size_t attribute_first_copy = 0;
  HCSIM_CUDA_CHECK(cudaMemcpyBatchAsync(dsts_.data(), srcs_.data(), sizes_.data(), dsts_.size(), &attributes,
                                        &attribute_first_copy, 1, stream));
}

std::uint64_t checksum_device_bytes(const std::byte* src, std::int64_t bytes, unsigned long long* sum_device,
                                    cudaStream_t stream) {
  HCSIM_ASSERT(bytes >= 0 && bytes % static_cast<std::int64_t>(sizeof(std::uint64_t)) == 0);
  if (bytes == 0) return 0;
  const std::int64_t words = bytes / static_cast<std::int64_t>(sizeof(std::uint64_t));
  const std::int64_t blocks = std::min<std::int64_t>(kChecksumBlocksMax, (words + kChecksumThreads - 1) / kChecksumThreads);
  HCSIM_CUDA_CHECK(cudaMemsetAsync(sum_device, 0, sizeof(*sum_device), stream));
  checksum_kernel<<<static_cast<unsigned>(blocks), kChecksumThreads, 0, stream>>>(
      reinterpret_cast<const unsigned long long*>(src), words, sum_device);
  HCSIM_CUDA_CHECK(cudaGetLastError());
  unsigned long long sum = 0;
  HCSIM_CUDA_CHECK(cudaMemcpyAsync(&sum, sum_device, sizeof(sum), cudaMemcpyDeviceToHost, stream));
  HCSIM_CUDA_CHECK(cudaStreamSynchronize(stream));
  return sum;
}

std::unique_ptr<Device> make_cuda_device(const PoolGeometry& geometry, LoadBackPath path) {
  return std::make_unique<CudaDevice>(geometry, path);
}

std::unique_ptr<Device> make_device(DeviceKind kind, const PoolGeometry& geometry) {
  if (kind == DeviceKind::kHost) return make_host_device(geometry);
  return make_cuda_device(geometry, LoadBackPath::kGatherKernel);
}

bool cuda_built() { return true; }

int cuda_gpu_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

}  // namespace hcsim
