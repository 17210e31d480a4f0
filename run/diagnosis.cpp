#include "run/diagnosis.h"

#include <cstdio>

#include "policy/assert.h"
#include "run/world_config.h"

namespace hcsim {

std::string_view hang_kind_name(HangKind k) {
  switch (k) {
    case HangKind::kNone: return "none";
    case HangKind::kDeadlock: return "deadlock";
    case HangKind::kCollectiveMismatch: return "collective_mismatch";
    case HangKind::kStarvation: return "starvation";
    case HangKind::kLostWorker: return "lost_worker";
    case HangKind::kCrash: return "crash";
  }
  HCSIM_ASSERT(false);
  return {};
}

std::optional<HangKind> hang_kind_by_name(std::string_view name) {
  for (auto k : {HangKind::kNone, HangKind::kDeadlock, HangKind::kCollectiveMismatch, HangKind::kStarvation, HangKind::kLostWorker,
                 HangKind::kCrash}) {
    if (hang_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

namespace {
std::string ms(TimeNs t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", static_cast<double>(t) / 1e6);
  return buf;
}
}  // namespace

std::string actor_label(int rank, ActorKind kind, int index) {
  std::string s = "rank " + std::to_string(rank) + " " + std::string(actor_name(kind));
  return index > 0 ? s + " " + std::to_string(index) : s;
}

std::string actor_label(const ActorState& a) { return actor_label(a.rank, a.actor, a.index); }

void describe_blocked_call(ActorState& s, const WorldCall& call, std::uint64_t seq, const std::string& signal_name,
                           ActorKind producer, bool never_completes, TimeNs due_ns) {
  switch (s.wait) {
    case WaitKind::kCollective:
      s.group = call.group;
      s.op = call.op;
      s.size = collective_size(call);
      s.seq = seq;
      break;
    case WaitKind::kSignal:
      s.signal_name = signal_name;
      s.producer = producer;
      break;
    case WaitKind::kStorage:
      s.storage_op = call.storage_op;
      s.request = call.request;
      s.never_completes = never_completes;
      s.due_ns = due_ns;
      break;
    default: break;
  }
}

void describe_ended(ActorState& s, const std::exception_ptr& error) {
  s.wait = error ? WaitKind::kDied : WaitKind::kFinished;
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    s.error = e.what();
  } catch (...) {
    s.error = "unknown exception";
  }
}

std::string describe_wait(const ActorState& a) {
  switch (a.wait) {
    case WaitKind::kRunnable: return "runnable";
    case WaitKind::kSleep: return "sleeping since " + ms(a.since_ns);
    case WaitKind::kSignal:
      return "waiting on " + a.signal_name + " (fed by " + std::string(actor_name(a.producer)) + ") since " + ms(a.since_ns);
    case WaitKind::kCollective:
      if (a.op == CollectiveOp::kSend) {
        return "waiting for its send seq " + std::to_string(a.seq) + " on " + group_name(a.group) + " to be received, since " + ms(a.since_ns);
      }
      return "in " + std::string(collective_op_name(a.op)) + " size " + std::to_string(a.size) + " on " +
             std::string(group_name(a.group)) + " seq " + std::to_string(a.seq) + " since " + ms(a.since_ns);
    case WaitKind::kStorage:
      return "in L3 " + std::string(storage_op_name(a.storage_op)) + " for request " + std::to_string(a.request) +
             (a.never_completes ? ", which never completes" : ", due at " + ms(a.due_ns)) + " (since " + ms(a.since_ns) + ")";
    case WaitKind::kFinished: return "finished";
    case WaitKind::kDied: return "died: " + a.error;
  }
  HCSIM_ASSERT(false);
  return {};
}

std::string verdict_word(const Verdict& v) {
  if (v.kind == HangKind::kCrash) return "CRASH";
  return v.hang() ? std::string("HANG ").append(hang_kind_name(v.kind)) : std::string("complete");
}

}  // namespace hcsim
