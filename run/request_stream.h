// RequestStream: the arrivals and client aborts the outside world delivers, each sorted by time
// (stably: equal times keep their order) and handed out once, when due. Both worlds deliver
// requests through it; the caller serialises access.
//
//   RequestStream s(arrivals, aborts);
//   int n = s.take_arrivals(now_ns, out);  // the requests due by now_ns, not taken before
//   s.next_due_ns();                       // what a scheduler sleeping on idle wakes for
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "run/recording.h"

namespace hcsim {

class RequestStream {
 public:
  RequestStream(std::vector<Arrival> arrivals, std::vector<Arrival> aborts) : arrivals_(std::move(arrivals)), aborts_(std::move(aborts)) {
    auto by_time = [](const Arrival& a, const Arrival& b) { return a.time_ns < b.time_ns; };
    std::stable_sort(arrivals_.begin(), arrivals_.end(), by_time);
    std::stable_sort(aborts_.begin(), aborts_.end(), by_time);
  }

  int take_arrivals(TimeNs now_ns, std::span<RequestId> out) { return take_due(arrivals_, next_arrival_, now_ns, out); }
  int take_aborts(TimeNs now_ns, std::span<RequestId> out) { return take_due(aborts_, next_abort_, now_ns, out); }

  // When the next arrival or abort not yet taken is due; -1 if none is left.
  TimeNs next_due_ns() const {
    const TimeNs a = next_arrival_ < arrivals_.size() ? arrivals_[next_arrival_].time_ns : -1;
    const TimeNs b = next_abort_ < aborts_.size() ? aborts_[next_abort_].time_ns : -1;
    if (a < 0 || b < 0) return a < 0 ? b : a;
    return std::min(a, b);
  }
  bool arrivals_taken() const { return next_arrival_ == arrivals_.size(); }

 private:
  static int take_due(const std::vector<Arrival>& stream, std::size_t& next, TimeNs now_ns, std::span<RequestId> out) {
    int n = 0;
    while (next < stream.size() && static_cast<std::size_t>(n) < out.size() && stream[next].time_ns <= now_ns) {
      out[static_cast<std::size_t>(n++)] = stream[next++].request;
    }
    return n;
  }

  std::vector<Arrival> arrivals_;
  std::vector<Arrival> aborts_;
  std::size_t next_arrival_ = 0;
  std::size_t next_abort_ = 0;
};

}  // namespace hcsim
