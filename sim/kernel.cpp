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
  return heap_.top().time_ns;
}

void Kernel::schedule_at(TimeNs time_ns, std::coroutine_handle<> h, int rank) {
  HCSIM_ASSERT(time_ns >= now_ns_);
  HCSIM_ASSERT(h);
  HCSIM_ASSERT(heap_.size() < queue_max_);
  heap_.push({time_ns, next_seq_++, h, rank});
}

Kernel::Event Kernel::pop_next() {
  HCSIM_ASSERT(!heap_.empty());
  const Event first = heap_.pop();
  if (choices_ == nullptr || first.rank < 0) return first;
  // The earliest event's rank is the canonical one: only the order among its own events at this
  // instant is open. Bounded by the queue.
  same_instant_.clear();
  while (!heap_.empty() && heap_.top().time_ns == first.time_ns) same_instant_.push_back(heap_.pop());
  std::size_t candidates = 1;  // `first`, then those of its rank, in seq order
  for (std::size_t i = 0; i < same_instant_.size(); ++i) {
    if (same_instant_[i].rank == first.rank) std::swap(same_instant_[i], same_instant_[candidates++ - 1]);
  }
  Event chosen = first;
  if (candidates > 1) {
    const int pick = choices_->choose(ChoiceKind::kOrder, first.rank, static_cast<int>(candidates), first.time_ns);
    HCSIM_ASSERT(pick >= 0 && pick < static_cast<int>(candidates));
    if (pick > 0) std::swap(chosen, same_instant_[static_cast<std::size_t>(pick - 1)]);
  }
  for (const Event& e : same_instant_) heap_.push(e);  // back, with their sequence numbers: their order is kept
  return chosen;
}

Kernel::RunEnd Kernel::run(TimeNs time_max_ns, std::uint64_t events_max) {
  std::uint64_t budget = events_max;
  while (!stop_requested_) {
    if (heap_.empty()) return RunEnd::kQueueEmpty;
    if (heap_.top().time_ns > time_max_ns) {
      now_ns_ = std::max(now_ns_, time_max_ns);
      return RunEnd::kReachedTime;
    }
    if (budget == 0) return RunEnd::kEventLimit;
    --budget;
    const Event e = pop_next();
    HCSIM_ASSERT(e.time_ns >= now_ns_);
    now_ns_ = e.time_ns;
    ++events_processed_;
    e.handle.resume();
  }
  stop_requested_ = false;
  return RunEnd::kStopped;
}

}  // namespace hcsim
