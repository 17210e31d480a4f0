// Workloads: the generators are deterministic by seed and share page keys exactly where inputs
// share a prefix; Mooncake traces regroup to any page size and name bad lines by file:line and
// field; a repeated trace plays later copies of documents of their own; L3 capacity evicts the
// least recently used page; a generated workload runs, and its write-through fills L3.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "policy/fixes.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "run/limits.h"
#include "run/l3_key_table.h"
#include "run/lru_id_list.h"
#include "run/storage.h"
#include "run/workload.h"
#include "sim/world.h"

namespace {

using namespace hcsim;
using nlohmann::json;

const char* const kSource = "tests/inline-workload.json";

// The message of the ScenarioError that `f` throws; fails the test if none is thrown.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ScenarioError& e) {
    return e.what();
  }
  FAIL("no ScenarioError was thrown");
  return {};
}

void require_error(const std::string& what, const std::string& where, const std::string& expected) {
  INFO(what);
  REQUIRE_THAT(what, Catch::StartsWith(where + ": "));
  REQUIRE_THAT(what, Catch::Contains(expected));
}

// A file in a fresh temporary folder, removed with it.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text) {
    dir_ = std::filesystem::temp_directory_path() / ("hcsim-workload-" + std::to_string(::getpid()) + "-" + std::to_string(next_++));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / name, std::ios::binary) << text;
    path_ = (dir_ / name).string();
  }
  ~TempFile() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }
  std::string dir() const { return dir_.string(); }

 private:
  static inline int next_ = 0;
  std::filesystem::path dir_;
  std::string path_;
};

std::string trace_line(std::int64_t timestamp_ms, std::int32_t input_tokens, const std::vector<std::uint64_t>& hash_ids) {
  return json{{"timestamp", timestamp_ms}, {"input_length", input_tokens}, {"output_length", 16}, {"hash_ids", hash_ids}}.dump() + "\n";
}

bool extends(const std::vector<PageKey>& longer, const std::vector<PageKey>& shorter) {
  return longer.size() >= shorter.size() && std::equal(shorter.begin(), shorter.end(), longer.begin());
}

std::size_t common_pages(const std::vector<PageKey>& a, const std::vector<PageKey>& b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

WorkloadSpec poisson_spec(std::uint64_t seed) {
  return parse_workload(json{{"kind", "poisson"}, {"requests", 40}, {"rate_per_s", 100.0}, {"input_tokens", {700, 3000}},
                             {"prefixes", 3}, {"shared_prefix_tokens", 1000}, {"seed", seed}}
                            .dump(),
                        kSource);
}

// The public traces sit beside a checkout, never in it (tests run from the project root);
// HCSIM_TRACES names another folder.
std::string conversation_trace() {
  const char* dir = std::getenv("HCSIM_TRACES");
  return std::string(dir != nullptr ? dir : "../shared/traces-public") + "/conversation_trace.jsonl";
}

}  // namespace

TEST_CASE("poisson: deterministic by seed; requests with one prefix share exactly its full pages", "[workload]") {
  const auto a = generate_requests(poisson_spec(7), 64, "");
  const auto b = generate_requests(poisson_spec(7), 64, "");
  const auto c = generate_requests(poisson_spec(8), 64, "");
  REQUIRE(a.size() == 40);
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].id == static_cast<RequestId>(i));
    CHECK(a[i].name == std::string("r").append(std::to_string(i)));
    CHECK(a[i].arrival_ns == b[i].arrival_ns);
    CHECK(a[i].pages == b[i].pages);
    CHECK(a[i].input_tokens >= 700);
    CHECK(a[i].input_tokens <= 3000);
    CHECK(a[i].pages.size() == static_cast<std::size_t>(a[i].input_tokens / 64));
    if (i > 0) CHECK(a[i].arrival_ns >= a[i - 1].arrival_ns);
  }
  bool differs = false;
  for (std::size_t i = 0; i < a.size(); ++i) differs = differs || a[i].arrival_ns != c[i].arrival_ns || a[i].pages != c[i].pages;
  CHECK(differs);
  // 40 requests at 100/s: the last arrives near 0.4 s.
  CHECK(a.back().arrival_ns > 100'000'000);
  CHECK(a.back().arrival_ns < 1'600'000'000);

  // Grouped by their first page: at most 3 prefixes. Within one, two requests share the full
  // pages of the prefix that both inputs hold (15 of the 1000 tokens at most); the page across the
  // prefix's end (tokens 960..1023) is each request's own.
  std::map<PageKey, std::vector<const RequestSpec*>> by_prefix;
  for (const RequestSpec& r : a) by_prefix[r.pages.front()].push_back(&r);
  CHECK(by_prefix.size() >= 2);
  CHECK(by_prefix.size() <= 3);
  std::size_t pairs_with_whole_prefix = 0;
  for (const auto& [first, group] : by_prefix) {
    for (std::size_t i = 1; i < group.size(); ++i) {
      const auto shared_tokens = std::min({group[0]->input_tokens, group[i]->input_tokens, 1000});
      CHECK(common_pages(group[0]->pages, group[i]->pages) == static_cast<std::size_t>(shared_tokens / 64));
      pairs_with_whole_prefix += shared_tokens == 1000 ? 1 : 0;
    }
  }
  CHECK(pairs_with_whole_prefix > 10);
  for (auto x = by_prefix.begin(); x != by_prefix.end(); ++x) {
    for (auto y = std::next(x); y != by_prefix.end(); ++y) CHECK(common_pages(x->second[0]->pages, y->second[0]->pages) == 0);
  }
}

