// explore(): the schedules a scenario allows, searched systematically instead of by seed. A
// schedule is a sequence of decisions (run/choices.h): which of one rank's same-instant events runs
// first, and which delay each L3 call matching an explore.late rule gets. The default schedule takes
// the first alternative everywhere; a deviation is any other choice.
//
// The search is breadth-first in deviations. Level 0 is the default schedule; level k extends every
// level k-1 schedule by one deviation after its last one. So each schedule with at most
// `deviations_max` deviations runs once, and the first failure found has the fewest deviations.
// Each run is a fresh simulation following its decisions (the simulator is deterministic).
// A run stops early when it reaches a state already reached with no more deviations: both runs have
// the same future. A state is the instant, every actor's wait and each rank's event history.
//
//   ExploreResult r = explore(scenario, options, {.deviations_max = 2});
//   r.counterexample ? "hang after N deviations" : "none within the bound: r.schedules schedules, r.states states";
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "run/choices.h"
#include "sim/simulation.h"

namespace hcsim {

struct ExploreBounds {
  int deviations_max = 2;               // choices other than the first, per schedule
  int depth_max = 4096;                 // decision points per schedule open to deviation; later ones take the first
  std::int64_t schedules_max = 100'000; // runs, over all levels
  double seconds_max = 0;               // wall time; 0: none. The one bound whose answer depends on the machine
};

struct Counterexample {
  std::vector<Decision> decisions;  // the whole schedule, to its end
  int deviations = 0;
  RunResult result;
};

struct ExploreResult {
  std::int64_t schedules = 0;        // runs made, pruned ones included
  std::int64_t pruned = 0;           // runs stopped at a state already reached
  std::int64_t states = 0;           // distinct states at decision points
  std::int64_t decision_points_max = 0;  // in one schedule
  int deviations_done = -1;          // every schedule with at most this many deviations ran (-1: not the default one)
  bool schedules_cut = false;        // schedules_max or seconds_max stopped the search
  bool time_cut = false;             // seconds_max did
  bool exhausted = false;            // no schedule deviates more than deviations_done: all were searched
  bool depth_cut = false;            // a schedule had more decision points than depth_max
  std::optional<Counterexample> counterexample;  // a hang or a broken invariant, fewest deviations
};

// A run's failure, as explore looks for it: a hang, or an invariant the run broke.
bool run_fails(const RunResult& r);

// `fails` says what counts as a failure: run_fails, or only one hang kind, say.
// `progress`, if given, hears the number of schedules run so far after each run.
ExploreResult explore(const Scenario& scenario, const RunOptions& options, const ExploreBounds& bounds,
                      const std::function<bool(const RunResult&)>& fails = run_fails,
                      const std::function<void(std::int64_t)>& progress = {});

}  // namespace hcsim
