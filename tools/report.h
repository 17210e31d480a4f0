// Human and JSON reports of one simulated run.
#pragma once

#include <iosfwd>
#include <optional>
#include <vector>
#include <string>

#include <nlohmann/json.hpp>

#include "run/scenario.h"
#include "sim/simulation.h"

namespace hcsim {

struct RunLabel {
  std::string variant;  // what the user asked for: "pre-fix", "seed-fix+sidecar-hit-sync"
  double wall_ms = 0.0;
};

std::string format_ms(TimeNs t);
std::string collective_line(const Verdict& v);
// One event as a line: "10.700 ms rank 1 scheduler commit request 0 prefix_tokens=2048 ...".
std::string format_event(const TraceEvent& e);

void print_report(std::ostream& out, const Scenario& s, const RunResult& r, const RunLabel& label);
nlohmann::json report_json(const Scenario& s, const RunResult& r, const RunLabel& label);

// The first point where ranks disagree on what they published for a request, or "" if none.
std::string rank_divergence(const RunResult& r, const Scenario& s);

// Where a divergence or hang began: the earliest fact (an allocation, a hit its store reported, what
// a read returned) that differed between the ranks before the step where they parted, or before
// the hang. That is where an engineer starts reading code.
//
//   origin     request R at 11.400 ms, the first fact that differed between ranks:
//       rank 0: sidecar_done hit_pages=1 at 11.400 ms
//       rank 1: nothing yet (its sidecar_done came at 499.312 ms)
struct Origin {
  RequestId request = kNoRequest;
  TimeNs at_ns = 0;
  std::vector<const TraceEvent*> facts;  // per rank: its fact at that step, or null (none yet); in the run's log
};
// The origin points into `r`'s log: it is valid while `r` lives.
std::optional<Origin> divergence_origin(const RunResult& r);
std::string origin_text(const Origin& o, const RunResult& r, const Scenario& s);

}  // namespace hcsim
