// hcsim: the hicache-sim command. main() and the table of commands, which makes both the usage
// text and the dispatch; each family of commands lives in tools/cli/.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "backend/device.h"
#include "backend/gpu_run.h"
#include "run/limits.h"
#include "run/scenario.h"
#include "run/trace_file.h"
#include "tools/bench.h"
#include "tools/cli/cli.h"

namespace {

using namespace hcsim;
using namespace hcsim::cli;

constexpr const char* kVersion = HCSIM_VERSION;

struct Command {
  const char* name;
  const char* synopsis;  // what follows the name in the usage
  const char* what;
  int (*run)(const Args&);
};

// In the order a user meets them.
constexpr Command kCommands[] = {
    {"demo", "", "the seed bug (incident S1) under pre-fix and seed-fix, side by side", cmd_demo},
    {"run", "SCENARIO", "simulate one scenario and explain the verdict (--all: every expectation of the library)", cmd_run},
    {"bisect", "SCENARIO", "run a scenario at every upstream date of the timeline; name the changes that opened and closed a hang", cmd_bisect},
    {"scan", "SCENARIO", "sweep one injected delay and show where a hang begins", cmd_scan},
    {"explore", "SCENARIO", "search every schedule within a bound: a certificate, or the smallest failure as a trace", cmd_explore},
    {"shrink", "INPUT", "the smallest scenario that fails the same way as a failing scenario or trace", cmd_shrink},
    {"list", "", "the scenario library: descriptions, upstream references, expected verdicts", cmd_list},
    {"verify", "SCENARIO...", "run every expectation the given scenarios declare; fail if any differs", cmd_verify},
    {"replay", "TRACE", "re-run a recorded trace (hcsim run --record) and say where it departs", cmd_replay},
    {"export", "TRACE", "a trace as a Chrome/Perfetto timeline (--chrome) or a wait-for graph (--dot)", cmd_export},
    {"fixes", "", "list the named upstream fixes and presets", cmd_fixes},
    {"bench", "", "kernel events per second and seed-scenario runs per second", cmd_bench},
    {"gpu", "SCENARIO", "run a scenario on the GPU backend: threads, Gloo, CUDA, files as L3", cmd_gpu},
    {"validate", "SCENARIO...", "run scenarios in both worlds and compare decisions, verdicts and times", cmd_validate},
    {"sweep", "GRID", "every run of a grid of policies, fixes, knobs and seeds: CSV, JSON Lines, summary", cmd_sweep},
    {"merge", "SHARD...", "join the outputs of a sharded sweep into the unsharded one", cmd_merge},
    {"plot", "RESULTS", "SVG figures from a sweep: hang-rate heatmap over two axes; latency against waste", cmd_plot},
};

// The usage: the commands from the table, and the limits' defaults as this build has them.
std::string usage() {
  std::string text = "hcsim: deterministic simulation of SGLang HiCache L3 prefetch termination\n\n"
                     "usage: hcsim COMMAND [options]\n\ncommands:\n";
  for (const Command& c : kCommands) {
    std::string head = std::string(c.name) + (*c.synopsis ? " " : "") + c.synopsis;
    head.resize(std::max<std::size_t>(head.size() + 2, 22), ' ');
    text.append("  ").append(head).append(c.what).append("\n");
  }
  text += "\nRun 'hcsim COMMAND --help' for a command's options and examples.\n\n"
          "limits, on every command (hcsim --limit NAME=N COMMAND ..., or anywhere after it; repeatable):\n";
  for (int i = 0; i < kLimitCount; ++i) {
    const auto l = static_cast<Limit>(i);
    std::string entry = std::string(limit_name(l)) + "=" + std::to_string(limit_default(l));
    entry.resize(std::max<std::size_t>(entry.size() + 2, 20), ' ');
    text.append("  ").append(entry).append(limit_description(l)).append("\n");
  }
  text += "An input over a limit fails at once, naming the file, the place and the limit to raise.\n\n"
          "exit codes: 0 ok, 1 internal error, 2 bad input (file, JSON pointer and reason on stderr),\n"
          "            3 a verdict differs from --expect or from a scenario's expectation (validate: the worlds differ)\n"
          "            4 hcsim gpu: the watchdog found a hang, wrote its diagnosis and the trace, and ended the run\n"
          "            5 hcsim explore: its bound stopped the search before an answer\n"
          "Outputs go where -o, --record, --dot and the like say ('-': standard output), else under results/;\n"
          "folders are created, and a file is written whole or not at all.\n";
  return text;
}

std::string build_description() {
  std::string d = cuda_built() ? "CUDA" : "no CUDA";
  d += nccl_built() ? ", NCCL" : ", no NCCL";
#ifdef NDEBUG
  d += ", release";
#endif
  return d;
}

// Whatever was printed reached standard output; else says so (a full disk, a closed pipe).
bool standard_output_written() {
  std::cout.flush();
  if (std::cout.good() && std::fflush(stdout) == 0 && !std::ferror(stdout)) return true;
  std::cerr << "hcsim: cannot write standard output: " << std::strerror(errno) << "\n";
  return false;
}

// Takes every "--limit NAME=N" (or "--limit=NAME=N") out of `args` and sets it.
void take_limits(std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size();) {
    std::string assignment;
    if (args[i] == "--limit") {
      if (i + 1 == args.size()) throw BadInput("--limit: expected NAME=VALUE after it (see 'hcsim --help')");
      assignment = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    } else if (args[i].starts_with("--limit=")) {
      assignment = args[i].substr(8);
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
      continue;
    }
    if (const std::string error = set_limit(assignment); !error.empty()) throw BadInput(error);
  }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // the sanitizers reserve terabytes of shadow memory up front
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// The memory limit, for the simulator's commands: the GPU backend's drivers map memory of their own.
void limit_memory(const std::string& command) {
  const std::int64_t mib = limit_value(Limit::kMemoryMib);
  if (mib == 0 || kSanitized || command == "gpu" || command == "validate" || command == "bench") return;
  const rlim_t bytes = static_cast<rlim_t>(mib) << 20;
  rlimit current{};
  if (getrlimit(RLIMIT_DATA, &current) != 0 || (current.rlim_max != RLIM_INFINITY && current.rlim_max < bytes)) return;
  const rlimit wanted{bytes, current.rlim_max};
  setrlimit(RLIMIT_DATA, &wanted);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    take_limits(args);
  } catch (const BadInput& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage();
    return args.empty() || !standard_output_written() ? kExitBadInput : kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "hcsim " << kVersion << " (" << build_description() << ")\n";
    return standard_output_written() ? kExitOk : kExitBadInput;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  limit_memory(command);
  // A file over `ulimit -f` then fails its write (EFBIG) and is reported, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    const Command* found = nullptr;
    for (const Command& c : kCommands) {
      if (command == c.name) found = &c;
    }
    if (!found) {
      std::cerr << "hcsim: unknown command '" << command << "'\n\n" << usage();
      return kExitBadInput;
    }
    const int code = found->run(args);
    return standard_output_written() ? code : kExitBadInput;
  } catch (const OutputError& e) {
    standard_output_written();
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const ScenarioError& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const TraceError& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const DeviceUnavailable& e) {
    std::cerr << "hcsim: " << e.what() << " (--device host runs without a GPU)\n";
    return kExitBadInput;
  } catch (const BadInput& e) {
    std::cerr << "hcsim: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const po::error& e) {
    std::cerr << "hcsim " << command << ": " << e.what() << " (see 'hcsim " << command << " --help')\n";
    return kExitBadInput;
  } catch (const std::bad_alloc&) {
    std::cerr << "hcsim: out of memory: the run needs more than " << limit_value(Limit::kMemoryMib) << " MiB " << limit_hint(Limit::kMemoryMib)
              << ", or than the machine has\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "hcsim: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
}