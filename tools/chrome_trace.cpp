#include "tools/chrome_trace.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "policy/assert.h"
#include "tools/report.h"

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

// A call some actor made into a collective and never came back from.
struct StuckCall {
  int rank = 0;
  ActorKind actor = ActorKind::kScheduler;
  Group group = Group::kTp;
  std::uint64_t seq = 0;
  std::string op;  // "forward", "all_reduce(MAX)", ...; "collective" where only the events tell
  std::int64_t size = 0;
  TimeNs at_ns = 0;
  std::string label() const { return op + "(" + std::to_string(size) + ")"; }
};

// How the run ended, as far as the timeline needs it.
struct RunEnding {
  TimeNs end_ns = 0;
  bool replayed = false;  // from a replay that reproduced the recording; else from the events alone
  bool hang = false;
  std::string headline;
  bool has_collective = false;  // the verdict names a collective
  Group group = Group::kTp;
  std::uint64_t seq = 0;
  std::vector<StuckCall> entered;  // the verdict's collective: who entered it with what
  std::vector<int> missing_ranks;  // ... and who never did
  std::vector<StuckCall> stuck;    // every call inside a collective at the end, the verdict's included
  RequestId request = kNoRequest;  // starvation: the request owed a schedule
  std::vector<int> ranks_pending;
  bool names_verdict(const StuckCall& c) const { return has_collective && c.group == group && c.seq == seq; }
};

TimeNs last_event_ns(const TraceRead& trace) { return trace.events.empty() ? 0 : trace.events.back().time_ns; }

// The simulator stops a hung run a little after its verdict (after a mismatch it lets late ranks
// arrive), and the trace does not say when: a replay of a simulated trace under the code that
// recorded it does, and names the verdict's collective with each member's op.
std::optional<RunEnding> replayed_ending(const TraceRead& trace, const Scenario& scenario) {
  if (trace.header.world != "sim") return std::nullopt;
  const Recording recording = recording_of(trace);
  const RunResult r = simulate(scenario, replay_options(trace, recording));
  if (std::string(hang_kind_name(r.verdict.kind)) != trace.header.verdict || r.verdict.at_ns != trace.header.verdict_at_ns ||
      r.log.digest() != trace.header.log_hash) {
    return std::nullopt;
  }
  const Verdict& v = r.verdict;
  RunEnding out;
  out.replayed = true;
  out.end_ns = std::max({r.end_ns, last_event_ns(trace), trace.header.verdict_at_ns});
  out.hang = v.hang();
  if (!out.hang) return out;
  out.headline = v.headline;
  out.has_collective = v.has_collective;
  out.group = v.group;
  out.seq = v.seq;
  out.missing_ranks = v.missing_ranks;
  out.request = v.request;
  out.ranks_pending = v.ranks_pending;
  for (const ActorState& a : v.actors) {
    if (a.wait != WaitKind::kCollective) continue;
    out.stuck.push_back({a.rank, a.actor, a.group, a.seq, std::string(collective_op_name(a.op)), a.size, a.since_ns});
  }
  for (const CollectiveEntry& e : v.entered) {
    auto in = std::find_if(out.stuck.begin(), out.stuck.end(), [&](const StuckCall& c) { return c.rank == e.rank && out.names_verdict(c); });
    const ActorKind actor = in != out.stuck.end() ? in->actor : v.group.kind == GroupKind::kPrefetchTp || v.group.kind == GroupKind::kPrefetchCp ? ActorKind::kPrefetch : ActorKind::kScheduler;
    out.entered.push_back({e.rank, actor, v.group, v.seq, std::string(collective_op_name(e.op)), e.size, e.at_ns});
  }
  return out;
}

