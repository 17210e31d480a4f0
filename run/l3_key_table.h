// L3KeyTable: every key an L3 store has held (pages, and objects keyed by their page), each with a
// dense id, shared by all ranks' stores. The ranks of a TP group write the same pages, so a key is
// hashed and held once for all of them, and a rank keeps a byte per id, its marks, and under a
// capacity its LRU links (run/storage.h). Ids are never reused: the table is bounded by the keys
// of the scenario's L3 contents and workload, and prepare_run sizes it from them.
//
//   L3KeyTable t;
//   const std::uint32_t id = t.intern(key);   // the same id for the same key, on any rank
//   t.find(other) == L3KeyTable::kNone;       // never held
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "policy/assert.h"
#include "policy/runtime.h"

namespace hcsim {

class L3KeyTable {
 public:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::size_t kKeysMax = std::size_t{1} << 31;

  // Room for `keys` keys without growing.
  void reserve(std::size_t keys) {
    HCSIM_ASSERT(keys <= kKeysMax);
    keys_.reserve(keys);
    std::size_t buckets = kMinBuckets;
    while (buckets < 2 * keys) buckets *= 2;
    if (buckets > buckets_.size()) rehash(buckets);
    if (keys >= kRecentFromKeys && recent_.empty()) recent_.resize(kRecentEntries);
  }

  std::size_t size() const { return keys_.size(); }
  PageKey key(std::uint32_t id) const { return keys_[id]; }

  // The key's id, or kNone if no store ever held it.
  std::uint32_t find(PageKey key) const {
    if (buckets_.empty()) return kNone;
    const std::uint64_t hash = mix(key);
    if (const std::uint32_t id = recent(key, hash); id != kNone) return id;
    const std::size_t mask = buckets_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {  // ends: the table is at most half full
      const std::uint32_t id = buckets_[i];
      if (id == kNone) return kNone;
      if (keys_[id] == key) return remember(key, hash, id);
    }
  }

  // The key's id, added if new.
  std::uint32_t intern(PageKey key) {
    if (2 * (keys_.size() + 1) > buckets_.size()) rehash(buckets_.empty() ? kMinBuckets : 2 * buckets_.size());
    const std::uint64_t hash = mix(key);
    if (const std::uint32_t id = recent(key, hash); id != kNone) return id;
    const std::size_t mask = buckets_.size() - 1;
    std::size_t i = hash & mask;
    for (; buckets_[i] != kNone; i = (i + 1) & mask) {  // ends: the table is at most half full
      if (keys_[buckets_[i]] == key) return remember(key, hash, buckets_[i]);
    }
    HCSIM_ASSERT(keys_.size() < kKeysMax);
    const auto id = static_cast<std::uint32_t>(keys_.size());
    keys_.push_back(key);
    buckets_[i] = id;
    return remember(key, hash, id);
  }

 private:
  static constexpr std::size_t kMinBuckets = 16;

  static std::uint64_t mix(PageKey key) {  // splitmix64's finaliser: keys may share low bits
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    return key ^ (key >> 31);
  }
  std::size_t home(PageKey key) const { return static_cast<std::size_t>(mix(key)) & (buckets_.size() - 1); }
  // Ids of recent lookups, by the key's hash. The ranks of a group ask for the same pages within a
  // few events of each other; a hit here costs one cache line where the table costs two misses,
  // once it is larger than the caches. Ids are never reused, so an entry never goes stale.
  static constexpr std::size_t kRecentFromKeys = std::size_t{1} << 16;  // a table reserved this large
  static constexpr std::size_t kRecentEntries = 4096;                    // 64 KiB
  struct Recent {
    PageKey key = 0;
    std::uint32_t id = kNone;  // kNone: empty
  };
  std::size_t recent_slot(std::uint64_t hash) const { return static_cast<std::size_t>(hash >> 52) & (kRecentEntries - 1); }
  std::uint32_t recent(PageKey key, std::uint64_t hash) const {
    if (recent_.empty()) return kNone;
    const Recent& r = recent_[recent_slot(hash)];
    return r.id != kNone && r.key == key ? r.id : kNone;
  }
  std::uint32_t remember(PageKey key, std::uint64_t hash, std::uint32_t id) const {
    if (!recent_.empty()) recent_[recent_slot(hash)] = {key, id};
    return id;
  }

  void rehash(std::size_t buckets) {
    buckets_.assign(buckets, kNone);
    const std::size_t mask = buckets - 1;
    for (std::uint32_t id = 0; id < keys_.size(); ++id) {
      std::size_t i = home(keys_[id]);
      while (buckets_[i] != kNone) i = (i + 1) & mask;
      buckets_[i] = id;
    }
  }

  std::vector<std::uint32_t> buckets_;  // ids; kNone: empty. A power of two, at most half full
  std::vector<PageKey> keys_;           // by id
  mutable std::vector<Recent> recent_;  // kRecentEntries entries, or none for a small table
};

}  // namespace hcsim
