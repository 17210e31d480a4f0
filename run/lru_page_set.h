// LruPageSet: page keys in least-recently-used order, O(1) per use, lookup and eviction; the L3
// store's contents under a capacity. The order depends only on the sequence of uses.
//
//   s.use(a); s.use(b); s.use(a);  ->  s.pop_oldest() == b
//
// A store holds millions of pages on a long trace, so the index is a flat open-addressing table
// (linear probing, backward-shift deletion) and the order a doubly linked list in one vector.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "policy/assert.h"
#include "policy/runtime.h"

namespace hcsim {

class LruPageSet {
 public:
  bool contains(PageKey key) const { return find(key) != kNone; }
  std::size_t size() const { return size_; }

  // Adds the page as the most recently used, or makes it so.
  void use(PageKey key) {
    std::uint32_t link = find(key);
    if (link == kNone) {
      HCSIM_ASSERT(size_ < kMaxSize);
      if (free_.empty()) {
        link = static_cast<std::uint32_t>(links_.size());
        links_.push_back({});
      } else {
        link = free_.back();
        free_.pop_back();
      }
      links_[link].key = key;
      index_insert(key, link);
    } else {
      if (link == newest_) return;
      unlink(link);
    }
    append(link);
  }

  // Removes and returns the least recently used page. The set must not be empty.
  PageKey pop_oldest() {
    HCSIM_ASSERT(oldest_ != kNone);
    const std::uint32_t link = oldest_;
    const PageKey key = links_[link].key;
    unlink(link);
    free_.push_back(link);
    index_erase(key);
    return key;
  }

 private:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::size_t kMaxSize = std::size_t{1} << 30;
  struct Link {
    PageKey key = 0;
    std::uint32_t older = kNone;
    std::uint32_t newer = kNone;
  };
  struct Bucket {
    PageKey key = 0;
    std::uint32_t link = kNone;  // kNone: empty
  };

  static std::uint64_t mix(PageKey key) {  // splitmix64's finaliser: keys may share low bits
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    return key ^ (key >> 31);
  }
  std::size_t home(PageKey key) const { return static_cast<std::size_t>(mix(key)) & (buckets_.size() - 1); }

  std::uint32_t find(PageKey key) const {
    if (buckets_.empty()) return kNone;
    for (std::size_t i = home(key);; i = (i + 1) & (buckets_.size() - 1)) {  // ends: the table is at most half full
      const Bucket& b = buckets_[i];
      if (b.link == kNone) return kNone;
      if (b.key == key) return b.link;
    }
  }
  void index_insert(PageKey key, std::uint32_t link) {
    if (2 * (size_ + 1) > buckets_.size()) grow();
    std::size_t i = home(key);
    while (buckets_[i].link != kNone) i = (i + 1) & (buckets_.size() - 1);
    buckets_[i] = {key, link};
    ++size_;
  }
  void index_erase(PageKey key) {
    const std::size_t mask = buckets_.size() - 1;
    std::size_t hole = home(key);
    while (buckets_[hole].key != key || buckets_[hole].link == kNone) {
      HCSIM_ASSERT(buckets_[hole].link != kNone);  // present
      hole = (hole + 1) & mask;
    }
    // Backward shift: move up every later entry of the run that may not sit past the hole.
    for (std::size_t j = (hole + 1) & mask; buckets_[j].link != kNone; j = (j + 1) & mask) {
      const std::size_t want = home(buckets_[j].key);
      if (((j - want) & mask) >= ((j - hole) & mask)) {
        buckets_[hole] = buckets_[j];
        hole = j;
      }
    }
    buckets_[hole] = {};
    --size_;
  }
  void grow() {
    std::vector<Bucket> old = std::move(buckets_);
    buckets_.assign(old.empty() ? 1024 : 2 * old.size(), Bucket{});
    size_ = 0;
    for (const Bucket& b : old) {
      if (b.link != kNone) index_insert(b.key, b.link);
    }
  }

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

  std::vector<Bucket> buckets_;  // a power of two, at most half full
  std::size_t size_ = 0;
  std::vector<Link> links_;
  std::vector<std::uint32_t> free_;
  std::uint32_t oldest_ = kNone;
  std::uint32_t newest_ = kNone;
};

}  // namespace hcsim
