// Hang detection from collectives, actors and time alone (DESIGN.md, "Hangs and their diagnosis"):
//   deadlock             nothing can run, and work is still owed
//   collective mismatch  members entered different (op, size) at one sequence (found by the
//                        matcher at once), or some member has not entered it within a bound
//   starvation           a request waits past a bound while the ranks keep running
//   lost worker          an actor died; whoever waits on it waits forever
#pragma once

#include <optional>
#include <vector>

#include "run/diagnosis.h"
#include "run/world_config.h"

namespace hcsim {

struct WorkItem {
  RequestId request = kNoRequest;
  TimeNs started_ns = 0;
  std::vector<int> ranks_pending;
};

// Per request started (started_ns >= 0), the ranks that have not finished it.
std::vector<WorkItem> owed_work(const std::vector<TimeNs>& started_ns, const std::vector<std::vector<bool>>& finished, int ranks);

// The oldest collective that some members entered and others did not, as a verdict of `kind`.
std::optional<Verdict> oldest_partial_collective(const CollectiveLedger& m, int ranks, TimeNs now_ns, HangKind kind);

// The verdict for the first mismatched sequence: who entered it with what, who did not.
Verdict mismatch_verdict(const CollectiveLedger& m, int ranks);

std::optional<Verdict> check_stalled_collectives(const CollectiveLedger& m, int ranks, TimeNs now_ns,
                                                 const DetectorBounds& bounds);
std::optional<Verdict> check_starvation(const std::vector<WorkItem>& owed, TimeNs now_ns, const DetectorBounds& bounds);
// A verdict of stuck (not mismatched) actors with a dead actor on the scene becomes lost worker:
// whoever waits, waits on a worker that is gone. Needs `v.actors`.
void name_lost_worker(Verdict& v);

Verdict deadlock_verdict(const CollectiveLedger& m, int ranks, TimeNs now_ns, std::size_t work_owed);

}  // namespace hcsim
