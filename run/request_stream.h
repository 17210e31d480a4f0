// RequestStream: the arrivals and client aborts the outside world delivers, each sorted by time
// (stably: equal times keep their order) and handed out once, when due. With DP attention the
// arrivals go round robin to the replicas in that order, as upstream's DP controller routes them by
// default (round_robin_scheduler, data_parallel_controller.py@17313cf4b:753-772); aborts go to
// every rank. Both worlds deliver requests through it; the caller serialises access.
//
//   RequestStream s(arrivals, aborts, 2);
//   int n = s.take_arrivals(now_ns, out, 1);  // replica 1's requests due by now_ns, not taken before
//   s.next_due_ns();                       // what a scheduler sleeping on idle wakes for
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "policy/assert.h"
#include "run/recording.h"

namespace hcsim {

// Which ranks run a request: every rank, or with DP attention the ranks of its replica, which are
// contiguous (policy/topology.h). Reports and invariants compare a request's ranks among themselves.
struct RequestOwners {
  std::vector<int> replica_of;  // by request
  int replica_ranks = 0;        // 0: not set (judge_run sets it); asking then is a bug, not "rank 0 alone"

  int first_rank(RequestId request) const {
    HCSIM_ASSERT(replica_ranks > 0);
    const auto r = static_cast<std::size_t>(request);
    return r < replica_of.size() ? replica_of[r] * replica_ranks : 0;
  }
  bool owns(int rank, RequestId request) const { return rank >= first_rank(request) && rank < first_rank(request) + replica_ranks; }
};

class RequestStream {
 public:
  RequestStream(std::vector<Arrival> arrivals, std::vector<Arrival> aborts, int replicas = 1)
      : arrivals_(static_cast<std::size_t>(replicas)), next_arrival_(static_cast<std::size_t>(replicas), 0), aborts_(std::move(aborts)) {
    HCSIM_ASSERT(replicas > 0);
    auto by_time = [](const Arrival& a, const Arrival& b) { return a.time_ns < b.time_ns; };
    std::stable_sort(arrivals.begin(), arrivals.end(), by_time);
    std::stable_sort(aborts_.begin(), aborts_.end(), by_time);
    for (std::size_t i = 0; i < arrivals.size(); ++i) arrivals_[i % arrivals_.size()].push_back(arrivals[i]);
  }

  int take_arrivals(TimeNs now_ns, std::span<RequestId> out, int replica = 0) {
    const auto k = static_cast<std::size_t>(replica);
    return take_due(arrivals_.at(k), next_arrival_[k], now_ns, out);
  }
  int take_aborts(TimeNs now_ns, std::span<RequestId> out) { return take_due(aborts_, next_abort_, now_ns, out); }

  // When the next arrival (of any replica) or abort not yet taken is due; -1 if none is left.
  TimeNs next_due_ns() const {
    TimeNs due = next_abort_ < aborts_.size() ? aborts_[next_abort_].time_ns : -1;
    for (std::size_t k = 0; k < arrivals_.size(); ++k) {
      const TimeNs a = next_arrival_[k] < arrivals_[k].size() ? arrivals_[k][next_arrival_[k]].time_ns : -1;
      if (a >= 0 && (due < 0 || a < due)) due = a;
    }
    return due;
  }
  bool arrivals_taken() const {
    for (std::size_t k = 0; k < arrivals_.size(); ++k) {
      if (next_arrival_[k] < arrivals_[k].size()) return false;
    }
    return true;
  }
  // The replica each of `request_count` requests goes to (0 for one that never arrives).
  std::vector<int> replica_of(std::size_t request_count) const {
    std::vector<int> out(request_count, 0);
    for (std::size_t k = 0; k < arrivals_.size(); ++k) {
      for (const Arrival& a : arrivals_[k]) {
        if (a.request >= 0 && static_cast<std::size_t>(a.request) < request_count) out[static_cast<std::size_t>(a.request)] = static_cast<int>(k);
      }
    }
    return out;
  }

 private:
  static int take_due(const std::vector<Arrival>& stream, std::size_t& next, TimeNs now_ns, std::span<RequestId> out) {
    int n = 0;
    while (next < stream.size() && static_cast<std::size_t>(n) < out.size() && stream[next].time_ns <= now_ns) {
      out[static_cast<std::size_t>(n++)] = stream[next++].request;
    }
    return n;
  }

  std::vector<std::vector<Arrival>> arrivals_;  // by replica
  std::vector<std::size_t> next_arrival_;        // by replica
  std::vector<Arrival> aborts_;
  std::size_t next_abort_ = 0;
};

}  // namespace hcsim
