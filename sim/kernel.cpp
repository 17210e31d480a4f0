#include "sim/kernel.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

Kernel::Kernel(std::size_t queue_max) : queue_max_(queue_max) {
  HCSIM_ASSERT(queue_max > 0);
  heap_.reserve(std::min<std::size_t>(queue_max, 1024));
}

TimeNs Kernel::next_time_ns() const {
  HCSIM_ASSERT(!heap_.empty());
  return heap_.front().time_ns;
}

void Kernel::schedule_at(TimeNs time_ns, std::coroutine_handle<> h) {
  HCSIM_ASSERT(time_ns >= now_ns_);
  HCSIM_ASSERT(h);
  HCSIM_ASSERT(heap_.size() < queue_max_);
  heap_.push_back({time_ns, next_seq_++, h});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

Kernel::RunEnd Kernel::run(TimeNs time_max_ns, std::uint64_t events_max) {
  std::uint64_t budget = events_max;
  while (!stop_requested_) {
    if (heap_.empty()) return RunEnd::kQueueEmpty;
    if (heap_.front().time_ns > time_max_ns) {
      now_ns_ = std::max(now_ns_, time_max_ns);
      return RunEnd::kReachedTime;
    }
    if (budget == 0) return RunEnd::kEventLimit;
    --budget;
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Event e = heap_.back();
    heap_.pop_back();
    HCSIM_ASSERT(e.time_ns >= now_ns_);
    now_ns_ = e.time_ns;
    ++events_processed_;
    e.handle.resume();
  }
  stop_requested_ = false;
  return RunEnd::kStopped;
}

}  // namespace hcsim
