// NcclGroup (nccl_group.h): non-blocking communicators created together from one thread,
// collectives that poll instead of blocking, and an abort that any thread may pull.
#ifdef HCSIM_HAVE_NCCL

#include "backend/nccl_group.h"

#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "backend/cuda_support.h"
#include "policy/assert.h"

namespace hcsim {

namespace {

using Clock = std::chrono::steady_clock;

// Creating or finalizing one host's communicators takes seconds; past this, something is stuck.
constexpr std::chrono::seconds kSetupTimeout{120};
constexpr std::chrono::milliseconds kSetupPoll{1};
constexpr std::chrono::microseconds kSpinBeforeSleeping{200};
constexpr std::chrono::microseconds kPollSleep{20};

[[noreturn]] void throw_nccl_error(ncclResult_t result, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + ncclGetErrorString(result) + " (" + ncclGetLastError(nullptr) + ")");
}

#define HCSIM_NCCL_CHECK(call)                                                   \
  do {                                                                           \
    const ncclResult_t hcsim_nccl_result = (call);                               \
    if (hcsim_nccl_result != ncclSuccess) [[unlikely]] {                         \
      throw_nccl_error(hcsim_nccl_result, #call, __FILE__, __LINE__);            \
    }                                                                            \
  } while (0)

bool accepted(ncclResult_t result) { return result == ncclSuccess || result == ncclInProgress; }

// Waits until no communicator has a non-blocking operation in progress. Returns the first error,
// or ncclInProgress if `deadline` passed first.
ncclResult_t wait_until_settled(std::span<ncclComm* const> comms, Clock::time_point deadline) noexcept {
  for (ncclComm* comm : comms) {
    for (;;) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t query = ncclCommGetAsyncError(comm, &state);
      if (query != ncclSuccess) return query;
      if (state != ncclInProgress) {
        if (state != ncclSuccess) return state;
        break;
      }
      if (Clock::now() >= deadline) return ncclInProgress;
      std::this_thread::sleep_for(kSetupPoll);
    }
  }
  return ncclSuccess;
}

void abort_all(std::span<ncclComm* const> comms) noexcept {
  for (ncclComm* comm : comms) {
    if (comm != nullptr) (void)ncclCommAbort(comm);
  }
}

}  // namespace

NcclGroup::NcclGroup(int ranks, std::span<const int> gpu_of_rank)
    : comms_(static_cast<std::size_t>(std::max(ranks, 0)), nullptr),
      gpu_of_rank_(gpu_of_rank.begin(), gpu_of_rank.end()),
      comm_mutexes_(std::make_unique<std::mutex[]>(comms_.size())) {
  if (ranks < 1 || gpu_of_rank.size() != static_cast<std::size_t>(ranks)) {
    throw std::invalid_argument("NcclGroup: " + std::to_string(ranks) + " rank(s) but " +
                                std::to_string(gpu_of_rank.size()) + " GPU(s) listed");
  }
  // NCCL reads its environment once, at its first call: this must come before any. Connections are
  // made when the communicators are, not lazily at the first collective of each algorithm, which
  // would cost milliseconds in the middle of a paced run.
  (void)::setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  (void)::setenv("NCCL_RUNTIME_CONNECT", "0", /*overwrite=*/0);
  const char* nvls = std::getenv("NCCL_NVLS_ENABLE");
  if (nvls == nullptr || std::string_view(nvls) != "0") {
    throw std::runtime_error(std::string("NcclGroup: NCCL_NVLS_ENABLE is '") + (nvls ? nvls : "") +
                             "'; NVLink multicast must stay off: unset it or set it to 0");
  }
  const int gpus = require_cuda_gpus();
  for (int rank = 0; rank < ranks; ++rank) {
    const int gpu = gpu_of_rank_[static_cast<std::size_t>(rank)];
    if (gpu < 0 || gpu >= gpus) {
      throw DeviceUnavailable("rank " + std::to_string(rank) + " needs GPU " + std::to_string(gpu) + " but " +
                              std::to_string(gpus) + " GPU(s) found");
    }
    for (int other = 0; other < rank; ++other) {
      if (gpu_of_rank_[static_cast<std::size_t>(other)] == gpu) {
        throw std::invalid_argument("NcclGroup: ranks " + std::to_string(other) + " and " + std::to_string(rank) +
                                    " share GPU " + std::to_string(gpu) + "; NCCL needs one GPU per rank");
      }
    }
  }

  int caller_gpu = 0;
  HCSIM_CUDA_CHECK(cudaGetDevice(&caller_gpu));
  ncclUniqueId id;
  HCSIM_NCCL_CHECK(ncclGetUniqueId(&id));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every call returns at once, so waits can poll and abort() can end them

  // Each init waits for its peers, so one thread starts them all inside one group.
  ncclResult_t result = ncclSuccess;
  HCSIM_NCCL_CHECK(ncclGroupStart());
  for (int rank = 0; rank < ranks && accepted(result); ++rank) {
    if (cudaSetDevice(gpu_of_rank_[static_cast<std::size_t>(rank)]) != cudaSuccess) {
      result = ncclUnhandledCudaError;
    } else {
      result = ncclCommInitRankConfig(&comms_[static_cast<std::size_t>(rank)], ranks, id, rank, &config);
    }
  }
  const ncclResult_t group_end = ncclGroupEnd();
  (void)cudaSetDevice(caller_gpu);
  if (accepted(result)) result = group_end;
  if (accepted(result)) result = wait_until_settled(comms_, Clock::now() + kSetupTimeout);
  if (result != ncclSuccess) {
    abort_all(comms_);
    throw std::runtime_error(std::string("NcclGroup: creating ") + std::to_string(ranks) + " communicator(s) failed: " +
                             (result == ncclInProgress ? "not ready after " + std::to_string(kSetupTimeout.count()) + " s"
                                                       : std::string(ncclGetErrorString(result))));
  }
}

