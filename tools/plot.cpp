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
  for (const int v : n) s += (s.empty() ? "" : ",") + std::to_string(v);
  return s;
}

std::string svg_open(double width, double height) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt(std::ceil(width), 0) + "\" height=\"" + fmt(std::ceil(height), 0) +
         "\" font-family=\"DejaVu Sans, Verdana, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
}

}  // namespace

std::string hang_heatmap_svg(const SweepRows& rows, const std::string& x_field, const std::string& y_field, const RowFilters& filters) {
  const auto kept = kept_rows(rows, filters);
  std::vector<std::string> xs, ys;
  std::map<std::pair<std::string, std::string>, std::pair<std::int64_t, std::int64_t>> cells;  // (x, y) -> (hangs, runs)
  for (const json* r : kept) {
    const std::string x = field_of(*r, x_field), y = field_of(*r, y_field);
    if (x.empty()) throw std::runtime_error("no row has the field \"" + x_field + "\" (an axis name, or policy, variant, tp, ...)");
    if (y.empty()) throw std::runtime_error("no row has the field \"" + y_field + "\" (an axis name, or policy, variant, tp, ...)");
    if (std::find(xs.begin(), xs.end(), x) == xs.end()) xs.push_back(x);
    if (std::find(ys.begin(), ys.end(), y) == ys.end()) ys.push_back(y);
    auto& c = cells[{x, y}];
    c.first += r->value("hang", false) ? 1 : 0;
    ++c.second;
  }
  // Each cell's two lines: the rate, then its interval and run count.
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>> cell_text;
  double cell_w = 104;
  for (const auto& [key, c] : cells) {
    const Interval ci = wilson_interval(c.first, c.second);
    const std::string rate = fmt(100.0 * static_cast<double>(c.first) / static_cast<double>(c.second), 1) + "%";
    const std::string detail = "[" + fmt(100.0 * ci.low, 0) + "\u2013" + fmt(100.0 * ci.high, 0) + "] n=" + std::to_string(c.second);
    cell_text[key] = {rate, detail};
    cell_w = std::max(cell_w, text_width_px(detail, kSmallFont) + 12);
  }
  constexpr double kCellH = 46, kTop = 84, kMaxYLabel = 240, kMaxSlanted = 260;

  // Column labels: wrapped into as few lines as columns up to 168 px wide allow (three at most;
  // the narrowest such column), else slanted at 45 degrees, else keys X1, X2, ... spelled out
  // under the figure.
  std::vector<std::vector<std::string>> x_lines(xs.size());
  bool x_fit = false;
  std::size_t fewest_lines = 4;
  const double narrowest = cell_w;
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
      x_lines = lines;
      cell_w = w;
      x_fit = true;
    }
  }
  bool x_slanted = false;
  std::vector<std::pair<std::string, std::string>> keys;  // (key, full value), listed under the figure
  if (!x_fit) {
    x_slanted = std::all_of(xs.begin(), xs.end(), [&](const std::string& x) { return text_width_px(x, kFont) <= kMaxSlanted; });
    for (std::size_t i = 0; i < xs.size(); ++i) {
      x_lines[i] = {x_slanted ? xs[i] : "X" + std::to_string(i + 1)};
      if (!x_slanted) keys.emplace_back(x_lines[i][0], xs[i]);
    }
  }
  // Row labels: wrapped into at most three lines of 240 px, else keys Y1, Y2, ...
  std::vector<std::vector<std::string>> y_lines(ys.size());
  bool y_fit = true;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    y_lines[i] = wrap_lines(ys[i], kMaxYLabel, kFont);
    y_fit = y_fit && y_lines[i].size() <= 3 && widest(y_lines[i], kFont) <= kMaxYLabel;
  }
  if (!y_fit) {
    for (std::size_t i = 0; i < ys.size(); ++i) {
      y_lines[i] = {"Y" + std::to_string(i + 1)};
      keys.emplace_back(y_lines[i][0], ys[i]);
    }
  }

  double y_label_w = text_width_px(y_field, kFont);
  for (const auto& l : y_lines) y_label_w = std::max(y_label_w, widest(l, kFont));
  double left = kPad + y_label_w + 12;
  if (x_slanted) {  // a slanted label reaches left of its column by its width times cos 45
    for (std::size_t i = 0; i < xs.size(); ++i) {
      left = std::max(left, kPad + text_width_px(xs[i], kFont) * kCos45 - (static_cast<double>(i) + 0.5) * cell_w);
    }
  }
  const double grid_w = cell_w * static_cast<double>(xs.size()), grid_h = kCellH * static_cast<double>(ys.size());
  const double grid_bottom = kTop + grid_h;
  std::size_t x_line_count = 1;
  for (const auto& l : x_lines) x_line_count = std::max(x_line_count, l.size());
  double labels_bottom = grid_bottom + 18 + kLineGap * static_cast<double>(x_line_count - 1);
  if (x_slanted) {
    double reach = 0;
    for (const auto& x : xs) reach = std::max(reach, text_width_px(x, kFont) * kCos45);
    labels_bottom = grid_bottom + 12 + reach + kFont * kCos45;
  }
  const double x_title_y = labels_bottom + 22;
  const double bar_x = left + grid_w + 30, bar_h = std::max(grid_h, 120.0);
  const std::string title = "Hang rate by " + x_field + " and " + y_field;
  const std::string subtitle = filters_text(filters) + "; " + std::to_string(kept.size()) + " runs; cell: hang rate, [95% Wilson interval] and runs";
  double width = std::max({bar_x + std::max(22 + text_width_px("100%", 11), text_width_px("hang rate", kFont)) + kPad, kPad + text_width_px(title, kTitleFont), kPad + text_width_px(subtitle, kFont),
                           left + grid_w / 2 + text_width_px(x_field, kFont) / 2 + kPad});
  for (const auto& [k, v] : keys) width = std::max(width, kPad * 2 + text_width_px(k + " = " + v, 11));
  const double keys_y = std::max(x_title_y, kTop + bar_h + 8);  // the keys' lines start under both the axis title and the colour bar
  const double height = std::max(kTop + bar_h + 8, keys_y + 18.0 * static_cast<double>(keys.size())) + kPad + 4;

  std::ostringstream s;
  s << svg_open(width, height);
  s << "<defs><linearGradient id=\"heat\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (std::size_t i = 0; i < kHeat.size(); ++i) {
    s << "<stop offset=\"" << fmt(100.0 * static_cast<double>(i) / static_cast<double>(kHeat.size() - 1), 0) << "%\" stop-color=\"" << hex(kHeat[i]) << "\"/>";
  }
  s << "</linearGradient></defs>\n";
  s << text(kPad, 24, title, font_size(kTitleFont) + " font-weight=\"bold\"");
  s << text(kPad, 44, subtitle, "fill=\"#555\"");
  s << text(left - 12, kTop - 10, y_field, "text-anchor=\"end\" fill=\"#555\" font-style=\"italic\"");
  for (std::size_t yi = 0; yi < ys.size(); ++yi) {
    const double y = kTop + kCellH * static_cast<double>(yi);
    const double first = y + kCellH / 2 + 4 - kLineGap * static_cast<double>(y_lines[yi].size() - 1) / 2;
    for (std::size_t l = 0; l < y_lines[yi].size(); ++l) {
      s << text(left - 12, first + kLineGap * static_cast<double>(l), y_lines[yi][l], "text-anchor=\"end\"");
    }
    for (std::size_t xi = 0; xi < xs.size(); ++xi) {
      const double x = left + cell_w * static_cast<double>(xi);
      const std::string rect = "<rect x=\"" + at(x) + "\" y=\"" + at(y) + "\" width=\"" + at(cell_w) + "\" height=\"" + at(kCellH) + "\"";
      const auto it = cells.find({xs[xi], ys[yi]});
      if (it == cells.end()) {
        s << rect << " fill=\"#f0f0f0\" stroke=\"white\" stroke-width=\"2\"/>\n";
        s << text(x + cell_w / 2, y + kCellH / 2 + 4, "no runs", font_size(kSmallFont) + " text-anchor=\"middle\" fill=\"#888\"");
        continue;
      }
      const auto [hangs, runs] = it->second;
      const Rgb fill = heat_rgb(static_cast<double>(hangs) / static_cast<double>(runs));
      const char* ink = is_dark(fill) ? "white" : "#222";
      s << rect << " fill=\"" << hex(fill) << "\" stroke=\"white\" stroke-width=\"2\"><title>" << xml_escaped(xs[xi]) << ", " << xml_escaped(ys[yi]) << ": " << hangs
        << " of " << runs << " hang</title></rect>\n";
      const auto& [rate, detail] = cell_text.at(it->first);
      s << text(x + cell_w / 2, y + 21, rate, "text-anchor=\"middle\" " + font_size(13) + " font-weight=\"bold\" fill=\"" + ink + "\"");
      s << text(x + cell_w / 2, y + 36, detail, "text-anchor=\"middle\" " + font_size(kSmallFont) + " fill=\"" + ink + "\"");
    }
  }
  for (std::size_t xi = 0; xi < xs.size(); ++xi) {
    const double cx = left + cell_w * (static_cast<double>(xi) + 0.5);
    if (x_slanted) {
      const double ax = cx + 4, ay = grid_bottom + 14;
      s << "<text x=\"" << at(ax) << "\" y=\"" << at(ay) << "\" text-anchor=\"end\" transform=\"rotate(-45 " << at(ax) << " " << at(ay) << ")\">"
        << xml_escaped(x_lines[xi][0]) << "</text>\n";
      continue;
    }
    for (std::size_t l = 0; l < x_lines[xi].size(); ++l) {
      s << text(cx, grid_bottom + 18 + kLineGap * static_cast<double>(l), x_lines[xi][l], "text-anchor=\"middle\"");
    }
  }
  s << text(left + grid_w / 2, x_title_y, x_field, "text-anchor=\"middle\" fill=\"#555\" font-style=\"italic\"");
  for (std::size_t k = 0; k < keys.size(); ++k) {
    s << text(kPad, keys_y + 18.0 * static_cast<double>(k + 1), keys[k].first + " = " + keys[k].second, font_size(11) + " fill=\"#333\"");
  }
  // The colour bar: 0% at the bottom, 100% at the top.
  s << text(bar_x, kTop - 10, "hang rate", "fill=\"#555\" font-style=\"italic\"");
  s << "<rect class=\"legend\" x=\"" << at(bar_x) << "\" y=\"" << at(kTop) << "\" width=\"14\" height=\"" << at(bar_h)
    << "\" fill=\"url(#heat)\" stroke=\"#999\"/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double y = kTop + bar_h * (1.0 - t / 4.0);
    s << "<line x1=\"" << at(bar_x + 14) << "\" y1=\"" << at(y) << "\" x2=\"" << at(bar_x + 18) << "\" y2=\"" << at(y) << "\" stroke=\"#555\"/>\n";
    s << text(bar_x + 22, y + 4, std::to_string(25 * t) + "%", font_size(11));
  }
  s << "</svg>\n";
  return s.str();
}

