// Channel<T>: a bounded FIFO between two actors of one rank (upstream's queue.Queue), whose
// consumer waits on a world signal instead of spinning.
#pragma once

#include <cstddef>
#include <string_view>

#include "policy/assert.h"
#include "policy/fifo.h"
#include "policy/runtime.h"
#include "policy/task.h"

namespace hcsim {

template <typename T>
class Channel {
 public:
  Channel(std::size_t capacity_max) : capacity_max_(capacity_max) {}

  void bind(Runtime& rt, std::string_view name, ActorKind producer) { signal_ = rt.make_signal(name, producer); }
  std::size_t size() const { return items_.size(); }

  void push(Runtime& rt, T item) {
    HCSIM_ASSERT(signal_ >= 0);
    HCSIM_ASSERT(items_.size() < capacity_max_);
    items_.push_back(std::move(item));
    rt.notify(signal_);
  }

  Task<T> pop(Runtime& rt) {
    HCSIM_ASSERT(signal_ >= 0);
    while (items_.empty()) co_await rt.wait(signal_);
    T item = std::move(items_.front());
    items_.pop_front();
    co_return item;
  }

 private:
  std::size_t capacity_max_;
  SignalId signal_ = -1;
  Fifo<T> items_;
};

}  // namespace hcsim
