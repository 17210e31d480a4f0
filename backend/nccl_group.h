// NcclGroup: one NCCL communicator per rank of a data group whose ranks are threads of one process,
// each owning its own GPU. Communicators are non-blocking, so every wait polls and a watchdog's
// abort() ends it: a stuck all-reduce returns false instead of hanging its thread.
//
//   NcclGroup group(2, std::array{0, 1});                        // rank r on GPU gpu_of_rank[r]
//   bool done = group.all_reduce_sum(rank, buffer, n, stream);   // each rank's thread
//   group.abort();                                               // the watchdog: waiting ranks return false
//
// Callers must run with NCCL_NVLS_ENABLE=0: NVLink multicast objects can take a shared host's GPUs
// out of service, so the constructor refuses to start without it, and nothing here registers
// windows or creates multicast objects itself. Built only with -DHCSIM_HAVE_NCCL.
#pragma once

#ifdef HCSIM_HAVE_NCCL

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

struct ncclComm;

namespace hcsim {

class NcclGroup {
 public:
  // Throws DeviceUnavailable when a GPU is missing, std::invalid_argument when two ranks share a GPU
  // (NCCL does not support it), std::runtime_error when NCCL fails or NCCL_NVLS_ENABLE is not 0.
  NcclGroup(int ranks, std::span<const int> gpu_of_rank);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  // Sum-all-reduces `count` floats in place in `device_buffer` (on the rank's GPU) on `stream`, and
  // waits for completion while polling the communicator for errors. Returns false, without waiting
  // further, once abort() has been called. Throws std::runtime_error on an NCCL or CUDA error.
  // One thread per rank at a time.
  bool all_reduce_sum(int rank, float* device_buffer, std::size_t count, cudaStream_t stream);

  // Aborts every communicator. Safe from any thread, at any time, more than once.
  void abort();

 private:
  std::vector<ncclComm*> comms_;
  std::vector<int> gpu_of_rank_;
  // NCCL allows one thread at a time on a communicator: the rank's thread holds its mutex for each
  // (non-blocking, so short) NCCL call, and abort() takes it before aborting that communicator.
  std::unique_ptr<std::mutex[]> comm_mutexes_;
  std::atomic<bool> aborted_{false};
};

}  // namespace hcsim

#endif  // HCSIM_HAVE_NCCL
