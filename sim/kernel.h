// Kernel: the simulator's event loop. A virtual clock in integer nanoseconds and a queue of
// coroutine resumptions ordered by (time, insertion sequence), nothing else: it knows no actor,
// collective or scenario, so its order is obviously deterministic.
//
//   Kernel k;
//   k.schedule_at(1'000, handle);        // resume `handle` at t = 1 us
//   k.run(/*time_max_ns=*/5'000'000);    // runs every event with time <= 5 ms
#pragma once

#include <coroutine>
#include <cstdint>
#include <vector>

#include "policy/trace_event.h"
#include "run/choices.h"
#include "sim/four_ary_heap.h"

namespace hcsim {

class Kernel {
 public:
  explicit Kernel(std::size_t queue_max = std::size_t{1} << 22);

  TimeNs now_ns() const { return now_ns_; }
  std::uint64_t events_processed() const { return events_processed_; }
  std::size_t pending() const { return heap_.size(); }
  // Time of the earliest pending event; only valid if pending() > 0.
  TimeNs next_time_ns() const;

  // `rank`: whose event it is (-1: the world's), for the order decisions of a ChoiceSource.
  void schedule_at(TimeNs time_ns, std::coroutine_handle<> h, int rank = -1);
  // With a source, which of one rank's same-instant events runs first is its decision.
  void choose_order(ChoiceSource* source) { choices_ = source; }
  // Makes the current (or next) run() return after the event being processed; run() consumes it.
  void stop() { stop_requested_ = true; }

  enum class RunEnd { kQueueEmpty, kStopped, kReachedTime, kEventLimit };
  // Resumes events in order while their time is <= time_max_ns, at most `events_max` of them.
  RunEnd run(TimeNs time_max_ns, std::uint64_t events_max = UINT64_MAX);

 private:
  struct Event {
    TimeNs time_ns;
    std::uint64_t seq;
    std::coroutine_handle<> handle;
    int rank;
  };
  // The next event to run: the earliest, or with a ChoiceSource, any event of the earliest's rank
  // due at the same instant.
  Event pop_next();
  struct Earlier {
    bool operator()(const Event& a, const Event& b) const { return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.seq < b.seq; }
  };

  FourAryHeap<Event, Earlier> heap_;
  std::size_t queue_max_;
  TimeNs now_ns_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t events_processed_ = 0;
  bool stop_requested_ = false;
  ChoiceSource* choices_ = nullptr;
  std::vector<Event> same_instant_;  // scratch for pop_next
};

}  // namespace hcsim
