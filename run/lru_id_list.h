// LruIdList: ids (of an L3KeyTable) in least-recently-used order, O(1) per use, lookup and
// eviction; one rank's L3 pages under a capacity. The order depends only on the sequence of uses.
//
//   l.use(a); l.use(b); l.use(a);  ->  l.pop_oldest() == b
//
// The list is doubly linked through one vector indexed by id, 8 bytes an id the key table has
// given out, so a store of millions of pages costs no hashing of its own.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "policy/assert.h"

namespace hcsim {

class LruIdList {
 public:
  bool contains(std::uint32_t id) const { return id < links_.size() && links_[id].older != kAbsent; }
  std::size_t size() const { return size_; }

  // Room for ids below `ids` without growing.
  void reserve(std::size_t ids) { links_.reserve(ids); }
  // Adds the id as the most recently used, or makes it so.
  void use(std::uint32_t id) {
    HCSIM_ASSERT(id < kAbsent);
    if (id >= links_.size()) links_.resize(std::size_t{id} + 1);
    if (contains(id)) {
      if (id == newest_) return;
      unlink(id);
    } else {
      ++size_;
    }
    append(id);
  }

  // Removes and returns the least recently used id. The list must not be empty.
  std::uint32_t pop_oldest() {
    HCSIM_ASSERT(oldest_ != kNone);
    const std::uint32_t id = oldest_;
    unlink(id);
    links_[id].older = kAbsent;
    --size_;
    return id;
  }

 private:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::uint32_t kAbsent = kNone - 1;  // in `older`: the id is not in the list
  struct Link {
    std::uint32_t older = kAbsent;
    std::uint32_t newer = kNone;
  };

  void unlink(std::uint32_t i) {
    Link& l = links_[i];
    (l.older == kNone ? oldest_ : links_[l.older].newer) = l.newer;
    (l.newer == kNone ? newest_ : links_[l.newer].older) = l.older;
    l.older = l.newer = kNone;
  }
  void append(std::uint32_t i) {
    links_[i].older = newest_;
    links_[i].newer = kNone;
    (newest_ == kNone ? oldest_ : links_[newest_].newer) = i;
    newest_ = i;
  }

  std::vector<Link> links_;  // by id
  std::size_t size_ = 0;
  std::uint32_t oldest_ = kNone;
  std::uint32_t newest_ = kNone;
};

}  // namespace hcsim
