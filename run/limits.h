// Limits: how much one input may make the simulator hold or do. A hostile or mistaken scenario,
// workload or trace fails fast with a message naming the limit and how to raise it, instead of
// exhausting memory; a run that would go on forever ends at its event bound with a verdict.
//
//   hcsim: t.jsonl:2041: /input_length: the workload needs more than 67108864 pages
//          (limit pages = 67108864; raise it with --limit pages=N)
//
// The limits are set once at start-up (hcsim --limit NAME=N, before any run or thread) and only
// read afterwards, by the parsers and the world.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hcsim {

enum class Limit : std::uint8_t {
  kPages,      // page keys of every request, plus host pool and preloaded L3 pages over all ranks
  kRequests,   // requests of a scenario, workload or trace
  kRanks,      // the TP size
  kEvents,     // kernel events of one run: reaching it ends the run with a verdict
  kMemoryMib,  // the hcsim process's heap, in MiB (the simulator's commands; 0: no limit)
};
inline constexpr int kLimitCount = 5;

std::string_view limit_name(Limit l);  // "pages", "requests", ...
std::string_view limit_description(Limit l);  // what it bounds, one line
std::int64_t limit_value(Limit l);
std::int64_t limit_default(Limit l);
std::int64_t limit_max(Limit l);  // what the model's types hold: the highest a limit may be raised to

// "NAME=VALUE" (VALUE an integer, or like 1e8): sets that limit. Returns "" or what is wrong.
std::string set_limit(std::string_view assignment);
void reset_limits();  // back to the defaults (tests)

// "(limit pages = 67108864; raise it with --limit pages=N)"
std::string limit_hint(Limit l);

// Counts pages as an input creates them; fails the moment they pass the pages limit, before the
// memory for them is taken. `fail` receives the message and must throw.
class PageBudget {
 public:
  template <typename Fail>
  void charge(std::int64_t pages, Fail&& fail) {
    used_ += pages;
    if (used_ > limit_value(Limit::kPages)) fail(over_message());
  }
  std::int64_t used() const { return used_; }

 private:
  std::string over_message() const;
  std::int64_t used_ = 0;
};

}  // namespace hcsim
