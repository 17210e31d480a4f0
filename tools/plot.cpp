#include "tools/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>

#include "policy/assert.h"
#include "tools/run_metrics.h"
#include "sim/seed_sweep.h"
#include "run/xml_escape.h"

namespace hcsim {

double text_width_px(std::string_view text, double font_px) {
  std::size_t chars = 0;
  for (const char c : text) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;  // UTF-8 lead bytes
  return 0.62 * font_px * static_cast<double>(chars);
}

namespace {

using json = nlohmann::json;

constexpr double kPad = 16;          // blank margin around a figure
constexpr double kFont = 12;         // axis labels
constexpr double kTitleFont = 15;
constexpr double kSmallFont = 10;
constexpr double kLineGap = 14;      // between lines of a wrapped 12 px label
constexpr double kCos45 = 0.70710678;

// A row's value of a field, as a table cell: an axis first, then a row field; empty if neither.
std::string field_of(const json& row, const std::string& field) {
  const json* v = nullptr;
  if (row.contains("axes") && row["axes"].contains(field)) {
    v = &row["axes"][field];
  } else if (row.contains(field)) {
    v = &row[field];
  }
  return v == nullptr ? std::string() : value_label(*v);
}

// As field_of; throws naming a field the row lacks.
std::string required_field_of(const json& row, const std::string& field) {
  std::string v = field_of(row, field);
  if (v.empty()) throw std::runtime_error("no row has the field \"" + field + "\" (an axis name, or policy, variant, tp, ...)");
  return v;
}

std::vector<const json*> kept_rows(const SweepRows& rows, const RowFilters& filters) {
  std::vector<const json*> out;
  for (const json& r : rows.rows) {
    bool keep = true;
    for (const auto& [field, value] : filters) keep = keep && field_of(r, field) == value;
    if (keep) out.push_back(&r);
  }
  if (out.empty()) throw std::runtime_error("no row matches the filters");
  return out;
}

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// A coordinate: one decimal, so that output bytes do not depend on the last bits of a double.
std::string at(double v) { return fmt(v, 1); }

std::string filters_text(const RowFilters& filters) {
  std::string s;
  for (const auto& [f, v] : filters) s += (s.empty() ? "" : ", ") + f + " = " + v;
  return s.empty() ? "all rows" : s;
}

// <text> at (x, y), the baseline; `attrs` adds anchor, size, fill.
std::string text(double x, double y, const std::string& content, const std::string& attrs = "") {
  return "<text x=\"" + at(x) + "\" y=\"" + at(y) + "\"" + (attrs.empty() ? "" : " " + attrs) + ">" + xml_escaped(content) + "</text>\n";
}

std::string font_size(double px) { return "font-size=\"" + fmt(px, 0) + "\""; }

double widest(const std::vector<std::string>& lines, double font_px) {
  double w = 0;
  for (const std::string& l : lines) w = std::max(w, text_width_px(l, font_px));
  return w;
}

// `s` broken into lines at most `max_px` wide where it allows: at spaces, and after ',' or '/'.
// A piece with no break wider than `max_px` stands on its own line (the caller checks).
std::vector<std::string> wrap_lines(const std::string& s, double max_px, double font_px) {
  struct Piece {
    std::string text;
    bool space_before = false;
  };
  std::vector<Piece> pieces;
  std::string cur;
  bool space = false;
  for (const char c : s) {
    if (c == ' ') {
      if (!cur.empty()) pieces.push_back({cur, space});
      cur.clear();
      space = true;
      continue;
    }
    cur += c;
    if (c == ',' || c == '/') {
      pieces.push_back({cur, space});
      cur.clear();
      space = false;
    }
  }
  if (!cur.empty()) pieces.push_back({cur, space});
  std::vector<std::string> lines;
  std::string line;
  for (const Piece& p : pieces) {
    std::string joined = line;
    if (!joined.empty() && p.space_before) joined += ' ';
    joined += p.text;
    if (!line.empty() && text_width_px(joined, font_px) > max_px) {
      lines.push_back(line);
      line = p.text;
    } else {
      line = joined;
    }
  }
  if (!line.empty() || lines.empty()) lines.push_back(line);
  return lines;
}

// The heat map's colour scale, light yellow (0%) through orange to dark red (100%).
struct Rgb {
  double r, g, b;
};
constexpr std::array<Rgb, 5> kHeat = {{{255, 255, 204}, {254, 217, 118}, {253, 141, 60}, {227, 26, 28}, {128, 0, 38}}};

Rgb heat_rgb(double rate) {
  const double p = std::clamp(rate, 0.0, 1.0) * static_cast<double>(kHeat.size() - 1);
  const std::size_t i = std::min(kHeat.size() - 2, static_cast<std::size_t>(p));
  const double t = p - static_cast<double>(i);
  const Rgb& a = kHeat[i];
  const Rgb& b = kHeat[i + 1];
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

std::string hex(const Rgb& c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround(c.r)), static_cast<int>(std::lround(c.g)),
                static_cast<int>(std::lround(c.b)));
  return buf;
}

bool is_dark(const Rgb& c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b < 150; }

// Policies' colours (colour-blind safe, Okabe-Ito) and variants' marker shapes.
const char* const kPalette[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"};
enum class Shape : std::uint8_t { kCircle, kSquare, kTriangleUp, kDiamond, kTriangleDown, kStar, kHexagon, kPentagon };
constexpr std::array<Shape, 8> kShapes = {Shape::kCircle,       Shape::kSquare, Shape::kTriangleUp, Shape::kDiamond,
                                          Shape::kTriangleDown, Shape::kStar,   Shape::kHexagon,    Shape::kPentagon};

// A regular polygon (or star) of `corners` around (x, y), radius r, first corner at `start_deg`
// (0: up), as SVG path data.
std::string polygon_path(double x, double y, double r, int corners, double start_deg, double inner = 0) {
  std::string d;
  const int points = inner > 0 ? corners * 2 : corners;
  for (int i = 0; i < points; ++i) {
    const double rad = (start_deg + 360.0 * i / points) * 3.14159265358979 / 180.0;
    const double rr = inner > 0 && i % 2 == 1 ? inner : r;
    d += (i == 0 ? "M" : " L") + at(x + rr * std::sin(rad)) + " " + at(y - rr * std::cos(rad));
  }
  return d + " Z";
}

// A marker of `shape` centred on (x, y), about 2r across, with `attrs` (fill, stroke) and body.
std::string marker(Shape shape, double x, double y, double r, const std::string& attrs, const std::string& body = "") {
  std::string el;
  switch (shape) {
    case Shape::kCircle: el = "<circle cx=\"" + at(x) + "\" cy=\"" + at(y) + "\" r=\"" + at(r) + "\""; break;
    case Shape::kSquare: el = "<path class=\"marker-square\" d=\"" + polygon_path(x, y, r * 1.2, 4, 45) + "\""; break;
    case Shape::kTriangleUp: el = "<path class=\"marker-triangle-up\" d=\"" + polygon_path(x, y + r * 0.2, r * 1.35, 3, 0) + "\""; break;
    case Shape::kDiamond: el = "<path class=\"marker-diamond\" d=\"" + polygon_path(x, y, r * 1.3, 4, 0) + "\""; break;
    case Shape::kTriangleDown: el = "<path class=\"marker-triangle-down\" d=\"" + polygon_path(x, y - r * 0.2, r * 1.35, 3, 180) + "\""; break;
    case Shape::kStar: el = "<path class=\"marker-star\" d=\"" + polygon_path(x, y, r * 1.45, 5, 0, r * 0.65) + "\""; break;
    case Shape::kHexagon: el = "<path class=\"marker-hexagon\" d=\"" + polygon_path(x, y, r * 1.15, 6, 0) + "\""; break;
    case Shape::kPentagon: el = "<path class=\"marker-pentagon\" d=\"" + polygon_path(x, y, r * 1.2, 5, 0) + "\""; break;
  }
  if (shape == Shape::kCircle) el.insert(7, " class=\"marker-circle\"");
  el += " " + attrs;
  return body.empty() ? el + "/>\n" : el + ">" + body + "</" + (shape == Shape::kCircle ? "circle" : "path") + ">\n";
}

// An axis of the trade-off: linear from zero, or logarithmic where the positive values span more
// than 1.5 decades, with zero (if any value is zero) on its own tick before a break.
struct Axis {
  bool log = false;
  bool zero_slot = false;
  double lo = 0, hi = 1;      // the domain drawn: values, or log10 of values
  double start = 0, len = 1;  // pixel of the low end; signed length (negative upwards)
  static constexpr double kZeroAt = 12, kLogFrom = 40;  // pixels from the start: the zero tick; where the decades begin

  double px(double v) const {
    if (!log) return start + len * (v - lo) / (hi - lo);
    const double sign = len < 0 ? -1.0 : 1.0;
    if (v <= 0) return start + sign * kZeroAt;
    const double off = zero_slot ? sign * kLogFrom : 0.0;
    return start + off + (len - off) * (std::log10(v) - lo) / (hi - lo);
  }

  struct Tick {
    double value = 0;
    std::string label;  // empty: a minor tick
  };
  std::vector<Tick> ticks() const {
    std::vector<Tick> out;
    if (!log) {
      // 1-2-5 steps, about five of them.
      const double raw = (hi - std::max(lo, 0.0)) / 5.0;
      const double mag = std::pow(10.0, std::floor(std::log10(raw)));
      double step = mag;
      for (const double m : {1.0, 2.0, 5.0, 10.0}) {
        if (m * mag >= raw) {
          step = m * mag;
          break;
        }
      }
      const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step))));
      for (int i = 0; i <= 12; ++i) {
        const double v = step * i;
        if (v > hi) break;
        out.push_back({v, fmt(v, decimals)});
      }
      return out;
    }
    if (zero_slot) out.push_back({0, "0"});
    const double span = hi - lo;
    const bool label_125 = span <= 2.5;
    const bool minor = span <= 6;
    for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e) {
      for (int m = 1; m <= 9; ++m) {
        const double lv = e + std::log10(static_cast<double>(m));
        if (lv < lo || lv > hi) continue;
        const double v = std::pow(10.0, lv);
        const bool labelled = m == 1 || (label_125 && (m == 2 || m == 5));
        if (!labelled && !minor) continue;
        out.push_back({v, labelled ? fmt(v, std::max(0, -e)) : ""});
      }
    }
    return out;
  }
};

