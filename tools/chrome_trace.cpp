#include "tools/chrome_trace.h"

#include <map>
#include <string>

namespace hcsim {

namespace {

using nlohmann::json;

double us(TimeNs t) { return static_cast<double>(t) / 1000.0; }

bool is_decision(EventKind k) {
  switch (k) {
    case EventKind::kRegister:
    case EventKind::kRegisterSkip:
    case EventKind::kHitQuery:
    case EventKind::kRevoke:
    case EventKind::kTerminateVote:
    case EventKind::kTerminate:
    case EventKind::kCommit:
    case EventKind::kMatch:
    case EventKind::kSchedule:
    case EventKind::kBatchFull:
    case EventKind::kOpEnd:
    case EventKind::kAbort:
    case EventKind::kWriteBackup:
    case EventKind::kWriteAcked:
    case EventKind::kSlotViolation:
      return true;
    default:
      return false;
  }
}

json fields_of(const TraceEvent& e) {
  json args = json::object();
  const auto& names = event_field_names(e.kind);
  const std::int64_t values[3] = {e.a, e.b, e.c};
  for (std::size_t i = 0; i < 3; ++i) {
    if (!names[i].empty()) args[std::string(names[i])] = values[i];
  }
  if (e.request >= 0) args["request"] = e.request;
  return args;
}

}  // namespace

json chrome_trace(const TraceRead& trace, const Scenario& scenario) {
  json events = json::array();
  const int ranks = scenario.world.ranks;
  for (int r = 0; r < ranks; ++r) {
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", r}, {"tid", 0}, {"args", {{"name", "rank " + std::to_string(r)}}}});
    for (int a = 0; a < kActorKindCount; ++a) {
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", r}, {"tid", a},
                        {"args", {{"name", std::string(actor_name(static_cast<ActorKind>(a)))}}}});
    }
  }
  const TimeNs end_ns = trace.events.empty() ? 0 : trace.events.back().time_ns;
  const CollectiveCost& cost = scenario.world.collective;
  std::map<int, std::int64_t> waiting, ongoing, held_tokens;       // counters, per rank
  std::map<std::pair<int, std::int64_t>, std::int64_t> op_tokens;  // (rank, op) -> prefetch tokens
  std::int64_t async_id = 0;
  auto counter = [&](const TraceEvent& e, const char* name, std::int64_t value) {
    events.push_back({{"ph", "C"}, {"name", name}, {"pid", e.rank}, {"tid", 0}, {"ts", us(e.time_ns)}, {"args", {{name, value}}}});
  };
  for (const TraceEvent& e : trace.events) {
    const int tid = static_cast<int>(e.actor);
    switch (e.kind) {
      case EventKind::kStorageCall: {  // an async slice: calls of IO workers may overlap
        const std::string name(storage_op_name(static_cast<StorageOp>(e.a)));
        const TimeNs done = e.b >= 0 && e.b <= INT64_MAX - e.time_ns ? e.time_ns + e.b : end_ns;
        const json args = {{"request", e.request}, {"result", e.c}, {"duration_ns", e.b}};
        events.push_back({{"ph", "b"}, {"cat", "l3"}, {"name", name}, {"id", async_id}, {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}, {"args", args}});
        events.push_back({{"ph", "e"}, {"cat", "l3"}, {"name", name}, {"id", async_id}, {"pid", e.rank}, {"tid", tid}, {"ts", us(std::max(done, e.time_ns))}});
        ++async_id;
        break;
      }
      case EventKind::kForward: {  // complete: a rank's forwards never overlap
        const TimeNs dur = cost.latency_ns + cost.forward_base_ns + cost.forward_ns_per_token * e.a;
        events.push_back({{"ph", "X"}, {"name", "forward"}, {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}, {"dur", us(dur)},
                          {"args", fields_of(e)}});
        break;
      }
      default:
        break;
    }
    if (is_decision(e.kind)) {
      events.push_back({{"ph", "i"}, {"s", "t"}, {"cat", "policy"}, {"name", std::string(event_name(e.kind))}, {"pid", e.rank}, {"tid", tid},
                        {"ts", us(e.time_ns)}, {"args", fields_of(e)}});
    }
    if (e.kind == EventKind::kCollectiveEnter) {
      events.push_back({{"ph", "i"}, {"s", "t"}, {"cat", "collective"}, {"name", "enter " + std::string(group_name(static_cast<Group>(e.a)))},
                        {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}, {"args", fields_of(e)}});
    }
    // Flows from a prefetch's registration to its termination.
    const std::int64_t flow_base = static_cast<std::int64_t>(e.rank) << 32;
    if (e.kind == EventKind::kRegister) {
      events.push_back({{"ph", "s"}, {"cat", "prefetch"}, {"name", "prefetch"}, {"id", flow_base + e.b}, {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}});
    }
    if (e.kind == EventKind::kTerminate) {
      events.push_back({{"ph", "f"}, {"bp", "e"}, {"cat", "prefetch"}, {"name", "prefetch"}, {"id", flow_base + e.c}, {"pid", e.rank}, {"tid", tid},
                        {"ts", us(e.time_ns)}});
    }
    // Counters: the waiting queue, live prefetches and the tokens they hold (the rate limiter's).
    if (e.kind == EventKind::kArrive) counter(e, "waiting_queue", ++waiting[e.rank]);
    if (e.kind == EventKind::kSchedule || (e.kind == EventKind::kAbort && e.a == 1)) counter(e, "waiting_queue", --waiting[e.rank]);
    if (e.kind == EventKind::kRegister) {
      op_tokens[{e.rank, e.b}] = e.a;
      counter(e, "ongoing_prefetches", ++ongoing[e.rank]);
      counter(e, "prefetch_tokens_held", held_tokens[e.rank] += e.a);
    }
    if (e.kind == EventKind::kOpEnd) {
      counter(e, "ongoing_prefetches", --ongoing[e.rank]);
      auto held = op_tokens.find({e.rank, e.c});
      counter(e, "prefetch_tokens_held", held_tokens[e.rank] -= held == op_tokens.end() ? 0 : held->second);
      if (held != op_tokens.end()) op_tokens.erase(held);
    }
  }
  return {{"traceEvents", events},
          {"displayTimeUnit", "ns"},
          {"otherData", {{"scenario", trace.header.scenario_name}, {"variant", trace.header.variant}, {"verdict", trace.header.verdict}}}};
}

}  // namespace hcsim
