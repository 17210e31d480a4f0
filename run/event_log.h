// EventLog: every event of a run, in order, with a running 64-bit digest. Two runs of the same
// scenario and seed have the same digest; the first differing event shows where they part.
// Keeps at most `kept_max` events in memory; the digest covers all of them.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "policy/trace_event.h"

namespace hcsim {

// Sees every event as it is appended, also those past what the log keeps (a long run's metrics).
class EventTap {
 public:
  virtual ~EventTap() = default;
  virtual void on_event(const TraceEvent& e) = 0;
};

class EventLog {
 public:
  explicit EventLog(std::size_t kept_max = std::size_t{1} << 20) : kept_max_(kept_max) {}

  void append(const TraceEvent& e) {
    mix(static_cast<std::uint64_t>(e.time_ns));
    mix((static_cast<std::uint64_t>(static_cast<std::uint16_t>(e.rank)) << 32) |
        (static_cast<std::uint64_t>(e.actor) << 24) | (static_cast<std::uint64_t>(e.kind) << 16));
    mix(static_cast<std::uint64_t>(static_cast<std::uint32_t>(e.request)));
    mix(static_cast<std::uint64_t>(e.a));
    mix(static_cast<std::uint64_t>(e.b));
    mix(static_cast<std::uint64_t>(e.c));
    ++count_;
    if (events_.size() < kept_max_) events_.push_back(e);
    if (taps_[0] != nullptr) taps_[0]->on_event(e);
    if (taps_[1] != nullptr) taps_[1]->on_event(e);
  }

  // Up to two taps see each event, the first first (either may be null).
  void tap(EventTap* first, EventTap* second = nullptr) { taps_ = {first, second}; }

  std::uint64_t digest() const { return digest_; }
  std::uint64_t count() const { return count_; }
  const std::vector<TraceEvent>& events() const { return events_; }
  bool truncated() const { return count_ > events_.size(); }

 private:
  void mix(std::uint64_t word) {
    digest_ ^= word;
    digest_ *= 0x100000001b3ULL;
    digest_ ^= digest_ >> 29;
  }

  std::size_t kept_max_;
  std::vector<TraceEvent> events_;
  std::uint64_t count_ = 0;
  std::uint64_t digest_ = 0xcbf29ce484222325ULL;
  std::array<EventTap*, 2> taps_{};
};

}  // namespace hcsim