TEST_CASE("conversations: each turn extends the previous turn's keys and arrives a think time later", "[workload]") {
  const WorkloadSpec w = parse_workload(R"({"kind": "conversations", "conversations": 4, "turns": [2, 5], "think_time_ms": 3000,
                                            "turn_tokens": [100, 900], "seed": 3})",
                                        kSource);
  const auto requests = generate_requests(w, 64, "");
  const auto again = generate_requests(w, 64, "");
  REQUIRE(again.size() == requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    CHECK(again[i].arrival_ns == requests[i].arrival_ns);
    CHECK(again[i].pages == requests[i].pages);
  }
  REQUIRE(requests.size() >= 8);
  REQUIRE(requests.size() <= 20);
  // A conversation is a chain of requests, each extending the one before and arriving a think time
  // later (every turn has at least one full page here: 100 tokens or more at page 64).
  std::vector<std::vector<const RequestSpec*>> conversations;
  for (const RequestSpec& r : requests) {
    auto it = std::find_if(conversations.begin(), conversations.end(), [&](const auto& conv) {
      return !r.pages.empty() && !conv.back()->pages.empty() && extends(r.pages, conv.back()->pages) &&
             r.arrival_ns - conv.back()->arrival_ns == 3'000'000'000;
    });
    if (it == conversations.end()) {
      conversations.push_back({&r});
    } else {
      it->push_back(&r);
    }
  }
  CHECK(conversations.size() == 4);
  for (const auto& conv : conversations) {
    CHECK(conv.size() >= 2);
    CHECK(conv.size() <= 5);
    CHECK(conv.front()->arrival_ns <= 3'000'000'000);
    for (std::size_t k = 1; k < conv.size(); ++k) {
      CHECK(conv[k]->input_tokens - conv[k - 1]->input_tokens >= 100);
      CHECK(conv[k]->input_tokens - conv[k - 1]->input_tokens <= 900);
      CHECK(conv[k]->pages.size() > conv[k - 1]->pages.size());
    }
  }
}

