// Hybrid SWA on the unified tree: the trailing-pages hit folding, the registration's window sizing,
// the host tree's window match rule, the all-or-nothing publish, and runs that show each in place.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/host_radix_tree.h"
#include "policy/trailing_pages.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "tests/variant_options.h"

using namespace hcsim;

namespace {

// A hybrid SWA scenario, page size 1: one L3 prefix "seq" of `kv_pages` pages with SWA objects at
// `swa_pages`, and requests given as JSON objects.
std::string swa_scenario(int window_pages, int kv_pages, const std::string& swa_pages, const std::string& requests,
                         const std::string& extra = "") {
  return R"({"name": "swa", "description": "a hybrid SWA unit test", "upstream_at": "2026-08-20", "tp": 2,
    "policy": {"name": "wait_complete", "page_size": 1, "prefetch_threshold_tokens": 1, "model": "hybrid_swa", "swa_window_pages": )" +
         std::to_string(window_pages) + R"(},
    "l3": [{"prefix": "seq", "kv_pages": )" + std::to_string(kv_pages) + R"(, "sidecar_at_pages": )" + swa_pages + R"(}],
    "requests": )" + requests + extra + R"(,
    "expect": [{"verdict": "complete"}]})";
}

struct Seen {
  std::int64_t storage_hit_tokens = -1;
  std::int64_t host_hit_tokens = -1;
};

// What request `rid` got when rank `rank` scheduled it.
Seen scheduled(const RunResult& r, RequestId rid, int rank = 0) {
  Seen s;
  for (const TraceEvent& e : r.log.events()) {
    if (e.kind != EventKind::kSchedule || e.request != rid || e.rank != rank) continue;
    s.storage_hit_tokens = schedule_fields(e).storage_hit_tokens;
    s.host_hit_tokens = schedule_fields(e).host_hit_tokens;
  }
  return s;
}

RunResult run_at(const Scenario& s, const char* variant) { return simulate(s, options_of(variant)); }

bool invariants_hold(const RunResult& r) {
  for (const InvariantResult& i : r.invariants) {
    if (!i.held) return false;
  }
  return !r.invariants.empty();
}

}  // namespace

TEST_CASE("trailing-pages hit: the largest L within the KV hit whose last N pages have their objects") {
  const std::array<std::uint8_t, 5> present{1, 1, 0, 1, 1};
  CHECK(trailing_pages_hit(present, 5, 1) == 5);  // Mamba: the last page's state
  CHECK(trailing_pages_hit(present, 5, 2) == 5);  // pages 3, 4
  CHECK(trailing_pages_hit(present, 5, 3) == 2);  // no 3-page run ends after page 1 but the root's
  CHECK(trailing_pages_hit(present, 3, 2) == 2);  // limited by the KV hit first
  CHECK(trailing_pages_hit(present, 0, 4) == 0);
  const std::array<std::uint8_t, 4> none{0, 0, 0, 0};
  CHECK(trailing_pages_hit(none, 4, 1) == 0);
  CHECK(trailing_pages_hit(none, 4, 4) == 0);
  const std::array<std::uint8_t, 3> short_run{1, 1, 1};
  CHECK(trailing_pages_hit(short_run, 3, 8) == 3);  // fewer pages than N: all of them back to the root
}

TEST_CASE("SWA registration sizing: a full window, a sub-window only at the root, else none") {
  CHECK(swa_slots_wanted(4, 9, 7) == 4);  // covers a window, mid-tree
  CHECK(swa_slots_wanted(4, 4, 0) == 4);  // exactly a window, at the root
  CHECK(swa_slots_wanted(4, 2, 0) == 2);  // sub-window at the root: the sequence is its window
  CHECK(swa_slots_wanted(4, 2, 7) == 0);  // sub-window mid-tree: the SWA component takes no part
  CHECK(swa_slots_wanted(4, 0, 0) == 0);  // nothing to fetch
}