Axis make_axis(const std::vector<double>& values, double start, double len) {
  Axis a;
  a.start = start;
  a.len = len;
  double min_pos = 0, max_v = 0;
  bool any_zero = false;
  for (const double v : values) {
    if (v > 0) {
      min_pos = min_pos == 0 ? v : std::min(min_pos, v);
      max_v = std::max(max_v, v);
    } else {
      any_zero = true;
    }
  }
  if (min_pos > 0 && std::log10(max_v / min_pos) > 1.5) {
    a.log = true;
    a.zero_slot = any_zero;
    const double span = std::max(1.0, std::log10(max_v / min_pos));
    a.lo = std::log10(min_pos) - 0.08 * span;
    a.hi = std::log10(max_v) + 0.08 * span;
    return a;
  }
  a.hi = max_v > 0 ? max_v * 1.08 : 1.0;
  a.lo = -0.04 * a.hi;  // zero sits a little inside the axis, clear of the axis line
  return a;
}

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
  bool inside(const Box& o) const { return x0 >= o.x0 && x1 <= o.x1 && y0 >= o.y0 && y1 <= o.y1; }
};

// "3", "1–4", "2, 6".
std::string numbers_text(const std::vector<int>& n) {
  bool consecutive = n.size() > 2;
  for (std::size_t i = 1; i < n.size(); ++i) consecutive = consecutive && n[i] == n[i - 1] + 1;
  if (consecutive) return std::to_string(n.front()) + "\u2013" + std::to_string(n.back());
  std::string s;
  for (const int v : n) s.append(s.empty() ? "" : ",").append(std::to_string(v));
  return s;
}