TEST_CASE("mooncake: 512-token blocks regroup to pages of 64 and of 1024", "[workload][mooncake]") {
  // r0 and r1 share block 0 only; r2 shares blocks 0..2 with r0; r3's last block is partial.
  const TempFile trace("trace.jsonl", trace_line(0, 2048, {10, 11, 12, 13}) + trace_line(5, 2048, {10, 21, 22, 23}) +
                                          trace_line(5, 1600, {10, 11, 12, 30}) + "\n" + trace_line(2, 1000, {10, 40}));

  SECTION("page 64: 8 pages per block, each its own key; a partial block keeps its full pages") {
    const auto r = load_mooncake_trace(trace.path(), 64);
    REQUIRE(r.size() == 4);
    // Sorted by timestamp, stable: lines 1 (0 ms), 5 (2 ms), 2 and 3 (5 ms).
    CHECK(r[0].input_tokens == 2048);
    CHECK(r[1].input_tokens == 1000);
    CHECK(r[2].input_tokens == 2048);
    CHECK(r[3].input_tokens == 1600);
    CHECK(r[1].arrival_ns == 2'000'000);
    CHECK(r[1].name == "r1");
    CHECK(r[0].pages.size() == 32);
    CHECK(r[1].pages.size() == 15);  // 1000 / 64
    CHECK(r[3].pages.size() == 25);
    CHECK(common_pages(r[0].pages, r[2].pages) == 8);   // block 10 only
    CHECK(common_pages(r[0].pages, r[1].pages) == 8);
    CHECK(common_pages(r[0].pages, r[3].pages) == 24);  // blocks 10, 11, 12
    std::vector<PageKey> block0(r[0].pages.begin(), r[0].pages.begin() + 8);
    std::sort(block0.begin(), block0.end());
    CHECK(std::adjacent_find(block0.begin(), block0.end()) == block0.end());
  }
  SECTION("page 1024: a page spans two blocks and depends on both") {
    const auto r = load_mooncake_trace(trace.path(), 1024);
    CHECK(r[0].pages.size() == 2);
    CHECK(r[1].pages.empty());  // 1000 tokens: no full page
    CHECK(r[3].pages.size() == 1);
    CHECK(common_pages(r[0].pages, r[2].pages) == 0);  // blocks (10, 11) against (10, 21)
    CHECK(common_pages(r[0].pages, r[3].pages) == 1);  // (10, 11) alike; (12, 13) against a partial 30
  }
  SECTION("keys are functions of the ids, whichever file holds them; limit takes the first lines") {
    const TempFile other("other.jsonl", trace_line(9, 1600, {10, 11, 12, 77}));
    const auto mine = load_mooncake_trace(trace.path(), 64);
    const auto theirs = load_mooncake_trace(other.path(), 64);
    CHECK(common_pages(mine[3].pages, theirs[0].pages) == 24);
    CHECK(mooncake_page_keys(std::vector<std::uint64_t>{10, 11, 12, 13}, 2048, 64) == mine[0].pages);
    const auto first_two = load_mooncake_trace(trace.path(), 64, 2);
    REQUIRE(first_two.size() == 2);
    CHECK(first_two[1].input_tokens == 2048);  // lines 1 and 2, then sorted
    CHECK(first_two[1].arrival_ns == 5'000'000);
  }
  SECTION("a workload spec names the trace relative to its base folder") {
    const WorkloadSpec w = parse_workload(R"({"kind": "mooncake", "path": "trace.jsonl", "limit": 3})", kSource);
    CHECK(generate_requests(w, 64, trace.dir()).size() == 3);
  }
}

TEST_CASE("mooncake: a bad line is named by file:line and field", "[workload][mooncake]") {
  const std::string good = trace_line(0, 1024, {1, 2});
  struct Case {
    std::string line;
    std::string pointer;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {trace_line(0, 1100, {1, 2}), "/hash_ids", "expected ceil(input_length/512) = 3 ids; got 2"},
      {R"({"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": []})" "\n", "/input_length", "expected an integer in [1, 16777216]; got 0"},
      {R"({"timestamp": -5, "input_length": 10, "output_length": 1, "hash_ids": [1]})" "\n", "/timestamp", "expected a number in [0, "},
      {R"({"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [-1]})" "\n", "/hash_ids/0", "expected a non-negative integer"},
      {R"({"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1], "session": 3})" "\n", "/session", "unknown key"},
      {R"({"timestamp": 0, "input_length": 10, "hash_ids": [1]})" "\n", "/", "missing required key \"output_length\""},
      {R"({"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": "1"})" "\n", "/hash_ids", "expected an array"},
      {"{\"timestamp\": 0,\n", "/", "not valid JSON"},
  };
  for (const Case& c : cases) {
    const TempFile trace("bad.jsonl", good + "\n" + c.line + good);  // the bad line is line 3
    require_error(error_of([&] { (void)load_mooncake_trace(trace.path(), 64); }), trace.path() + ":3: " + c.pointer, c.expected);
  }
  const TempFile empty("empty.jsonl", "\n\n");
  require_error(error_of([&] { (void)load_mooncake_trace(empty.path(), 64); }), empty.path() + ": /", "no requests");
  require_error(error_of([&] { (void)load_mooncake_trace("/nonexistent/t.jsonl", 64); }), "/nonexistent/t.jsonl: /", "cannot open");
}

