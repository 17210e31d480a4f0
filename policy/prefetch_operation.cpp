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

}  // namespace hcsim
