// FourAryHeap: a min-heap with four children a node, over one vector. Shallower than a binary
// heap (log4 n levels) and its children share a cache line or two, so a pop touches fewer lines:
// the kernel's event queue, and the bare anchor `hcsim bench` measures the kernel against.
//
//   FourAryHeap<Event, Earlier> h;  h.push(e);  const Event first = h.pop();
//
// `Before(a, b)`: a comes out first. With keys that are all distinct (the kernel's (time, seq)),
// the order of pops is the keys' order whatever the heap's shape.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "policy/assert.h"

namespace hcsim {

template <typename T, typename Before>
class FourAryHeap {
 public:
  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  void reserve(std::size_t n) { items_.reserve(n); }
  const T& top() const {
    HCSIM_ASSERT(!items_.empty());
    return items_.front();
  }

  void push(T item) {
    std::size_t i = items_.size();
    items_.push_back(item);
    while (i > 0) {  // bounded: i shrinks fourfold
      const std::size_t up = (i - 1) / kArity;
      if (!before_(item, items_[up])) break;
      items_[i] = std::move(items_[up]);
      i = up;
    }
    items_[i] = std::move(item);
  }

  T pop() {
    HCSIM_ASSERT(!items_.empty());
    T first = std::move(items_.front());
    T last = std::move(items_.back());
    items_.pop_back();
    const std::size_t n = items_.size();
    if (n == 0) return first;
    std::size_t i = 0;
    for (;;) {  // bounded: i grows fourfold
      const std::size_t child = kArity * i + 1;
      if (child >= n) break;
      std::size_t best = child;
      const std::size_t end = child + kArity < n ? child + kArity : n;
      for (std::size_t c = child + 1; c < end; ++c) {
        if (before_(items_[c], items_[best])) best = c;
      }
      if (!before_(items_[best], last)) break;
      items_[i] = std::move(items_[best]);
      i = best;
    }
    items_[i] = std::move(last);
    return first;
  }

 private:
  static constexpr std::size_t kArity = 4;
  std::vector<T> items_;
  [[no_unique_address]] Before before_{};
};

}  // namespace hcsim
