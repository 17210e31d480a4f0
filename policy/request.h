// RequestSpec: one request of a workload, as every rank sees it after the broadcast.
//
// Page keys are chained hashes of the request's content, so requests sharing a prefix share keys
// (upstream: h_i = sha256(h_{i-1} || tokens_i)).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/runtime.h"

namespace hcsim {

struct RequestSpec {
  RequestId id = kNoRequest;
  std::string name;
  TimeNs arrival_ns = 0;
  TimeNs abort_ns = -1;        // the client aborts it at this time; -1: never
  std::int32_t input_tokens = 0;
  std::vector<PageKey> pages;  // one key per full page of the input
};

}  // namespace hcsim
