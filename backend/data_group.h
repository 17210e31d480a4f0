// DataGroup: one stage's TP group's GPU-data collectives, the forward's: its descriptor (every member's op,
// size, stop bit and model time) and the sum of its activations. Upstream runs these on NCCL and the
// policy's on Gloo CPU groups; the thread world does the same when every rank has its own GPU, and
// uses Gloo's data channel where ranks share a GPU (NCCL refuses that) or there is none.
//
//   auto data = make_gloo_data_group(mesh, group);        // or make_nccl_data_group(...) (nccl_data_group.h)
//   data->all_gather(member, frame, frames);              // on the thread of its member-th rank (its TP rank)
//   data->all_reduce_sum(member, activations);
//   data->abort();                                        // the watchdog: members waiting throw CollectiveFailed
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "backend/gloo_mesh.h"

namespace hcsim {

class DataGroup {
 public:
  virtual ~DataGroup() = default;
  DataGroup() = default;
  DataGroup(const DataGroup&) = delete;
  DataGroup& operator=(const DataGroup&) = delete;

  // "Gloo over loopback" or "NCCL 2.28.3, 2 communicator(s) on GPUs 0, 1".
  virtual std::string describe() const = 0;
  // Whether members that disagree on the size may each enter all_reduce_sum with their own count,
  // as upstream's ranks do: NCCL then leaves the collective unmatched (it never completes on some
  // rank) until the watchdog aborts it. Gloo's TCP transport would terminate the process instead.
  virtual bool survives_mismatched_counts() const = 0;

  // A member is a rank's index in the group (its TP rank). One thread per member at a time. Both
  // throw CollectiveFailed when the transport fails or the group was aborted. all_gather's `out`
  // receives every member's `in`, in member order (in.size() * members).
  virtual void all_gather(int member, std::span<const std::int64_t> in, std::span<std::int64_t> out) = 0;
  virtual void all_reduce_sum(int member, std::span<float> values) = 0;

  // Ends every member's wait; safe from any thread, idempotent.
  virtual void abort() = 0;
  // What abort() does beyond closing Gloo connections, for the report ("aborted the forward's NCCL
  // communicators (ncclCommAbort)"); empty when nothing more.
  virtual std::string abort_action() const { return {}; }
};

// Group `group` of `mesh`, which must outlive the data group.
std::unique_ptr<DataGroup> make_gloo_data_group(GlooMesh& mesh, std::size_t group);

}  // namespace hcsim
