#include "tools/report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <vector>


namespace hcsim {

std::string format_ms(TimeNs t) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(t) / 1e6);
  return buf;
}

std::string collective_line(const Verdict& v) {
  if (!v.has_collective) return "";
  std::ostringstream s;
  s << group_name(v.group) << " seq " << v.seq << ":";
  for (const auto& e : v.entered) s << " rank " << e.rank << " " << collective_op_name(e.op) << "(" << e.size << ")";
  if (!v.missing_ranks.empty()) {
    s << "; not entered by rank";
    for (int r : v.missing_ranks) s << " " << r;
  }
  return s.str();
}

namespace {

const char* digest_hex(std::uint64_t d) {
  static char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(d));
  return buf;
}

std::string fields_text(const TraceEvent& e) {
  const auto& names = event_field_names(e.kind);
  const std::int64_t values[3] = {e.a, e.b, e.c};
  std::string s;
  for (int i = 0; i < 3; ++i) {
    if (names[static_cast<std::size_t>(i)].empty()) continue;
    if (!s.empty()) s += ' ';
    s += std::string(names[static_cast<std::size_t>(i)]) + "=" + std::to_string(values[i]);
  }
  return s;
}

// What a rank published or decided for a request: registration, the commit into its tree, the
// match that followed, a load-back that did not fit, the schedule, or the admission walk stopping at it. Identical on every
// rank unless the ranks diverged.
bool published(EventKind k) {
  return k == EventKind::kRegister || k == EventKind::kRegisterSkip || k == EventKind::kCommit || k == EventKind::kMatch ||
         k == EventKind::kLoadBackFailed || k == EventKind::kSchedule || k == EventKind::kBatchFull;
}
std::string fact_text(const TraceEvent& e);
std::string published_text(const TraceEvent& e) {
  if (e.kind == EventKind::kRegister) return "register prefetch_tokens=" + std::to_string(register_fields(e).prefetch_tokens);  // op ids differ legitimately
  if (e.kind == EventKind::kRegisterSkip) return fact_text(e);
  return std::string(event_name(e.kind)) + " " + fields_text(e);
}

const std::string& request_name(const Scenario& s, RequestId id) {
  static const std::string none = "-";
  return id >= 0 && static_cast<std::size_t>(id) < s.workload.size() ? s.workload[static_cast<std::size_t>(id)].name : none;
}

}  // namespace

std::string format_event(const TraceEvent& e) {
  std::string s = format_ms(e.time_ns);
  s.append(" rank ").append(std::to_string(e.rank)).append(" ").append(actor_name(e.actor));
  s.append(" ").append(event_name(e.kind)).append(" request ").append(std::to_string(e.request));
  const std::string f = fields_text(e);
  if (!f.empty()) s.append(" ").append(f);
  return s;
}

