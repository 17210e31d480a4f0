#include "tools/bisect.h"

#include <algorithm>
#include <chrono>
#include <cstddef>

#include "policy/assert.h"
#include "run/invariants.h"

namespace hcsim {

namespace {

int row_count() { return static_cast<int>(upstream_timeline().size()); }

const UpstreamChange& row_at(int i) {
  HCSIM_ASSERT(i >= 0 && i < row_count());
  return upstream_timeline()[static_cast<std::size_t>(i)];
}

bool is_date(std::string_view text) { return text.size() == 10 && text[4] == '-' && text[7] == '-'; }

// The row a commit names (as UpstreamPoint::parse matches it), or -1: the pin, which is no row.
int row_of_commit(std::string_view commit) {
  for (int i = 0; i < row_count(); ++i) {
    const std::string_view row = row_at(i).commit;
    if (row.starts_with(commit) || commit.starts_with(row)) return i;
  }
  return -1;
}

// The starting state for --from: the point just before the first change to test.
int start_of(std::string_view from, UpstreamPoint parsed) {
  if (is_date(from)) {
    int start = -1;
    for (int i = 0; i < row_count(); ++i) start += row_at(i).date < from ? 1 : 0;
    return start;
  }
  if (from.ends_with('^')) return parsed.last;
  return row_of_commit(from) >= 0 ? parsed.last - 1 : parsed.last;
}

// The point a bisection runs as a variant's start: the row's commit, or FIRST^ before the first row.
std::string point_text(UpstreamPoint at) {
  return at.last < 0 ? std::string(row_at(0).commit) + "^" : std::string(row_at(at.last).commit);
}

BisectOutcome outcome_of(const RunResult& r) {
  return BisectOutcome{r.verdict.kind, violated_names(r.invariants), r.l3_lost_tokens()};
}

std::string verdict_text(HangKind k) {
  if (k == HangKind::kNone) return "complete";
  if (k == HangKind::kCrash) return "CRASH";
  return "HANG " + std::string(hang_kind_name(k));
}

std::string joined(const std::vector<std::string>& parts, const char* separator = ", ") {
  std::string out;
  for (const auto& n : parts) out.append(out.empty() ? "" : separator).append(n);
  return out;
}

// The names of `a` not in `b`, in `a`'s order.
std::vector<std::string> minus(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (const auto& n : a) {
    if (std::find(b.begin(), b.end(), n) == b.end()) out.push_back(n);
  }
  return out;
}

std::vector<std::string> differences(const BisectOutcome& before, const BisectOutcome& after) {
  std::vector<std::string> out;
  if (before.verdict != after.verdict) out.push_back("verdict " + verdict_text(before.verdict) + " -> " + verdict_text(after.verdict));
  if (const auto broke = minus(after.violated, before.violated); !broke.empty()) out.push_back("breaks " + joined(broke));
  if (const auto held = minus(before.violated, after.violated); !held.empty()) out.push_back("no longer breaks " + joined(held));
  if (before.l3_lost_tokens != after.l3_lost_tokens) {
    out.push_back("l3 lost " + std::to_string(before.l3_lost_tokens) + " -> " + std::to_string(after.l3_lost_tokens) + " tokens");
  }
  return out;
}

TransitionKind kind_of(const BisectOutcome& before, const BisectOutcome& after) {
  const bool failed_before = before.verdict != HangKind::kNone, failed_after = after.verdict != HangKind::kNone;
  if (!failed_before && failed_after) return TransitionKind::kOpened;
  if (failed_before && !failed_after) return TransitionKind::kClosed;
  return TransitionKind::kChanged;
}

std::string failure_word(HangKind k) { return k == HangKind::kCrash ? "crash" : "hang"; }

}  // namespace

std::optional<BisectRange> bisect_range(std::string_view from, std::string_view to, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<BisectRange> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  BisectRange range{-1, row_count() - 1};
  std::string why;
  if (!from.empty()) {
    const auto at = UpstreamPoint::parse(from, &why);
    if (!at) return fail("--from: " + why);
    range.start = start_of(from, *at);
  }
  if (!to.empty()) {
    const auto at = UpstreamPoint::parse(to, &why);
    if (!at) return fail("--to: " + why);
    range.last = at->last;
  }
  if (range.start < range.last) return range;
  const bool after = range.start > range.last || (is_date(from) && is_date(to) ? from > to : !is_date(from) && !is_date(to));
  if (after) return fail("--from " + std::string(from) + " is after --to " + std::string(to) + ": give the older point first");
  return fail("no change of the upstream timeline lies between --from " + std::string(from) + " and --to " + std::string(to));
}

const UpstreamChange* BisectPoint::row() const { return at.last < 0 ? nullptr : &row_at(at.last); }

std::string_view transition_kind_name(TransitionKind k) {
  switch (k) {
    case TransitionKind::kOpened: return "opened";
    case TransitionKind::kClosed: return "closed";
    case TransitionKind::kChanged: return "changed";
  }
  HCSIM_ASSERT(false);
  return {};
}

Bisection bisect(const Scenario& scenario, const BisectOptions& options) {
  HCSIM_ASSERT(options.range.start >= -1 && options.range.start < options.range.last && options.range.last < row_count());
  Bisection b;
  for (int last = options.range.start; last <= options.range.last; ++last) {  // bounded: the timeline's rows
    BisectPoint p;
    p.at = UpstreamPoint{last};
    p.variant.preset = point_text(p.at);
    p.variant.steps = options.counterfactuals;
    RunOptions run;
    run.fixes = p.variant.fixes();
    run.policy = options.policy;
    run.seed = options.seed;
    const auto t0 = std::chrono::steady_clock::now();
    p.result = simulate(scenario, run);
    p.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    p.outcome = outcome_of(p.result);
    b.points.push_back(std::move(p));
  }
  for (int i = 1; i < static_cast<int>(b.points.size()); ++i) {
    const BisectOutcome& before = b.points[static_cast<std::size_t>(i - 1)].outcome;
    const BisectOutcome& after = b.points[static_cast<std::size_t>(i)].outcome;
    if (before == after) continue;
    b.transitions.push_back({kind_of(before, after), i - 1, i, b.points[static_cast<std::size_t>(i)].row(), differences(before, after)});
  }
  HCSIM_ASSERT(b.points.size() == static_cast<std::size_t>(options.range.last - options.range.start + 1));
  return b;
}

std::string change_text(const UpstreamChange& c) {
  return std::string(c.pr) + " (" + std::string(c.commit) + ", " + std::string(c.date) + ")";
}

std::vector<std::string> bisect_summary(const Bisection& b) {
  HCSIM_ASSERT(!b.points.empty());
  const BisectPoint& first = b.points.front();
  const BisectPoint& last = b.points.back();
  const std::string range = point_text(first.at) + " to " + point_text(last.at);
  if (b.transitions.empty()) {
    return {"no upstream change from " + range + " alters the outcome: " + verdict_text(first.outcome.verdict) + " at all " +
            std::to_string(b.points.size()) + " points"};
  }
  std::vector<std::string> windows, changes;
  const BisectTransition* opened = nullptr;
  for (const BisectTransition& t : b.transitions) {
    const HangKind failed = b.points[static_cast<std::size_t>(t.kind == TransitionKind::kClosed ? t.before : t.after)].outcome.verdict;
    if (t.kind == TransitionKind::kOpened) {
      opened = &t;
    } else if (t.kind == TransitionKind::kClosed && opened) {
      windows.push_back(failure_word(failed) + " window opened by " + change_text(opened->change()) + " and closed by " + change_text(t.change()));
      opened = nullptr;
    } else if (t.kind == TransitionKind::kClosed) {
      windows.push_back(failure_word(failed) + " from the start of the range (" + point_text(first.at) + ") closed by " + change_text(t.change()));
    } else {
      changes.push_back("outcome changed by " + change_text(t.change()) + ": " + joined(t.differences, "; "));
    }
  }
  if (opened) {
    // The last row of the timeline stands until the newest upstream the model follows.
    const bool at_pin = last.at.last + 1 == static_cast<int>(upstream_timeline().size());
    const std::string end = at_pin ? std::string(kUpstreamPinDate) + " (" + std::string(kUpstreamPinCommit) + "), the newest upstream modelled"
                                   : "the end of the range (" + point_text(last.at) + ", " + std::string(last.row()->date) + ")";
    windows.push_back(failure_word(last.outcome.verdict) + " window opened by " + change_text(opened->change()) + ", still open at " + end);
  }
  if (windows.empty()) {
    const HangKind v = first.outcome.verdict;
    windows.push_back("no upstream change from " + range + " opens or closes a hang: " + (v == HangKind::kNone ? "complete" : "a " + failure_word(v)) +
                      " at all " + std::to_string(b.points.size()) + " points");
  }
  windows.insert(windows.end(), changes.begin(), changes.end());
  return windows;
}

}  // namespace hcsim
