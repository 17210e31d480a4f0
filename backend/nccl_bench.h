// NCCL latency for the messages the thread world sends, one rank per GPU (GPUs 0..tp-1), measured as
// `hcsim bench --gpu` measures Gloo's (round_timing.h), to compare the two transports.
//
//   NcclLatency l = measure_nccl_latency(2, 4096, 2000);   // TP 2, a 4096-token forward, 2000 rounds
//   l.all_reduce_min_us;                                   // a policy all_reduce(MIN) of 3 int64
#pragma once

#include <cstddef>

namespace hcsim {

struct NcclLatency {
  double all_reduce_min_us = 0;    // ncclAllReduce of 3 int64 (MIN) in device memory: a policy-sized message
  double all_gather_frame_us = 0;  // ncclAllGather of a 16-word descriptor in device memory
  double forward_frame_us = 0;     // the thread world's forward descriptor: host staging, NCCL all-gather, back
  double forward_sum_us = 0;       // the thread world's activations sum: host staging, ncclAllReduce, back
};

// Median of `rounds` rounds of each (after warm-up rounds that connect the peers). Throws
// DeviceUnavailable with fewer than `tp` GPUs; std::runtime_error when NCCL fails. Built only with
// -DHCSIM_HAVE_NCCL.
NcclLatency measure_nccl_latency(int tp, std::size_t forward_floats, int rounds);

}  // namespace hcsim
