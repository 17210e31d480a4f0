// Figures from a sweep's results (tools/sweep.h), as self-contained SVG: no plotting package. The
// same rows give the same bytes. Labels are laid out so that none overlaps another, by an estimate
// of their width (text_width_px): long axis values wrap, then slant, then become keys (X1, Y1)
// listed under the figure.
//
//   SweepRows rows = read_sweep_rows("results/seed-family.jsonl");
//   write_file("hang.svg", hang_heatmap_svg(rows, "/delays/0/fixed_us", "variant", {{"policy", "timeout"}}));
//   write_file("tradeoff.svg", tradeoff_svg(rows, {}));
//
// The heat map: a cell per pair of values, its colour and its text the hang rate ("75.0%"), with
// the 95% Wilson interval and the run count under it ("[69–80] n=200"); a colour bar from 0% to
// 100% beside it. The trade-off: a point per (policy, variant), colour by policy and shape by
// variant, hollow where some runs hang; an axis whose positive values span more than 1.5 decades
// is logarithmic (a zero sits on its own tick before the break); points at one spot stand in a
// small grid in a dashed box centred on it; each point's number leads to a table of its values
// under the plot.
#pragma once

#include <string>
#include <string_view>
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
// per (policy, variant), colored by policy, shaped by variant.
std::string tradeoff_svg(const SweepRows& rows, const RowFilters& filters);

// The width the figures allow for `text` (UTF-8) at `font_px` in a sans-serif font: 0.62 em a
// character, at least DejaVu Sans's average.
double text_width_px(std::string_view text, double font_px);

}  // namespace hcsim