namespace {

// Events of one kind of interest, by request, then rank, in log order.
using EventsByRank = std::vector<std::vector<const TraceEvent*>>;
template <typename Keep>
std::map<RequestId, EventsByRank> events_by_request(const RunResult& r, Keep keep) {
  std::map<RequestId, EventsByRank> out;
  for (const TraceEvent& e : r.log.events()) {
    if (!keep(e)) continue;
    EventsByRank& by_rank = out[e.request];
    by_rank.resize(r.ranks.size());
    by_rank[static_cast<std::size_t>(e.rank)].push_back(&e);
  }
  return out;
}

// The first index at which the ranks' texts differ (a rank without an event there counts as
// different), and the earliest time among the events at that index.
struct Difference {
  std::size_t index = 0;
  TimeNs at_ns = 0;
};
// Only the request's own ranks take part: with DP attention, its replica's.
template <typename Text>
std::optional<Difference> first_difference(const EventsByRank& by_rank, Text text, const RequestOwners& owners, RequestId request) {
  const auto mine = std::span(by_rank).subspan(static_cast<std::size_t>(owners.first_rank(request)), static_cast<std::size_t>(owners.replica_ranks));
  std::size_t longest = 0;
  for (const auto& v : mine) longest = std::max(longest, v.size());
  for (std::size_t i = 0; i < longest; ++i) {
    const auto text_at = [&](const std::vector<const TraceEvent*>& v) { return i < v.size() ? text(*v[i]) : std::string(); };
    const std::string first = text_at(mine[0]);
    bool differ = false;
    TimeNs at = INT64_MAX;
    for (const auto& v : mine) {
      differ = differ || text_at(v) != first;
      if (i < v.size()) at = std::min(at, v[i]->time_ns);
    }
    if (differ) return Difference{i, at};
  }
  return std::nullopt;
}

// The step where the ranks first published different things for a request (by request id).
struct PublishedDivergence {
  RequestId request = kNoRequest;
  std::size_t step = 0;                         // index into what each rank published
  TimeNs at_ns = 0;                             // the earliest of the differing steps
  EventsByRank by_rank;
};

std::optional<PublishedDivergence> find_published_divergence(const RunResult& r) {
  auto per_request = events_by_request(r, [](const TraceEvent& e) { return published(e.kind) && e.request >= 0; });
  for (auto& [rid, by_rank] : per_request) {
    if (const auto d = first_difference(by_rank, published_text, r.owners, rid)) return PublishedDivergence{rid, d->index, d->at_ns, std::move(by_rank)};
  }
  return std::nullopt;
}

// A fact a rank learned or had, as opposed to what it published: its own allocation, the hit its
// store reported, what a read returned. The fields that may differ between ranks; ids never count.
std::string fact_text(const TraceEvent& e) {
  std::string s(event_name(e.kind));
  auto field = [&](std::string_view name, std::int64_t value) { s.append(" ").append(name).append("=").append(std::to_string(value)); };
  switch (e.kind) {
    case EventKind::kRegister: field("prefetch_tokens", register_fields(e).prefetch_tokens); break;
    case EventKind::kRegisterShrink:
    case EventKind::kHostEvict: s.append(" ").append(fields_text(e)); break;
    case EventKind::kRegisterSkip: {
      const RegisterSkipFields skip = register_skip_fields(e);
      field("prefetch_tokens", skip.prefetch_tokens);
      s.append(" reason=").append(skip_reason_name(static_cast<SkipReason>(skip.reason)));
      break;
    }
    case EventKind::kHitQuery: field("local_hit_tokens", hit_query_fields(e).local_hit_tokens); break;
    case EventKind::kKvBatchDone: {
      const KvBatchDoneFields batch = kv_batch_done_fields(e);
      field("pages_read", batch.pages_read);
      field("completed_tokens", batch.completed_tokens);
      break;
    }
    case EventKind::kSidecarDone: field("hit_pages", sidecar_done_fields(e).hit_pages); break;
    case EventKind::kRevoke: field("hit_tokens", revoke_fields(e).hit_tokens); break;  // the hit drain's allocation
    case EventKind::kWriteBackup: {
      const WriteBackupFields backup = write_backup_fields(e);
      field("pages", backup.pages);
      field("committed", backup.committed);
      break;
    }
    default: return "";
  }
  return s;
}

}  // namespace

std::string rank_divergence(const RunResult& r, const Scenario& s) {
  const auto d = find_published_divergence(r);
  if (!d) return "";
  std::ostringstream out;
  out << "request " << request_name(s, d->request) << ", step " << d->step + 1 << " of what the ranks published:\n";
  for (std::size_t k = 0; k < d->by_rank.size(); ++k) {
    if (!r.owners.owns(static_cast<int>(k), d->request)) continue;
    const auto& v = d->by_rank[k];
    out << "    rank " << k << ": ";
    for (std::size_t j = d->step; j < v.size() && j < d->step + 2; ++j) out << (j > d->step ? "; then " : "") << published_text(*v[j]);
    if (v.size() <= d->step) out << "(nothing published)";
    out << "\n";
  }
  return out.str();
}

