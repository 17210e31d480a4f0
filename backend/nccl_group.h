// NcclGroup: one NCCL communicator per rank of a data group whose ranks are threads of one process,
// each owning its own GPU. Communicators are non-blocking, so every wait polls and a watchdog's
// abort() ends it: a stuck collective returns false instead of hanging its thread.
//
//   NcclGroup group(2, std::array{0, 1});                          // rank r on GPU gpu_of_rank[r]
//   bool done = group.all_reduce(rank, buffer, n, NcclReduce::kSumFloat, stream);   // each rank's thread
//   group.abort();                                                 // the watchdog: waiting ranks return false
//
// NVLink multicast stays off: NVLS objects can take a shared host's GPUs out of service. The
// constructor sets NCCL_NVLS_ENABLE=0 when it is unset and refuses any other value; nothing here
// registers windows or creates multicast objects. Built only with -DHCSIM_HAVE_NCCL.
#pragma once

#ifdef HCSIM_HAVE_NCCL

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

struct ncclComm;

namespace hcsim {

// The element types and reductions the thread world sends: the forward's activations, and the
// policy's int64 minimum and maximum (measured against Gloo's in `hcsim bench --gpu`).
enum class NcclReduce : std::uint8_t { kSumFloat, kMinInt64, kMaxInt64 };

class NcclGroup {
 public:
  // Throws DeviceUnavailable when a GPU is missing, std::invalid_argument when two ranks share a GPU
  // (NCCL does not support it), std::runtime_error when NCCL fails or NCCL_NVLS_ENABLE is not 0.
  NcclGroup(int ranks, std::span<const int> gpu_of_rank);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int ranks() const { return static_cast<int>(comms_.size()); }
  int gpu_of(int rank) const { return gpu_of_rank_.at(static_cast<std::size_t>(rank)); }
  // "NCCL 2.28.3, 2 communicators on GPUs 0, 1"
  std::string describe() const;

  // Reduces `count` elements in place in `device_buffer` (on the rank's GPU) on `stream`, and waits
  // for completion while polling the communicator for errors. Returns false, without waiting
  // further, once abort() has been called. Throws std::runtime_error on an NCCL or CUDA error.
  // One thread per rank at a time.
  bool all_reduce(int rank, void* device_buffer, std::size_t count, NcclReduce op, cudaStream_t stream);
  // Every rank's `count` int64 at `send` into `receive` (count * ranks(), rank order); as all_reduce.
  bool all_gather(int rank, const std::int64_t* send, std::int64_t* receive, std::size_t count, cudaStream_t stream);

  // Aborts every communicator. Safe from any thread, at any time, more than once.
  void abort();
  bool aborted() const { return aborted_.load(); }

 private:
  template <typename Issue>
  bool run(int rank, cudaStream_t stream, const char* call, Issue issue);

  std::vector<ncclComm*> comms_;
  std::vector<int> gpu_of_rank_;
  // NCCL allows one thread at a time on a communicator: the rank's thread holds its mutex for each
  // (non-blocking, so short) NCCL call, and abort() takes it before aborting that communicator.
  std::unique_ptr<std::mutex[]> comm_mutexes_;
  std::atomic<bool> aborted_{false};
};

}  // namespace hcsim

#endif  // HCSIM_HAVE_NCCL
