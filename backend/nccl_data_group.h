// The thread world's data group over NCCL: one non-blocking communicator per rank, each rank on its
// own GPU. Messages are staged through pinned host memory, since the thread world hands the forward's
// activations over on the host (the Device interface is the same for the host device); the staging
// copies are part of the latency `hcsim bench --gpu` reports for this path.
//
//   auto data = make_nccl_data_group(std::array{0, 1}, 16, 8192);   // GPUs, largest frame and activations
//   data->all_reduce_sum(rank, activations);                       // ncclAllReduce on rank's GPU
//   data->abort();                                                 // ncclCommAbort on every communicator
#pragma once

#ifdef HCSIM_HAVE_NCCL

#include <cstddef>
#include <memory>
#include <span>

#include "backend/data_group.h"

namespace hcsim {

// Throws as NcclGroup's constructor does (a missing GPU, two ranks on one GPU, an NCCL failure).
std::unique_ptr<DataGroup> make_nccl_data_group(std::span<const int> gpu_of_rank, std::size_t frame_words_max,
                                                std::size_t floats_max);

}  // namespace hcsim

#endif  // HCSIM_HAVE_NCCL
