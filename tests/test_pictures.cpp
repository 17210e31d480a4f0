// Pictures that read at a glance: the heat map and the trade-off plot lay out their text without
// overlap (estimated as characters times font size), mark every cell's percentage and carry a
// colour legend; the trade-off goes logarithmic where values span decades and gives each variant
// its own marker shape; the wait-for graph boxes each rank, folds idle actors unless asked, and
// draws the cycle or the culprit red.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/cat.h"
#include "run/diagnosis.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "run/wait_for_graph.h"
#include "tools/plot.h"
#include "tools/sweep.h"

using namespace hcsim;
using json = nlohmann::json;

namespace {

// ---- sweep rows, as read_sweep_rows gives them ----

struct RowSpec {
  std::string x;  // the value of the axis "/delays/0"
  std::string policy;
  std::string variant;
  bool hang = false;
  std::int64_t sched_p99_us = 0;
  std::int64_t kv_bytes_discarded = 0;
};

json row(const RowSpec& r, std::int64_t run) {
  return json{{"run", run},
              {"seed", run},
              {"axes", {{"/delays/0", json{{"name", r.x}}}, {"/policy/name", r.policy}, {"variant", r.variant}}},
              {"variant", r.variant},
              {"policy", r.policy},
              {"tp", 2},
              {"hang", r.hang},
              {"scheduled", 4},
              {"sched_p99_us", r.sched_p99_us},
              {"kv_bytes_discarded", r.kv_bytes_discarded}};
}

SweepRows rows_of(const std::vector<RowSpec>& specs) {
  SweepRows rows;
  rows.header = json{{"format", "hcsim-sweep"}, {"runs", specs.size()}};
  for (std::size_t i = 0; i < specs.size(); ++i) rows.rows.push_back(row(specs[i], static_cast<std::int64_t>(i)));
  return rows;
}

// Every (x, variant) pair, `runs` runs each, the first `hangs(x, v)` of them hanging.
SweepRows heat_rows(const std::vector<std::string>& xs, const std::vector<std::string>& variants, int runs) {
  std::vector<RowSpec> specs;
  for (std::size_t xi = 0; xi < xs.size(); ++xi) {
    for (std::size_t vi = 0; vi < variants.size(); ++vi) {
      const int hangs = static_cast<int>((xi * 3 + vi * 5) % static_cast<std::size_t>(runs + 1));
      for (int r = 0; r < runs; ++r) specs.push_back({xs[xi], "timeout", variants[vi], r < hangs, 1000, 0});
    }
  }
  return rows_of(specs);
}

// ---- the text of an SVG, as boxes ----

struct Vec {
  double x = 0, y = 0;
};

// A text element's estimated outline: a rectangle, rotated with the text.
struct TextBox {
  std::string content;
  std::array<Vec, 4> corners;
};

std::string attr(const std::string& attrs, const std::string& name) {
  const std::regex re("(?:^|\\s)" + name + "=\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(attrs, m, re) ? m[1].str() : "";
}

std::string unescaped(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&amp;", "&"}}) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  }
  return s;
}

std::vector<TextBox> text_boxes(const std::string& svg) {
  std::vector<TextBox> out;
  const std::regex text_re("<text([^>]*)>([^<]*)</text>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), text_re); it != std::sregex_iterator(); ++it) {
    const std::string attrs = (*it)[1].str();
    const std::string content = unescaped((*it)[2].str());
    const double x = std::stod(attr(attrs, "x")), y = std::stod(attr(attrs, "y"));
    const std::string size = attr(attrs, "font-size");
    const double font = size.empty() ? 12.0 : std::stod(size);
    const double w = text_width_px(content, font);
    const std::string anchor = attr(attrs, "text-anchor");
    const double x0 = anchor == "end" ? x - w : anchor == "middle" ? x - w / 2 : x;
    // Ascent 0.8 em above the baseline, descent 0.2 em below.
    std::array<Vec, 4> c = {Vec{x0, y - 0.8 * font}, Vec{x0 + w, y - 0.8 * font}, Vec{x0 + w, y + 0.2 * font}, Vec{x0, y + 0.2 * font}};
    std::smatch m;
    const std::string transform = attr(attrs, "transform");
    if (std::regex_match(transform, m, std::regex("rotate\\(([-0-9.]+) ([-0-9.]+) ([-0-9.]+)\\)"))) {
      const double rad = std::stod(m[1].str()) * 3.14159265358979 / 180.0, cx = std::stod(m[2].str()), cy = std::stod(m[3].str());
      for (Vec& v : c) {
        const double dx = v.x - cx, dy = v.y - cy;
        v = {cx + dx * std::cos(rad) - dy * std::sin(rad), cy + dx * std::sin(rad) + dy * std::cos(rad)};
      }
    }
    out.push_back({content, c});
  }
  return out;
}

// Separating axis test of two convex quadrilaterals; touching is not overlapping.
bool overlap(const TextBox& a, const TextBox& b) {
  for (const TextBox* box : {&a, &b}) {
    for (std::size_t i = 0; i < 4; ++i) {
      const Vec p = box->corners[i], q = box->corners[(i + 1) % 4];
      const Vec n{q.y - p.y, p.x - q.x};
      double a_min = 1e18, a_max = -1e18, b_min = 1e18, b_max = -1e18;
      for (const Vec& v : a.corners) {
        a_min = std::min(a_min, v.x * n.x + v.y * n.y);
        a_max = std::max(a_max, v.x * n.x + v.y * n.y);
      }
      for (const Vec& v : b.corners) {
        b_min = std::min(b_min, v.x * n.x + v.y * n.y);
        b_max = std::max(b_max, v.x * n.x + v.y * n.y);
      }
      const double len = std::hypot(n.x, n.y);
      if (a_max <= b_min + 0.5 * len || b_max <= a_min + 0.5 * len) return false;
    }
  }
  return true;
}

// The first pair of overlapping text elements, as "A / B", or empty.
std::string first_overlap(const std::string& svg) {
  const std::vector<TextBox> boxes = text_boxes(svg);
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t j = i + 1; j < boxes.size(); ++j) {
      if (overlap(boxes[i], boxes[j])) return boxes[i].content + " / " + boxes[j].content;
    }
  }
  return "";
}

