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
    case ActorKind::kSync: return "sync";
  }
  HCSIM_ASSERT(false);
  return {};
}

namespace {
struct KindInfo {
  std::string_view name;
  std::array<std::string_view, 3> fields;
};
// The trace names an unused field "" (the table calls it unused_b or unused_c, to keep the views'
// member names distinct).
constexpr std::string_view trace_field_name(std::string_view table_name) {
  return table_name.starts_with("unused_") ? std::string_view{} : table_name;
}
#define HCSIM_KIND_INFO(Kind, trace_name, field_a, field_b, field_c) \
  {#trace_name, {trace_field_name(#field_a), trace_field_name(#field_b), trace_field_name(#field_c)}},
constexpr std::array<KindInfo, kEventKindCount> kKinds = {{HCSIM_EVENT_KINDS(HCSIM_KIND_INFO)}};
#undef HCSIM_KIND_INFO
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
