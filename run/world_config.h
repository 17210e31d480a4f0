// What a world is asked to run: how many ranks, what a collective costs, and the hang bounds. Both
// worlds read it; the simulator advances its clock by these costs and the threaded world paces its
// model clock by them, so a collective's size and cost are computed here and nowhere else.
//
//   CollectiveCost c;                                     // 20 us a round, forward 1 ms + 200 ns/token
//   c.duration_ns(CollectiveOp::kForward, 2100);          // 20'000 + 1'000'000 + 420'000
//   collective_size(call);                                // tokens of a forward, words otherwise
#pragma once

#include <cstddef>
#include <cstdint>

#include "policy/assert.h"
#include "policy/runtime.h"
#include "policy/topology.h"

namespace hcsim {

struct CollectiveCost {
  TimeNs latency_ns = 20'000;
  TimeNs forward_base_ns = 1'000'000;
  TimeNs forward_ns_per_token = 200;

  // The forward's compute time alone (the device's share of a forward collective).
  TimeNs forward_compute_ns(std::int64_t tokens) const { return forward_base_ns + forward_ns_per_token * tokens; }
  // From the last member's entry to every member's exit.
  TimeNs duration_ns(CollectiveOp op, std::int64_t size) const {
    return latency_ns + (op == CollectiveOp::kForward ? forward_compute_ns(size) : 0);
  }
};

// What members must agree on besides the op: a forward's or a proxy transfer's token count, else
// the payload's words.
inline std::int64_t collective_size(const WorldCall& call) {
  if (call.kind == WorldCall::Kind::kWaitSends) return 0;
  if (call.op != CollectiveOp::kForward && call.group.kind != GroupKind::kPpProxy) return static_cast<std::int64_t>(call.payload.size());
  HCSIM_ASSERT(call.payload.size() == 1);
  return call.payload[0];
}

// The hang detector's bounds (run/hang_detector.h), the same in both worlds.
struct DetectorBounds {
  TimeNs check_period_ns = 10'000'000;        // how often the bounds below are checked
  TimeNs settle_ns = 1'000'000;               // after a mismatch, let ranks a little behind arrive
  TimeNs quiesce_ns = 20'000'000;             // after the last schedule (and the last due transfer),
                                              // run on so releases drain before conservation is checked
  TimeNs collective_stall_ns = 10'000'000'000;  // a member this late is taken as never coming
  TimeNs starvation_ns = 30'000'000'000;
  TimeNs horizon_ns = 120'000'000'000;
};

struct WorldConfig {
  int ranks = 1;    // every rank of every pipeline stage
  int pp = 1;       // pipeline stages (policy/topology.h)
  int attn_dp = 1;  // DP attention replicas (policy/topology.h)
  int attn_cp = 1;  // attention context parallelism
  CollectiveCost collective;
  DetectorBounds bounds;
  std::uint64_t events_max = 0;  // 0: the events limit as the run starts (hcsim --limit events=N)
  std::size_t log_kept_max = std::size_t{1} << 20;

  Topology topology() const { return {.tp = ranks / pp, .dp = attn_dp, .cp = attn_cp, .pp = pp}; }
};

}  // namespace hcsim
