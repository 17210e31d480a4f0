#include "policy/host_radix_tree.h"

#include <algorithm>
#include <tuple>

#include "policy/assert.h"

namespace hcsim {

HostRadixTree::HostRadixTree(std::int32_t node_capacity) : node_capacity_(node_capacity) {
  HCSIM_ASSERT(node_capacity > 0);
  nodes_.reserve(64);
  nodes_.push_back(Node{});
}

std::int32_t HostRadixTree::Children::find(PageKey key) const {
  if (first >= 0 && first_key == key) return first;
  if (index) {
    const std::uint32_t at = index->find(key);
    return at == KeyIndex::kAbsent ? -1 : more[at].second;
  }
  for (const auto& [k, node] : more) {
    if (k == key) return node;
  }
  return -1;
}

void HostRadixTree::Children::add(PageKey key, std::int32_t node) {
  HCSIM_ASSERT(node > kRoot && find(key) < 0);
  if (first < 0) {
    first_key = key;
    first = node;
  } else {
    more.emplace_back(key, node);
    if (index) {
      index->assign(key, static_cast<std::uint32_t>(more.size() - 1));
    } else if (more.size() > kScannedMax) {
      index = std::make_unique<KeyIndex>();
      for (std::size_t i = 0; i < more.size(); ++i) index->assign(more[i].first, static_cast<std::uint32_t>(i));
    }
  }
}

void HostRadixTree::Children::remove(PageKey key) {
  if (first >= 0 && first_key == key) {
    if (more.empty()) {
      first = -1;
    } else {
      std::tie(first_key, first) = more.back();
      more.pop_back();
      if (index) index->erase(first_key);
    }
    return;
  }
  // `more` keeps no order: the last child fills the hole.
  std::size_t at = more.size();
  if (index) {
    at = index->find(key);
    HCSIM_ASSERT(at != KeyIndex::kAbsent);
    index->erase(key);
    if (at + 1 < more.size()) index->assign(more.back().first, static_cast<std::uint32_t>(at));
  } else {
    at = static_cast<std::size_t>(std::find_if(more.begin(), more.end(), [&](const auto& c) { return c.first == key; }) - more.begin());
  }
  HCSIM_ASSERT(at < more.size());
  more[at] = more.back();
  more.pop_back();
}

std::int32_t HostRadixTree::child(std::int32_t node, PageKey key) const { return nodes_[node].children.find(key); }

std::int32_t HostRadixTree::new_node(std::int32_t parent, PageKey key, std::int32_t kv_slot) {
  HCSIM_ASSERT(live_nodes_ < node_capacity_);
  std::int32_t id = 0;
  if (free_nodes_.empty()) {
    id = static_cast<std::int32_t>(nodes_.size());
    nodes_.emplace_back();
  } else {
    id = free_nodes_.back();
    free_nodes_.pop_back();
  }
  Node& n = nodes_[id];
  n.key = key;
  n.parent = parent;
  n.kv_slot = kv_slot;
  n.last_use = tick_;
  nodes_[parent].children.add(key, id);
  ++live_nodes_;
  refile(parent);  // no longer a leaf
  refile(id);
  return id;
}

bool HostRadixTree::evictable_leaf(std::int32_t node) const {
  const Node& n = nodes_[node];
  return node != kRoot && n.parent >= 0 && n.lock_ref == 0 && n.children.empty();
}

bool HostRadixTree::evictable_sidecar(std::int32_t node) const {
  const Node& n = nodes_[node];
  return node != kRoot && n.parent >= 0 && n.lock_ref == 0 && n.sidecar_slot >= 0;
}

void HostRadixTree::place(EvictionOrder& order, std::size_t i, std::int32_t node) {
  order.heap[i] = node;
  nodes_[node].*order.at = static_cast<std::int32_t>(i);
}

void HostRadixTree::sift_up(EvictionOrder& order, std::size_t i) {
  const std::int32_t node = order.heap[i];
  while (i > 0) {  // bounded: i halves
    const std::size_t up = (i - 1) / 2;
    if (!older(node, order.heap[up])) break;
    place(order, i, order.heap[up]);
    i = up;
  }
  place(order, i, node);
}

void HostRadixTree::sift_down(EvictionOrder& order, std::size_t i) {
  const std::int32_t node = order.heap[i];
  const std::size_t n = order.heap.size();
  for (;;) {  // bounded: i at least doubles
    std::size_t down = 2 * i + 1;
    if (down >= n) break;
    if (down + 1 < n && older(order.heap[down + 1], order.heap[down])) ++down;
    if (!older(order.heap[down], node)) break;
    place(order, i, order.heap[down]);
    i = down;
  }
  place(order, i, node);
}

void HostRadixTree::file(EvictionOrder& order, std::int32_t node) {
  if (!(this->*order.evictable)(node)) {
    unfile(order, node);
    return;
  }
  const std::int32_t at = nodes_[node].*order.at;
  if (at < 0) {
    order.heap.push_back(node);
    sift_up(order, order.heap.size() - 1);
  } else {  // its recency only grows: it moves down, if at all
    sift_down(order, static_cast<std::size_t>(at));
  }
}

void HostRadixTree::unfile(EvictionOrder& order, std::int32_t node) {
  const std::int32_t at = nodes_[node].*order.at;
  if (at < 0) return;
  nodes_[node].*order.at = -1;
  const std::int32_t last = order.heap.back();
  order.heap.pop_back();
  if (last == node) return;
  const auto i = static_cast<std::size_t>(at);
  place(order, i, last);
  sift_up(order, i);
  sift_down(order, static_cast<std::size_t>(nodes_[last].*order.at));
}

std::int32_t HostRadixTree::take_oldest(EvictionOrder& order) {
  if (order.heap.empty()) return -1;
  const std::int32_t node = order.heap.front();
  HCSIM_ASSERT((this->*order.evictable)(node));
  unfile(order, node);
  return node;
}

void HostRadixTree::refile(std::int32_t node) {
  file(leaf_lru_, node);
  file(sidecar_lru_, node);
}

HostRadixTree::InsertResult HostRadixTree::insert(std::span<const PageKey> pages, std::int32_t first_new,
                                                  std::span<const std::int32_t> slots) {
  HCSIM_ASSERT(first_new >= 0 && static_cast<std::size_t>(first_new) <= pages.size());
  HCSIM_ASSERT(slots.size() == pages.size() - first_new);
  InsertResult r;
  ++tick_;
  std::int32_t node = kRoot;
  bool matching = true;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    std::int32_t next = child(node, pages[i]);
    if (next < 0) {
      HCSIM_ASSERT(static_cast<std::int32_t>(i) >= first_new);  // the anchor path exists
      next = new_node(node, pages[i], slots[i - first_new]);
      ++r.inserted_pages;
      matching = false;
    } else {
      if (static_cast<std::int32_t>(i) >= first_new) {
        HCSIM_ASSERT(matching);  // a path never resumes after a new node
        ++r.matched_pages;
      }
      nodes_[next].last_use = tick_;
      refile(next);
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

std::int32_t HostRadixTree::window_match_pages(std::span<const PageKey> pages, std::int32_t window_pages) const {
  HCSIM_ASSERT(window_pages >= 1);
  // The validator's run length starts unbounded: every node back to the root validates until the
  // first node without a value.
  constexpr std::int64_t kFromRoot = std::int64_t{1} << 40;
  std::int64_t run = kFromRoot;
  std::int32_t node = kRoot;
  std::int32_t best = 0;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    node = child(node, pages[i]);
    if (node < 0) break;
    run = nodes_[node].sidecar_slot >= 0 ? run + 1 : 0;
    if (run >= window_pages) best = static_cast<std::int32_t>(i) + 1;
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

std::int32_t HostRadixTree::node_at(std::span<const PageKey> pages, std::int32_t depth) const {
  HCSIM_ASSERT(depth >= 0 && static_cast<std::size_t>(depth) <= pages.size());
  std::int32_t node = kRoot;
  for (std::int32_t i = 0; i < depth; ++i) {
    node = child(node, pages[static_cast<std::size_t>(i)]);
    HCSIM_ASSERT(node > kRoot);  // the prefix is present
  }
  return node;
}

void HostRadixTree::touch(std::span<const PageKey> pages, std::int32_t depth) {
  HCSIM_ASSERT(depth >= 0 && static_cast<std::size_t>(depth) <= pages.size());
  ++tick_;
  std::int32_t node = kRoot;
  for (std::int32_t i = 0; i < depth; ++i) {
    node = child(node, pages[static_cast<std::size_t>(i)]);
    HCSIM_ASSERT(node > kRoot);  // the prefix is present
    nodes_[node].last_use = tick_;
    refile(node);
  }
}

void HostRadixTree::attach_sidecar(std::int32_t node, std::int32_t slot) {
  HCSIM_ASSERT(node > kRoot && node < static_cast<std::int32_t>(nodes_.size()) && slot >= 0);
  HCSIM_ASSERT(nodes_[node].parent >= 0 && nodes_[node].sidecar_slot < 0);
  nodes_[node].sidecar_slot = slot;
  refile(node);
}

std::int32_t HostRadixTree::sidecar_slot(std::int32_t node) const {
  HCSIM_ASSERT(node >= kRoot && node < static_cast<std::int32_t>(nodes_.size()));
  return nodes_[node].sidecar_slot;
}

std::int32_t HostRadixTree::parent(std::int32_t node) const {
  HCSIM_ASSERT(node >= kRoot && node < static_cast<std::int32_t>(nodes_.size()));
  return nodes_[node].parent;
}

void HostRadixTree::lock(std::int32_t node) {
  HCSIM_ASSERT(node >= kRoot && node < static_cast<std::int32_t>(nodes_.size()));
  if (node == kRoot) return;  // the root is never evicted
  HCSIM_ASSERT(nodes_[node].parent >= 0);  // alive
  ++nodes_[node].lock_ref;
  refile(node);
}

void HostRadixTree::unlock(std::int32_t node) {
  HCSIM_ASSERT(node >= kRoot && node < static_cast<std::int32_t>(nodes_.size()));
  if (node == kRoot) return;
  HCSIM_ASSERT(nodes_[node].parent >= 0 && nodes_[node].lock_ref > 0);
  --nodes_[node].lock_ref;
  refile(node);
}

std::optional<HostRadixTree::Evicted> HostRadixTree::evict_lru_leaf() {
  const std::int32_t id = take_oldest(leaf_lru_);
  if (id < 0) return std::nullopt;
  unfile(sidecar_lru_, id);
  Node& n = nodes_[id];
  const Evicted out{n.kv_slot, n.sidecar_slot};
  const std::int32_t parent = n.parent;
  nodes_[parent].children.remove(n.key);
  n = Node{};
  free_nodes_.push_back(id);
  --live_nodes_;
  refile(parent);  // may have become a leaf
  return out;
}

std::optional<std::int32_t> HostRadixTree::evict_lru_sidecar() {
  const std::int32_t id = take_oldest(sidecar_lru_);
  if (id < 0) return std::nullopt;
  const std::int32_t slot = nodes_[id].sidecar_slot;
  nodes_[id].sidecar_slot = -1;
  return slot;
}

}  // namespace hcsim
