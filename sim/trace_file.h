// The trace file (docs/trace-format.md): JSON Lines, a header line then one event per line, as
// written by `hcsim run --record` and read by `hcsim replay` and `hcsim export`.
//
//   {"format":"hcsim-trace","version":1,"scenario_name":"himamba-sidecar-lag","variant":"PRESET+FIX",...}
//   {"t_ns":10700000,"rank":1,"actor":"scheduler","kind":"commit","request":0,"fields":{"prefix_tokens":2048,...}}
//
// Reading is strict and bounded: a malformed line is an error naming the file, line and field; a
// last line cut off mid-way (a killed job) ends the trace there.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/trace_event.h"
#include "sim/event_log.h"
#include "sim/recording.h"
#include "sim/scenario.h"
#include "sim/simulation.h"

namespace hcsim {

inline constexpr int kTraceFormatVersion = 1;

struct TraceHeader {
  std::string scenario_json;  // the scenario the run was made from, verbatim
  std::string scenario_name;
  std::string variant;        // PRESET[+FIX|~FIX]...
  std::string policy;
  std::uint64_t seed = 0;
  std::string build;
  std::string world = "sim";  // "sim" or "gpu"
  std::uint64_t events = 0;   // events the run had (the file may hold fewer: cut off)
  std::string verdict;        // "complete" or a hang kind
  TimeNs verdict_at_ns = 0;
  std::uint64_t log_hash = 0; // the run's event-log digest
  std::vector<Arrival> arrivals;
  std::vector<Arrival> aborts;
  std::vector<Decision> decisions;  // an explored schedule's (hcsim explore); written only if any
};

class TraceError : public std::runtime_error {
 public:
  TraceError(const std::string& file, std::size_t line, const std::string& field, const std::string& message)
      : std::runtime_error(printable_text(file + ":" + std::to_string(line) + ": " + (field.empty() ? "" : field + ": ") + message)) {}
};

// The header of a simulated run of `scenario_json` (the scenario file's text) under `variant`.
TraceHeader trace_header_of(const std::string& scenario_json, const Scenario& scenario, const RunResult& run, const std::string& variant);

void write_trace(std::ostream& out, const TraceHeader& header, const EventLog& log);

struct TraceRead {
  TraceHeader header;
  std::vector<TraceEvent> events;
  std::size_t lines = 0;           // complete lines read, header included
  bool cut_mid_line = false;       // the last line was incomplete (and is not in `events`)
  bool events_capped = false;      // more events than a reader keeps; the rest were not read
};

inline constexpr std::size_t kTraceHeaderBytesMax = std::size_t{32} << 20;
inline constexpr std::size_t kTraceLineBytesMax = std::size_t{1} << 20;
inline constexpr std::size_t kTraceEventsMax = std::size_t{1} << 21;

TraceRead read_trace(const std::string& path);
TraceRead read_trace(std::istream& in, const std::string& path);  // `path` names it in errors

// Checks what a trace says against the scenario it embeds (request ids, ranks, L3 call fields,
// the variant and policy), so nothing out of range reaches the model: an error names file, line
// and field.
void check_against(const TraceRead& trace, int ranks, std::size_t requests, TimeNs horizon_ns, const std::string& path);

// A trace with the scenario it embeds, each checked against the other: what replay, export and
// shrink start from. Errors name `path` (for the scenario: "PATH (its scenario)").
struct CheckedTrace {
  TraceRead trace;
  Scenario scenario;
};
CheckedTrace read_checked_trace(const std::string& path);
CheckedTrace read_checked_trace(std::istream& in, const std::string& path);

// What a replay feeds the model: arrivals, aborts and each recorded L3 call's duration and result.
Recording recording_of(const TraceRead& trace);

// The index of the first event where `replayed` departs from `recorded` (their common length if
// one is a prefix of the other).
std::size_t first_departure(const std::vector<TraceEvent>& recorded, const std::vector<TraceEvent>& replayed);

// Options that replay `trace` under the code it recorded (its variant, policy and seed), driven by
// `recording`, which must outlive the run.
RunOptions replay_options(const TraceRead& trace, const Recording& recording);

}  // namespace hcsim
