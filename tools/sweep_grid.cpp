#include "tools/sweep_grid.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "policy/assert.h"
#include "run/json_node.h"
#include "run/input_file.h"
#include "run/scenario.h"
#include "run/workload.h"

namespace hcsim {

namespace {

using json = nlohmann::json;

constexpr std::int64_t kRunsMax = std::int64_t{1} << 40;
constexpr std::size_t kPointsMax = 1'000'000;
constexpr std::int64_t kGridBytesMax = 4 << 20;

std::uint64_t fnv1a(std::uint64_t h, const std::string& text) {
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The base document with a point's values of the pointer axes in place.
json document_of(const json& base, const std::vector<SweepAxis>& axes, const std::vector<std::size_t>& index, const std::string& source) {
  json doc = base;
  for (std::size_t a = 0; a < axes.size(); ++a) {
    if (axes[a].name == "variant" || axes[a].name == "workload") continue;
    try {
      const json::json_pointer ptr(axes[a].name);
      if (!doc.contains(ptr.parent_pointer())) {
        throw ScenarioError(source, "/axes/" + std::to_string(a) + "/name", "the scenario has nothing at " + ptr.parent_pointer().to_string());
      }
      doc[ptr] = axes[a].values[index[a]];
    } catch (const json::exception& e) {
      throw ScenarioError(source, "/axes/" + std::to_string(a) + "/name", std::string("not a usable JSON pointer: ") + e.what());
    }
  }
  return doc;
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

SweepGrid load_sweep_grid(const std::string& path, const GridProgress& progress) {
  return parse_sweep_grid(read_bounded_file(path, kGridBytesMax, "a grid is a description, not data"), path, progress);
}

SweepGrid parse_sweep_grid(const std::string& text, const std::string& source, const GridProgress& progress) {
  const json doc = parse_json(text, source, "a grid object (docs/sweep-format.md), like {\"scenario\": \"s.json\", \"seeds\": {\"first\": 1, \"count\": 10}, \"axes\": [...]}");
  const JsonNode root(doc, source, "");
  root.object({"scenario", "variant", "seeds", "axes", "description"});
  SweepGrid g;
  g.path = source;
  const std::filesystem::path grid_dir = std::filesystem::path(source).parent_path();
  const std::filesystem::path scenario_rel = root.at("scenario").str();
  g.scenario_path = (scenario_rel.is_absolute() ? scenario_rel : grid_dir / scenario_rel).lexically_normal().string();
  std::string scenario_text;
  try {
    scenario_text = read_bounded_file(g.scenario_path, kScenarioBytesMax, "a scenario is a description, not data");
  } catch (const ScenarioError& e) {
    throw ScenarioError(source, "/scenario", std::string("the scenario it names: ") + e.what());
  }
  const json base = parse_json(scenario_text, g.scenario_path);
  (void)parse_scenario(scenario_text, g.scenario_path);  // the base must stand on its own

  if (const auto seeds = root.find("seeds")) {
    seeds->object({"first", "count"});
    if (const auto v = seeds->find("first")) g.first_seed = static_cast<std::uint64_t>(v->integer(0, std::int64_t{1} << 62));
    if (const auto v = seeds->find("count")) g.seeds = v->integer(1, kRunsMax);
  }
  std::string default_variant(kDefaultPreset);
  if (const auto v = root.find("variant")) default_variant = v->str();

  std::set<std::string> names;
  std::size_t points = 1;
  for (const JsonNode& a : root.at("axes").array()) {
    a.object({"name", "values"});
    const JsonNode name = a.at("name");
    SweepAxis axis;
    axis.name = name.str();
    if (axis.name != "variant" && axis.name != "workload" && (axis.name.empty() || axis.name[0] != '/')) {
      name.expected("\"variant\", \"workload\" or a JSON pointer into the scenario, e.g. \"/tp\"");
    }
    if (!names.insert(axis.name).second) name.fail("axis \"" + axis.name + "\" appears twice");
    const JsonNode values = a.at("values");
    for (const JsonNode& v : values.array(1)) axis.values.push_back(v.raw());
    points *= axis.values.size();
    if (points > kPointsMax) values.fail("the grid has more than " + std::to_string(kPointsMax) + " points");
    g.axes.push_back(std::move(axis));
  }
  if (static_cast<std::int64_t>(points) > kRunsMax / g.seeds) throw ScenarioError(source, "/seeds/count", "the grid has more than 2^40 runs");

  // Every point, built and validated now: a bad value fails before the first run, not hours in.
  // A point's scenario depends only on its values of the pointer axes and its workload, so points
  // that differ in their variant share one scenario, and points that differ in their workload share
  // one parse of the document: a grid with a variant axis of V values parses 1/V of its points.
  g.points.reserve(points);
  std::map<std::vector<std::size_t>, std::shared_ptr<const Scenario>> parsed;  // by pointer-axis value indices
  std::map<std::vector<std::size_t>, std::shared_ptr<const Scenario>> built;   // the same, then the workload's index
  std::map<std::size_t, WorkloadSpec> workloads;                               // by value index
  std::vector<std::size_t> index(g.axes.size(), 0);
  for (std::size_t p = 0; p < points; ++p) {
    std::string variant = default_variant;
    std::string variant_at = "/variant";
    std::string last_at = "/axes";
    std::vector<std::size_t> key;
    std::optional<std::size_t> workload;  // the value index of a workload object
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
        if (!workloads.contains(index[a])) {
          json spec = value;
          if (spec.contains("name") && !spec["name"].is_string()) throw ScenarioError(source, at + "/name", "expected a short label for tables");
          spec.erase("name");
          workloads.emplace(index[a], read_workload(spec, source, at));
        }
        workload = index[a];
        continue;
      }
      last_at = at;
      key.push_back(index[a]);
    }
    SweepPoint point;
    point.value_index = index;
    point.variant = variant;
    std::string error;
    const auto fixes = parse_variant(variant, &error);
    if (!fixes) throw ScenarioError(source, variant_at, error);
    point.options.fixes = *fixes;
    std::vector<std::size_t> built_key = key;
    built_key.push_back(workload.value_or(SIZE_MAX));
    if (const auto it = built.find(built_key); it != built.end()) {
      point.scenario = it->second;
    } else {
      const auto rejected = [&](const ScenarioError& e) {
        std::string values;
        for (std::size_t a = 0; a < g.axes.size(); ++a) values += (values.empty() ? "" : ", ") + g.axes[a].name + " = " + g.axes[a].label(index[a]);
        return ScenarioError(source, last_at, "the scenario rejects the point (" + values + "): " + e.what());
      };
      std::shared_ptr<const Scenario>& base_scenario = parsed[key];
      if (!base_scenario) {
        const json doc_p = document_of(base, g.axes, index, source);  // a pointer with nowhere to go: named by its axis
        try {
          base_scenario = std::make_shared<const Scenario>(parse_scenario(doc_p.dump(), g.scenario_path));
        } catch (const ScenarioError& e) {
          throw rejected(e);
        }
      }
      point.scenario = base_scenario;
      if (workload) {
        Scenario scenario = *base_scenario;
        try {
          apply_workload(scenario, workloads.at(*workload), grid_dir.string());
        } catch (const ScenarioError& e) {
          throw rejected(e);
        }
        point.scenario = std::make_shared<const Scenario>(std::move(scenario));
      }
      built.emplace(std::move(built_key), point.scenario);
    }
    g.points.push_back(std::move(point));
    if (progress) progress(static_cast<std::int64_t>(p + 1), static_cast<std::int64_t>(points));
    for (std::size_t a = g.axes.size(); a-- > 0;) {  // the last axis varies fastest
      if (++index[a] < g.axes[a].values.size()) break;
      index[a] = 0;
    }
  }
  g.digest = fnv1a(fnv1a(0xcbf29ce484222325ULL, doc.dump()), scenario_text);
  return g;
}

}  // namespace hcsim
