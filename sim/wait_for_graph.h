// The wait-for graph at the end of a run, as Graphviz DOT (built with Boost.Graph): one vertex per
// actor, an edge from each blocked actor to whoever it waits on, labelled with why.
//
//   "rank 0 scheduler" -> "rank 1 scheduler" [label="tp_cpu_group seq 27: entered forward(2100)"]
//   "rank 1 io" -> "L3 (rank 1)" [label="sidecar_get, due at 500.1ms"]
#pragma once

#include <string>

#include "sim/diagnosis.h"

namespace hcsim {

std::string wait_for_graph_dot(const Verdict& verdict, const CollectiveLedger& collectives);

}  // namespace hcsim
