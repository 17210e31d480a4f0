// Progress of a long command on standard error: on a terminal, one line redrawn at most ten times a
// second with a bar, the rate and the time left; elsewhere (a log, a CI job), a plain line at most
// every ten seconds and a last one at the end. Nothing is printed for work done within a second.
//
//   Progress p(stderr, 12000, "runs", "sweep");
//   for (...) p.update(done);
//   p.finish();
//
//   terminal:  sweep [###########...................]  36.4%  4368/12000 runs  812 runs/s, ETA 9 s
//   log:       sweep: 4368/12000 runs (36.4%), 812 runs/s, ETA 9 s
//   at the end: sweep: 12000/12000 runs in 14.8 s (811 runs/s)   (on a terminal: the bar, then the same)
//
// The rate is measured over the last 20 seconds or so (further back while nothing finishes), not
// since the start, so the time left follows a change of pace; "ETA --" until there is a rate.
//
// Threads: update(), clear_line() and finish() are meant to be called from one thread, the one
// that prints; a mutex makes a call from another thread safe, not tidy.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

namespace hcsim {

class Progress {
 public:
  // `out`: where to draw, nullptr for nothing. `total`: the units of work (0 or less: unknown, then
  // no bar or time left). `unit`: their name, plural ("runs"). `label`: what the work is, first on
  // the line ("sweep", "seeds of every scenario"). `already_done`: units finished before this
  // started (a resumed sweep), counted in the total but not in the rate.
  Progress(std::FILE* out, std::int64_t total, std::string unit, std::string label, std::int64_t already_done = 0);
  ~Progress();  // a line left drawn on a terminal is ended, so what follows starts on its own line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` units of `total` are finished (non-decreasing). Cheap when nothing is drawn.
  void update(std::int64_t done);
  // Erases the line drawn on a terminal before the caller prints its own; the next update redraws.
  void clear_line();
  // The last line, once: on a terminal the bar at its final state; elsewhere a summary line.
  void finish();

  // The rate in units per second over the recent window; 0 while there is none. For tests.
  double rate_per_s() const;

 private:
  using Clock = std::chrono::steady_clock;
  void record(Clock::time_point now, std::int64_t done);
  double rate_at(Clock::time_point now) const;
  void draw(Clock::time_point now, bool final);

  std::FILE* out_;
  bool tty_ = false;
  std::int64_t total_;
  std::string unit_, label_;
  std::int64_t start_done_;
  std::int64_t done_;
  Clock::time_point start_, last_draw_;
  bool drawn_ = false;     // a terminal line is on screen
  bool printed_ = false;   // anything was printed
  bool finished_ = false;
  // (time, done) when `done` changed, at most one per 100 ms; the front is the newest sample at
  // least a window old, so the rate spans a little more than the window.
  std::deque<std::pair<Clock::time_point, std::int64_t>> samples_;
  mutable std::mutex mu_;
};

}  // namespace hcsim
