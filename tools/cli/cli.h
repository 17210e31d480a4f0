// What every hcsim command shares: exit codes, the bad-input error, the variant options, option
// parsing with --help, and the trace writer. One file per family of commands includes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "policy/fixes.h"
#include "policy/variant.h"
#include "run/scenario.h"
#include "sim/simulation.h"
#include "run/trace_file.h"
#include "tools/output_file.h"
#include "tools/progress.h"

namespace hcsim {
extern const char* const kSeedScenarioJson;
}

namespace hcsim::cli {

namespace po = boost::program_options;
using Args = std::vector<std::string>;

// Width of the option tables in --help.
inline constexpr unsigned kHelpColumns = 120;

constexpr int kExitOk = 0;
constexpr int kExitInternal = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitUnexpected = 3;
constexpr int kExitWatchdog = 4;
constexpr int kExitBoundReached = 5;  // explore: the search bound stopped it before an answer

// Bad input from the user: the message names the file or flag and the reason; exit code 2.
struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Options shared by run, scan and verify: which upstream code and policy to run.
struct VariantArgs {
  std::string preset;    // empty: not given
  std::string upstream;  // empty: not given; else a date or timeline commit, in place of a preset
  std::string fallback;  // the scenario's upstream_at, used when neither is given; then pre-fix
  std::vector<std::string> fixes;
  std::vector<std::string> without;
  std::string policy;
  std::optional<std::uint64_t> seed;
};

void add_variant_options(po::options_description& d, VariantArgs& a);
// --seed, checked against what a scenario's /seed accepts, so a seed hcsim prints reads back.
void take_seed(const po::variables_map& vm, VariantArgs& a);
Variant variant_of(const VariantArgs& a);
std::string variant_name(const VariantArgs& a);
// A variant as the options that select it (a recorded trace's, to replay it).
VariantArgs variant_args_of(const Variant& v);
RunOptions run_options(const VariantArgs& a);
// Why the model cannot run the scenario's model family at the variant: a date before it has code
// for the family, or a code path it does not run the family on; nullopt if it can.
std::optional<std::string> family_refusal(const VariantArgs& a, const Scenario& s);
// Throws family_refusal's reason as bad input.
void check_family_date(const VariantArgs& a, const Scenario& s);

// Parses `args`; prints `help_text` and the options and returns false on --help.
bool parse(const Args& args, po::options_description& visible, po::positional_options_description* pos, po::variables_map& vm,
           const char* help_text);

double wall_ms_since(std::chrono::steady_clock::time_point t0);

// The scenario library: every *.json under `dir`, in incident order (S1, S2, ..., S15), then name.
std::vector<Scenario> load_library(const std::string& dir);

// --jobs, or every core.
int jobs_option(const po::variables_map& vm);

// Where outputs go when the user names none: a folder git ignores, created on first use.
inline constexpr const char* kResultsFolder = "results";
std::string default_output(const std::string& file_name);

// A whole output file: its folder created, written to a temporary name and renamed; "-" is
// standard output. Failures throw OutputError (exit 2) naming the file.
void write_output(const std::string& path, std::string_view content);

// A --json answer, on standard output (or `out`); text that is not UTF-8 (a file name) is replaced.
std::string json_text(const nlohmann::json& j);
void print_json(const nlohmann::json& j, std::FILE* out = stdout);

// Where the report goes: standard output, or standard error when one of `outputs` is '-'. Two
// outputs on standard output, or one and a --json answer, are refused as bad input.
std::FILE* report_stream(std::initializer_list<std::string_view> outputs, bool json);

// A scenario's name as part of a default output file name: letters, digits, '.', '_' and '-' only,
// so a name like "../x" cannot leave results/.
std::string safe_file_name(const std::string& name);
template <typename T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

// How a reporting command answers: text or --json, with progress on standard error unless --quiet.
struct Output {
  bool json = false;
  bool quiet = false;
  std::FILE* progress_stream() const { return quiet ? nullptr : stderr; }
};
void add_output_options(po::options_description& d);  // --json, -q/--quiet
Output output_options(const po::variables_map& vm);

// --seeds N from `first`: every seed one a scenario's /seed accepts, so each reproduce line works.
void check_seed_range(std::uint64_t first, std::int64_t count);

// Whether `path` holds a recorded trace rather than a scenario (its header's shape, or .jsonl).
bool looks_like_trace(const std::string& path);
// A recorded trace given where a scenario belongs: bad input that names the command to use.
void refuse_trace(const std::string& path, const std::string& command, const std::string& use_instead);

// The run as a trace, with its scenario verbatim so a replay needs nothing else.
void record_trace(const std::string& out_path, const std::string& scenario_path, const Scenario& s, const RunResult& r,
                  const std::string& variant, const std::string& world = "sim", const std::vector<Decision>& decisions = {});
// The same, with the scenario's text at hand (a scenario read from standard input, or just written).
void record_trace_of_text(const std::string& out_path, const std::string& scenario_text, const Scenario& s, const RunResult& r,
                          const std::string& variant, const std::string& world = "sim", const std::vector<Decision>& decisions = {});

// The commands, by family: runs (cmd_runs.cpp), traces, search, GPU and sweeps.
int cmd_run(const Args& args);
int cmd_demo(const Args& args);
int cmd_scan(const Args& args);
int cmd_bisect(const Args& args);
int cmd_verify(const Args& args);
int cmd_list(const Args& args);
int cmd_fixes(const Args& args);
int cmd_replay(const Args& args);
int cmd_export(const Args& args);
int cmd_explore(const Args& args);
int cmd_shrink(const Args& args);
int cmd_gpu(const Args& args);
int cmd_validate(const Args& args);
int cmd_sweep(const Args& args);
int cmd_merge(const Args& args);
int cmd_plot(const Args& args);

}  // namespace hcsim::cli
