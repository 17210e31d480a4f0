// Recording: what a replay takes from a trace instead of the seed: when requests arrived and were
// aborted, and how long each L3 call took and what it returned. Calls are matched by (rank, op,
// request, ordinal among that rank's calls of that op for that request), so a replay under other
// fixes still finds the calls both runs make; calls only the replay makes are modelled as usual.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "policy/runtime.h"
#include "run/choices.h"

namespace hcsim {

struct Arrival {
  TimeNs time_ns = 0;
  RequestId request = kNoRequest;
};

struct StorageResponse {
  std::int64_t duration_ns = 0;  // or kStorageNever, kStorageRaises
  std::int64_t result = 0;
};

using StorageCallKey = std::tuple<int, int, RequestId, int>;  // rank, op, request, ordinal

struct Recording {
  std::vector<Decision> decisions;  // an explored schedule's decisions (hcsim explore), else none
  std::vector<Arrival> arrivals;
  std::vector<Arrival> aborts;
  std::map<StorageCallKey, StorageResponse> storage;
};

}  // namespace hcsim
