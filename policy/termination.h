// The termination predicate of a prefetch, per rank, before the TP agreement (domain doc 3.1-3.4).
//
// The rank's vote goes into MAX over [1 - can_terminate, terminated]; the group terminates when
// every rank can, or any rank has the operation terminated. best_effort decides without the vote.
//
//   policy          kv_done pool pending timed out | pre-fix seed-fix timeout-bounded
//   wait_complete   yes     yes          no        | can     cannot   cannot
//   timeout         yes     yes          yes       | can     cannot   can
#pragma once

#include <cstdint>

#include "policy/policy_config.h"
#include "policy/prefetch_operation.h"

namespace hcsim {

// Seconds-long budget for one operation with `hit_pages` pages hit, per the configured formula.
TimeNs prefetch_timeout_ns(const TimeoutConfig& cfg, std::int64_t hit_pages, std::int32_t page_size_tokens);

struct TerminationInputs {
  bool kv_done = false;       // hash_value non-empty and every hit page read
  bool has_pool = false;      // the operation has sidecar transfers
  bool pool_done = true;      // pool_transfers_done
  bool timed_out = false;     // now - start_time > timeout, on this rank
};

// The local "can terminate" of a rank (before the MAX all-reduce), for wait_complete and timeout.
bool local_can_terminate(PrefetchPolicy policy, const FixSet& fixes, const TerminationInputs& in);

TerminationInputs termination_inputs(const PolicyConfig& cfg, const PrefetchOperation& op, TimeNs now_ns);

}  // namespace hcsim
