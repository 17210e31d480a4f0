// Topology: how the ranks of one model split into pipeline stages of TP ranks, how a stage's TP
// ranks split into attention groups (DP attention replicas, attention context parallelism), and
// which communicator a rank's collective of a kind runs on.
//
// A rank is stage * tp + TP rank, as upstream's global rank with PP outermost. Every collective
// group lives within one stage; stages talk only point to point, each rank to its counterpart on
// the next stage (channel_to_next).
//
// Upstream's rank layout is (dp, cp, tp) with the attention-TP rank changing fastest
// (layers/dp_attention.py@17313cf4b:326-340): rank = (replica * cp + cp_rank) * attn_tp + attn_tp_rank.
// A kind whose group spans every TP rank is the TP group itself (parallel_state.py@17313cf4b:2507-2508,
// 2554-2555 reuse _TP), so it shares tp_cpu_group's sequence; the prefetch thread's groups are always
// groups of their own (create_custom_parallel_group, CC@17313cf4b:372-394).
//
//   Topology t{.tp = 8, .dp = 2, .cp = 2};           // attn_tp = 2
//   t.resolve(Group::kAttnTp, 5);                     // attn_tp_cpu_group[2]: ranks 4, 5
//   t.resolve(Group::kAttnCp, 5);                     // attn_cp_cpu_group[5]: ranks 5, 7
//   t.members(t.resolve(Group::kAttnCp, 5));          // {5, 7}
//   Topology p{.tp = 2, .pp = 2};
//   p.resolve(Group::kTp, 3);                         // tp_cpu_group@pp1: ranks 2, 3
//   p.channel_to_next(GroupKind::kPpProxy, 1);        // pp_proxy[1] pp0->pp1: ranks 1, 3
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "policy/runtime.h"

namespace hcsim {

struct Topology {
  int tp = 1;
  int dp = 1;  // DP attention replicas; 1: DP attention off
  int cp = 1;  // attention context parallelism
  int pp = 1;  // pipeline stages, each of tp ranks

  int ranks() const { return pp * tp; }
  int stage(int rank) const { return rank / tp; }
  int tp_rank(int rank) const { return rank % tp; }
  bool first_stage(int rank) const { return stage(rank) == 0; }
  bool last_stage(int rank) const { return stage(rank) == pp - 1; }
  int attn_tp() const { return tp / dp / cp; }
  bool dp_attention() const { return dp > 1; }
  int replica(int rank) const { return tp_rank(rank) / (attn_tp() * cp); }
  int cp_rank(int rank) const { return tp_rank(rank) / attn_tp() % cp; }
  int attn_tp_rank(int rank) const { return rank % attn_tp(); }
  // Receives the requests of its replica (request_receiver.py@17313cf4b:105-107).
  bool replica_leader(int rank) const { return attn_tp_rank(rank) == 0 && cp_rank(rank) == 0; }
  // The ranks that run one request: its replica's on every stage.
  int replica_ranks() const { return pp * tp / dp; }

  // How many ranks one group of `kind` holds.
  int size(GroupKind kind) const;
  // The communicator `rank` enters when policy code names `g` (a kind, index kWhole); a channel
  // is its own.
  Group resolve(Group g, int rank) const;
  // The point-to-point channel of `kind` from `rank` to its counterpart on the next stage.
  Group channel_to_next(GroupKind kind, int rank) const;
  // The channel of `kind` on which `rank` receives from its counterpart on the previous stage.
  Group channel_from_previous(GroupKind kind, int rank) const;
  // The ranks of a resolved communicator, ascending.
  std::vector<int> members(Group g) const;
  // Every communicator of this topology, each once: the stages' groups, then the channels.
  std::vector<Group> communicators() const;
  // How reports name the split: "" for one stage and one attention group of every rank, else
  // "DP attention 2 x attention TP 4", "attention CP 2 x attention TP 2", "PP 2 x TP 4".
  std::string split_text() const;
  // Empty when tp, dp, cp and pp fit together; else what is wrong, naming the fields.
  std::string problem() const;
};

// The groups one reduction runs over, in order; at most three.
class GroupList {
 public:
  void add(Group g);
  const Group* begin() const { return groups_.data(); }
  const Group* end() const { return groups_.data() + count_; }
  bool empty() const { return count_ == 0; }

 private:
  std::array<Group, 3> groups_{};
  std::size_t count_ = 0;
};

// The scheduler-side reductions of the cache: attention CP, then attention TP, each only if it has
// more than one rank; neither: the cache's TP group (the attention-TP group under DP attention),
// if it has (URC@17313cf4b:271-287, HiRadixCache from #20460, HR@faa628694:191-207). Two
// reductions in a row give the MIN or MAX over the CP x TP grid. HiMamba reduces over that TP
// group alone (HM@faa628694:410-413, 1627-1628).
GroupList cache_groups(const Topology& t, bool himamba);
// The prefetch thread's groups: its own groups over the attention-CP and attention-TP ranks, each
// only if it has more than one rank (CC@17313cf4b:372-394); with the acknowledgement design
// (#27010, `across_stages`), then its group over the pipeline stages.
GroupList prefetch_groups(const Topology& t, bool across_stages);
// The acknowledgement design's completion groups (the sync thread's): attention CP, attention TP,
// then the stages, each only with more than one rank (_create_sync_groups, CC@001067ff).
GroupList completion_groups(const Topology& t);

}  // namespace hcsim
