#include "policy/host_radix_tree.h"

#include <algorithm>
#include <tuple>

#include "policy/assert.h"

namespace hcsim {

HostRadixTree::HostRadixTree(std::int32_t node_capacity) : node_capacity_(node_capacity) {
  HCSIM_ASSERT(node_capacity > 0);
  HCSIM_ASSERT(static_cast<std::uint64_t>(node_capacity) <= kNodeMask);
  nodes_.reserve(64);
  nodes_.push_back(Node{});
  leaf_lru_.at.push_back(-1);
  sidecar_lru_.at.push_back(-1);
}

std::int32_t HostRadixTree::child(std::int32_t node, PageKey key) const {
  const Node& n = nodes_[node];
  if (n.first_child >= 0 && n.first_child_key == key) return n.first_child;
  if (n.more_children < 0) return -1;
  const ChildList& list = child_lists_[static_cast<std::size_t>(n.more_children)];
  if (list.index) {
    const std::uint32_t at = list.index->find(key);
    return at == KeyIndex::kAbsent ? -1 : list.children[at].second;
  }
  for (const auto& [k, c] : list.children) {
    if (k == key) return c;
  }
  return -1;
}

void HostRadixTree::add_child(std::int32_t parent, PageKey key, std::int32_t node) {
  HCSIM_ASSERT(node > kRoot && child(parent, key) < 0);
  Node& p = nodes_[parent];
  if (p.first_child < 0) {
    p.first_child_key = key;
    p.first_child = node;
    return;
  }
  if (p.more_children < 0) {
    if (free_child_lists_.empty()) {
      p.more_children = static_cast<std::int32_t>(child_lists_.size());
      child_lists_.emplace_back();
    } else {
      p.more_children = free_child_lists_.back();
      free_child_lists_.pop_back();
    }
  }
  ChildList& list = child_lists_[static_cast<std::size_t>(p.more_children)];
  list.children.emplace_back(key, node);
  if (list.index) {
    list.index->assign(key, static_cast<std::uint32_t>(list.children.size() - 1));
  } else if (list.children.size() > ChildList::kScannedMax) {
    list.index = std::make_unique<KeyIndex>();
    for (std::size_t i = 0; i < list.children.size(); ++i) list.index->assign(list.children[i].first, static_cast<std::uint32_t>(i));
  }
}

void HostRadixTree::remove_child(std::int32_t parent, PageKey key) {
  Node& p = nodes_[parent];
  HCSIM_ASSERT(p.first_child >= 0);
  ChildList* list = p.more_children < 0 ? nullptr : &child_lists_[static_cast<std::size_t>(p.more_children)];
  if (p.first_child_key == key) {
    if (list == nullptr) {
      p.first_child = -1;
      return;
    }
    std::tie(p.first_child_key, p.first_child) = list->children.back();
    list->children.pop_back();
    if (list->index) list->index->erase(p.first_child_key);
  } else {
    HCSIM_ASSERT(list != nullptr);
    // The list keeps no order: its last child fills the hole.
    std::size_t at = list->children.size();
    if (list->index) {
      at = list->index->find(key);
      HCSIM_ASSERT(at != KeyIndex::kAbsent);
      list->index->erase(key);
      if (at + 1 < list->children.size()) list->index->assign(list->children.back().first, static_cast<std::uint32_t>(at));
    } else {
      at = static_cast<std::size_t>(std::find_if(list->children.begin(), list->children.end(), [&](const auto& c) { return c.first == key; }) -
                                    list->children.begin());
    }
    HCSIM_ASSERT(at < list->children.size());
    list->children[at] = list->children.back();
    list->children.pop_back();
  }
  if (list->children.empty()) {  // kept, with its capacity, for the next node of several
    list->index.reset();
    free_child_lists_.push_back(p.more_children);
    p.more_children = -1;
  }
}

std::int32_t HostRadixTree::new_node(std::int32_t parent, PageKey key, std::int32_t kv_slot) {
  HCSIM_ASSERT(live_nodes_ < node_capacity_);
  std::int32_t id = 0;
  if (free_nodes_.empty()) {
    id = static_cast<std::int32_t>(nodes_.size());
    nodes_.emplace_back();
    leaf_lru_.at.push_back(-1);
    sidecar_lru_.at.push_back(-1);
  } else {
    id = free_nodes_.back();
    free_nodes_.pop_back();
  }
  Node& n = nodes_[id];
  n.key = key;
  n.parent = parent;
  n.kv_slot = kv_slot;
  n.last_use = tick_;
  add_child(parent, key, id);
  ++live_nodes_;
  unfile(leaf_lru_, parent);  // no longer a leaf
  return id;
}

bool HostRadixTree::evictable_leaf(std::int32_t node) const {
  const Node& n = nodes_[node];
  return node != kRoot && n.parent >= 0 && n.lock_ref == 0 && n.first_child < 0;
}

bool HostRadixTree::evictable_sidecar(std::int32_t node) const {
  const Node& n = nodes_[node];
  return node != kRoot && n.parent >= 0 && n.lock_ref == 0 && n.sidecar_slot >= 0;
}

void HostRadixTree::place(EvictionOrder& order, std::size_t i, std::uint64_t word) {
  order.heap[i] = word;
  order.at[static_cast<std::size_t>(node_of(word))] = static_cast<std::int32_t>(i);
}

void HostRadixTree::sift_up(EvictionOrder& order, std::size_t i) {
  const std::uint64_t word = order.heap[i];
  while (i > 0) {  // bounded: i shrinks fourfold
    const std::size_t up = (i - 1) / 4;
    if (order.heap[up] < word) break;
    place(order, i, order.heap[up]);
    i = up;
  }
  place(order, i, word);
}

void HostRadixTree::sift_down(EvictionOrder& order, std::size_t i) {
  const std::uint64_t word = order.heap[i];
  const std::size_t n = order.heap.size();
  for (;;) {  // bounded: i grows fourfold
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t down = first;
    for (std::size_t c = first + 1; c < std::min(first + 4, n); ++c) {
      if (order.heap[c] < order.heap[down]) down = c;
    }
    if (word < order.heap[down]) break;
    place(order, i, order.heap[down]);
    i = down;
  }
  place(order, i, word);
}

void HostRadixTree::file(EvictionOrder& order, std::int32_t node, bool evictable) {
  if (!evictable) {
    unfile(order, node);
    return;
  }
  const std::int32_t at = order.at[static_cast<std::size_t>(node)];
  if (at >= 0) {
    HCSIM_ASSERT(order.heap[static_cast<std::size_t>(at)] == rank_word(node));  // where it is filed
    return;
  }
  order.heap.push_back(rank_word(node));
  sift_up(order, order.heap.size() - 1);
}

void HostRadixTree::refresh(EvictionOrder& order, std::int32_t node) {
  const std::int32_t at = order.at[static_cast<std::size_t>(node)];
  if (at < 0) return;
  const auto i = static_cast<std::size_t>(at);
  HCSIM_ASSERT(order.heap[i] <= rank_word(node));  // recency only grows
  order.heap[i] = rank_word(node);
  sift_down(order, i);
}

void HostRadixTree::unfile(EvictionOrder& order, std::int32_t node) {
  const std::int32_t at = order.at[static_cast<std::size_t>(node)];
  if (at < 0) return;
  order.at[static_cast<std::size_t>(node)] = -1;
  const std::uint64_t last = order.heap.back();
  order.heap.pop_back();
  if (node_of(last) == node) return;
  const auto i = static_cast<std::size_t>(at);
  place(order, i, last);
  sift_up(order, i);
  sift_down(order, static_cast<std::size_t>(order.at[static_cast<std::size_t>(node_of(last))]));
}

void HostRadixTree::use(std::int32_t node) {
  nodes_[node].last_use = tick_;
  refresh(leaf_lru_, node);
  refresh(sidecar_lru_, node);
}

void HostRadixTree::refile(std::int32_t node) {
  file(leaf_lru_, node, evictable_leaf(node));
  file(sidecar_lru_, node, evictable_sidecar(node));
}

HostRadixTree::InsertResult HostRadixTree::insert(std::span<const PageKey> pages, std::int32_t first_new,
                                                  std::span<const std::int32_t> slots) {
  HCSIM_ASSERT(first_new >= 0 && static_cast<std::size_t>(first_new) <= pages.size());
  HCSIM_ASSERT(slots.size() == pages.size() - first_new);
  InsertResult r;
  next_tick();
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
      use(next);
    }
    node = next;
  }
  // The new nodes above the last have children: only the last can be a leaf.
  if (r.inserted_pages > 0) refile(node);
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
  next_tick();
  std::int32_t node = kRoot;
  for (std::int32_t i = 0; i < depth; ++i) {
    node = child(node, pages[static_cast<std::size_t>(i)]);
    HCSIM_ASSERT(node > kRoot);  // the prefix is present
    use(node);
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
  if (leaf_lru_.heap.empty()) return std::nullopt;
  const std::int32_t id = node_of(leaf_lru_.heap.front());
  HCSIM_ASSERT(evictable_leaf(id));
  unfile(sidecar_lru_, id);
  Node& n = nodes_[id];
  const Evicted out{n.kv_slot, n.sidecar_slot};
  const std::int32_t parent = n.parent;
  remove_child(parent, n.key);
  n = Node{};
  free_nodes_.push_back(id);
  --live_nodes_;
  // A parent left a leaf replaces the victim at the top, one sift instead of a pop and a push. It
  // is as recent as its last child, so mostly older than every other leaf: the sift stops at once
  // and a chain is evicted a page at a time without moving the rest of the order.
  if (evictable_leaf(parent)) {
    HCSIM_ASSERT(leaf_lru_.at[static_cast<std::size_t>(parent)] < 0);  // it had a child
    leaf_lru_.at[static_cast<std::size_t>(id)] = -1;
    place(leaf_lru_, 0, rank_word(parent));
    sift_down(leaf_lru_, 0);
  } else {
    unfile(leaf_lru_, id);
  }
  return out;
}

std::optional<std::int32_t> HostRadixTree::evict_lru_sidecar() {
  if (sidecar_lru_.heap.empty()) return std::nullopt;
  const std::int32_t id = node_of(sidecar_lru_.heap.front());
  HCSIM_ASSERT(evictable_sidecar(id));
  unfile(sidecar_lru_, id);
  const std::int32_t slot = nodes_[id].sidecar_slot;
  nodes_[id].sidecar_slot = -1;
  return slot;
}

}  // namespace hcsim