// The first text element reaching out of the picture, or empty.
std::string text_outside(const std::string& svg) {
  std::smatch m;
  REQUIRE(std::regex_search(svg, m, std::regex("<svg [^>]*width=\"([0-9]+)\" height=\"([0-9]+)\"")));
  const double w = std::stod(m[1].str()), h = std::stod(m[2].str());
  for (const TextBox& b : text_boxes(svg)) {
    for (const Vec& v : b.corners) {
      if (v.x < 0 || v.y < 0 || v.x > w || v.y > h) return b.content;
    }
  }
  return "";
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

std::vector<std::string> texts(const std::string& svg) {
  std::vector<std::string> out;
  for (const TextBox& b : text_boxes(svg)) out.push_back(b.content);
  return out;
}

// ---- wait-for graphs ----

class FakeLedger : public CollectiveLedger {
 public:
  std::map<std::pair<Group, std::uint64_t>, OpenCollective> open;
  const OpenCollective* oldest_open(Group g, std::uint64_t& seq) const override {
    for (const auto& [key, c] : open) {
      if (key.first == g) {
        seq = key.second;
        return &c;
      }
    }
    return nullptr;
  }
  const OpenCollective* find_open(Group g, std::uint64_t seq) const override {
    const auto it = open.find({g, seq});
    return it == open.end() ? nullptr : &it->second;
  }
  std::optional<MismatchPoint> first_mismatch() const override { return std::nullopt; }
  std::vector<Group> communicators() const override { return {Group::kTp, Group::kPrefetchTp}; }
  std::vector<int> members(Group) const override { return {0, 1}; }
};

ActorState in_collective(int rank, Group g, std::uint64_t seq, CollectiveOp op, std::int64_t size) {
  ActorState a;
  a.rank = rank;
  a.actor = g == Group::kTp ? ActorKind::kScheduler : ActorKind::kPrefetch;
  a.wait = WaitKind::kCollective;
  a.group = g;
  a.seq = seq;
  a.op = op;
  a.size = size;
  return a;
}

ActorState waiting(int rank, ActorKind actor, const std::string& signal, ActorKind producer) {
  ActorState a;
  a.rank = rank;
  a.actor = actor;
  a.wait = WaitKind::kSignal;
  a.signal_name = signal;
  a.producer = producer;
  return a;
}

// TP 8: every scheduler in tp_cpu_group seq 5, rank 3 with forward(2100), the others with
// all_reduce(MAX, 2); every rank's prefetch, io and backup wait for work.
struct Tp8Mismatch {
  Verdict verdict;
  FakeLedger ledger;
  Tp8Mismatch() {
    verdict.kind = HangKind::kCollectiveMismatch;
    verdict.headline = "collective mismatch: ranks entered different collectives at one sequence number";
    verdict.has_collective = true;
    verdict.group = Group::kTp;
    verdict.seq = 5;
    OpenCollective& c = ledger.open[{Group::kTp, 5}];
    c.mismatched = true;
    for (int r = 0; r < 8; ++r) {
      const CollectiveOp op = r == 3 ? CollectiveOp::kForward : CollectiveOp::kAllReduceMax;
      const std::int64_t size = r == 3 ? 2100 : 2;
      verdict.actors.push_back(in_collective(r, Group::kTp, 5, op, size));
      verdict.actors.push_back(waiting(r, ActorKind::kPrefetch, "prefetch_queue", ActorKind::kScheduler));
      verdict.actors.push_back(waiting(r, ActorKind::kIo, "prefetch_buffer", ActorKind::kPrefetch));
      verdict.actors.push_back(waiting(r, ActorKind::kBackup, "backup_queue", ActorKind::kScheduler));
      c.entries.push_back({r, op, size, 1'100'000});
      verdict.entered.push_back({r, op, size, 1'100'000});
    }
  }
};

// The DOT line of the edge from `from` to `to`, or empty.
std::string edge_line(const std::string& dot, const std::string& from, const std::string& to) {
  std::istringstream lines(dot);
  for (std::string l; std::getline(lines, l);) {
    if (l.find(cat("\"", from, "\" -> \"", to, "\"")) != std::string::npos) return l;
  }
  return "";
}

std::string node_line(const std::string& dot, const std::string& id) {
  std::istringstream lines(dot);
  for (std::string l; std::getline(lines, l);) {
    if (l.find(cat("\"", id, "\" [")) != std::string::npos) return l;
  }
  return "";
}

constexpr const char* kRed = "#d62728";

}  // namespace

