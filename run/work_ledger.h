// WorkLedger: the work a run owes, per request and rank, as both worlds keep it. A request is
// owed from the first rank's start until every rank has finished it; the run's work is done once
// every request finished on every rank. The oldest owed start is kept ordered, so the simulator's
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

  // The first start of `request` counts; later ones (other ranks) do not move it.
  void start(RequestId request, TimeNs now_ns);
  // `rank` finished `request`, once. True if that was the last finish the run owed.
  bool finish(RequestId request, int rank);

  // Every request finished on every rank.
  bool all_done() const { return finishes_ == finishes_max_; }
  // Per request started and not finished on every rank: when it started, which ranks still owe it
  // (in request order).
  std::vector<WorkItem> owed() const;
  std::size_t owed_count() const { return owed_by_start_.size(); }
  // When the oldest owed request started, or -1 when none is owed.
  TimeNs oldest_owed_start_ns() const { return owed_by_start_.empty() ? -1 : owed_by_start_.begin()->first; }

 private:
  int ranks_;
  std::size_t finishes_max_;
  std::size_t finishes_ = 0;
  std::vector<TimeNs> started_ns_;               // by request, -1 if not started
  std::vector<std::vector<bool>> finished_;      // by request, by rank
  std::vector<int> finished_ranks_;              // by request
  std::set<std::pair<TimeNs, RequestId>> owed_by_start_;  // started, not finished on every rank
};

}  // namespace hcsim
