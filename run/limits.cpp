#include "run/limits.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "policy/assert.h"

namespace hcsim {

namespace {

struct LimitSpec {
  std::string_view name;
  std::string_view description;
  std::int64_t default_value;
  std::int64_t min_value;
  std::int64_t max_value;
};

// Defaults hold every shipped scenario and grid, and the public Mooncake trace at page size 64
// (2.3 M pages) with room to spare; maxima are what the model's types hold.
constexpr std::array<LimitSpec, kLimitCount> kSpecs = {{
    {"pages", "page keys of all requests plus host and preloaded L3 pages over all ranks", std::int64_t{1} << 26, 1,
     std::int64_t{1} << 40},
    {"requests", "requests of a scenario, workload or trace", std::int64_t{1} << 20, 1, (std::int64_t{1} << 31) - 2},
    {"ranks", "the TP size", 64, 1, 1 << 14},
    {"events", "kernel events of one run; a run that reaches it ends with a starvation verdict", 200'000'000, 1,
     std::int64_t{1} << 62},
    {"memory_mib", "the process's heap in MiB (the simulator's commands; 0: none); beyond it, exit 2", 16384, 0,
     std::int64_t{1} << 30},
}};

std::array<std::int64_t, kLimitCount> g_values = {kSpecs[0].default_value, kSpecs[1].default_value, kSpecs[2].default_value,
                                                 kSpecs[3].default_value, kSpecs[4].default_value};

const LimitSpec& spec(Limit l) {
  const auto i = static_cast<std::size_t>(l);
  HCSIM_ASSERT(i < kSpecs.size());
  return kSpecs[i];
}

std::string names() {
  std::string s;
  for (const LimitSpec& x : kSpecs) s.append(s.empty() ? "" : ", ").append(x.name);
  return s;
}

}  // namespace

std::string_view limit_name(Limit l) { return spec(l).name; }
std::string_view limit_description(Limit l) { return spec(l).description; }
std::int64_t limit_value(Limit l) { return g_values[static_cast<std::size_t>(l)]; }
std::int64_t limit_default(Limit l) { return spec(l).default_value; }
std::int64_t limit_max(Limit l) { return spec(l).max_value; }

std::string set_limit(std::string_view assignment) {
  const auto eq = assignment.find('=');
  const std::string example = " (e.g. --limit pages=100000000 or --limit events=1e9)";
  if (eq == std::string_view::npos) return "--limit: expected NAME=VALUE; got '" + std::string(assignment) + "'" + example;
  const std::string_view name = assignment.substr(0, eq);
  const std::string text(assignment.substr(eq + 1));
  int index = -1;
  for (int i = 0; i < kLimitCount; ++i) index = kSpecs[static_cast<std::size_t>(i)].name == name ? i : index;
  if (index < 0) return "--limit: no limit named '" + std::string(name) + "' (the limits: " + names() + ")";
  const LimitSpec& s = kSpecs[static_cast<std::size_t>(index)];
  const std::string range = "an integer in [" + std::to_string(s.min_value) + ", " + std::to_string(s.max_value) + "]";
  // Integers, or a plain decimal with an exponent (1e8) as people write big counts.
  char* end = nullptr;
  const double v = text.empty() ? NAN : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < static_cast<double>(s.min_value) || v != std::floor(v) ||
      v > static_cast<double>(s.max_value)) {
    return "--limit " + std::string(name) + ": expected " + range + "; got '" + text + "'";
  }
  // Above 2^53 a double is not exact: take the integer as written when it is one.
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) value = static_cast<std::int64_t>(v);
  if (value < s.min_value || value > s.max_value) return "--limit " + std::string(name) + ": expected " + range + "; got '" + text + "'";
  g_values[static_cast<std::size_t>(index)] = value;
  return "";
}

void reset_limits() {
  for (std::size_t i = 0; i < kSpecs.size(); ++i) g_values[i] = kSpecs[i].default_value;
}

std::string limit_hint(Limit l) {
  std::string s = "(limit ";
  s.append(limit_name(l)).append(" = ").append(std::to_string(limit_value(l)));
  s.append("; raise it with --limit ").append(limit_name(l)).append("=N)");
  return s;
}

std::string PageBudget::over_message() const {
  return "more than " + std::to_string(limit_value(Limit::kPages)) + " pages in all " + limit_hint(Limit::kPages);
}

}  // namespace hcsim
