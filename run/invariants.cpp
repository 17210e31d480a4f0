#include "run/invariants.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

#include "policy/assert.h"
#include "policy/termination.h"

namespace hcsim {

namespace {

constexpr std::size_t kDetailsMax = 8;

void add_detail(InvariantResult& r, const std::string& line) {
  r.held = false;
  if (r.details.size() < kDetailsMax) r.details.push_back(line);
}

std::string ms(TimeNs t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(t) / 1e6);
  return buf;
}

InvariantResult matching_collectives(const Verdict& v) {
  InvariantResult r{"matching_collectives", true, {}};
  // A mismatch, or any stuck run that left a collective half entered (a deadlock, or a lost worker).
  const bool unmatched = v.kind == HangKind::kCollectiveMismatch || (v.hang() && v.has_collective);
  if (unmatched) {
    add_detail(r, std::string(group_name(v.group)) + " seq " + std::to_string(v.seq) + " never completed: " + v.headline);
  }
  return r;
}

InvariantResult identical_published_prefix(const InvariantEvents& ev, const RequestOwners& owners, bool complete) {
  InvariantResult r{"identical_published_prefix", true, {}};
  for (const auto& [rid, by_rank] : ev.commits) {
    const std::vector<std::pair<std::int64_t, std::int64_t>> none;
    const int f = owners.first_rank(rid);
    const auto& first = static_cast<std::size_t>(f) < by_rank.size() ? by_rank[static_cast<std::size_t>(f)] : none;
    for (int k = f + 1; k < f + owners.replica_ranks; ++k) {
      const auto& mine = static_cast<std::size_t>(k) < by_rank.size() ? by_rank[static_cast<std::size_t>(k)] : none;
      const std::size_t n = std::min(mine.size(), first.size());
      for (std::size_t i = 0; i < n; ++i) {
        if (mine[i] == first[i]) continue;
        add_detail(r, "request " + std::to_string(rid) + ": rank " + std::to_string(f) + " published " + std::to_string(first[i].first) + " tokens" +
                          (first[i].second ? " with sidecar state" : " without sidecar state") + ", rank " + std::to_string(k) + " " +
                          std::to_string(mine[i].first) + (mine[i].second ? " with" : " without"));
      }
      if (complete && mine.size() != first.size()) {
        add_detail(r, "request " + std::to_string(rid) + ": rank " + std::to_string(f) + " committed " + std::to_string(first.size()) + " time(s), rank " +
                          std::to_string(k) + " " + std::to_string(mine.size()));
      }
    }
  }
  return r;
}

InvariantResult one_terminal_state(const InvariantEvents& ev, bool complete) {
  InvariantResult r{"one_terminal_state", true, {}};
  for (const auto& [key, op] : ev.ops) {
    if (op.ends > 1) add_detail(r, "rank " + std::to_string(key.first) + " op " + std::to_string(key.second) + " ended " + std::to_string(op.ends) + " times");
    if (complete && op.registered && op.ends == 0) {
      add_detail(r, "rank " + std::to_string(key.first) + " op " + std::to_string(key.second) + " (request " + std::to_string(op.request) +
                        ") never reached a terminal state");
    }
  }
  return r;
}

// An operation starts at its registration, its deadline follows from the agreed hit, and it ends
// at its terminal event, or is still open when the run ends.
InvariantResult termination_bound(const InvariantInputs& in) {
  InvariantResult r{"termination_bound", true, {}};
  if (in.policy->policy != PrefetchPolicy::kTimeout) return r;
  for (const auto& [key, op] : in.events->ops) {
    if (!op.registered) continue;
    const std::int64_t hit_pages = op.hit_tokens / in.policy->page_size_tokens;
    const TimeNs bound_ns = prefetch_timeout_ns(in.policy->timeout, hit_pages, in.policy->page_size_tokens) + 2 * in.pass_slack_ns;
    const TimeNs lived_ns = (op.end_ns >= 0 ? op.end_ns : in.end_ns) - op.start_ns;
    if (lived_ns <= bound_ns) continue;
    add_detail(r, "rank " + std::to_string(key.first) + " request " + std::to_string(op.request) + ": " +
                      (op.end_ns >= 0 ? "terminated " : "still open ") + ms(lived_ns) + " after its start, bound " + ms(bound_ns));
  }
  return r;
}

InvariantResult slot_ownership(const InvariantEvents& ev) {
  InvariantResult r{"slot_ownership", true, {}};
  for (const TraceEvent& e : ev.slot_violations) {
    const SlotViolationFields violation = slot_violation_fields(e);
    const auto owner = static_cast<SlotOwner>(violation.owner);
    const char* what = owner == SlotOwner::kFree      ? "touched after it was freed (use-after-free or double free)"
                       : owner == SlotOwner::kWriting ? "freed or reused while a write was in flight"
                       : owner == SlotOwner::kOperation ? "written while another operation owns it (freed and handed on)"
                                                        : "touched by an actor that does not own it";
    add_detail(r, "rank " + std::to_string(e.rank) + " " + std::string(actor_name(e.actor)) + " at " + ms(e.time_ns) + ": " +
                      (static_cast<SlotPoolKind>(violation.pool) == SlotPoolKind::kKv ? "KV" : "sidecar") + " slot " +
                      std::to_string(violation.slot) + " " + what + " (owner: " + std::string(slot_owner_name(owner)) + ")");
  }
  if (ev.slot_violation_count > static_cast<std::int64_t>(ev.slot_violations.size())) r.held = false;
  return r;
}

// A page is usable only with its derived sidecar objects (DSA's indexer values, DeepSeek-V4's
// compressed caches and states): KV published without them is read as garbage, silently (#30057,
// fixed by #31443's clamp and all-or-nothing test).
InvariantResult published_pages_whole(const InvariantEvents& ev) {
  InvariantResult r{"published_pages_whole", true, {}};
  for (const TraceEvent& e : ev.indexer_gaps) {
    const IndexerGapFields gap = indexer_gap_fields(e);
    add_detail(r, "rank " + std::to_string(e.rank) + " at " + ms(e.time_ns) + ": request " + std::to_string(e.request) + " published " +
                      std::to_string(gap.published_pages) + " KV page(s), " + std::to_string(gap.pages) + " of them without their derived sidecar objects");
  }
  if (ev.indexer_gap_count > static_cast<std::int64_t>(ev.indexer_gaps.size())) r.held = false;
  return r;
}

InvariantResult slot_conservation(const InvariantInputs& in) {
  InvariantResult r{"slot_conservation", true, {}};
  for (int k = 0; k < in.ranks; ++k) {
    for (const auto& leak : in.leaked[static_cast<std::size_t>(k)]) {
      const auto& s = leak.record;
      add_detail(r, "rank " + std::to_string(k) + " " + (s.pool == SlotPoolKind::kKv ? "KV" : "sidecar") + " slot " +
                        std::to_string(s.slot) + " leaked: held by " + leak.owner + " since " + ms(s.since_ns) + ", age " +
                        ms(in.end_ns - s.since_ns));
    }
  }
  return r;
}

}  // namespace