TEST_CASE("mooncake repeat: N copies, each a period later and of its own documents", "[workload][mooncake]") {
  // Sorted: line 2 (10 ms), lines 3 and 4 (12 ms, in file order), line 1 (14 ms). Span 4 ms over
  // 3 gaps: a mean gap of 1'333'333 ns, so copies come 4 ms + 1'333'333 ns = 5'333'333 ns apart.
  const TempFile trace("trace.jsonl", trace_line(14, 1024, {1, 2}) + trace_line(10, 2048, {1, 2, 3, 4}) + trace_line(12, 1024, {1, 5}) +
                                          trace_line(12, 1536, {1, 2, 6}));
  const auto spec = [&](const std::string& extra) {
    return parse_workload(R"({"kind": "mooncake", "path": "trace.jsonl")" + extra + "}", kSource);
  };
  const auto same = [](const RequestSpec& a, const RequestSpec& b) {
    return a.id == b.id && a.name == b.name && a.arrival_ns == b.arrival_ns && a.abort_ns == b.abort_ns && a.input_tokens == b.input_tokens &&
           a.pages == b.pages;
  };
  const auto plain = generate_requests(spec(""), 64, trace.dir());
  REQUIRE(plain.size() == 4);
  REQUIRE(plain.front().arrival_ns == 10'000'000);
  REQUIRE(plain.back().arrival_ns == 14'000'000);
  constexpr TimeNs kPeriodNs = 5'333'333;

  SECTION("repeat 1 is the trace as without repeat") {
    const auto once = generate_requests(spec(R"(, "repeat": 1)"), 64, trace.dir());
    REQUIRE(once.size() == plain.size());
    for (std::size_t i = 0; i < once.size(); ++i) CHECK(same(once[i], plain[i]));
    CHECK(describe(spec(R"(, "repeat": 1)")) == describe(spec("")));
  }
  SECTION("repeat 3: copy 0 is the trace; copy k is shifted k periods, renamed and rekeyed") {
    const auto r = generate_requests(spec(R"(, "repeat": 3)"), 64, trace.dir());
    REQUIRE(r.size() == 3 * plain.size());
    CHECK_THAT(describe(spec(R"(, "repeat": 3)")), Catch::EndsWith(", played 3 times"));
    std::set<std::string> names;
    std::vector<std::set<PageKey>> keys(3);
    for (std::size_t k = 0; k < 3; ++k) {
      for (std::size_t i = 0; i < plain.size(); ++i) {
        const RequestSpec& c = r[k * plain.size() + i];
        INFO("copy " << k << ", request " << i);
        if (k == 0) CHECK(same(c, plain[i]));
        CHECK(c.id == static_cast<RequestId>(k * plain.size() + i));
        CHECK(c.name == 'r' + std::to_string(k * plain.size() + i));
        CHECK(c.arrival_ns == plain[i].arrival_ns + static_cast<TimeNs>(k) * kPeriodNs);
        CHECK(c.input_tokens == plain[i].input_tokens);
        CHECK(c.pages.size() == plain[i].pages.size());
        // Within a copy, requests share exactly the pages they share in copy 0.
        for (std::size_t j = 0; j < plain.size(); ++j) {
          CHECK(common_pages(c.pages, r[k * plain.size() + j].pages) == common_pages(plain[i].pages, plain[j].pages));
        }
        names.insert(c.name);
        keys[k].insert(c.pages.begin(), c.pages.end());
      }
    }
    CHECK(names.size() == r.size());
    for (std::size_t i = 1; i < r.size(); ++i) CHECK(r[i - 1].arrival_ns <= r[i].arrival_ns);
    // Copy 1 opens one mean gap after copy 0 closes.
    CHECK(r[plain.size()].arrival_ns - r[plain.size() - 1].arrival_ns == 1'333'333);
    for (std::size_t a = 0; a < 3; ++a) {
      CHECK(keys[a].size() == keys[0].size());
      for (std::size_t b = a + 1; b < 3; ++b) {
        std::vector<PageKey> both;
        std::set_intersection(keys[a].begin(), keys[a].end(), keys[b].begin(), keys[b].end(), std::back_inserter(both));
        CHECK(both.empty());
      }
    }
  }
  SECTION("limit takes the file's first lines, then repeat plays them") {
    const auto r = generate_requests(spec(R"(, "limit": 2, "repeat": 3)"), 64, trace.dir());
    REQUIRE(r.size() == 6);
    // Lines 1 and 2 (14 and 10 ms): span 4 ms, one gap of 4 ms, a period of 8 ms.
    CHECK(r[2].arrival_ns == 18'000'000);
    CHECK(r[5].arrival_ns == 30'000'000);
  }
  SECTION("one request: copies come 1 ms apart") {
    const TempFile single("one.jsonl", trace_line(7, 1024, {1, 2}));
    const auto r = generate_requests(parse_workload(R"({"kind": "mooncake", "path": "one.jsonl", "repeat": 3})", kSource), 64, single.dir());
    REQUIRE(r.size() == 3);
    CHECK(r[1].arrival_ns == 8'000'000);
    CHECK(r[2].arrival_ns == 9'000'000);
    CHECK(r[2].name == "r2");
  }
  SECTION("bad values are refused, naming the field") {
    const std::string at = std::string(kSource) + ": /repeat";
    for (const char* bad : {"0", "65", "-1", "2.5", "\"3\"", "true", "[2]"}) {
      INFO(bad);
      require_error(error_of([&] { (void)spec(std::string(R"(, "repeat": )") + bad); }), at, "expected an integer in [1, 64]");
    }
    reset_limits();
    REQUIRE(set_limit("requests=10").empty());
    require_error(error_of([&] { (void)generate_requests(spec(R"(, "repeat": 3)"), 64, trace.dir()); }), at,
                  "12 requests (4 x repeat 3) are more than the limit allows (limit requests = 10");
    reset_limits();
    REQUIRE(set_limit("pages=100").empty());  // a copy holds 16 + 32 + 16 + 24 = 88 pages of 64 tokens
    require_error(error_of([&] { (void)generate_requests(spec(R"(, "repeat": 2)"), 64, trace.dir()); }), at,
                  "copy 1 makes more than 100 pages in all");
    reset_limits();
    // 0 and 20,000,000 ms: copies 40,000,000 ms apart; a third would close at 100,000,000 ms.
    const TempFile long_trace("long.jsonl", trace_line(0, 1024, {1, 2}) + trace_line(20'000'000, 1024, {1, 3}));
    const WorkloadSpec w = parse_workload(R"({"kind": "mooncake", "path": "long.jsonl", "repeat": 3})", kSource);
    require_error(error_of([&] { (void)generate_requests(w, 64, long_trace.dir()); }), at, "after one day (86400000 ms); at most 2 copies fit");
  }
}

