#include "run/workload.h"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "policy/assert.h"
#include "run/input_file.h"
#include "run/json_node.h"
#include "run/line_reader.h"
#include "run/random.h"

namespace hcsim {

namespace {

using nlohmann::json;

constexpr double kArrivalMsMax = 86'400'000.0;  // one day, as a scenario's arrival_us
constexpr TimeNs kArrivalNsMax = static_cast<TimeNs>(kArrivalMsMax) * 1'000'000;
// A line of the longest input (2^24 tokens: 32768 ids of up to 20 digits) fits with room to spare.
constexpr std::size_t kTraceLineBytesMax = std::size_t{4} << 20;
constexpr std::string_view kTraceLineExample =
    "one JSON object per line, like {\"timestamp\": 0, \"input_length\": 1024, \"output_length\": 16, \"hash_ids\": [7, 8]}";

std::uint64_t read_seed(const JsonNode& spec) {
  auto v = spec.find("seed");
  return v ? static_cast<std::uint64_t>(v->integer(0, std::numeric_limits<std::int64_t>::max())) : 1;
}

PoissonWorkload read_poisson(const JsonNode& n) {
  n.object({"kind", "requests", "rate_per_s", "input_tokens", "prefixes", "shared_prefix_tokens", "seed", "l3_capacity_pages"});
  PoissonWorkload p;
  p.requests = static_cast<std::int32_t>(n.at("requests").limited_integer(1, Limit::kRequests, "requests"));
  p.rate_per_s = n.at("rate_per_s").number(1e-6, 1e9);
  std::tie(p.input_tokens_lo, p.input_tokens_hi) = n.at("input_tokens").int_range(1, kWorkloadInputTokensMax);
  p.prefixes = static_cast<std::int32_t>(n.at("prefixes").integer(1, 1 << 20));
  p.shared_prefix_tokens = static_cast<std::int32_t>(n.at("shared_prefix_tokens").integer(0, kWorkloadInputTokensMax));
  p.seed = read_seed(n);
  return p;
}

ConversationWorkload read_conversations(const JsonNode& n) {
  n.object({"kind", "conversations", "turns", "think_time_ms", "turn_tokens", "seed", "l3_capacity_pages"});
  ConversationWorkload c;
  c.conversations = static_cast<std::int32_t>(n.at("conversations").limited_integer(1, Limit::kRequests, "conversations"));
  const JsonNode turns = n.at("turns");
  std::tie(c.turns_lo, c.turns_hi) = turns.int_range(1, static_cast<std::int32_t>(limit_value(Limit::kRequests)));
  turns.within(Limit::kRequests, std::int64_t{c.conversations} * c.turns_hi, "requests (conversations x turns[1])");
  const JsonNode think = n.at("think_time_ms");
  const double think_ms = think.number(0.0, kArrivalMsMax);
  if (think_ms * c.turns_hi > kArrivalMsMax) think.fail("expected turns[1] x think_time_ms within one day (86400000 ms)");
  c.think_time_ns = static_cast<TimeNs>(std::llround(think_ms * 1e6));
  const JsonNode tokens = n.at("turn_tokens");
  std::tie(c.turn_tokens_lo, c.turn_tokens_hi) = tokens.int_range(1, kWorkloadInputTokensMax);
  if (std::int64_t{c.turns_hi} * c.turn_tokens_hi > kWorkloadInputTokensMax) {
    tokens.fail("turns[1] x turn_tokens[1] = " + std::to_string(std::int64_t{c.turns_hi} * c.turn_tokens_hi) +
                " input tokens for a last turn; expected at most " + std::to_string(kWorkloadInputTokensMax));
  }
  c.seed = read_seed(n);
  return c;
}

MooncakeWorkload read_mooncake(const JsonNode& n) {
  n.object({"kind", "path", "limit", "repeat", "l3_capacity_pages"});
  MooncakeWorkload m;
  m.path = n.at("path").str();
  if (m.path.empty()) n.at("path").fail("expected a non-empty path");
  // Public traces live outside the checkout, wherever a machine keeps them: a spec names them
  // through the variable instead of a path that holds on one machine only.
  const std::string_view traces_var = "$HCSIM_TRACES/";
  if (m.path.starts_with(traces_var)) {
    const char* dir = std::getenv("HCSIM_TRACES");
    if (dir == nullptr || *dir == '\0') {
      n.at("path").fail("names $HCSIM_TRACES, which is not set; set it to the folder holding the trace, e.g. "
                        "HCSIM_TRACES=../shared/traces-public");
    }
    // As any path in the environment, relative to the working directory, not to the spec.
    m.path = (std::filesystem::absolute(dir) / m.path.substr(traces_var.size())).string();
  }
  if (auto v = n.find("limit")) m.limit = static_cast<std::int32_t>(v->integer(1, limit_max(Limit::kRequests)));
  if (auto v = n.find("repeat")) m.repeat = static_cast<std::int32_t>(v->integer(1, kMooncakeRepeatMax));
  return m;
}

// Page keys: each key absorbs the one before it (so it depends on the whole prefix), the content
// it holds (a prefix, a request's own tokens, a Mooncake block) and its place within that content.
std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

PageKey chain_key(PageKey previous, std::uint64_t content, std::uint64_t index) {
  return mix64(mix64(mix64(previous) ^ content) ^ index);
}

// Appends pages [keys.size(), pages) of a chain whose content is `content` from page `first`.
void extend_chain(std::vector<PageKey>& keys, PageKey root, std::uint64_t content, std::size_t first, std::size_t pages) {
  HCSIM_ASSERT(first <= keys.size());
  keys.reserve(pages);
  for (std::size_t i = keys.size(); i < pages; ++i) keys.push_back(chain_key(i == 0 ? root : keys[i - 1], content, i - first));
}

// Content ids of generated workloads: distinct per kind, seed and item.
std::uint64_t content_id(std::string_view kind, std::uint64_t seed, std::uint64_t item) {
  return mix64(mix64(fnv1a64(kind) ^ seed) ^ item);
}

std::vector<RequestSpec> poisson_requests(const PoissonWorkload& p, std::int32_t page_size_tokens, const std::string& source,
                                          const std::string& pointer) {
  RandomStream gaps(p.seed, "workload/poisson/arrival");
  RandomStream lengths(p.seed, "workload/poisson/input_tokens");
  RandomStream picks(p.seed, "workload/poisson/prefix");
  const PageKey root = fnv1a64("workload/poisson");
  // Each picked prefix's pages, computed once: no more prefixes than requests are ever held.
  const auto shared_pages_max = static_cast<std::size_t>(p.shared_prefix_tokens / page_size_tokens);
  std::map<std::size_t, std::vector<PageKey>> prefix_keys;
  PageBudget budget;
  std::vector<RequestSpec> out;
  out.reserve(static_cast<std::size_t>(p.requests));
  double arrival_s = 0.0;
  for (std::int32_t r = 0; r < p.requests; ++r) {
    arrival_s += -std::log1p(-gaps.next_unit()) / p.rate_per_s;  // exponential gaps: Poisson arrivals
    const TimeNs arrival_ns = static_cast<TimeNs>(std::llround(arrival_s * 1e9));
    if (arrival_s * 1e9 > static_cast<double>(kArrivalNsMax)) {
      throw ScenarioError(source, pointer + "/rate_per_s",
                          "request " + std::to_string(r) + " of " + std::to_string(p.requests) + " would arrive after one day; raise the rate");
    }
    RequestSpec req;
    req.arrival_ns = arrival_ns;
    req.input_tokens = static_cast<std::int32_t>(lengths.uniform_ns(p.input_tokens_lo, p.input_tokens_hi));
    const auto prefix = static_cast<std::size_t>(picks.uniform_ns(0, p.prefixes - 1));
    const auto pages = static_cast<std::size_t>(req.input_tokens / page_size_tokens);
    const auto over = [&](const std::string& m) {
      throw ScenarioError(source, pointer + "/requests", "request " + std::to_string(r) + " makes " + m);
    };
    budget.charge(static_cast<std::int64_t>(pages), over);
    auto [keys, fresh] = prefix_keys.try_emplace(prefix);
    if (fresh) budget.charge(static_cast<std::int64_t>(shared_pages_max), over);
    if (fresh) extend_chain(keys->second, root, content_id("poisson/prefix", p.seed, prefix), 0, shared_pages_max);
    // The input's first min(input, shared) tokens are the prefix's; a page across the end of the
    // prefix holds the request's own tokens too, so it is the request's own.
    const auto shared_pages = static_cast<std::size_t>(std::min(req.input_tokens, p.shared_prefix_tokens) / page_size_tokens);
    req.pages.assign(keys->second.begin(), keys->second.begin() + static_cast<std::ptrdiff_t>(shared_pages));
    extend_chain(req.pages, root, content_id("poisson/request", p.seed, static_cast<std::uint64_t>(r)), shared_pages, pages);
    out.push_back(std::move(req));
  }
  return out;
}

std::vector<RequestSpec> conversation_requests(const ConversationWorkload& c, std::int32_t page_size_tokens, const std::string& source,
                                               const std::string& pointer) {
  RandomStream starts(c.seed, "workload/conversations/start");
  RandomStream turn_counts(c.seed, "workload/conversations/turns");
  RandomStream turn_lengths(c.seed, "workload/conversations/turn_tokens");
  const PageKey root = fnv1a64("workload/conversations");
  std::vector<RequestSpec> out;
  PageBudget budget;
  for (std::int32_t conv = 0; conv < c.conversations; ++conv) {
    const TimeNs start_ns = starts.uniform_ns(0, c.think_time_ns);
    const auto turns = static_cast<std::int32_t>(turn_counts.uniform_ns(c.turns_lo, c.turns_hi));
    // One token stream per conversation; turn k's input is its first `input_tokens` tokens.
    std::vector<PageKey> stream_keys;
    const std::uint64_t content = content_id("conversation", c.seed, static_cast<std::uint64_t>(conv));
    std::int32_t input_tokens = 0;
    for (std::int32_t turn = 0; turn < turns; ++turn) {
      input_tokens += static_cast<std::int32_t>(turn_lengths.uniform_ns(c.turn_tokens_lo, c.turn_tokens_hi));
      HCSIM_ASSERT(input_tokens <= kWorkloadInputTokensMax);  // parse bounds turns x turn_tokens
      const auto pages = static_cast<std::size_t>(input_tokens / page_size_tokens);
      budget.charge(static_cast<std::int64_t>(pages), [&](const std::string& m) {
        throw ScenarioError(source, pointer + "/turn_tokens", "conversation " + std::to_string(conv) + " turn " + std::to_string(turn) + " makes " + m);
      });
      extend_chain(stream_keys, root, content, 0, pages);
      RequestSpec req;
      req.arrival_ns = start_ns + turn * c.think_time_ns;
      req.input_tokens = input_tokens;
      req.pages.assign(stream_keys.begin(), stream_keys.begin() + static_cast<std::ptrdiff_t>(pages));
      out.push_back(std::move(req));
    }
  }
  HCSIM_ASSERT(out.size() <= static_cast<std::size_t>(limit_value(Limit::kRequests)));
  return out;
}

// Orders by arrival (stable) and names: ids 0, 1, ...; names r0, r1, ...
void number_requests(std::vector<RequestSpec>& requests) {
  std::stable_sort(requests.begin(), requests.end(), [](const RequestSpec& a, const RequestSpec& b) { return a.arrival_ns < b.arrival_ns; });
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i].id = static_cast<RequestId>(i);
    requests[i].name = 'r' + std::to_string(i);
    HCSIM_ASSERT(requests[i].input_tokens >= 1 && requests[i].arrival_ns >= 0);
  }
}

