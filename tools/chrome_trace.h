// Chrome Trace Event JSON from a trace, for Perfetto or speedscope: one process per rank, one
// thread per actor; L3 calls as async slices, forwards as complete slices, policy decisions as
// instants with their fields, queue depths and prefetch occupancy as counters, and a flow from each
// prefetch's registration to its termination.
#pragma once

#include <nlohmann/json.hpp>

#include "sim/scenario.h"
#include "sim/trace_file.h"

namespace hcsim {

nlohmann::json chrome_trace(const TraceRead& trace, const Scenario& scenario);

}  // namespace hcsim
