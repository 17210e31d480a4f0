#include "sim/explore.h"

#include <chrono>
#include <unordered_map>
#include <utility>

#include "policy/assert.h"

namespace hcsim {

namespace {

// Thrown out of a run that reached a state already reached with no more deviations.
struct AlreadyExplored {};

std::uint64_t mix(std::uint64_t h, std::uint64_t word) {
  h ^= word;
  h *= 0x100000001b3ULL;
  return h ^ (h >> 29);
}

// Takes the forced decisions of a schedule, then the first alternative, recording every decision
// point. A state there is the instant, the decision open, the history of events so far and where
// every actor is parked. Rank data an actor changed without an event, and without parking
// elsewhere, is not in it: the policy emits an event for each decision it makes.
class ExploringChoices final : public ChoiceSource, public EventTap {
 public:
  ExploringChoices(const std::vector<Decision>& forced, int deviations, std::unordered_map<std::uint64_t, int>& visited,
                   const ExploreBounds& bounds, ExploreResult& result)
      : forced_(forced), deviations_(deviations), visited_(visited), bounds_(bounds), result_(result) {}

  int choose(ChoiceKind kind, int rank, int alternatives, std::int64_t now_ns) override {
    HCSIM_ASSERT(alternatives >= 2);
    const std::size_t i = taken_.size();
    if (i < forced_.size()) {
      const Decision& d = forced_[i];
      // The same decisions lead to the same decision points: the simulator is deterministic.
      HCSIM_ASSERT(d.kind == kind && d.rank == rank && d.alternatives == alternatives && d.at_ns == now_ns);
      taken_.push_back(d);
      return d.taken;
    }
    std::uint64_t state = mix(mix(mix(history_, static_cast<std::uint64_t>(now_ns)), static_cast<std::uint64_t>(kind)),
                              (static_cast<std::uint64_t>(rank) << 32) | static_cast<std::uint64_t>(alternatives));
    if (waits_digest_) state = mix(state, waits_digest_());
    auto [seen, fresh] = visited_.try_emplace(state, deviations_);
    if (!fresh && seen->second <= deviations_) throw AlreadyExplored{};
    if (fresh) ++result_.states;
    seen->second = deviations_;
    if (static_cast<int>(i) >= bounds_.depth_max) result_.depth_cut = true;
    taken_.push_back({kind, rank, alternatives, 0, now_ns});
    return 0;
  }

  void observe(std::function<std::uint64_t()> waits_digest) override { waits_digest_ = std::move(waits_digest); }

  void on_event(const TraceEvent& e) override {
    history_ = mix(history_, static_cast<std::uint64_t>(e.time_ns));
    history_ = mix(history_, (static_cast<std::uint64_t>(static_cast<std::uint16_t>(e.rank)) << 32) |
                                 (static_cast<std::uint64_t>(e.actor) << 24) | (static_cast<std::uint64_t>(e.kind) << 16));
    history_ = mix(history_, static_cast<std::uint64_t>(static_cast<std::uint32_t>(e.request)));
    history_ = mix(mix(mix(history_, static_cast<std::uint64_t>(e.a)), static_cast<std::uint64_t>(e.b)), static_cast<std::uint64_t>(e.c));
  }

  std::vector<Decision>& taken() { return taken_; }

 private:
  const std::vector<Decision>& forced_;
  int deviations_;
  std::unordered_map<std::uint64_t, int>& visited_;
  const ExploreBounds& bounds_;
  ExploreResult& result_;
  std::vector<Decision> taken_;
  std::uint64_t history_ = 0xcbf29ce484222325ULL;
  std::function<std::uint64_t()> waits_digest_;
};

// A schedule to run: its forced decisions (the last one its last deviation) and their count.
struct Frontier {
  std::vector<Decision> forced;
  int deviations = 0;
};

}  // namespace

bool run_fails(const RunResult& r) {
  if (r.verdict.hang()) return true;
  for (const InvariantResult& i : r.invariants) {
    if (!i.held) return true;
  }
  return false;
}

ExploreResult explore(const Scenario& scenario, const RunOptions& options, const ExploreBounds& bounds,
                      const std::function<bool(const RunResult&)>& fails, const std::function<void(std::int64_t)>& progress) {
  HCSIM_ASSERT(bounds.deviations_max >= 0 && bounds.depth_max >= 0 && bounds.schedules_max >= 1);
  HCSIM_ASSERT(options.tap == nullptr && options.choices == nullptr);
  ExploreResult result;
  std::unordered_map<std::uint64_t, int> visited;  // state -> fewest deviations it was reached with
  std::vector<Frontier> level(1);                   // level 0: the default schedule
  const auto t0 = std::chrono::steady_clock::now();
  const auto out_of_time = [&] {
    return bounds.seconds_max > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >= bounds.seconds_max;
  };
  for (int k = 0; k <= bounds.deviations_max && !level.empty(); ++k) {
    std::vector<Frontier> next;
    for (std::size_t index = 0; index < level.size(); ++index) {  // bounded by schedules_max
      const Frontier& f = level[index];
      if (result.schedules == bounds.schedules_max || out_of_time()) {
        result.schedules_cut = true;
        result.time_cut = result.schedules < bounds.schedules_max;
        return result;
      }
      ExploringChoices choices(f.forced, f.deviations, visited, bounds, result);
      RunOptions o = options;
      o.choices = &choices;
      o.tap = &choices;
      ++result.schedules;
      if (progress) progress(result.schedules);
      std::optional<RunResult> run;
      try {
        run = simulate(scenario, o);
      } catch (const AlreadyExplored&) {
        ++result.pruned;
      }
      std::vector<Decision>& taken = choices.taken();
      result.decision_points_max = std::max(result.decision_points_max, static_cast<std::int64_t>(taken.size()));
      if (run && fails(*run)) {
        result.counterexample = Counterexample{std::move(taken), f.deviations, std::move(*run)};
        result.deviations_done = k - 1;  // every schedule with fewer deviations ran, and none failed
        return result;
      }
      if (k == bounds.deviations_max) continue;
      // One more deviation, at each point after this schedule's last one (up to where it ran).
      const std::size_t open_end = std::min(taken.size(), static_cast<std::size_t>(bounds.depth_max));
      for (std::size_t j = f.forced.size(); j < open_end; ++j) {
        for (int a = 1; a < taken[j].alternatives; ++a) {
          const auto planned = result.schedules + static_cast<std::int64_t>(level.size() - index - 1 + next.size());
          if (planned >= bounds.schedules_max) {
            result.schedules_cut = true;
            break;
          }
          Frontier n{std::vector<Decision>(taken.begin(), taken.begin() + static_cast<std::ptrdiff_t>(j)), f.deviations + 1};
          n.forced.push_back(taken[j]);
          n.forced.back().taken = a;
          next.push_back(std::move(n));
        }
      }
    }
    result.deviations_done = k;
    level = std::move(next);
  }
  result.exhausted = level.empty() && !result.schedules_cut;
  return result;
}

}  // namespace hcsim
