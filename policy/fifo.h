// Fifo<T>: a first-in first-out queue over one vector, for the rank's drain queues and channels.
// std::deque allocates a map and a block as it is built, even if never used; a run builds a dozen
// per rank and most stay empty. Fifo allocates on its first push, and reuses its storage from then
// on: items are taken from a head index, and the taken prefix is dropped when it is the larger half.
//
//   Fifo<int> q;  q.push_back(1);  q.push_back(2);  q.front() == 1;  q.pop_front();  q[0] == 2;
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "policy/assert.h"

namespace hcsim {

template <typename T>
class Fifo {
 public:
  std::size_t size() const { return items_.size() - head_; }
  bool empty() const { return head_ == items_.size(); }

  void push_back(T item) { items_.push_back(std::move(item)); }
  T& front() {
    HCSIM_ASSERT(!empty());
    return items_[head_];
  }
  const T& front() const {
    HCSIM_ASSERT(!empty());
    return items_[head_];
  }
  // Drops the front item (destroyed at once, so what it owns is let go of now).
  void pop_front() {
    HCSIM_ASSERT(!empty());
    items_[head_] = T{};
    ++head_;
    if (head_ == items_.size()) {
      items_.clear();  // keeps the capacity
      head_ = 0;
    } else if (head_ >= kCompactAtLeast && 2 * head_ >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));  // amortized O(1) an item
      head_ = 0;
    }
  }
  const T& operator[](std::size_t i) const {
    HCSIM_ASSERT(i < size());
    return items_[head_ + i];
  }
  const T* begin() const { return items_.data() + head_; }
  const T* end() const { return items_.data() + items_.size(); }

 private:
  static constexpr std::size_t kCompactAtLeast = 32;  // below this a taken prefix is not worth moving
  std::vector<T> items_;
  std::size_t head_ = 0;  // items_[0, head_) are taken
};

}  // namespace hcsim
