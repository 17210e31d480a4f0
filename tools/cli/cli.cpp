#include "tools/cli/cli.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <cctype>
#include <iterator>
#include <limits>
#include <thread>

#include "run/input_file.h"
#include "run/limits.h"
#include "tools/output_file.h"

namespace hcsim::cli {

void add_variant_options(po::options_description& d, VariantArgs& a) {
  d.add_options()
      ("preset", po::value(&a.preset)->value_name("PRESET"),
       "pre-fix | seed-fix | timeout-bounded | all-fixes (see 'hcsim fixes'); default: the scenario's upstream_at, else pre-fix")
      ("upstream", po::value(&a.upstream)->value_name("DATE"),
       "upstream as it was on a date (YYYY-MM-DD) or at a timeline commit (COMMIT, COMMIT^), in place of --preset")
      ("fix", po::value(&a.fixes)->composing()->value_name("FIX"), "add a named upstream fix to the preset (repeatable)")
      ("without", po::value(&a.without)->composing()->value_name("FIX"), "remove a fix from the preset, e.g. a baseline one (repeatable)")
      ("policy", po::value(&a.policy)->value_name("POLICY"), "override the scenario's policy: best_effort | wait_complete | timeout")
      ("seed", po::value<std::int64_t>()->value_name("N"), "random seed, 0 to 2^63-1 as a scenario's /seed (default: the scenario's)");
}

void take_seed(const po::variables_map& vm, VariantArgs& a) {
  if (!vm.count("seed")) return;
  const std::int64_t seed = vm["seed"].as<std::int64_t>();
  if (seed < 0) throw BadInput("--seed: expected 0 to 9223372036854775807, as a scenario's /seed; got " + std::to_string(seed));
  a.seed = static_cast<std::uint64_t>(seed);
}

// The flags' variant: the preset, every --fix, then every --without (the options do not keep their order).
Variant variant_of(const VariantArgs& a) {
  if (!a.preset.empty() && !a.upstream.empty()) throw BadInput("--preset and --upstream both say where to start; give one");
  if (!a.upstream.empty() && !looks_like_upstream_point(a.upstream)) {
    throw BadInput("--upstream: expected a date (YYYY-MM-DD) or a commit of the timeline ('hcsim fixes' lists them); got '" + a.upstream + "'");
  }
  if (looks_like_upstream_point(a.preset)) throw BadInput("--preset " + a.preset + ": a date or commit goes to --upstream");
  Variant v;
  v.preset = !a.upstream.empty() ? a.upstream : !a.preset.empty() ? a.preset : !a.fallback.empty() ? a.fallback : std::string(kDefaultPreset);
  for (const auto& f : a.fixes) v.steps.push_back({true, f});
  for (const auto& f : a.without) v.steps.push_back({false, f});
  return v;
}

std::string variant_name(const VariantArgs& a) { return variant_of(a).text(); }

VariantArgs variant_args_of(const Variant& v) {
  VariantArgs va;
  (looks_like_upstream_point(v.preset) ? va.upstream : va.preset) = v.preset;
  for (const auto& s : v.steps) (s.add ? va.fixes : va.without).push_back(s.fix);
  return va;
}

std::optional<std::string> family_refusal(const VariantArgs& a, const Scenario& s) {
  const std::string start = variant_of(a).preset;
  const bool cp = s.policy.attn_cp > 1;
  const std::string source = !a.upstream.empty() ? "--upstream "
                             : !a.preset.empty() ? "--preset "
                             : !a.fallback.empty() ? s.path + ": /upstream_at "
                                                   : std::string("the default preset ");
  if (before_model(start, s.policy.family, cp)) {
    return source + start + ": " + s.path + " is a " + model_scope(s.policy.family, cp) + " scenario, which the model has code for from " +
           std::string(model_since(s.policy.family, cp)) + " on";
  }
  if (!hybrid_swa_modelled(s.policy.family, code_path(s.policy.family, run_options(a).fixes))) {
    return source + start + ": " + s.path + " is a " + std::string(model_family_name(s.policy.family)) + " scenario: " +
           std::string(kHybridSwaBeforeUnified);
  }
  return std::nullopt;
}

void check_family_date(const VariantArgs& a, const Scenario& s) {
  if (const auto refused = family_refusal(a, s)) throw BadInput(*refused);
}

RunOptions run_options(const VariantArgs& a) {
  RunOptions o;
  std::string error;
  const auto variant = Variant::parse(variant_name(a), &error);
  if (!variant) throw BadInput(error + " (run 'hcsim fixes' for the names)");
  o.fixes = variant->fixes();
  if (!a.policy.empty()) {
    o.policy = policy_by_name(a.policy);
    if (!o.policy) throw BadInput("--policy: expected best_effort, wait_complete or timeout; got '" + a.policy + "'");
  }
  o.seed = a.seed;
  return o;
}

bool parse(const std::vector<std::string>& args, po::options_description& visible, po::positional_options_description* pos,
           po::variables_map& vm, const char* help_text) {
  po::options_description all;
  all.add(visible);
  po::command_line_parser p(args);
  p.options(all);
  if (pos) p.positional(*pos);
  po::store(p.run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << help_text << "\n" << visible << "\n";
    return false;
  }
  return true;
}

double wall_ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The scenario library: every *.json under `dir`, in incident order (S1, S2, ..., S15), then name.
std::vector<Scenario> load_library(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw BadInput(dir + ": not a directory of scenarios (run from the project root, or pass --scenarios DIR)");
  std::vector<Scenario> library;
  fs::directory_iterator entries(dir, ec);
  if (ec) throw BadInput(dir + ": cannot list the folder: " + ec.message());
  for (const auto& e : entries) {
    if (e.path().extension() == ".json") library.push_back(load_scenario_file(e.path().string()));
  }
  if (library.empty()) throw BadInput(dir + ": holds no *.json scenario");
  auto number = [](const Scenario& s) { return s.incident.size() > 1 ? std::atoi(s.incident.c_str() + 1) : 1 << 30; };
  std::sort(library.begin(), library.end(), [&](const Scenario& a, const Scenario& b) {
    return number(a) != number(b) ? number(a) < number(b) : a.name < b.name;
  });
  return library;
}


void write_output(const std::string& path, std::string_view content) {
  ensure_parent_folder(path);
  write_file_atomically(path, content);
}

std::string default_output(const std::string& file_name) { return std::string(kResultsFolder) + "/" + file_name; }

std::string json_text(const nlohmann::json& j) { return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"; }

void print_json(const nlohmann::json& j, std::FILE* out) {
  const std::string text = json_text(j);
  std::fwrite(text.data(), 1, text.size(), out);
}

std::FILE* report_stream(std::initializer_list<std::string_view> outputs, bool json) {
  int to_stdout = 0;
  for (const std::string_view o : outputs) to_stdout += o == "-" ? 1 : 0;
  if (to_stdout > 1) throw BadInput("two outputs are '-': standard output takes one; give the other a file name");
  if (to_stdout == 1 && json) throw BadInput("--json and an output '-' both want standard output; give the output a file name");
  return to_stdout == 1 ? stderr : stdout;
}

std::string safe_file_name(const std::string& name) {
  std::string out;
  for (const char c : name) out += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || (c == '.' && !out.empty()) ? c : '_';
  return out.empty() ? "scenario" : out;
}

void add_output_options(po::options_description& d) {
  d.add_options()("json", "print the answer as JSON on standard output")("quiet,q", "no progress on standard error");
}

Output output_options(const po::variables_map& vm) { return Output{vm.count("json") > 0, vm.count("quiet") > 0}; }

void check_seed_range(std::uint64_t first, std::int64_t count) {
  constexpr auto kSeedMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (count < 1 || count > 100'000'000) throw BadInput("--seeds: expected a count in [1, 1e8]; got " + std::to_string(count));
  if (first > kSeedMax - static_cast<std::uint64_t>(count - 1)) {
    throw BadInput("--seeds: seeds " + std::to_string(first) + " and on pass 2^63-1, the largest a scenario's /seed accepts; start lower with --seed");
  }
}

bool looks_like_trace(const std::string& path) {
  std::string head;
  if (path == "-") {
    head = read_bounded_file(path, kScenarioBytesMax, "a scenario is a description, not data").substr(0, 64 * 1024);
  } else {
    std::ifstream in(path, std::ios::binary);
    head.resize(64 * 1024);
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  }
  // The header's keys are sorted, so it opens with "aborts"; its "format" follows the arrivals.
  const std::string first_line = head.substr(0, head.find('\n'));
  return head.starts_with("{\"aborts\":") || first_line.find("\"format\":\"hcsim-trace\"") != std::string::npos ||
         path.ends_with(".jsonl");
}

void refuse_trace(const std::string& path, const std::string& command, const std::string& use_instead) {
  if (!looks_like_trace(path)) return;
  throw BadInput(path + ": a recorded trace, not a scenario: 'hcsim " + command + "' takes a scenario; use '" + use_instead + "'");
}

int jobs_option(const po::variables_map& vm) {
  const int jobs = vm.count("jobs") ? vm["jobs"].as<int>() : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  if (jobs < 1 || jobs > 1024) throw BadInput("--jobs: expected a thread count in [1, 1024]");
  return jobs;
}

// hcsim run --record: the run as a trace, with its scenario verbatim so a replay needs nothing else.
void record_trace(const std::string& out_path, const std::string& scenario_path, const Scenario& s, const RunResult& r,
                  const std::string& variant, const std::string& world, const std::vector<Decision>& decisions) {
  record_trace_of_text(out_path, read_bounded_file(scenario_path, kScenarioBytesMax, "a scenario is a description, not data"), s, r, variant, world,
                       decisions);
}

void record_trace_of_text(const std::string& out_path, const std::string& text, const Scenario& s, const RunResult& r,
                          const std::string& variant, const std::string& world, const std::vector<Decision>& decisions) {
  TraceHeader h = trace_header_of(text, s, r, variant);
  h.world = world;
  h.decisions = decisions;
  ensure_parent_folder(out_path);
  AtomicOutput out(out_path);
  write_trace(out.stream(), h, r.log);
  out.commit();
  if (r.log.truncated()) {
    std::cerr << "hcsim: recorded the first " << r.log.events().size() << " of " << r.log.count() << " events\n";
  }
}

}  // namespace hcsim::cli
