// The host-memory Device: pools in aligned host memory, load-back as a memcpy gather, a forward that
// sleeps for its duration. Without CUDA this file also provides make_device.
#include "backend/host_device.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "policy/assert.h"

namespace hcsim {

namespace {

constexpr std::int64_t kPoolAlignmentBytes = 4096;
// The CUDA gather kernel moves 16-byte words; the host device demands the same so a geometry that
// passes here also passes there.
constexpr std::int64_t kPageGranuleBytes = 16;

struct FreeDeleter {
  void operator()(std::byte* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<std::byte[], FreeDeleter>;

// Zeroed, so device checksums of pages never loaded are deterministic.
AlignedBuffer allocate_pool(std::int64_t bytes) {
  if (bytes == 0) return nullptr;
  // aligned_alloc wants a size that is a multiple of the alignment.
  const std::int64_t rounded_bytes = (bytes + kPoolAlignmentBytes - 1) / kPoolAlignmentBytes * kPoolAlignmentBytes;
  void* p = std::aligned_alloc(kPoolAlignmentBytes, static_cast<std::size_t>(rounded_bytes));
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, static_cast<std::size_t>(rounded_bytes));
  return AlignedBuffer(static_cast<std::byte*>(p));
}

void require_product_fits(std::int64_t count, std::int64_t bytes, const char* what) {
  if (count > 0 && bytes > std::numeric_limits<std::int64_t>::max() / count) {
    throw std::invalid_argument(std::string(what) + " pool size overflows 64 bits");
  }
}

class HostDevice final : public Device {
 public:
  explicit HostDevice(const PoolGeometry& geometry) : geometry_(geometry) {
    check_pool_geometry(geometry_);
    ranks_.reserve(static_cast<std::size_t>(geometry_.ranks));
    for (int rank = 0; rank < geometry_.ranks; ++rank) {
      ranks_.push_back(RankPools{
          .kv = allocate_pool(geometry_.kv_slots * geometry_.kv_page_bytes),
          .sidecar = allocate_pool(geometry_.sidecar_slots * geometry_.sidecar_bytes),
          .device = allocate_pool(geometry_.device_pages * geometry_.kv_page_bytes),
      });
    }
  }

  std::string describe() const override { return "host memory (no GPU)"; }
  DeviceKind kind() const override { return DeviceKind::kHost; }

  int gpu_of(int rank) const override {
    HCSIM_ASSERT(rank >= 0 && rank < geometry_.ranks);
    return -1;
  }

  std::byte* kv_slot(int rank, std::int32_t slot) override {
    HCSIM_ASSERT(slot >= 0 && slot < geometry_.kv_slots);
    return pools(rank).kv.get() + slot * geometry_.kv_page_bytes;
  }

  std::byte* sidecar_slot(int rank, std::int32_t slot) override {
    HCSIM_ASSERT(slot >= 0 && slot < geometry_.sidecar_slots);
    return pools(rank).sidecar.get() + slot * geometry_.sidecar_bytes;
  }

  void load_back(int rank, std::span<const std::int32_t> slots) override {
    RankPools& p = pools(rank);
    const auto page_bytes = static_cast<std::size_t>(geometry_.kv_page_bytes);
    HCSIM_ASSERT(slots.empty() || geometry_.device_pages > 0);
    for (std::size_t chunk_begin = 0; chunk_begin < slots.size();
         chunk_begin += static_cast<std::size_t>(geometry_.device_pages)) {
      const std::size_t chunk_pages =
          std::min(slots.size() - chunk_begin, static_cast<std::size_t>(geometry_.device_pages));
      for (std::size_t page = 0; page < chunk_pages; ++page) {
        const std::int32_t slot = slots[chunk_begin + page];
        HCSIM_ASSERT(slot >= 0 && slot < geometry_.kv_slots);
        std::memcpy(p.device.get() + page * page_bytes, p.kv.get() + static_cast<std::size_t>(slot) * page_bytes,
                    page_bytes);
      }
    }
  }

