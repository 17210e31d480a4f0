#include "policy/runtime.h"

#include "policy/assert.h"

namespace hcsim {

std::string_view group_name(Group g) {
  switch (g) {
    case Group::kScheduler: return "tp_cpu_group";
    case Group::kPrefetch: return "prefetch_group";
  }
  HCSIM_ASSERT(false);
  return {};
}

std::string_view collective_op_name(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllReduceMin: return "all_reduce(MIN)";
    case CollectiveOp::kAllReduceMax: return "all_reduce(MAX)";
    case CollectiveOp::kBroadcast: return "broadcast";
    case CollectiveOp::kForward: return "forward";
    case CollectiveOp::kBarrier: return "barrier";
  }
  HCSIM_ASSERT(false);
  return {};
}

std::string_view storage_op_name(StorageOp op) {
  switch (op) {
    case StorageOp::kHitQuery: return "hit_query";
    case StorageOp::kKvGet: return "kv_get";
    case StorageOp::kSidecarGet: return "sidecar_get";
    case StorageOp::kKvSet: return "kv_set";
    case StorageOp::kSidecarSet: return "sidecar_set";
    case StorageOp::kDeviceToHost: return "d2h_copy";
    case StorageOp::kHostToDevice: return "h2d_copy";
  }
  HCSIM_ASSERT(false);
  return {};
}

}  // namespace hcsim
