#include "tools/sweep_grid.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "policy/assert.h"
#include "policy/upstream_timeline.h"
#include "policy/variant.h"
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
    if (axes[a].name == "variant" || axes[a].name == "upstream" || axes[a].name == "workload") continue;
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

// The text of the scenario the grid names, resolved from the grid's directory.
std::string read_scenario_text(const JsonNode& root, const std::string& source, const std::filesystem::path& grid_dir, SweepGrid& g) {
  const std::filesystem::path scenario_rel = root.at("scenario").str();
  g.scenario_path = (scenario_rel.is_absolute() ? scenario_rel : grid_dir / scenario_rel).lexically_normal().string();
  std::string scenario_text;
  try {
    scenario_text = read_bounded_file(g.scenario_path, kScenarioBytesMax, "a scenario is a description, not data");
  } catch (const ScenarioError& e) {
    throw ScenarioError(source, "/scenario", std::string("the scenario it names: ") + e.what());
  }
  return scenario_text;
}

void read_seeds(const JsonNode& seeds, SweepGrid& g) {
  seeds.object({"first", "count"});
  if (const auto v = seeds.find("first")) g.first_seed = static_cast<std::uint64_t>(v->integer(0, std::int64_t{1} << 62));
  if (const auto v = seeds.find("count")) g.seeds = v->integer(1, kRunsMax);
}

// The axes, into `g.axes`. Returns the number of points, at most kPointsMax.
std::size_t read_axes(const JsonNode& axes, SweepGrid& g) {
  std::set<std::string> names;
  std::size_t points = 1;
  for (const JsonNode& a : axes.array()) {
    a.object({"name", "values"});
    const JsonNode name = a.at("name");
    SweepAxis axis;
    axis.name = name.str();
    if (axis.name != "variant" && axis.name != "upstream" && axis.name != "workload" && (axis.name.empty() || axis.name[0] != '/')) {
      name.expected("\"variant\", \"upstream\", \"workload\" or a JSON pointer into the scenario, e.g. \"/tp\"");
    }
    if (!names.insert(axis.name).second) name.fail("axis \"" + axis.name + "\" appears twice");
    if (names.count("variant") && names.count("upstream")) name.fail("\"variant\" and \"upstream\" both say which code runs; give one axis");
    const JsonNode values = a.at("values");
    for (const JsonNode& v : values.array(1)) axis.values.push_back(v.raw());
    points *= axis.values.size();
    if (points > kPointsMax) values.fail("the grid has more than " + std::to_string(kPointsMax) + " points");
    g.axes.push_back(std::move(axis));
  }
  return points;
}

// A point's values, sorted by what they change.
struct PointValues {
  std::string variant;
  std::string variant_at = "/variant";  // where the variant comes from, for its error
  std::string last_at = "/axes";        // the last pointer axis value, for the scenario's errors
  std::vector<std::size_t> key;         // the pointer axes' value indices
  std::optional<std::size_t> workload;  // the value index of a workload object
};

// Builds every point of a grid, in run order. A point's scenario depends only on its values of the
// pointer axes and its workload, so points that differ in their variant share one scenario, and
// points that differ in their workload share one parse of the document: a grid with a variant axis
// of V values parses 1/V of its points.
class PointBuilder {
 public:
  PointBuilder(const SweepGrid& g, const json& base, const std::string& source, std::string grid_dir, std::string default_variant)
      : g_(g), base_(base), source_(source), grid_dir_(std::move(grid_dir)), default_variant_(std::move(default_variant)) {}

  SweepPoint build(const std::vector<std::size_t>& index) {
    const PointValues values = values_of(index);
    SweepPoint point;
    point.value_index = index;
    point.variant = values.variant;
    std::string error;
    const auto fixes = parse_variant(values.variant, &error);
    if (!fixes) throw ScenarioError(source_, values.variant_at, error);
    point.options.fixes = *fixes;
    point.scenario = scenario_of(values, index);
    return point;
  }

 private:
  PointValues values_of(const std::vector<std::size_t>& index) {
    PointValues values;
    values.variant = default_variant_;
    for (std::size_t a = 0; a < g_.axes.size(); ++a) {
      const SweepAxis& axis = g_.axes[a];
      const std::string at = "/axes/" + std::to_string(a) + "/values/" + std::to_string(index[a]);
      const json& value = axis.values[index[a]];
      if (axis.name == "upstream") {  // a date or timeline commit: upstream as it was then
        std::string error;
        if (!value.is_string()) throw ScenarioError(source_, at, "expected an upstream date (YYYY-MM-DD) or timeline commit");
        if (!UpstreamPoint::parse(value.get<std::string>(), &error)) throw ScenarioError(source_, at, error);
      }
      if (axis.name == "variant" || axis.name == "upstream") {
        if (!value.is_string()) throw ScenarioError(source_, at, "expected a variant expression string");
        values.variant = value.get<std::string>();
        values.variant_at = at;
      } else if (axis.name == "workload") {  // "scenario": the scenario's own requests
        if (value.is_string() && value.get<std::string>() == "scenario") continue;
        read_workload_value(value, index[a], at);
        values.workload = index[a];
      } else {
        values.last_at = at;
        values.key.push_back(index[a]);
      }
    }
    return values;
  }

