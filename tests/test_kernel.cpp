// Kernel (event order, run limits, determinism), RandomStream and Task<T> nesting.
#include <catch2/catch.hpp>

#include <coroutine>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "policy/task.h"
#include "sim/kernel.h"
#include "run/random.h"

namespace {

using hcsim::Kernel;
using hcsim::RandomStream;
using hcsim::Task;
using hcsim::TimeNs;

using Trace = std::vector<std::pair<TimeNs, int>>;  // (resume time, actor id)

// The smallest world call: suspend and have the kernel resume us `d` ns later.
struct Delay {
  Kernel& kernel;
  TimeNs d;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { kernel.schedule_at(kernel.now_ns() + d, h); }
  void await_resume() const noexcept {}
};

// Records (now, id) each time the kernel resumes it.
Task<> mark(Kernel& k, int id, Trace& trace) {
  trace.emplace_back(k.now_ns(), id);
  co_return;
}

// Sleeps each delay in turn, recording (now, id) after each.
Task<> actor(Kernel& k, int id, std::vector<TimeNs> delays, Trace& trace) {
  for (TimeNs d : delays) {
    co_await Delay{k, d};
    trace.emplace_back(k.now_ns(), id);
  }
}

Task<> stopper(Kernel& k, Trace& trace) {
  trace.emplace_back(k.now_ns(), -1);
  k.stop();
  co_return;
}

}  // namespace

TEST_CASE("kernel: equal times resume in insertion order, earlier times first", "[kernel]") {
  Kernel k;
  Trace trace;
  std::vector<Task<>> tasks;
  // Scheduled out of time order; ties at t=100 among ids 1, 3, 4 and at t=50 among 2, 5.
  const std::vector<std::pair<TimeNs, int>> plan = {{100, 1}, {50, 2}, {100, 3}, {100, 4}, {50, 5}, {0, 6}};
  for (auto [t, id] : plan) {
    tasks.push_back(mark(k, id, trace));
    k.schedule_at(t, tasks.back().handle());
  }
  REQUIRE(k.pending() == plan.size());
  REQUIRE(k.next_time_ns() == 0);
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  const Trace expected = {{0, 6}, {50, 2}, {50, 5}, {100, 1}, {100, 3}, {100, 4}};
  REQUIRE(trace == expected);
  REQUIRE(k.events_processed() == plan.size());
  for (const auto& t : tasks) REQUIRE(t.done());
}

TEST_CASE("kernel: run(time_max) stops before later events and leaves them pending", "[kernel]") {
  Kernel k;
  Trace trace;
  std::vector<Task<>> tasks;
  for (auto [t, id] : std::vector<std::pair<TimeNs, int>>{{100, 1}, {200, 2}, {300, 3}}) {
    tasks.push_back(mark(k, id, trace));
    k.schedule_at(t, tasks.back().handle());
  }
  // An event exactly at time_max runs; the one after it does not.
  REQUIRE(k.run(200) == Kernel::RunEnd::kReachedTime);
  REQUIRE(trace == Trace{{100, 1}, {200, 2}});
  REQUIRE(k.pending() == 1);
  REQUIRE(k.next_time_ns() == 300);
  REQUIRE(k.now_ns() == 200);
  REQUIRE_FALSE(tasks[2].done());

  // Running past it later picks the pending event up.
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(trace == Trace{{100, 1}, {200, 2}, {300, 3}});
  REQUIRE(k.pending() == 0);
}

TEST_CASE("kernel: run(time_max) with nothing due advances the clock to time_max", "[kernel]") {
  Kernel k;
  Trace trace;
  Task<> t = mark(k, 1, trace);
  k.schedule_at(5'000, t.handle());
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kReachedTime);
  REQUIRE(trace.empty());
  REQUIRE(k.now_ns() == 1'000);
  REQUIRE(k.pending() == 1);
}

TEST_CASE("kernel: stop() ends run with kStopped and keeps the rest pending", "[kernel]") {
  Kernel k;
  Trace trace;
  Task<> a = mark(k, 1, trace);
  Task<> s = stopper(k, trace);
  Task<> b = mark(k, 2, trace);
  k.schedule_at(10, a.handle());
  k.schedule_at(20, s.handle());
  k.schedule_at(30, b.handle());
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kStopped);
  // It returns right after the event that asked for it.
  REQUIRE(trace == Trace{{10, 1}, {20, -1}});
  REQUIRE(k.pending() == 1);
  REQUIRE(k.now_ns() == 20);
  REQUIRE_FALSE(b.done());
  // run() consumes the stop: the next run carries on with what is pending.
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(trace == Trace{{10, 1}, {20, -1}, {30, 2}});
  REQUIRE(b.done());
}

