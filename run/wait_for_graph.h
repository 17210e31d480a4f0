// The wait-for graph at the end of a run, as Graphviz DOT (built with Boost.Graph): one box per
// rank holding its actors and its L3, one node per open collective, an edge from each blocked actor
// to whatever it waits on, labelled with why. The culprit is drawn red and bold: the verdict's
// collective with the ranks that entered it differently or never came, a wait cycle, an L3 call
// that never returns, an actor that died. Idle actors (sleeping, or waiting for work from an actor
// that is itself shown) fold into grey text in their rank's box unless `all_actors`.
//
//   subgraph cluster_rank_1 {
//     "rank 1 scheduler" [label="scheduler\nin forward(2100)\nsince 15.980ms", color="#d62728", fontcolor="#d62728", penwidth=2.5];
//     "rank 1 io" [label="io\nin L3 sidecar_get for request\n0, due at 503.560ms (since\n15.205ms)"];
//     "L3 (rank 1)" [label="L3 (rank 1)", shape=cylinder];
//     label=<rank 1<br/><font point-size="9" color="#555555">2 idle actors<br/>prefetch, backup:<br/>waiting for work</font>>;
//   }
//   "tp_cpu_group seq 49" [label="tp_cpu_group seq 49\nmismatch\nrank 0: forward(52)\nrank 1: forward(2100)", ...];
//   "rank 1 scheduler" -> "tp_cpu_group seq 49" [label="  entered forward(2100)", color="#d62728", ...];
//   "rank 1 io" -> "L3 (rank 1)" [label="  sidecar_get"];
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "run/diagnosis.h"

namespace hcsim {

struct WaitForGraphOptions {
  bool all_actors = false;  // draw every actor; idle ones grey instead of folded into a note
};

std::string wait_for_graph_dot(const Verdict& verdict, const CollectiveLedger& collectives, const WaitForGraphOptions& options = {});

// What the graph reads of a world's collectives, kept at the end of a run so the graph is drawn
// only when somebody asks for it: the collectives the verdict's actors wait in (open or not) and
// their communicators' ranks. Nothing when no actor waits in one, as at most completions.
class WaitedCollectives final : public CollectiveLedger {
 public:
  WaitedCollectives() = default;
  WaitedCollectives(const Verdict& verdict, const CollectiveLedger& ledger);

  // Of the kept collectives only: those some actor waited in.
  const OpenCollective* oldest_open(Group g, std::uint64_t& seq) const override;
  const OpenCollective* find_open(Group g, std::uint64_t seq) const override;
  std::optional<MismatchPoint> first_mismatch() const override { return mismatch_; }
  std::vector<Group> communicators() const override;
  std::vector<int> members(Group g) const override;

 private:
  struct Kept {
    Group group = Group::kTp;
    std::uint64_t seq = 0;
    std::optional<OpenCollective> open;  // none: the ledger no longer knew it
    std::vector<int> members;
  };
  std::vector<Kept> kept_;  // in the order actors wait in them
  std::optional<MismatchPoint> mismatch_;
};

}  // namespace hcsim
