#include "policy/trace_event.h"

#include "policy/assert.h"

namespace hcsim {

std::string_view actor_name(ActorKind a) {
  switch (a) {
    case ActorKind::kScheduler: return "scheduler";
    case ActorKind::kPrefetch: return "prefetch";
    case ActorKind::kIo: return "io";
    case ActorKind::kBackup: return "backup";
    case ActorKind::kWorld: return "world";
  }
  HCSIM_ASSERT(false);
  return {};
}

namespace {
struct KindInfo {
  std::string_view name;
  std::array<std::string_view, 3> fields;
};
constexpr std::array<KindInfo, kEventKindCount> kKinds = {{
    {"arrive", {"input_tokens", "", ""}},
    {"register", {"prefetch_tokens", "op", "sidecar_slot"}},
    {"register_skip", {"prefetch_tokens", "reason", ""}},
    {"hit_query", {"local_hit_tokens", "group_min_hit_tokens", "op"}},
    {"revoke", {"hit_tokens", "op", ""}},
    {"kv_batch_done", {"pages_read", "completed_tokens", "op"}},
    {"sidecar_done", {"hit_pages", "slot", "op"}},
    {"transfer_end", {"completed_tokens", "op", ""}},
    {"terminate_vote", {"can_terminate", "terminated", "group_decision"}},
    {"terminate", {"completed_tokens", "group_min_tokens", "op"}},
    {"commit", {"prefix_tokens", "matched_tokens", "sidecar_attached"}},
    {"match", {"device_tokens", "host_hit_tokens", "extend_tokens"}},
    {"schedule", {"extend_tokens", "storage_hit_tokens", "host_hit_tokens"}},
    {"forward", {"batch_tokens", "batch_requests", ""}},
    {"batch_full", {"budget_tokens_left", "batch_requests", ""}},
    {"op_end", {"state", "completed_tokens", "op"}},
    {"abort", {"was_waiting", "had_prefetch", ""}},
    {"write_backup", {"pages", "committed", "write"}},
    {"write_acked", {"pages", "matched_pages", "write"}},
    {"backup_done", {"pages", "pages_written", "backup"}},
    {"slot_violation", {"slot", "pool", "owner"}},
    {"collective_enter", {"group", "sequence", "payload_size"}},
    {"storage_call", {"op", "duration_ns", "result"}},
    {"host_evict", {"pages", "sidecars", "pages_needed"}},
    {"register_shrink", {"requested_tokens", "granted_tokens", "free_pages"}},
    {"hit_lost", {"agreed_tokens", "published_tokens", "cause"}},
    {"load_acked", {"node", "acks_left", ""}},
}};
}  // namespace

std::string_view event_name(EventKind k) {
  auto i = static_cast<std::size_t>(k);
  HCSIM_ASSERT(i < kKinds.size());
  return kKinds[i].name;
}

const std::array<std::string_view, 3>& event_field_names(EventKind k) {
  auto i = static_cast<std::size_t>(k);
  HCSIM_ASSERT(i < kKinds.size());
  return kKinds[i].fields;
}

}  // namespace hcsim