TEST_CASE("workload specs are strict: each error names the source and pointer", "[workload]") {
  const json base = {{"kind", "poisson"}, {"requests", 4}, {"rate_per_s", 1.0}, {"input_tokens", {64, 128}},
                     {"prefixes", 1}, {"shared_prefix_tokens", 64}};
  CHECK(std::get<PoissonWorkload>(parse_workload(base.dump(), kSource).kind).seed == 1);
  auto with = [&](const char* key, json value) {
    json j = base;
    j[key] = std::move(value);
    return j.dump();
  };
  auto without = [&](const char* key) {
    json j = base;
    j.erase(key);
    return j.dump();
  };
  const std::string src = kSource;
  require_error(error_of([&] { parse_workload(with("bogus", 1), kSource); }), src + ": /bogus", "unknown key");
  require_error(error_of([&] { parse_workload(with("kind", "bursty"), kSource); }), src + ": /kind",
                "expected one of poisson, conversations, mooncake; got \"bursty\"");
  require_error(error_of([&] { parse_workload(with("input_tokens", {128, 64}), kSource); }), src + ": /input_tokens/1",
                "expected an integer in [128, 16777216]; got 64");
  require_error(error_of([&] { parse_workload(with("input_tokens", {64}), kSource); }), src + ": /input_tokens", "expected [low, high]");
  require_error(error_of([&] { parse_workload(with("rate_per_s", 0), kSource); }), src + ": /rate_per_s", "expected a number in");
  require_error(error_of([&] { parse_workload(with("requests", 2'000'000), kSource); }), src + ": /requests",
                "2000000 requests are more than the limit allows (limit requests = 1048576; raise it with --limit requests=N)");
  require_error(error_of([&] { parse_workload(with("l3_capacity_pages", -1), kSource); }), src + ": /l3_capacity_pages", "expected an integer");
  require_error(error_of([&] { parse_workload(without("prefixes"), kSource); }), src + ": /", "missing required key \"prefixes\"");
  require_error(error_of([&] { parse_workload(R"({"kind": "mooncake", "path": "t.jsonl", "turns": [1, 2]})", kSource); }), src + ": /turns",
                "unknown key (allowed here: kind, path, limit, repeat, l3_capacity_pages)");
  require_error(error_of([&] {
                  parse_workload(R"({"kind": "conversations", "conversations": 100000, "turns": [1, 100], "think_time_ms": 1, "turn_tokens": [1, 2]})",
                                 kSource);
                }),
                src + ": /turns", "10000000 requests (conversations x turns[1]) are more than the limit allows (limit requests = 1048576");
  // Embedded in a larger document, errors carry the pointer from its root.
  const json doc = {{"workload", {{"kind", "poisson"}}}};
  require_error(error_of([&] { read_workload(doc.at("workload"), "x.json", "/workload"); }), "x.json: /workload", "missing required key \"requests\"");
  require_error(error_of([&] { (void)generate_requests(parse_workload(with("rate_per_s", 1e-6), kSource), 64, ""); }), src + ": /rate_per_s",
                "after one day");
}

