// Load-back bandwidth on GPU 0 (cuda_bench.h): the three copies share one pool, one slot list and
// one destination, so they differ only in how the bytes cross the link.
#include "backend/cuda_bench.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda_support.h"

namespace hcsim {

namespace {

constexpr std::uint64_t kShuffleSeed = 0x10adbac4'5eed0001ULL;
// The pool holds twice the pages gathered, so the slots are scattered over twice the memory.
constexpr std::int32_t kPoolSlotsPerGatheredPage = 2;
constexpr unsigned kMappedPoolFlags = cudaHostAllocMapped | cudaHostAllocPortable;

// splitmix64's finalizer: a fixed, platform-independent stream (std::shuffle's is not specified).
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Everything one measurement allocates; freed on every exit, errors ignored (nothing to recover).
struct BenchResources {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  void* pool_host = nullptr;            // pinned, mapped
  void* pool_mapped = nullptr;          // pool_host as the gather kernel reads it
  void* dst = nullptr;                  // device
  void* slots_staging = nullptr;        // pinned
  void* slots_device = nullptr;
  void* sum_device = nullptr;

  BenchResources() = default;
  BenchResources(const BenchResources&) = delete;
  BenchResources& operator=(const BenchResources&) = delete;

  ~BenchResources() {
    if (stream != nullptr) {
      (void)cudaStreamSynchronize(stream);
      (void)cudaStreamDestroy(stream);
    }
    if (start != nullptr) (void)cudaEventDestroy(start);
    if (stop != nullptr) (void)cudaEventDestroy(stop);
    (void)cudaFreeHost(pool_host);
    (void)cudaFreeHost(slots_staging);
    (void)cudaFree(dst);
    (void)cudaFree(slots_device);
    (void)cudaFree(sum_device);
    (void)cudaGetLastError();
  }
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// One untimed warm-up of `copy` (which enqueues on r.stream), then `reps` runs timed by events.
template <typename Copy>
double median_ms(BenchResources& r, int reps, Copy&& copy) {
  copy();
  HCSIM_CUDA_CHECK(cudaStreamSynchronize(r.stream));
  std::vector<double> elapsed_ms;
  elapsed_ms.reserve(static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    HCSIM_CUDA_CHECK(cudaEventRecord(r.start, r.stream));
    copy();
    HCSIM_CUDA_CHECK(cudaEventRecord(r.stop, r.stream));
    HCSIM_CUDA_CHECK(cudaEventSynchronize(r.stop));
    float ms = 0;
    HCSIM_CUDA_CHECK(cudaEventElapsedTime(&ms, r.start, r.stop));
    elapsed_ms.push_back(ms);
  }
  return median(std::move(elapsed_ms));
}

double gbps(std::int64_t bytes, double ms) { return static_cast<double>(bytes) / (ms * 1e6); }

}  // namespace

LoadBackFigure measure_load_back(std::int64_t page_bytes, std::int32_t pages, int reps) {
  if (page_bytes <= 0 || page_bytes % static_cast<std::int64_t>(sizeof(uint4)) != 0) {
    throw std::invalid_argument("measure_load_back: page_bytes " + std::to_string(page_bytes) +
                                " is not a positive multiple of 16");
  }
  if (pages <= 0 || pages > std::numeric_limits<std::int32_t>::max() / kPoolSlotsPerGatheredPage) {
    throw std::invalid_argument("measure_load_back: pages " + std::to_string(pages) + " is out of range");
  }
  if (reps <= 0) throw std::invalid_argument("measure_load_back: reps " + std::to_string(reps) + " is below 1");
  require_cuda_gpus();
  HCSIM_CUDA_CHECK(cudaSetDevice(0));

  const std::int32_t pool_slots = pages * kPoolSlotsPerGatheredPage;
  const std::int64_t pool_bytes = pool_slots * page_bytes;
  const std::int64_t copy_bytes = pages * page_bytes;
  BenchResources r;
  HCSIM_CUDA_CHECK(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
  HCSIM_CUDA_CHECK(cudaEventCreate(&r.start));
  HCSIM_CUDA_CHECK(cudaEventCreate(&r.stop));
  HCSIM_CUDA_CHECK(cudaHostAlloc(&r.pool_host, static_cast<std::size_t>(pool_bytes), kMappedPoolFlags));
  HCSIM_CUDA_CHECK(cudaHostGetDevicePointer(&r.pool_mapped, r.pool_host, 0));
  HCSIM_CUDA_CHECK(cudaMalloc(&r.dst, static_cast<std::size_t>(copy_bytes)));
  HCSIM_CUDA_CHECK(cudaHostAlloc(&r.slots_staging, static_cast<std::size_t>(pages) * sizeof(std::int32_t),
                                 cudaHostAllocPortable));
  HCSIM_CUDA_CHECK(cudaMalloc(&r.slots_device, static_cast<std::size_t>(pages) * sizeof(std::int32_t)));
  HCSIM_CUDA_CHECK(cudaMalloc(&r.sum_device, sizeof(unsigned long long)));

  // Every 64-bit word of the pool differs, so a page copied from the wrong slot changes the checksum.
  const std::span<std::uint64_t> pool_words(static_cast<std::uint64_t*>(r.pool_host),
                                            static_cast<std::size_t>(pool_bytes) / sizeof(std::uint64_t));
  for (std::size_t i = 0; i < pool_words.size(); ++i) pool_words[i] = mix64(i);

  // Fisher-Yates over all pool slots; the first `pages` are the gather list.
  std::vector<std::int32_t> order(static_cast<std::size_t>(pool_slots));
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = order.size() - 1; i > 0; --i) {
    std::swap(order[i], order[mix64(kShuffleSeed + i) % (i + 1)]);
  }
  const std::span<std::int32_t> slots(static_cast<std::int32_t*>(r.slots_staging), static_cast<std::size_t>(pages));
  std::copy_n(order.begin(), pages, slots.begin());

  const auto words_per_page = static_cast<std::size_t>(page_bytes) / sizeof(std::uint64_t);
  std::uint64_t expected_checksum = 0;
  for (const std::int32_t slot : slots) {
    for (std::size_t w = 0; w < words_per_page; ++w) {
      expected_checksum += pool_words[static_cast<std::size_t>(slot) * words_per_page + w];
    }
  }

  auto* const dst = static_cast<std::byte*>(r.dst);
  const int grid_blocks = gather_grid_blocks();
  auto gather = [&] {
    HCSIM_CUDA_CHECK(cudaMemcpyAsync(r.slots_device, r.slots_staging, slots.size_bytes(), cudaMemcpyHostToDevice,
                                     r.stream));
    launch_gather(static_cast<const std::byte*>(r.pool_mapped), static_cast<const std::int32_t*>(r.slots_device),
                  pages, page_bytes, dst, grid_blocks, r.stream);
  };
  PageCopyBatch batch;
  batch.assign(static_cast<const std::byte*>(r.pool_host), slots, page_bytes, dst);
  auto batch_copy = [&] { batch.enqueue(r.stream); };
  auto bulk_copy = [&] {
    HCSIM_CUDA_CHECK(
        cudaMemcpyAsync(r.dst, r.pool_host, static_cast<std::size_t>(copy_bytes), cudaMemcpyHostToDevice, r.stream));
  };
  auto* const sum_device = static_cast<unsigned long long*>(r.sum_device);
  // Cleared before each gather so a stale correct copy cannot pass for the next one.
  auto clear_dst = [&] {
    HCSIM_CUDA_CHECK(cudaMemsetAsync(r.dst, 0, static_cast<std::size_t>(copy_bytes), r.stream));
  };

  LoadBackFigure figure{.page_bytes = page_bytes, .pages = pages};
  clear_dst();
  figure.gather_gbps = gbps(copy_bytes, median_ms(r, reps, gather));
  const bool gather_verified = checksum_device_bytes(dst, copy_bytes, sum_device, r.stream) == expected_checksum;
  clear_dst();
  figure.batch_memcpy_gbps = gbps(copy_bytes, median_ms(r, reps, batch_copy));
  const bool batch_verified = checksum_device_bytes(dst, copy_bytes, sum_device, r.stream) == expected_checksum;
  figure.bulk_memcpy_gbps = gbps(copy_bytes, median_ms(r, reps, bulk_copy));
  figure.verified = gather_verified && batch_verified;
  return figure;
}

}  // namespace hcsim
