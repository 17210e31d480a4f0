// The run options of a variant written as on the command line ("pre-fix", "seed-fix+sidecar-hit-sync",
// "pre-fix~completion-race-guard"), for tests; a variant that does not parse fails the test.
#pragma once

#include <string>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "policy/upstream_timeline.h"
#include "policy/variant.h"
#include "run/scenario.h"
#include "sim/simulation.h"

namespace hcsim {

// `variant`, where the model runs the scenario's model family at it; else the scenario's own
// upstream_at (an SWA family is refused before the unified tree's route).
inline std::string runnable_variant(const Scenario& s, const std::string& variant) {
  const auto fixes = parse_variant(variant, nullptr);
  REQUIRE(fixes);
  if (hybrid_swa_modelled(s.policy.family, code_path(s.policy.family, *fixes))) return variant;
  REQUIRE_FALSE(s.upstream_at.empty());
  return s.upstream_at;
}

inline RunOptions options_of(const char* variant) {
  std::string error;
  const auto fixes = parse_variant(variant, &error);
  INFO(variant << ": " << error);
  REQUIRE(fixes);
  RunOptions o;
  o.fixes = *fixes;
  return o;
}

}  // namespace hcsim
