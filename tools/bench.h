// hcsim bench: the full model's events per second beside a bare heap and the bare kernel, measured in
// the same process (medians, wall and CPU time); with --gpu, transports and load-back on a GPU node.
#pragma once

#include <string>
#include <vector>

namespace hcsim {
int cmd_bench(const std::vector<std::string>& args);
}