TEST_CASE("SWA match rule: W consecutive SWA values end the usable prefix, or all back to the root") {
  HostRadixTree tree(64);
  const std::vector<PageKey> pages{11, 12, 13, 14, 15, 16, 17};
  const std::vector<std::int32_t> slots{0, 1, 2, 3, 4, 5, 6};
  const auto ins = tree.insert(pages, 0, slots);
  REQUIRE(ins.inserted_pages == 7);
  CHECK(tree.window_match_pages(pages, 2) == 0);  // no SWA value anywhere
  // SWA values on pages 1, 2, 4, 5, 6 (page 3 and 7 have none).
  std::int32_t slot = 100;
  for (std::int32_t depth : {1, 2, 4, 5, 6}) tree.attach_sidecar(tree.node_at(pages, depth), slot++);
  CHECK(tree.window_match_pages(pages, 2) == 6);  // pages 5, 6
  CHECK(tree.window_match_pages(pages, 3) == 6);  // pages 4, 5, 6
  CHECK(tree.window_match_pages(pages, 4) == 2);  // only the unbroken run from the root: pages 1, 2
  CHECK(tree.window_match_pages(std::span<const PageKey>(pages.data(), 2), 8) == 2);  // all back to the root
  // Mamba's rule on the same tree: the deepest node with a value.
  CHECK(tree.match_pages(pages) == 6);
  // SWA values are evicted apart from KV (every node has the same recency here: the first node's
  // goes first), and an evicted value breaks the run it was in.
  CHECK(tree.evict_lru_sidecar() == std::optional<std::int32_t>{100});
  CHECK(tree.window_match_pages(pages, 4) == 0);
  CHECK(tree.window_match_pages(pages, 2) == 6);
  CHECK(tree.kv_match_pages(pages) == 7);
}

TEST_CASE("hybrid publish is all or nothing: every KV page and every sidecar key on every rank") {
  // One pool transfer's hits or keys, as a span.
  auto one = [](std::int64_t v) { return std::vector<std::int64_t>{v}; };
  CHECK(hybrid_result_complete(5, 1, 5, one(4), one(4)));
  CHECK_FALSE(hybrid_result_complete(5, 1, 5, one(0), one(4)));   // a peer missed its window (upstream's test)
  CHECK_FALSE(hybrid_result_complete(5, 1, 5, one(3), one(4)));   // a partial window
  CHECK_FALSE(hybrid_result_complete(5, 1, 4, one(4), one(4)));   // a KV page short
  CHECK_FALSE(hybrid_result_complete(0, 1, 0, one(0), one(0)));   // no hit
  CHECK(hybrid_result_complete(3, 64, 192, one(1), one(1)));      // Mamba: one key
  // A mixed stack (DeepSeek-V4: SWA, compressed, compressed state): every pool whole.
  const std::vector<std::int64_t> keys{2, 3, 2};
  CHECK(hybrid_result_complete(3, 64, 192, std::vector<std::int64_t>{2, 3, 2}, keys));
  CHECK_FALSE(hybrid_result_complete(3, 64, 192, std::vector<std::int64_t>{2, 2, 2}, keys));  // a compressed page missed
  CHECK_FALSE(hybrid_result_complete(3, 64, 192, std::vector<std::int64_t>{2, 0, 2}, std::vector<std::int64_t>{2, -1, 2}));  // its read never ran
}

TEST_CASE("SWA hit folding in a run: the hit stops at the last page ending a window of objects") {
  // W = 2; SWA objects on pages 2, 3 of 5: L = 3 is the largest with pages 2, 3 present.
  const Scenario s = parse_scenario(swa_scenario(2, 5, "[2, 3]", R"([{"name": "R", "arrival_us": 0, "input_tokens": 6, "prefix": "seq"}])"), "swa.json");
  const RunResult r = run_at(s, "2026-08-20");
  CHECK(r.verdict.kind == HangKind::kNone);
  CHECK(invariants_hold(r));
  for (int rank : {0, 1}) {
    CHECK(scheduled(r, 0, rank).storage_hit_tokens == 3);
    CHECK(scheduled(r, 0, rank).host_hit_tokens == 3);  // the window (pages 2, 3) ends the prefix
  }
}

