// Policy building blocks: the termination predicate against upstream's policy matrix, the timeout
// formulas, fix presets and variants, host slot ownership, and HiMamba's host radix tree rule.
#include <catch2/catch.hpp>

#include <limits>
#include <map>
#include <memory>
#include <deque>

#include <array>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/fifo.h"
#include "policy/fixes.h"
#include "policy/variant.h"
#include "policy/host_radix_tree.h"
#include "policy/host_slot_pool.h"
#include "policy/key_index.h"
#include "policy/policy_config.h"
#include "policy/prefetch_operation.h"
#include "policy/runtime.h"
#include "policy/termination.h"

namespace {

using namespace hcsim;

// ---------------------------------------------------------------------------------------------
// The upstream policy matrix (domain doc 3.3, from upstream test_hicache_prefetch_termination.py).
//
// Row 1 (best_effort, kv_done F, pool T, pool_done F, timed_out F) -> terminate is not asserted
// here: best_effort terminates without a vote in this model, so local_can_terminate is never asked
// for it (it asserts policy != best_effort and would abort the test run). Rows 2-9 follow.

struct Row {
  int number;  // as numbered upstream, best_effort being row 1
  PrefetchPolicy policy;
  bool kv_done, has_pool, pool_done, timed_out;
  bool expected;
};

constexpr bool T = true;
constexpr bool F = false;
constexpr std::array<Row, 8> kMatrix = {{
    {2, PrefetchPolicy::kWaitComplete, T, F, F, F, T},
    {3, PrefetchPolicy::kWaitComplete, T, T, F, F, F},
    {4, PrefetchPolicy::kWaitComplete, T, T, T, F, T},
    {5, PrefetchPolicy::kTimeout, T, T, F, F, F},
    {6, PrefetchPolicy::kTimeout, T, T, F, T, T},
    {7, PrefetchPolicy::kTimeout, F, T, F, T, T},
    {8, PrefetchPolicy::kTimeout, T, T, T, F, T},
    {9, PrefetchPolicy::kWaitComplete, F, T, F, F, F},
}};

bool decide(const FixSet& fixes, const Row& r) {
  TerminationInputs in;
  in.kv_done = r.kv_done;
  in.has_pool = r.has_pool;
  in.pool_done = r.pool_done;
  in.timed_out = r.timed_out;
  return local_can_terminate(r.policy, fixes, in);
}

// The rows where `preset` disagrees with upstream's expectation.
std::vector<int> failing_rows(std::string_view preset) {
  const auto fixes = preset_by_name(preset);
  REQUIRE(fixes);
  std::vector<int> failing;
  for (const Row& r : kMatrix) {
    if (decide(*fixes, r) != r.expected) failing.push_back(r.number);
  }
  return failing;
}

}  // namespace

TEST_CASE("termination: timeout-bounded passes every row of the upstream matrix", "[policy][termination]") {
  REQUIRE(failing_rows("timeout-bounded").empty());
}

TEST_CASE("termination: seed-fix fails only row 6, where the guard overrides an expired timeout",
          "[policy][termination]") {
  REQUIRE(failing_rows("seed-fix") == std::vector<int>{6});
  // Row 6: timeout policy, KV done, sidecar pending, timed out -> seed-fix keeps waiting (#27366).
  REQUIRE_FALSE(decide(*preset_by_name("seed-fix"), kMatrix[4]));
  REQUIRE(kMatrix[4].number == 6);
}

TEST_CASE("termination: pre-fix fails rows 3 and 5, terminating with the sidecar pending", "[policy][termination]") {
  REQUIRE(failing_rows("pre-fix") == std::vector<int>{3, 5});
  for (const Row& r : kMatrix) {
    if (r.number == 3 || r.number == 5) {
      INFO("row " << r.number);
      REQUIRE(decide(*preset_by_name("pre-fix"), r));  // says "can terminate" though the sidecar is pending
      REQUIRE(r.has_pool);
      REQUIRE_FALSE(r.pool_done);
    }
  }
}