std::string resolve(const std::string& path, const std::string& base_dir) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / p).string();
}

bool blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; });
}

// One trace line, as a request without its id and name.
RequestSpec read_trace_line(std::string_view line, const std::string& path, std::int64_t line_no, std::int32_t page_size_tokens,
                            std::vector<std::uint64_t>& hash_ids, PageBudget& budget) {
  const std::string where = path + ":" + std::to_string(line_no);
  const json doc = parse_json(line, where, kTraceLineExample);
  const JsonNode n(doc, where, "");
  n.object({"timestamp", "input_length", "output_length", "hash_ids"});
  RequestSpec req;
  req.arrival_ns = static_cast<TimeNs>(std::llround(n.at("timestamp").number(0.0, kArrivalMsMax) * 1e6));
  const JsonNode input_length = n.at("input_length");
  req.input_tokens = static_cast<std::int32_t>(input_length.integer(1, kWorkloadInputTokensMax));
  budget.charge(req.input_tokens / page_size_tokens, [&](const std::string& m) { input_length.fail("the trace up to here makes " + m); });
  (void)n.at("output_length").integer(0, kWorkloadInputTokensMax);  // the model generates no tokens; checked all the same
  const JsonNode ids = n.at("hash_ids");
  if (!ids.raw().is_array()) ids.expected("an array of block hash ids");
  const std::size_t blocks = static_cast<std::size_t>((req.input_tokens + kMooncakeBlockTokens - 1) / kMooncakeBlockTokens);
  if (ids.raw().size() != blocks) {
    ids.fail("expected ceil(input_length/" + std::to_string(kMooncakeBlockTokens) + ") = " + std::to_string(blocks) + " ids; got " +
             std::to_string(ids.raw().size()));
  }
  hash_ids.clear();
  for (std::size_t i = 0; i < blocks; ++i) {
    const json& id = ids.raw()[i];
    // JsonNode objects only on failure: a trace holds hundreds of thousands of ids.
    if (!id.is_number_unsigned()) JsonNode(id, where, "/hash_ids/" + std::to_string(i)).expected("a non-negative integer block hash id");
    hash_ids.push_back(id.get<std::uint64_t>());
  }
  req.pages = mooncake_page_keys(hash_ids, req.input_tokens, page_size_tokens);
  return req;
}

