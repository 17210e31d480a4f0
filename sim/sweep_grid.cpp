#include "sim/sweep_grid.h"

#include <filesystem>
#include <optional>
#include <fstream>
#include <set>
#include <sstream>

#include "policy/assert.h"
#include "sim/scenario.h"
#include "sim/workload.h"

namespace hcsim {

namespace {

using json = nlohmann::json;

constexpr std::int64_t kRunsMax = std::int64_t{1} << 40;
constexpr std::size_t kPointsMax = 1'000'000;
constexpr std::int64_t kGridBytesMax = 4 << 20;

std::string read_text(const std::string& path, const std::string& what, std::int64_t bytes_max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ScenarioError(path, "", "cannot open the " + what);
  std::ostringstream s;
  s << in.rdbuf();
  if (static_cast<std::int64_t>(s.str().size()) > bytes_max) throw ScenarioError(path, "", "larger than " + std::to_string(bytes_max >> 20) + " MiB");
  return s.str();
}

std::uint64_t fnv1a(std::uint64_t h, const std::string& text) {
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

void only_keys(const json& obj, const std::string& source, const std::string& at, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) throw ScenarioError(source, at, "expected an object");
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (const char* k : keys) known = known || key == k;
    if (!known) {
      std::string list;
      for (const char* k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
      throw ScenarioError(source, at + "/" + key, "unknown field; expected one of " + list);
    }
  }
}

std::int64_t integer_at(const json& obj, const char* key, const std::string& source, const std::string& at, std::int64_t lo, std::int64_t hi) {
  const json& v = obj.at(key);
  if (!v.is_number_integer()) throw ScenarioError(source, at + "/" + key, "expected an integer");
  const auto n = v.get<std::int64_t>();
  if (n < lo || n > hi) throw ScenarioError(source, at + "/" + key, "expected " + std::to_string(lo) + " to " + std::to_string(hi) + "; got " + std::to_string(n));
  return n;
}

}  // namespace

std::string value_label(const json& v) {
  for (const char* key : {"name", "note"}) {
    if (v.is_object() && v.contains(key) && v[key].is_string()) return v[key].get<std::string>();
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string SweepAxis::label(std::size_t i) const {
  HCSIM_ASSERT(i < values.size());
  return value_label(values[i]);
}

const SweepPoint& SweepGrid::point_of(std::int64_t run) const {
  HCSIM_ASSERT(run >= 0 && run < runs());
  return points[static_cast<std::size_t>(run / seeds)];
}

std::uint64_t SweepGrid::seed_of(std::int64_t run) const {
  HCSIM_ASSERT(run >= 0 && run < runs());
  return first_seed + static_cast<std::uint64_t>(run % seeds);
}

RunOptions SweepGrid::options_of(std::int64_t run) const {
  RunOptions o = point_of(run).options;
  o.seed = seed_of(run);
  return o;
}

bool in_shard(std::int64_t run, int shard, int shards) {
  HCSIM_ASSERT(shards >= 1 && shard >= 1 && shard <= shards && run >= 0);
  return run % shards == shard - 1;
}

SweepGrid load_sweep_grid(const std::string& path) { return parse_sweep_grid(read_text(path, "grid file", kGridBytesMax), path); }

SweepGrid parse_sweep_grid(const std::string& text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ScenarioError(source, "", std::string("not valid JSON: ") + e.what());
  }
  only_keys(doc, source, "", {"scenario", "variant", "seeds", "axes", "description"});
  SweepGrid g;
  g.path = source;
  if (!doc.contains("scenario") || !doc["scenario"].is_string()) throw ScenarioError(source, "/scenario", "expected the base scenario's path (relative to this file)");
  const std::filesystem::path grid_dir = std::filesystem::path(source).parent_path();
  const std::filesystem::path scenario_rel = doc["scenario"].get<std::string>();
  g.scenario_path = (scenario_rel.is_absolute() ? scenario_rel : grid_dir / scenario_rel).lexically_normal().string();
  const std::string scenario_text = read_text(g.scenario_path, "scenario (from " + source + ": /scenario)", 16 << 20);
  json base;
  try {
    base = json::parse(scenario_text);
  } catch (const json::parse_error& e) {
    throw ScenarioError(g.scenario_path, "", std::string("not valid JSON: ") + e.what());
  }
  (void)parse_scenario(scenario_text, g.scenario_path);  // the base must stand on its own

  if (doc.contains("seeds")) {
    only_keys(doc["seeds"], source, "/seeds", {"first", "count"});
    if (doc["seeds"].contains("first")) g.first_seed = static_cast<std::uint64_t>(integer_at(doc["seeds"], "first", source, "/seeds", 0, std::int64_t{1} << 62));
    if (doc["seeds"].contains("count")) g.seeds = integer_at(doc["seeds"], "count", source, "/seeds", 1, kRunsMax);
  }
  std::string default_variant(kDefaultPreset);
  if (doc.contains("variant")) {
    if (!doc["variant"].is_string()) throw ScenarioError(source, "/variant", "expected a variant expression, PRESET[+FIX|~FIX]... (hcsim fixes lists them)");
    default_variant = doc["variant"].get<std::string>();
  }

  if (!doc.contains("axes") || !doc["axes"].is_array()) throw ScenarioError(source, "/axes", "expected an array of {\"name\": ..., \"values\": [...]}");
  std::set<std::string> names;
  std::size_t points = 1;
  for (std::size_t i = 0; i < doc["axes"].size(); ++i) {
    const std::string at = "/axes/" + std::to_string(i);
    const json& a = doc["axes"][i];
    only_keys(a, source, at, {"name", "values"});
    if (!a.contains("name") || !a["name"].is_string()) throw ScenarioError(source, at + "/name", "expected \"variant\" or a JSON pointer into the scenario, e.g. \"/tp\"");
    SweepAxis axis;
    axis.name = a["name"].get<std::string>();
    if (axis.name != "variant" && axis.name != "workload" && (axis.name.empty() || axis.name[0] != '/')) {
      throw ScenarioError(source, at + "/name",
                          "expected \"variant\", \"workload\" or a JSON pointer into the scenario, e.g. \"/tp\"; got \"" + axis.name + "\"");
    }
    if (!names.insert(axis.name).second) throw ScenarioError(source, at + "/name", "axis \"" + axis.name + "\" appears twice");
    if (!a.contains("values") || !a["values"].is_array() || a["values"].empty()) throw ScenarioError(source, at + "/values", "expected a non-empty array");
    for (const json& v : a["values"]) axis.values.push_back(v);
    points *= axis.values.size();
    if (points > kPointsMax) throw ScenarioError(source, at + "/values", "the grid has more than " + std::to_string(kPointsMax) + " points");
    g.axes.push_back(std::move(axis));
  }
  if (static_cast<std::int64_t>(points) > kRunsMax / g.seeds) throw ScenarioError(source, "/seeds/count", "the grid has more than 2^40 runs");

  // Every point, built and validated now: a bad value fails before the first run, not hours in.
  g.points.reserve(points);
  std::vector<std::size_t> index(g.axes.size(), 0);
  for (std::size_t p = 0; p < points; ++p) {
    json doc_p = base;
    std::string variant = default_variant;
    std::string variant_at = "/variant";
    std::string last_at = "/axes";
    std::optional<WorkloadSpec> workload;
    for (std::size_t a = 0; a < g.axes.size(); ++a) {
      const SweepAxis& axis = g.axes[a];
      const std::string at = "/axes/" + std::to_string(a) + "/values/" + std::to_string(index[a]);
      const json& value = axis.values[index[a]];
      if (axis.name == "variant") {
        if (!value.is_string()) throw ScenarioError(source, at, "expected a variant expression string");
        variant = value.get<std::string>();
        variant_at = at;
        continue;
      }
      if (axis.name == "workload") {  // "scenario": the scenario's own requests
        if (value.is_string() && value.get<std::string>() == "scenario") continue;
        if (!value.is_object()) throw ScenarioError(source, at, "expected \"scenario\" or a workload object (docs/workloads.md)");
        json spec = value;
        if (spec.contains("name") && !spec["name"].is_string()) throw ScenarioError(source, at + "/name", "expected a short label for tables");
        spec.erase("name");
        workload = read_workload(spec, source, at);
        continue;
      }
      last_at = at;
      try {
        const json::json_pointer ptr(axis.name);
        if (!doc_p.contains(ptr.parent_pointer())) {
          throw ScenarioError(source, "/axes/" + std::to_string(a) + "/name", "the scenario has nothing at " + ptr.parent_pointer().to_string());
        }
        doc_p[ptr] = value;
      } catch (const json::exception& e) {
        throw ScenarioError(source, "/axes/" + std::to_string(a) + "/name", std::string("not a usable JSON pointer: ") + e.what());
      }
    }
    SweepPoint point;
    point.value_index = index;
    point.variant = variant;
    std::string error;
    const auto fixes = parse_variant(variant, &error);
    if (!fixes) throw ScenarioError(source, variant_at, error);
    point.options.fixes = *fixes;
    try {
      Scenario scenario = parse_scenario(doc_p.dump(), g.scenario_path);
      if (workload) apply_workload(scenario, *workload, grid_dir.string());
      point.scenario = std::make_shared<const Scenario>(std::move(scenario));
    } catch (const ScenarioError& e) {
      std::string values;
      for (std::size_t a = 0; a < g.axes.size(); ++a) values += (values.empty() ? "" : ", ") + g.axes[a].name + " = " + g.axes[a].label(index[a]);
      throw ScenarioError(source, last_at, "the scenario rejects the point (" + values + "): " + e.what());
    }
    g.points.push_back(std::move(point));
    for (std::size_t a = g.axes.size(); a-- > 0;) {  // the last axis varies fastest
      if (++index[a] < g.axes[a].values.size()) break;
      index[a] = 0;
    }
  }
  g.digest = fnv1a(fnv1a(0xcbf29ce484222325ULL, doc.dump()), scenario_text);
  return g;
}

}  // namespace hcsim
