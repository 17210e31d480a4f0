// Chrome Trace Event JSON from a trace, for Perfetto or speedscope: one process per rank, one
// thread per actor; L3 calls as async slices, forwards as complete slices, policy decisions as
// instants with their fields, queue depths and prefetch occupancy as counters, and a flow from each
// prefetch's registration to its termination.
//
// A hung run shows its hang: each rank's call into the collective the verdict names is a complete
// slice open to the end of the run, and a global instant at the verdict names the collective and
// who entered it with what, e.g. (ranks 0, 1 and 3 likewise, with forward(52)):
//
//   {"ph":"X","name":"HANG tp_cpu_group seq 52 forward(2100)","pid":2,"tid":0,"ts":17040.0,"dur":1000.0,
//    "args":{"hang":true,"group":"tp_cpu_group","seq":52,"op":"forward","size":2100,...}}
//   {"ph":"i","s":"g","name":"HANG collective_mismatch: tp_cpu_group seq 52","ts":17040.0,
//    "args":{"entered":["rank 0 forward(52) at 17.040 ms",...,"rank 2 forward(2100) at 17.040 ms",...],"missing_ranks":[],...}}
//
// Nothing is drawn past the end of the run: a call still in flight then (an L3 call due later or
// never, a forward) ends there, with "cut_at_end_of_run":true and its "due_us" in its arguments.
#pragma once

#include <nlohmann/json.hpp>

#include "run/scenario.h"
#include "run/trace_file.h"

namespace hcsim {

// Replays a simulated trace to learn when its run ended and what its verdict names; a trace that
// the replay does not reproduce (a GPU run's, another build's) is read from its events alone.
nlohmann::json chrome_trace(const TraceRead& trace, const Scenario& scenario);

}  // namespace hcsim