TEST_CASE("kernel: stop() outside run makes the next run return before any event", "[kernel]") {
  Kernel k;
  Trace trace;
  Task<> a = mark(k, 1, trace);
  k.schedule_at(10, a.handle());
  k.stop();
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kStopped);
  REQUIRE(trace.empty());
  REQUIRE(k.events_processed() == 0);
  REQUIRE(k.pending() == 1);
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(trace == Trace{{10, 1}});
}

TEST_CASE("kernel: the event limit ends run with kEventLimit", "[kernel]") {
  Kernel k;
  Trace trace;
  std::vector<Task<>> tasks;
  for (int id = 0; id < 5; ++id) {
    tasks.push_back(mark(k, id, trace));
    k.schedule_at(10 * id, tasks.back().handle());
  }
  REQUIRE(k.run(1'000, 3) == Kernel::RunEnd::kEventLimit);
  REQUIRE(k.events_processed() == 3);
  REQUIRE(trace == Trace{{0, 0}, {10, 1}, {20, 2}});
  REQUIRE(k.pending() == 2);
  // The limit is per call: the next run continues where this one stopped.
  REQUIRE(k.run(1'000, 3) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(k.events_processed() == 5);
}

namespace {

// One kernel with several actors whose delays produce ties and interleavings.
Trace run_world() {
  Kernel k;
  Trace trace;
  std::vector<Task<>> tasks;
  tasks.push_back(actor(k, 0, {10, 10, 30, 5}, trace));
  tasks.push_back(actor(k, 1, {20, 0, 25, 5}, trace));
  tasks.push_back(actor(k, 2, {5, 15, 30, 0, 5}, trace));
  tasks.push_back(actor(k, 3, {20, 20, 15}, trace));
  for (auto& t : tasks) k.schedule_at(0, t.handle());
  REQUIRE(k.run(1'000'000) == Kernel::RunEnd::kQueueEmpty);
  for (const auto& t : tasks) REQUIRE(t.done());
  return trace;
}

}  // namespace

TEST_CASE("kernel: identical kernels driving identical coroutines resume in the same order", "[kernel][determinism]") {
  const Trace first = run_world();
  const Trace second = run_world();
  REQUIRE(first.size() == 16);
  REQUIRE(first == second);
  // And the order is the documented one: by time, ties by scheduling order.
  // At t=20 actor 1 resumes twice: its 0 ns sleep is queued behind the three already due then.
  const Trace expected = {{5, 2},  {10, 0}, {20, 1}, {20, 3}, {20, 2}, {20, 0}, {20, 1}, {40, 3},
                          {45, 1}, {50, 2}, {50, 0}, {50, 1}, {50, 2}, {55, 3}, {55, 0}, {55, 2}};
  REQUIRE(first == expected);
}

TEST_CASE("random: the same (seed, name) gives the same sequence", "[random]") {
  RandomStream a(42, "delay/0");
  RandomStream b(42, "delay/0");
  for (int i = 0; i < 1'000; ++i) REQUIRE(a.next_u64() == b.next_u64());
}

TEST_CASE("random: different names or seeds give different sequences", "[random]") {
  auto draw = [](std::uint64_t seed, const char* name) {
    RandomStream s(seed, name);
    std::vector<std::uint64_t> v;
    for (int i = 0; i < 16; ++i) v.push_back(s.next_u64());
    return v;
  };
  const auto base = draw(42, "delay/0");
  REQUIRE(base != draw(42, "delay/1"));
  REQUIRE(base != draw(43, "delay/0"));
  // Not a degenerate generator either.
  REQUIRE(std::set<std::uint64_t>(base.begin(), base.end()).size() == base.size());
}

TEST_CASE("random: uniform_ns stays within its inclusive bounds and reaches both", "[random]") {
  RandomStream s(7, "uniform");
  std::set<TimeNs> seen;
  for (int i = 0; i < 2'000; ++i) {
    const TimeNs v = s.uniform_ns(3, 6);
    REQUIRE(v >= 3);
    REQUIRE(v <= 6);
    seen.insert(v);
  }
  REQUIRE(seen == std::set<TimeNs>{3, 4, 5, 6});
  REQUIRE(s.uniform_ns(1'234, 1'234) == 1'234);  // a one-point range
  for (int i = 0; i < 1'000; ++i) {
    const TimeNs v = s.uniform_ns(1'000, 5'000);
    REQUIRE(v >= 1'000);
    REQUIRE(v <= 5'000);
  }
}

TEST_CASE("random: next_unit is in [0, 1)", "[random]") {
  RandomStream s(9, "unit");
  for (int i = 0; i < 1'000; ++i) {
    const double u = s.next_unit();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
}

TEST_CASE("random: lognormal_ns with sigma 0 returns the median", "[random]") {
  RandomStream s(11, "lognormal");
  for (int i = 0; i < 100; ++i) REQUIRE(s.lognormal_ns(488'000'000, 0.0) == 488'000'000);
  // With a spread, draws land on both sides of the median and stay positive.
  bool below = false, above = false;
  for (int i = 0; i < 200; ++i) {
    const TimeNs v = s.lognormal_ns(1'000'000, 0.5);
    REQUIRE(v > 0);
    below = below || v < 1'000'000;
    above = above || v > 1'000'000;
  }
  REQUIRE(below);
  REQUIRE(above);
}

namespace {

Task<int> doubled_later(Kernel& k, int v) {
  co_await Delay{k, 100};
  co_return v * 2;
}

Task<int> plus_one_of_doubled(Kernel& k, int v) {
  const int d = co_await doubled_later(k, v);
  co_return d + 1;
}

Task<> await_value(Kernel& k, int& out, TimeNs& at) {
  out = co_await plus_one_of_doubled(k, 20);
  at = k.now_ns();
}

Task<int> throws_later(Kernel& k) {
  co_await Delay{k, 50};
  throw hcsim::WorldCallRaised("storage read failed");
  co_return 0;  // never reached; makes this a Task<int> coroutine returning a value
}

Task<> catch_nested(Kernel& k, std::string& caught) {
  try {
    (void)co_await throws_later(k);
  } catch (const std::runtime_error& e) {
    caught = e.what();
  }
}

Task<> let_it_escape(Kernel& k, bool& after) {
  (void)co_await throws_later(k);
  after = true;  // must not run
}

Task<> runs_out_of_memory(Kernel& k) {
  co_await Delay{k, 50};
  throw std::bad_alloc();
}

}  // namespace

TEST_CASE("task: a nested co_await of a Task<int> returns its value", "[task]") {
  Kernel k;
  int out = 0;
  TimeNs at = -1;
  Task<> t = await_value(k, out, at);
  k.schedule_at(0, t.handle());
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(t.done());
  REQUIRE(out == 41);
  REQUIRE(at == 100);  // the inner sleep was the only event besides the start
  REQUIRE(k.events_processed() == 2);
  REQUIRE_FALSE(t.exception());
}

TEST_CASE("task: an exception inside a nested task propagates to the awaiter", "[task]") {
  Kernel k;
  std::string caught;
  Task<> t = catch_nested(k, caught);
  k.schedule_at(0, t.handle());
  REQUIRE(k.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(t.done());
  REQUIRE(caught == "storage read failed");
  REQUIRE_FALSE(t.exception());

  // Uncaught, it ends the awaiter too and is held by the top-level task for the world to report.
  Kernel k2;
  bool after = false;
  Task<> u = let_it_escape(k2, after);
  k2.schedule_at(0, u.handle());
  REQUIRE(k2.run(1'000) == Kernel::RunEnd::kQueueEmpty);
  REQUIRE(u.done());
  REQUIRE_FALSE(after);
  REQUIRE(u.exception());
  REQUIRE_THROWS_WITH(std::rethrow_exception(u.exception()), "storage read failed");
}

TEST_CASE("task: what the model does not raise (out of memory) leaves the run instead of ending an actor", "[task]") {
  Kernel k;
  Task<> t = runs_out_of_memory(k);
  k.schedule_at(0, t.handle());
  REQUIRE_THROWS_AS(k.run(1'000), std::bad_alloc);
  REQUIRE_FALSE(t.exception());  // not a dead actor for the diagnosis to report
}
