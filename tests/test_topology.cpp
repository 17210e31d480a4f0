// Collective topology: how DP attention and attention CP split the TP ranks, which groups the
// cache and the prefetch thread reduce over, how requests reach the replicas, and runs that show
// a divergence crossing groups.
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/topology.h"
#include "run/request_stream.h"
#include "run/scenario.h"
#include "run/work_ledger.h"
#include "sim/simulation.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

// Upstream's own construction of the groups (parallel_state.py@17313cf4b:2510-2524, 2557-2569),
// written out independently of Topology: the rank lists of every attention-CP and attention-TP group.
std::set<std::vector<int>> upstream_groups(int tp, int dp, int cp, bool cp_groups) {
  const int attn_tp = tp / dp / cp;
  std::set<std::vector<int>> out;
  if (cp_groups) {
    for (int d = 0; d < dp; ++d) {
      for (int t = 0; t < attn_tp; ++t) {
        std::vector<int> ranks;
        for (int r = d * attn_tp * cp + t; r < (d + 1) * attn_tp * cp + t; r += attn_tp) ranks.push_back(r);
        out.insert(ranks);
      }
    }
  } else {
    for (int i = 0; i < cp * dp; ++i) {
      std::vector<int> ranks;
      for (int r = i * attn_tp; r < (i + 1) * attn_tp; ++r) ranks.push_back(r);
      out.insert(ranks);
    }
  }
  return out;
}

std::set<std::vector<int>> our_groups(const Topology& t, Group kind) {
  std::set<std::vector<int>> out;
  for (int r = 0; r < t.tp; ++r) out.insert(t.members(t.resolve(kind, r)));
  return out;
}

std::vector<Group> kinds_of(const GroupList& l) { return {l.begin(), l.end()}; }

RunResult run_at(const Scenario& s, const char* variant) { return simulate(s, options_of(variant)); }

}  // namespace

TEST_CASE("topology: the attention groups are upstream's, for every split of TP 8") {
  for (const auto& [dp, cp] : std::vector<std::pair<int, int>>{{1, 1}, {2, 1}, {1, 2}, {2, 2}, {4, 2}, {1, 8}, {8, 1}, {2, 4}}) {
    const Topology t{.tp = 8, .dp = dp, .cp = cp};
    INFO("dp " << dp << " cp " << cp);
    REQUIRE(t.problem().empty() == (dp == 1 || cp == 1));  // the layout holds either way
    REQUIRE(our_groups(t, Group::kAttnTp) == upstream_groups(8, dp, cp, false));
    REQUIRE(our_groups(t, Group::kAttnCp) == upstream_groups(8, dp, cp, true));
    REQUIRE(our_groups(t, Group::kPrefetchTp) == upstream_groups(8, dp, cp, false));
    for (int r = 0; r < 8; ++r) {
      // rank = (replica * cp + cp_rank) * attn_tp + attn_tp_rank (dp_attention.py@17313cf4b:336-338)
      REQUIRE(r == (t.replica(r) * cp + t.cp_rank(r)) * t.attn_tp() + t.attn_tp_rank(r));
    }
  }
}

TEST_CASE("topology: a kind spanning every TP rank is the TP group; the prefetch thread's groups never are") {
  const Topology whole{.tp = 4};
  REQUIRE(whole.resolve(Group::kAttnTp, 3) == Group::kTp);
  REQUIRE(whole.resolve(Group::kPrefetchTp, 3) == Group::kPrefetchTp);
  const Topology all_cp{.tp = 4, .cp = 4};
  REQUIRE(all_cp.resolve(Group::kAttnCp, 2) == Group::kTp);
  REQUIRE(all_cp.resolve(Group::kPrefetchCp, 2) == Group::kPrefetchCp);
  // Communicators are listed once each, with their members.
  const Topology t{.tp = 8, .dp = 2, .cp = 2};
  std::size_t ranks_in_attn_tp = 0;
  for (const Group g : t.communicators()) {
    if (g.kind == GroupKind::kAttnTp) ranks_in_attn_tp += t.members(g).size();
  }
  REQUIRE(ranks_in_attn_tp == 8);
  REQUIRE(group_name(t.resolve(Group::kAttnCp, 5)) == "attn_cp_cpu_group[3]");  // replica 1, attention-TP rank 1
  REQUIRE(t.members(t.resolve(Group::kAttnCp, 5)) == std::vector<int>{5, 7});
  REQUIRE(Group::from_code(t.resolve(Group::kAttnCp, 5).code()) == t.resolve(Group::kAttnCp, 5));
  REQUIRE(Group::kTp.code() == 0);  // whole groups keep the codes events had before topologies
  REQUIRE(Group::kPrefetchTp.code() == 1);
  REQUIRE_FALSE(Topology{.tp = 6, .dp = 4}.problem().empty());
  REQUIRE(Topology{.tp = 8, .dp = 2, .cp = 2}.problem().find("not modelled") != std::string::npos);
}

