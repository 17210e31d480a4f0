// SweepGrid: a Cartesian grid of runs over one base scenario (docs/sweep-format.md). An axis is
// the variant (preset and fixes), a workload (docs/workloads.md), or any field of the scenario named by its
// JSON pointer ("/tp", "/policy/name", "/delays/0/fixed_us"), so every knob a scenario has can be
// swept and the scenario's own validation judges every value. Runs are numbered point by point
// (the first axis varies slowest), then seed by seed within a point:
//
//   run = point * seeds.count + (seed - seeds.first)
//
//   SweepGrid g = load_sweep_grid("grids/seed-family.json");   // every point checked up front
//   for (std::int64_t run = 0; run < g.runs(); ++run) simulate(g.scenario_of(run), g.options_of(run));
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/simulation.h"

namespace hcsim {

// A value as a table cell: a string as is, an object by its "name" (a workload) or "note" (a
// delay rule), anything else as compact JSON.
std::string value_label(const nlohmann::json& value);

struct SweepAxis {
  std::string name;                    // "variant", "workload" or a JSON pointer into the scenario
  std::vector<nlohmann::json> values;
  std::string label(std::size_t i) const;  // the value as a table cell: a string as is, else compact JSON
};

struct SweepPoint {
  std::vector<std::size_t> value_index;  // per axis
  std::shared_ptr<const Scenario> scenario;
  RunOptions options;                    // fixes; the seed is set per run
  std::string variant;                   // the variant expression
};

class SweepGrid {
 public:
  std::string path;
  std::string scenario_path;             // as resolved from the grid's directory
  std::uint64_t first_seed = 1;
  std::int64_t seeds = 1;
  std::vector<SweepAxis> axes;
  std::vector<SweepPoint> points;
  std::uint64_t digest = 0;              // of the grid and the scenario text: outputs of one grid carry it

  std::int64_t runs() const { return static_cast<std::int64_t>(points.size()) * seeds; }
  const SweepPoint& point_of(std::int64_t run) const;
  std::uint64_t seed_of(std::int64_t run) const;
  RunOptions options_of(std::int64_t run) const;
};

// Called on the loading thread after each point is built: (points built, points in the grid).
using GridProgress = std::function<void(std::int64_t points_done, std::int64_t points)>;

// Throws ScenarioError naming the grid file and the JSON pointer of what is wrong, including a
// value the scenario rejects (with the scenario's own message). Every point is built and checked
// here, the scenario parsed once per distinct document (points that differ only in their variant
// share one scenario): about 0.1 ms a distinct point with an optimised build, so a grid of 10^6
// points takes minutes; `progress`, if given, follows it (the command draws a Progress from it).
SweepGrid load_sweep_grid(const std::string& path, const GridProgress& progress = {});
SweepGrid parse_sweep_grid(const std::string& text, const std::string& source, const GridProgress& progress = {});

// The runs a shard K of N (1-based) owns: every run whose number is K-1 modulo N.
bool in_shard(std::int64_t run, int shard, int shards);

}  // namespace hcsim
