#include "sim/shrink.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <utility>

#include "policy/assert.h"
#include "run/scenario.h"

namespace hcsim {

namespace {

using nlohmann::json;

// Rules that name requests or ranks, wherever a scenario has them.
std::vector<json*> rules_of(json& s) {
  std::vector<json*> out;
  if (s.contains("delays")) {
    for (json& r : s["delays"]) out.push_back(&r);
  }
  if (s.contains("perturbations") && s["perturbations"].contains("jitter")) {
    for (json& r : s["perturbations"]["jitter"]) out.push_back(&r);
  }
  if (s.contains("explore") && s["explore"].contains("late")) {
    for (json& r : s["explore"]["late"]) out.push_back(&r);
  }
  return out;
}

// Drops from every rule the requests not in `kept`; a rule left naming none goes (it named only
// dropped ones; an empty list would mean every request).
void drop_request_refs(json& s, const std::set<std::string>& kept) {
  auto filter_nested = [&](json& holder, const char* key) {
    if (!holder.contains(key)) return;
    json out = json::array();
    for (json r : holder[key]) {
      if (r.contains("requests")) {
        json names = json::array();
        for (const json& n : r["requests"]) {
          if (kept.count(n.get<std::string>())) names.push_back(n);
        }
        if (names.empty()) continue;
        r["requests"] = names;
      }
      out.push_back(r);
    }
    holder[key] = out;
  };
  filter_nested(s, "delays");
  if (s.contains("perturbations")) filter_nested(s["perturbations"], "jitter");
  if (s.contains("explore")) filter_nested(s["explore"], "late");
}

// The scenario at TP `tp`: each stage's ranks clamped into its first `tp`, overrides of dropped
// ranks gone (rank r is TP rank r mod tp of stage r div tp).
json with_tp(json s, int tp) {
  const int old_tp = s["tp"].get<int>();
  s["tp"] = tp;
  const auto remap = [&](int r) { return r / old_tp * tp + std::min(r % old_tp, tp - 1); };
  auto clamp_ranks = [&](json& holder) {
    if (!holder.contains("ranks") || !holder["ranks"].is_array()) return;
    std::set<int> ranks;
    for (const json& r : holder["ranks"]) ranks.insert(remap(r.get<int>()));
    holder["ranks"] = json(std::vector<int>(ranks.begin(), ranks.end()));
  };
  for (json* r : rules_of(s)) clamp_ranks(*r);
  if (s.contains("l3")) {
    for (json& c : s["l3"]) clamp_ranks(c);
  }
  if (s.contains("ranks") && s["ranks"].contains("overrides")) {
    json kept = json::object();
    for (const auto& [key, value] : s["ranks"]["overrides"].items()) {
      const int r = std::atoi(key.c_str());
      if (r % old_tp < tp) kept[std::to_string(remap(r))] = value;
    }
    s["ranks"]["overrides"] = kept;
  }
  return s;
}

class Shrinker {
 public:
  Shrinker(json start, const std::string& source, const RunOptions& options, const ShrinkBounds& bounds, ShrinkResult& out)
      : source_(source), options_(options), bounds_(bounds), out_(out) {
    out_.scenario = std::move(start);
  }

  json& current() { return out_.scenario; }

  // Runs `candidate`: kept, with `step` reported, if the reader takes it and it fails the same way.
  bool attempt(const json& candidate, const std::string& step) {
    if (out_.runs >= bounds_.runs_max) {
      out_.runs_cut = true;
      return false;
    }
    ++out_.runs;
    Scenario s;
    try {
      s = parse_scenario(candidate.dump(), source_ + " (a shrinking candidate)");
    } catch (const ScenarioError&) {
      return false;
    }
    RunResult r = simulate(s, options_);
    if (!(signature_of(r) == out_.signature)) return false;
    out_.scenario = candidate;
    out_.result = std::move(r);
    out_.steps.push_back(step);
    return true;
  }

