// ChoiceSource: where a run's open decisions come from. A run without one takes the first
// alternative everywhere: the scenario's own timing, and same-time events in the order they were
// scheduled. `hcsim explore` supplies one that enumerates the alternatives (sim/explore.h).
//
// Two kinds of decision exist:
//   kOrder: which of one rank's events due at the same instant runs first (events of different
//           ranks commute, so their relative order is never a decision);
//   kLate:  which extra delay of a scenario's explore.late rule an L3 call gets.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace hcsim {

enum class ChoiceKind : std::uint8_t { kOrder, kLate };

class ChoiceSource {
 public:
  virtual ~ChoiceSource() = default;
  // One of `alternatives` (at least 2) for a decision of `kind` on `rank` at `now_ns`: in [0, alternatives).
  virtual int choose(ChoiceKind kind, int rank, int alternatives, std::int64_t now_ns) = 0;
  // The world, as the run starts: `waits_digest` hashes where every actor is parked now.
  virtual void observe(std::function<std::uint64_t()> waits_digest) { (void)waits_digest; }
};

// One decision of a run: what was open, and which alternative it took.
struct Decision {
  ChoiceKind kind = ChoiceKind::kOrder;
  int rank = 0;
  int alternatives = 2;
  int taken = 0;
  std::int64_t at_ns = 0;  // when it was made, for reports (a trace does not carry it)
};

// A ChoiceSource that takes `decisions` in order while they fit (same kind, rank and count of
// alternatives), then the first alternative: a replay of an explored schedule.
class ScriptedChoices final : public ChoiceSource {
 public:
  explicit ScriptedChoices(std::vector<Decision> decisions) : decisions_(std::move(decisions)) {}
  int choose(ChoiceKind kind, int rank, int alternatives, std::int64_t) override {
    if (next_ < decisions_.size() && !departed_) {
      const Decision& d = decisions_[next_];
      departed_ = d.kind != kind || d.rank != rank || d.alternatives != alternatives;
      if (!departed_) return decisions_[next_++].taken;
    }
    return 0;
  }
  bool followed() const { return !departed_ && next_ == decisions_.size(); }  // every decision fit and was taken

 private:
  std::vector<Decision> decisions_;
  std::size_t next_ = 0;
  bool departed_ = false;
};

}  // namespace hcsim
