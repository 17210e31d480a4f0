#include "policy/topology.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

int Topology::size(GroupKind kind) const {
  switch (kind) {
    case GroupKind::kTp: return tp;
    case GroupKind::kAttnTp:
    case GroupKind::kPrefetchTp:
    case GroupKind::kSyncTp: return attn_tp();
    case GroupKind::kAttnCp:
    case GroupKind::kPrefetchCp:
    case GroupKind::kSyncCp: return cp;
    case GroupKind::kPrefetchPp:
    case GroupKind::kSyncPp: return pp;
    case GroupKind::kPpRequests:
    case GroupKind::kPpProxy:
    case GroupKind::kPpSync: return 2;
  }
  HCSIM_ASSERT(false);
  return 0;
}

Group Topology::resolve(Group g, int rank) const {
  HCSIM_ASSERT(rank >= 0 && rank < ranks());
  if (point_to_point(g.kind)) {
    HCSIM_ASSERT(g.index >= 0 && g.index < tp && g.stage >= 0 && g.stage + 1 < pp);  // named in full
    return g;
  }
  HCSIM_ASSERT(g.index == Group::kWhole && g.stage == Group::kOnlyStage);
  const int local = tp_rank(rank);
  const auto split = [&](int index) { return Group{g.kind, static_cast<std::int16_t>(index)}; };
  Group out = g;
  switch (g.kind) {
    case GroupKind::kTp: out = Group::kTp; break;
    case GroupKind::kAttnTp: out = attn_tp() == tp ? Group::kTp : split(local / attn_tp()); break;
    case GroupKind::kPrefetchTp: out = attn_tp() == tp ? Group::kPrefetchTp : split(local / attn_tp()); break;
    case GroupKind::kAttnCp: out = cp == tp ? Group::kTp : split(replica(rank) * attn_tp() + attn_tp_rank(rank)); break;
    case GroupKind::kPrefetchCp: out = cp == tp ? Group::kPrefetchCp : split(replica(rank) * attn_tp() + attn_tp_rank(rank)); break;
    case GroupKind::kSyncTp: out = attn_tp() == tp ? Group{GroupKind::kSyncTp} : split(local / attn_tp()); break;
    case GroupKind::kSyncCp: out = cp == tp ? Group{GroupKind::kSyncCp} : split(replica(rank) * attn_tp() + attn_tp_rank(rank)); break;
    case GroupKind::kPrefetchPp:
    case GroupKind::kSyncPp: return tp == 1 ? g : split(local);  // across the stages, at one TP position
    default: HCSIM_ASSERT(false);
  }
  if (pp > 1) out.stage = static_cast<std::int8_t>(stage(rank));
  return out;
}

Group Topology::channel_to_next(GroupKind kind, int rank) const {
  HCSIM_ASSERT(point_to_point(kind) && rank >= 0 && rank < ranks() && !last_stage(rank));
  return Group{kind, static_cast<std::int16_t>(tp_rank(rank)), static_cast<std::int8_t>(stage(rank))};
}

Group Topology::channel_from_previous(GroupKind kind, int rank) const {
  HCSIM_ASSERT(rank >= tp && rank < ranks());
  return channel_to_next(kind, rank - tp);
}

std::vector<int> Topology::members(Group g) const {
  std::vector<int> out;
  if (point_to_point(g.kind)) {
    HCSIM_ASSERT(g.stage >= 0 && g.stage + 1 < pp && g.index >= 0 && g.index < tp);
    return {g.stage * tp + g.index, (g.stage + 1) * tp + g.index};
  }
  for (int r = 0; r < ranks(); ++r) {
    if (resolve(Group{g.kind}, r) == g) out.push_back(r);
  }
  HCSIM_ASSERT(!out.empty());  // a communicator of another topology
  return out;
}

std::vector<Group> Topology::communicators() const {
  std::vector<Group> out;
  for (int k = 0; k < kGroupKindCount; ++k) {
    const auto kind = static_cast<GroupKind>(k);
    if (point_to_point(kind)) continue;
    // Groups spanning the stages exist only with stages (a group of one rank matters to nobody).
    if ((kind == GroupKind::kPrefetchPp || kind == GroupKind::kSyncPp) && pp == 1) continue;
    for (int r = 0; r < ranks(); ++r) {
      const Group g = resolve(Group{kind}, r);
      if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
    }
  }
  for (const GroupKind kind : {GroupKind::kPpRequests, GroupKind::kPpProxy, GroupKind::kPpSync}) {
    for (int r = 0; r + tp < ranks(); ++r) out.push_back(channel_to_next(kind, r));
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

GroupList prefetch_groups(const Topology& t, bool across_stages) {
  GroupList out;
  if (t.cp > 1) out.add(Group::kPrefetchCp);
  if (t.attn_tp() > 1) out.add(Group::kPrefetchTp);
  if (across_stages && t.pp > 1) out.add(Group{GroupKind::kPrefetchPp});
  return out;
}

GroupList completion_groups(const Topology& t) {
  GroupList out;
  if (t.cp > 1) out.add(Group{GroupKind::kSyncCp});
  if (t.attn_tp() > 1) out.add(Group{GroupKind::kSyncTp});
  if (t.pp > 1) out.add(Group{GroupKind::kSyncPp});
  return out;
}

std::string Topology::split_text() const {
  if (dp == 1 && cp == 1 && pp == 1) return {};
  std::string out;
  if (pp > 1) {
    out.append("PP ").append(std::to_string(pp)).append(" x ");
    if (dp == 1 && cp == 1) return out.append("TP ").append(std::to_string(tp));
  }
  if (dp > 1) out.append("DP attention ").append(std::to_string(dp)).append(" x ");
  if (cp > 1) out.append("attention CP ").append(std::to_string(cp)).append(" x ");
  return out.append("attention TP ").append(std::to_string(attn_tp()));
}

std::string Topology::problem() const {
  if (dp < 1 || cp < 1 || pp < 1) return "attention.dp, attention.cp and pp must be at least 1";
  if (pp > 1 && dp > 1) {
    return "pipeline stages with DP attention are not modelled: a stage's replicas would forward separate microbatches";
  }
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
