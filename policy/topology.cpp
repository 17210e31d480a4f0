#include "policy/topology.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

int Topology::size(GroupKind kind) const {
  switch (kind) {
    case GroupKind::kTp: return tp;
    case GroupKind::kAttnTp:
    case GroupKind::kPrefetchTp: return attn_tp();
    case GroupKind::kAttnCp:
    case GroupKind::kPrefetchCp: return cp;
  }
  HCSIM_ASSERT(false);
  return 0;
}

Group Topology::resolve(Group g, int rank) const {
  HCSIM_ASSERT(g.index == Group::kWhole && rank >= 0 && rank < tp);
  const auto split = [&](int index) { return Group{g.kind, static_cast<std::int16_t>(index)}; };
  switch (g.kind) {
    case GroupKind::kTp: return Group::kTp;
    case GroupKind::kAttnTp: return attn_tp() == tp ? Group::kTp : split(rank / attn_tp());
    case GroupKind::kPrefetchTp: return attn_tp() == tp ? Group::kPrefetchTp : split(rank / attn_tp());
    case GroupKind::kAttnCp: return cp == tp ? Group::kTp : split(replica(rank) * attn_tp() + attn_tp_rank(rank));
    case GroupKind::kPrefetchCp: return cp == tp ? Group::kPrefetchCp : split(replica(rank) * attn_tp() + attn_tp_rank(rank));
  }
  HCSIM_ASSERT(false);
  return g;
}

std::vector<int> Topology::members(Group g) const {
  std::vector<int> out;
  for (int r = 0; r < tp; ++r) {
    if (resolve(Group{g.kind}, r) == g) out.push_back(r);
  }
  HCSIM_ASSERT(!out.empty());  // a communicator of another topology
  return out;
}

std::vector<Group> Topology::communicators() const {
  std::vector<Group> out;
  for (int k = 0; k < kGroupKindCount; ++k) {
    for (int r = 0; r < tp; ++r) {
      const Group g = resolve(Group{static_cast<GroupKind>(k)}, r);
      if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
    }
  }
  return out;
}

void GroupList::add(Group g) {
  HCSIM_ASSERT(count_ < groups_.size());
  groups_[count_++] = g;
}

GroupList cache_groups(const Topology& t, bool himamba) {
  GroupList out;
  const Group tp_cache = t.dp_attention() ? Group::kAttnTp : Group::kTp;
  if (!himamba) {
    if (t.cp > 1) out.add(Group::kAttnCp);
    if (t.attn_tp() > 1) out.add(Group::kAttnTp);
  }
  if (out.empty() && t.size(tp_cache.kind) > 1) out.add(tp_cache);
  return out;
}

GroupList prefetch_groups(const Topology& t) {
  GroupList out;
  if (t.cp > 1) out.add(Group::kPrefetchCp);
  if (t.attn_tp() > 1) out.add(Group::kPrefetchTp);
  return out;
}

std::string Topology::split_text() const {
  if (dp == 1 && cp == 1) return {};
  std::string out;
  if (dp > 1) out.append("DP attention ").append(std::to_string(dp)).append(" x ");
  if (cp > 1) out.append("attention CP ").append(std::to_string(cp)).append(" x ");
  return out.append("attention TP ").append(std::to_string(attn_tp()));
}

std::string Topology::problem() const {
  if (dp < 1 || cp < 1) return "attention.dp and attention.cp must be at least 1";
  if (dp > 1 && cp > 1) {
    return "DP attention with attention CP is not modelled: a replica's forward spans its CP x TP ranks, and the model runs it "
           "on one attention group";
  }
  if (tp % (dp * cp) != 0) {
    return "tp " + std::to_string(tp) + " is not a multiple of attention.dp " + std::to_string(dp) + " times attention.cp " +
           std::to_string(cp) + " (upstream: attn_tp_size = tp_size // dp_size // attn_cp_size)";
  }
  return {};
}

}  // namespace hcsim