std::string svg_open(double width, double height) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt(std::ceil(width), 0) + "\" height=\"" + fmt(std::ceil(height), 0) +
         "\" font-family=\"DejaVu Sans, Verdana, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
}

// The heat map's sizes, in pixels.
constexpr double kHeatCellH = 46, kHeatTop = 84, kHeatMaxYLabel = 240, kHeatMaxSlanted = 260;

using CellKey = std::pair<std::string, std::string>;  // (x value, y value)

// What the heat map shows: the values in run order, and each cell's counts and text.
struct HeatCells {
  std::vector<std::string> xs, ys;
  std::map<CellKey, std::pair<std::int64_t, std::int64_t>> counts;  // (x, y) -> (hangs, runs)
  std::map<CellKey, std::pair<std::string, std::string>> text;     // each cell's two lines: the rate, then its interval and run count
};

HeatCells count_hangs(const std::vector<const json*>& kept, const std::string& x_field, const std::string& y_field) {
  HeatCells cells;
  for (const json* r : kept) {
    const std::string x = required_field_of(*r, x_field), y = required_field_of(*r, y_field);
    if (std::find(cells.xs.begin(), cells.xs.end(), x) == cells.xs.end()) cells.xs.push_back(x);
    if (std::find(cells.ys.begin(), cells.ys.end(), y) == cells.ys.end()) cells.ys.push_back(y);
    auto& c = cells.counts[{x, y}];
    c.first += r->value("hang", false) ? 1 : 0;
    ++c.second;
  }
  for (const auto& [key, c] : cells.counts) {
    const Interval ci = wilson_interval(c.first, c.second);
    const std::string rate = fmt(100.0 * static_cast<double>(c.first) / static_cast<double>(c.second), 1) + "%";
    const std::string detail = "[" + fmt(100.0 * ci.low, 0) + "\u2013" + fmt(100.0 * ci.high, 0) + "] n=" + std::to_string(c.second);
    cells.text[key] = {rate, detail};
  }
  return cells;
}

// Where everything of the heat map goes.
struct HeatLayout {
  double cell_w = 104;
  std::vector<std::vector<std::string>> x_lines, y_lines;  // each value's label, as lines
  bool x_slanted = false;
  std::vector<std::pair<std::string, std::string>> keys;  // (key, full value), listed under the figure
  double left = 0;                                        // the grid's left edge
  double grid_w = 0, grid_h = 0, grid_bottom = 0;
  double x_title_y = 0, keys_y = 0;
  double bar_x = 0, bar_h = 0;  // the colour bar
  double width = 0, height = 0;
};

// Column labels: wrapped into as few lines as columns up to 168 px wide allow (three at most;
// the narrowest such column), else slanted at 45 degrees, else keys X1, X2, ... spelled out
// under the figure.
void lay_out_column_labels(HeatLayout& layout, const std::vector<std::string>& xs) {
  layout.x_lines.assign(xs.size(), {});
  bool x_fit = false;
  std::size_t fewest_lines = 4;
  const double narrowest = layout.cell_w;
  for (double w = narrowest; w <= std::max(narrowest, 168.0); w += 8) {
    std::vector<std::vector<std::string>> lines(xs.size());
    std::size_t most = 0;
    bool fit = true;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      lines[i] = wrap_lines(xs[i], w - 12, kFont);
      most = std::max(most, lines[i].size());
      fit = fit && widest(lines[i], kFont) <= w - 12;
    }
    if (fit && most < fewest_lines) {
      fewest_lines = most;
      layout.x_lines = lines;
      layout.cell_w = w;
      x_fit = true;
    }
  }
  if (x_fit) return;
  layout.x_slanted = std::all_of(xs.begin(), xs.end(), [&](const std::string& x) { return text_width_px(x, kFont) <= kHeatMaxSlanted; });
  for (std::size_t i = 0; i < xs.size(); ++i) {
    layout.x_lines[i] = {layout.x_slanted ? xs[i] : "X" + std::to_string(i + 1)};
    if (!layout.x_slanted) layout.keys.emplace_back(layout.x_lines[i][0], xs[i]);
  }
}

// Row labels: wrapped into at most three lines of 240 px, else keys Y1, Y2, ...
void lay_out_row_labels(HeatLayout& layout, const std::vector<std::string>& ys) {
  layout.y_lines.assign(ys.size(), {});
  bool y_fit = true;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    layout.y_lines[i] = wrap_lines(ys[i], kHeatMaxYLabel, kFont);
    y_fit = y_fit && layout.y_lines[i].size() <= 3 && widest(layout.y_lines[i], kFont) <= kHeatMaxYLabel;
  }
  if (y_fit) return;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    layout.y_lines[i] = {"Y" + std::to_string(i + 1)};
    layout.keys.emplace_back(layout.y_lines[i][0], ys[i]);
  }
}

// The grid's left edge: clear of the row labels and of the slanted column labels.
double heat_grid_left(const HeatLayout& layout, const std::vector<std::string>& xs, const std::string& y_field) {
  double y_label_w = text_width_px(y_field, kFont);
  for (const auto& l : layout.y_lines) y_label_w = std::max(y_label_w, widest(l, kFont));
  double left = kPad + y_label_w + 12;
  if (layout.x_slanted) {  // a slanted label reaches left of its column by its width times cos 45
    for (std::size_t i = 0; i < xs.size(); ++i) {
      left = std::max(left, kPad + text_width_px(xs[i], kFont) * kCos45 - (static_cast<double>(i) + 0.5) * layout.cell_w);
    }
  }
  return left;
}

// How far down the column labels reach.
double column_labels_bottom(const HeatLayout& layout, const std::vector<std::string>& xs) {
  if (layout.x_slanted) {
    double reach = 0;
    for (const auto& x : xs) reach = std::max(reach, text_width_px(x, kFont) * kCos45);
    return layout.grid_bottom + 12 + reach + kFont * kCos45;
  }
  std::size_t x_line_count = 1;
  for (const auto& l : layout.x_lines) x_line_count = std::max(x_line_count, l.size());
  return layout.grid_bottom + 18 + kLineGap * static_cast<double>(x_line_count - 1);
}

