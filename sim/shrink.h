// shrink(): the smallest scenario found that still fails the same way: the same hang kind, at a
// collective of the same group and operations. Greedy delta debugging over the scenario's JSON, a
// run per candidate:
//   - drop requests (halves first, then one at a time), delay and jitter rules, L3 contents,
//     perturbations, explore rules;
//   - fewer ranks (rank lists clamped to the new TP);
//   - smaller numbers: input tokens, L3 pages, delays, arrival times;
//   - smaller random choices: each perturbation range [lo, hi] narrowed toward lo, so the draws a
//     seed makes from it shrink with it (per rule, not per draw: the result stays a scenario).
// Every pass repeats until none helps, within a bound on runs. Candidates the scenario reader
// refuses are skipped. Each step kept is reported, so the user sees what did not matter.
//
//   ShrinkResult r = shrink(scenario_json, "trace.jsonl (its scenario)", options, {.runs_max = 2000});
//   r.steps: "tp 4 -> 2", "requests: dropped r1", "/delays/0/fixed_us 488000 -> 1907"
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/simulation.h"

namespace hcsim {

// What "fails the same way" compares: the hang kind, and for a collective verdict its group and
// the operations its members entered.
struct FailureSignature {
  HangKind kind = HangKind::kNone;
  bool has_collective = false;
  Group group = Group::kTp;
  std::vector<CollectiveOp> ops;  // sorted, distinct

  bool operator==(const FailureSignature&) const = default;
};
FailureSignature signature_of(const RunResult& r);
std::string describe(const FailureSignature& s);  // "collective_mismatch at tp_cpu_group (forward)"

struct ShrinkBounds {
  std::int64_t runs_max = 2000;
};

struct ShrinkResult {
  nlohmann::json scenario;          // the smallest failing scenario found, with one expectation: the failure
  FailureSignature signature;
  std::vector<std::string> steps;   // each reduction kept, in order
  std::int64_t runs = 0;
  bool runs_cut = false;            // runs_max stopped it before no pass helped
  RunResult result;                 // the shrunk scenario's run
};

// `scenario` must fail under `options` (a ScenarioError says so otherwise). `source` names it in errors.
ShrinkResult shrink(const nlohmann::json& scenario, const std::string& source, const RunOptions& options, const ShrinkBounds& bounds);

}  // namespace hcsim
