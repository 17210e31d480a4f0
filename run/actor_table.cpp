#include "run/actor_table.h"

#include "policy/assert.h"

namespace hcsim {

std::size_t ActorTable::add_actor(int rank, ActorKind kind) {
  HCSIM_ASSERT(rank >= 0);
  int index = 0;
  for (const Actor& a : actors_) index += a.rank == rank && a.kind == kind ? 1 : 0;
  Actor a;
  a.rank = rank;
  a.kind = kind;
  a.index = index;
  actors_.push_back(std::move(a));
  return actors_.size() - 1;
}

void ActorTable::set_task(std::size_t actor, Task<> task) {
  HCSIM_ASSERT(actor < actors_.size());
  HCSIM_ASSERT(!actors_[actor].task.handle() && task.handle());
  actors_[actor].task = std::move(task);
}

SignalId ActorTable::add_signal(std::string_view name, int rank, ActorKind producer) {
  signals_.push_back({std::string(name), rank, producer});
  return static_cast<SignalId>(signals_.size() - 1);
}

const ActorTable::Signal& ActorTable::signal(SignalId id) const {
  HCSIM_ASSERT(id >= 0 && static_cast<std::size_t>(id) < signals_.size());
  return signals_[static_cast<std::size_t>(id)];
}

ActorState ActorTable::state(std::size_t i, bool left) const {
  HCSIM_ASSERT(i < actors_.size());
  const Actor& a = actors_[i];
  const ActorWait& w = a.wait;
  ActorState s;
  s.rank = a.rank;
  s.actor = a.kind;
  s.index = a.index;
  s.wait = w.wait;
  s.since_ns = w.since_ns;
  if (left && a.task.done()) {
    describe_ended(s, a.task.exception());
  } else if (w.call) {
    const Signal* sig = w.wait == WaitKind::kSignal ? &signal(w.call->signal) : nullptr;
    describe_blocked_call(s, *w.call, w.seq, sig ? sig->name : std::string(), sig ? sig->producer : ActorKind::kScheduler,
                          w.plan.never_completes, w.since_ns + w.plan.duration_ns);
  }
  return s;
}

}  // namespace hcsim