// The grid, the axis titles, the colour bar and the keys, placed once the labels are laid out.
void place_heatmap(HeatLayout& layout, const HeatCells& cells, const std::string& x_field, const std::string& y_field, const std::string& title,
                   const std::string& subtitle) {
  layout.left = heat_grid_left(layout, cells.xs, y_field);
  layout.grid_w = layout.cell_w * static_cast<double>(cells.xs.size());
  layout.grid_h = kHeatCellH * static_cast<double>(cells.ys.size());
  layout.grid_bottom = kHeatTop + layout.grid_h;
  layout.x_title_y = column_labels_bottom(layout, cells.xs) + 22;
  layout.bar_x = layout.left + layout.grid_w + 30;
  layout.bar_h = std::max(layout.grid_h, 120.0);
  layout.width = std::max({layout.bar_x + std::max(22 + text_width_px("100%", 11), text_width_px("hang rate", kFont)) + kPad, kPad + text_width_px(title, kTitleFont),
                           kPad + text_width_px(subtitle, kFont), layout.left + layout.grid_w / 2 + text_width_px(x_field, kFont) / 2 + kPad});
  for (const auto& [k, v] : layout.keys) layout.width = std::max(layout.width, kPad * 2 + text_width_px(k + " = " + v, 11));
  layout.keys_y = std::max(layout.x_title_y, kHeatTop + layout.bar_h + 8);  // the keys' lines start under both the axis title and the colour bar
  layout.height = std::max(kHeatTop + layout.bar_h + 8, layout.keys_y + 18.0 * static_cast<double>(layout.keys.size())) + kPad + 4;
}

void write_heat_gradient(std::ostream& s) {
  s << "<defs><linearGradient id=\"heat\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (std::size_t i = 0; i < kHeat.size(); ++i) {
    s << "<stop offset=\"" << fmt(100.0 * static_cast<double>(i) / static_cast<double>(kHeat.size() - 1), 0) << "%\" stop-color=\"" << hex(kHeat[i]) << "\"/>";
  }
  s << "</linearGradient></defs>\n";
}

// A cell with its top left corner at (x, y): coloured by its hang rate, or grey with no runs.
void write_heat_cell(std::ostream& s, const HeatCells& cells, const HeatLayout& layout, std::size_t xi, std::size_t yi, double x, double y) {
  const std::string rect = "<rect x=\"" + at(x) + "\" y=\"" + at(y) + "\" width=\"" + at(layout.cell_w) + "\" height=\"" + at(kHeatCellH) + "\"";
  const auto it = cells.counts.find({cells.xs[xi], cells.ys[yi]});
  if (it == cells.counts.end()) {
    s << rect << " fill=\"#f0f0f0\" stroke=\"white\" stroke-width=\"2\"/>\n";
    s << text(x + layout.cell_w / 2, y + kHeatCellH / 2 + 4, "no runs", font_size(kSmallFont) + " text-anchor=\"middle\" fill=\"#888\"");
    return;
  }
  const auto [hangs, runs] = it->second;
  const Rgb fill = heat_rgb(static_cast<double>(hangs) / static_cast<double>(runs));
  const char* ink = is_dark(fill) ? "white" : "#222";
  s << rect << " fill=\"" << hex(fill) << "\" stroke=\"white\" stroke-width=\"2\"><title>" << xml_escaped(cells.xs[xi]) << ", " << xml_escaped(cells.ys[yi])
    << ": " << hangs << " of " << runs << " hang</title></rect>\n";
  const auto& [rate, detail] = cells.text.at(it->first);
  s << text(x + layout.cell_w / 2, y + 21, rate, "text-anchor=\"middle\" " + font_size(13) + " font-weight=\"bold\" fill=\"" + ink + "\"");
  s << text(x + layout.cell_w / 2, y + 36, detail, "text-anchor=\"middle\" " + font_size(kSmallFont) + " fill=\"" + ink + "\"");
}

// Each row: its label, then its cells.
void write_heat_rows(std::ostream& s, const HeatCells& cells, const HeatLayout& layout) {
  for (std::size_t yi = 0; yi < cells.ys.size(); ++yi) {
    const double y = kHeatTop + kHeatCellH * static_cast<double>(yi);
    const std::vector<std::string>& label = layout.y_lines[yi];
    const double first = y + kHeatCellH / 2 + 4 - kLineGap * static_cast<double>(label.size() - 1) / 2;
    for (std::size_t l = 0; l < label.size(); ++l) {
      s << text(layout.left - 12, first + kLineGap * static_cast<double>(l), label[l], "text-anchor=\"end\"");
    }
    for (std::size_t xi = 0; xi < cells.xs.size(); ++xi) write_heat_cell(s, cells, layout, xi, yi, layout.left + layout.cell_w * static_cast<double>(xi), y);
  }
}

void write_column_labels(std::ostream& s, const HeatLayout& layout) {
  for (std::size_t xi = 0; xi < layout.x_lines.size(); ++xi) {
    const double cx = layout.left + layout.cell_w * (static_cast<double>(xi) + 0.5);
    if (layout.x_slanted) {
      const double ax = cx + 4, ay = layout.grid_bottom + 14;
      s << "<text x=\"" << at(ax) << "\" y=\"" << at(ay) << "\" text-anchor=\"end\" transform=\"rotate(-45 " << at(ax) << " " << at(ay) << ")\">"
        << xml_escaped(layout.x_lines[xi][0]) << "</text>\n";
      continue;
    }
    for (std::size_t l = 0; l < layout.x_lines[xi].size(); ++l) {
      s << text(cx, layout.grid_bottom + 18 + kLineGap * static_cast<double>(l), layout.x_lines[xi][l], "text-anchor=\"middle\"");
    }
  }
}

