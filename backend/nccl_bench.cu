// measure_nccl_latency (nccl_bench.h): raw NCCL collectives on device buffers, and the thread world's
// data group on host messages, timed by median_round_us.
#ifdef HCSIM_HAVE_NCCL

#include "backend/nccl_bench.h"

#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "backend/cuda_support.h"
#include "backend/nccl_data_group.h"
#include "backend/nccl_group.h"
#include "backend/round_timing.h"
#include "backend/thread_world.h"

namespace hcsim {

namespace {

constexpr std::size_t kPolicyWords = 3;  // the widest inline policy all-reduce the library scenarios make
constexpr int kWarmUpRounds = 20;

// One rank's device buffers and stream for the raw collectives.
struct RawRank {
  int gpu = 0;
  cudaStream_t stream = nullptr;
  std::int64_t* words = nullptr;   // kPolicyWords, reduced in place
  std::int64_t* frame = nullptr;   // kCollectiveFrameWords
  std::int64_t* frames = nullptr;  // kCollectiveFrameWords per rank
  RawRank() = default;
  RawRank(const RawRank&) = delete;
  RawRank& operator=(const RawRank&) = delete;
  ~RawRank() {
    (void)cudaSetDevice(gpu);
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
    (void)cudaFree(words);
    (void)cudaFree(frame);
    (void)cudaFree(frames);
    (void)cudaGetLastError();
  }
};

}  // namespace

NcclLatency measure_nccl_latency(int tp, std::size_t forward_floats, int rounds) {
  const CurrentGpuKept caller_gpu;
  const int gpus = require_cuda_gpus();
  if (tp > gpus) {
    throw DeviceUnavailable("NCCL at TP " + std::to_string(tp) + " needs " + std::to_string(tp) + " GPUs, one per rank; " +
                            std::to_string(gpus) + " found");
  }
  std::vector<int> gpu_of_rank(static_cast<std::size_t>(tp));
  std::iota(gpu_of_rank.begin(), gpu_of_rank.end(), 0);
  NcclLatency out;
  {
    std::vector<std::unique_ptr<RawRank>> raw;
    for (int r = 0; r < tp; ++r) {
      raw.push_back(std::make_unique<RawRank>());
      RawRank& b = *raw.back();
      b.gpu = r;
      HCSIM_CUDA_CHECK(cudaSetDevice(b.gpu));
      HCSIM_CUDA_CHECK(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking));
      b.words = alloc_device<std::int64_t>(kPolicyWords);
      b.frame = alloc_device<std::int64_t>(kCollectiveFrameWords);
      b.frames = alloc_device<std::int64_t>(static_cast<std::int64_t>(kCollectiveFrameWords) * tp);
      HCSIM_CUDA_CHECK(cudaMemset(b.words, 0, kPolicyWords * sizeof(std::int64_t)));
      HCSIM_CUDA_CHECK(cudaMemset(b.frame, 0, kCollectiveFrameWords * sizeof(std::int64_t)));
    }
    // Destroyed before `raw`: the communicators go before the buffers their kernels used.
    NcclGroup group(tp, gpu_of_rank);
    auto all_reduce_min = [&](int r) {
      RawRank& b = *raw[static_cast<std::size_t>(r)];
      if (!group.all_reduce(r, b.words, kPolicyWords, NcclReduce::kMinInt64, b.stream)) throw CollectiveFailed("aborted");
    };
    auto all_gather = [&](int r) {
      RawRank& b = *raw[static_cast<std::size_t>(r)];
      if (!group.all_gather(r, b.frame, b.frames, kCollectiveFrameWords, b.stream)) throw CollectiveFailed("aborted");
    };
    auto abort = [&] { group.abort(); };
    (void)median_round_us(tp, kWarmUpRounds, all_reduce_min, abort);
    out.all_reduce_min_us = median_round_us(tp, rounds, all_reduce_min, abort);
    (void)median_round_us(tp, kWarmUpRounds, all_gather, abort);
    out.all_gather_frame_us = median_round_us(tp, rounds, all_gather, abort);
  }
  const std::unique_ptr<DataGroup> data = make_nccl_data_group(gpu_of_rank, kCollectiveFrameWords, forward_floats);
  std::vector<std::vector<std::int64_t>> frame(static_cast<std::size_t>(tp), std::vector<std::int64_t>(kCollectiveFrameWords, 1));
  std::vector<std::vector<std::int64_t>> frames(static_cast<std::size_t>(tp),
                                                std::vector<std::int64_t>(kCollectiveFrameWords * static_cast<std::size_t>(tp)));
  std::vector<std::vector<float>> activations(static_cast<std::size_t>(tp), std::vector<float>(forward_floats, 1.0f));
  auto forward_frame = [&](int r) { data->all_gather(r, frame[static_cast<std::size_t>(r)], frames[static_cast<std::size_t>(r)]); };
  auto forward_sum = [&](int r) { data->all_reduce_sum(r, activations[static_cast<std::size_t>(r)]); };
  auto abort = [&] { data->abort(); };
  (void)median_round_us(tp, kWarmUpRounds, forward_frame, abort);
  out.forward_frame_us = median_round_us(tp, rounds, forward_frame, abort);
  (void)median_round_us(tp, kWarmUpRounds, forward_sum, abort);
  out.forward_sum_us = median_round_us(tp, rounds, forward_sum, abort);
  return out;
}

}  // namespace hcsim

#endif  // HCSIM_HAVE_NCCL
