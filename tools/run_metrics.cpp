#include "tools/run_metrics.h"

#include <algorithm>
#include <map>

#include "policy/assert.h"

namespace hcsim {

namespace {

// Keeps per request and per operation only what the figures need, whatever the run's length.
class MetricsTap final : public EventTap {
 public:
  explicit MetricsTap(std::size_t requests) : scheduled_ns_(requests, -1) {}

  void on_event(const TraceEvent& e) override {
    switch (e.kind) {
      case EventKind::kSchedule:
        if (e.rank != 0) break;
        tokens_loaded_ += schedule_fields(e).storage_hit_tokens;
        if (e.request >= 0 && static_cast<std::size_t>(e.request) < scheduled_ns_.size()) scheduled_ns_[static_cast<std::size_t>(e.request)] = e.time_ns;
        break;
      case EventKind::kKvBatchDone: {
        const KvBatchDoneFields batch = kv_batch_done_fields(e);
        read_pages_[{e.rank, batch.op}] += batch.pages_read;
        break;
      }
      case EventKind::kTerminate: {
        const TerminateFields terminate = terminate_fields(e);
        committed_tokens_[{e.rank, terminate.op}] = terminate.group_min_tokens;
        break;
      }
      default: break;
    }
  }

  RunMetrics finish(const Scenario& scenario, const RunResult& result) {
    RunMetrics m;
    m.verdict = result.verdict.kind;
    for (const InvariantResult& inv : result.invariants) {
      if (!inv.held) m.violated.push_back(inv.name);
    }
    m.requests = static_cast<std::int64_t>(scheduled_ns_.size());
    std::vector<std::int64_t> waits_us;
    for (const Arrival& a : result.arrivals) {
      if (a.request < 0 || static_cast<std::size_t>(a.request) >= scheduled_ns_.size()) continue;
      const TimeNs at = scheduled_ns_[static_cast<std::size_t>(a.request)];
      if (at >= 0) waits_us.push_back((at - a.time_ns) / 1'000);
    }
    m.scheduled = static_cast<std::int64_t>(std::count_if(scheduled_ns_.begin(), scheduled_ns_.end(), [](TimeNs t) { return t >= 0; }));
    m.starved = m.requests - m.scheduled;
    m.sched_p50_us = percentile(waits_us, 50);
    m.sched_p99_us = percentile(waits_us, 99);
    m.tokens_loaded = tokens_loaded_;
    m.l3_lost_tokens = result.l3_lost_tokens();
    const std::int64_t page_tokens = result.policy.page_size_tokens;
    HCSIM_ASSERT(page_tokens > 0);
    for (const auto& [key, pages] : read_pages_) {
      auto it = committed_tokens_.find(key);
      const std::int64_t kept = it == committed_tokens_.end() ? 0 : it->second / page_tokens;
      m.kv_bytes_discarded += std::max<std::int64_t>(0, pages - kept) * scenario.storage.kv_page_bytes;
    }
    m.events = result.kernel_events;
    m.end_us = result.end_ns / 1'000;
    m.digest = result.log.digest();
    return m;
  }

 private:
  std::vector<TimeNs> scheduled_ns_;                                   // by request, on rank 0; -1: never
  std::map<std::pair<int, std::int64_t>, std::int64_t> read_pages_;    // (rank, op) -> KV pages read
  std::map<std::pair<int, std::int64_t>, std::int64_t> committed_tokens_;
  std::int64_t tokens_loaded_ = 0;
};

}  // namespace

std::int64_t percentile(std::vector<std::int64_t>& values, int p) {
  HCSIM_ASSERT(p >= 0 && p <= 100);
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t rank = (static_cast<std::size_t>(p) * values.size() + 99) / 100;  // ceil(p/100 * n)
  return values[std::max<std::size_t>(rank, 1) - 1];
}

RunMetrics simulate_for_metrics(const Scenario& scenario, RunOptions options) {
  MetricsTap tap(scenario.workload.size());
  options.tap = &tap;
  options.events_kept = 0;
  const RunResult result = simulate(scenario, options);
  return tap.finish(scenario, result);
}

}  // namespace hcsim
