#include "tools/report.h"

#include <cstdio>
#include <map>
#include <ostream>
#include <sstream>
#include <vector>


namespace hcsim {

std::string format_ms(TimeNs t) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(t) / 1e6);
  return buf;
}

std::string verdict_word(const Verdict& v) {
  return v.hang() ? "HANG " + std::string(hang_kind_name(v.kind)) : "complete";
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
// match that followed, the schedule, or the admission walk stopping at it. Identical on every rank unless the ranks diverged.
bool published(EventKind k) {
  return k == EventKind::kRegister || k == EventKind::kRegisterSkip || k == EventKind::kCommit ||
         k == EventKind::kMatch || k == EventKind::kSchedule || k == EventKind::kBatchFull;
}
std::string published_text(const TraceEvent& e) {
  if (e.kind == EventKind::kRegister) return "register prefetch_tokens=" + std::to_string(e.a);  // op ids differ legitimately
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

std::string rank_divergence(const RunResult& r, const Scenario& s) {
  const int tp = static_cast<int>(r.ranks.size());
  std::map<RequestId, std::vector<std::vector<std::string>>> per_request;  // request -> rank -> texts
  for (const TraceEvent& e : r.log.events()) {
    if (!published(e.kind) || e.request < 0) continue;
    auto& by_rank = per_request[e.request];
    by_rank.resize(static_cast<std::size_t>(tp));
    by_rank[static_cast<std::size_t>(e.rank)].push_back(published_text(e));
  }
  for (const auto& [rid, by_rank] : per_request) {
    std::size_t longest = 0;
    for (const auto& v : by_rank) longest = std::max(longest, v.size());
    for (std::size_t i = 0; i < longest; ++i) {
      const std::string* first = i < by_rank[0].size() ? &by_rank[0][i] : nullptr;
      bool differ = false;
      for (const auto& v : by_rank) {
        const std::string* mine = i < v.size() ? &v[i] : nullptr;
        differ = differ || (mine == nullptr) != (first == nullptr) || (mine && *mine != *first);
      }
      if (!differ) continue;
      std::ostringstream out;
      out << "request " << request_name(s, rid) << ", step " << i + 1 << " of what the ranks published:\n";
      for (int k = 0; k < tp; ++k) {
        const auto& v = by_rank[static_cast<std::size_t>(k)];
        out << "    rank " << k << ": ";
        for (std::size_t j = i; j < v.size() && j < i + 2; ++j) out << (j > i ? "; then " : "") << v[j];
        if (v.size() <= i) out << "(nothing published)";
        out << "\n";
      }
      return out.str();
    }
  }
  return "";
}

void print_report(std::ostream& out, const Scenario& s, const RunResult& r, const RunLabel& label) {
  const Verdict& v = r.verdict;
  out << "scenario   " << s.name << (s.incident.empty() ? "" : " (" + s.incident + ")") << "\n";
  out << "variant    " << label.variant << " (fixes: " << r.policy.fixes.names() << "; " << upstream_label(r.policy.fixes) << "), policy "
      << policy_name(r.policy.policy) << ", tp " << r.ranks.size() << ", seed " << r.seed << "\n";
  out << "verdict    " << verdict_word(v) << " at " << format_ms(v.at_ns) << "\n";
  out << "           " << v.headline << "\n";
  if (v.has_collective) {
    out << "collective " << group_name(v.group) << ", sequence " << v.seq << "\n";
    for (const auto& e : v.entered) {
      out << "           rank " << e.rank << " entered " << collective_op_name(e.op) << " size " << e.size << " at " << format_ms(e.at_ns) << "\n";
    }
    for (int m : v.missing_ranks) out << "           rank " << m << " has not entered it\n";
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
    out << "l3 lost    none: every request got all of its agreed L3 hit\n";
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
      const TraceEvent* sched = nullptr;
      for (const TraceEvent& e : r.log.events()) {
        if (e.kind == EventKind::kSchedule && e.request == req.id && e.rank == static_cast<int>(k)) sched = &e;
      }
      out << (k ? ";" : "") << " rank " << k << " ";
      if (sched) {
        out << "scheduled at " << format_ms(sched->time_ns) << " (L3 " << sched->b << ", host hit " << sched->c << ", extend " << sched->a << " tokens)";
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
  const UpstreamAt* at = upstream_at(r.policy.fixes);
  j["upstream"] = at ? nlohmann::json{{"date", at->date}, {"commit", at->commit}} : nlohmann::json("hypothetical");
  j["policy"] = policy_name(r.policy.policy);
  j["tp"] = r.ranks.size();
  j["seed"] = r.seed;
  j["verdict"] = v.hang() ? "hang" : "complete";
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
  for (const RequestSpec& req : s.workload) {
    json q{{"request", req.name}};
    for (const TraceEvent& e : r.log.events()) {
      if (e.kind == EventKind::kSchedule && e.request == req.id) {
        q["scheduled"].push_back({{"rank", e.rank}, {"at_ns", e.time_ns}, {"storage_hit_tokens", e.b}, {"host_hit_tokens", e.c}, {"extend_tokens", e.a}});
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