std::optional<Origin> divergence_origin(const RunResult& r) {
  const auto d = find_published_divergence(r);
  if (!d && !r.verdict.hang()) return std::nullopt;  // nothing went wrong between the ranks
  // What each rank knew up to its own step where they parted (or the hang): the first fact, in any
  // request, that was not the same on every rank. Per rank, as a real run's ranks reach that step
  // at slightly different times.
  std::vector<TimeNs> until_ns(r.ranks.size(), d ? INT64_MAX : r.verdict.at_ns);
  if (d) {
    for (std::size_t k = 0; k < until_ns.size(); ++k) {
      if (d->step < d->by_rank[k].size()) until_ns[k] = d->by_rank[k][d->step]->time_ns;
    }
  }
  const auto facts = events_by_request(r, [&](const TraceEvent& e) {
    return e.time_ns <= until_ns[static_cast<std::size_t>(e.rank)] && !fact_text(e).empty();
  });
  std::optional<Origin> best;
  for (const auto& [rid, by_rank] : facts) {
    const auto diff = first_difference(by_rank, fact_text, r.owners, rid);
    if (!diff || (best && diff->at_ns >= best->at_ns)) continue;
    Origin o{rid, diff->at_ns, {}};
    for (const auto& v : by_rank) o.facts.push_back(diff->index < v.size() ? v[diff->index] : nullptr);
    best = std::move(o);
  }
  return best;
}

std::string origin_text(const Origin& o, const RunResult& r, const Scenario& s) {
  std::ostringstream out;
  out << "request " << request_name(s, o.request) << " at " << format_ms(o.at_ns) << ", the first fact that differed between ranks:\n";
  for (std::size_t k = 0; k < o.facts.size(); ++k) {
    if (!r.owners.owns(static_cast<int>(k), o.request)) continue;
    out << "    rank " << k << ": ";
    if (o.facts[k] != nullptr) {
      out << fact_text(*o.facts[k]) << " at " << format_ms(o.facts[k]->time_ns);
    } else {
      out << "nothing yet";
      // When the fact the others had came to this rank later, say when.
      const TraceEvent* other = nullptr;
      for (const TraceEvent* f : o.facts) other = other ? other : f;
      for (const TraceEvent& e : r.log.events()) {
        if (other && e.rank == static_cast<int>(k) && e.request == o.request && e.kind == other->kind && e.time_ns > o.at_ns) {
          out << " (its " << event_name(e.kind) << " came at " << format_ms(e.time_ns) << ")";
          break;
        }
      }
    }
    out << "\n";
  }
  return out.str();
}

namespace {

// The requests' arrival shifts, each where there are few, else their range.
constexpr std::size_t kShiftsListedMax = 8;

// What the seed drew, where the scenario asks for draws: one line each, none for a scenario without.
void print_draws(std::ostream& out, const Scenario& s, const RunResult& r) {
  std::vector<std::string> lines;
  const Perturbations& p = s.perturbations;
  if (p.device_free_pages_lo != p.device_free_pages_hi) {
    std::string line = "device free pages by rank (/perturbations/device_free_pages):";
    for (const std::int64_t d : r.draws.device_free_pages) line += (d >= 0 ? " +" : " ") + std::to_string(d);
    lines.push_back(line);
  }
  const auto& shifts = r.draws.arrival_shift_ns;
  if (p.arrival_lo_ns != p.arrival_hi_ns && !shifts.empty()) {
    std::string line = "arrival shifts (/perturbations/arrival_us):";
    if (shifts.size() <= kShiftsListedMax) {
      for (std::size_t i = 0; i < shifts.size(); ++i) line += (i ? ", " : " ") + s.workload[i].name + " +" + format_ms(shifts[i]);
    } else {
      const auto [lo, hi] = std::minmax_element(shifts.begin(), shifts.end());
      line += " " + std::to_string(shifts.size()) + " requests, +" + format_ms(*lo) + " to +" + format_ms(*hi);
    }
    lines.push_back(line);
  }
  auto tallies = [&](const std::vector<DrawTally>& t, const std::string& where) {
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i].draws == 0) continue;
      lines.push_back(where + std::to_string(i) + ": " + std::to_string(t[i].draws) + " draw(s), " + format_ms(t[i].total_ns) + " in all, largest " +
                      format_ms(t[i].max_ns));
    }
  };
  tallies(r.draws.delays, "/delays/");
  tallies(r.draws.jitter, "/perturbations/jitter/");
  for (std::size_t i = 0; i < lines.size(); ++i) out << (i == 0 ? "draws      " : "           ") << lines[i] << "\n";
}