// From the events alone: a collective is left when every rank entered it with one payload size;
// in a run that ended in a mismatch or a deadlock, the others were never left. The verdict's is taken to be the oldest of them (the
// hang detector's choice for a deadlock, and a mismatch's in practice). The events carry no op:
// a collective entered right after a `forward` of its size is that forward.
RunEnding ending_from_events(const TraceRead& trace, const Topology& topology) {
  const std::vector<Group> communicators = topology.communicators();  // a trace's group of another topology is skipped
  RunEnding out;
  out.end_ns = std::max(last_event_ns(trace), trace.header.verdict_at_ns);
  out.hang = trace.header.verdict != "none";
  if (!out.hang) return out;
  out.headline = trace.header.verdict + " (from the trace header; no replay reproduced it)";
  // Only these verdicts name a collective; a run that starved kept running, and a collective it
  // was part-way through at the end is no hang.
  if (trace.header.verdict != "collective_mismatch" && trace.header.verdict != "deadlock") return out;
  std::map<std::pair<std::int64_t, std::uint64_t>, std::vector<StuckCall>> collectives;  // (group code, seq) -> entries
  std::map<std::pair<int, int>, const TraceEvent*> previous;                   // (rank, actor) -> its last event
  for (const TraceEvent& e : trace.events) {
    const std::pair<int, int> track{e.rank, static_cast<int>(e.actor)};
    const TraceEvent* p = std::exchange(previous[track], &e);
    if (e.kind != EventKind::kCollectiveEnter) continue;
    const CollectiveEnterFields enter = collective_enter_fields(e);
    const std::optional<Group> group = Group::from_code(enter.group);
    if (!group || enter.sequence < 0 || std::find(communicators.begin(), communicators.end(), *group) == communicators.end()) continue;
    const bool forward =
        p != nullptr && p->kind == EventKind::kForward && p->time_ns == e.time_ns && forward_fields(*p).batch_tokens == enter.payload_size;
    const auto seq = static_cast<std::uint64_t>(enter.sequence);
    collectives[{enter.group, seq}].push_back(
        {e.rank, e.actor, *group, seq, forward ? "forward" : "collective", enter.payload_size, e.time_ns});
  }
  const std::vector<StuckCall>* oldest = nullptr;
  for (const auto& [key, entries] : collectives) {
    std::set<int> members;
    for (const StuckCall& c : entries) members.insert(c.rank);
    const std::int64_t first_size = entries.front().size;  // a lambda cannot capture a structured binding (clang)
    const bool one_size = std::all_of(entries.begin(), entries.end(), [first_size](const StuckCall& c) { return c.size == first_size; });
    if (members.size() == topology.members(entries.front().group).size() && one_size) continue;  // left
    out.stuck.insert(out.stuck.end(), entries.begin(), entries.end());
    if (!oldest || entries.front().at_ns < oldest->front().at_ns) oldest = &entries;
  }
  if (!oldest) return out;
  out.has_collective = true;
  out.group = oldest->front().group;
  out.seq = oldest->front().seq;
  out.entered = *oldest;
  for (int r : topology.members(out.group)) {
    if (std::none_of(oldest->begin(), oldest->end(), [&](const StuckCall& c) { return c.rank == r; })) out.missing_ranks.push_back(r);
  }
  return out;
}

// The order Perfetto lists the ranks in: the odd ones out first. Members of the verdict's
// collective are grouped by what they entered (those that never entered form one group), and the
// smaller group comes first, those that never entered on a tie: in a TP=4 mismatch, the one rank
// whose forward differs.
std::vector<int> rank_order(const RunEnding& end, int ranks) {
  std::map<int, std::string> entry_of;
  for (const StuckCall& c : end.entered) entry_of[c.rank] = c.label();
  std::map<std::string, int> sharing;
  for (int r = 0; r < ranks; ++r) {
    entry_of.try_emplace(r, "(missing)");
    ++sharing[entry_of[r]];
  }
  std::vector<int> order;
  for (int r = 0; r < ranks; ++r) order.push_back(r);
  if (end.has_collective) {
    auto key = [&](int r) { return std::make_pair(sharing[entry_of[r]], entry_of[r] != "(missing)"); };
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return key(x) < key(y); });
  }
  return order;
}

// Perfetto's process and thread names, and the order it lists the ranks in.
void add_track_names(json& events, const RunEnding& ending, const std::vector<int>& order, int ranks) {
  for (int r = 0; r < ranks; ++r) {
    std::string name = "rank " + std::to_string(r);
    if (ending.has_collective) {
      auto in = std::find_if(ending.entered.begin(), ending.entered.end(), [&](const StuckCall& c) { return c.rank == r; });
      name += in != ending.entered.end() ? ": stuck in " + in->label()
                                         : ": never entered " + std::string(group_name(ending.group)) + " seq " + std::to_string(ending.seq);
    }
    const auto sort_index = std::find(order.begin(), order.end(), r) - order.begin();
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", r}, {"tid", 0}, {"args", {{"name", name}}}});
    events.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", r}, {"tid", 0}, {"args", {{"sort_index", sort_index}}}});
    for (int a = 0; a < kActorKindCount; ++a) {
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", r}, {"tid", a},
                        {"args", {{"name", std::string(actor_name(static_cast<ActorKind>(a)))}}}});
    }
  }
}