// The colour bar: 0% at the bottom, 100% at the top.
void write_colour_bar(std::ostream& s, const HeatLayout& layout) {
  s << text(layout.bar_x, kHeatTop - 10, "hang rate", "fill=\"#555\" font-style=\"italic\"");
  s << "<rect class=\"legend\" x=\"" << at(layout.bar_x) << "\" y=\"" << at(kHeatTop) << "\" width=\"14\" height=\"" << at(layout.bar_h)
    << "\" fill=\"url(#heat)\" stroke=\"#999\"/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double y = kHeatTop + layout.bar_h * (1.0 - t / 4.0);
    s << "<line x1=\"" << at(layout.bar_x + 14) << "\" y1=\"" << at(y) << "\" x2=\"" << at(layout.bar_x + 18) << "\" y2=\"" << at(y) << "\" stroke=\"#555\"/>\n";
    s << text(layout.bar_x + 22, y + 4, std::to_string(25 * t) + "%", font_size(11));
  }
}

// The trade-off's sizes, in pixels: the plot's corner and size, a marker's radius.
constexpr double kPlotLeft = 86, kPlotTop = 74, kPlotW = 540, kPlotH = 340, kMarkerR = 6;
constexpr double kDodge = 15;  // between markers at one spot

// A (policy, variant) of the trade-off, over its runs.
struct Point {
  std::string policy, variant;
  std::vector<std::int64_t> p99_us;
  std::int64_t discarded_bytes = 0, runs = 0, hangs = 0;
  double x_ms = 0, y_mib = 0;     // the values
  double px = 0, py = 0;          // where the marker is drawn
};

// The points, and the policies and variants in run order (their colours and shapes).
struct Points {
  std::vector<Point> points;
  std::vector<std::string> policies, variants;
};

Points collect_points(const std::vector<const json*>& kept) {
  Points out;
  for (const json* r : kept) {
    const std::string policy = field_of(*r, "policy"), variant = field_of(*r, "variant");
    auto it = std::find_if(out.points.begin(), out.points.end(), [&](const Point& p) { return p.policy == policy && p.variant == variant; });
    if (it == out.points.end()) {
      out.points.push_back({policy, variant, {}, 0, 0, 0, 0, 0, 0, 0});
      it = out.points.end() - 1;
    }
    if (std::find(out.policies.begin(), out.policies.end(), policy) == out.policies.end()) out.policies.push_back(policy);
    if (std::find(out.variants.begin(), out.variants.end(), variant) == out.variants.end()) out.variants.push_back(variant);
    if (r->value("scheduled", std::int64_t{0}) > 0) it->p99_us.push_back(r->value("sched_p99_us", std::int64_t{0}));
    it->discarded_bytes += r->value("kv_bytes_discarded", std::int64_t{0});
    it->hangs += r->value("hang", false) ? 1 : 0;
    ++it->runs;
  }
  for (Point& p : out.points) {
    p.x_ms = static_cast<double>(percentile(p.p99_us, 99)) / 1e3;
    p.y_mib = static_cast<double>(p.discarded_bytes) / static_cast<double>(p.runs) / (1 << 20);
  }
  return out;
}

std::size_t index_of(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

// A point's marker: colour by policy, shape by variant, hollow where some runs hang.
const char* colour_of(const Points& all, const Point& p) { return kPalette[index_of(all.policies, p.policy) % std::size(kPalette)]; }
Shape shape_of(const Points& all, const Point& p) { return kShapes[index_of(all.variants, p.variant) % kShapes.size()]; }
std::string marker_style(const Points& all, const Point& p) {
  const char* colour = colour_of(all, p);
  return std::string("fill=\"") + (p.hangs > 0 ? "white" : colour) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"";
}

// Markers at one spot (closer than 12 px), as groups of point indices; sets each point's pixel.
std::vector<std::vector<std::size_t>> spots(std::vector<Point>& points, const Axis& ax, const Axis& ay) {
  std::vector<std::vector<std::size_t>> clusters;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const double x = ax.px(points[i].x_ms), y = ay.px(points[i].y_mib);
    points[i].px = x;
    points[i].py = y;
    auto c = std::find_if(clusters.begin(), clusters.end(), [&](const std::vector<std::size_t>& c) {
      return std::abs(points[c.front()].px - x) < 12 && std::abs(points[c.front()].py - y) < 12;
    });
    if (c == clusters.end()) {
      clusters.push_back({i});
    } else {
      c->push_back(i);
    }
  }
  return clusters;
}

// Where the spots' markers went: what a point number must not cover, and each spot's box.
struct SpotBoxes {
  std::vector<Box> taken;  // every marker, and every dashed box
  std::vector<Box> spot;   // per spot, around its markers
  std::string dashed;      // the dashed boxes' SVG
};

// Markers at one spot are set side by side, 15 px apart, in a small grid (row by row, in point
// order) centred on it and kept in the plot, in a dashed box: the box's centre is where they all are.
SpotBoxes spread_spots(std::vector<Point>& points, const std::vector<std::vector<std::size_t>>& clusters, const Box& plot) {
  SpotBoxes boxes;
  boxes.spot.resize(clusters.size());
  std::ostringstream dashed;
  for (std::size_t g = 0; g < clusters.size(); ++g) {
    const auto& c = clusters[g];
    double cx = 0, cy = 0;
    for (const std::size_t i : c) {
      cx += points[i].px;
      cy += points[i].py;
    }
    cx /= static_cast<double>(c.size());
    cy /= static_cast<double>(c.size());
    std::size_t cols = 1;
    while (cols * cols < c.size()) ++cols;
    const std::size_t rows_n = (c.size() + cols - 1) / cols;
    const double half_w = kDodge * static_cast<double>(cols - 1) / 2, half_h = kDodge * static_cast<double>(rows_n - 1) / 2;
    cx = std::clamp(cx, plot.x0 + half_w + kMarkerR + 4, std::max(plot.x0 + half_w + kMarkerR + 4, plot.x1 - half_w - kMarkerR - 4));
    cy = std::clamp(cy, plot.y0 + half_h + kMarkerR + 4, std::max(plot.y0 + half_h + kMarkerR + 4, plot.y1 - half_h - kMarkerR - 4));
    for (std::size_t j = 0; j < c.size(); ++j) {
      Point& p = points[c[j]];
      p.px = cx - half_w + kDodge * static_cast<double>(j % cols);
      p.py = cy - half_h + kDodge * static_cast<double>(j / cols);
      boxes.taken.push_back({p.px - kMarkerR - 2, p.py - kMarkerR - 2, p.px + kMarkerR + 2, p.py + kMarkerR + 2});
    }
    const double pad = c.size() > 1 ? kMarkerR + 4 : kMarkerR + 2;
    boxes.spot[g] = {cx - half_w - pad, cy - half_h - pad, cx + half_w + pad, cy + half_h + pad};
    if (c.size() > 1) {
      const Box& b = boxes.spot[g];
      dashed << "<rect class=\"group\" x=\"" << at(b.x0) << "\" y=\"" << at(b.y0) << "\" width=\"" << at(b.x1 - b.x0) << "\" height=\"" << at(b.y1 - b.y0)
             << "\" rx=\"4\" fill=\"none\" stroke=\"#999\" stroke-dasharray=\"3 2\"/>\n";
      boxes.taken.push_back(b);
    }
  }
  boxes.dashed = dashed.str();
  return boxes;
}