TEST_CASE("SWA sub-window at the root is fetched whole; mid-tree it is KV only and does not match") {
  SECTION("root: 3 pages under a window of 8, all read and usable") {
    const Scenario s = parse_scenario(swa_scenario(8, 3, "[1, 2, 3]", R"([{"name": "R", "arrival_us": 0, "input_tokens": 4, "prefix": "seq"}])"), "swa.json");
    const RunResult r = run_at(s, "2026-08-20");
    CHECK(invariants_hold(r));
    CHECK(scheduled(r, 0).storage_hit_tokens == 3);
    CHECK(scheduled(r, 0).host_hit_tokens == 3);
  }
  SECTION("mid-tree: the second request's 2 new pages come without SWA values") {
    // R publishes pages 1-4 with a window of 4; S then needs pages 5, 6 (a sub-window under a
    // non-root anchor): no SWA slots, KV only, and its host match stays at page 4.
    const Scenario s = parse_scenario(swa_scenario(4, 6, "[1, 2, 3, 4, 5, 6]",
                                                   R"([{"name": "R", "arrival_us": 0, "input_tokens": 4, "prefix": "seq"},
                                                       {"name": "S", "arrival_us": 50000, "input_tokens": 7, "prefix": "seq"}])"),
                                      "swa.json");
    const RunResult r = run_at(s, "2026-08-20");
    CHECK(invariants_hold(r));
    CHECK(scheduled(r, 0).storage_hit_tokens == 4);
    CHECK(scheduled(r, 1).storage_hit_tokens == 2);
    CHECK(scheduled(r, 1).host_hit_tokens == 4);
  }
}

TEST_CASE("a peer's missed window discards the prefetch on every rank; a present one publishes it") {
  const std::string request = R"([{"name": "R", "arrival_us": 0, "input_tokens": 6, "prefix": "seq"}])";
  const std::string miss = R"(, "delays": [{"op": "sidecar_get", "ranks": [1], "fail": true}])";
  const RunResult dropped = run_at(parse_scenario(swa_scenario(4, 5, "[2, 3, 4, 5]", request, miss), "swa.json"), "2026-08-20");
  const RunResult adopted = run_at(parse_scenario(swa_scenario(4, 5, "[2, 3, 4, 5]", request), "swa.json"), "2026-08-20");
  CHECK(invariants_hold(dropped));
  CHECK(invariants_hold(adopted));
  for (int rank : {0, 1}) {
    CHECK(scheduled(dropped, 0, rank).storage_hit_tokens == 0);
    CHECK(scheduled(dropped, 0, rank).host_hit_tokens == 0);
    CHECK(scheduled(adopted, 0, rank).storage_hit_tokens == 5);
    CHECK(scheduled(adopted, 0, rank).host_hit_tokens == 5);
  }
}

TEST_CASE("hybrid SWA before the unified tree served it is refused, naming the file and /policy/model") {
  const Scenario s = parse_scenario(swa_scenario(4, 5, "[2, 3, 4, 5]", R"([{"name": "R", "arrival_us": 0, "input_tokens": 6, "prefix": "seq"}])"),
                                    "swa.json");
  CHECK_THROWS_WITH(run_at(s, "2026-06-10"), Catch::Contains("swa.json: /policy/model: HiCache on hybrid SWA models ran HiRadixCache") &&
                                                 Catch::Contains("(#27759); not modelled"));
  CHECK_NOTHROW(run_at(s, "2026-06-11"));
}

TEST_CASE("swa_window_pages is required for hybrid_swa and refused for the other models") {
  const std::string requests = R"([{"name": "R", "arrival_us": 0, "input_tokens": 6, "prefix": "seq"}])";
  std::string no_window = swa_scenario(4, 5, "[2]", requests);
  no_window.replace(no_window.find(R"(, "swa_window_pages": 4)"), std::string(R"(, "swa_window_pages": 4)").size(), "");
  CHECK_THROWS_WITH(parse_scenario(no_window, "w.json"), Catch::Contains("w.json: /policy: a hybrid_swa model needs \"swa_window_pages\""));
  std::string mamba = swa_scenario(4, 5, "[2]", requests);
  mamba.replace(mamba.find("hybrid_swa"), std::string("hybrid_swa").size(), "hybrid_mamba");
  CHECK_THROWS_WITH(parse_scenario(mamba, "m.json"), Catch::Contains("m.json: /policy/swa_window_pages: only a hybrid_swa or deepseek_v4 model"));
}
