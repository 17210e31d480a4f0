// Workloads: a generated or replayed request stream that replaces a scenario's hand-written
// requests (docs/workloads.md). A workload is JSON, validated as strictly as a scenario:
//
//   {"kind": "poisson", "requests": 200, "rate_per_s": 50, "input_tokens": [1024, 8192],
//    "prefixes": 4, "shared_prefix_tokens": 2048, "seed": 7}
//   -> r0 .. r199, Poisson arrivals at 50/s; each request starts with one of 4 shared
//      2048-token prefixes (32 shared page keys at page 64), the rest of its input its own
//
// A bad Mooncake trace line is named by file, line and field:
//
//   traces/t.jsonl:17: /hash_ids: expected ceil(input_length/512) = 3 ids; got 2
#pragma once

#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "policy/request.h"
#include "run/scenario.h"

namespace hcsim {

inline constexpr std::int32_t kWorkloadInputTokensMax = 1 << 24;  // as a scenario's input_tokens
inline constexpr std::int32_t kMooncakeBlockTokens = 512;
inline constexpr std::int32_t kMooncakeRepeatMax = 64;

// Poisson arrivals; each request's input opens with one of `prefixes` shared prefixes.
struct PoissonWorkload {
  std::int32_t requests = 0;
  double rate_per_s = 0.0;
  std::int32_t input_tokens_lo = 0;  // per request, uniform in [lo, hi]
  std::int32_t input_tokens_hi = 0;
  std::int32_t prefixes = 0;         // each request picks one, uniformly
  std::int32_t shared_prefix_tokens = 0;
  std::uint64_t seed = 1;
};

// Multi-turn conversations: turn k's input is turns 0..k's new tokens, so turns share a growing
// prefix. Open loop: turn k+1 arrives think_time_ns after turn k.
struct ConversationWorkload {
  std::int32_t conversations = 0;
  std::int32_t turns_lo = 0;  // per conversation, uniform in [lo, hi]
  std::int32_t turns_hi = 0;
  TimeNs think_time_ns = 0;   // also bounds each conversation's start, uniform in [0, think_time_ns]
  std::int32_t turn_tokens_lo = 0;  // new tokens per turn, uniform in [lo, hi]
  std::int32_t turn_tokens_hi = 0;
  std::uint64_t seed = 1;
};

// A Mooncake trace (JSON Lines): {"timestamp": ms, "input_length": tokens, "output_length": tokens,
// "hash_ids": [one prefix hash per 512-token block]}.
struct MooncakeWorkload {
  std::string path;         // relative paths are resolved against apply_workload's base_dir
  std::int32_t limit = 0;   // the first `limit` requests of the file; 0: all
  std::int32_t repeat = 1;  // plays those requests this many times, one copy after another (generate_requests)
};

struct WorkloadSpec {
  std::string source;   // the file the spec came from, for errors
  std::string pointer;  // the spec's JSON pointer within `source`; "" for a whole file
  std::variant<PoissonWorkload, ConversationWorkload, MooncakeWorkload> kind;
  std::int64_t l3_capacity_pages = 0;  // per rank; 0: unbounded (StorageConfig::kv_capacity_pages)
};

// Parsing. Every error is a ScenarioError naming the source and the JSON pointer.
WorkloadSpec parse_workload(const std::string& text, const std::string& source);
WorkloadSpec read_workload(const nlohmann::json& doc, const std::string& source, const std::string& pointer);
WorkloadSpec load_workload_file(const std::string& path);

// One line: "poisson: 200 requests at 50/s, input [1024, 8192] tokens, 4 prefixes of 2048 tokens, seed 7".
std::string describe(const WorkloadSpec& w);

// The requests of `w` at `page_size_tokens` (which divides 1024): named r0, r1, ... and with
// ids 0, 1, ... in order of arrival (stable). Deterministic in the spec (and the trace file).
//
// A Mooncake trace with "repeat": N is played N times, as a longer trace of the same statistics:
// copy k (0 <= k < N) arrives k periods after copy 0, a period being the trace's span plus one mean
// gap between arrivals, and holds documents of its own (no page key of another copy). Copy 0 is the
// trace as without repeat; copy k's requests are named r(k*n) .. r(k*n + n - 1) for n per copy:
//
//   3 requests at 0, 2 and 4 ms, "repeat": 2  ->  r0..r2 at 0, 2, 4 ms; r3..r5 at 6, 8, 10 ms
std::vector<RequestSpec> generate_requests(const WorkloadSpec& w, std::int32_t page_size_tokens, const std::string& base_dir);

// The requests of a Mooncake trace: the first `limit` lines' (blank lines aside), or all when
// `limit` is 0. Errors name "path:line".
std::vector<RequestSpec> load_mooncake_trace(const std::string& path, std::int32_t page_size_tokens, std::int32_t limit = 0);
std::vector<RequestSpec> load_mooncake_trace(std::istream& in, const std::string& path, std::int32_t page_size_tokens, std::int32_t limit = 0);

// The keys of the full pages of an input of `input_tokens` with Mooncake `hash_ids`. A page's key
// chains every block id up to and including its own blocks: equal id prefixes give equal keys.
std::vector<PageKey> mooncake_page_keys(std::span<const std::uint64_t> hash_ids, std::int32_t input_tokens,
                                        std::int32_t page_size_tokens);

// Replaces the scenario's requests with `w`'s. L3 starts empty and fills by write-through (which is
// switched on), holding at most w.l3_capacity_pages per rank. What named the old requests goes:
// request-scoped delay and jitter rules, and the expectations. The horizon grows to cover the last
// arrival plus the starvation bound.
void apply_workload(Scenario& s, const WorkloadSpec& w, const std::string& base_dir);

}  // namespace hcsim