// Forwards that never completed, drawn as their stuck collective: (rank, actor, entered at).
using StuckForwards = std::set<std::tuple<int, int, TimeNs>>;

// The hang, in a hung run: the verdict's collective and every other one left open, each a complete
// slice on the caller's track from its entry to the end of the run, and a global instant at the
// verdict on the first rank listed. Returns the stuck forwards; `interest_from_ns` moves back to
// the earliest entry into the verdict's collective.
StuckForwards add_hang(json& events, const TraceRead& trace, const RunEnding& ending, int first_rank, TimeNs end_ns, TimeNs& interest_from_ns) {
  StuckForwards stuck_forwards;
  if (!ending.hang) return stuck_forwards;
  for (const StuckCall& c : ending.stuck) {
    const bool named = ending.names_verdict(c);
    const std::string where = std::string(group_name(c.group)) + " seq " + std::to_string(c.seq);
    const json args = {{"hang", named}, {"verdict", trace.header.verdict}, {"group", std::string(group_name(c.group))}, {"seq", c.seq},
                       {"op", c.op}, {"size", c.size}, {"entered_at_us", us(c.at_ns)}, {"open_to_end_of_run", true}};
    events.push_back({{"ph", "X"}, {"cat", "collective"}, {"name", (named ? "HANG " : "stuck ") + where + " " + c.label()}, {"pid", c.rank},
                      {"tid", static_cast<int>(c.actor)}, {"ts", us(c.at_ns)}, {"dur", us(end_ns - c.at_ns)}, {"args", args}});
    if (c.op == collective_op_name(CollectiveOp::kForward)) stuck_forwards.insert({c.rank, static_cast<int>(c.actor), c.at_ns});
    if (named) interest_from_ns = std::min(interest_from_ns, c.at_ns);
  }
  json args = {{"verdict", trace.header.verdict}, {"headline", ending.headline}, {"from", ending.replayed ? "replay" : "trace events"}};
  std::string name = "HANG " + trace.header.verdict;
  if (ending.has_collective) {
    name += ": " + std::string(group_name(ending.group)) + " seq " + std::to_string(ending.seq);
    args["group"] = std::string(group_name(ending.group));
    args["seq"] = ending.seq;
    json entered = json::array();
    for (const StuckCall& c : ending.entered) entered.push_back("rank " + std::to_string(c.rank) + " " + c.label() + " at " + format_ms(c.at_ns));
    args["entered"] = entered;
    args["missing_ranks"] = ending.missing_ranks;
  }
  if (ending.request != kNoRequest) {
    name += ": request " + std::to_string(ending.request);
    args["request"] = ending.request;
    args["ranks_pending"] = ending.ranks_pending;
  }
  events.push_back({{"ph", "i"}, {"s", "g"}, {"cat", "hang"}, {"name", name}, {"pid", first_rank}, {"tid", 0},
                    {"ts", us(trace.header.verdict_at_ns)}, {"args", args}});
  return stuck_forwards;
}

// The trace's events, one at a time: L3 calls as async slices, forwards as complete slices,
// decisions and collective entries as instants, flows from each prefetch's registration to its
// termination, and counters.
class EventDrawer {
 public:
  EventDrawer(json& events, const Scenario& scenario, TimeNs end_ns, const StuckForwards& stuck_forwards)
      : events_(events), scenario_(scenario), end_ns_(end_ns), stuck_forwards_(stuck_forwards) {}

