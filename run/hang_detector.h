// Hang detection from collectives, actors and time alone (DESIGN.md, "Hangs and their diagnosis"):
//   deadlock             nothing can run, and work is still owed
//   collective mismatch  members entered different (op, size) at one sequence (found by the
//                        matcher at once), or some member has not entered it within a bound
//   starvation           a request waits past a bound while the ranks keep running
//   lost worker          an actor died; whoever waits on it waits forever
//
// Both worlds try the verdicts in one order (outright_verdict, then bound_verdict, below), so a
// run that is several things at once (mismatched and quiet, say) gets the same verdict in each:
//
//   WorldCheck c{.now_ns = now, .ranks = 2, .collectives = &matcher, .work = &ledger, .bounds = &b};
//   c.none_runnable = queue_empty;
//   if (auto v = outright_verdict(c)) return *v;   // mismatch, watchdog, complete, deadlock, event bound
//   if (auto v = bound_verdict(c)) return *v;      // stalled collective, starvation, horizon
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "run/diagnosis.h"
#include "run/work_ledger.h"
#include "run/world_config.h"

namespace hcsim {

// The oldest collective that some members entered and others did not, as a verdict of `kind`.
std::optional<Verdict> oldest_partial_collective(const CollectiveLedger& m, TimeNs now_ns, HangKind kind);

// The verdict for the first mismatched sequence: who entered it with what, who did not.
Verdict mismatch_verdict(const CollectiveLedger& m);

std::optional<Verdict> check_stalled_collectives(const CollectiveLedger& m, TimeNs now_ns,
                                                 const DetectorBounds& bounds);
std::optional<Verdict> check_starvation(const std::vector<WorkItem>& owed, TimeNs now_ns, const DetectorBounds& bounds);
// A verdict of stuck (not mismatched) actors with a dead actor on the scene becomes lost worker:
// whoever waits, waits on a worker that is gone. Needs `v.actors`.
void name_lost_worker(Verdict& v);

Verdict deadlock_verdict(const CollectiveLedger& m, TimeNs now_ns, std::size_t work_owed);

// What a world saw at one check. The world does its own mechanics first (the simulator lets
// ranks settle after a mismatch and drains at quiescence; the watchdog waits out its bounds), then
// asks which verdict, if any, the check declares. The verdicts' texts are made here and nowhere else.
struct WorldCheck {
  TimeNs now_ns = 0;
  int ranks = 0;
  const CollectiveLedger* collectives = nullptr;  // required, except by bound_verdict without stall_bound
  const WorkLedger* work = nullptr;               // required
  const DetectorBounds* bounds = nullptr;         // required
  TimeNs quiet_since_ns = -1;   // >= 0: every request done on every rank, no arrival left, drained:
                                // the run completed as of this time
  bool watchdog_fired = false;  // the real world's watchdog found it stuck (a bound passed, or its
                                // transport failed)
  bool none_runnable = false;   // no actor can run again (the simulator's queue ran empty)
  std::uint64_t event_bound_reached = 0;  // > 0: the run stopped at this bound of events
  bool stall_bound = true;      // false: the world's watchdog bounds open collectives, not collective_stall_ns
};

// In this order: a collective mismatch; the watchdog's stuck world (a collective some rank never
// entered, else a deadlock); completion; a deadlock (nothing runnable); the event bound.
std::optional<Verdict> outright_verdict(const WorldCheck& c);
// In this order: a collective stalled past its bound; a request starved past its bound; the horizon.
std::optional<Verdict> bound_verdict(const WorldCheck& c);

}  // namespace hcsim
