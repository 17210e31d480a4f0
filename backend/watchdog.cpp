#include "backend/watchdog.h"

#include <algorithm>
#include <utility>

#include "policy/assert.h"

namespace hcsim {

Watchdog::Watchdog(WatchedWorld& world, WatchdogBounds bounds) : world_(world), bounds_(bounds) {
  HCSIM_ASSERT(bounds_.ranks > 0 && bounds_.watchdog_ns > 0 && bounds_.detector.check_period_ns > 0);
}

WorldCheck Watchdog::check_at(TimeNs now_ns, const CollectiveLedger* collectives, const WorkLedger& work) const {
  WorldCheck c;
  c.now_ns = now_ns;
  c.ranks = bounds_.ranks;
  c.collectives = collectives;
  c.work = &work;
  c.bounds = &bounds_.detector;
  c.stall_bound = false;  // open collectives are the watchdog's own bound (watchdog_ns)
  return c;
}

Verdict Watchdog::watch() {
  const DetectorBounds& bounds = bounds_.detector;
  TimeNs next_check_ns = bounds.check_period_ns;
  TimeNs done_at_ns = -1;
  // Every branch ends the run by the first tick at or past the horizon: the bounds' check declares
  // the horizon, and quiescence is capped there (unless the run completed later), as in the
  // simulator. So the ticks are bounded in time, if not in number (news wakes a tick early).
  for (;;) {
    const WatchTick t = world_.wait_tick(std::chrono::milliseconds(1));
    if (!t.transport_error.empty()) return fire("the transport failed: " + t.transport_error, false);
    if (t.work_done) {
      // Quiescence, as the simulator's: let transfers in flight land and releases drain, then stop.
      if (done_at_ns < 0) done_at_ns = t.now_ns;
      const TimeNs quiet_ns = std::min(std::max(done_at_ns, t.last_due_transfer_ns) + bounds.quiesce_ns,
                                       std::max(bounds.horizon_ns, done_at_ns + bounds.quiesce_ns));
      if (t.now_ns >= quiet_ns) return complete(done_at_ns);
      continue;
    }
    const TimeNs open_since = world_.recorder().oldest_open_since_ns();
    const bool transfer_quiet = t.last_due_transfer_ns <= t.now_ns && t.now_ns - t.last_transfer_done_ns >= bounds_.watchdog_ns;
    if (open_since >= 0 && transfer_quiet && t.now_ns - open_since >= bounds_.watchdog_ns) {
      return fire("a collective has been open for " + std::to_string((t.now_ns - open_since) / 1'000'000) + " ms", t.none_runnable);
    }
    const TimeNs idle_ns = t.now_ns - t.last_progress_ns;
    if (t.work_owed && transfer_quiet && idle_ns >= bounds_.watchdog_ns) {
      return fire("no actor made progress for " + std::to_string(idle_ns / 1'000'000) + " ms", t.none_runnable);
    }
    if (t.now_ns < next_check_ns) continue;
    next_check_ns += bounds.check_period_ns;
    if (auto v = check_bounds(t.now_ns)) {
      Verdict out = world_.finish(std::move(*v));
      world_.stop_actors(true);
      return out;
    }
  }
}

std::optional<Verdict> Watchdog::check_bounds(TimeNs now_ns) {
  return world_.with_work([&](const WorkLedger& work) { return bound_verdict(check_at(now_ns, nullptr, work)); });
}

Verdict Watchdog::complete(TimeNs done_at_ns) {
  world_.stop_actors(false);
  const FlightRecorder::Snapshot snap = world_.recorder().snapshot();
  const TimeNs now_ns = world_.now_ns();
  std::optional<Verdict> v = world_.with_work([&](const WorkLedger& work) {
    WorldCheck c = check_at(now_ns, &snap, work);
    c.quiet_since_ns = done_at_ns;
    return outright_verdict(c);
  });
  HCSIM_ASSERT(v.has_value());  // a mismatch, else complete
  return world_.finish(std::move(*v));
}

Verdict Watchdog::fire(std::string reason, bool none_runnable) {
  const TimeNs now_ns = world_.now_ns();
  const FlightRecorder::Snapshot snap = world_.recorder().snapshot();
  std::optional<Verdict> v = world_.with_work([&](const WorkLedger& work) {
    WorldCheck c = check_at(now_ns, &snap, work);
    c.watchdog_fired = true;
    c.none_runnable = none_runnable;
    return outright_verdict(c);
  });
  HCSIM_ASSERT(v.has_value());  // a fired watchdog always declares one
  firing_ = {true, std::move(reason), now_ns};
  Verdict out = world_.finish(std::move(*v));  // the actors' states as the watchdog found them
  world_.stop_actors(true);
  return out;
}

}  // namespace hcsim
