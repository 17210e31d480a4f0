// HostRadixTree: the host (L2) prefix tree of one rank, one node per page, with HiMamba's rule
// that a prefix is usable only up to the deepest node holding Mamba state (HM00d
// `_match_prefix_helper`: best_last_node = deepest node with mamba value or mamba backup), the
// hybrid SWA rule that it is usable up to the deepest node ending a window of nodes with SWA values
// (window_match_pages; each node's sidecar slot is then its page's SWA value), and
// upstream's evict_host: least recently used unlocked leaves go first, and Mamba state can be
// dropped from any unlocked node (a tombstone that keeps the node's KV).
//
//   insert(P0 P1 P2, from page 0)  -> 3 pages inserted, leaf = node(P2)
//   attach_sidecar(node(P2), slot) -> match_pages(P0 P1 P2 P3) == 3; without it, 0
//   lock(node(P1)); evict_lru_leaf() -> node(P2)'s slots; node(P1) stays while locked
//
// Recency is a tick the tree advances on each insert or touch of a path; the whole path takes the
// same tick, so a parent is never less recent than its child and leaves are the natural victims.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "policy/assert.h"
#include "policy/key_index.h"
#include "policy/runtime.h"

namespace hcsim {

class HostRadixTree {
 public:
  explicit HostRadixTree(std::int32_t node_capacity);

  struct InsertResult {
    std::int32_t matched_pages = 0;   // pages of the new part that already existed
    std::int32_t inserted_pages = 0;  // nodes created
    std::int32_t leaf = 0;            // the node of the last page (root if no page)
  };
  // Inserts `pages` (from the root) and marks the path used; pages [first_new, size) are backed
  // by `slots`.
  InsertResult insert(std::span<const PageKey> pages, std::int32_t first_new, std::span<const std::int32_t> slots);

  // Length in pages of the longest prefix of `pages` ending at a node with sidecar state.
  std::int32_t match_pages(std::span<const PageKey> pages) const;
  // Hybrid SWA (SC@17313cf4b:203-228, the SWA match validator): length in pages of the longest
  // prefix whose last node ends `window_pages` consecutive nodes with SWA values, or whose nodes
  // all have them back to the root.
  //   window 2, values on pages 1 2 _ 4 5 6 _: 6 (pages 5, 6); values on 1 2 3: 3; on 1 _ 3: 1
  std::int32_t window_match_pages(std::span<const PageKey> pages, std::int32_t window_pages) const;
  // Length in pages of the longest prefix present at all (KV only).
  std::int32_t kv_match_pages(std::span<const PageKey> pages) const;
  // Appends the host KV slots of pages [first, first + count) of a present prefix to `out`.
  void kv_slots(std::span<const PageKey> pages, std::int32_t first, std::int32_t count, std::vector<std::int32_t>& out) const;
  // The node of page `depth - 1` of a present prefix; the root for depth 0.
  std::int32_t node_at(std::span<const PageKey> pages, std::int32_t depth) const;
  // Marks the first `depth` pages of a present prefix used now (upstream's last_access_time).
  void touch(std::span<const PageKey> pages, std::int32_t depth);

  void attach_sidecar(std::int32_t node, std::int32_t slot);
  std::int32_t sidecar_slot(std::int32_t node) const;
  std::int32_t parent(std::int32_t node) const;  // -1 for the root
  std::int32_t node_count() const { return live_nodes_; }

  // inc_lock_ref / dec_lock_ref: a locked node is never evicted, and so neither are its
  // ancestors, which are never leaves while it lives.
  void lock(std::int32_t node);
  void unlock(std::int32_t node);

  struct Evicted {
    std::int32_t kv_slot = -1;
    std::int32_t sidecar_slot = -1;  // -1 when the node had no sidecar state
  };
  // Removes the least recently used unlocked leaf and returns its slots; none when every leaf
  // is locked (or the tree is empty).
  std::optional<Evicted> evict_lru_leaf();
  // Drops the Mamba state of the least recently used unlocked node holding one; returns its slot.
  std::optional<std::int32_t> evict_lru_sidecar();

  static constexpr std::int32_t kRoot = 0;

