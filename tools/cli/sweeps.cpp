#include "tools/cli/cli.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tools/sweep_grid.h"
#include "tools/plot.h"
#include "tools/sweep.h"

namespace hcsim::cli {

namespace {

std::pair<int, int> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  int k = 0, n = 0;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    std::size_t used = 0;
    k = std::stoi(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("K");
    n = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("N");
  } catch (const std::exception&) {
    throw BadInput("--shard: expected K/N, e.g. 2/4; got '" + text + "'");
  }
  if (n < 1 || n > 100000 || k < 1 || k > n) throw BadInput("--shard: expected 1 <= K <= N <= 100000; got '" + text + "'");
  return {k, n};
}

}  // namespace

int cmd_sweep(const Args& args) {
  std::string grid_path, out, shard = "1/1";
  int jobs = 0;
  po::options_description d("sweep options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("grid", po::value(&grid_path)->value_name("GRID"), "grid JSON file (docs/sweep-format.md)")
      ("out,o", po::value(&out)->value_name("PREFIX"), "write PREFIX.jsonl, PREFIX.grid.json, PREFIX.csv and PREFIX.summary.md (default: results/GRID_NAME)")
      ("jobs,j", po::value(&jobs)->default_value(0)->value_name("N"), "threads; 0: all cores")
      ("shard", po::value(&shard)->default_value("1/1")->value_name("K/N"), "run only shard K of N: the runs whose number is K-1 modulo N")
      ("wall-time", "add each run's wall time to the rows (the files then differ from run to run)")
      ("quiet,q", "no progress");
  po::positional_options_description pos;
  pos.add("grid", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim sweep GRID.json [options]\n\n"
             "Runs every point of GRID (axes: the variant, or any scenario field by JSON pointer) for every seed,\n"
             "on all cores, and appends one row per run, in run order, to PREFIX.jsonl and PREFIX.csv: the\n"
             "parameters, the verdict and hang kind, broken invariants, time from arrival to schedule (p50, p99),\n"
             "tokens loaded from L3, agreed L3 tokens not published (l3_lost_tokens), KV bytes read then discarded, starved\n"
             "requests, events. The files depend only on the grid and seeds, not on -j or --shard. A killed sweep\n"
             "started again with the same --out continues where its files end. At the end, a table per (policy,\n"
             "variant) with hang rates and 95% Wilson intervals, also written as PREFIX.summary.md.\n\n"
             "examples:\n"
             "  ./build/hcsim sweep grids/seed-family.json -o results/seed-family\n"
             "  ./build/hcsim sweep grids/seed-family.json -o results/shard-2 --shard 2/4     # one of four machines\n"
             "  ./build/hcsim merge -o results/seed-family results/shard-1 results/shard-2 results/shard-3 results/shard-4\n")) {
    return kExitOk;
  }
  if (grid_path.empty()) throw BadInput("sweep: missing GRID (see 'hcsim sweep --help')");
  if (jobs < 0 || jobs > 1024) throw BadInput("--jobs: expected 0 to 1024");
  // A large grid takes a while to expand: say so, with the rate, rather than sit silent.
  std::optional<Progress> expanding;
  const SweepGrid grid = load_sweep_grid(grid_path, [&](std::int64_t done, std::int64_t points) {
    if (!expanding) expanding.emplace(vm.count("quiet") ? nullptr : stderr, points, "points", "expanding the grid");
    expanding->update(done);
  });
  if (expanding) expanding->finish();
  if (out.empty()) out = default_output(std::filesystem::path(grid_path).stem().string());
  if (out == "-") throw BadInput("sweep: -o takes a PREFIX for four files (.jsonl, .grid.json, .csv, .summary.md), not '-'");
  ensure_parent_folder(out);
  SweepConfig c;
  c.grid = &grid;
  c.out_prefix = out;
  c.jobs = jobs > 0 ? jobs : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::tie(c.shard, c.shards) = parse_shard(shard);
  c.wall_time = vm.count("wall-time") > 0;
  c.progress = vm.count("quiet") ? nullptr : stderr;
  const bool quiet = vm.count("quiet") > 0;
  if (!quiet) std::fprintf(stderr, "sweep: %zu point(s) x %lld seed(s) = %lld runs%s, %d thread(s) -> %s.jsonl, .grid.json, .csv\n", grid.points.size(),
               static_cast<long long>(grid.seeds), static_cast<long long>(grid.runs()), c.shards > 1 ? (", shard " + shard).c_str() : "", c.jobs,
               out.c_str());
  const SweepStats st = run_sweep(c);
  if (!quiet && st.resumed > 0) std::fprintf(stderr, "sweep: %lld run(s) were already in the files; ran the other %lld\n", static_cast<long long>(st.resumed),
                                   static_cast<long long>(st.ran));
  if (!quiet) std::fprintf(stderr, "sweep: %lld run(s) in %.2f s: %.0f runs/s, %.0f runs/min\n", static_cast<long long>(st.ran), st.wall_s,
               st.wall_s > 0 ? static_cast<double>(st.ran) / st.wall_s : 0.0, st.wall_s > 0 ? 60.0 * static_cast<double>(st.ran) / st.wall_s : 0.0);
  if (c.shards == 1) st.summary.write(std::cout, out + ".summary.md");
  return kExitOk;
}