// Plays a trace's requests (`trace`, numbered) `repeat` times, as a longer trace of the same
// statistics would hold them. Copy k's arrivals are copy 0's plus k periods. A period is the span
// (last arrival - first) plus one mean gap, span / (n - 1): copy k opens one mean gap after copy
// k - 1 closes, so the arrival rate over the whole stream stays the trace's own, n per n gaps (a
// period of "last arrival + one gap" would add the first arrival to every seam). Where the mean
// gap is zero (one request, or all at one instant) the copies come 1 ms apart, a trace timestamp's
// unit. Copy k's page keys are copy 0's through a bijection of the key space of its own: pages
// equal within copy 0 are equal within copy k, and no copy shares a page with another (short of a
// 64-bit collision, as between any two keys). The requests limit bounds the total after repetition.
void repeat_trace(std::vector<RequestSpec>& trace, std::int32_t repeat, const std::string& source, const std::string& pointer) {
  HCSIM_ASSERT(repeat >= 1 && repeat <= kMooncakeRepeatMax);
  HCSIM_ASSERT(!trace.empty());
  if (repeat == 1) return;
  const std::string at = pointer + "/repeat";
  const auto n = static_cast<std::int64_t>(trace.size());
  const std::int64_t total = n * repeat;
  if (total > limit_value(Limit::kRequests)) {
    throw ScenarioError(source, at, std::to_string(total) + " requests (" + std::to_string(n) + " x repeat " + std::to_string(repeat) +
                                        ") are more than the limit allows " + limit_hint(Limit::kRequests));
  }
  const TimeNs first_ns = trace.front().arrival_ns;
  const TimeNs last_ns = trace.back().arrival_ns;
  HCSIM_ASSERT(first_ns <= last_ns);
  const TimeNs gap_ns = n > 1 && last_ns > first_ns ? (last_ns - first_ns) / (n - 1) : 0;
  const TimeNs period_ns = (last_ns - first_ns) + (gap_ns > 0 ? gap_ns : TimeNs{1'000'000});
  // repeat <= 64 and every time within a day: no product here overflows.
  const TimeNs closing_ns = last_ns + (repeat - 1) * period_ns;
  if (closing_ns > kArrivalNsMax) {
    const std::int64_t fit = 1 + (kArrivalNsMax - last_ns) / period_ns;
    throw ScenarioError(source, at, "repeat " + std::to_string(repeat) + " of a trace whose copies come " +
                                        std::to_string(period_ns / 1'000'000) + " ms apart ends at " + std::to_string(closing_ns / 1'000'000) +
                                        " ms, after one day (86400000 ms); at most " + std::to_string(fit) + " copies fit");
  }
  PageBudget budget;
  std::int64_t copy_pages = 0;
  for (const RequestSpec& r : trace) copy_pages += static_cast<std::int64_t>(r.pages.size());
  // The loader charged copy 0 already, against the same limit.
  budget.charge(copy_pages, [](const std::string&) { HCSIM_ASSERT(false); });
  trace.reserve(static_cast<std::size_t>(total));
  for (std::int32_t k = 1; k < repeat; ++k) {
    budget.charge(copy_pages, [&](const std::string& m) { throw ScenarioError(source, at, "copy " + std::to_string(k) + " makes " + m); });
    const std::uint64_t salt = content_id("mooncake/copy", 0, static_cast<std::uint64_t>(k));
    for (std::int64_t i = 0; i < n; ++i) {
      RequestSpec copy = trace[static_cast<std::size_t>(i)];
      copy.arrival_ns += k * period_ns;
      for (PageKey& key : copy.pages) key = mix64(key ^ salt);  // xor and mix64 are bijections
      copy.id = static_cast<RequestId>(k * n + i);
      copy.name = 'r' + std::to_string(k * n + i);
      trace.push_back(std::move(copy));
    }
  }
  HCSIM_ASSERT(trace.size() == static_cast<std::size_t>(total));
  HCSIM_ASSERT(std::is_sorted(trace.begin(), trace.end(), [](const RequestSpec& a, const RequestSpec& b) { return a.arrival_ns < b.arrival_ns; }));
}

}  // namespace

