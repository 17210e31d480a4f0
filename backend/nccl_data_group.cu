// NcclDataGroup (nccl_data_group.h): host messages staged into device buffers, reduced or gathered by
// NcclGroup, and copied back.
#ifdef HCSIM_HAVE_NCCL

#include "backend/nccl_data_group.h"

#include <algorithm>
#include <string>
#include <vector>

#include "backend/cuda_support.h"
#include "backend/nccl_group.h"
#include "policy/assert.h"

namespace hcsim {

namespace {

// One rank's stream and buffers, on its GPU. Filled after construction, so a failure part way
// leaves a value whose destructor frees what was made.
struct RankBuffers {
  int gpu = 0;
  cudaStream_t stream = nullptr;
  std::int64_t* frame_device = nullptr;    // this rank's frame
  std::int64_t* frames_device = nullptr;   // every rank's, gathered
  float* floats_device = nullptr;
  std::int64_t* frames_host = nullptr;     // pinned: the async copies' ends must be
  float* floats_host = nullptr;

  RankBuffers() = default;
  RankBuffers(const RankBuffers&) = delete;
  RankBuffers& operator=(const RankBuffers&) = delete;
  ~RankBuffers() {
    // Errors are ignored: a destructor must not throw. The communicators are gone by now (aborted
    // or finalized), so nothing still runs on the stream.
    (void)cudaSetDevice(gpu);
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
    (void)cudaFree(frame_device);
    (void)cudaFree(frames_device);
    (void)cudaFree(floats_device);
    (void)cudaFreeHost(frames_host);
    (void)cudaFreeHost(floats_host);
    (void)cudaGetLastError();
  }
};

class NcclDataGroup final : public DataGroup {
 public:
  NcclDataGroup(std::span<const int> gpu_of_rank, std::size_t frame_words_max, std::size_t floats_max)
      : frame_words_max_(frame_words_max), floats_max_(floats_max), group_(std::make_unique<NcclGroup>(static_cast<int>(gpu_of_rank.size()), gpu_of_rank)) {
    const CurrentGpuKept caller_gpu;
    const std::size_t ranks = gpu_of_rank.size();
    for (std::size_t r = 0; r < ranks; ++r) {
      buffers_.push_back(std::make_unique<RankBuffers>());
      RankBuffers& b = *buffers_.back();
      b.gpu = gpu_of_rank[r];
      HCSIM_CUDA_CHECK(cudaSetDevice(b.gpu));
      HCSIM_CUDA_CHECK(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking));
      const auto frame_words = static_cast<std::int64_t>(frame_words_max);
      const auto frames_words = static_cast<std::int64_t>(frame_words_max * ranks);
      b.frame_device = alloc_device<std::int64_t>(frame_words);
      b.frames_device = alloc_device<std::int64_t>(frames_words);
      b.floats_device = alloc_device<float>(static_cast<std::int64_t>(floats_max));
      b.frames_host = alloc_pinned<std::int64_t>(frames_words, cudaHostAllocPortable);
      b.floats_host = alloc_pinned<float>(static_cast<std::int64_t>(floats_max), cudaHostAllocPortable);
    }
  }

  ~NcclDataGroup() override {
    const CurrentGpuKept caller_gpu;  // the buffers' destructors visit every rank's GPU
    group_.reset();
    buffers_.clear();
  }

  std::string describe() const override { return group_->describe(); }
  bool survives_mismatched_counts() const override { return true; }
  std::string abort_action() const override { return "aborted the forward's NCCL communicators (ncclCommAbort)"; }

  void all_gather(int rank, std::span<const std::int64_t> in, std::span<std::int64_t> out) override {
    failing_as_collective([&] { gather(rank, in, out); });
  }
  void all_reduce_sum(int rank, std::span<float> values) override {
    failing_as_collective([&] { sum(rank, values); });
  }
  void abort() override { group_->abort(); }

 private:
  // An NCCL or CUDA error is the transport failing: the communicators are aborted (NCCL wants that
  // after an asynchronous error, and it releases the peers at once) and the caller sees
  // CollectiveFailed, as from Gloo.
  template <typename Call>
  void failing_as_collective(Call call) {
    try {
      call();
    } catch (const CollectiveFailed&) {
      throw;
    } catch (const std::runtime_error& e) {
      group_->abort();
      throw CollectiveFailed(e.what());
    }
  }

  void gather(int rank, std::span<const std::int64_t> in, std::span<std::int64_t> out) {
    RankBuffers& b = rank_buffers(rank);
    HCSIM_ASSERT(in.size() <= frame_words_max_ && out.size() == in.size() * buffers_.size());
    HCSIM_CUDA_CHECK(cudaSetDevice(b.gpu));
    std::copy(in.begin(), in.end(), b.frames_host);
    HCSIM_CUDA_CHECK(cudaMemcpyAsync(b.frame_device, b.frames_host, in.size_bytes(), cudaMemcpyHostToDevice, b.stream));
    if (!group_->all_gather(rank, b.frame_device, b.frames_device, in.size(), b.stream)) throw aborted("ncclAllGather");
    HCSIM_CUDA_CHECK(cudaMemcpyAsync(b.frames_host, b.frames_device, out.size_bytes(), cudaMemcpyDeviceToHost, b.stream));
    HCSIM_CUDA_CHECK(cudaStreamSynchronize(b.stream));
    std::copy_n(b.frames_host, out.size(), out.begin());
  }

  void sum(int rank, std::span<float> values) {
    RankBuffers& b = rank_buffers(rank);
    HCSIM_ASSERT(values.size() <= floats_max_);
    HCSIM_CUDA_CHECK(cudaSetDevice(b.gpu));
    std::copy(values.begin(), values.end(), b.floats_host);
    HCSIM_CUDA_CHECK(cudaMemcpyAsync(b.floats_device, b.floats_host, values.size_bytes(), cudaMemcpyHostToDevice, b.stream));
    if (!group_->all_reduce(rank, b.floats_device, values.size(), NcclReduce::kSumFloat, b.stream)) throw aborted("ncclAllReduce");
    HCSIM_CUDA_CHECK(cudaMemcpyAsync(b.floats_host, b.floats_device, values.size_bytes(), cudaMemcpyDeviceToHost, b.stream));
    HCSIM_CUDA_CHECK(cudaStreamSynchronize(b.stream));
    std::copy_n(b.floats_host, values.size(), values.begin());
  }

  RankBuffers& rank_buffers(int rank) {
    HCSIM_ASSERT(rank >= 0 && static_cast<std::size_t>(rank) < buffers_.size());
    return *buffers_[static_cast<std::size_t>(rank)];
  }
  static CollectiveFailed aborted(const char* call) {
    return CollectiveFailed(std::string(call) + ": aborted (ncclCommAbort)");
  }

  std::size_t frame_words_max_;
  std::size_t floats_max_;
  std::vector<std::unique_ptr<RankBuffers>> buffers_;
  std::unique_ptr<NcclGroup> group_;  // goes before the buffers its kernels used: see the destructor
};

}  // namespace

std::unique_ptr<DataGroup> make_nccl_data_group(std::span<const int> gpu_of_rank, std::size_t frame_words_max,
                                                std::size_t floats_max) {
  return std::make_unique<NcclDataGroup>(gpu_of_rank, frame_words_max, floats_max);
}

}  // namespace hcsim

#endif  // HCSIM_HAVE_NCCL
