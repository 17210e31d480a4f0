// Sweeps: every run of a grid (sim/sweep_grid.h), on all cores, one row per run appended to
// PREFIX.jsonl and PREFIX.csv in run order, so a results file depends only on the grid and the
// seeds, never on -j or on sharding. A sweep that was killed continues where its files end: rows
// are appended whole, a torn last row is cut off and redone, the two files are cut to the rows
// both hold. merge_sweeps() joins shards into the file the unsharded sweep would have written.
//
//   SweepConfig c{.grid = &grid, .out_prefix = "out/seed", .jobs = 2};
//   SweepStats st = run_sweep(c);           // out/seed.jsonl, out/seed.csv
//   write_summary(read_sweep_rows("out/seed.jsonl"), std::cout, "out/seed.summary.md");
#pragma once

#include <cstdint>
#include <cstdio>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/sweep_grid.h"

namespace hcsim {

struct SweepConfig {
  const SweepGrid* grid = nullptr;
  std::string out_prefix;
  int jobs = 1;
  int shard = 1;                  // 1-based, of `shards`
  int shards = 1;
  bool wall_time = false;         // add each run's wall time (the files then differ run to run)
  std::FILE* progress = nullptr;  // a bar when it is a terminal, a line every few seconds otherwise
};

struct SweepStats {
  std::int64_t shard_runs = 0;    // runs this shard owns
  std::int64_t resumed = 0;       // already in the files
  std::int64_t ran = 0;
  double wall_s = 0;
};

// Throws std::runtime_error naming the file when existing outputs belong to another grid or shard.
SweepStats run_sweep(const SweepConfig& config);

// The rows of a results file (header checked; a torn last row is ignored).
struct SweepRows {
  nlohmann::json header;
  std::vector<nlohmann::json> rows;
};
SweepRows read_sweep_rows(const std::string& jsonl_path);

// Joins shard outputs (PREFIX of each) into OUT.jsonl and OUT.csv; refuses shards of different
// grids, duplicated runs and missing runs, naming them.
void merge_sweeps(const std::vector<std::string>& shard_prefixes, const std::string& out_prefix);

// A table per (policy, variant): one line per grid point with its hang rate, 95% Wilson interval,
// time to schedule and waste; printed to `out` and written as Markdown to `markdown_path`.
void write_summary(const SweepRows& rows, std::ostream& out, const std::string& markdown_path);

}  // namespace hcsim