std::string tradeoff_svg(const SweepRows& rows, const RowFilters& filters) {
  const auto kept = kept_rows(rows, filters);
  struct Point {
    std::string policy, variant;
    std::vector<std::int64_t> p99_us;
    std::int64_t discarded_bytes = 0, runs = 0, hangs = 0;
    double x_ms = 0, y_mib = 0;     // the values
    double px = 0, py = 0;          // where the marker is drawn
  };
  std::vector<Point> points;
  std::vector<std::string> policies, variants;
  for (const json* r : kept) {
    const std::string policy = field_of(*r, "policy"), variant = field_of(*r, "variant");
    auto it = std::find_if(points.begin(), points.end(), [&](const Point& p) { return p.policy == policy && p.variant == variant; });
    if (it == points.end()) {
      points.push_back({policy, variant, {}, 0, 0, 0, 0, 0, 0, 0});
      it = points.end() - 1;
    }
    if (std::find(policies.begin(), policies.end(), policy) == policies.end()) policies.push_back(policy);
    if (std::find(variants.begin(), variants.end(), variant) == variants.end()) variants.push_back(variant);
    if (r->value("scheduled", std::int64_t{0}) > 0) it->p99_us.push_back(r->value("sched_p99_us", std::int64_t{0}));
    it->discarded_bytes += r->value("kv_bytes_discarded", std::int64_t{0});
    it->hangs += r->value("hang", false) ? 1 : 0;
    ++it->runs;
  }
  std::vector<double> xs, ys;
  for (Point& p : points) {
    p.x_ms = static_cast<double>(percentile(p.p99_us, 99)) / 1e3;
    p.y_mib = static_cast<double>(p.discarded_bytes) / static_cast<double>(p.runs) / (1 << 20);
    xs.push_back(p.x_ms);
    ys.push_back(p.y_mib);
  }
  auto policy_of = [&](const Point& p) { return static_cast<std::size_t>(std::find(policies.begin(), policies.end(), p.policy) - policies.begin()); };
  auto variant_of = [&](const Point& p) { return static_cast<std::size_t>(std::find(variants.begin(), variants.end(), p.variant) - variants.begin()); };

  constexpr double kLeft = 86, kTop = 74, kPlotW = 540, kPlotH = 340, kR = 6;
  const Box plot{kLeft, kTop, kLeft + kPlotW, kTop + kPlotH};
  const Axis ax = make_axis(xs, kLeft, kPlotW);
  const Axis ay = make_axis(ys, kTop + kPlotH, -kPlotH);

  // Markers at one spot (closer than 12 px) are set side by side, 15 px apart, kept in the plot.
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
  // Markers at one spot stand in a small grid (row by row, in point order) centred on it, in a
  // dashed box: the box's centre is where they all are.
  constexpr double kDodge = 15;
  std::vector<Box> marker_boxes;
  std::vector<Box> group_boxes(clusters.size());
  std::ostringstream groups;
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
    cx = std::clamp(cx, plot.x0 + half_w + kR + 4, std::max(plot.x0 + half_w + kR + 4, plot.x1 - half_w - kR - 4));
    cy = std::clamp(cy, plot.y0 + half_h + kR + 4, std::max(plot.y0 + half_h + kR + 4, plot.y1 - half_h - kR - 4));
    for (std::size_t j = 0; j < c.size(); ++j) {
      points[c[j]].px = cx - half_w + kDodge * static_cast<double>(j % cols);
      points[c[j]].py = cy - half_h + kDodge * static_cast<double>(j / cols);
      marker_boxes.push_back({points[c[j]].px - kR - 2, points[c[j]].py - kR - 2, points[c[j]].px + kR + 2, points[c[j]].py + kR + 2});
    }
    const double pad = c.size() > 1 ? kR + 4 : kR + 2;
    group_boxes[g] = {cx - half_w - pad, cy - half_h - pad, cx + half_w + pad, cy + half_h + pad};
    if (c.size() > 1) {
      const Box& b = group_boxes[g];
      groups << "<rect class=\"group\" x=\"" << at(b.x0) << "\" y=\"" << at(b.y0) << "\" width=\"" << at(b.x1 - b.x0) << "\" height=\"" << at(b.y1 - b.y0)
             << "\" rx=\"4\" fill=\"none\" stroke=\"#999\" stroke-dasharray=\"3 2\"/>\n";
      marker_boxes.push_back(b);
    }
  }

  const std::string title = "Time to schedule against KV read then discarded, per policy and variant";
  const std::string subtitle = filters_text(filters) + "; " + std::to_string(kept.size()) + " runs; a dashed box: markers at one spot; numbers lead to the table below";
  std::ostringstream s;
  std::ostringstream body;
  // Grid lines and ticks.
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
  body << "<line x1=\"" << at(plot.x0) << "\" y1=\"" << at(plot.y1) << "\" x2=\"" << at(plot.x1) << "\" y2=\"" << at(plot.y1) << "\" stroke=\"black\"/>\n";
  body << "<line x1=\"" << at(plot.x0) << "\" y1=\"" << at(plot.y0) << "\" x2=\"" << at(plot.x0) << "\" y2=\"" << at(plot.y1) << "\" stroke=\"black\"/>\n";
  // A break between a zero and the decades: two slashes across the axis on a white gap.
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

  body << groups.str();
  // Markers: colour by policy, shape by variant, hollow where some runs hang.
  for (const Point& p : points) {
    const char* colour = kPalette[policy_of(p) % std::size(kPalette)];
    const Shape shape = kShapes[variant_of(p) % kShapes.size()];
    const std::string attrs = std::string("fill=\"") + (p.hangs > 0 ? "white" : colour) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"";
    body << marker(shape, p.px, p.py, kR, attrs,
                   "<title>" + xml_escaped(p.policy) + " / " + xml_escaped(p.variant) + ": " + std::to_string(p.hangs) + " of " + std::to_string(p.runs) +
                       " hang</title>");
  }
  // Each spot's point numbers, placed where they overlap no marker and no other number.
  std::vector<Box> label_boxes;
  for (std::size_t g = 0; g < clusters.size(); ++g) {
    const auto& c = clusters[g];
    std::vector<int> numbers;
    for (const std::size_t i : c) numbers.push_back(static_cast<int>(i) + 1);
    const std::string label = numbers_text(numbers);
    const double w = text_width_px(label, 11), h = 12;
    const Box& around = group_boxes[g];
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
    Box chosen = candidates.front();
    for (const Box& b : candidates) {
      const bool free = b.inside(plot) && std::none_of(marker_boxes.begin(), marker_boxes.end(), [&](const Box& m) { return m.overlaps(b); }) &&
                        std::none_of(label_boxes.begin(), label_boxes.end(), [&](const Box& l) { return l.overlaps(b); });
      if (free) {
        chosen = b;
        break;
      }
    }
    label_boxes.push_back(chosen);
    body << text((chosen.x0 + chosen.x1) / 2, chosen.y1 - 2, label, "text-anchor=\"middle\" " + font_size(11) + " font-weight=\"bold\" fill=\"#222\" class=\"point-number\"");
  }

  // Legends, right of the plot: colour by policy, shape by variant, hollow.
  const double legend_x = plot.x1 + 28;
  double legend_w = 0;
  double ly = plot.y0 + 4;
  auto legend_head = [&](const std::string& t) {
    body << text(legend_x, ly, t, "font-weight=\"bold\" fill=\"#444\"");
    legend_w = std::max(legend_w, text_width_px(t, kFont));
    ly += 20;
  };
  legend_head("policy (colour)");
  for (std::size_t i = 0; i < policies.size(); ++i) {
    body << "<rect x=\"" << at(legend_x) << "\" y=\"" << at(ly - 10) << "\" width=\"12\" height=\"12\" fill=\"" << kPalette[i % std::size(kPalette)] << "\"/>\n";
    body << text(legend_x + 20, ly, policies[i]);
    legend_w = std::max(legend_w, 20 + text_width_px(policies[i], kFont));
    ly += 18;
  }
  ly += 10;
  legend_head("variant (shape)");
  for (std::size_t i = 0; i < variants.size(); ++i) {
    body << marker(kShapes[i % kShapes.size()], legend_x + 6, ly - 4, 5, "fill=\"#555\" stroke=\"#555\" stroke-width=\"1.5\"");
    body << text(legend_x + 20, ly, variants[i]);
    legend_w = std::max(legend_w, 20 + text_width_px(variants[i], kFont));
    ly += 18;
  }
  ly += 10;
  body << marker(Shape::kCircle, legend_x + 6, ly - 4, 5, "fill=\"white\" stroke=\"#555\" stroke-width=\"2\"");
  body << text(legend_x + 20, ly, "hollow: some runs hang");
  legend_w = std::max(legend_w, 20 + text_width_px("hollow: some runs hang", kFont));
  ly += 18;

  // The table: a row per point.
  const std::vector<std::string> head = {"#", "", "policy / variant", "p99 to schedule (ms)", "KV discarded (MiB/run)", "hang rate"};
  std::vector<std::vector<std::string>> table;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    const int x_dec = p.x_ms < 10 ? 2 : (p.x_ms < 1000 ? 1 : 0);
    table.push_back({std::to_string(i + 1), "", p.policy + " / " + p.variant, fmt(p.x_ms, x_dec), fmt(p.y_mib, p.y_mib < 10 ? 2 : 1),
                     fmt(100.0 * static_cast<double>(p.hangs) / static_cast<double>(p.runs), 1) + "% (" + std::to_string(p.hangs) + "/" +
                         std::to_string(p.runs) + ")"});
  }
  std::vector<double> col_x(head.size());
  double tx = kPad + 8;
  for (std::size_t c = 0; c < head.size(); ++c) {
    double w = c == 1 ? 16 : text_width_px(head[c], 11);
    for (const auto& row : table) w = std::max(w, text_width_px(row[c], 11));
    col_x[c] = c == 0 || c >= 3 ? tx + w : tx;  // numbers right-aligned: the column's right edge
    tx += w + 22;
  }
  const double table_right = tx;
  const double table_y = plot.y1 + 72;
  for (std::size_t c = 0; c < head.size(); ++c) {
    body << text(col_x[c], table_y, head[c], font_size(11) + " font-weight=\"bold\" fill=\"#444\"" + (c == 0 || c >= 3 ? " text-anchor=\"end\"" : ""));
  }
  body << "<line x1=\"" << at(kPad + 4) << "\" y1=\"" << at(table_y + 5) << "\" x2=\"" << at(table_right - 18) << "\" y2=\"" << at(table_y + 5)
       << "\" stroke=\"#bbb\"/>\n";
  for (std::size_t r = 0; r < table.size(); ++r) {
    const double y = table_y + 18 * static_cast<double>(r + 1);
    const Point& p = points[r];
    for (std::size_t c = 0; c < head.size(); ++c) {
      if (c == 1) {
        const char* colour = kPalette[policy_of(p) % std::size(kPalette)];
        body << marker(kShapes[variant_of(p) % kShapes.size()], col_x[c] + 6, y - 4, 5,
                       std::string("fill=\"") + (p.hangs > 0 ? "white" : colour) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"");
        continue;
      }
      body << text(col_x[c], y, table[r][c], font_size(11) + (c == 0 || c >= 3 ? " text-anchor=\"end\"" : ""));
    }
  }
  const double height = std::max(table_y + 18 * static_cast<double>(table.size()) + kPad + 4, ly + kPad);
  const double width = std::max({legend_x + legend_w + kPad, table_right + kPad, kPad + text_width_px(title, kTitleFont), kPad + text_width_px(subtitle, kFont)});
  s << svg_open(width, height);
  s << text(kPad, 24, title, font_size(kTitleFont) + " font-weight=\"bold\"");
  s << text(kPad, 44, subtitle, "fill=\"#555\"");
  s << body.str();
  s << "</svg>\n";
  return s.str();
}

}  // namespace hcsim