// Grid lines, ticks and their values along both axes.
void write_ticks(std::ostream& body, const Axis& ax, const Axis& ay, const Box& plot) {
  for (const Axis::Tick& t : ax.ticks()) {
    const double x = ax.px(t.value);
    if (!t.label.empty()) {
      body << "<line x1=\"" << at(x) << "\" y1=\"" << at(plot.y0) << "\" x2=\"" << at(x) << "\" y2=\"" << at(plot.y1) << "\" stroke=\"#ececec\"/>\n";
      body << text(x, plot.y1 + 17, t.label, "text-anchor=\"middle\" class=\"tick\"");
    }
    body << "<line x1=\"" << at(x) << "\" y1=\"" << at(plot.y1) << "\" x2=\"" << at(x) << "\" y2=\"" << at(plot.y1 + (t.label.empty() ? 3 : 5))
         << "\" stroke=\"black\"/>\n";
  }
  for (const Axis::Tick& t : ay.ticks()) {
    const double y = ay.px(t.value);
    if (!t.label.empty()) {
      body << "<line x1=\"" << at(plot.x0) << "\" y1=\"" << at(y) << "\" x2=\"" << at(plot.x1) << "\" y2=\"" << at(y) << "\" stroke=\"#ececec\"/>\n";
      body << text(plot.x0 - 8, y + 4, t.label, "text-anchor=\"end\" class=\"tick\"");
    }
    body << "<line x1=\"" << at(plot.x0 - (t.label.empty() ? 3 : 5)) << "\" y1=\"" << at(y) << "\" x2=\"" << at(plot.x0) << "\" y2=\"" << at(y)
         << "\" stroke=\"black\"/>\n";
  }
}

// The axis lines; a break between a zero and the decades: two slashes across the axis on a white
// gap; the axis titles.
void write_axes(std::ostream& body, const Axis& ax, const Axis& ay, const Box& plot) {
  body << "<line x1=\"" << at(plot.x0) << "\" y1=\"" << at(plot.y1) << "\" x2=\"" << at(plot.x1) << "\" y2=\"" << at(plot.y1) << "\" stroke=\"black\"/>\n";
  body << "<line x1=\"" << at(plot.x0) << "\" y1=\"" << at(plot.y0) << "\" x2=\"" << at(plot.x0) << "\" y2=\"" << at(plot.y1) << "\" stroke=\"black\"/>\n";
  if (ax.log && ax.zero_slot) {
    const double x = plot.x0 + (Axis::kZeroAt + Axis::kLogFrom) / 2;
    body << "<rect x=\"" << at(x - 4) << "\" y=\"" << at(plot.y1 - 5) << "\" width=\"8\" height=\"10\" fill=\"white\"/>\n";
    for (const double d : {-3.0, 3.0}) {
      body << "<line class=\"axis-break\" x1=\"" << at(x + d - 3) << "\" y1=\"" << at(plot.y1 + 5) << "\" x2=\"" << at(x + d + 3) << "\" y2=\""
           << at(plot.y1 - 5) << "\" stroke=\"black\"/>\n";
    }
  }
  if (ay.log && ay.zero_slot) {
    const double y = plot.y1 - (Axis::kZeroAt + Axis::kLogFrom) / 2;
    body << "<rect x=\"" << at(plot.x0 - 5) << "\" y=\"" << at(y - 4) << "\" width=\"10\" height=\"8\" fill=\"white\"/>\n";
    for (const double d : {-3.0, 3.0}) {
      body << "<line class=\"axis-break\" x1=\"" << at(plot.x0 - 5) << "\" y1=\"" << at(y + d + 3) << "\" x2=\"" << at(plot.x0 + 5) << "\" y2=\""
           << at(y + d - 3) << "\" stroke=\"black\"/>\n";
    }
  }
  const std::string x_title = std::string("time to schedule, p99 over runs (ms") + (ax.log ? ", log scale)" : ")");
  const std::string y_title = std::string("KV read then discarded (MiB per run") + (ay.log ? ", log scale)" : ")");
  body << text(plot.x0 + kPlotW / 2, plot.y1 + 40, x_title, "text-anchor=\"middle\"");
  const double y_title_x = 24, y_title_y = plot.y0 + kPlotH / 2;
  body << "<text x=\"" << at(y_title_x) << "\" y=\"" << at(y_title_y) << "\" transform=\"rotate(-90 " << at(y_title_x) << " " << at(y_title_y)
       << ")\" text-anchor=\"middle\">" << xml_escaped(y_title) << "</text>\n";
}

void write_markers(std::ostream& body, const Points& all) {
  for (const Point& p : all.points) {
    body << marker(shape_of(all, p), p.px, p.py, kMarkerR, marker_style(all, p),
                   "<title>" + xml_escaped(p.policy) + " / " + xml_escaped(p.variant) + ": " + std::to_string(p.hangs) + " of " + std::to_string(p.runs) +
                       " hang</title>");
  }
}

