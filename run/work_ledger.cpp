#include "run/work_ledger.h"

#include <utility>

#include "policy/assert.h"

namespace hcsim {

WorkLedger::WorkLedger(std::size_t request_count, int ranks) : WorkLedger(request_count, ranks, std::vector<int>(request_count, 0), ranks) {}

WorkLedger::WorkLedger(std::size_t request_count, int ranks, std::vector<int> replica_of, int replica_ranks)
    : replica_ranks_(replica_ranks),
      replica_of_(std::move(replica_of)),
      finishes_max_(request_count * static_cast<std::size_t>(replica_ranks)),
      started_ns_(request_count, -1),
      finished_(request_count, std::vector<bool>(static_cast<std::size_t>(ranks), false)),
      finished_ranks_(request_count, 0) {
  HCSIM_ASSERT(ranks > 0 && replica_ranks > 0 && ranks % replica_ranks == 0 && replica_of_.size() == request_count);
  for (int replica : replica_of_) HCSIM_ASSERT(replica >= 0 && replica < ranks / replica_ranks);
}

void WorkLedger::start(RequestId request, TimeNs now_ns) {
  HCSIM_ASSERT(request >= 0 && static_cast<std::size_t>(request) < started_ns_.size());
  HCSIM_ASSERT(now_ns >= 0);
  const auto r = static_cast<std::size_t>(request);
  if (started_ns_[r] >= 0) return;
  started_ns_[r] = now_ns;
  // Finished on every rank before any start (a request the ranks dropped): nothing is owed.
  if (finished_ranks_[r] < replica_ranks_) owed_by_start_.insert({now_ns, request});
}

bool WorkLedger::finish(RequestId request, int rank) {
  HCSIM_ASSERT(request >= 0 && static_cast<std::size_t>(request) < started_ns_.size());
  const auto r = static_cast<std::size_t>(request);
  HCSIM_ASSERT(rank >= first_rank(r) && rank < first_rank(r) + replica_ranks_);  // a rank of its replica
  std::vector<bool>& by_rank = finished_[r];
  HCSIM_ASSERT(!by_rank[static_cast<std::size_t>(rank)]);
  by_rank[static_cast<std::size_t>(rank)] = true;
  if (++finished_ranks_[r] == replica_ranks_) owed_by_start_.erase({started_ns_[r], request});
  HCSIM_ASSERT(finishes_ < finishes_max_);
  return ++finishes_ == finishes_max_;
}

std::vector<WorkItem> WorkLedger::owed() const {
  std::vector<WorkItem> out;
  out.reserve(owed_by_start_.size());
  for (std::size_t r = 0; r < started_ns_.size(); ++r) {
    if (started_ns_[r] < 0 || finished_ranks_[r] == replica_ranks_) continue;
    WorkItem w{static_cast<RequestId>(r), started_ns_[r], {}};
    for (int k = first_rank(r); k < first_rank(r) + replica_ranks_; ++k) {
      if (!finished_[r][static_cast<std::size_t>(k)]) w.ranks_pending.push_back(k);
    }
    out.push_back(std::move(w));
  }
  HCSIM_ASSERT(out.size() == owed_by_start_.size());
  return out;
}

}  // namespace hcsim
