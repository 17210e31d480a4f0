// hcsim bisect: a scenario over the upstream timeline, and the changes that opened, closed or
// changed its outcome, each with the reports just before and just after it side by side.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "tools/bisect.h"
#include "tools/cli/cli.h"
#include "tools/report.h"

namespace hcsim::cli {

namespace {

// Lines are at most this wide: two report columns and " | " between them fit.
constexpr std::size_t kPageWidth = 160;
constexpr std::size_t kColumnWidth = 78;
// Where a report's values start ("verdict    HANG ..."): a wrapped line continues there.
constexpr std::size_t kReportLabelWidth = 11;
// Where a transition's lines continue, past "opened   ".
constexpr std::size_t kIndent = 9;

struct Section {
  std::string key;  // the report's label: "verdict", "invariants", ...
  std::vector<std::string> lines;
};

// One line cut into pieces of at most `width`, after a space or a comma where there is one; each
// continuation is indented by `indent` (less than `width`).
void wrap_line(const std::string& line, std::size_t width, std::size_t indent, std::vector<std::string>& out) {
  std::string rest = line;
  while (rest.size() > width) {  // bounded: each round takes at least one character past the indentation
    std::size_t cut = width;
    for (std::size_t k = width; k > indent + (width - indent) / 4; --k) {
      if (rest[k] == ' ' || rest[k - 1] == ',') {
        cut = k;
        break;
      }
    }
    std::string piece = rest.substr(0, cut);
    while (!piece.empty() && piece.back() == ' ') piece.pop_back();
    out.push_back(piece);
    rest = std::string(indent, ' ') + rest.substr(rest[cut] == ' ' ? cut + 1 : cut);
  }
  out.push_back(rest);
}

// A report's line: a continuation starts at the report's value column, or past the line's own indentation.
void wrap_report_line(const std::string& line, std::vector<std::string>& out) {
  const std::size_t own = line.find_first_not_of(' ');
  wrap_line(line, kColumnWidth, std::min<std::size_t>(own == 0 || own == std::string::npos ? kReportLabelWidth : own + 2, kColumnWidth / 2), out);
}

// Prints `line`, wrapped to the page with continuations indented by `indent`.
void print_wrapped(const std::string& line, std::size_t indent) {
  std::vector<std::string> lines;
  wrap_line(line, kPageWidth, indent, lines);
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
}

std::vector<Section> sections_of(const std::string& report) {
  std::vector<Section> sections;
  std::istringstream in(report);
  for (std::string line; std::getline(in, line);) {
    if (sections.empty() || (!line.empty() && line[0] != ' ')) sections.push_back({line.substr(0, line.find(' ')), {}});
    wrap_report_line(line, sections.back().lines);
  }
  return sections;
}

void print_pair(const std::vector<std::string>& left, const std::vector<std::string>& right) {
  for (std::size_t i = 0; i < std::max(left.size(), right.size()); ++i) {
    const std::string l = i < left.size() ? left[i] : "";
    const std::string r = i < right.size() ? right[i] : "";
    std::string both = l + std::string(kColumnWidth - std::min(kColumnWidth, l.size()), ' ') + " | " + r;
    while (both.back() == ' ') both.pop_back();
    std::printf("%s\n", both.c_str());
  }
}

// Two reports side by side, section beside section: a section only one of them has (an actor
// list, a divergence) faces blank space.
void print_side_by_side(const std::string& left, const std::string& right) {
  const std::vector<Section> a = sections_of(left), b = sections_of(right);
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {  // bounded: each round takes a section of one or both
    const bool a_later_in_b = i < a.size() && std::any_of(b.begin() + static_cast<std::ptrdiff_t>(j), b.end(),
                                                          [&](const Section& s) { return s.key == a[i].key; });
    if (i < a.size() && j < b.size() && a[i].key == b[j].key) {
      print_pair(a[i++].lines, b[j++].lines);
    } else if (i < a.size() && !a_later_in_b) {
      print_pair(a[i++].lines, {});
    } else {
      print_pair({}, b[j++].lines);
    }
  }
}

std::string point_name(const BisectPoint& p) { return p.variant.preset; }

std::string report_text(const Scenario& s, const BisectPoint& p) {
  std::ostringstream out;
  print_report(out, s, p.result, RunLabel{p.variant.text(), p.wall_ms});
  return out.str();
}

// The command that runs one point alone.
std::string reproduce(const std::string& path, const BisectPoint& p, const BisectOptions& o) {
  std::string cmd = "hcsim run " + path + p.variant.flags();
  if (o.policy) cmd += " --policy " + std::string(policy_name(*o.policy));
  if (o.seed) cmd += " --seed " + std::to_string(*o.seed);
  return cmd;
}

std::string point_title(const char* side, const BisectPoint& p) {
  const UpstreamChange* row = p.row();
  return std::string(side) + ": " + point_name(p) +
         (row ? " (" + std::string(row->date) + ", " + std::string(row->pr) + ")" : std::string(" (before the timeline)"));
}

void print_transition(const Scenario& s, const std::string& path, const Bisection& b, const BisectTransition& t, const BisectOptions& o) {
  const BisectPoint& before = b.points[static_cast<std::size_t>(t.before)];
  const BisectPoint& after = b.points[static_cast<std::size_t>(t.after)];
  const UpstreamChange& c = t.change();
  std::string differences;
  for (const auto& d : t.differences) differences += (differences.empty() ? "" : "; ") + d;
  std::printf("\n");
  print_wrapped(std::string(transition_kind_name(t.kind)) + std::string(8 - transition_kind_name(t.kind).size(), ' ') + " by " + change_text(c) + ", " +
                    std::string(fix_info(c.fix).name) + ": " + std::string(c.what),
                kIndent);
  print_wrapped(std::string(kIndent, ' ') + differences, kIndent);
  print_wrapped(std::string(kIndent, ' ') + "before: " + reproduce(path, before, o), kIndent + 8);
  print_wrapped(std::string(kIndent, ' ') + "after:  " + reproduce(path, after, o), kIndent + 8);
  std::printf("\n");
  print_pair({point_title("before", before), std::string(kColumnWidth, '-')}, {point_title("after", after), std::string(kColumnWidth, '-')});
  print_side_by_side(report_text(s, before), report_text(s, after));
}

struct PointRow {
  std::string date, commit, pr, change, path, verdict, lost, broken;
};

PointRow row_of(const BisectPoint& p) {
  const UpstreamChange* row = p.row();
  std::string broken;
  for (const auto& n : p.outcome.violated) broken += (broken.empty() ? "" : ",") + n;
  return {row ? std::string(row->date) : "-", point_name(p), row ? std::string(row->pr) : "-",
          row ? std::string(fix_info(row->fix).name) : "(before the timeline)", std::string(code_path_name(p.result.policy.path)),
          verdict_word(p.result.verdict), std::to_string(p.outcome.l3_lost_tokens), broken.empty() ? "none" : broken};
}

// One line per point; the columns as wide as their widest cell, broken invariants last.
void print_points(const Bisection& b) {
  std::vector<PointRow> rows{{"date", "commit", "PR", "change", "code path", "verdict", "l3 lost", "broken invariants"}};
  for (const BisectPoint& p : b.points) rows.push_back(row_of(p));
  std::size_t w[7] = {};
  for (const PointRow& r : rows) {
    const std::string* cells[7] = {&r.date, &r.commit, &r.pr, &r.change, &r.path, &r.verdict, &r.lost};
    for (int k = 0; k < 7; ++k) w[k] = std::max(w[k], cells[k]->size());
  }
  std::size_t prefix = 2;
  for (const std::size_t width : w) prefix += width + 2;
  for (const PointRow& r : rows) {
    char head[512];
    std::snprintf(head, sizeof head, "  %-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %*s  ", static_cast<int>(w[0]), r.date.c_str(), static_cast<int>(w[1]),
                  r.commit.c_str(), static_cast<int>(w[2]), r.pr.c_str(), static_cast<int>(w[3]), r.change.c_str(), static_cast<int>(w[4]),
                  r.path.c_str(), static_cast<int>(w[5]), r.verdict.c_str(), static_cast<int>(w[6]), r.lost.c_str());
    print_wrapped(head + r.broken, prefix + 20 < kPageWidth ? prefix : kPageWidth / 2);  // the names continue under their column
  }
}

// "+pool-transfer-guard", "~completion-race-guard"
std::string step_text(const Variant::Step& st) {
  std::string out = st.add ? "+" : "~";
  out.append(st.fix);
  return out;
}

std::string counterfactuals_text(const BisectOptions& o) {
  std::string out;
  for (const Variant::Step& st : o.counterfactuals) out.append(out.empty() ? "" : " ").append(step_text(st));
  return out.empty() ? "none" : out;
}

nlohmann::json change_json(const UpstreamChange* row) {
  if (!row) return nullptr;
  return {{"date", row->date}, {"commit", row->commit}, {"pr", row->pr}, {"fix", fix_info(row->fix).name}, {"what", row->what}};
}

nlohmann::json point_json(const BisectPoint& p) {
  const Verdict& v = p.result.verdict;
  return {{"point", point_name(p)}, {"variant", p.variant.text()}, {"change", change_json(p.row())}, {"upstream", upstream_label(p.result.policy.fixes)},
          {"code_path", code_path_name(p.result.policy.path)}, {"verdict", v.kind == HangKind::kCrash ? "crash" : v.hang() ? "hang" : "complete"}, {"hang_kind", hang_kind_name(v.kind)},
          {"at_ns", v.at_ns}, {"violated", p.outcome.violated}, {"l3_lost_tokens", p.outcome.l3_lost_tokens}};
}

nlohmann::json bisection_json(const Scenario& s, const std::string& path, const Bisection& b, const BisectOptions& o) {
  nlohmann::json points = nlohmann::json::array(), transitions = nlohmann::json::array();
  for (const BisectPoint& p : b.points) points.push_back(point_json(p));
  for (const BisectTransition& t : b.transitions) {
    const BisectPoint& before = b.points[static_cast<std::size_t>(t.before)];
    const BisectPoint& after = b.points[static_cast<std::size_t>(t.after)];
    transitions.push_back({{"kind", transition_kind_name(t.kind)}, {"change", change_json(t.change_row)}, {"differences", t.differences},
                           {"before", {{"point", point_name(before)}, {"reproduce", reproduce(path, before, o)},
                                       {"report", report_json(s, before.result, RunLabel{before.variant.text(), before.wall_ms})}}},
                           {"after", {{"point", point_name(after)}, {"reproduce", reproduce(path, after, o)},
                                      {"report", report_json(s, after.result, RunLabel{after.variant.text(), after.wall_ms})}}}});
  }
  const RunResult& first = b.points.front().result;
  nlohmann::json counterfactuals = nlohmann::json::array();
  for (const Variant::Step& st : o.counterfactuals) counterfactuals.push_back(step_text(st));
  return {{"scenario", s.name}, {"model", model_family_name(s.policy.family)}, {"policy", policy_name(first.policy.policy)}, {"seed", first.seed},
          {"counterfactuals", counterfactuals}, {"from", point_name(b.points.front())}, {"to", point_name(b.points.back())},
          {"summary", bisect_summary(b)}, {"points", points}, {"transitions", transitions}};
}

void print_bisection(const Scenario& s, const std::string& path, const Bisection& b, const BisectOptions& o) {
  const RunResult& first = b.points.front().result;
  const std::string incident = s.incident.empty() ? "" : " (" + s.incident + ")";
  for (const std::string& line : bisect_summary(b)) print_wrapped(line, 2);
  std::printf("scenario %s%s, %s, policy %s, seed %llu, counterfactuals %s; %zu points, %s to %s\n\n", s.name.c_str(), incident.c_str(),
              std::string(model_family_name(s.policy.family)).c_str(),
              std::string(policy_name(first.policy.policy)).c_str(), static_cast<unsigned long long>(first.seed), counterfactuals_text(o).c_str(),
              b.points.size(), point_name(b.points.front()).c_str(), point_name(b.points.back()).c_str());
  print_points(b);
  for (const BisectTransition& t : b.transitions) print_transition(s, path, b, t, o);
}

constexpr const char* kHelp =
    "usage: hcsim bisect SCENARIO [--from DATE] [--to DATE] [--policy P] [--fix F]... [--without F]... [--seed N] [--json]\n\n"
    "Runs SCENARIO at every point of the upstream timeline ('hcsim fixes' lists it) from --from to --to,\n"
    "starting from the point just before the first change in the range, and names each change that\n"
    "altered the outcome: opened (complete -> hang), closed (hang -> complete) or changed (another hang\n"
    "kind, other broken invariants, other agreed L3 tokens lost). The first line says which change\n"
    "opened each window and which closed it; then one line per point; then, for each change, what it\n"
    "does, the commands that run the points on either side of it, and their reports side by side.\n"
    "A --fix or --without applies at every point: a counterfactual, e.g. the seed fix from the start.\n\n"
    "examples:\n"
    "  ./build/hcsim bisect scenarios/himamba-sidecar-lag.json                       # opened by #26881, closed by #27366\n"
    "  ./build/hcsim bisect scenarios/himamba-sidecar-lag.json --from 2026-06-01 --to 2026-06-30\n"
    "  ./build/hcsim bisect scenarios/himamba-sidecar-lag.json --fix pool-transfer-guard   # the guard all along: never opens\n"
    "  ./build/hcsim bisect scenarios/himamba-sidecar-lag.json --policy best_effort  # never waits on the sidecar\n"
    "  ./build/hcsim bisect scenarios/himamba-sidecar-lag.json --json                # the points, transitions and reports\n";

}  // namespace

int cmd_bisect(const Args& args) {
  VariantArgs va;
  std::string path, from, to;
  po::options_description d("bisect options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("scenario", po::value(&path)->value_name("SCENARIO"), "scenario JSON file ('-': standard input)")
      ("from", po::value(&from)->value_name("DATE"),
       "the first change to test: a date (the first merged on or after it) or a timeline commit; default: the first date the model has code for the scenario's model family (dense 2025-08-08, hybrid_mamba 2026-03-23, hybrid_swa 2026-06-11)")
      ("to", po::value(&to)->value_name("DATE"), "the newest point: a date (every change merged by its end) or a timeline commit; default: the last row")
      ("fix", po::value(&va.fixes)->composing()->value_name("FIX"), "add a named fix at every point: a counterfactual (repeatable)")
      ("without", po::value(&va.without)->composing()->value_name("FIX"), "remove a fix at every point (repeatable)")
      ("policy", po::value(&va.policy)->value_name("POLICY"), "override the scenario's policy: best_effort | wait_complete | timeout")
      ("seed", po::value<std::int64_t>()->value_name("N"), "random seed, 0 to 2^63-1 as a scenario's /seed (default: the scenario's)")
      ("json", "print the points and the transitions, with both reports of each, as one JSON document");
  po::positional_options_description pos;
  pos.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm, kHelp)) return kExitOk;
  if (path.empty()) throw BadInput("bisect: missing SCENARIO (see 'hcsim bisect --help')");
  take_seed(vm, va);
  refuse_trace(path, "bisect", "hcsim replay " + path);
  const Scenario s = load_scenario_file(path);
  // By default from the first date the model has code for the scenario's model family (and topology).
  const bool cp = s.policy.attn_cp > 1;
  if (from.empty()) from = std::string(model_since(s.policy.family, cp));
  if (before_model(from, s.policy.family, cp)) {
    throw BadInput("--from " + from + ": " + path + " is a " + model_scope(s.policy.family, cp) +
                   " scenario, which the model has code for from " + std::string(model_since(s.policy.family, cp)) + " on");
  }
  std::string error;
  const auto range = bisect_range(from, to, &error);
  if (!range) throw BadInput(error + " (see 'hcsim fixes' for the timeline)");
  va.upstream = std::string(kUpstreamPinDate);  // a point for run_options to check the fix names and the policy against
  const RunOptions checked = run_options(va);
  const BisectOptions o{*range, variant_of(va).steps, checked.policy, checked.seed};
  const Bisection b = bisect(s, o);
  if (vm.count("json")) {
    print_json(bisection_json(s, path, b, o));
  } else {
    print_bisection(s, path, b, o);
  }
  return kExitOk;
}

}  // namespace hcsim::cli