  std::uint64_t device_checksum(int rank, std::int32_t pages) override {
    HCSIM_ASSERT(pages >= 0 && pages <= geometry_.device_pages);
    const std::byte* base = pools(rank).device.get();
    const std::int64_t words = pages * geometry_.kv_page_bytes / static_cast<std::int64_t>(sizeof(std::uint64_t));
    std::uint64_t sum = 0;
    for (std::int64_t i = 0; i < words; ++i) {
      std::uint64_t word = 0;
      std::memcpy(&word, base + i * static_cast<std::int64_t>(sizeof(word)), sizeof(word));
      sum += word;
    }
    return sum;
  }

  void forward(int rank, std::int64_t tokens, TimeNs duration_ns, std::span<float> activations) override {
    const auto started = std::chrono::steady_clock::now();
    HCSIM_ASSERT(rank >= 0 && rank < geometry_.ranks);
    HCSIM_ASSERT(duration_ns >= 0);
    HCSIM_ASSERT(tokens >= 0 && tokens <= geometry_.activation_floats);
    HCSIM_ASSERT(static_cast<std::size_t>(tokens) <= activations.size());
    std::this_thread::sleep_until(started + std::chrono::nanoseconds(duration_ns));
    std::fill_n(activations.begin(), tokens, static_cast<float>(rank + 1));
  }

 private:
  struct RankPools {
    AlignedBuffer kv;
    AlignedBuffer sidecar;
    AlignedBuffer device;
  };

  RankPools& pools(int rank) {
    HCSIM_ASSERT(rank >= 0 && rank < geometry_.ranks);
    return ranks_[static_cast<std::size_t>(rank)];
  }

  PoolGeometry geometry_;
  std::vector<RankPools> ranks_;
};

}  // namespace

void check_pool_geometry(const PoolGeometry& g) {
  auto fail = [](const std::string& why) { throw std::invalid_argument("pool geometry: " + why); };
  if (g.ranks < 1) fail("ranks " + std::to_string(g.ranks) + " is below 1");
  if (g.ranks_per_gpu < 0) fail("ranks_per_gpu " + std::to_string(g.ranks_per_gpu) + " is negative");
  if (g.kv_slots < 0) fail("kv_slots " + std::to_string(g.kv_slots) + " is negative");
  if (g.sidecar_slots < 0) fail("sidecar_slots " + std::to_string(g.sidecar_slots) + " is negative");
  if (g.device_pages < 0) fail("device_pages " + std::to_string(g.device_pages) + " is negative");
  if (g.activation_floats < 0) fail("activation_floats " + std::to_string(g.activation_floats) + " is negative");
  if (g.kv_page_bytes <= 0 || g.kv_page_bytes % kPageGranuleBytes != 0) {
    fail("kv_page_bytes " + std::to_string(g.kv_page_bytes) + " is not a positive multiple of " +
         std::to_string(kPageGranuleBytes) + " (load-back copies 16-byte words)");
  }
  if (g.sidecar_bytes <= 0) fail("sidecar_bytes " + std::to_string(g.sidecar_bytes) + " is not positive");
  require_product_fits(g.kv_slots, g.kv_page_bytes, "kv");
  require_product_fits(g.sidecar_slots, g.sidecar_bytes, "sidecar");
  require_product_fits(g.device_pages, g.kv_page_bytes, "device");
}

std::unique_ptr<Device> make_host_device(const PoolGeometry& geometry) {
  return std::make_unique<HostDevice>(geometry);
}

#ifndef HCSIM_HAVE_CUDA
std::unique_ptr<Device> make_device(DeviceKind kind, const PoolGeometry& geometry) {
  if (kind == DeviceKind::kCuda) {
    throw DeviceUnavailable("this hcsim was built without CUDA (meson -Dcuda=enabled)");
  }
  return make_host_device(geometry);
}

bool cuda_built() { return false; }
int cuda_gpu_count() { return 0; }
#endif

}  // namespace hcsim
