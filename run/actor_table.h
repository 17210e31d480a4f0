// ActorTable: every actor of a world as both worlds keep it for diagnosis: who it is (rank, kind,
// index among the rank's actors of that kind), its task, what it is blocked on and since when, and
// the signals actors wait on. From it come every actor's state (ActorState, as a verdict lists
// them), the due time of the last transfer in flight, and a verdict's finishing touches.
//
//   ActorTable t;
//   const std::size_t a = t.add_actor(1, ActorKind::kIo);        // "rank 1 io"
//   t.wait(a).block(WaitKind::kStorage, call, now_ns);           // as the world takes the call
//   Verdict v = t.finish(deadlock, [&](std::size_t i) { return t.task(i).done(); });
//
// Threading: identities and tasks are fixed once the actors start and may be read without a lock;
// a threaded world guards the wait records under its own lock. `left(i)` (every query below takes
// one) says whether actor i's runner has left it for good: its coroutine ended, or its thread
// returned from it. Only then is its task read, and its pending transfer no longer counts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "policy/runtime.h"
#include "policy/task.h"
#include "run/diagnosis.h"
#include "run/hang_detector.h"
#include "run/storage.h"

namespace hcsim {

// What one actor is blocked on; written on every world call, so it stays small.
struct ActorWait {
  WaitKind wait = WaitKind::kRunnable;
  TimeNs since_ns = 0;
  const WorldCall* call = nullptr;  // lives in the actor's frame while it waits
  std::uint64_t seq = 0;            // kCollective: the sequence number it entered
  StoragePlan plan;                 // kStorage: the plan the world took the call with

  void block(WaitKind kind, const WorldCall& c, TimeNs now_ns) {
    wait = kind;
    since_ns = now_ns;
    call = &c;
  }
  void run() {
    wait = WaitKind::kRunnable;
    call = nullptr;
  }
  // The end of a storage call that will complete, or -1.
  TimeNs transfer_due_ns() const {
    return wait == WaitKind::kStorage && !plan.never_completes ? since_ns + plan.duration_ns : -1;
  }
};

class ActorTable {
 public:
  struct Actor {
    int rank = 0;
    ActorKind kind = ActorKind::kScheduler;
    int index = 0;  // among the rank's actors of this kind
    Task<> task;
    ActorWait wait;
  };
  // What diagnosis names of a signal; each world keeps its own wake-up state beside it.
  struct Signal {
    std::string name;
    int rank = 0;
    ActorKind producer = ActorKind::kScheduler;
  };

  // The new actor's slot (0, 1, ... in order of adding).
  std::size_t add_actor(int rank, ActorKind kind);
  void set_task(std::size_t actor, Task<> task);
  std::size_t size() const { return actors_.size(); }
  const Actor& actor(std::size_t i) const { return actors_[i]; }
  Task<>& task(std::size_t i) { return actors_[i].task; }
  const Task<>& task(std::size_t i) const { return actors_[i].task; }
  ActorWait& wait(std::size_t i) { return actors_[i].wait; }
  const ActorWait& wait(std::size_t i) const { return actors_[i].wait; }

  SignalId add_signal(std::string_view name, int rank, ActorKind producer);
  std::size_t signal_count() const { return signals_.size(); }
  const Signal& signal(SignalId id) const;

  // Actor i's state for a verdict: ended (finished or died) once left, else what it waits on.
  ActorState state(std::size_t i, bool left) const;

  template <class Left>
  std::vector<ActorState> states(const Left& left) const {
    std::vector<ActorState> out;
    out.reserve(actors_.size());
    for (std::size_t i = 0; i < actors_.size(); ++i) out.push_back(state(i, left(i)));
    return out;
  }

  // The latest time a storage call now in flight will complete (calls that never do, and actors
  // that left, excluded), or 0.
  template <class Left>
  TimeNs last_due_transfer_ns(const Left& left) const {
    TimeNs last = 0;
    for (std::size_t i = 0; i < actors_.size(); ++i) {
      if (!left(i)) last = std::max(last, actors_[i].wait.transfer_due_ns());
    }
    return last;
  }

  // Whether no actor can run again by itself: each has left, or waits on a signal, a collective,
  // a point-to-point transfer or a storage call that never completes (a sleep, a storage call due
  // and an actor between calls all run on). The threaded world's counterpart of an empty queue.
  template <class Left>
  bool none_runnable(const Left& left) const {
    for (std::size_t i = 0; i < actors_.size(); ++i) {
      if (left(i)) continue;
      const ActorWait& w = actors_[i].wait;
      const bool blocked = w.wait == WaitKind::kSignal || w.wait == WaitKind::kCollective ||
                           (w.wait == WaitKind::kStorage && w.plan.never_completes);
      if (!blocked) return false;
    }
    return true;
  }

  // A verdict as a world returns it: with every actor's state, and a dead actor named.
  template <class Left>
  Verdict finish(Verdict v, const Left& left) const {
    v.actors = states(left);
    name_lost_worker(v);
    return v;
  }

 private:
  std::vector<Actor> actors_;
  std::vector<Signal> signals_;
};

}  // namespace hcsim
