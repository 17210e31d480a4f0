#include "policy/prefetch_operation.h"

#include "policy/assert.h"

namespace hcsim {

std::string_view op_end_name(OpEnd e) {
  switch (e) {
    case OpEnd::kCompleted: return "completed";
    case OpEnd::kTerminated: return "terminated";
    case OpEnd::kRevoked: return "revoked";
    case OpEnd::kAborted: return "aborted";
    case OpEnd::kFailed: return "failed";
  }
  HCSIM_ASSERT(false);
  return {};
}

std::string_view hit_loss_cause_name(HitLossCause c) {
  switch (c) {
    case HitLossCause::kShortRead: return "a rank's read came back short or failed";
    case HitLossCause::kTimedOut: return "the timeout ended it first";
    case HitLossCause::kBestEffort: return "best_effort ended it first";
    case HitLossCause::kSidecarNotLoaded: return "committed without its Mamba state";
    case HitLossCause::kEndedBeforeHit: return "ended before the group agreed on its hit";
    case HitLossCause::kDiscarded: return "discarded whole: a sidecar key missed on some rank";
    case HitLossCause::kIndexerClamped: return "clamped to the pages whose indexer objects every rank read";
  }
  HCSIM_ASSERT(false);
  return {};
}

}  // namespace hcsim