TEST_CASE("mooncake: a path under $HCSIM_TRACES comes from that variable, and names it when unset", "[workload][mooncake]") {
  const char* was = std::getenv("HCSIM_TRACES");
  const std::string saved = was != nullptr ? was : "";
  const char* spec = R"({"kind": "mooncake", "path": "$HCSIM_TRACES/conversation_trace.jsonl"})";
  ::setenv("HCSIM_TRACES", "elsewhere/traces", 1);
  CHECK(std::get<MooncakeWorkload>(parse_workload(spec, kSource).kind).path ==
        (std::filesystem::current_path() / "elsewhere/traces/conversation_trace.jsonl").string());
  ::unsetenv("HCSIM_TRACES");
  require_error(error_of([&] { parse_workload(spec, kSource); }), std::string(kSource) + ": /path", "names $HCSIM_TRACES, which is not set");
  // Only the leading variable is special.
  CHECK(std::get<MooncakeWorkload>(parse_workload(R"({"kind": "mooncake", "path": "t/$HCSIM_TRACES/x"})", kSource).kind).path == "t/$HCSIM_TRACES/x");
  if (was != nullptr) ::setenv("HCSIM_TRACES", saved.c_str(), 1);
}

TEST_CASE("L3 capacity: a write past it evicts the least recently used page and its sidecar", "[workload][storage]") {
  StorageConfig cfg;
  cfg.kv_capacity_pages = 3;
  StorageModel storage(cfg, 2, {}, 1);
  storage.add_kv_page(0, 100);
  storage.add_sidecar(0, 100);
  storage.seal();
  auto call = [&](int rank, StorageOp op, std::vector<PageKey> keys) {
    std::vector<std::uint8_t> present(keys.size(), 0);
    WorldCall c;
    c.kind = WorldCall::Kind::kStorage;
    c.storage_op = op;
    c.request = 0;
    c.keys = keys;
    c.present = present;
    return storage.plan(rank, c, 0).result;
  };
  CHECK(call(0, StorageOp::kKvSet, {1, 2}) == 2);  // 100, 1, 2: full
  CHECK(storage.kv_pages(0) == 3);
  CHECK(call(0, StorageOp::kHitQuery, {100}) == 1);  // 100 is now the most recent; 1 the least
  CHECK(call(0, StorageOp::kKvSet, {3}) == 1);       // evicts 1
  CHECK(storage.evicted_kv_pages(0) == 1);
  CHECK(call(0, StorageOp::kHitQuery, {1}) == 0);
  CHECK(call(0, StorageOp::kHitQuery, {100, 3}) == 2);
  CHECK(call(0, StorageOp::kKvGet, {2}) == 1);  // a read refreshes too: 100 is now the least recent
  CHECK(call(0, StorageOp::kKvSet, {4}) == 1);  // evicts 100, and its sidecar object
  CHECK(call(0, StorageOp::kSidecarGet, {100}) == 0);
  CHECK(call(0, StorageOp::kHitQuery, {2, 3, 4}) == 3);
  CHECK(storage.kv_pages(0) == 3);
  // Each rank has its own store and its own capacity.
  CHECK(storage.kv_pages(1) == 0);
  CHECK(call(1, StorageOp::kKvSet, {1, 2, 3, 4, 5}) == 5);  // a write larger than the store keeps its last pages
  CHECK(call(1, StorageOp::kHitQuery, {3, 4, 5}) == 3);
  CHECK(call(1, StorageOp::kHitQuery, {1}) == 0);
  CHECK(storage.evicted_kv_pages(1) == 2);

  StorageModel unbounded(StorageConfig{}, 1, {}, 1);
  unbounded.seal();
  std::vector<PageKey> many(5000);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = 1000 + i;
  std::vector<std::uint8_t> present(many.size(), 0);
  WorldCall set;
  set.kind = WorldCall::Kind::kStorage;
  set.storage_op = StorageOp::kKvSet;
  set.keys = many;
  CHECK(unbounded.plan(0, set, 0).result == 5000);
  CHECK(unbounded.kv_pages(0) == 5000);
  CHECK(unbounded.evicted_kv_pages(0) == 0);
}

