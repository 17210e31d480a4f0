// A run's logged events of one kind, for tests: all of them, or one rank's, in log order.
#pragma once

#include <vector>

#include "sim/simulation.h"

namespace hcsim {

inline std::vector<const TraceEvent*> events_of(const RunResult& r, EventKind kind, int rank = -1) {
  std::vector<const TraceEvent*> out;
  for (const TraceEvent& e : r.log.events()) {
    if (e.kind == kind && (rank < 0 || e.rank == rank)) out.push_back(&e);
  }
  return out;
}

}  // namespace hcsim
