// compare_worlds(): whether the GPU backend's run of a scenario behaved as the simulator's run of
// it did, as `hcsim validate` judges it. Per request and rank the sequences of termination
// decisions (register, skip, revoke, terminate, terminal state, schedule with its L3 tokens) must
// be identical, and the verdicts, with the collective a hang stopped at, must agree. Prefetch end
// and schedule times are real in one world and modelled in the other: only their largest
// difference is reported. A real run that lost the model's pace (a Gloo round too slow for the
// scenario, or L3 calls slower than modelled) and differs past its verdict is "unpaced", not a
// difference between the worlds.
//
//   WorldComparison c = compare_worlds(scenario, simulate(scenario, o), run_on_gpu(scenario, o, g));
//   world_match_name(c.match);  c.why;  c.worst_ns;
//
//   DIFFER:  verdict sim complete, gpu HANG collective_mismatch
//   unpaced: decisions of r1 on rank 1: sim [register terminate end(completed) schedule(L3 2048)], gpu [register
//            revoke end(revoked) schedule(L3 0)]; a Gloo round of 900 us (modelled 50 us) left the run up to
//            2300 us behind the model's clock
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/gpu_run.h"
#include "run/run.h"
#include "run/scenario.h"

namespace hcsim {

// A run's termination decisions, by (request, rank), in the order each rank made them:
// "register", "skip(REASON CODE)", "revoke", "terminate", "end(STATE)", "schedule(L3 TOKENS)".
using TerminationDecisions = std::map<std::pair<RequestId, int>, std::vector<std::string>>;
TerminationDecisions termination_decisions(const RunResult& r);

enum class WorldMatch : std::uint8_t {
  kSame,     // same verdict, collective and decisions
  kDiffer,   // the worlds disagree: the policy code does not behave the same in both
  kUnpaced,  // same verdict; the rest differs, and the real run lost the model's pace
};
std::string_view world_match_name(WorldMatch m);  // "same", "DIFFER", "unpaced"

struct WorldComparison {
  WorldMatch match = WorldMatch::kSame;
  std::string why;          // the first difference, and the lost pace; empty when the same
  std::string gpu_verdict;  // "complete" or "HANG collective_mismatch"
  bool lost_pace = false;   // the real run fell behind the model's clock, or its I/O outlasted the model
  TimeNs round_ns = 0;      // the measured policy collective round (-1: none completed)
  TimeNs worst_ns = 0;      // the largest difference of a prefetch end or schedule time
};

// `sim` and `gpu` are runs of `scenario` under the same options. A comparison that differs and
// lost the pace may say nothing of the policy: validate runs it again.
WorldComparison compare_worlds(const Scenario& scenario, const RunResult& sim, const GpuRunResult& gpu);

}  // namespace hcsim
