// Fix ablation: every named fix earns its place. For each fix of policy/fixes.h, some expectation
// of the scenario library must be judged differently when that fix alone is toggled in its variant
// (added if absent, removed if present; policy, seed and everything else the same): its verdict,
// the invariants it breaks, its L3 lost tokens, or whether it still meets what it declares (its
// per-request outcomes included). A fix no library run can tell apart from its absence is either
// dead code or a mechanism the library does not exercise; this test names it.
//
// The search looks first in the scenarios that cite the fix's upstream change, so a witness shows
// the fix's own mechanism where the library has it rather than a timing shift elsewhere. Run with
// `-s` to see the witness of each fix, e.g.
//   revoke-marks-terminated: scenarios/revoke-mid-walk.json #0 pre-fix (wait_complete), which cites
//   sgl-project/sglang#16747
//     toggled pre-fix+revoke-marks-terminated: meets its expectation: yes -> no
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "policy/variant.h"
#include "run/invariants.h"
#include "run/scenario.h"
#include "sim/simulation.h"

using namespace hcsim;

namespace {

std::vector<Scenario> library() {
  std::vector<std::string> paths;
  for (const auto& e : std::filesystem::directory_iterator("scenarios")) {
    if (e.path().extension() == ".json") paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());  // the first witness of each fix is always the same one
  std::vector<Scenario> scenarios;
  for (const auto& p : paths) scenarios.push_back(load_scenario_file(p));
  return scenarios;
}

// What the judgement of one expectation's run says, as far as an expectation can declare it.
struct Judged {
  std::string verdict;
  std::vector<std::string> violated;  // sorted
  std::int64_t l3_lost_tokens = 0;
  bool met = false;  // verdict, violations, L3 loss and per-request outcomes as declared
  bool operator==(const Judged&) const = default;
};

Judged judged(const ExpectationCheck& c) {
  Judged j;
  j.verdict = c.result.verdict.kind == HangKind::kNone ? "complete" : std::string(hang_kind_name(c.result.verdict.kind));
  j.violated = violated_names(c.result.invariants);
  std::sort(j.violated.begin(), j.violated.end());
  j.l3_lost_tokens = c.result.l3_lost_tokens();
  j.met = c.met;
  return j;
}

std::string joined(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// "verdict complete -> collective_mismatch; meets its expectation: yes -> no", the parts that differ.
std::string change(const Judged& from, const Judged& to) {
  std::vector<std::string> parts;
  if (from.verdict != to.verdict) parts.push_back("verdict " + from.verdict + " -> " + to.verdict);
  if (from.violated != to.violated) parts.push_back("violates " + joined(from.violated) + " -> " + joined(to.violated));
  if (from.l3_lost_tokens != to.l3_lost_tokens) {
    parts.push_back("l3 lost " + std::to_string(from.l3_lost_tokens) + " -> " + std::to_string(to.l3_lost_tokens));
  }
  if (from.met != to.met) parts.push_back(std::string("meets its expectation: ") + (from.met ? "yes -> no" : "no -> yes"));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

// The expectation with `fix` alone toggled; its variant text drops a step naming the fix when that
// is enough, else gains one ("seed-fix+sidecar-hit-sync" -> "seed-fix", "pre-fix" -> "pre-fix+F").
Expectation toggled(const Expectation& e, Fix fix) {
  Expectation t = e;
  t.fixes = e.fixes.has(fix) ? e.fixes.without(fix) : e.fixes.with(fix);
  std::string error;
  std::optional<Variant> v = Variant::parse(e.variant, &error);  // a loaded scenario's variants parse
  if (!v) FAIL(e.variant << ": " << error);
  std::erase_if(v->steps, [&](const Variant::Step& s) { return fix_by_name(s.fix) == fix; });
  if (v->fixes() != t.fixes) v->steps.push_back({!e.fixes.has(fix), std::string(fix_info(fix).name)});
  if (v->fixes() != t.fixes) FAIL(v->text() << " is not " << e.variant << " with " << fix_info(fix).name << " toggled");
  t.variant = v->text();
  return t;
}

// Whether the scenario names the fix's change among its upstream references ("sgl-project/sglang#16747").
bool cites(const Scenario& s, const FixInfo& f) {
  const std::string_view ref = f.upstream.substr(0, f.upstream.find_first_of(" ,"));
  return std::any_of(s.upstream.begin(), s.upstream.end(), [&](const std::string& u) { return u.starts_with(ref); });
}

struct Witness {
  std::string where;  // scenario, expectation index, variant, policy
  std::string variant_toggled;
  std::string what;
};

// The first expectation of the library whose judgement changes with `fix` alone toggled, looked
// for first in the scenarios that cite the fix's change, then in the others, each group in path
// order. The untoggled judgements are shared by every fix's search (`base`, by scenario and
// expectation index).
std::optional<Witness> find_witness(const std::vector<Scenario>& scenarios, const FixInfo& fix,
                                    std::map<std::pair<std::size_t, std::size_t>, Judged>& base) {
  std::vector<std::size_t> order(scenarios.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_partition(order.begin(), order.end(), [&](std::size_t i) { return cites(scenarios[i], fix); });
  for (const std::size_t si : order) {
    const Scenario& s = scenarios[si];
    for (std::size_t ei = 0; ei < s.expect.size(); ++ei) {
      const Expectation& e = s.expect[ei];
      auto known = base.find({si, ei});
      if (known == base.end()) known = base.emplace(std::pair{si, ei}, judged(check_expectation(s, e))).first;
      const Expectation t = toggled(e, fix.fix);
      const Judged after = judged(check_expectation(s, t));
      if (after == known->second) continue;
      std::ostringstream where;
      where << s.path << " #" << ei << " " << e.variant << " (" << policy_name(e.policy.value_or(s.policy.policy)) << ")"
            << (cites(s, fix) ? ", which cites " : ", which does not cite ") << fix.upstream;
      return Witness{where.str(), t.variant, change(known->second, after)};
    }
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("fix ablation: each named fix, toggled alone, changes the judgement of some library expectation", "[ablation]") {
  const std::vector<Scenario> scenarios = library();
  REQUIRE_FALSE(scenarios.empty());
  std::map<std::pair<std::size_t, std::size_t>, Judged> base;
  for (const FixInfo& f : all_fixes()) {
    const std::optional<Witness> w = find_witness(scenarios, f, base);
    const std::string fix_name(f.name);
    if (w) {
      SUCCEED(fix_name << ": " << w->where << "\n  toggled " << w->variant_toggled << ": " << w->what);
    } else {
      FAIL_CHECK(fix_name << ": toggling it alone changes no expectation of the library");
    }
  }
}
