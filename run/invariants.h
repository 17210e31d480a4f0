// Invariant checkers, always on: evaluated over every event of the run (folded as they happen) and
// the ranks' host-slot census at the end, and reported with the verdict.
//
//   matching_collectives         every group's members entered the same collectives
//   identical_published_prefix   every rank committed the same prefix and sidecar state per request
//   one_terminal_state           every operation ended exactly once (and, in a complete run, ended)
//   termination_bound            no timeout-policy operation outlived its deadline (from its agreed
//                                hit) plus two scheduler passes, judged from the events
//   slot_ownership               no write into, or free of, a slot the actor did not own
//   published_pages_whole        no DSA page published without its indexer values
//   slot_conservation            at quiescence, every host slot is free, in the tree, or owned by
//                                live work (leaks listed with their owner and age)
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "policy/host_slot_pool.h"
#include "policy/policy_config.h"
#include "policy/prefetch_operation.h"
#include "run/diagnosis.h"
#include "run/event_log.h"
#include "run/request_stream.h"

namespace hcsim {

struct InvariantResult {
  std::string name;
  bool held = true;
  std::vector<std::string> details;  // what broke it, one line each (bounded)
};

// The largest loss of an agreed L3 hit a request had on any rank (from its hit_lost events).
struct HitLoss {
  std::int64_t agreed_tokens = 0;
  std::int64_t published_tokens = 0;
  HitLossCause cause = HitLossCause::kShortRead;
  int rank = 0;
  TimeNs at_ns = 0;
  std::int64_t lost_tokens() const { return agreed_tokens - published_tokens; }
};

struct LeakSample {
  TimeNs at_ns = 0;
  std::int64_t leaked_slots = 0;  // over all ranks
};

// What the invariants need from a run's events, folded as they happen: a long run's log keeps
// only its first events, and a check over those would miss every later end or commit.
class InvariantEvents : public EventTap {
 public:
  void on_event(const TraceEvent& e) override;

  struct Op {
    RequestId request = kNoRequest;
    bool registered = false;
    TimeNs start_ns = 0;
    std::int64_t hit_tokens = 0;  // the group-agreed hit
    TimeNs end_ns = -1;           // the first terminal event
    int ends = 0;                 // terminal events
  };
  // (prefix tokens, sidecar attached) of each commit, by request, then rank, in order.
  std::map<RequestId, std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>>> commits;
  std::map<std::pair<int, std::int64_t>, Op> ops;  // (rank, op id)
  std::vector<TraceEvent> slot_violations;         // the first ones
  std::vector<TraceEvent> indexer_gaps;            // the first ones
  std::int64_t indexer_gap_count = 0;
  std::int64_t slot_violation_count = 0;
  std::map<RequestId, HitLoss> hit_losses;         // by request
};

struct InvariantInputs {
  const Verdict* verdict = nullptr;
  const InvariantEvents* events = nullptr;
  const PolicyConfig* policy = nullptr;  // the termination bound of the timeout policy
  TimeNs pass_slack_ns = 0;              // what one scheduler pass may take, at most
  int ranks = 0;
  const RequestOwners* owners = nullptr;  // which ranks run each request
  TimeNs end_ns = 0;
  std::vector<std::vector<HostSlotPool::Leak>> leaked;  // by rank, at the end
};

// Every invariant's name, in the order check_invariants reports them.
inline constexpr std::array<std::string_view, 7> kInvariantNames{"matching_collectives", "identical_published_prefix", "one_terminal_state",
                                                                 "termination_bound",    "slot_ownership",             "published_pages_whole",
                                                                 "slot_conservation"};
std::vector<InvariantResult> check_invariants(const InvariantInputs& in);
std::vector<std::string> violated_names(const std::vector<InvariantResult>& results);

}  // namespace hcsim