  bool requests() {
    bool changed = false;
    for (std::size_t chunk = std::max<std::size_t>(1, current()["requests"].size() / 2); chunk >= 1; chunk /= 2) {
      for (std::size_t start = 0; start < current()["requests"].size() && current()["requests"].size() > 1;) {
        const json& all = current()["requests"];
        const std::size_t end = std::min(all.size(), start + chunk);
        if (end - start >= all.size()) break;
        json candidate = current();
        json kept = json::array();
        std::set<std::string> names;
        std::string dropped;
        for (std::size_t i = 0; i < all.size(); ++i) {
          if (i >= start && i < end) {
            dropped.append(dropped.empty() ? "" : ", ").append(all[i]["name"].get<std::string>());
          } else {
            kept.push_back(all[i]);
            names.insert(all[i]["name"].get<std::string>());
          }
        }
        candidate["requests"] = kept;
        drop_request_refs(candidate, names);
        if (attempt(candidate, "requests: dropped " + dropped)) {
          changed = true;  // the same start now names the next requests
        } else {
          start += chunk;
        }
      }
      if (chunk == 1) break;
    }
    return changed;
  }

  // Each element of the array at `pointer`, last first; or the whole key where it may go.
  bool elements(const std::string& pointer, bool may_empty) {
    bool changed = false;
    const json::json_pointer p(pointer);
    if (!current().contains(p)) return false;
    for (std::size_t i = current()[p].size(); i-- > 0;) {
      if (!may_empty && current()[p].size() <= 1) break;
      json candidate = current();
      candidate[p].erase(i);
      changed = attempt(candidate, pointer + "/" + std::to_string(i) + ": dropped") || changed;
    }
    return changed;
  }

  bool drop_key(const std::string& pointer) {
    const json::json_pointer p(pointer);
    if (!current().contains(p)) return false;
    json candidate = current();
    candidate[p.parent_pointer()].erase(p.back());
    return attempt(candidate, pointer + ": dropped");
  }

  bool fewer_ranks() {
    const int tp = current()["tp"].get<int>();
    for (int t = 1; t < tp; ++t) {
      if (attempt(with_tp(current(), t), "tp " + std::to_string(tp) + " -> " + std::to_string(t))) return true;
    }
    return false;
  }

  // The smallest value in [low, now] of the number at `pointer` that still fails, by halving.
  // `follow` adjusts what depends on the number in a candidate.
  bool smaller(const std::string& pointer, std::int64_t low, const std::function<void(json&, std::int64_t)>& follow = {}) {
    const json::json_pointer p(pointer);
    if (!current().contains(p) || !current()[p].is_number()) return false;
    std::int64_t high = static_cast<std::int64_t>(std::floor(current()[p].get<double>()));  // fails
    bool changed = false;
    for (std::int64_t lo = low; lo < high && !out_.runs_cut;) {  // bounded: the interval halves every round
      const std::int64_t mid = lo + (high - lo) / 2;
      json candidate = current();
      candidate[p] = mid;
      if (follow) follow(candidate, mid);
      if (attempt(candidate, pointer + " " + std::to_string(high) + " -> " + std::to_string(mid))) {
        high = mid;
        changed = true;
      } else {
        lo = mid + 1;
      }
    }
    return changed;
  }

  bool numbers() {
    bool changed = false;
    json& s = current();
    for (std::size_t i = 0; i < s["requests"].size(); ++i) {
      const std::string r = "/requests/" + std::to_string(i);
      changed = smaller(r + "/input_tokens", 1) || changed;
      changed = smaller(r + "/arrival_us", 0) || changed;
    }
    if (s.contains("l3")) {
      for (std::size_t i = 0; i < s["l3"].size(); ++i) changed = fewer_l3_pages(i) || changed;
    }
    if (s.contains("delays")) {
      for (std::size_t i = 0; i < s["delays"].size(); ++i) changed = smaller("/delays/" + std::to_string(i) + "/fixed_us", 0) || changed;
    }
    return random_ranges() || changed;
  }