  void draw(const TraceEvent& e) {
    if (e.kind == EventKind::kStorageCall) storage_call(e);
    if (e.kind == EventKind::kForward) forward(e);
    const int tid = static_cast<int>(e.actor);
    if (is_decision(e.kind)) {
      events_.push_back({{"ph", "i"}, {"s", "t"}, {"cat", "policy"}, {"name", std::string(event_name(e.kind))}, {"pid", e.rank}, {"tid", tid},
                         {"ts", us(e.time_ns)}, {"args", fields_of(e)}});
    }
    if (e.kind == EventKind::kCollectiveEnter) {
      const std::optional<Group> g = Group::from_code(collective_enter_fields(e).group);
      const std::string group = g ? group_name(*g) : "group " + std::to_string(collective_enter_fields(e).group);
      events_.push_back({{"ph", "i"}, {"s", "t"}, {"cat", "collective"}, {"name", "enter " + group},
                         {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}, {"args", fields_of(e)}});
    }
    flows(e);
    counters(e);
  }

  // The start of the earliest L3 call still in flight at the end of the run (the end if none).
  TimeNs earliest_cut_call_ns() const { return earliest_cut_call_ns_; }

 private:
  // A slice from `start_ns` due at `due_ns` (never, if negative) ends at the end of the run at the
  // latest; one cut there says so, and when it was due.
  TimeNs slice_end(TimeNs start_ns, TimeNs due_ns, json& args) const {
    if (due_ns >= 0 && due_ns <= end_ns_) return std::max(due_ns, start_ns);
    args["cut_at_end_of_run"] = true;
    if (due_ns >= 0) {
      args["due_us"] = us(due_ns);
    } else {
      args["never_returns"] = true;
    }
    return end_ns_;
  }

  // An async slice: calls of IO workers may overlap.
  void storage_call(const TraceEvent& e) {
    const int tid = static_cast<int>(e.actor);
    const StorageCallFields call = storage_call_fields(e);
    const std::string name(storage_op_name(static_cast<StorageOp>(call.op)));
    // A raising call raises after the call latency (run/storage.cpp); a call that never returns is due never.
    const std::int64_t duration_ns = call.duration_ns == kStorageRaises ? scenario_.storage.call_latency_ns : call.duration_ns;
    const TimeNs due = duration_ns >= 0 && duration_ns <= INT64_MAX - e.time_ns ? e.time_ns + duration_ns : -1;
    json args = {{"request", e.request}, {"result", call.result}, {"duration_ns", call.duration_ns}};
    if (call.duration_ns == kStorageRaises) args["raises"] = true;
    const TimeNs done = slice_end(e.time_ns, due, args);
    if (args.contains("cut_at_end_of_run")) earliest_cut_call_ns_ = std::min(earliest_cut_call_ns_, e.time_ns);
    events_.push_back({{"ph", "b"}, {"cat", "l3"}, {"name", name}, {"id", async_id_}, {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}, {"args", args}});
    events_.push_back({{"ph", "e"}, {"cat", "l3"}, {"name", name}, {"id", async_id_}, {"pid", e.rank}, {"tid", tid}, {"ts", us(done)}});
    ++async_id_;
  }

  // A complete slice: a rank's forwards never overlap.
  void forward(const TraceEvent& e) {
    const int tid = static_cast<int>(e.actor);
    if (stuck_forwards_.count({e.rank, tid, e.time_ns}) != 0) return;  // drawn as the stuck collective
    const TimeNs dur = scenario_.world.collective.duration_ns(CollectiveOp::kForward, forward_fields(e).batch_tokens);
    json args = fields_of(e);
    const TimeNs done = slice_end(e.time_ns, e.time_ns + dur, args);
    events_.push_back({{"ph", "X"}, {"name", "forward"}, {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}, {"dur", us(done - e.time_ns)},
                       {"args", args}});
  }

  // Flows from a prefetch's registration to its termination.
  void flows(const TraceEvent& e) {
    const int tid = static_cast<int>(e.actor);
    const std::int64_t flow_base = static_cast<std::int64_t>(e.rank) << 32;
    if (e.kind == EventKind::kRegister) {
      events_.push_back({{"ph", "s"}, {"cat", "prefetch"}, {"name", "prefetch"}, {"id", flow_base + register_fields(e).op}, {"pid", e.rank},
                         {"tid", tid}, {"ts", us(e.time_ns)}});
    }
    if (e.kind == EventKind::kTerminate) {
      events_.push_back({{"ph", "f"}, {"bp", "e"}, {"cat", "prefetch"}, {"name", "prefetch"}, {"id", flow_base + terminate_fields(e).op},
                         {"pid", e.rank}, {"tid", tid}, {"ts", us(e.time_ns)}});
    }
  }

