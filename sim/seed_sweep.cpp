#include "sim/seed_sweep.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "policy/assert.h"

namespace hcsim {

SeedSweep sweep_seeds(const Scenario& scenario, const RunOptions& options, std::uint64_t first_seed, std::int64_t count, int jobs,
                      const std::function<void(std::int64_t)>& progress) {
  HCSIM_ASSERT(count > 0 && jobs > 0);
  SeedSweep sweep;
  sweep.runs.resize(static_cast<std::size_t>(count));
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> finished{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::mutex error_mu;
  std::exception_ptr error;  // the first run that failed outside the model (out of memory): the sweep stops
  const auto caller = std::this_thread::get_id();
  auto worker = [&] {
    try {
      RunOptions o = options;
      o.events_kept = 0;  // a seed's row reads the digest only
      for (std::int64_t i = next++; i < count; i = next++) {
        o.seed = first_seed + static_cast<std::uint64_t>(i);
        const RunResult r = simulate(scenario, o);
        sweep.runs[static_cast<std::size_t>(i)] = {*o.seed, r.verdict.kind, r.verdict.at_ns, violated_names(r.invariants), r.log.digest(),
                                                   r.l3_lost_tokens()};
        const std::int64_t done = ++finished;
        if (progress && std::this_thread::get_id() == caller) progress(done);
      }
    } catch (...) {
      std::lock_guard lock(error_mu);
      if (!error) error = std::current_exception();
      next = count;
    }
  };
  std::vector<std::thread> threads;
  for (int j = 1; j < std::min<std::int64_t>(jobs, count); ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  if (progress) progress(finished);
  sweep.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  for (const SeedRun& r : sweep.runs) {
    const bool hang = r.kind != HangKind::kNone;
    if (hang) {
      ++sweep.hangs;
      ++sweep.hang_kinds[std::string(hang_kind_name(r.kind))];
      if (!sweep.first_hang_seed) sweep.first_hang_seed = r.seed;
    }
    if (!r.violated.empty()) ++sweep.runs_with_violations;
    if (r.l3_lost_tokens > 0) {
      ++sweep.runs_with_l3_loss;
      sweep.l3_lost_tokens += r.l3_lost_tokens;
      if (!sweep.first_l3_loss_seed) sweep.first_l3_loss_seed = r.seed;
    }
    for (const auto& v : r.violated) ++sweep.violations[v];
    if ((hang || !r.violated.empty()) && !sweep.first_failing_seed) sweep.first_failing_seed = r.seed;
  }
  return sweep;
}

Interval wilson_interval(std::int64_t k, std::int64_t n) {
  HCSIM_ASSERT(n > 0 && k >= 0 && k <= n);
  constexpr double z = 1.959963984540054;
  const double nn = static_cast<double>(n);
  const double p = static_cast<double>(k) / nn;
  const double denom = 1.0 + z * z / nn;
  const double center = (p + z * z / (2.0 * nn)) / denom;
  const double half = z * std::sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn)) / denom;
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

}  // namespace hcsim
