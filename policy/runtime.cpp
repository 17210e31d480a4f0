#include "policy/runtime.h"

#include <cstdint>
#include <string>

#include "policy/assert.h"

namespace hcsim {

namespace {
std::string_view kind_name(GroupKind k) {
  switch (k) {
    case GroupKind::kTp: return "tp_cpu_group";
    case GroupKind::kPrefetchTp: return "prefetch_group";
    case GroupKind::kAttnTp: return "attn_tp_cpu_group";
    case GroupKind::kAttnCp: return "attn_cp_cpu_group";
    case GroupKind::kPrefetchCp: return "prefetch_cp_group";
    case GroupKind::kPpRequests: return "pp_requests";
    case GroupKind::kPpProxy: return "pp_proxy";
    case GroupKind::kPpSync: return "pp_ack_sync";
    case GroupKind::kPrefetchPp: return "prefetch_pp_group";
    case GroupKind::kSyncTp: return "completion_group";
    case GroupKind::kSyncCp: return "completion_cp_group";
    case GroupKind::kSyncPp: return "completion_pp_group";
  }
  HCSIM_ASSERT(false);
  return {};
}
}  // namespace

std::string group_name(Group g) {
  std::string out(kind_name(g.kind));
  if (g.index != Group::kWhole) out.append("[").append(std::to_string(g.index)).append("]");
  if (point_to_point(g.kind)) {
    return out.append(" pp").append(std::to_string(g.stage)).append("->pp").append(std::to_string(g.stage + 1));
  }
  if (g.stage != Group::kOnlyStage) out.append("@pp").append(std::to_string(g.stage));
  return out;
}

std::optional<Group> Group::from_code(std::int64_t code) {
  const std::int64_t stage = (code >> Group::kStageShift) - 1;
  const std::int64_t high_kind = (code >> Group::kHighKindShift) & 1;
  code &= (std::int64_t{1} << Group::kHighKindShift) - 1;
  if (code < 0 || code >= 8 * (INT16_MAX + 1) || stage < Group::kOnlyStage || stage > INT8_MAX) return std::nullopt;
  const std::int64_t kind = code % 8 + 8 * high_kind;
  if (kind >= kGroupKindCount) return std::nullopt;
  return Group{static_cast<GroupKind>(kind), static_cast<std::int16_t>(code / 8 - 1), static_cast<std::int8_t>(stage)};
}

std::string_view collective_op_name(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllReduceMin: return "all_reduce(MIN)";
    case CollectiveOp::kAllReduceMax: return "all_reduce(MAX)";
    case CollectiveOp::kBroadcast: return "broadcast";
    case CollectiveOp::kForward: return "forward";
    case CollectiveOp::kBarrier: return "barrier";
    case CollectiveOp::kSend: return "send";
    case CollectiveOp::kRecv: return "recv";
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
