// A kernel and a collective matcher over one topology, and hand-built collective calls, for the
// matcher's tests (collectives and point-to-point channels).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "policy/runtime.h"
#include "policy/topology.h"
#include "sim/collectives.h"
#include "sim/kernel.h"

namespace hcsim {

inline constexpr TimeNs kMatcherLatencyNs = 1'000;

struct MatcherEnv {
  explicit MatcherEnv(int ranks) : MatcherEnv(Topology{.tp = ranks}) {}
  explicit MatcherEnv(Topology t) : topology(t), matcher(t, CollectiveCost{kMatcherLatencyNs, 1'000'000, 200}) {}
  Topology topology;
  Kernel kernel;
  CollectiveMatcher matcher;
};

// A collective, send or receive call on `g` whose payload is `payload`.
inline WorldCall collective_call(Group g, CollectiveOp op, std::vector<std::int64_t>& payload) {
  WorldCall c;
  c.kind = WorldCall::Kind::kCollective;
  c.group = g;
  c.op = op;
  c.payload = std::span<std::int64_t>(payload);
  return c;
}

}  // namespace hcsim