nlohmann::json draws_json(const RunResult& r) {
  auto tallies = [](const std::vector<DrawTally>& t) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i].draws == 0) continue;
      out.push_back({{"index", i}, {"draws", t[i].draws}, {"total_ms", static_cast<double>(t[i].total_ns) / 1e6},
                     {"max_ms", static_cast<double>(t[i].max_ns) / 1e6}});
    }
    return out;
  };
  nlohmann::json shifts = nlohmann::json::array();
  for (const TimeNs t : r.draws.arrival_shift_ns) shifts.push_back(static_cast<double>(t) / 1e6);
  return {{"device_free_pages", r.draws.device_free_pages}, {"arrival_shift_ms", shifts}, {"delays", tallies(r.draws.delays)},
          {"jitter", tallies(r.draws.jitter)}};
}

}  // namespace

namespace {
std::string topology_note(const Topology& t) { return t.split_text().empty() ? "" : " (" + t.split_text() + ")"; }
}  // namespace

void print_report(std::ostream& out, const Scenario& s, const RunResult& r, const RunLabel& label) {
  const Verdict& v = r.verdict;
  out << "scenario   " << s.name << (s.incident.empty() ? "" : " (" + s.incident + ")") << "\n";
  out << "variant    " << label.variant << " (fixes: " << r.policy.fixes.names() << "; " << upstream_label(r.policy.fixes) << "), policy "
      << policy_name(r.policy.policy) << ", tp " << r.policy.topology().tp << (r.policy.pp > 1 ? ", pp " + std::to_string(r.policy.pp) : "")
      << topology_note(r.policy.topology()) << ", seed " << r.seed << "\n";
  out << "code path  " << code_path_name(r.policy.path) << " (" << model_family_name(r.policy.family) << ")\n";
  print_draws(out, s, r);
  out << "verdict    " << verdict_word(v) << " at " << format_ms(v.at_ns) << "\n";
  out << "           " << v.headline << "\n";
  if (v.has_collective) {
    out << "collective " << group_name(v.group) << ", sequence " << v.seq << "\n";
    for (const auto& e : v.entered) {
      out << "           rank " << e.rank << " entered " << collective_op_name(e.op) << " size " << e.size << " at " << format_ms(e.at_ns) << "\n";
    }
    // Where each absent member is instead: with attention groups, often in another group's
    // collective that waits on the ranks here.
    const ActorKind member = v.group.kind == GroupKind::kPrefetchTp || v.group.kind == GroupKind::kPrefetchCp ? ActorKind::kPrefetch : ActorKind::kScheduler;
    for (int m : v.missing_ranks) {
      out << "           rank " << m << " has not entered it";
      for (const ActorState& a : v.actors) {
        if (a.rank == m && a.actor == member && a.index == 0) out << "; its " << actor_name(member) << (a.wait == WaitKind::kDied ? " " : " is ") << describe_wait(a);
      }
      out << "\n";
    }
  }
  if (v.kind == HangKind::kStarvation && v.request >= 0) {
    out << "starved    request " << request_name(s, v.request) << ", not scheduled on rank(s)";
    for (int k : v.ranks_pending) out << " " << k;
    out << "\n";
  }
  if (v.hang()) {
    out << "actors\n";
    for (const auto& a : v.actors) {
      char head[48];
      std::snprintf(head, sizeof head, "  %-18s ", actor_label(a).c_str());
      out << head << describe_wait(a) << "\n";
    }
  }
  const std::string divergence = rank_divergence(r, s);
  if (!divergence.empty()) out << "divergence " << divergence;
  if (const auto origin = divergence_origin(r)) {
    out << "origin     " << origin_text(*origin, r, s);
  } else if (!divergence.empty()) {
    out << "origin     no fact differed between the ranks before that step: it parted on what the step itself read (a rank-local budget or tree)\n";
  }
  out << "invariants";
  for (const InvariantResult& inv : r.invariants) {
    out << (&inv == &r.invariants.front() ? " " : "           ") << (inv.held ? "held      " : "VIOLATED  ") << inv.name << "\n";
    for (const auto& d : inv.details) out << "                     " << d << "\n";
  }
  if (!r.leaks_over_time.empty()) {
    out << "leaks      leaked host slots over simulated time:";
    for (const auto& s : r.leaks_over_time) out << " " << s.leaked_slots << " @" << format_ms(s.at_ns);
    out << "\n";
  }
  if (r.l3_losses.empty()) {
    out << (r.verdict.hang() ? "l3 lost    none reported (a prefetch still open at the hang is not counted)\n"
                             : "l3 lost    none: every request got all of its agreed L3 hit\n");
  } else {
    out << "l3 lost    " << r.l3_lost_tokens() << " agreed L3 token(s) not published:\n";
    for (const auto& [rid, loss] : r.l3_losses) {
      out << "           " << request_name(s, rid) << ": " << loss.lost_tokens() << " of " << loss.agreed_tokens << " agreed tokens ("
          << hit_loss_cause_name(loss.cause) << "; rank " << loss.rank << " at " << format_ms(loss.at_ns) << ")\n";
    }
  }
  out << "requests\n";
  for (const RequestSpec& req : s.workload) {
    out << "  " << req.name << ":";
    for (std::size_t k = 0; k < r.ranks.size(); ++k) {
      if (!r.owners.owns(static_cast<int>(k), req.id)) continue;
      const TraceEvent* sched = nullptr;
      for (const TraceEvent& e : r.log.events()) {
        if (e.kind == EventKind::kSchedule && e.request == req.id && e.rank == static_cast<int>(k)) sched = &e;
      }
      out << (static_cast<int>(k) > r.owners.first_rank(req.id) ? ";" : "") << " rank " << k << " ";
      if (sched) {
        const ScheduleFields schedule = schedule_fields(*sched);
        out << "scheduled at " << format_ms(sched->time_ns) << " (L3 " << schedule.storage_hit_tokens << ", host hit " << schedule.host_hit_tokens
            << ", extend " << schedule.extend_tokens << " tokens)";
      } else {
        out << "not scheduled";
      }
    }
    out << "\n";
  }
  char line[200];
  std::snprintf(line, sizeof line, "run        %llu kernel events, %llu logged events, %llu collectives, ended at %s, wall %.3f ms\n",
                static_cast<unsigned long long>(r.kernel_events), static_cast<unsigned long long>(r.log.count()),
                static_cast<unsigned long long>(r.collectives_completed), format_ms(r.end_ns).c_str(), label.wall_ms);
  out << line;
  out << "digest     " << digest_hex(r.log.digest()) << "\n";
}

