#include "tools/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>

#include "sim/run_metrics.h"
#include "sim/seed_sweep.h"

namespace hcsim {

namespace {

using json = nlohmann::json;

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

std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string filters_text(const RowFilters& filters) {
  std::string s;
  for (const auto& [f, v] : filters) s += (s.empty() ? "" : ", ") + f + " = " + v;
  return s.empty() ? "all rows" : s;
}

// White to red by hang rate.
std::string heat_color(double rate) {
  const int g = static_cast<int>(std::lround(255.0 * (1.0 - rate)));
  return "rgb(255," + std::to_string(g) + "," + std::to_string(g) + ")";
}

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"};

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
  constexpr int kCellW = 96, kCellH = 40, kLeft = 200, kTop = 70;
  const int width = kLeft + kCellW * static_cast<int>(xs.size()) + 30;
  const int height = kTop + kCellH * static_cast<int>(ys.size()) + 70;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"10\" y=\"22\" font-size=\"15\">Hang rate by " << escape(x_field) << " and " << escape(y_field) << "</text>\n";
  s << "<text x=\"10\" y=\"42\" fill=\"#555\">" << escape(filters_text(filters)) << "; " << kept.size()
    << " runs; cell: hang rate [95% Wilson interval], runs</text>\n";
  for (std::size_t yi = 0; yi < ys.size(); ++yi) {
    const int y = kTop + kCellH * static_cast<int>(yi);
    s << "<text x=\"" << kLeft - 8 << "\" y=\"" << y + kCellH / 2 + 4 << "\" text-anchor=\"end\">" << escape(ys[yi]) << "</text>\n";
    for (std::size_t xi = 0; xi < xs.size(); ++xi) {
      const int x = kLeft + kCellW * static_cast<int>(xi);
      auto it = cells.find({xs[xi], ys[yi]});
      if (it == cells.end()) {
        s << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << kCellW << "\" height=\"" << kCellH << "\" fill=\"#eee\" stroke=\"white\"/>\n";
        continue;
      }
      const auto [hangs, runs] = it->second;
      const double rate = static_cast<double>(hangs) / static_cast<double>(runs);
      const Interval ci = wilson_interval(hangs, runs);
      s << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << kCellW << "\" height=\"" << kCellH << "\" fill=\"" << heat_color(rate)
        << "\" stroke=\"white\"><title>" << escape(xs[xi]) << ", " << escape(ys[yi]) << ": " << hangs << " of " << runs << " hang</title></rect>\n";
      s << "<text x=\"" << x + kCellW / 2 << "\" y=\"" << y + 17 << "\" text-anchor=\"middle\">" << fmt(100.0 * rate, 1) << "%</text>\n";
      s << "<text x=\"" << x + kCellW / 2 << "\" y=\"" << y + 32 << "\" text-anchor=\"middle\" font-size=\"9\" fill=\"#333\">[" << fmt(100.0 * ci.low, 0)
        << "-" << fmt(100.0 * ci.high, 0) << "] n=" << runs << "</text>\n";
    }
  }
  const int label_y = kTop + kCellH * static_cast<int>(ys.size()) + 18;
  for (std::size_t xi = 0; xi < xs.size(); ++xi) {
    s << "<text x=\"" << kLeft + kCellW * static_cast<int>(xi) + kCellW / 2 << "\" y=\"" << label_y << "\" text-anchor=\"middle\">" << escape(xs[xi])
      << "</text>\n";
  }
  s << "<text x=\"" << kLeft + kCellW * static_cast<int>(xs.size()) / 2 << "\" y=\"" << label_y + 22 << "\" text-anchor=\"middle\" fill=\"#555\">"
    << escape(x_field) << "</text>\n";
  s << "</svg>\n";
  return s.str();
}

std::string tradeoff_svg(const SweepRows& rows, const RowFilters& filters) {
  const auto kept = kept_rows(rows, filters);
  struct Point {
    std::string policy, variant;
    std::vector<std::int64_t> p99_us;
    std::int64_t discarded_bytes = 0, runs = 0, hangs = 0;
  };
  std::vector<Point> points;
  std::vector<std::string> policies;
  for (const json* r : kept) {
    const std::string policy = field_of(*r, "policy"), variant = field_of(*r, "variant");
    auto it = std::find_if(points.begin(), points.end(), [&](const Point& p) { return p.policy == policy && p.variant == variant; });
    if (it == points.end()) {
      points.push_back({policy, variant, {}, 0, 0, 0});
      it = points.end() - 1;
    }
    if (std::find(policies.begin(), policies.end(), policy) == policies.end()) policies.push_back(policy);
    if (r->value("scheduled", std::int64_t{0}) > 0) it->p99_us.push_back(r->value("sched_p99_us", std::int64_t{0}));
    it->discarded_bytes += r->value("kv_bytes_discarded", std::int64_t{0});
    it->hangs += r->value("hang", false) ? 1 : 0;
    ++it->runs;
  }
  std::vector<double> xs, ys;
  for (Point& p : points) {
    xs.push_back(static_cast<double>(percentile(p.p99_us, 99)) / 1e3);
    ys.push_back(static_cast<double>(p.discarded_bytes) / static_cast<double>(p.runs) / (1 << 20));
  }
  const double x_max = std::max(1e-9, *std::max_element(xs.begin(), xs.end())) * 1.15;
  const double y_max = std::max(1e-9, *std::max_element(ys.begin(), ys.end())) * 1.15;
  constexpr int kW = 720, kH = 460, kLeft = 80, kRight = 200, kTop = 60, kBottom = 60;
  const double plot_w = kW - kLeft - kRight, plot_h = kH - kTop - kBottom;
  auto px = [&](double x) { return kLeft + plot_w * x / x_max; };
  auto py = [&](double y) { return kTop + plot_h * (1.0 - y / y_max); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"10\" y=\"22\" font-size=\"15\">Time to schedule against KV read then discarded, per policy and variant</text>\n";
  s << "<text x=\"10\" y=\"42\" fill=\"#555\">" << escape(filters_text(filters)) << "; " << kept.size() << " runs; a hollow mark: some runs hang</text>\n";
  s << "<line x1=\"" << kLeft << "\" y1=\"" << kTop + plot_h << "\" x2=\"" << kLeft + plot_w << "\" y2=\"" << kTop + plot_h << "\" stroke=\"black\"/>\n";
  s << "<line x1=\"" << kLeft << "\" y1=\"" << kTop << "\" x2=\"" << kLeft << "\" y2=\"" << kTop + plot_h << "\" stroke=\"black\"/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double xv = x_max * t / 4, yv = y_max * t / 4;
    s << "<text x=\"" << px(xv) << "\" y=\"" << kTop + plot_h + 16 << "\" text-anchor=\"middle\">" << fmt(xv, 1) << "</text>\n";
    s << "<text x=\"" << kLeft - 6 << "\" y=\"" << py(yv) + 4 << "\" text-anchor=\"end\">" << fmt(yv, 1) << "</text>\n";
  }
  s << "<text x=\"" << kLeft + plot_w / 2 << "\" y=\"" << kH - 14 << "\" text-anchor=\"middle\">time to schedule, p99 over runs (ms)</text>\n";
  s << "<text x=\"18\" y=\"" << kTop + plot_h / 2 << "\" transform=\"rotate(-90 18 " << kTop + plot_h / 2
    << ")\" text-anchor=\"middle\">KV read then discarded (MiB per run)</text>\n";
  std::vector<std::pair<double, double>> labels;  // placed label corners: coinciding points stack their labels
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    double label_x = px(xs[i]) + 9, label_y = py(ys[i]) - 6;
    for (std::size_t tries = 0; tries < points.size(); ++tries) {
      const bool taken = std::any_of(labels.begin(), labels.end(), [&](const auto& l) { return std::abs(l.first - label_x) < 60 && std::abs(l.second - label_y) < 11; });
      if (!taken) break;
      label_y += 12;
    }
    labels.emplace_back(label_x, label_y);
    const auto c = static_cast<std::size_t>(std::find(policies.begin(), policies.end(), p.policy) - policies.begin()) % std::size(kPalette);
    const bool hangs = p.hangs > 0;
    s << "<circle cx=\"" << px(xs[i]) << "\" cy=\"" << py(ys[i]) << "\" r=\"6\" fill=\"" << (hangs ? "white" : kPalette[c]) << "\" stroke=\"" << kPalette[c]
      << "\" stroke-width=\"2\"><title>" << escape(p.policy) << " / " << escape(p.variant) << ": " << p.hangs << " of " << p.runs << " hang</title></circle>\n";
    s << "<text x=\"" << label_x << "\" y=\"" << label_y << "\" font-size=\"10\" fill=\"" << kPalette[c] << "\">" << escape(p.variant) << "</text>\n";
  }
  for (std::size_t i = 0; i < policies.size(); ++i) {
    const int y = kTop + 10 + 20 * static_cast<int>(i);
    s << "<circle cx=\"" << kW - kRight + 30 << "\" cy=\"" << y << "\" r=\"6\" fill=\"" << kPalette[i % std::size(kPalette)] << "\"/>\n";
    s << "<text x=\"" << kW - kRight + 42 << "\" y=\"" << y + 4 << "\">" << escape(policies[i]) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace hcsim
