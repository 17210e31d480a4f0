// The trace file (docs/trace-format.md): JSON Lines, a header line then one event per line, as
// written by `hcsim run --record` and read by `hcsim replay` and `hcsim export`.
//
//   {"format":"hcsim-trace","version":1,"scenario_name":"himamba-sidecar-lag","variant":"PRESET+FIX",...}
//   {"t_ns":10700000,"rank":1,"actor":"scheduler","kind":"commit","request":0,"fields":{"prefix_tokens":2048,...}}
//
// Reading is strict and bounded: a malformed line is an error naming the file, line and field; a
// last line cut off mid-way (a killed job) ends the trace there. Nothing in a file is trusted:
// events must be in time order, and a whole file's events must hash to the header's digest.
//
//   t.jsonl:9: t_ns: 1060000 is earlier than line 8's 1080000: a run's events are in time order, so the file was edited or is damaged
//   t.jsonl: the events hash to 67a071075e06d836, the header says 48f6cb7b0bbea0cd: the file was edited or is damaged
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/trace_event.h"
#include "run/event_log.h"
#include "run/recording.h"
#include "run/scenario.h"
#include "run/run.h"

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
  // When the writer kept fewer events than the run had (EventLog keeps the first 2^20): how many the
  // file holds, and their digest. Absent (nullopt) when the file holds every event.
  std::optional<std::uint64_t> file_events;
  std::optional<std::uint64_t> file_digest;
  std::vector<Arrival> arrivals;
  std::vector<Arrival> aborts;
  std::vector<Decision> decisions;  // an explored schedule's (hcsim explore); written only if any
};

class TraceError : public std::runtime_error {
 public:
  TraceError(const std::string& file, std::size_t line, const std::string& field, const std::string& message)
      : std::runtime_error(printable_text(file + ":" + std::to_string(line) + ": " + (field.empty() ? "" : field + ": ") + message)) {}
  // An error about the file as a whole; `message` names it.
  explicit TraceError(const std::string& message) : std::runtime_error(printable_text(message)) {}
};

// The header of a simulated run of `scenario_json` (the scenario file's text) under `variant`.
TraceHeader trace_header_of(const std::string& scenario_json, const Scenario& scenario, const RunResult& run, const std::string& variant);

void write_trace(std::ostream& out, const TraceHeader& header, const EventLog& log);

// How far the events read were checked against the header's count and digest (check_events).
enum class EventsCheck {
  kNotChecked,    // read_trace alone does not check
  kHashed,        // the file holds whole every event it should, and they hash to the header's digest
  kCutOff,        // cut mid-line or past the reader's limit: the digest covers events the file lacks
  kUncheckable,   // an older writer kept only the first 2^20 events and wrote no digest of them
};

struct TraceRead {
  TraceHeader header;
  std::vector<TraceEvent> events;
  std::size_t lines = 0;           // complete lines read, header included
  bool cut_mid_line = false;       // the last line was incomplete (and is not in `events`)
  bool events_capped = false;      // more events than a reader keeps; the rest were not read
  EventsCheck events_check = EventsCheck::kNotChecked;

  // Whether the file is cut off: it ends mid-line, or the reader stopped at its limit.
  bool cut_off() const { return cut_mid_line || events_capped; }
  // The events the file should hold: the run's, or the writer's share of them.
  std::uint64_t events_expected() const { return header.file_events.value_or(header.events); }
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

// The digest EventLog would have after appending `events` (the same function over the same
// fields), so a trace's events can be checked against its header.
std::uint64_t events_digest(const std::vector<TraceEvent>& events);

// Checks the events read against the header's count and digest and sets `events_check`. A whole
// file (not cut mid-line, not past the reader's limit) must hold exactly the events the header
// counts, hashing to its digest: otherwise it was edited or is damaged, a TraceError naming what
// differs. A cut-off file's events are a prefix, which the header's digest cannot check.
void check_events(TraceRead& trace, const std::string& path);

// A trace with the scenario it embeds, each checked against the other, and its events against the
// header (check_events): what replay, export and shrink start from. Errors name `path` (for the
// scenario: "PATH (its scenario)"). kSkip leaves out check_events (for fuzzing what lies behind it).
enum class HashCheck { kRequire, kSkip };
struct CheckedTrace {
  TraceRead trace;
  Scenario scenario;
};
CheckedTrace read_checked_trace(const std::string& path);
CheckedTrace read_checked_trace(std::istream& in, const std::string& path, HashCheck hash = HashCheck::kRequire);

// What a replay feeds the model: arrivals, aborts and each recorded L3 call's duration and result.
Recording recording_of(const TraceRead& trace);

// The index of the first event where `replayed` departs from `recorded` (their common length if
// one is a prefix of the other).
std::size_t first_departure(const std::vector<TraceEvent>& recorded, const std::vector<TraceEvent>& replayed);

// Where a replay under the recorded code departs from a simulated trace's events, and what that
// means. A GPU trace's events are not the model's (only its verdict must match): never a departure.
struct Departure {
  std::size_t index = 0;   // of the first disagreeing event; its line is index + 2
  // At or before the first recorded L3 call (before any returns), where only the embedded scenario
  // and the recorded arrivals and aborts drive the run: the embedded scenario does not produce the
  // events.
  bool before_l3 = false;
  // "PATH: the embedded scenario does not produce the recorded events: ... line 2, ..." or
  // "PATH: the replay under the recorded code departs from the recording at line 40 (...)".
  std::string message(const std::string& path) const;
};
std::optional<Departure> replay_departure(const TraceRead& trace, const std::vector<TraceEvent>& replayed);

// Options that replay `trace` under the code it recorded (its variant, policy and seed), driven by
// `recording`, which must outlive the run.
RunOptions replay_options(const TraceRead& trace, const Recording& recording);

}  // namespace hcsim