nlohmann::json report_json(const Scenario& s, const RunResult& r, const RunLabel& label) {
  using nlohmann::json;
  const Verdict& v = r.verdict;
  json j;
  j["scenario"] = s.name;
  j["variant"] = label.variant;
  j["fixes"] = r.policy.fixes.names();
  const auto at = upstream_at(r.policy.fixes);
  if (!at) {
    j["upstream"] = "hypothetical";
  } else if (at->last < 0) {
    j["upstream"] = {{"label", upstream_label(r.policy.fixes)}};
  } else {
    const UpstreamChange& c = upstream_timeline()[static_cast<std::size_t>(at->last)];
    j["upstream"] = {{"date", c.date}, {"commit", c.commit}, {"pr", c.pr}, {"label", upstream_label(r.policy.fixes)}};
  }
  j["code_path"] = code_path_name(r.policy.path);
  j["model"] = model_family_name(r.policy.family);
  j["policy"] = policy_name(r.policy.policy);
  j["tp"] = r.policy.topology().tp;
  j["pp"] = r.policy.pp;
  j["attention"] = {{"dp", r.policy.attn_dp}, {"cp", r.policy.attn_cp}};
  j["seed"] = r.seed;
  j["draws"] = draws_json(r);
  j["verdict"] = v.kind == HangKind::kCrash ? "crash" : v.hang() ? "hang" : "complete";
  j["hang_kind"] = hang_kind_name(v.kind);
  j["at_ns"] = v.at_ns;
  j["headline"] = v.headline;
  if (v.has_collective) {
    json c;
    c["group"] = group_name(v.group);
    c["sequence"] = v.seq;
    for (const auto& e : v.entered) c["entered"].push_back({{"rank", e.rank}, {"op", collective_op_name(e.op)}, {"size", e.size}, {"at_ns", e.at_ns}});
    c["missing_ranks"] = v.missing_ranks;
    j["collective"] = c;
  }
  for (const auto& a : v.actors) {
    j["actors"].push_back({{"rank", a.rank}, {"actor", actor_name(a.actor)}, {"index", a.index}, {"waits", describe_wait(a)}});
  }
  j["divergence"] = rank_divergence(r, s);
  if (const auto origin = divergence_origin(r)) {
    nlohmann::json o{{"request", request_name(s, origin->request)}, {"at_ns", origin->at_ns}};
    for (std::size_t k = 0; k < origin->facts.size(); ++k) {
      if (!r.owners.owns(static_cast<int>(k), origin->request)) continue;
      const TraceEvent* f = origin->facts[k];
      o["ranks"].push_back(f ? json{{"rank", k}, {"fact", fact_text(*f)}, {"at_ns", f->time_ns}} : json{{"rank", k}, {"fact", nullptr}});
    }
    j["origin"] = o;
  }
  for (const RequestSpec& req : s.workload) {
    json q{{"request", req.name}};
    for (const TraceEvent& e : r.log.events()) {
      if (e.kind == EventKind::kSchedule && e.request == req.id) {
        const ScheduleFields schedule = schedule_fields(e);
        q["scheduled"].push_back({{"rank", e.rank},
                                  {"at_ns", e.time_ns},
                                  {"storage_hit_tokens", schedule.storage_hit_tokens},
                                  {"host_hit_tokens", schedule.host_hit_tokens},
                                  {"extend_tokens", schedule.extend_tokens}});
      }
    }
    auto loss = r.l3_losses.find(req.id);
    if (loss != r.l3_losses.end()) {
      const HitLoss& l = loss->second;
      q["l3_lost"] = {{"agreed_tokens", l.agreed_tokens}, {"published_tokens", l.published_tokens}, {"lost_tokens", l.lost_tokens()},
                      {"cause", hit_loss_cause_name(l.cause)}, {"rank", l.rank}, {"at_ns", l.at_ns}};
    }
    j["requests"].push_back(q);
  }
  j["l3_lost_tokens"] = r.l3_lost_tokens();
  for (const InvariantResult& inv : r.invariants) j["invariants"][inv.name] = {{"held", inv.held}, {"details", inv.details}};
  for (const auto& s : r.leaks_over_time) j["leaks_over_time"].push_back({{"at_ns", s.at_ns}, {"leaked_slots", s.leaked_slots}});
  j["kernel_events"] = r.kernel_events;
  j["logged_events"] = r.log.count();
  j["end_ns"] = r.end_ns;
  j["wall_ms"] = label.wall_ms;
  j["digest"] = digest_hex(r.log.digest());
  return j;
}

}  // namespace hcsim
