// SimWorld: the simulated world behind the Runtime interface. Actors are coroutines resumed by the
// kernel; time is virtual; collectives go through the matcher; L3 calls through the storage model.
// `run` drives the kernel, checks the hang bounds every period and returns the verdict.
//
//   SimWorld w(cfg, storage, arrivals, request_count);
//   Runtime& rt = w.add_actor(0, ActorKind::kScheduler);
//   w.spawn(rt, rank0.scheduler_loop(rt));
//   Verdict v = w.run();
#pragma once

#include <algorithm>
#include <coroutine>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "policy/runtime.h"
#include "policy/task.h"
#include "run/actor_table.h"
#include "run/diagnosis.h"
#include "run/event_log.h"
#include "run/hang_detector.h"
#include "run/limits.h"
#include "run/recording.h"
#include "run/request_stream.h"
#include "run/storage.h"
#include "run/work_ledger.h"
#include "run/world_config.h"
#include "sim/collectives.h"
#include "sim/kernel.h"

namespace hcsim {

class SimWorld {
 public:
  // `aborts` are client aborts, delivered like arrivals.
  SimWorld(WorldConfig cfg, StorageModel& storage, std::vector<Arrival> arrivals, std::size_t request_count,
           std::vector<Arrival> aborts = {});
  ~SimWorld();
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  Runtime& add_actor(int rank, ActorKind kind);
  void spawn(Runtime& rt, Task<> task);
  // Called at every check period with the time, e.g. to sample state for a time series.
  void on_check(std::function<void(TimeNs)> sampler) { sampler_ = std::move(sampler); }
  Verdict run();

  const EventLog& log() const { return log_; }
  EventLog take_log() { return std::move(log_); }
  void tap_events(EventTap* first, EventTap* second = nullptr) { log_.tap(first, second); }
  // Same-instant events of one rank run in the order `source` decides (null: as scheduled).
  void choose_order(ChoiceSource* source) { kernel_.choose_order(source); }
  const Kernel& kernel() const { return kernel_; }
  const CollectiveMatcher& collectives() const { return matcher_; }
  std::vector<ActorState> actor_states() const;
  // Where every actor is parked, as a hash: what it waits on and until when.
  std::uint64_t waits_digest() const;
  // Per request: when the first rank started it, and which ranks have not finished it.
  std::vector<WorkItem> work_owed() const { return work_.owed(); }

 private:
  class ActorRuntime;

  // An actor has left once its coroutine ended: the simulator never parks one for good.
  bool left(std::size_t actor) const { return table_.task(actor).done(); }
  Verdict finish(Verdict v) const;
  WorldCheck check_at(TimeNs now_ns) const;
  std::uint64_t events_left() const { return cfg_.events_max - std::min(cfg_.events_max, kernel_.events_processed()); }
  // After a mismatch: ranks slightly behind still reach the mismatched sequence (or block before it).
  void settle_after_mismatch();
  // All work done: no new work comes; let in-flight transfers land and releases drain, from `now_ns`.
  void quiesce(TimeNs now_ns);

  WorldConfig cfg_;
  Kernel kernel_;
  StorageModel& storage_;
  CollectiveMatcher matcher_;
  EventLog log_;
  std::vector<std::unique_ptr<ActorRuntime>> actors_;  // by actor slot in table_
  ActorTable table_;
  std::vector<std::vector<std::coroutine_handle<>>> signal_waiters_;  // by signal
  RequestStream requests_;
  WorkLedger work_;
  std::function<void(TimeNs)> sampler_;
};

}  // namespace hcsim