  // Counters: the waiting queue, live prefetches and the tokens they hold (the rate limiter's).
  void counters(const TraceEvent& e) {
    if (e.kind == EventKind::kArrive) counter(e, "waiting_queue", ++waiting_[e.rank]);
    if (e.kind == EventKind::kSchedule || (e.kind == EventKind::kAbort && abort_fields(e).was_waiting == 1)) {
      counter(e, "waiting_queue", --waiting_[e.rank]);
    }
    if (e.kind == EventKind::kRegister) {
      const RegisterFields registered = register_fields(e);
      op_tokens_[{e.rank, registered.op}] = registered.prefetch_tokens;
      counter(e, "ongoing_prefetches", ++ongoing_[e.rank]);
      counter(e, "prefetch_tokens_held", held_tokens_[e.rank] += registered.prefetch_tokens);
    }
    if (e.kind == EventKind::kOpEnd) {
      counter(e, "ongoing_prefetches", --ongoing_[e.rank]);
      auto held = op_tokens_.find({e.rank, op_end_fields(e).op});
      counter(e, "prefetch_tokens_held", held_tokens_[e.rank] -= held == op_tokens_.end() ? 0 : held->second);
      if (held != op_tokens_.end()) op_tokens_.erase(held);
    }
  }

  void counter(const TraceEvent& e, const char* name, std::int64_t value) {
    events_.push_back({{"ph", "C"}, {"name", name}, {"pid", e.rank}, {"tid", 0}, {"ts", us(e.time_ns)}, {"args", {{name, value}}}});
  }

  json& events_;
  const Scenario& scenario_;
  const TimeNs end_ns_;
  const StuckForwards& stuck_forwards_;
  TimeNs earliest_cut_call_ns_ = end_ns_;
  std::int64_t async_id_ = 0;
  std::map<int, std::int64_t> waiting_, ongoing_, held_tokens_;     // counters, per rank
  std::map<std::pair<int, std::int64_t>, std::int64_t> op_tokens_;  // (rank, op) -> prefetch tokens
};

}  // namespace

json chrome_trace(const TraceRead& trace, const Scenario& scenario) {
  const int ranks = scenario.world.ranks;
  HCSIM_ASSERT(ranks > 0);
  std::optional<RunEnding> replayed = replayed_ending(trace, scenario);
  const RunEnding ending = replayed ? std::move(*replayed) : ending_from_events(trace, scenario.world.topology());
  const TimeNs end_ns = ending.end_ns;
  HCSIM_ASSERT(end_ns >= last_event_ns(trace));

  json events = json::array();
  const std::vector<int> order = rank_order(ending, ranks);
  add_track_names(events, ending, order, ranks);
  TimeNs interest_from_ns = end_ns;  // the hang, and the L3 calls still in flight when the run ended
  const StuckForwards stuck_forwards = add_hang(events, trace, ending, order.front(), end_ns, interest_from_ns);
  EventDrawer drawer(events, scenario, end_ns, stuck_forwards);
  for (const TraceEvent& e : trace.events) drawer.draw(e);
  interest_from_ns = std::min(interest_from_ns, drawer.earliest_cut_call_ns());

  // Where to look. A JSON trace cannot set a viewer's initial zoom, so the export says where the
  // hang is instead: the ranks that departed come first (process_sort_index, which Perfetto
  // follows), every rank's name says what it is stuck in, and "interest_us" spans the hang and the
  // L3 calls still in flight at the end (a whole completed run otherwise). speedscope shows one
  // track at a time, over that track's own slices only: a stuck rank's scheduler track ends in its
  // hang slice (tools/timeline-screenshot.sh stacks one speedscope per rank, in this order).
  if (!ending.hang) interest_from_ns = 0;
  return {{"traceEvents", events},
          {"displayTimeUnit", "ns"},
          {"otherData",
           {{"scenario", trace.header.scenario_name},
            {"variant", trace.header.variant},
            {"verdict", trace.header.verdict},
            {"verdict_at_us", us(trace.header.verdict_at_ns)},
            {"end_of_run_us", us(end_ns)},
            {"end_of_run_from", ending.replayed ? "replay" : "trace events"},
            {"interest_us", {us(interest_from_ns), us(end_ns)}},
            {"interest", ending.hang ? "the hang and the L3 calls in flight when the run ended" : "the whole run"}}}};
}

}  // namespace hcsim
