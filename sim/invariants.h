// Invariant checkers, always on: evaluated over the event log and the ranks' host-slot census at
// the end of every run, and reported with the verdict.
//
//   matching_collectives         every group's members entered the same collectives
//   identical_published_prefix   every rank committed the same prefix and sidecar state per request
//   one_terminal_state           every operation ended exactly once (and, in a complete run, ended)
//   termination_bound            no timeout-policy operation outlived its deadline (from its agreed
//                                hit) plus two scheduler passes, judged from the events
//   slot_ownership               no write into, or free of, a slot the actor did not own
//   slot_conservation            at quiescence, every host slot is free, in the tree, or owned by
//                                live work (leaks listed with their owner and age)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/host_slot_pool.h"
#include "policy/policy_config.h"
#include "sim/diagnosis.h"
#include "sim/event_log.h"

namespace hcsim {

struct InvariantResult {
  std::string name;
  bool held = true;
  std::vector<std::string> details;  // what broke it, one line each (bounded)
};

struct LeakSample {
  TimeNs at_ns = 0;
  std::int64_t leaked_slots = 0;  // over all ranks
};

struct InvariantInputs {
  const Verdict* verdict = nullptr;
  const EventLog* log = nullptr;
  const PolicyConfig* policy = nullptr;  // the termination bound of the timeout policy
  TimeNs pass_slack_ns = 0;              // what one scheduler pass may take, at most
  int ranks = 0;
  TimeNs end_ns = 0;
  std::vector<std::vector<HostSlotPool::Leak>> leaked;  // by rank, at the end
};

std::vector<InvariantResult> check_invariants(const InvariantInputs& in);
std::vector<std::string> violated_names(const std::vector<InvariantResult>& results);

}  // namespace hcsim
