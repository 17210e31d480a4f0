// Fuzzes the sweep-grid reader, which also reads the scenario the grid names and checks every
// point of the grid against it (workloads included). Run from the project root: a grid is read as
// if it were grids/fuzz-grid.json, so the shipped grids' "../scenarios/..." resolve.
#include "fuzz/fuzz_target.h"
#include "tools/sweep_grid.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return hcsim::fuzz::run_one(data, size, [](const std::string& text) { (void)hcsim::parse_sweep_grid(text, "grids/fuzz-grid.json"); });
}