TEST_CASE("pictures: a heat map with long names lays its labels out without overlap, with a legend and a percentage per cell") {
  const std::vector<std::string> xs = {"lognormal, median 1 ms", "lognormal, median 50 ms", "lognormal, median 500 ms", "lognormal, median 3 s"};
  const std::vector<std::string> variants = {"pre-fix", "seed-fix+sidecar-hit-sync+progress-check-in-break", "timeout-bounded~io-thread-restart",
                                             "all-fixes"};
  const SweepRows rows = heat_rows(xs, variants, 20);
  const std::string svg = hang_heatmap_svg(rows, "/delays/0", "variant", {{"policy", "timeout"}});
  CHECK(first_overlap(svg) == "");
  CHECK(text_outside(svg) == "");
  // The legend: a colour bar with 0%..100% ticks.
  CHECK_THAT(svg, Catch::Contains("<linearGradient id=\"heat\"") && Catch::Contains("class=\"legend\""));
  const std::vector<std::string> t = texts(svg);
  for (const char* tick : {"0%", "25%", "50%", "75%", "100%"}) CHECK(std::count(t.begin(), t.end(), tick) == 1);
  // A percentage in each of the 16 cells, each with its interval and run count.
  const auto is_rate = [](const std::string& s) { return std::regex_match(s, std::regex("[0-9]+\\.[0-9]%")); };
  CHECK(std::count_if(t.begin(), t.end(), is_rate) == 16);
  CHECK(std::count_if(t.begin(), t.end(), [](const std::string& s) { return std::regex_match(s, std::regex("\\[[0-9]+\u2013[0-9]+\\] n=20")); }) == 16);
  // The x values wrap under their columns rather than run into each other.
  CHECK(std::count(t.begin(), t.end(), "lognormal,") == 4);
  // Same rows, same bytes.
  CHECK(hang_heatmap_svg(rows, "/delays/0", "variant", {{"policy", "timeout"}}) == svg);
}