NcclGroup::~NcclGroup() {
  if (aborted_.load()) return;
  // A finalize may wait for its peers' finalize, so all start in one group before any is awaited.
  if (ncclGroupStart() == ncclSuccess) {
    for (ncclComm* comm : comms_) (void)ncclCommFinalize(comm);
    if (accepted(ncclGroupEnd()) && wait_until_settled(comms_, Clock::now() + kSetupTimeout) == ncclSuccess) {
      for (ncclComm* comm : comms_) (void)ncclCommDestroy(comm);
      return;
    }
  }
  abort_all(comms_);
}

template <typename Issue>
bool NcclGroup::run(int rank, cudaStream_t stream, const char* call, Issue issue) {
  HCSIM_ASSERT(rank >= 0 && static_cast<std::size_t>(rank) < comms_.size());
  const auto r = static_cast<std::size_t>(rank);
  HCSIM_CUDA_CHECK(cudaSetDevice(gpu_of_rank_[r]));
  std::mutex& mutex = comm_mutexes_[r];
  ncclComm* const comm = comms_[r];
  {
    const std::lock_guard lock(mutex);
    if (aborted_.load()) return false;
    const ncclResult_t issued = issue(comm);
    if (!accepted(issued)) {
      if (aborted_.load()) return false;
      throw_nccl_error(issued, call, __FILE__, __LINE__);
    }
  }
  // Unbounded by itself: the bound is the watchdog, whose abort() ends this loop. It spins for a
  // collective's usual time, then sleeps between polls: a rank stuck in an unmatched collective must
  // not take a core from the actors that still run.
  const auto spin_until = Clock::now() + kSpinBeforeSleeping;
  for (;;) {
    {
      const std::lock_guard lock(mutex);
      if (aborted_.load()) return false;
      ncclResult_t state = ncclSuccess;
      HCSIM_NCCL_CHECK(ncclCommGetAsyncError(comm, &state));
      if (!accepted(state)) {
        // A peer's abort surfaces here as an error; aborted_ was set before any communicator was aborted.
        if (aborted_.load()) return false;
        throw_nccl_error(state, call, __FILE__, __LINE__);
      }
      // While NCCL still reports ncclInProgress the collective may not be on the stream yet.
      if (state == ncclSuccess) {
        const cudaError_t done = cudaStreamQuery(stream);
        if (done == cudaSuccess) return true;
        if (done != cudaErrorNotReady) throw_cuda_error(done, "cudaStreamQuery(stream)", __FILE__, __LINE__);
      }
    }
    if (Clock::now() < spin_until) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(kPollSleep);
    }
  }
}

bool NcclGroup::all_reduce(int rank, void* device_buffer, std::size_t count, NcclReduce op, cudaStream_t stream) {
  const ncclDataType_t type = op == NcclReduce::kSumFloat ? ncclFloat : ncclInt64;
  const ncclRedOp_t reduction = op == NcclReduce::kSumFloat ? ncclSum : op == NcclReduce::kMinInt64 ? ncclMin : ncclMax;
  return run(rank, stream, "ncclAllReduce", [&](ncclComm* comm) {
    return ncclAllReduce(device_buffer, device_buffer, count, type, reduction, comm, stream);
  });
}

bool NcclGroup::all_gather(int rank, const std::int64_t* send, std::int64_t* receive, std::size_t count, cudaStream_t stream) {
  return run(rank, stream, "ncclAllGather",
             [&](ncclComm* comm) { return ncclAllGather(send, receive, count, ncclInt64, comm, stream); });
}

std::string NcclGroup::describe() const {
  int version = 0;
  (void)ncclGetVersion(&version);
  // NCCL_VERSION(X,Y,Z) is X*10000 + Y*100 + Z since 2.9.
  std::string text = "NCCL " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
                     std::to_string(version % 100) + ", " + std::to_string(comms_.size()) + " communicator(s) on GPU";
  text += comms_.size() > 1 ? "s " : " ";
  for (std::size_t r = 0; r < gpu_of_rank_.size(); ++r) text += (r == 0 ? "" : ", ") + std::to_string(gpu_of_rank_[r]);
  return text;
}

void NcclGroup::abort() {
  if (aborted_.exchange(true)) return;
  for (std::size_t r = 0; r < comms_.size(); ++r) {
    const std::lock_guard lock(comm_mutexes_[r]);
    (void)ncclCommAbort(comms_[r]);
  }
}

}  // namespace hcsim

#endif  // HCSIM_HAVE_NCCL
