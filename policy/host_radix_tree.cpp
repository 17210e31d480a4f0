#include "policy/host_radix_tree.h"

#include "policy/assert.h"

namespace hcsim {

HostRadixTree::HostRadixTree(std::int32_t node_capacity) : node_capacity_(node_capacity) {
  HCSIM_ASSERT(node_capacity > 0);
  nodes_.reserve(64);
  nodes_.push_back(Node{});
}

std::int32_t HostRadixTree::child(std::int32_t node, PageKey key) const {
  const auto& children = nodes_[node].children;
  auto it = children.find(key);
  return it == children.end() ? -1 : it->second;
}

HostRadixTree::InsertResult HostRadixTree::insert(std::span<const PageKey> pages, std::int32_t first_new,
                                                  std::span<const std::int32_t> slots) {
  HCSIM_ASSERT(first_new >= 0 && static_cast<std::size_t>(first_new) <= pages.size());
  HCSIM_ASSERT(slots.size() == pages.size() - first_new);
  InsertResult r;
  std::int32_t node = kRoot;
  bool matching = true;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    std::int32_t next = child(node, pages[i]);
    if (next < 0) {
      HCSIM_ASSERT(static_cast<std::int32_t>(i) >= first_new);  // the anchor path exists
      HCSIM_ASSERT(node_count() < node_capacity_);
      next = node_count();
      Node n;
      n.key = pages[i];
      n.kv_slot = slots[i - first_new];
      nodes_.push_back(std::move(n));
      nodes_[node].children.emplace(pages[i], next);
      ++r.inserted_pages;
      matching = false;
    } else if (static_cast<std::int32_t>(i) >= first_new) {
      HCSIM_ASSERT(matching);  // a path never resumes after a new node
      ++r.matched_pages;
    }
    node = next;
  }
  r.leaf = node;
  return r;
}

std::int32_t HostRadixTree::match_pages(std::span<const PageKey> pages) const {
  std::int32_t node = kRoot;
  std::int32_t best = 0;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    node = child(node, pages[i]);
    if (node < 0) break;
    if (nodes_[node].sidecar_slot >= 0) best = static_cast<std::int32_t>(i) + 1;
  }
  return best;
}

std::int32_t HostRadixTree::kv_match_pages(std::span<const PageKey> pages) const {
  std::int32_t node = kRoot;
  std::int32_t n = 0;
  for (PageKey key : pages) {
    node = child(node, key);
    if (node < 0) break;
    ++n;
  }
  return n;
}

void HostRadixTree::kv_slots(std::span<const PageKey> pages, std::int32_t first, std::int32_t count,
                             std::vector<std::int32_t>& out) const {
  HCSIM_ASSERT(first >= 0 && count >= 0 && static_cast<std::size_t>(first + count) <= pages.size());
  std::int32_t node = kRoot;
  for (std::int32_t i = 0; i < first + count; ++i) {
    node = child(node, pages[static_cast<std::size_t>(i)]);
    HCSIM_ASSERT(node > kRoot);  // the prefix is present
    if (i >= first) out.push_back(nodes_[node].kv_slot);
  }
}

void HostRadixTree::attach_sidecar(std::int32_t node, std::int32_t slot) {
  HCSIM_ASSERT(node > kRoot && node < node_count() && slot >= 0);
  HCSIM_ASSERT(nodes_[node].sidecar_slot < 0);
  nodes_[node].sidecar_slot = slot;
}

std::int32_t HostRadixTree::sidecar_slot(std::int32_t node) const {
  HCSIM_ASSERT(node >= kRoot && node < node_count());
  return nodes_[node].sidecar_slot;
}

}  // namespace hcsim