TEST_CASE("pictures: heat map labels too long to wrap slant, and longer ones become keys under the figure") {
  // No break in them: slanted at 45 degrees.
  const std::vector<std::string> slanted = {"uniform_us_100000_to_200000", "uniform_us_200000_to_400000", "uniform_us_400000_to_800000"};
  const std::string a = hang_heatmap_svg(heat_rows(slanted, {"pre-fix", "seed-fix"}, 5), "/delays/0", "variant", {});
  CHECK_THAT(a, Catch::Contains("rotate(-45"));
  CHECK(first_overlap(a) == "");
  CHECK(text_outside(a) == "");
  // JSON of a delay too long even slanted: keys X1.. with the values spelled out.
  std::vector<std::string> json_values;
  for (int i = 1; i <= 3; ++i) json_values.push_back(cat(R"({"kind":"lognormal","median_us":)", i * 100000, R"(,"sigma":1.5,"max_us":900000000000})"));
  const std::string b = hang_heatmap_svg(heat_rows(json_values, {"pre-fix"}, 5), "/delays/0", "variant", {});
  const std::vector<std::string> t = texts(b);
  CHECK(std::count(t.begin(), t.end(), "X1") == 1);
  CHECK(std::count(t.begin(), t.end(), cat("X2 = ", json_values[1])) == 1);
  CHECK(first_overlap(b) == "");
  CHECK(text_outside(b) == "");
}

TEST_CASE("pictures: the trade-off plot goes logarithmic over decades, with a shape per variant and a colour per policy") {
  // p99 from 1.1 ms to 25 s (over four decades), waste 0 or 88 MiB; coinciding points included.
  std::vector<RowSpec> specs;
  const std::vector<std::string> variants = {"pre-fix", "seed-fix", "timeout-bounded", "all-fixes"};
  for (const std::string policy : {"best_effort", "wait_complete", "timeout"}) {
    for (std::size_t v = 0; v < variants.size(); ++v) {
      const bool best = policy == "best_effort";
      const std::int64_t p99 = best ? 1120 : (v == 0 ? 1400 : (policy == "timeout" && v >= 2 ? 75000 : 25'700'000));
      for (int r = 0; r < 4; ++r) specs.push_back({"d", policy, variants[v], !best && v == 0 && r < 3, p99, best ? 92'160'000 : 0});
    }
  }
  const SweepRows rows = rows_of(specs);
  const std::string svg = tradeoff_svg(rows, {});
  CHECK_THAT(svg, Catch::Contains("p99 over runs (ms, log scale)"));
  const std::vector<std::string> t = texts(svg);
  for (const char* decade : {"1", "10", "100", "1000", "10000"}) CHECK(std::count(t.begin(), t.end(), decade) >= 1);
  // The waste axis holds zero and 88 MiB only: linear.
  CHECK_THAT(svg, Catch::Contains("(MiB per run)"));
  // One marker per point, its shape the variant's: four shapes, one per variant.
  std::map<std::string, std::set<std::string>> shapes_of_variant;
  const std::regex marker_re("class=\"marker-([a-z-]+)\"[^>]*><title>[^/]+ / ([^:]+):");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), marker_re); it != std::sregex_iterator(); ++it) {
    shapes_of_variant[(*it)[2].str()].insert((*it)[1].str());
  }
  REQUIRE(shapes_of_variant.size() == 4);
  std::set<std::string> shapes;
  for (const auto& [v, s] : shapes_of_variant) {
    CHECK(s.size() == 1);
    shapes.insert(*s.begin());
  }
  CHECK(shapes.size() == 4);
  // Colours by policy, in a legend; the point numbers and the table overlap nothing.
  CHECK_THAT(svg, Catch::Contains("policy (colour)") && Catch::Contains("variant (shape)"));
  CHECK(first_overlap(svg) == "");
  CHECK(text_outside(svg) == "");
  CHECK(tradeoff_svg(rows, {}) == svg);

  // Values within a decade and a half: linear.
  std::vector<RowSpec> near;
  for (const std::string policy : {"wait_complete", "timeout"}) near.push_back({"d", policy, "pre-fix", false, policy == "timeout" ? 3000 : 1000, 1 << 20});
  const std::string lin = tradeoff_svg(rows_of(near), {});
  CHECK_THAT(lin, !Catch::Contains("log scale"));
  CHECK(first_overlap(lin) == "");
}