WorkloadSpec read_workload(const nlohmann::json& doc, const std::string& source, const std::string& pointer) {
  const JsonNode n(doc, source, pointer);
  if (!doc.is_object()) n.expected("an object");
  WorkloadSpec w;
  w.source = source;
  w.pointer = pointer;
  const JsonNode kind = n.at("kind");
  const std::string name = kind.str();
  if (name == "poisson") {
    w.kind = read_poisson(n);
  } else if (name == "conversations") {
    w.kind = read_conversations(n);
  } else if (name == "mooncake") {
    w.kind = read_mooncake(n);
  } else {
    kind.expected("one of poisson, conversations, mooncake");
  }
  if (auto v = n.find("l3_capacity_pages")) w.l3_capacity_pages = v->integer(0, std::int64_t{1} << 40);
  return w;
}

WorkloadSpec parse_workload(const std::string& text, const std::string& source) {
  const json doc = parse_json(text, source, "a workload object (docs/workloads.md), like {\"kind\": \"poisson\", \"requests\": 200, ...}");
  return read_workload(doc, source, "");
}

WorkloadSpec load_workload_file(const std::string& path) {
  return parse_workload(read_bounded_file(path, 1 << 20, "a workload spec is a description, not data"), path);
}

std::string describe(const WorkloadSpec& w) {
  std::ostringstream s;
  if (const auto* p = std::get_if<PoissonWorkload>(&w.kind)) {
    s << "poisson: " << p->requests << " requests at " << p->rate_per_s << "/s, input [" << p->input_tokens_lo << ", " << p->input_tokens_hi
      << "] tokens, " << p->prefixes << " prefixes of " << p->shared_prefix_tokens << " tokens, seed " << p->seed;
  } else if (const auto* c = std::get_if<ConversationWorkload>(&w.kind)) {
    s << "conversations: " << c->conversations << " of [" << c->turns_lo << ", " << c->turns_hi << "] turns, think "
      << static_cast<double>(c->think_time_ns) / 1e6 << " ms, turn [" << c->turn_tokens_lo << ", " << c->turn_tokens_hi
      << "] tokens, seed " << c->seed;
  } else {
    const auto& m = std::get<MooncakeWorkload>(w.kind);
    s << "mooncake: " << m.path;
    if (m.limit > 0) s << ", first " << m.limit << " requests";
    if (m.repeat > 1) s << ", played " << m.repeat << " times";
  }
  if (w.l3_capacity_pages > 0) s << "; L3 " << w.l3_capacity_pages << " pages per rank";
  return s.str();
}