TEST_CASE("topology: the cache reduces over CP then TP, HiMamba over its tp_group, pure DP not at all") {
  REQUIRE(kinds_of(cache_groups(Topology{.tp = 4, .cp = 2}, false)) == std::vector<Group>{Group::kAttnCp, Group::kAttnTp});
  REQUIRE(kinds_of(cache_groups(Topology{.tp = 4, .cp = 2}, true)) == std::vector<Group>{Group::kTp});
  REQUIRE(kinds_of(cache_groups(Topology{.tp = 4, .dp = 2}, true)) == std::vector<Group>{Group::kAttnTp});
  REQUIRE(kinds_of(cache_groups(Topology{.tp = 4}, false)) == std::vector<Group>{Group::kAttnTp});
  // attention-TP size 1 under DP attention: the tp_group is that group, of one rank (unified-tree doc 4.15).
  REQUIRE(cache_groups(Topology{.tp = 4, .dp = 4}, false).empty());
  REQUIRE(cache_groups(Topology{.tp = 1}, false).empty());
  REQUIRE(kinds_of(prefetch_groups(Topology{.tp = 8, .dp = 2, .cp = 2}, false)) == std::vector<Group>{Group::kPrefetchCp, Group::kPrefetchTp});
  REQUIRE(kinds_of(prefetch_groups(Topology{.tp = 4, .cp = 4}, false)) == std::vector<Group>{Group::kPrefetchCp});
  // The acknowledgement design's hit and completion groups span the stages last (CC@001067ff _create_sync_groups).
  REQUIRE(kinds_of(prefetch_groups(Topology{.tp = 4, .cp = 2, .pp = 2}, true)) ==
          std::vector<Group>{Group::kPrefetchCp, Group::kPrefetchTp, Group{GroupKind::kPrefetchPp}});
  REQUIRE(kinds_of(prefetch_groups(Topology{.tp = 4, .cp = 2, .pp = 2}, false)) == std::vector<Group>{Group::kPrefetchCp, Group::kPrefetchTp});
  REQUIRE(kinds_of(completion_groups(Topology{.tp = 2, .pp = 3})) == std::vector<Group>{Group{GroupKind::kSyncTp}, Group{GroupKind::kSyncPp}});
  REQUIRE(completion_groups(Topology{.tp = 1}).empty());
}

TEST_CASE("topology: DP attention routes arrivals round robin in arrival order; a request is owed by its replica") {
  RequestStream s({{300, 0}, {100, 1}, {200, 2}, {400, 3}}, {}, 2);
  REQUIRE(s.replica_of(4) == std::vector<int>{0, 0, 1, 1});  // by time: 1 -> 0, 2 -> 1, 0 -> 0, 3 -> 1
  std::vector<RequestId> out(4);
  REQUIRE(s.take_arrivals(250, out, 1) == 1);
  REQUIRE(out[0] == 2);
  REQUIRE(s.next_due_ns() == 100);  // replica 0 has not taken request 1
  REQUIRE_FALSE(s.arrivals_taken());

  WorkLedger w(2, 4, {0, 1}, 2);  // request 1 runs on ranks 2 and 3
  w.start(1, 10);
  REQUIRE_FALSE(w.finish(1, 2));
  REQUIRE(w.owed().front().ranks_pending == std::vector<int>{3});
  REQUIRE_FALSE(w.finish(1, 3));
  w.start(0, 20);
  REQUIRE_FALSE(w.finish(0, 0));
  REQUIRE(w.finish(0, 1));
  REQUIRE(w.all_done());
}