TEST_CASE("pictures: a TP 8 wait-for graph boxes each rank, folds idle actors and marks the odd rank of a mismatch") {
  const Tp8Mismatch m;
  const std::string dot = wait_for_graph_dot(m.verdict, m.ledger);
  for (int r = 0; r < 8; ++r) CHECK(count(dot, cat("subgraph cluster_rank_", r, " {")) == 1);
  CHECK(count(dot, "subgraph cluster_rank_") == 8);
  // Prefetch, io and backup only wait for work from a scheduler: folded into a caption per rank.
  CHECK(node_line(dot, "rank 0 io").empty());
  CHECK(edge_line(dot, "rank 0 backup", "rank 0 scheduler").empty());
  CHECK(count(dot, "3 idle actors") == 8);
  CHECK_THAT(dot, Catch::Contains("prefetch, io, backup:<br/>waiting for work"));
  // One collective node; rank 3's entry is the odd one out, red, and labelled; the others are not.
  CHECK_THAT(node_line(dot, "tp_cpu_group seq 5"), Catch::Contains(kRed) && Catch::Contains("7 ranks: all_reduce(MAX, 2)") &&
                                                      Catch::Contains("rank 3: forward(2100)"));
  const std::string odd = edge_line(dot, "rank 3 scheduler", "tp_cpu_group seq 5");
  CHECK_THAT(odd, Catch::Contains("entered forward(2100)") && Catch::Contains(kRed));
  const std::string even = edge_line(dot, "rank 0 scheduler", "tp_cpu_group seq 5");
  REQUIRE_FALSE(even.empty());
  CHECK_THAT(even, !Catch::Contains(kRed) && !Catch::Contains("label="));
  CHECK_THAT(node_line(dot, "rank 3 scheduler"), Catch::Contains(kRed));
  CHECK_THAT(node_line(dot, "rank 4 scheduler"), !Catch::Contains(kRed));

  // Asked for every actor: all 32, no notes, the idle ones grey.
  const std::string all = wait_for_graph_dot(m.verdict, m.ledger, WaitForGraphOptions{.all_actors = true});
  CHECK(count(all, "subgraph cluster_rank_") == 8);
  CHECK_THAT(node_line(all, "rank 0 io"), Catch::Contains("#8c8c8c"));
  CHECK_FALSE(edge_line(all, "rank 0 backup", "rank 0 scheduler").empty());
  CHECK(count(all, "<br/>waiting for work") == 0);
  CHECK(wait_for_graph_dot(m.verdict, m.ledger) == dot);
}