std::vector<PageKey> mooncake_page_keys(std::span<const std::uint64_t> hash_ids, std::int32_t input_tokens, std::int32_t page_size_tokens) {
  HCSIM_ASSERT(page_size_tokens > 0 && 1024 % page_size_tokens == 0 && input_tokens >= 0);
  HCSIM_ASSERT(hash_ids.size() == static_cast<std::size_t>((input_tokens + kMooncakeBlockTokens - 1) / kMooncakeBlockTokens));
  const PageKey root = fnv1a64("workload/mooncake");
  const std::int64_t pages = input_tokens / page_size_tokens;
  std::vector<PageKey> keys;
  keys.reserve(static_cast<std::size_t>(pages));
  PageKey previous = root;
  for (std::int64_t p = 0; p < pages; ++p) {
    const std::int64_t first_token = p * page_size_tokens;
    const std::int64_t last_token = first_token + page_size_tokens - 1;  // a full page: last_token < input_tokens
    // Within a block, pages are told apart by their place; a page of 1024 spans two blocks.
    const auto place = static_cast<std::uint64_t>((first_token % kMooncakeBlockTokens) / page_size_tokens);
    PageKey key = previous;
    for (std::int64_t b = first_token / kMooncakeBlockTokens; b <= last_token / kMooncakeBlockTokens; ++b) {
      key = chain_key(key, hash_ids[static_cast<std::size_t>(b)], place);
    }
    keys.push_back(key);
    previous = key;
  }
  return keys;
}