void InvariantEvents::on_event(const TraceEvent& e) {
  switch (e.kind) {
    case EventKind::kCommit: {
      auto& by_rank = commits[e.request];
      if (by_rank.size() <= static_cast<std::size_t>(e.rank)) by_rank.resize(static_cast<std::size_t>(e.rank) + 1);
      const CommitFields commit = commit_fields(e);
      by_rank[static_cast<std::size_t>(e.rank)].push_back({commit.prefix_tokens, commit.sidecar_attached});
      break;
    }
    case EventKind::kRegister: {
      Op& op = ops[{e.rank, register_fields(e).op}];
      op.request = e.request;
      op.registered = true;
      op.start_ns = e.time_ns;
      break;
    }
    case EventKind::kHitQuery: {
      const HitQueryFields hit = hit_query_fields(e);
      ops[{e.rank, hit.op}].hit_tokens = hit.group_min_hit_tokens;
      break;
    }
    case EventKind::kOpEnd: {
      Op& op = ops[{e.rank, op_end_fields(e).op}];
      if (op.ends++ == 0) op.end_ns = e.time_ns;
      break;
    }
    case EventKind::kHitLost: {
      const HitLostFields lost = hit_lost_fields(e);
      const HitLoss loss{lost.agreed_tokens, lost.published_tokens, static_cast<HitLossCause>(lost.cause), e.rank, e.time_ns};
      auto [it, first] = hit_losses.try_emplace(e.request, loss);
      if (!first && loss.lost_tokens() > it->second.lost_tokens()) it->second = loss;
      break;
    }
    case EventKind::kSlotViolation:
      if (slot_violations.size() < kDetailsMax) slot_violations.push_back(e);
      ++slot_violation_count;
      break;
    case EventKind::kIndexerGap:
      if (indexer_gaps.size() < kDetailsMax) indexer_gaps.push_back(e);
      ++indexer_gap_count;
      break;
    default: break;
  }
}

std::vector<InvariantResult> check_invariants(const InvariantInputs& in) {
  HCSIM_ASSERT(in.verdict && in.events && in.policy && in.owners && in.ranks > 0 && static_cast<int>(in.leaked.size()) == in.ranks);
  const bool complete = !in.verdict->hang();
  std::vector<InvariantResult> out;
  out.push_back(matching_collectives(*in.verdict));
  out.push_back(identical_published_prefix(*in.events, *in.owners, complete));
  out.push_back(one_terminal_state(*in.events, complete));
  out.push_back(termination_bound(in));
  out.push_back(slot_ownership(*in.events));
  out.push_back(published_pages_whole(*in.events));
  // Conservation is a property of quiescence: only a complete run has reached it.
  out.push_back(complete ? slot_conservation(in) : InvariantResult{"slot_conservation", true, {}});
  return out;
}

std::vector<std::string> violated_names(const std::vector<InvariantResult>& results) {
  std::vector<std::string> names;
  for (const auto& r : results) {
    if (!r.held) names.push_back(r.name);
  }
  return names;
}

}  // namespace hcsim