TEST_CASE("pictures: a wait-for graph marks the rank that never came, a wait cycle and the L3 call that never returns") {
  SECTION("a missing rank: the collective waits on it, dashed and red") {
    Verdict v;
    v.kind = HangKind::kDeadlock;
    v.headline = "deadlock";
    v.has_collective = true;
    v.group = Group::kTp;
    v.seq = 0;
    v.actors = {in_collective(0, Group::kTp, 0, CollectiveOp::kAllReduceMax, 2), waiting(1, ActorKind::kScheduler, "work_queue", ActorKind::kIo)};
    FakeLedger l;
    l.open[{Group::kTp, 0}].entries.push_back({0, CollectiveOp::kAllReduceMax, 2, 0});
    const std::string dot = wait_for_graph_dot(v, l);
    const std::string e = edge_line(dot, "tp_cpu_group seq 0", "rank 1 scheduler");
    CHECK_THAT(e, Catch::Contains("has not entered seq 0") && Catch::Contains(kRed) && Catch::Contains("style=dashed"));
    CHECK_THAT(node_line(dot, "rank 1 scheduler"), Catch::Contains(kRed));
    CHECK_THAT(node_line(dot, "tp_cpu_group seq 0"), Catch::Contains("not entered: rank 1"));
  }
  SECTION("a cycle of signal waits: every edge on it red, the bystander folded") {
    Verdict v;
    v.kind = HangKind::kDeadlock;
    v.headline = "deadlock";
    v.actors = {waiting(0, ActorKind::kScheduler, "batch_done", ActorKind::kIo), waiting(0, ActorKind::kIo, "prefetch_buffer", ActorKind::kPrefetch),
                waiting(0, ActorKind::kPrefetch, "prefetch_queue", ActorKind::kScheduler),
                waiting(0, ActorKind::kBackup, "backup_queue", ActorKind::kScheduler)};
    const std::string dot = wait_for_graph_dot(v, FakeLedger{});
    CHECK_THAT(edge_line(dot, "rank 0 scheduler", "rank 0 io"), Catch::Contains(kRed));
    CHECK_THAT(edge_line(dot, "rank 0 io", "rank 0 prefetch"), Catch::Contains(kRed));
    CHECK_THAT(edge_line(dot, "rank 0 prefetch", "rank 0 scheduler"), Catch::Contains(kRed));
    CHECK(node_line(dot, "rank 0 backup").empty());
    CHECK_THAT(dot, Catch::Contains("1 idle actor<br/>backup: waiting for work"));
  }
  SECTION("a stall: the L3 call that never returns is red; sleeping schedulers fold away") {
    Verdict v;
    v.kind = HangKind::kStarvation;
    v.headline = "starvation";
    ActorState sleeping;
    sleeping.wait = WaitKind::kSleep;
    ActorState io;
    io.rank = 1;
    io.actor = ActorKind::kIo;
    io.wait = WaitKind::kStorage;
    io.storage_op = StorageOp::kHitQuery;
    io.never_completes = true;
    ActorState sleeping1 = sleeping;
    sleeping1.rank = 1;
    v.actors = {sleeping, sleeping1, io};
    const std::string dot = wait_for_graph_dot(v, FakeLedger{});
    CHECK_THAT(edge_line(dot, "rank 1 io", "L3 (rank 1)"), Catch::Contains("never completes") && Catch::Contains(kRed));
    CHECK(node_line(dot, "rank 0 scheduler").empty());
    CHECK_THAT(dot, Catch::Contains("1 idle actor\\nscheduler: sleeping") && Catch::Contains("1 idle actor<br/>scheduler: sleeping"));
    CHECK(count(dot, "subgraph cluster_rank_") == 2);  // rank 0 holds only a note of its idle actor
  }
}

TEST_CASE("pictures: the TP 8 registration divergence's wait-for graph, as simulated") {
  const RunResult r = simulate(load_scenario_file("scenarios/registration-divergence.json"), RunOptions{});
  REQUIRE(r.verdict.kind == HangKind::kCollectiveMismatch);
  CHECK(count(r.wait_for_dot(), "subgraph cluster_rank_") == 8);
  CHECK_THAT(r.wait_for_dot(), Catch::Contains(kRed) && Catch::Contains("idle actor"));
  CHECK_THAT(edge_line(r.wait_for_dot(), "rank 3 scheduler", "tp_cpu_group seq 5"), Catch::Contains("entered forward(2100)") && Catch::Contains(kRed));
}
