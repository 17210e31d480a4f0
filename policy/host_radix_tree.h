// HostRadixTree: the host (L2) prefix tree of one rank, one node per page, with HiMamba's rule
// that a prefix is usable only up to the deepest node holding Mamba state (HM00d
// `_match_prefix_helper`: best_last_node = deepest node with mamba value or mamba backup).
//
//   insert(P0 P1 P2, from page 0)  -> 3 pages inserted, leaf = node(P2)
//   attach_sidecar(node(P2), slot) -> match_pages(P0 P1 P2 P3) == 3; without it, 0
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

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
  // Inserts `pages` (from the root); pages [first_new, size) are backed by `slots`.
  InsertResult insert(std::span<const PageKey> pages, std::int32_t first_new, std::span<const std::int32_t> slots);

  // Length in pages of the longest prefix of `pages` ending at a node with sidecar state.
  std::int32_t match_pages(std::span<const PageKey> pages) const;
  // Length in pages of the longest prefix present at all (KV only).
  std::int32_t kv_match_pages(std::span<const PageKey> pages) const;
  // Appends the host KV slots of pages [first, first + count) of a present prefix to `out`.
  void kv_slots(std::span<const PageKey> pages, std::int32_t first, std::int32_t count, std::vector<std::int32_t>& out) const;

  void attach_sidecar(std::int32_t node, std::int32_t slot);
  std::int32_t sidecar_slot(std::int32_t node) const;
  std::int32_t node_count() const { return static_cast<std::int32_t>(nodes_.size()); }

  static constexpr std::int32_t kRoot = 0;

 private:
  struct Node {
    PageKey key = 0;
    std::int32_t kv_slot = -1;
    std::int32_t sidecar_slot = -1;
    std::map<PageKey, std::int32_t> children;  // ordered: no hash-order effects
  };
  std::int32_t child(std::int32_t node, PageKey key) const;

  std::int32_t node_capacity_;
  std::vector<Node> nodes_;
};

}  // namespace hcsim