namespace {

// simulate()'s steps, keeping the L3 model to look into after the run.
struct RunWithStorage {
  Verdict verdict;
  EventLog log;
  std::unique_ptr<StorageModel> storage;
};
RunWithStorage run_keeping_storage(const Scenario& s, const RunOptions& o) {
  RunSetup setup = prepare_run(s, o);
  SimWorld world(s.world, *setup.storage, std::move(setup.arrivals), s.workload.size(), std::move(setup.aborts));
  const std::vector<std::unique_ptr<Rank>> ranks = spawn_ranks(world, setup.policy, s.workload);
  RunWithStorage out;
  out.verdict = world.run();
  out.log = world.take_log();
  out.storage = std::move(setup.storage);
  return out;
}

std::int64_t l3_hit_pages(StorageModel& storage, int rank, const RequestSpec& r) {
  std::vector<std::uint8_t> present(r.pages.size(), 0);
  WorldCall c;
  c.kind = WorldCall::Kind::kStorage;
  c.storage_op = StorageOp::kHitQuery;
  c.request = r.id;
  c.keys = r.pages;
  c.present = present;
  return storage.plan(rank, c, 0).result;
}

// Whether the rank's L3 holds the sidecar object at `key` (a sidecar_get would read it).
bool has_sidecar_object(StorageModel& storage, int rank, PageKey key) {
  const std::array<PageKey, 1> keys{key};
  WorldCall c;
  c.kind = WorldCall::Kind::kStorage;
  c.storage_op = StorageOp::kSidecarGet;
  c.keys = keys;
  return storage.plan(rank, c, 0).result == 1;
}

// The kSchedule event of each (rank, request): a = extend tokens, b = L3 hit tokens, c = host hit tokens.
std::map<std::pair<int, RequestId>, ScheduleFields> schedules_of(const EventLog& log) {
  std::map<std::pair<int, RequestId>, ScheduleFields> out;
  for (const TraceEvent& e : log.events()) {
    if (e.kind == EventKind::kSchedule) out.emplace(std::make_pair(e.rank, e.request), schedule_fields(e));
  }
  return out;
}

// Two identical 2048-token requests (one prefix covers them whole), 0.3 s apart at seed 4.
Scenario two_identical_requests(std::int64_t l3_capacity_pages) {
  const json spec = {{"kind", "poisson"}, {"requests", 2}, {"rate_per_s", 2}, {"input_tokens", {2048, 2048}}, {"prefixes", 1},
                     {"shared_prefix_tokens", 2048}, {"seed", 4}, {"l3_capacity_pages", l3_capacity_pages}};
  Scenario s = load_scenario_file("scenarios/himamba-sidecar-lag.json");
  apply_workload(s, parse_workload(spec.dump(), kSource), "");
  return s;
}

RunOptions seed_fix() {
  RunOptions o;
  o.fixes = *preset_by_name("seed-fix");
  return o;
}

}  // namespace

