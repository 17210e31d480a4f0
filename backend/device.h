// Device: the memory and compute the GPU backend's ranks use, behind one interface so the same
// thread world runs on a GPU node (CUDA) and on any CPU machine (host memory, for tests and CI).
//
//   auto dev = make_device(DeviceKind::kCuda, geometry);      // throws DeviceUnavailable without a GPU
//   std::byte* page = dev->kv_slot(rank, slot);               // pinned host memory (cudaHostAlloc)
//   dev->load_back(rank, slots);                              // host slots -> device pages, one launch
//   dev->forward(rank, tokens, duration_ns, activations);     // a kernel of that duration
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "policy/trace_event.h"

namespace hcsim {

struct DeviceUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Sizes of every rank's pools. Slot indices are the policy's HostSlotPool indices.
struct PoolGeometry {
  int ranks = 1;
  int ranks_per_gpu = 0;                 // 0: every rank on GPU 0 (ranks share one GPU)
  std::int32_t kv_slots = 0;             // host KV pool per rank, in pages
  std::int64_t kv_page_bytes = 64 * 1024;
  std::int32_t sidecar_slots = 0;        // host sidecar (Mamba state) pool per rank
  std::int64_t sidecar_bytes = 64 * 1024;
  std::int32_t device_pages = 0;         // device KV pool per rank, in pages of kv_page_bytes
  std::int64_t activation_floats = 0;    // largest forward's activations per rank (one float per token)
};

enum class DeviceKind : std::uint8_t { kCuda, kHost };

class Device {
 public:
  virtual ~Device() = default;
  Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // "NVIDIA H100 80GB HBM3, CUDA runtime 13.0, 2 rank(s) on GPU 0" or "host memory (no GPU)".
  virtual std::string describe() const = 0;
  virtual DeviceKind kind() const = 0;
  virtual int gpu_of(int rank) const = 0;  // -1 on the host device

  // Host pool memory of one slot (pinned on CUDA), valid for the device's lifetime.
  virtual std::byte* kv_slot(int rank, std::int32_t slot) = 0;
  virtual std::byte* sidecar_slot(int rank, std::int32_t slot) = 0;

  // Copies the host KV slots to device pages [0, slots.size()) of the rank's device pool (in
  // chunks of device_pages when larger), with one gather launch per chunk, and waits for it.
  // Thread-safe across ranks; one rank calls it from one thread at a time.
  virtual void load_back(int rank, std::span<const std::int32_t> slots) = 0;
  // Checksum of device pages [0, pages) of a rank (sum of 64-bit words), to verify load-back.
  virtual std::uint64_t device_checksum(int rank, std::int32_t pages) = 0;

  // Runs the rank's forward: a kernel that lasts `duration_ns` and writes `tokens` activations,
  // then copies them to `activations` (host). Waits for completion.
  virtual void forward(int rank, std::int64_t tokens, TimeNs duration_ns, std::span<float> activations) = 0;
};

std::unique_ptr<Device> make_device(DeviceKind kind, const PoolGeometry& geometry);

// Whether this build has the CUDA device, and how many GPUs the driver reports (0 if none or no driver).
bool cuda_built();
int cuda_gpu_count();

}  // namespace hcsim