  // The random choices a seed makes, each range narrowed toward its low end: a draw from [lo, hi]
  // shrinks as hi does, down to lo, where the draw is no longer random.
  bool random_ranges() {
    bool changed = false;
    json& s = current();
    if (!s.contains("perturbations")) return false;
    const auto low_of = [&](const std::string& pair) {
      const json::json_pointer p(pair);
      return current().contains(p) && current()[p].size() == 2 ? static_cast<std::int64_t>(std::ceil(current()[p][0].get<double>()))
                                                              : std::int64_t{0};
    };
    if (s["perturbations"].contains("jitter")) {
      for (std::size_t i = 0; i < s["perturbations"]["jitter"].size(); ++i) {
        const std::string rule = "/perturbations/jitter/" + std::to_string(i);
        changed = smaller(rule + "/fixed_us", 0) || changed;
        changed = smaller(rule + "/uniform_us/1", low_of(rule + "/uniform_us")) || changed;
      }
    }
    for (const char* pair : {"/perturbations/arrival_us", "/perturbations/device_free_pages"}) {
      changed = smaller(std::string(pair) + "/1", low_of(pair)) || changed;
    }
    return changed;
  }

  // L3 pages: a Mamba state or stale mark past the new last page moves onto it.
  bool fewer_l3_pages(std::size_t i) {
    return smaller("/l3/" + std::to_string(i) + "/kv_pages", 1, [i](json& candidate, std::int64_t pages) {
      json& c = candidate["l3"][i];
      for (const char* list : {"sidecar_at_pages", "stale_pages"}) {
        if (!c.contains(list)) continue;
        std::set<std::int64_t> kept;
        for (const json& p : c[list]) kept.insert(std::min(p.get<std::int64_t>(), pages));
        c[list] = json(std::vector<std::int64_t>(kept.begin(), kept.end()));
      }
    });
  }

 private:
  const std::string& source_;
  const RunOptions& options_;
  const ShrinkBounds& bounds_;
  ShrinkResult& out_;
};

}  // namespace

FailureSignature signature_of(const RunResult& r) {
  FailureSignature s;
  s.kind = r.verdict.kind;
  s.has_collective = r.verdict.has_collective;
  if (s.has_collective) {
    s.group = r.verdict.group;
    for (const CollectiveEntry& e : r.verdict.entered) s.ops.push_back(e.op);
    std::sort(s.ops.begin(), s.ops.end());
    s.ops.erase(std::unique(s.ops.begin(), s.ops.end()), s.ops.end());
  }
  return s;
}

std::string describe(const FailureSignature& s) {
  std::string out(hang_kind_name(s.kind));
  if (!s.has_collective) return out;
  out.append(" at ").append(group_name(s.group)).append(" (");
  for (std::size_t i = 0; i < s.ops.size(); ++i) out.append(i ? ", " : "").append(collective_op_name(s.ops[i]));
  return out.append(")");
}

ShrinkResult shrink(const json& scenario, const std::string& source, const RunOptions& options, const ShrinkBounds& bounds) {
  HCSIM_ASSERT(bounds.runs_max >= 1);
  ShrinkResult out;
  const RunResult first = simulate(parse_scenario(scenario.dump(), source), options);
  if (!first.verdict.hang()) throw ScenarioError(source, "", "completes under this variant and seed: there is no hang to shrink");
  out.signature = signature_of(first);
  out.result = first;
  out.runs = 1;
  Shrinker s(scenario, source, options, bounds, out);
  // Rounds until none helps; each kept step makes the scenario strictly smaller, so they end.
  for (bool changed = true; changed && !out.runs_cut;) {
    changed = s.requests();
    changed = s.drop_key("/explore") || changed;
    changed = s.drop_key("/perturbations") || changed;
    changed = s.elements("/perturbations/jitter", true) || changed;
    changed = s.elements("/delays", true) || changed;
    changed = s.elements("/l3", true) || changed;
    changed = s.fewer_ranks() || changed;
    changed = s.numbers() || changed;
  }
  return out;
}

}  // namespace hcsim
