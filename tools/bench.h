// hcsim bench: kernel events per second, and seed-scenario runs per second.
#pragma once

#include <string>
#include <vector>

namespace hcsim {
int cmd_bench(const std::vector<std::string>& args);
}
