// Sweeps: every run of a grid (tools/sweep_grid.h), on all cores, one row per run appended to
// PREFIX.jsonl and PREFIX.csv in run order, so a results file depends only on the grid and the
// seeds, never on -j or on sharding. What the rows belong to (format, grid digest, seeds, axes,
// shard) is in PREFIX.grid.json, written first; every line of PREFIX.jsonl is a row
// (docs/sweep-format.md, results format 3). A sweep that was killed continues where its files end:
// rows are appended whole, a torn last row is cut off and redone, the two files are cut to the rows
// both hold. merge_sweeps() joins shards into the files the unsharded sweep would have written.
//
//   SweepConfig c{.grid = &grid, .out_prefix = "out/seed", .jobs = 2};
//   SweepStats st = run_sweep(c);           // out/seed.grid.json, out/seed.jsonl, out/seed.csv
//   st.summary.write(std::cout, "out/seed.summary.md");   // built as the rows were written
//
// Errors: a results file that is not one (another grid, another format, a device, garbage) throws
// ScenarioError naming the file (and line); an output that cannot be written, or a prefix another
// hcsim is writing, throws OutputError (tools/output_file.h) naming the file. Both are bad input to
// the command (exit code 2); a run that throws is an internal error (std::runtime_error).
#pragma once

#include <cstdint>
#include <cstdio>
#include <iosfwd>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/sweep_grid.h"

namespace hcsim {

// The results format PREFIX.grid.json names; readers refuse any other ("version").
inline constexpr int kSweepFormatVersion = 3;

struct SweepConfig {
  const SweepGrid* grid = nullptr;
  std::string out_prefix;
  int jobs = 1;
  int shard = 1;                  // 1-based, of `shards`
  int shards = 1;
  bool wall_time = false;         // add each run's wall time (the files then differ run to run)
  std::FILE* progress = nullptr;  // a bar when it is a terminal, a line every ten seconds otherwise
};

// The summary's table and line of a row: (policy / variant) and its grid point's other axes.
struct SummaryKey {
  std::string table;    // "policy / variant"
  std::string variant;
  std::string point;    // "name = label, ..." by axis name, or "(base)"
};

// What the summary adds up of one run.
struct SummaryOutcome {
  bool hang = false;
  std::string verdict;  // its kind, when it hangs
  std::int64_t scheduled = 0, starved = 0, sched_p50_us = 0, sched_p99_us = 0, l3_lost_tokens = 0, kv_bytes_discarded = 0;
};

// A table per (policy, variant): one line per grid point with its hang rate, 95% Wilson interval,
// time to schedule and waste. Rows are added in run order (tables and lines keep the order they
// first appear in); a sweep adds each as it writes it, a merge or `hcsim summary` as it reads it.
class SweepSummary {
 public:
  explicit SweepSummary(std::string grid_digest = "?") : grid_digest_(std::move(grid_digest)) {}
  void add(const SummaryKey& key, const SummaryOutcome& outcome);
  void add_row(const nlohmann::json& row);  // a row of a results file
  std::int64_t runs() const { return runs_; }
  // Printed to `out` and written as Markdown to `markdown_path` (atomically; OutputError if it
  // cannot be; "" writes none).
  void write(std::ostream& out, const std::string& markdown_path) const;

 private:
  struct Line {
    std::int64_t runs = 0, hangs = 0, starved = 0, l3_lost_tokens = 0, kv_bytes_discarded = 0;
    std::map<std::string, std::int64_t> kinds;
    std::vector<std::int64_t> p50_us, p99_us;
  };
  struct Table {
    std::string variant;
    std::vector<std::pair<std::string, Line>> lines;  // by point, in first-appearance order
  };
  std::string grid_digest_;
  std::int64_t runs_ = 0;
  std::vector<std::pair<std::string, Table>> tables_;           // in first-appearance order
  std::map<std::pair<std::string, std::string>, std::pair<std::size_t, std::size_t>> where_;  // (table, point) -> its line
};

struct SweepStats {
  std::int64_t shard_runs = 0;    // runs this shard owns
  std::int64_t resumed = 0;       // already in the files
  std::int64_t ran = 0;
  double wall_s = 0;
  SweepSummary summary;  // every row of the shard's files, the resumed ones too
};

// Holds PREFIX.lock (OutputLock) while it runs: a second sweep or merge onto the same prefix is
// refused with OutputError naming the holder. Throws ScenarioError naming the file when existing
// outputs belong to another grid, shard or results format; OutputError when a write fails (the
// files then end in whole rows, and the same command resumes).
SweepStats run_sweep(const SweepConfig& config);

// The rows of a results file PREFIX.jsonl and its header PREFIX.grid.json (a torn last row is
// ignored). Regular files only, each line at most 8 MiB, no more rows than the grid has runs.
struct SweepRows {
  nlohmann::json header;          // PREFIX.grid.json
  std::vector<nlohmann::json> rows;
};
SweepRows read_sweep_rows(const std::string& jsonl_path);

// PREFIX.grid.json for a PREFIX.jsonl ("x.jsonl" -> "x.grid.json"; a name without .jsonl gets
// ".grid.json" appended).
std::string sweep_grid_header_path(const std::string& jsonl_path);

// Joins shard outputs (PREFIX of each) into OUT.grid.json, OUT.jsonl and OUT.csv, written whole
// (each atomically); refuses shards of different grids, duplicated runs and missing runs, naming
// them, a shard whose sweep is still running, and an OUT that is one of the shards (same path or
// same files). Holds OUT.lock while it runs.
void merge_sweeps(const std::vector<std::string>& shard_prefixes, const std::string& out_prefix);

// The summary of a results file's rows (see SweepSummary).
SweepSummary summary_of(const SweepRows& rows);

}  // namespace hcsim
