// SimWorld: the simulated world behind the Runtime interface. Actors are coroutines resumed by the
// kernel; time is virtual; collectives go through the matcher; L3 calls through the storage model.
// `run` drives the kernel, checks the hang bounds every period and returns the verdict.
//
//   SimWorld w(cfg, storage, arrivals, request_count);
//   Runtime& rt = w.add_actor(0, ActorKind::kScheduler);
//   w.spawn(rt, rank0.scheduler_loop(rt));
//   Verdict v = w.run();
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/runtime.h"
#include "policy/task.h"
#include "sim/collectives.h"
#include "run/diagnosis.h"
#include "run/event_log.h"
#include "run/hang_detector.h"
#include "sim/kernel.h"
#include "run/limits.h"
#include "run/recording.h"
#include "run/request_stream.h"
#include "run/storage.h"
#include "run/world_config.h"

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
  void tap_events(EventTap* tap) { log_.tap(tap); }
  // Same-instant events of one rank run in the order `source` decides (null: as scheduled).
  void choose_order(ChoiceSource* source) { kernel_.choose_order(source); }
  const Kernel& kernel() const { return kernel_; }
  const CollectiveMatcher& collectives() const { return matcher_; }
  std::vector<ActorState> actor_states() const;
  // Where every actor is parked, as a hash: what it waits on and until when.
  std::uint64_t waits_digest() const;
  // Per request: when the first rank started it, and which ranks have not finished it.
  std::vector<WorkItem> work_owed() const;

 private:
  class ActorRuntime;
  struct Signal {
    std::string name;
    int rank = 0;
    ActorKind producer = ActorKind::kScheduler;
    std::vector<std::coroutine_handle<>> waiters;
  };

  Verdict finish(Verdict v);
  // The latest time a storage call now in flight will complete (calls that never do excluded), or 0.
  TimeNs last_due_transfer_ns() const;

  WorldConfig cfg_;
  Kernel kernel_;
  StorageModel& storage_;
  CollectiveMatcher matcher_;
  EventLog log_;
  std::vector<std::unique_ptr<ActorRuntime>> actors_;
  std::vector<Task<>> tasks_;  // by actor index
  std::vector<Signal> signals_;
  RequestStream requests_;
  std::size_t request_count_;
  std::vector<TimeNs> work_started_ns_;         // by request, -1 if not started
  std::vector<std::vector<bool>> work_finished_;  // by request, by rank
  std::size_t finishes_ = 0;
  std::vector<int> finished_ranks_;                            // by request
  std::set<std::pair<TimeNs, RequestId>> owed_by_start_;       // started, not finished on every rank
  std::function<void(TimeNs)> sampler_;
};

}  // namespace hcsim
