// The run options of a variant written as on the command line ("pre-fix", "seed-fix+sidecar-hit-sync",
// "pre-fix~completion-race-guard"), for tests; a variant that does not parse fails the test.
#pragma once

#include <string>

#include <catch2/catch.hpp>

#include "policy/fixes.h"
#include "policy/variant.h"
#include "sim/simulation.h"

namespace hcsim {

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