// Where a spot's number may go, a `w` by `h` box around `around`, best first: nearest first, and
// at each distance above, right, below, left, then the corners.
std::vector<Box> number_places(const Box& around, double w, double h) {
  const double cx = (around.x0 + around.x1) / 2, cy = (around.y0 + around.y1) / 2;
  std::vector<Box> candidates;
  for (const double d : {2.0, 10.0, 22.0, 36.0}) {
    candidates.push_back({cx - w / 2, around.y0 - d - h, cx + w / 2, around.y0 - d});                  // above
    candidates.push_back({around.x1 + d, cy - h / 2, around.x1 + d + w, cy + h / 2});                  // right
    candidates.push_back({cx - w / 2, around.y1 + d, cx + w / 2, around.y1 + d + h});                  // below
    candidates.push_back({around.x0 - d - w, cy - h / 2, around.x0 - d, cy + h / 2});                  // left
    candidates.push_back({around.x1 + d, around.y0 - d - h, around.x1 + d + w, around.y0 - d});        // above right
    candidates.push_back({around.x0 - d - w, around.y0 - d - h, around.x0 - d, around.y0 - d});        // above left
    candidates.push_back({around.x1 + d, around.y1 + d, around.x1 + d + w, around.y1 + d + h});        // below right
    candidates.push_back({around.x0 - d - w, around.y1 + d, around.x0 - d, around.y1 + d + h});        // below left
  }
  return candidates;
}

// Each spot's point numbers, placed where they overlap no marker and no other number (else at the
// first place).
void write_point_numbers(std::ostream& body, const std::vector<std::vector<std::size_t>>& clusters, const SpotBoxes& boxes, const Box& plot) {
  std::vector<Box> label_boxes;
  for (std::size_t g = 0; g < clusters.size(); ++g) {
    std::vector<int> numbers;
    for (const std::size_t i : clusters[g]) numbers.push_back(static_cast<int>(i) + 1);
    const std::string label = numbers_text(numbers);
    const std::vector<Box> candidates = number_places(boxes.spot[g], text_width_px(label, 11), 12);
    Box chosen = candidates.front();
    for (const Box& b : candidates) {
      const bool free = b.inside(plot) && std::none_of(boxes.taken.begin(), boxes.taken.end(), [&](const Box& m) { return m.overlaps(b); }) &&
                        std::none_of(label_boxes.begin(), label_boxes.end(), [&](const Box& l) { return l.overlaps(b); });
      if (free) {
        chosen = b;
        break;
      }
    }
    label_boxes.push_back(chosen);
    body << text((chosen.x0 + chosen.x1) / 2, chosen.y1 - 2, label, "text-anchor=\"middle\" " + font_size(11) + " font-weight=\"bold\" fill=\"#222\" class=\"point-number\"");
  }
}

// The legends right of the plot, written top down from `y`.
struct Legend {
  double x = 0, y = 0;
  double w = 0;  // the widest line so far
};

void write_legend_head(std::ostream& body, Legend& legend, const std::string& t) {
  body << text(legend.x, legend.y, t, "font-weight=\"bold\" fill=\"#444\"");
  legend.w = std::max(legend.w, text_width_px(t, kFont));
  legend.y += 20;
}

// A legend's line: its sample (`sample_svg`), then its text.
void write_legend_line(std::ostream& body, Legend& legend, const std::string& sample_svg, const std::string& t) {
  body << sample_svg;
  body << text(legend.x + 20, legend.y, t);
  legend.w = std::max(legend.w, 20 + text_width_px(t, kFont));
  legend.y += 18;
}

// Legends, right of the plot: colour by policy, shape by variant, hollow. Returns where they end.
Legend write_legends(std::ostream& body, const Points& all, const Box& plot) {
  Legend legend{plot.x1 + 28, plot.y0 + 4, 0};
  write_legend_head(body, legend, "policy (colour)");
  for (std::size_t i = 0; i < all.policies.size(); ++i) {
    const std::string swatch = "<rect x=\"" + at(legend.x) + "\" y=\"" + at(legend.y - 10) + "\" width=\"12\" height=\"12\" fill=\"" +
                               kPalette[i % std::size(kPalette)] + "\"/>\n";
    write_legend_line(body, legend, swatch, all.policies[i]);
  }
  legend.y += 10;
  write_legend_head(body, legend, "variant (shape)");
  for (std::size_t i = 0; i < all.variants.size(); ++i) {
    write_legend_line(body, legend, marker(kShapes[i % kShapes.size()], legend.x + 6, legend.y - 4, 5, "fill=\"#555\" stroke=\"#555\" stroke-width=\"1.5\""),
                      all.variants[i]);
  }
  legend.y += 10;
  write_legend_line(body, legend, marker(Shape::kCircle, legend.x + 6, legend.y - 4, 5, "fill=\"white\" stroke=\"#555\" stroke-width=\"2\""),
                    "hollow: some runs hang");
  return legend;
}

// The table under the plot: a row per point, numbered as the plot's numbers.
constexpr std::array<const char*, 6> kTableHead = {"#", "", "policy / variant", "p99 to schedule (ms)", "KV discarded (MiB/run)", "hang rate"};
constexpr std::size_t kMarkerColumn = 1;

bool right_aligned(std::size_t column) { return column == 0 || column >= 3; }  // numbers, aligned by the column's right edge

std::vector<std::vector<std::string>> table_cells(const std::vector<Point>& points) {
  std::vector<std::vector<std::string>> table;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    const int x_dec = p.x_ms < 10 ? 2 : (p.x_ms < 1000 ? 1 : 0);
    table.push_back({std::to_string(i + 1), "", p.policy + " / " + p.variant, fmt(p.x_ms, x_dec), fmt(p.y_mib, p.y_mib < 10 ? 2 : 1),
                     fmt(100.0 * static_cast<double>(p.hangs) / static_cast<double>(p.runs), 1) + "% (" + std::to_string(p.hangs) + "/" +
                         std::to_string(p.runs) + ")"});
  }
  return table;
}

