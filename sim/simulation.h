// simulate(): one run of a scenario under a fix set and policy, from a seed, in the simulator.
//
//   RunOptions opt{.fixes = *preset_by_name(name), .seed = 7};
//   RunResult r = simulate(load_scenario_file("scenarios/himamba-sidecar-lag.json"), opt);
//   r.verdict.hang(); r.log.digest();
#pragma once

#include "run/run.h"
#include "run/scenario.h"

namespace hcsim {

RunResult simulate(const Scenario& scenario, const RunOptions& options);

// A declared expectation of the scenario, simulated and judged.
ExpectationCheck check_expectation(const Scenario& scenario, const Expectation& expectation);

}  // namespace hcsim