  // A workload axis's value `i`, read once.
  void read_workload_value(const json& value, std::size_t i, const std::string& at) {
    if (!value.is_object()) throw ScenarioError(source_, at, "expected \"scenario\" or a workload object (docs/workloads.md)");
    if (workloads_.contains(i)) return;
    json spec = value;
    if (spec.contains("name") && !spec["name"].is_string()) throw ScenarioError(source_, at + "/name", "expected a short label for tables");
    spec.erase("name");
    workloads_.emplace(i, read_workload(spec, source_, at));
  }

  std::shared_ptr<const Scenario> scenario_of(const PointValues& values, const std::vector<std::size_t>& index) {
    std::vector<std::size_t> built_key = values.key;
    built_key.push_back(values.workload.value_or(SIZE_MAX));
    if (const auto it = built_.find(built_key); it != built_.end()) return it->second;
    const auto rejected = [&](const ScenarioError& e) {
      std::string text;
      for (std::size_t a = 0; a < g_.axes.size(); ++a) text += (text.empty() ? "" : ", ") + g_.axes[a].name + " = " + g_.axes[a].label(index[a]);
      return ScenarioError(source_, values.last_at, "the scenario rejects the point (" + text + "): " + e.what());
    };
    std::shared_ptr<const Scenario>& base_scenario = parsed_[values.key];
    if (!base_scenario) {
      const json doc_p = document_of(base_, g_.axes, index, source_);  // a pointer with nowhere to go: named by its axis
      try {
        base_scenario = std::make_shared<const Scenario>(parse_scenario(doc_p.dump(), g_.scenario_path));
      } catch (const ScenarioError& e) {
        throw rejected(e);
      }
    }
    std::shared_ptr<const Scenario> scenario = base_scenario;
    if (values.workload) {
      Scenario with_workload = *base_scenario;
      try {
        apply_workload(with_workload, workloads_.at(*values.workload), grid_dir_);
      } catch (const ScenarioError& e) {
        throw rejected(e);
      }
      scenario = std::make_shared<const Scenario>(std::move(with_workload));
    }
    built_.emplace(std::move(built_key), scenario);
    return scenario;
  }

  const SweepGrid& g_;
  const json& base_;
  const std::string& source_;
  const std::string grid_dir_;
  const std::string default_variant_;
  std::map<std::vector<std::size_t>, std::shared_ptr<const Scenario>> parsed_;  // by pointer-axis value indices
  std::map<std::vector<std::size_t>, std::shared_ptr<const Scenario>> built_;   // the same, then the workload's index
  std::map<std::size_t, WorkloadSpec> workloads_;                               // by value index
};

// The next point's value indices: the last axis varies fastest.
void advance(std::vector<std::size_t>& index, const std::vector<SweepAxis>& axes) {
  for (std::size_t a = axes.size(); a-- > 0;) {
    if (++index[a] < axes[a].values.size()) break;
    index[a] = 0;
  }
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
  const std::string scenario_text = read_scenario_text(root, source, grid_dir, g);
  const json base = parse_json(scenario_text, g.scenario_path);
  (void)parse_scenario(scenario_text, g.scenario_path);  // the base must stand on its own
  if (const auto seeds = root.find("seeds")) read_seeds(*seeds, g);
  // Points without a variant axis: the grid's variant, else the scenario's upstream_at, else pre-fix.
  std::string default_variant(kDefaultPreset);
  if (base.contains("upstream_at") && base["upstream_at"].is_string()) default_variant = base["upstream_at"].get<std::string>();
  if (const auto v = root.find("variant")) default_variant = v->str();
  const std::size_t points = read_axes(root.at("axes"), g);
  if (static_cast<std::int64_t>(points) > kRunsMax / g.seeds) throw ScenarioError(source, "/seeds/count", "the grid has more than 2^40 runs");

  // Every point, built and validated now: a bad value fails before the first run, not hours in.
  g.points.reserve(points);
  PointBuilder builder(g, base, source, grid_dir.string(), default_variant);
  std::vector<std::size_t> index(g.axes.size(), 0);
  for (std::size_t p = 0; p < points; ++p) {
    g.points.push_back(builder.build(index));
    if (progress) progress(static_cast<std::int64_t>(p + 1), static_cast<std::int64_t>(points));
    advance(index, g.axes);
  }
  g.digest = fnv1a(fnv1a(0xcbf29ce484222325ULL, doc.dump()), scenario_text);
  return g;
}

}  // namespace hcsim