TEST_CASE("timeout: linear and capped formulas", "[policy][timeout]") {
  const auto linear = TimeoutConfig::linear_defaults();
  const auto capped = TimeoutConfig::capped_defaults();
  // Linear (1 s + 0.25 s per 1024 tokens): 16 pages of 64 = 1024 tokens.
  REQUIRE(prefetch_timeout_ns(linear, 16, 64) == 1'250'000'000);
  REQUIRE(prefetch_timeout_ns(linear, 0, 64) == 1'000'000'000);
  // Capped (2 s + 0.1 s per 1024 tokens, at most 30 s).
  REQUIRE(prefetch_timeout_ns(capped, 16, 64) == 2'100'000'000);
  REQUIRE(prefetch_timeout_ns(capped, 1024, 1) == 2'100'000'000);
  REQUIRE(prefetch_timeout_ns(capped, 15'625, 64) == 30'000'000'000);  // 1,000,000 tokens: 99.6 s -> 30 s
  // The linear formula has no cap.
  REQUIRE(prefetch_timeout_ns(linear, 15'625, 64) == 1'000'000'000 + 250'000'000LL * 1'000'000 / 1024);
}

TEST_CASE("timeout: a huge per-token budget saturates instead of overflowing", "[policy][timeout]") {
  TimeoutConfig linear = TimeoutConfig::linear_defaults();
  linear.per_ki_token_ns = std::int64_t{86'400'000} * 1'000'000;  // a day per 1024 tokens
  CHECK(prefetch_timeout_ns(linear, 2'000, 64) > linear.base_ns);
  CHECK(prefetch_timeout_ns(linear, std::int64_t{1} << 24, 1024) == std::numeric_limits<TimeNs>::max());
}

TEST_CASE("termination_inputs: an empty hash_value is never kv_done (#9397)", "[policy][termination]") {
  PolicyConfig cfg;
  cfg.fixes = *preset_by_name("pre-fix");
  PrefetchOperation op;
  op.completed_tokens = 0;  // 0 == 0 * page_size must not count as done
  REQUIRE(op.hash_value.empty());
  REQUIRE_FALSE(termination_inputs(cfg, op, 0).kv_done);
  // Without the guard, the race #9397 fixed: 0 of 0 pages reads as complete.
  PolicyConfig racy = cfg;
  racy.fixes = cfg.fixes.without(Fix::kCompletionRaceGuard);
  REQUIRE(termination_inputs(racy, op, 0).kv_done);

  op.hash_value = {1, 2, 3};
  op.completed_tokens = 2 * cfg.page_size_tokens;
  REQUIRE_FALSE(termination_inputs(cfg, op, 0).kv_done);
  op.completed_tokens = 3 * cfg.page_size_tokens;
  REQUIRE(termination_inputs(cfg, op, 0).kv_done);

  // The sidecar fields pass straight through.
  op.pool_transfers.push_back({});
  op.pool_transfers_done = false;
  const auto in = termination_inputs(cfg, op, 0);
  REQUIRE(in.has_pool);
  REQUIRE_FALSE(in.pool_done);
}

TEST_CASE("termination_inputs: timed_out counts from the operation's own start time", "[policy][termination]") {
  PolicyConfig cfg;  // capped defaults, page 64
  PrefetchOperation op;
  op.hash_value.assign(16, 7);  // 1024 tokens: 2.1 s
  op.start_time_ns = 5'000'000'000;
  const TimeNs budget = 2'100'000'000;
  REQUIRE_FALSE(termination_inputs(cfg, op, op.start_time_ns + budget).timed_out);  // not past it yet
  REQUIRE(termination_inputs(cfg, op, op.start_time_ns + budget + 1).timed_out);
  // Had it counted from 0, it would already be out at 2.1 s + 1.
  REQUIRE_FALSE(termination_inputs(cfg, op, budget + 1).timed_out);
}

TEST_CASE("fixes: presets and variant expressions", "[policy][fixes]") {
  std::string error;
  const auto pre = parse_variant("pre-fix", &error);
  REQUIRE(pre);
  // pre-fix is the baseline: the fixes merged before the modelled era, and nothing else.
  FixSet baseline;
  for (const FixInfo& f : all_fixes()) baseline = f.baseline ? baseline.with(f.fix) : baseline;
  REQUIRE(*pre == baseline);
  REQUIRE(pre->has(Fix::kCompletionRaceGuard));
  REQUIRE_FALSE(pre->has(Fix::kPoolTransferGuard));
  REQUIRE(pre->names() == "none");

  const auto seed = parse_variant("seed-fix", &error);
  REQUIRE(seed);
  REQUIRE(*seed == baseline.with(Fix::kPoolTransferGuard));

  const auto racy = parse_variant("pre-fix~completion-race-guard", &error);
  REQUIRE(racy);
  REQUIRE(*racy == baseline.without(Fix::kCompletionRaceGuard));
  REQUIRE(racy->names() == "none; without completion-race-guard");
  const auto all = parse_variant("all-fixes", &error);
  REQUIRE(all);
  // Every fix of the HiMamba path; the dated changes after HiMamba stopped serving models, and a
  // proposal made after it was deleted, stay out, so all-fixes runs the path its scenarios were written for.
  for (const FixInfo& f : all_fixes()) {
    INFO(f.name);
    const bool later = f.fix == Fix::kUnifiedTreeRoute || f.fix == Fix::kRateLimitHalfHost || f.fix == Fix::kHitThenAlloc ||
                       f.fix == Fix::kHybridResultCheck || f.fix == Fix::kThresholdInDrain || f.fix == Fix::kLoadBackAgreedCapacity ||
                       f.fix == Fix::kDsaUnifiedRoute || f.fix == Fix::kDraftSidecars || f.fix == Fix::kMergedTickMin ||
                       f.fix == Fix::kAckDesign || f.fix == Fix::kVoteOnlyUnderTimeout || f.fix == Fix::kClampSkipsKvDerived;
    CHECK(all->has(f.fix) == !later);
  }

  const auto v = parse_variant("timeout-bounded+sidecar-hit-sync", &error);
  REQUIRE(v);
  CHECK(v->has(Fix::kPoolTransferGuard));
  CHECK(v->has(Fix::kTimeoutBeatsGuard));
  CHECK(v->has(Fix::kSidecarHitSync));
  CHECK_FALSE(v->has(Fix::kBulkProgressCheck));
  CHECK_FALSE(v->has(Fix::kRegistrationConsensus));
  REQUIRE(v->names() == "pool-transfer-guard,timeout-beats-guard,sidecar-hit-sync");

  // Several fixes chain.
  const auto many = parse_variant("pre-fix+bulk-progress-check+registration-consensus", &error);
  REQUIRE(many);
  REQUIRE(*many == baseline.with(Fix::kBulkProgressCheck).with(Fix::kRegistrationConsensus));
}

TEST_CASE("fixes: an unknown preset or fix is refused with an error naming it", "[policy][fixes]") {
  std::string error;
  REQUIRE_FALSE(parse_variant("post-fix", &error));
  REQUIRE_THAT(error, Catch::Contains("unknown preset") && Catch::Contains("post-fix"));

  error.clear();
  REQUIRE_FALSE(parse_variant("seed-fix+sidecar-sync", &error));
  REQUIRE_THAT(error, Catch::Contains("unknown fix") && Catch::Contains("sidecar-sync"));

  error.clear();
  REQUIRE_FALSE(parse_variant("seed-fix+sidecar-hit-sync+nonsense", &error));
  REQUIRE_THAT(error, Catch::Contains("nonsense"));

  REQUIRE_FALSE(preset_by_name("timeout"));
  REQUIRE_FALSE(parse_variant("", nullptr));  // no error string asked for: still refused
}

// ---------------------------------------------------------------------------------------------
// Host slot pool

namespace {

// A Runtime that records what is emitted and refuses every world call.
class RecordingRuntime : public Runtime {
 public:
  std::vector<TraceEvent> events;  // at time 0 on rank 0, as the scheduler

  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  ActorKind actor() const override { return ActorKind::kScheduler; }
  TimeNs now_ns() const override { return 0; }
  SignalId make_signal(std::string_view, ActorKind) override { return 0; }
  void notify(SignalId) override {}
  int take_arrivals(std::span<RequestId>) override { return 0; }
  int take_aborts(std::span<RequestId>) override { return 0; }
  TimeNs next_arrival_ns() const override { return -1; }
  void work_started(RequestId) override {}
  void work_finished(RequestId) override {}
  void emit(EventKind kind, RequestId request, std::int64_t a, std::int64_t b, std::int64_t c) override {
    events.push_back({0, 0, ActorKind::kScheduler, kind, request, a, b, c});
  }
  TimeNs copy_done_ns(StorageOp, RequestId, std::int64_t) override { return 0; }

 protected:
  bool submit(WorldCall&, std::coroutine_handle<>) override { return false; }
};

}  // namespace

TEST_CASE("slots: alloc is all or nothing", "[policy][slots]") {
  HostSlotPool pool(SlotPoolKind::kKv, 4);
  std::vector<std::int32_t> out;
  REQUIRE(pool.alloc(0, 3, 1, out));
  REQUIRE(out == std::vector<std::int32_t>{0, 1, 2});  // lowest slots first
  REQUIRE(pool.available() == 1);
  for (auto s : out) REQUIRE(pool.owner(s) == SlotOwner::kOperation);

  std::vector<std::int32_t> more{99};
  REQUIRE_FALSE(pool.alloc(0, 2, 2, more));  // only 1 left
  REQUIRE(more == std::vector<std::int32_t>{99});  // nothing appended
  REQUIRE(pool.available() == 1);
  REQUIRE(pool.owner(3) == SlotOwner::kFree);

  REQUIRE(pool.alloc(0, 1, 2, more));
  REQUIRE(more == std::vector<std::int32_t>{99, 3});
  REQUIRE(pool.available() == 0);
  REQUIRE(pool.violations() == 0);
}

TEST_CASE("slots: the normal lifecycle has no violation and returns the slot", "[policy][slots]") {
  RecordingRuntime rt;
  HostSlotPool pool(SlotPoolKind::kSidecar, 2);
  std::vector<std::int32_t> s;
  REQUIRE(pool.alloc(0, 1, 7, s));
  const auto slot = s.at(0);
  pool.begin_write(rt, slot, 7);
  REQUIRE(pool.owner(slot) == SlotOwner::kWriting);
  pool.end_write(rt, slot, 7);
  REQUIRE(pool.owner(slot) == SlotOwner::kOperation);
  pool.to_tree(rt, slot);
  REQUIRE(pool.owner(slot) == SlotOwner::kTree);
  REQUIRE(pool.queue_release(rt, slot));
  REQUIRE(pool.owner(slot) == SlotOwner::kReleaseQueued);
  REQUIRE(pool.available() == 1);
  pool.free(rt, slot);
  REQUIRE(pool.owner(slot) == SlotOwner::kFree);
  REQUIRE(pool.available() == 2);
  REQUIRE(pool.violations() == 0);
  REQUIRE(rt.events.empty());
  // The freed slot is handed out again.
  std::vector<std::int32_t> again;
  REQUIRE(pool.alloc(0, 2, 8, again));
  REQUIRE(again.front() == slot);
}

TEST_CASE("slots: a double free is a violation and emits slot_violation", "[policy][slots]") {
  RecordingRuntime rt;
  HostSlotPool pool(SlotPoolKind::kKv, 2);
  std::vector<std::int32_t> s;
  REQUIRE(pool.alloc(0, 1, 1, s));
  pool.free(rt, s[0]);
  REQUIRE(pool.violations() == 0);
  REQUIRE(pool.available() == 2);

  pool.free(rt, s[0]);
  REQUIRE(pool.violations() == 1);
  REQUIRE(pool.available() == 2);  // not pushed onto the free stack twice
  REQUIRE(rt.events.size() == 1);
  REQUIRE(rt.events[0].kind == EventKind::kSlotViolation);
  const SlotViolationFields violation = slot_violation_fields(rt.events[0]);
  REQUIRE(violation.slot == s[0]);
  REQUIRE(violation.pool == static_cast<std::int64_t>(SlotPoolKind::kKv));
  REQUIRE(violation.owner == static_cast<std::int64_t>(SlotOwner::kFree));  // at the time

  // A double free must not let two allocations share the slot.
  std::vector<std::int32_t> a, b;
  REQUIRE(pool.alloc(0, 2, 2, a));
  REQUIRE_FALSE(pool.alloc(0, 1, 3, b));
}

TEST_CASE("slots: committing or releasing a free slot is reported and leaves the pool intact", "[policy][slots]") {
  RecordingRuntime rt;
  HostSlotPool pool(SlotPoolKind::kKv, 2);
  std::vector<std::int32_t> s;
  REQUIRE(pool.alloc(0, 1, 1, s));
  pool.free(rt, s[0]);
  pool.to_tree(rt, s[0]);        // the tree takes a slot nobody owns
  REQUIRE_FALSE(pool.queue_release(rt, s[0]));  // and a release is refused for it
  REQUIRE(pool.violations() == 2);
  REQUIRE(pool.owner(s[0]) == SlotOwner::kFree);
  pool.free(rt, s[0]);  // the queued release drains: a double free, not a second stack entry
  REQUIRE(pool.violations() == 3);
  REQUIRE(pool.available() == 2);
  std::vector<std::int32_t> all;
  REQUIRE(pool.alloc(0, 2, 2, all));  // both slots, each once
  REQUIRE(all[0] != all[1]);
}

TEST_CASE("slots: a free during a write is a violation", "[policy][slots]") {
  RecordingRuntime rt;
  HostSlotPool pool(SlotPoolKind::kSidecar, 1);
  std::vector<std::int32_t> s;
  REQUIRE(pool.alloc(0, 1, 4, s));
  pool.begin_write(rt, s[0], 4);
  pool.free(rt, s[0]);
  REQUIRE(pool.violations() == 1);
  REQUIRE(rt.events.size() == 1);
  REQUIRE(rt.events[0].kind == EventKind::kSlotViolation);
  const SlotViolationFields violation = slot_violation_fields(rt.events[0]);
  REQUIRE(violation.slot == s[0]);
  REQUIRE(violation.pool == static_cast<std::int64_t>(SlotPoolKind::kSidecar));
  REQUIRE(violation.owner == static_cast<std::int64_t>(SlotOwner::kWriting));
  // The late end_write of the raced write is not reported a second time.
  pool.end_write(rt, s[0], 4);
  REQUIRE(pool.violations() == 1);
}

TEST_CASE("slots: begin_write into a slot owned by another operation is a violation", "[policy][slots]") {
  RecordingRuntime rt;
  HostSlotPool pool(SlotPoolKind::kKv, 2);
  std::vector<std::int32_t> mine, theirs;
  REQUIRE(pool.alloc(0, 1, 1, mine));
  REQUIRE(pool.alloc(0, 1, 2, theirs));
  pool.begin_write(rt, theirs[0], 1);  // op 1 writes into op 2's slot
  REQUIRE(pool.violations() == 1);
  REQUIRE(rt.events.size() == 1);
  REQUIRE(rt.events[0].kind == EventKind::kSlotViolation);
  const SlotViolationFields violation = slot_violation_fields(rt.events[0]);
  REQUIRE(violation.slot == theirs[0]);
  REQUIRE(violation.owner == static_cast<std::int64_t>(SlotOwner::kOperation));
  REQUIRE(pool.owner(theirs[0]) == SlotOwner::kOperation);  // ownership stays with op 2
  // Op 2 can still write its own slot.
  pool.begin_write(rt, theirs[0], 2);
  REQUIRE(pool.owner(theirs[0]) == SlotOwner::kWriting);
  REQUIRE(pool.violations() == 1);

  // Writing a slot already in the tree is a violation too.
  pool.end_write(rt, theirs[0], 2);
  pool.to_tree(rt, theirs[0]);
  pool.begin_write(rt, theirs[0], 2);
  REQUIRE(pool.violations() == 2);
  REQUIRE(pool.owner(theirs[0]) == SlotOwner::kTree);
}

// ---------------------------------------------------------------------------------------------
// Host radix tree

TEST_CASE("radix tree: a prefix is usable only up to the deepest node with sidecar state", "[policy][radix]") {
  HostRadixTree tree(64);
  const std::vector<PageKey> pages{101, 102, 103};
  const std::vector<std::int32_t> slots{0, 1, 2};
  const auto r = tree.insert(pages, 0, slots);
  REQUIRE(r.inserted_pages == 3);
  REQUIRE(r.matched_pages == 0);
  REQUIRE(r.leaf != HostRadixTree::kRoot);
  REQUIRE(tree.node_count() == 4);  // root + 3

  const std::vector<PageKey> query{101, 102, 103, 104};
  // KV present, but no Mamba state anywhere: HiMamba matches nothing.
  REQUIRE(tree.match_pages(query) == 0);
  REQUIRE(tree.kv_match_pages(query) == 3);

  tree.attach_sidecar(r.leaf, 9);
  REQUIRE(tree.sidecar_slot(r.leaf) == 9);
  REQUIRE(tree.match_pages(query) == 3);
  REQUIRE(tree.match_pages(pages) == 3);
  // A query that stops above the state node cannot use it.
  REQUIRE(tree.match_pages(std::span<const PageKey>(pages).first(2)) == 0);
  REQUIRE(tree.kv_match_pages(std::span<const PageKey>(pages).first(2)) == 2);
  // A diverging query matches nothing past the divergence.
  REQUIRE(tree.match_pages(std::vector<PageKey>{101, 999, 103}) == 0);
  REQUIRE(tree.kv_match_pages(std::vector<PageKey>{101, 999, 103}) == 1);
}

TEST_CASE("radix tree: the deepest node with state wins", "[policy][radix]") {
  HostRadixTree tree(64);
  const std::vector<PageKey> pages{1, 2, 3, 4, 5};
  const auto r = tree.insert(pages, 0, std::vector<std::int32_t>{0, 1, 2, 3, 4});
  REQUIRE(r.inserted_pages == 5);
  // Find the node of page 2 by inserting its prefix again (an existing path: all matched).
  const auto two = tree.insert(std::span<const PageKey>(pages).first(2), 0, std::vector<std::int32_t>{0, 1});
  REQUIRE(two.inserted_pages == 0);
  REQUIRE(two.matched_pages == 2);

  tree.attach_sidecar(two.leaf, 1);
  REQUIRE(tree.match_pages(pages) == 2);
  tree.attach_sidecar(r.leaf, 2);
  REQUIRE(tree.match_pages(pages) == 5);
  REQUIRE(tree.match_pages(std::span<const PageKey>(pages).first(4)) == 2);  // the deeper state is out of reach
  REQUIRE(tree.kv_match_pages(pages) == 5);
}

TEST_CASE("radix tree: evict_host takes the least recently used unlocked leaf first", "[policy][radix]") {
  HostRadixTree tree(64);
  const std::vector<PageKey> a{1, 2, 3};
  const std::vector<PageKey> b{1, 7};
  tree.insert(a, 0, std::vector<std::int32_t>{10, 11, 12});
  tree.insert(b, 1, std::vector<std::int32_t>{20});
  REQUIRE(tree.node_count() == 5);
  tree.touch(a, 3);  // a is now more recent than b's leaf

  auto v = tree.evict_lru_leaf();
  REQUIRE(v);
  CHECK(v->kv_slot == 20);  // b's own page; page 1 is shared and still has a child
  CHECK(v->sidecar_slot == -1);
  CHECK(tree.kv_match_pages(b) == 1);

  // Locking page 2 keeps it and page 1: only page 3 can go.
  const std::int32_t two = tree.node_at(a, 2);
  tree.lock(two);
  v = tree.evict_lru_leaf();
  REQUIRE(v);
  CHECK(v->kv_slot == 12);
  CHECK_FALSE(tree.evict_lru_leaf());
  CHECK(tree.kv_match_pages(a) == 2);
  tree.unlock(two);
  CHECK(tree.evict_lru_leaf()->kv_slot == 11);  // then upwards: the parent became a leaf
  CHECK(tree.evict_lru_leaf()->kv_slot == 10);
  CHECK_FALSE(tree.evict_lru_leaf());
  CHECK(tree.node_count() == 1);

  // Freed nodes are reused: the capacity counts live nodes only.
  HostRadixTree small(3);
  small.insert(std::vector<PageKey>{5, 6}, 0, std::vector<std::int32_t>{0, 1});
  REQUIRE(small.evict_lru_leaf());
  REQUIRE(small.evict_lru_leaf());
  const auto again = small.insert(std::vector<PageKey>{8, 9}, 0, std::vector<std::int32_t>{2, 3});
  CHECK(again.inserted_pages == 2);
  CHECK(small.kv_match_pages(std::vector<PageKey>{8, 9}) == 2);
  CHECK(small.kv_match_pages(std::vector<PageKey>{5, 6}) == 0);
}

TEST_CASE("radix tree: Mamba state is dropped from the least recently used unlocked node, its KV kept", "[policy][radix]") {
  HostRadixTree tree(64);
  const std::vector<PageKey> p{1, 2, 3, 4};
  const auto full = tree.insert(p, 0, std::vector<std::int32_t>{0, 1, 2, 3});
  const std::int32_t two = tree.node_at(p, 2);
  tree.attach_sidecar(two, 5);
  tree.attach_sidecar(full.leaf, 6);
  tree.touch(p, 4);  // the same tick along the path: the shallower node is filed first
  REQUIRE(tree.match_pages(p) == 4);

  tree.lock(two);
  CHECK(tree.evict_lru_sidecar() == std::optional<std::int32_t>{6});  // page 2's state is locked
  CHECK_FALSE(tree.evict_lru_sidecar());
  CHECK(tree.match_pages(p) == 2);
  tree.unlock(two);
  CHECK(tree.evict_lru_sidecar() == std::optional<std::int32_t>{5});
  CHECK(tree.match_pages(p) == 0);
  CHECK(tree.kv_match_pages(p) == 4);  // tombstones: the KV pages stay
  // A leaf evicted with its state hands both slots back.
  tree.attach_sidecar(full.leaf, 7);
  const auto v = tree.evict_lru_leaf();
  REQUIRE(v);
  CHECK(v->kv_slot == 3);
  CHECK(v->sidecar_slot == 7);
}

TEST_CASE("radix tree: inserting over an existing path reports matched pages", "[policy][radix]") {
  HostRadixTree tree(64);
  const std::vector<PageKey> base{10, 20, 30};
  const auto first = tree.insert(base, 0, std::vector<std::int32_t>{0, 1, 2});
  REQUIRE(first.inserted_pages == 3);

  // The same pages plus one, all backed by new slots: 3 matched, 1 inserted.
  const std::vector<PageKey> longer{10, 20, 30, 40};
  const auto second = tree.insert(longer, 0, std::vector<std::int32_t>{5, 6, 7, 8});
  REQUIRE(second.matched_pages == 3);
  REQUIRE(second.inserted_pages == 1);
  REQUIRE(tree.node_count() == 5);
  REQUIRE(tree.kv_match_pages(longer) == 4);

  // Only pages from first_new count: page 20 is an anchor, 30 matched, 40 matched, 50 inserted.
  const std::vector<PageKey> extended{10, 20, 30, 40, 50};
  const auto third = tree.insert(extended, 2, std::vector<std::int32_t>{9, 10, 11});
  REQUIRE(third.matched_pages == 2);
  REQUIRE(third.inserted_pages == 1);
  REQUIRE(tree.node_count() == 6);

  // A path sharing only page 10 branches off.
  const auto branch = tree.insert(std::vector<PageKey>{10, 21}, 1, std::vector<std::int32_t>{12});
  REQUIRE(branch.matched_pages == 0);
  REQUIRE(branch.inserted_pages == 1);
  REQUIRE(tree.kv_match_pages(std::vector<PageKey>{10, 21, 30}) == 2);
  REQUIRE(tree.kv_match_pages(extended) == 5);
  // Still no sidecar state anywhere: HiMamba matches nothing.
  REQUIRE(tree.match_pages(extended) == 0);
}

TEST_CASE("fixes: a Variant parses, prints and selects its fixes in order", "[policy][fixes]") {
  std::string error;
  const auto v = Variant::parse("timeout-bounded+sidecar-hit-sync~completion-race-guard", &error);
  REQUIRE(v);
  CHECK(v->preset == "timeout-bounded");
  REQUIRE(v->steps.size() == 2);
  CHECK(v->steps[0] == Variant::Step{true, "sidecar-hit-sync"});
  CHECK(v->steps[1] == Variant::Step{false, "completion-race-guard"});
  CHECK(v->text() == "timeout-bounded+sidecar-hit-sync~completion-race-guard");
  CHECK(v->flags() == " --preset timeout-bounded --fix sidecar-hit-sync --without completion-race-guard");
  CHECK(Variant::parse(v->text(), nullptr) == v);  // the text reads back as the same value
  CHECK(v->fixes() == *parse_variant(v->text(), nullptr));
  CHECK(v->fixes().has(Fix::kSidecarHitSync));
  CHECK_FALSE(v->fixes().has(Fix::kCompletionRaceGuard));

  // Steps apply in order: removing then adding a fix leaves it in, adding then removing leaves it out.
  CHECK(Variant::parse("pre-fix~pool-transfer-guard+pool-transfer-guard", nullptr)->fixes().has(Fix::kPoolTransferGuard));
  CHECK_FALSE(Variant::parse("pre-fix+pool-transfer-guard~pool-transfer-guard", nullptr)->fixes().has(Fix::kPoolTransferGuard));

  // A preset alone, and the names that fail.
  CHECK(Variant::parse("seed-fix", nullptr)->text() == "seed-fix");
  CHECK(Variant::parse("seed-fix", nullptr)->flags() == " --preset seed-fix");
  CHECK_FALSE(Variant::parse("post-fix", &error));
  CHECK(error == "unknown preset 'post-fix': a preset name, an upstream date (YYYY-MM-DD) or a timeline commit");
  // An upstream point in place of a preset.
  CHECK(Variant::parse("2026-06-04+pool-transfer-guard", nullptr)->flags() == " --upstream 2026-06-04 --fix pool-transfer-guard");
  CHECK(Variant::parse("2026-06-04+pool-transfer-guard", nullptr)->fixes() == *parse_variant("seed-fix", nullptr));
  CHECK_FALSE(Variant::parse("2026-09-01", &error));
  CHECK(error.find("up to 2026-08-28") != std::string::npos);
  CHECK_FALSE(Variant::parse("deadbeef1", &error));
  CHECK(error.find("not on the model's timeline") != std::string::npos);
  CHECK_FALSE(Variant::parse("seed-fix+nonsense", &error));
  CHECK(error == "unknown fix 'nonsense'");
}

namespace {

// What the tree must do, kept naively: each live node's last use, locks and sidecar; a victim is
// the minimum (last use, node) of the evictable ones, found by scanning them all.
struct ShadowTree {
  struct Info {
    std::uint64_t last_use = 0;
    int locks = 0;
    bool sidecar = false;
  };
  std::map<std::int32_t, Info> live;  // by node id
  std::map<std::int32_t, std::int32_t> node_of_slot;

  bool leaf(const HostRadixTree& t, std::int32_t node) const {
    for (const auto& [other, info] : live) {
      if (t.parent(other) == node) return false;
    }
    return true;
  }
  std::optional<std::int32_t> oldest(const HostRadixTree& t, bool sidecar) const {
    std::optional<std::int32_t> best;
    for (const auto& [node, info] : live) {
      const bool evictable = info.locks == 0 && (sidecar ? info.sidecar : leaf(t, node));
      if (evictable && (!best || info.last_use < live.at(*best).last_use)) best = node;  // ties: the lower id, met first
    }
    return best;
  }
};

}  // namespace

TEST_CASE("host radix tree: eviction takes the least recently used evictable node, against a naive model", "[policy]") {
  HostRadixTree tree(1 << 12);
  ShadowTree shadow;
  std::uint64_t tick = 0;
  std::int32_t next_slot = 0;
  std::uint64_t state = 11;
  auto next = [&](std::uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  auto random_path = [&] {
    std::vector<PageKey> path(1 + next(5));
    // A small alphabet below the second page, so paths share prefixes; wide ones at the root and
    // under each first page, whose children outgrow a scan and get indexed, and whose child
    // lists empty and are reused as they are evicted.
    for (std::size_t i = 0; i < path.size(); ++i) path[i] = 1 + next(i == 0 ? 40 : i == 1 ? 24 : 3);
    return path;
  };
  auto mark_used = [&](const std::vector<PageKey>& path, std::int32_t depth) {
    ++tick;
    for (std::int32_t d = 1; d <= depth; ++d) shadow.live[tree.node_at(path, d)].last_use = tick;
  };
  int evicted_leaves = 0, evicted_sidecars = 0;
  for (int step = 0; step < 20'000; ++step) {
    const std::vector<PageKey> path = random_path();
    const std::int32_t present = tree.kv_match_pages(path);
    switch (next(7)) {
      case 0:
      case 1: {  // insert the path
        std::vector<std::int32_t> slots;
        for (std::size_t i = static_cast<std::size_t>(present); i < path.size(); ++i) slots.push_back(next_slot++);
        if (tree.node_count() + static_cast<std::int32_t>(slots.size()) >= (1 << 12)) break;
        tree.insert(path, present, slots);
        for (std::size_t i = static_cast<std::size_t>(present); i < path.size(); ++i) {
          shadow.node_of_slot[slots[i - static_cast<std::size_t>(present)]] = tree.node_at(path, static_cast<std::int32_t>(i) + 1);
        }
        mark_used(path, static_cast<std::int32_t>(path.size()));
        break;
      }
      case 2: tree.touch(path, present); mark_used(path, present); break;
      case 3: {  // lock or unlock the present prefix's end
        if (present == 0) break;
        const std::int32_t node = tree.node_at(path, present);
        if (shadow.live[node].locks > 0 && next(2) == 0) {
          tree.unlock(node);
          --shadow.live[node].locks;
        } else if (shadow.live[node].locks < 2) {
          tree.lock(node);
          ++shadow.live[node].locks;
        }
        break;
      }
      case 4: {
        if (present == 0) break;
        const std::int32_t node = tree.node_at(path, present);
        if (tree.sidecar_slot(node) >= 0) break;
        tree.attach_sidecar(node, next_slot++);
        shadow.live[node].sidecar = true;
        break;
      }
      case 5: {
        const std::optional<std::int32_t> want = shadow.oldest(tree, false);
        const auto got = tree.evict_lru_leaf();
        REQUIRE(got.has_value() == want.has_value());
        if (!got) break;
        REQUIRE(shadow.node_of_slot.at(got->kv_slot) == *want);
        shadow.live.erase(*want);
        ++evicted_leaves;
        break;
      }
      case 6: {
        const std::optional<std::int32_t> want = shadow.oldest(tree, true);
        const auto got = tree.evict_lru_sidecar();
        REQUIRE(got.has_value() == want.has_value());
        if (!got) break;
        REQUIRE(tree.sidecar_slot(*want) < 0);
        shadow.live[*want].sidecar = false;
        ++evicted_sidecars;
        break;
      }
    }
    REQUIRE(tree.node_count() == static_cast<std::int32_t>(shadow.live.size()) + 1);  // and the root
  }
  // The walk evicted both ways, many times.
  CHECK(evicted_leaves > 1000);
  CHECK(evicted_sidecars > 100);
}

TEST_CASE("fifo: the same order as a deque through growth, compaction and emptying", "[policy][fifo]") {
  Fifo<int> fifo;
  std::deque<int> model;
  std::uint64_t x = 12345;
  int next = 0;
  for (int step = 0; step < 20'000; ++step) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    // Phases that mostly push, then mostly pop, so the queue fills past the compaction point and
    // empties again many times.
    const bool push = ((step / 500) % 2 == 0) ? (x >> 60) < 11 : (x >> 60) < 5;
    if (push || model.empty()) {
      fifo.push_back(next);
      model.push_back(next);
      ++next;
    } else {
      REQUIRE(fifo.front() == model.front());
      fifo.pop_front();
      model.pop_front();
    }
    REQUIRE(fifo.size() == model.size());
    REQUIRE(fifo.empty() == model.empty());
    if (!model.empty()) {
      const std::size_t i = static_cast<std::size_t>(x % model.size());
      REQUIRE(fifo[i] == model[i]);
      REQUIRE(std::vector<int>(fifo.begin(), fifo.end()) == std::vector<int>(model.begin(), model.end()));
    }
  }
}

TEST_CASE("fifo: a popped item is let go of at once", "[policy][fifo]") {
  Fifo<std::shared_ptr<int>> fifo;
  auto held = std::make_shared<int>(7);
  const std::weak_ptr<int> watch = held;
  fifo.push_back(std::move(held));
  fifo.push_back(std::make_shared<int>(8));
  fifo.pop_front();
  REQUIRE(watch.expired());  // not kept alive in the taken prefix
  REQUIRE(*fifo.front() == 8);
}

TEST_CASE("key index: finds, reassigns and erases as a map does, through growth and long probe runs", "[policy][key_index]") {
  KeyIndex index;
  std::map<PageKey, std::uint32_t> model;
  std::uint64_t x = 99;
  for (int step = 0; step < 50'000; ++step) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    // 700 distinct keys, so the table grows to near half full and erases shift clustered runs back.
    const PageKey key = ((x >> 33) % 700) << 20;
    const auto value = static_cast<std::uint32_t>(x >> 48);
    const bool present = model.count(key) > 0;
    if ((x >> 62) == 0 && present) {
      index.erase(key);
      model.erase(key);
    } else {
      index.assign(key, value);
      model[key] = value;
    }
    REQUIRE(index.size() == model.size());
    const PageKey probe = ((x >> 20) % 800) << 20;  // some never added
    const auto it = model.find(probe);
    REQUIRE(index.find(probe) == (it == model.end() ? KeyIndex::kAbsent : it->second));
  }
  for (const auto& [key, value] : model) REQUIRE(index.find(key) == value);
}