 private:
  // A node is 48 bytes, so that a tree's nodes take half the cache they did: a walk down a path
  // reads the 16 bytes of a node's first child, an eviction the 36 from its parent link on, and a
  // cold node costs one line or two. Its children by page key: most nodes of a prefix chain have one, held
  // inline; the others of a node of several sit in a list of their own (`more_children`), indexed
  // by key once it is long (the root of a trace's conversations has thousands). Nothing iterates
  // children, so their order cannot leak into results.
  struct Node {
    PageKey key = 0;
    std::uint64_t last_use = 0;
    std::int32_t parent = -1;
    std::int32_t kv_slot = -1;
    std::int32_t sidecar_slot = -1;
    std::int32_t lock_ref = 0;
    PageKey first_child_key = 0;
    std::int32_t first_child = -1;     // -1: a leaf
    std::int32_t more_children = -1;   // in child_lists_; -1: none
  };
  static_assert(sizeof(Node) == 48);
  struct ChildList {
    static constexpr std::size_t kScannedMax = 16;  // more than this: `index` finds them
    std::vector<std::pair<PageKey, std::int32_t>> children;
    std::unique_ptr<KeyIndex> index;  // key -> place in `children`, once it is long
  };
  std::int32_t child(std::int32_t node, PageKey key) const;
  void add_child(std::int32_t parent, PageKey key, std::int32_t node);
  void remove_child(std::int32_t parent, PageKey key);

  // An eviction order: a 4-ary min-heap of exactly its evictable nodes by (last use, node), each
  // entry one word, (last use << kNodeBits) | node, so sifting compares words without reading a
  // node. A node's place is kept beside the heap. A node joins, moves or leaves when its lock,
  // children, state or recency change, so the heap never holds more than the live nodes.
  static constexpr int kNodeBits = 25;  // node ids; host_kv_pages is at most 2^24
  static constexpr std::uint64_t kNodeMask = (std::uint64_t{1} << kNodeBits) - 1;
  // The ticks that fit above the node bits: 2^39 inserts and touches, past any run's bound.
  static constexpr std::uint64_t kTicksMax = std::uint64_t{1} << (64 - kNodeBits);
  struct EvictionOrder {
    std::vector<std::uint64_t> heap;
    std::vector<std::int32_t> at;  // by node: its place in `heap`, -1 when absent
  };
  bool evictable_leaf(std::int32_t node) const;
  bool evictable_sidecar(std::int32_t node) const;
  std::uint64_t rank_word(std::int32_t node) const {
    return (nodes_[node].last_use << kNodeBits) | static_cast<std::uint64_t>(node);
  }
  static std::int32_t node_of(std::uint64_t word) { return static_cast<std::int32_t>(word & kNodeMask); }
  // Puts the node in the order if `evictable` (where its recency files it, if it is not in it
  // yet); takes it out if not. Its recency is unchanged: use() moves a node whose recency grew.
  void file(EvictionOrder& order, std::int32_t node, bool evictable);
  void unfile(EvictionOrder& order, std::int32_t node);
  // The node's recency grew: it moves toward the newest end, if it is in the order at all.
  void refresh(EvictionOrder& order, std::int32_t node);
  void place(EvictionOrder& order, std::size_t i, std::uint64_t word);
  void sift_up(EvictionOrder& order, std::size_t i);
  void sift_down(EvictionOrder& order, std::size_t i);
  // A node under `parent`, which stops being a leaf; filed by the caller once it knows whether the
  // node stays a leaf (an insert files only the last node of its path).
  std::int32_t new_node(std::int32_t parent, PageKey key, std::int32_t kv_slot);
  // Marks a present node used now and moves it in the orders it is in.
  void use(std::int32_t node);
  // Files the node in both orders after its lock or sidecar state changed, or it was made a leaf.
  void refile(std::int32_t node);
  std::uint64_t next_tick() {
    HCSIM_ASSERT(tick_ + 1 < kTicksMax);
    return ++tick_;
  }

  std::int32_t node_capacity_;
  std::int32_t live_nodes_ = 1;
  std::uint64_t tick_ = 0;
  std::vector<Node> nodes_;
  std::vector<std::int32_t> free_nodes_;
  std::vector<ChildList> child_lists_;  // each empty one is on free_child_lists_
  std::vector<std::int32_t> free_child_lists_;
  EvictionOrder leaf_lru_;     // unlocked leaves
  EvictionOrder sidecar_lru_;  // unlocked nodes with Mamba state
};

}  // namespace hcsim
