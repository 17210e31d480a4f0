// Figures from a sweep's results (tools/sweep.h), as self-contained SVG: no plotting package.
//
//   SweepRows rows = read_sweep_rows("results/seed-family.jsonl");
//   write_file("hang.svg", hang_heatmap_svg(rows, "/delays/0/fixed_us", "variant", {{"policy", "timeout"}}));
//   write_file("tradeoff.svg", tradeoff_svg(rows, {}));
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tools/sweep.h"

namespace hcsim {

// Row filters: (field, value as in the table), a field being an axis name or a row field
// ("policy", "variant", "tp", ...). A row is kept if it matches every filter.
using RowFilters = std::vector<std::pair<std::string, std::string>>;

// Hang rate over two fields, one cell per pair of values (in run order), rows of other values
// pooled. Throws std::runtime_error naming a field no row has.
std::string hang_heatmap_svg(const SweepRows& rows, const std::string& x_field, const std::string& y_field, const RowFilters& filters);

// Time to schedule (p99 over runs, ms) against KV read then discarded (MiB per run), one point
// per (policy, variant), colored by policy.
std::string tradeoff_svg(const SweepRows& rows, const RowFilters& filters);

}  // namespace hcsim