std::vector<RequestSpec> load_mooncake_trace(const std::string& path, std::int32_t page_size_tokens, std::int32_t limit) {
  std::ifstream in = open_input_file(path);
  return load_mooncake_trace(in, path, page_size_tokens, limit);
}

std::vector<RequestSpec> load_mooncake_trace(std::istream& in, const std::string& path, std::int32_t page_size_tokens, std::int32_t limit) {
  HCSIM_ASSERT(page_size_tokens > 0 && 1024 % page_size_tokens == 0);
  HCSIM_ASSERT(limit >= 0);
  std::vector<RequestSpec> out;
  std::vector<std::uint64_t> hash_ids;
  PageBudget budget;
  std::string line;
  for (std::int64_t line_no = 1;; ++line_no) {  // bounded: each round consumes one line of the file
    const LineRead r = read_bounded_line(in, line, kTraceLineBytesMax);
    if (r == LineRead::kEnd) break;
    if (r == LineRead::kTooLong) {
      throw ScenarioError(path + ":" + std::to_string(line_no), "",
                          "line longer than " + std::to_string(kTraceLineBytesMax >> 20) +
                              " MiB: not a Mooncake trace; expected " + std::string(kTraceLineExample));
    }
    if (blank(line)) continue;
    if (limit > 0 && out.size() == static_cast<std::size_t>(limit)) break;  // the rest is not read
    if (out.size() == static_cast<std::size_t>(limit_value(Limit::kRequests))) {
      throw ScenarioError(path + ":" + std::to_string(line_no), "",
                          "more requests than the limit allows " + limit_hint(Limit::kRequests) + ", or read fewer with the workload's \"limit\"");
    }
    out.push_back(read_trace_line(line, path, line_no, page_size_tokens, hash_ids, budget));
  }
  if (out.empty()) throw ScenarioError(path, "", "no requests: expected one JSON object per line");
  number_requests(out);
  return out;
}

std::vector<RequestSpec> generate_requests(const WorkloadSpec& w, std::int32_t page_size_tokens, const std::string& base_dir) {
  HCSIM_ASSERT(page_size_tokens > 0 && 1024 % page_size_tokens == 0);
  std::vector<RequestSpec> out;
  if (const auto* p = std::get_if<PoissonWorkload>(&w.kind)) {
    out = poisson_requests(*p, page_size_tokens, w.source, w.pointer);
  } else if (const auto* c = std::get_if<ConversationWorkload>(&w.kind)) {
    out = conversation_requests(*c, page_size_tokens, w.source, w.pointer);
  } else {
    const auto& m = std::get<MooncakeWorkload>(w.kind);
    out = load_mooncake_trace(resolve(m.path, base_dir), page_size_tokens, m.limit);  // numbered
    repeat_trace(out, m.repeat, w.source, w.pointer);
    return out;
  }
  number_requests(out);
  return out;
}

void apply_workload(Scenario& s, const WorkloadSpec& w, const std::string& base_dir) {
  s.workload = generate_requests(w, s.policy.page_size_tokens, base_dir);
  HCSIM_ASSERT(!s.workload.empty());
  // L3 starts empty and fills from earlier requests through write-through.
  s.l3.clear();
  s.policy.write_through = true;
  s.storage.kv_capacity_pages = w.l3_capacity_pages;
  // Rules and expectations that name requests named the old ones.
  const auto names_requests = [](const DelayRule& r) { return !r.requests.empty(); };
  std::erase_if(s.delays, names_requests);
  std::erase_if(s.perturbations.jitter, names_requests);
  s.expect.clear();
  // A stream of arrivals longer than the horizon is not a hang.
  const TimeNs last_arrival_ns = s.workload.back().arrival_ns + s.perturbations.arrival_hi_ns;
  s.world.bounds.horizon_ns = std::max(s.world.bounds.horizon_ns, last_arrival_ns + s.world.bounds.starvation_ns);
}

}  // namespace hcsim