int cmd_merge(const Args& args) {
  std::vector<std::string> shards;
  std::string out;
  po::options_description d("merge options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("shard", po::value(&shards)->composing()->value_name("PREFIX"), "shard output PREFIX (its .jsonl and .csv)")
      ("out,o", po::value(&out)->value_name("PREFIX"), "write PREFIX.jsonl, PREFIX.grid.json, PREFIX.csv and PREFIX.summary.md");
  po::positional_options_description pos;
  pos.add("shard", -1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim merge -o PREFIX SHARD_PREFIX...\n\n"
             "Joins the outputs of 'hcsim sweep --shard K/N' into the files the unsharded sweep writes, byte for\n"
             "byte. Refuses shards of different grids, a run in two shards, and runs in none (a shard missing or\n"
             "unfinished: rerun it, it resumes).\n\n"
             "example:\n"
             "  ./build/hcsim merge -o results/seed-family results/shard-1 results/shard-2 results/shard-3 results/shard-4\n")) {
    return kExitOk;
  }
  if (out.empty()) throw BadInput("merge: missing -o PREFIX (see 'hcsim merge --help')");
  if (shards.empty()) throw BadInput("merge: no shard outputs given (see 'hcsim merge --help')");
  if (out == "-") throw BadInput("merge: -o takes a PREFIX for four files (.jsonl, .grid.json, .csv, .summary.md), not '-'");
  ensure_parent_folder(out);
  merge_sweeps(shards, out);  // a bad shard or output names its file
  summary_of(read_sweep_rows(out + ".jsonl")).write(std::cout, out + ".summary.md");
  return kExitOk;
}

int cmd_plot(const Args& args) {
  std::string results, out;
  std::vector<std::string> heatmap, where;
  po::options_description d("plot options", kHelpColumns, kHelpColumns / 2);
  d.add_options()("help,h", "show this help")("results", po::value(&results)->value_name("RESULTS"), "a sweep's PREFIX.jsonl")
      ("heatmap", po::value(&heatmap)->multitoken()->value_name("X Y"), "hang rate over two fields (axis names, or policy, variant, tp, page_size)")
      ("tradeoff", "time to schedule against KV read then discarded, a point per (policy, variant)")
      ("where", po::value(&where)->composing()->value_name("FIELD=VALUE"), "only rows with this value (repeatable)")
      ("out,o", po::value(&out)->value_name("FILE"), "the SVG file to write ('-': standard output)");
  po::positional_options_description pos;
  pos.add("results", 1);
  po::variables_map vm;
  if (!parse(args, d, &pos, vm,
             "usage: hcsim plot RESULTS.jsonl (--heatmap X Y | --tradeoff) [--where FIELD=VALUE]... -o FILE.svg\n\n"
             "Draws a figure from a sweep's results as a self-contained SVG. A heatmap shows the hang rate, its 95%\n"
             "Wilson interval and the run count per pair of values of two fields, other fields pooled unless fixed\n"
             "with --where. The trade-off plot puts each (policy, variant) at its p99 time to schedule and its KV\n"
             "bytes read then discarded per run; a hollow mark means some of its runs hang.\n\n"
             "examples:\n"
             "  ./build/hcsim plot results/seed-family.jsonl --heatmap /delays/0/fixed_us variant --where policy=timeout -o results/hang.svg\n"
             "  ./build/hcsim plot results/seed-family.jsonl --tradeoff --where /tp=2 -o results/tradeoff.svg\n")) {
    return kExitOk;
  }
  if (results.empty()) throw BadInput("plot: missing RESULTS (see 'hcsim plot --help')");
  if (out.empty()) throw BadInput("plot: missing -o FILE.svg");
  if (heatmap.empty() == (vm.count("tradeoff") == 0)) throw BadInput("plot: give one of --heatmap X Y and --tradeoff");
  if (!heatmap.empty() && heatmap.size() != 2) throw BadInput("--heatmap: expected two fields, X and Y");
  RowFilters filters;
  for (const std::string& w : where) {
    const auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0) throw BadInput("--where: expected FIELD=VALUE; got '" + w + "'");
    filters.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  const SweepRows rows = read_sweep_rows(results);  // a bad file names itself
  std::string svg;
  try {
    svg = heatmap.empty() ? tradeoff_svg(rows, filters) : hang_heatmap_svg(rows, heatmap[0], heatmap[1], filters);
  } catch (const std::runtime_error& e) {  // a field no row has
    throw BadInput("plot: " + results + ": " + e.what());
  }
  write_output(out, svg);
  if (out != "-") std::printf("wrote %s\n", out.c_str());
  return kExitOk;
}

}  // namespace hcsim::cli
