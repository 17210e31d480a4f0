// Seed sweeps: one scenario and variant over many seeds, each run drawing the scenario's declared
// perturbations from its seed, in parallel; results come back in seed order, so the summary does
// not depend on the number of threads.
//
//   SeedSweep s = sweep_seeds(scenario, options, /*first_seed=*/1, /*count=*/1000, /*jobs=*/2);
//   s.hangs; wilson_interval(s.hangs, s.runs.size()); s.first_failing_seed;
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/simulation.h"

namespace hcsim {

struct SeedRun {
  std::uint64_t seed = 0;
  HangKind kind = HangKind::kNone;
  TimeNs at_ns = 0;
  std::vector<std::string> violated;
  std::uint64_t digest = 0;
  std::int64_t l3_lost_tokens = 0;  // agreed L3 hits not published (RunResult::l3_lost_tokens)
};

struct SeedSweep {
  std::vector<SeedRun> runs;                          // in seed order
  std::int64_t hangs = 0;
  std::int64_t runs_with_violations = 0;
  std::map<std::string, std::int64_t> hang_kinds;     // kind -> runs
  std::map<std::string, std::int64_t> violations;     // invariant -> runs that broke it
  std::int64_t runs_with_l3_loss = 0;
  std::int64_t l3_lost_tokens = 0;                    // over every run
  std::optional<std::uint64_t> first_l3_loss_seed;
  std::optional<std::uint64_t> first_hang_seed;
  std::optional<std::uint64_t> first_failing_seed;    // a hang or a broken invariant
  double wall_s = 0;
};

// `progress`, if given, is called on the calling thread with the runs finished so far, after each
// of its own runs and once at the end.
SeedSweep sweep_seeds(const Scenario& scenario, const RunOptions& options, std::uint64_t first_seed, std::int64_t count, int jobs,
                      const std::function<void(std::int64_t)>& progress = {});

struct Interval {
  double low = 0;
  double high = 0;
};
// The 95% Wilson score interval of a proportion `k` of `n` (n > 0).
Interval wilson_interval(std::int64_t k, std::int64_t n);

}  // namespace hcsim