TEST_CASE("topology: one replica's divergence stops the other in the TP group's MLP sync") {
  const Scenario s = load_scenario_file("scenarios/dp-attention-registration-divergence.json");
  const RunResult r = run_at(s, "2026-08-20");
  REQUIRE(r.verdict.kind == HangKind::kDeadlock);
  // Ranks 0-2 wait for rank 3 in replica 0's attention-TP group; rank 3 and replica 1 wait in the
  // TP group for ranks 0-2.
  std::set<std::string> where;
  for (const ActorState& a : r.verdict.actors) {
    if (a.actor == ActorKind::kScheduler && a.wait == WaitKind::kCollective) where.insert(std::to_string(a.rank) + " " + group_name(a.group));
  }
  REQUIRE(where == std::set<std::string>{"0 attn_tp_cpu_group[0]", "1 attn_tp_cpu_group[0]", "2 attn_tp_cpu_group[0]", "3 tp_cpu_group",
                                         "4 tp_cpu_group", "5 tp_cpu_group", "6 tp_cpu_group", "7 tp_cpu_group"});
  // Q went to replica 1: no rank of replica 0 ever saw it.
  for (const TraceEvent& e : r.log.events()) {
    if (e.request == 1) REQUIRE(e.rank >= 4);
    if (e.request == 0) REQUIRE(e.rank < 4);
  }
  // Agreeing on registration cures it before #19320, on both replicas.
  const RunResult cured = run_at(s, "2026-07-15+registration-consensus");
  REQUIRE_FALSE(cured.verdict.hang());
  for (const InvariantResult& i : cured.invariants) REQUIRE(i.held);
}

TEST_CASE("topology: with attention CP every cache reduction is two, and the wait runs through the grid") {
  const Scenario s = load_scenario_file("scenarios/attention-cp-registration-divergence.json");
  const RunResult clean = run_at(s, "2026-07-15+registration-consensus");
  REQUIRE_FALSE(clean.verdict.hang());
  // Each scheduler-side MIN or MAX of the cache on rank 0 alternates CP group {0, 2}, TP group {0, 1}.
  int cp = 0, tp = 0;
  for (const TraceEvent& e : clean.log.events()) {
    if (e.rank != 0 || e.kind != EventKind::kCollectiveEnter) continue;
    const auto g = Group::from_code(collective_enter_fields(e).group);
    REQUIRE(g);
    cp += g->kind == GroupKind::kAttnCp;
    tp += g->kind == GroupKind::kAttnTp;
  }
  REQUIRE(cp > 0);
  REQUIRE(cp == tp);
  const RunResult hung = run_at(s, "2026-08-20");
  REQUIRE(hung.verdict.kind == HangKind::kDeadlock);
  std::set<std::string> where;
  for (const ActorState& a : hung.verdict.actors) {
    if (a.actor == ActorKind::kScheduler && a.wait == WaitKind::kCollective) where.insert(std::to_string(a.rank) + " " + group_name(a.group));
  }
  REQUIRE(where == std::set<std::string>{"0 attn_tp_cpu_group[0]", "1 attn_cp_cpu_group[1]", "2 attn_tp_cpu_group[1]", "3 tp_cpu_group"});
}

TEST_CASE("topology: a scenario whose attention groups do not divide TP is refused, naming the field") {
  const std::string text = R"({"name": "x", "description": "d", "tp": 6, "attention": {"dp": 4}, "policy": {"name": "timeout"},
    "requests": [{"name": "R", "arrival_us": 0, "input_tokens": 64}], "expect": [{"variant": "all-fixes", "verdict": "complete"}]})";
  CHECK_THROWS_WITH(parse_scenario(text, "six.json"), Catch::Contains("six.json: /attention") && Catch::Contains("not a multiple"));
}
