// RunMetrics: what a sweep records of one run, gathered from its events as they happen (a long
// run's log keeps only its first events). Times are the simulator's; every figure is a
// deterministic function of the run.
//
//   RunMetrics m = simulate_for_metrics(scenario, options);
//   m.sched_p99_us;  m.l3_lost_tokens;  m.kv_bytes_discarded;
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/simulation.h"

namespace hcsim {

struct RunMetrics {
  HangKind verdict = HangKind::kNone;
  std::vector<std::string> violated;       // invariants that broke, in the judge's order
  std::int64_t requests = 0;
  std::int64_t scheduled = 0;              // on rank 0
  std::int64_t starved = 0;                // never scheduled on rank 0
  std::int64_t sched_p50_us = 0;           // arrival to schedule on rank 0, over scheduled requests
  std::int64_t sched_p99_us = 0;
  std::int64_t tokens_loaded = 0;          // from L3 into the batch, on rank 0
  std::int64_t l3_lost_tokens = 0;         // of agreed L3 hits, not published (per request the most any rank lost)
  std::int64_t kv_bytes_discarded = 0;     // KV read from L3 beyond what was committed, over all ranks
  std::uint64_t events = 0;                // kernel events
  std::int64_t end_us = 0;
  std::uint64_t digest = 0;
};

RunMetrics simulate_for_metrics(const Scenario& scenario, RunOptions options);

// The nearest-rank percentile `p` (0 to 100) of `values`, which it sorts; 0 if empty.
std::int64_t percentile(std::vector<std::int64_t>& values, int p);

}  // namespace hcsim
