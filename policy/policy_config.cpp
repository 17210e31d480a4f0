#include "policy/policy_config.h"

#include "policy/assert.h"

namespace hcsim {

std::string_view policy_name(PrefetchPolicy p) {
  switch (p) {
    case PrefetchPolicy::kBestEffort: return "best_effort";
    case PrefetchPolicy::kWaitComplete: return "wait_complete";
    case PrefetchPolicy::kTimeout: return "timeout";
  }
  HCSIM_ASSERT(false);
  return {};
}

std::optional<PrefetchPolicy> policy_by_name(std::string_view name) {
  for (auto p : {PrefetchPolicy::kBestEffort, PrefetchPolicy::kWaitComplete, PrefetchPolicy::kTimeout}) {
    if (policy_name(p) == name) return p;
  }
  return std::nullopt;
}

std::string_view timeout_formula_name(TimeoutFormula f) {
  return f == TimeoutFormula::kLinear ? "linear" : "capped";
}

std::optional<TimeoutFormula> timeout_formula_by_name(std::string_view name) {
  if (name == "linear") return TimeoutFormula::kLinear;
  if (name == "capped") return TimeoutFormula::kCapped;
  return std::nullopt;
}

}  // namespace hcsim