// Writes the table with its head at `table_y`; returns its right edge.
double write_table(std::ostream& body, const Points& all, const std::vector<std::vector<std::string>>& table, double table_y) {
  std::vector<double> col_x(kTableHead.size());
  double tx = kPad + 8;
  for (std::size_t c = 0; c < kTableHead.size(); ++c) {
    double w = c == kMarkerColumn ? 16 : text_width_px(kTableHead[c], 11);
    for (const auto& row : table) w = std::max(w, text_width_px(row[c], 11));
    col_x[c] = right_aligned(c) ? tx + w : tx;
    tx += w + 22;
  }
  const double table_right = tx;
  for (std::size_t c = 0; c < kTableHead.size(); ++c) {
    body << text(col_x[c], table_y, kTableHead[c], font_size(11) + " font-weight=\"bold\" fill=\"#444\"" + (right_aligned(c) ? " text-anchor=\"end\"" : ""));
  }
  body << "<line x1=\"" << at(kPad + 4) << "\" y1=\"" << at(table_y + 5) << "\" x2=\"" << at(table_right - 18) << "\" y2=\"" << at(table_y + 5)
       << "\" stroke=\"#bbb\"/>\n";
  for (std::size_t r = 0; r < table.size(); ++r) {
    const double y = table_y + 18 * static_cast<double>(r + 1);
    const Point& p = all.points[r];
    for (std::size_t c = 0; c < kTableHead.size(); ++c) {
      if (c == kMarkerColumn) {
        body << marker(shape_of(all, p), col_x[c] + 6, y - 4, 5, marker_style(all, p));
        continue;
      }
      body << text(col_x[c], y, table[r][c], font_size(11) + (right_aligned(c) ? " text-anchor=\"end\"" : ""));
    }
  }
  return table_right;
}

}  // namespace

std::string hang_heatmap_svg(const SweepRows& rows, const std::string& x_field, const std::string& y_field, const RowFilters& filters) {
  const auto kept = kept_rows(rows, filters);
  const HeatCells cells = count_hangs(kept, x_field, y_field);
  HeatLayout layout;
  for (const auto& [key, lines] : cells.text) layout.cell_w = std::max(layout.cell_w, text_width_px(lines.second, kSmallFont) + 12);  // the detail line fits
  lay_out_column_labels(layout, cells.xs);
  lay_out_row_labels(layout, cells.ys);
  const std::string title = "Hang rate by " + x_field + " and " + y_field;
  const std::string subtitle = filters_text(filters) + "; " + std::to_string(kept.size()) + " runs; cell: hang rate, [95% Wilson interval] and runs";
  place_heatmap(layout, cells, x_field, y_field, title, subtitle);

  std::ostringstream s;
  s << svg_open(layout.width, layout.height);
  write_heat_gradient(s);
  s << text(kPad, 24, title, font_size(kTitleFont) + " font-weight=\"bold\"");
  s << text(kPad, 44, subtitle, "fill=\"#555\"");
  s << text(layout.left - 12, kHeatTop - 10, y_field, "text-anchor=\"end\" fill=\"#555\" font-style=\"italic\"");
  write_heat_rows(s, cells, layout);
  write_column_labels(s, layout);
  s << text(layout.left + layout.grid_w / 2, layout.x_title_y, x_field, "text-anchor=\"middle\" fill=\"#555\" font-style=\"italic\"");
  for (std::size_t k = 0; k < layout.keys.size(); ++k) {
    s << text(kPad, layout.keys_y + 18.0 * static_cast<double>(k + 1), layout.keys[k].first + " = " + layout.keys[k].second, font_size(11) + " fill=\"#333\"");
  }
  write_colour_bar(s, layout);
  s << "</svg>\n";
  return s.str();
}

std::string tradeoff_svg(const SweepRows& rows, const RowFilters& filters) {
  const auto kept = kept_rows(rows, filters);
  Points all = collect_points(kept);
  std::vector<double> xs, ys;
  for (const Point& p : all.points) {
    xs.push_back(p.x_ms);
    ys.push_back(p.y_mib);
  }
  const Box plot{kPlotLeft, kPlotTop, kPlotLeft + kPlotW, kPlotTop + kPlotH};
  const Axis ax = make_axis(xs, kPlotLeft, kPlotW);
  const Axis ay = make_axis(ys, kPlotTop + kPlotH, -kPlotH);
  const std::vector<std::vector<std::size_t>> clusters = spots(all.points, ax, ay);
  const SpotBoxes boxes = spread_spots(all.points, clusters, plot);

  // The body first: the figure's size depends on the legends and the table.
  std::ostringstream body;
  write_ticks(body, ax, ay, plot);
  write_axes(body, ax, ay, plot);
  body << boxes.dashed;
  write_markers(body, all);
  write_point_numbers(body, clusters, boxes, plot);
  const Legend legend = write_legends(body, all, plot);
  const std::vector<std::vector<std::string>> table = table_cells(all.points);
  const double table_y = plot.y1 + 72;
  const double table_right = write_table(body, all, table, table_y);

  const std::string title = "Time to schedule against KV read then discarded, per policy and variant";
  const std::string subtitle = filters_text(filters) + "; " + std::to_string(kept.size()) + " runs; a dashed box: markers at one spot; numbers lead to the table below";
  const double height = std::max(table_y + 18 * static_cast<double>(table.size()) + kPad + 4, legend.y + kPad);
  const double width = std::max({legend.x + legend.w + kPad, table_right + kPad, kPad + text_width_px(title, kTitleFont), kPad + text_width_px(subtitle, kFont)});
  std::ostringstream s;
  s << svg_open(width, height);
  s << text(kPad, 24, title, font_size(kTitleFont) + " font-weight=\"bold\"");
  s << text(kPad, 44, subtitle, "fill=\"#555\"");
  s << body.str();
  s << "</svg>\n";
  return s.str();
}

}  // namespace hcsim
