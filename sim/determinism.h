// check_determinism(): runs the same simulation twice, side by side on two threads, and compares
// them event by event as they happen. On the first difference it names the event's index, both
// versions and the events both runs had just before it, in the spirit of madsim's determinism
// check; a digest mismatch alone would only say that the runs differ somewhere.
//
//   DeterminismReport d = check_determinism([&](EventTap* tap) {
//     RunOptions o = options;
//     o.tap = tap;
//     return simulate(scenario, o);
//   });
//   d.same();  // event 1532 differs: run 1 has t=10.700ms rank 1 ..., run 2 has ...
//
// Memory stays bounded whatever the run's length: the first run is at most a few chunks of events
// ahead of the second, and nothing else is kept but the last few events they agreed on.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "policy/trace_event.h"
#include "sim/simulation.h"

namespace hcsim {

struct DeterminismReport {
  std::uint64_t events_compared = 0;  // events both runs had, identical, before any difference
  // The first event that differs, by index from 0; a run that ended there has nullopt.
  std::optional<std::uint64_t> first_difference;
  std::optional<TraceEvent> first_run_event;
  std::optional<TraceEvent> second_run_event;
  std::deque<TraceEvent> agreed_before;  // the last events both runs had before the difference
  // The events agree but the results do not (verdict, digest, invariants): what differs, else "".
  std::string result_difference;
  std::uint64_t digest = 0;  // the first run's event-log digest

  bool same() const { return !first_difference && result_difference.empty(); }
};

// `run_once` must run the same simulation every time, feeding every event to the tap it is given.
// It is called once on a second thread and once on the calling one, at the same time.
using RunOnce = std::function<RunResult(EventTap* tap)>;
DeterminismReport check_determinism(const RunOnce& run_once);

// The number of agreed events a report keeps before the first difference.
inline constexpr std::size_t kDeterminismContextEvents = 8;

}  // namespace hcsim
