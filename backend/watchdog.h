// Watchdog: what the thread that calls ThreadWorld::run does while the actors run. Every tick
// (1 ms, or sooner on news) it reads the world and ends the run: completed once every request is
// done and the run has drained; fired once a collective stays open, or nothing progresses while
// work is owed, for watchdog_ns with no L3 transfer due or landed meanwhile (one may end the wait,
// as the simulator's pending events may), or once the transport fails; starved once a request
// waits past its bound or the horizon passes. A firing with no actor able to run is a deadlock, as
// the simulator's empty queue is; else the oldest collective a member never entered is named. Its verdicts come from the hang detector's order
// (run/hang_detector.h), with the simulator's diagnosis built from the flight recorder, so it never
// hangs silently.
//
//   Watchdog dog(view, WatchdogBounds{ranks, bounds, 1'000'000'000});
//   Verdict v = dog.watch();                  // the actors are stopped (or aborted) when it returns
//   if (dog.firing().fired) ...               // "a collective has been open for 1000 ms"
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "backend/flight_recorder.h"
#include "run/hang_detector.h"
#include "run/work_ledger.h"
#include "run/world_config.h"

namespace hcsim {

// What the watchdog reads of the world at one tick, taken under the world's lock.
struct WatchTick {
  TimeNs now_ns = 0;
  std::string transport_error;    // the first collective the transport failed, or ""
  TimeNs last_progress_ns = 0;    // the last world call that completed
  bool work_done = false;         // every request done on every rank, and no arrival left
  bool work_owed = false;         // some request started and not done on every rank
  TimeNs last_due_transfer_ns = 0;  // the latest end of a storage call in flight that will end, or 0
  TimeNs last_transfer_done_ns = 0; // when the latest storage call ended
  bool none_runnable = false;     // every actor left or waits on what only another actor ends
};

// The narrow view of a threaded world the watchdog sees: its clock, its flight recorder, a tick's
// reading, the work ledger under the world's lock, and the two things it may do: stop the actors
// and finish a verdict with their states.
class WatchedWorld {
 public:
  virtual TimeNs now_ns() const = 0;
  virtual const FlightRecorder& recorder() const = 0;
  // Waits up to `tick` for news (a request done, an actor gone, a transport failure), then reads.
  virtual WatchTick wait_tick(std::chrono::nanoseconds tick) = 0;
  // Runs `read` under the world's lock with the work ledger.
  virtual std::optional<Verdict> with_work(const std::function<std::optional<Verdict>(const WorkLedger&)>& read) = 0;
  // abort: the watchdog fired (collectives are aborted); else a graceful stop of a completed run.
  virtual void stop_actors(bool abort) = 0;
  // The verdict with every actor's state as the watchdog found them.
  virtual Verdict finish(Verdict v) = 0;

 protected:
  ~WatchedWorld() = default;  // not owned through this view
};

struct WatchdogBounds {
  int ranks = 1;
  DetectorBounds detector;
  TimeNs watchdog_ns = 1'000'000'000;  // a collective open this long, or no progress this long
};

// Why and when the watchdog fired, for the run's statistics.
struct WatchdogFiring {
  bool fired = false;
  std::string reason;
  TimeNs at_ns = 0;
};

class Watchdog {
 public:
  Watchdog(WatchedWorld& world, WatchdogBounds bounds);
  // Returns the verdict once the actors were stopped (completed or starved) or aborted (fired).
  Verdict watch();
  const WatchdogFiring& firing() const { return firing_; }

 private:
  Verdict fire(std::string reason, bool none_runnable);
  Verdict complete(TimeNs done_at_ns);
  std::optional<Verdict> check_bounds(TimeNs now_ns);
  WorldCheck check_at(TimeNs now_ns, const CollectiveLedger* collectives, const WorkLedger& work) const;

  WatchedWorld& world_;
  WatchdogBounds bounds_;
  WatchdogFiring firing_;
};

}  // namespace hcsim
