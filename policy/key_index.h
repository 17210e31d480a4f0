// KeyIndex: page key -> position, for a host-tree node with many children (a trace's root holds
// thousands, and each eviction of one of them removes it here). Open addressing in one array with
// linear probing; an erase shifts the entries after it back instead of leaving a tombstone, so a
// probe always ends at the first empty slot and the table never fills with dead entries.
//
//   KeyIndex ix;  ix.assign(key, 3);  ix.find(key) == 3;  ix.erase(key);  ix.find(key) == KeyIndex::kAbsent;
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "policy/assert.h"
#include "policy/runtime.h"

namespace hcsim {

class KeyIndex {
 public:
  static constexpr std::uint32_t kAbsent = std::numeric_limits<std::uint32_t>::max();

  std::size_t size() const { return count_; }

  std::uint32_t find(PageKey key) const {
    if (count_ == 0) return kAbsent;
    for (std::size_t i = home(key);; i = next(i)) {  // ends: at most half the slots are used
      const Entry& e = slots_[i];
      if (e.value == kAbsent || e.key == key) return e.value;
    }
  }

  // Sets the key's position, adding the key if new.
  void assign(PageKey key, std::uint32_t value) {
    HCSIM_ASSERT(value != kAbsent);
    if (2 * (count_ + 1) > slots_.size()) grow();
    std::size_t i = home(key);
    for (; slots_[i].value != kAbsent; i = next(i)) {  // ends: at most half the slots are used
      if (slots_[i].key == key) {
        slots_[i].value = value;
        return;
      }
    }
    slots_[i] = {key, value};
    ++count_;
  }

  // Removes the key, which must be present.
  void erase(PageKey key) {
    std::size_t hole = home(key);
    while (slots_[hole].key != key || slots_[hole].value == kAbsent) {  // ends: the key is present
      HCSIM_ASSERT(slots_[hole].value != kAbsent);
      hole = next(hole);
    }
    // Entries after the hole whose probe passed through it move back into it.
    for (std::size_t j = next(hole); slots_[j].value != kAbsent; j = next(j)) {  // ends: empty slots exist
      const std::size_t want = home(slots_[j].key);
      const bool passes_hole = hole <= j ? (want <= hole || want > j) : (want <= hole && want > j);
      if (!passes_hole) continue;
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = {};
    --count_;
  }

 private:
  struct Entry {
    PageKey key = 0;
    std::uint32_t value = kAbsent;  // kAbsent: the slot is empty
  };
  static constexpr std::size_t kFirstSlots = 64;
  std::size_t home(PageKey key) const {
    key ^= key >> 33;  // murmur3's finaliser: page keys are hashes, but children may share low bits
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return static_cast<std::size_t>(key) & (slots_.size() - 1);
  }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }
  void grow() {
    std::vector<Entry> old = std::move(slots_);
    slots_.assign(old.empty() ? kFirstSlots : 2 * old.size(), Entry{});
    count_ = 0;
    for (const Entry& e : old) {
      if (e.value != kAbsent) assign(e.key, e.value);
    }
  }

  std::vector<Entry> slots_;  // a power of two, at most half used
  std::size_t count_ = 0;
};

}  // namespace hcsim