TEST_CASE("LruIdList over L3KeyTable ids agrees with a plain LRU list over a million random uses and evictions", "[workload][storage]") {
  L3KeyTable keys;
  LruIdList set;
  std::list<PageKey> order;  // least recent first
  std::map<PageKey, std::list<PageKey>::iterator> where;
  std::uint64_t state = 7;
  auto next = [&] { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
  for (int step = 0; step < 1'000'000; ++step) {
    // Keys that collide in low bits and a small key space, so probe runs form and wrap.
    const PageKey key = (next() % 4096) << 20;
    if (next() % 3 == 0 && !order.empty()) {
      const PageKey oldest = keys.key(set.pop_oldest());
      REQUIRE(oldest == order.front());
      where.erase(order.front());
      order.pop_front();
    } else {
      set.use(keys.intern(key));
      if (auto it = where.find(key); it != where.end()) order.erase(it->second);
      order.push_back(key);
      where[key] = std::prev(order.end());
    }
    REQUIRE(set.size() == order.size());
    if (step % 1000 == 0) {
      for (PageKey k = 0; k < 64; ++k) {
        const std::uint32_t id = keys.find(k << 20);
        CHECK((id != L3KeyTable::kNone && set.contains(id)) == where.contains(k << 20));
      }
    }
  }
  // Every key used got one id, and finds it again.
  REQUIRE(keys.size() <= 4096);
  for (std::uint32_t id = 0; id < keys.size(); ++id) REQUIRE(keys.find(keys.key(id)) == id);
  REQUIRE(keys.find(1) == L3KeyTable::kNone);
}

TEST_CASE("apply_workload: the scenario runs the workload from an empty L3 that write-through fills", "[workload][simulate]") {
  Scenario s = two_identical_requests(0);
  REQUIRE(s.workload.size() == 2);
  REQUIRE(s.l3.empty());
  REQUIRE(s.policy.write_through);
  REQUIRE(s.storage.kv_capacity_pages == 0);
  REQUIRE(s.delays.empty());  // the lag rule named the replaced request R
  REQUIRE(s.expect.empty());
  REQUIRE(s.workload[0].pages == s.workload[1].pages);
  REQUIRE(s.workload[0].pages.size() == 32);
  REQUIRE(s.workload[1].arrival_ns - s.workload[0].arrival_ns > 50'000'000);

  const RunResult r = simulate(s, seed_fix());
  INFO(r.verdict.headline);
  REQUIRE(!r.verdict.hang());
  const auto schedules = schedules_of(r.log);
  std::map<int, std::int64_t> backed_up_pages;
  for (const TraceEvent& e : r.log.events()) {
    if (e.kind == EventKind::kBackupDone && e.request == 0) backed_up_pages[e.rank] += backup_done_fields(e).pages_written;
  }
  const RunWithStorage kept = run_keeping_storage(s, seed_fix());
  REQUIRE(kept.log.digest() == r.log.digest());
  for (int rank = 0; rank < s.world.ranks; ++rank) {
    CHECK(backed_up_pages[rank] == 32);  // r0's pages went to L3 by write-through...
    CHECK(l3_hit_pages(*kept.storage, rank, s.workload[1]) == 32);  // ...and are there for r1
    REQUIRE(schedules.count({rank, 0}));
    REQUIRE(schedules.count({rank, 1}));
    CHECK(schedules.at({rank, 0}).storage_hit_tokens == 0);  // L3 was empty
    CHECK(has_sidecar_object(*kept.storage, rank, s.workload[0].pages.back()));
    // HiMamba serves a prefix only up to a page with Mamba state: write-through backs r0's state up
    // with its pages, so the host tree serves all of r1.
    CHECK(schedules.at({rank, 1}).storage_hit_tokens == 0);
    CHECK(schedules.at({rank, 1}).host_hit_tokens == 2048);
  }

  SECTION("without a sidecar, r1 is served from the host tree the write-through filled first") {
    s.policy.family = ModelFamily::kDense;
    const RunResult plain = simulate(s, seed_fix());
    REQUIRE(!plain.verdict.hang());
    const auto plain_schedules = schedules_of(plain.log);
    for (int rank = 0; rank < s.world.ranks; ++rank) {
      CHECK(plain_schedules.at({rank, 1}).host_hit_tokens == 2048);
      CHECK(plain_schedules.at({rank, 1}).storage_hit_tokens == 0);
    }
  }
}

TEST_CASE("apply_workload: an L3 capacity bounds what write-through keeps", "[workload][simulate]") {
  const Scenario s = two_identical_requests(8);
  REQUIRE(s.storage.kv_capacity_pages == 8);
  const RunWithStorage kept = run_keeping_storage(s, seed_fix());
  REQUIRE(!kept.verdict.hang());
  for (int rank = 0; rank < s.world.ranks; ++rank) {
    CHECK(kept.storage->kv_pages(rank) == 8);
    CHECK(kept.storage->evicted_kv_pages(rank) == 24);  // r0 wrote 32 pages; r1's were on host already
    // The write's last pages stay: a hit query, which counts the leading run, finds none.
    CHECK(l3_hit_pages(*kept.storage, rank, s.workload[1]) == 0);
    const std::vector<PageKey> tail(s.workload[1].pages.end() - 8, s.workload[1].pages.end());
    RequestSpec last_pages;
    last_pages.pages = tail;
    CHECK(l3_hit_pages(*kept.storage, rank, last_pages) == 8);
  }
}

TEST_CASE("the public Mooncake conversation trace loads whole, in arrival order", "[workload][mooncake]") {
  if (!std::filesystem::exists(conversation_trace())) {
    WARN("skipped: " << conversation_trace() << " is absent");
    SUCCEED();
    return;
  }
  const auto requests = load_mooncake_trace(conversation_trace(), 64);
  REQUIRE(requests.size() == 12'031);
  for (std::size_t i = 1; i < requests.size(); ++i) REQUIRE(requests[i - 1].arrival_ns <= requests[i].arrival_ns);
  for (const RequestSpec& r : requests) REQUIRE(r.pages.size() == static_cast<std::size_t>(r.input_tokens / 64));
  CHECK(load_mooncake_trace(conversation_trace(), 1024).size() == 12'031);
}
