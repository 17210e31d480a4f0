#include "sim/run_metrics.h"

#include <algorithm>
#include <map>

#include "policy/assert.h"

namespace hcsim {

std::int64_t percentile(std::vector<std::int64_t>& values, int p) {
  HCSIM_ASSERT(p >= 0 && p <= 100);
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t rank = (static_cast<std::size_t>(p) * values.size() + 99) / 100;  // ceil(p/100 * n)
  return values[std::max<std::size_t>(rank, 1) - 1];
}

RunMetrics run_metrics(const Scenario& scenario, const RunResult& result) {
  RunMetrics m;
  m.verdict = result.verdict.kind;
  for (const InvariantResult& inv : result.invariants) {
    if (!inv.held) m.violated.push_back(inv.name);
  }
  m.requests = static_cast<std::int64_t>(scenario.workload.size());
  std::vector<TimeNs> arrival_ns(scenario.workload.size(), -1);
  for (const Arrival& a : result.arrivals) {
    if (a.request >= 0 && static_cast<std::size_t>(a.request) < arrival_ns.size()) arrival_ns[static_cast<std::size_t>(a.request)] = a.time_ns;
  }
  const std::int64_t page_tokens = result.policy.page_size_tokens;
  HCSIM_ASSERT(page_tokens > 0);
  std::vector<std::int64_t> waits_us;
  std::map<std::pair<int, std::int64_t>, std::int64_t> registered_tokens;  // (rank, op) -> tokens, rank 0 only
  std::map<std::pair<int, std::int64_t>, std::int64_t> read_pages;         // (rank, op)
  std::map<std::pair<int, std::int64_t>, std::int64_t> committed_pages;    // (rank, op)
  for (const TraceEvent& e : result.log.events()) {
    switch (e.kind) {
      case EventKind::kSchedule:
        if (e.rank != 0) break;
        ++m.scheduled;
        m.tokens_loaded += e.b;
        if (e.request >= 0 && static_cast<std::size_t>(e.request) < arrival_ns.size() && arrival_ns[static_cast<std::size_t>(e.request)] >= 0) {
          waits_us.push_back((e.time_ns - arrival_ns[static_cast<std::size_t>(e.request)]) / 1'000);
        }
        break;
      case EventKind::kRegister:
        if (e.rank == 0) registered_tokens[{e.rank, e.b}] = e.a;
        break;
      case EventKind::kKvBatchDone: read_pages[{e.rank, e.c}] += e.a; break;
      case EventKind::kTerminate: {
        committed_pages[{e.rank, e.c}] = e.b / page_tokens;
        if (e.rank != 0) break;
        auto it = registered_tokens.find({e.rank, e.c});
        if (it != registered_tokens.end()) m.tokens_lost += std::max<std::int64_t>(0, it->second - e.b);
        break;
      }
      default: break;
    }
  }
  for (const auto& [key, pages] : read_pages) {
    auto it = committed_pages.find(key);
    const std::int64_t kept = it == committed_pages.end() ? 0 : it->second;
    m.kv_bytes_discarded += std::max<std::int64_t>(0, pages - kept) * scenario.storage.kv_page_bytes;
  }
  m.starved = m.requests - m.scheduled;
  m.sched_p50_us = percentile(waits_us, 50);
  m.sched_p99_us = percentile(waits_us, 99);
  m.events = result.kernel_events;
  m.end_us = result.end_ns / 1'000;
  m.digest = result.log.digest();
  return m;
}

}  // namespace hcsim
