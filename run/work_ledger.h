// WorkLedger: the work a run owes, per request and rank, as both worlds keep it. A request is
// owed from the first rank's start until every rank of its DP attention replica (every rank,
// without DP attention) has finished it; the run's work is done once every request finished there. The oldest owed start is kept ordered, so the simulator's
// check "does any request starve?" costs O(log n) per start or finish and O(1) per check.
//
//   WorkLedger w(2, 2);           // 2 requests, 2 ranks
//   w.start(0, 1'000);            // request 0 first started at t=1us
//   w.finish(0, 0);               // rank 0 finished it
//   w.owed();                     // {{request 0, started 1000, ranks_pending {1}}}
//   w.oldest_owed_start_ns();     // 1000
#pragma once

#include <cstddef>
#include <set>
#include <utility>
#include <vector>

#include "policy/runtime.h"

namespace hcsim {

struct WorkItem {
  RequestId request = kNoRequest;
  TimeNs started_ns = 0;
  std::vector<int> ranks_pending;
};

class WorkLedger {
 public:
  WorkLedger(std::size_t request_count, int ranks);
  // With DP attention: request r is owed by the `replica_ranks` ranks of replica `replica_of[r]`,
  // whose ranks are contiguous (policy/topology.h).
  WorkLedger(std::size_t request_count, int ranks, std::vector<int> replica_of, int replica_ranks);

  // The first start of `request` counts; later ones (other ranks) do not move it.
  void start(RequestId request, TimeNs now_ns);
  // `rank` finished `request`, once. True if that was the last finish the run owed.
  bool finish(RequestId request, int rank);

  // Every request finished on every rank that owes it.
  bool all_done() const { return finishes_ == finishes_max_; }
  // Per request started and not finished on every rank: when it started, which ranks still owe it
  // (in request order).
  std::vector<WorkItem> owed() const;
  std::size_t owed_count() const { return owed_by_start_.size(); }
  // When the oldest owed request started, or -1 when none is owed.
  TimeNs oldest_owed_start_ns() const { return owed_by_start_.empty() ? -1 : owed_by_start_.begin()->first; }

 private:
  int first_rank(std::size_t request) const { return replica_of_[request] * replica_ranks_; }

  int replica_ranks_;
  std::vector<int> replica_of_;                  // by request
  std::size_t finishes_max_;
  std::size_t finishes_ = 0;
  std::vector<TimeNs> started_ns_;               // by request, -1 if not started
  std::vector<std::vector<bool>> finished_;      // by request, by rank
  std::vector<int> finished_ranks_;              // by request
  std::set<std::pair<TimeNs, RequestId>> owed_by_start_;  // started, not finished on every rank
};

}  // namespace hcsim
