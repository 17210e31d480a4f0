// ThreadWorld: the real world behind the Runtime interface. Every actor is an OS thread, time is
// steady_clock since the start, policy collectives run on Gloo CPU groups and the forward on the
// device and its stage's data group (NCCL when each rank has its own GPU, else Gloo: data_group.h),
// pipeline stages pass requests, proxies and counts on Gloo channels (isend, recv, wait), and L3
// calls read and write files with the scenario's injected delays as real waits. A watchdog
// (backend/watchdog.h, on the thread that calls run()) declares the verdict from the flight
// recorder, with the simulator's diagnosis.
//
//   ThreadWorld w(cfg, storage, l3, device, {}, arrivals, request_count, aborts);   // {}: Gloo data groups
//   Runtime& rt = w.add_actor(0, ActorKind::kScheduler);
//   w.spawn(rt, rank0.scheduler_loop(rt));
//   Verdict v = w.run();   // returns when the run completed or the watchdog fired
//
// Pacing: every actor keeps a clock that follows the simulator's rules: a sleep or a storage call
// ends its duration after it began, a collective its cost after its last member entered, a signal
// wait when it was notified. A call never ends before its model time, and real excess (a Gloo round
// costs more than the modelled one) is absorbed by the next sleep, so scheduler passes happen at the
// model's instants and events keep the simulator's order within the margin the lag leaves. Policy
// code reads that model clock (Runtime::now_ns), so a check against a modelled copy's end or a
// timeout decides at the model's instant; the log and the watchdog read steady_clock.
//
// Threading (the contract in policy/runtime.h): a rank's actors run under the rank's lock, which a
// world call releases while it waits. Stopping: once every request is done the world asks to stop;
// schedulers agree on it inside their next collective (a stop bit in the descriptor every rank
// exchanges), so no rank is left alone in a collective; other actors stop at their next wait. No
// stop bit travels between stages, so with stages the stop also closes the transports: a rank
// waiting on a stage that has stopped is released.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/data_group.h"
#include "backend/device.h"
#include "backend/file_l3.h"
#include "backend/flight_recorder.h"
#include "backend/gloo_mesh.h"
#include "backend/watchdog.h"
#include "policy/runtime.h"
#include "policy/topology.h"
#include "policy/task.h"
#include "run/actor_table.h"
#include "run/event_log.h"
#include "run/hang_detector.h"
#include "run/recording.h"
#include "run/request_stream.h"
#include "run/storage.h"
#include "run/work_ledger.h"
#include "run/world_config.h"

namespace hcsim {

// The descriptor every member of a collective sends first: op, size, stop bit, model time and up to 12
// payload words. A data group must carry frames of this many words, and sums of at least this many
// floats (the warm-up's).
inline constexpr std::size_t kCollectiveFrameWords = 16;

struct ThreadWorldConfig {
  WorldConfig world;                          // ranks, forward cost, hang bounds
  TimeNs watchdog_ns = 1'000'000'000;         // a collective open this long, or no progress this long
  TimeNs join_grace_ns = 2'000'000'000;       // how long stopping actors may take before being abandoned
};

// What the real run measured beside the verdict.
struct ThreadWorldStats {
  bool watchdog_fired = false;
  std::string watchdog_reason;          // why it fired
  TimeNs watchdog_fired_ns = 0;
  int actors_abandoned = 0;             // threads that did not stop in time (the process must _exit)
  std::string abandoned_actors;         // which, and in what call
  std::int64_t storage_calls = 0;
  std::int64_t storage_overruns = 0;    // calls whose real I/O outlasted the model's duration
  TimeNs storage_overrun_max_ns = 0;
  std::int64_t pages_read = 0;
  std::int64_t pages_written = 0;
  std::int64_t pages_corrupt = 0;       // read pages not holding their key's contents
  std::int64_t load_back_pages = 0;
  std::int64_t forwards = 0;
  std::string transport_error;          // the first collective the transport failed, if any
  std::string data_group;               // what carried the forward's collectives
  std::string data_group_aborted;       // what the watchdog's abort did to the data group beyond Gloo
  TimeNs model_lag_max_ns = 0;          // worst lag of an actor behind the model's clock at a sleep
  std::int64_t sleeps_behind_model = 0; // sleeps that could not absorb the lag: the run lost the model's pace
};

class ThreadWorld final : private WatchedWorld {
 public:
  // `data` carries each stage's forward collectives, by stage (null where a stage has one rank);
  // empty: a Gloo group per stage.
  ThreadWorld(ThreadWorldConfig cfg, StorageModel& storage, FileL3& l3, Device& device, std::vector<std::unique_ptr<DataGroup>> data,
              std::vector<Arrival> arrivals, std::size_t request_count, std::vector<Arrival> aborts);
  ~ThreadWorld();
  ThreadWorld(const ThreadWorld&) = delete;
  ThreadWorld& operator=(const ThreadWorld&) = delete;

  Runtime& add_actor(int rank, ActorKind kind);
  void spawn(Runtime& rt, Task<> task);
  // Starts the actors and watches them; returns the verdict once they stopped or were abandoned.
  Verdict run();

  EventLog take_log() { return std::move(log_); }
  const FlightRecorder& recorder() const override { return recorder_; }
  const ThreadWorldStats& stats() const { return stats_; }
  TimeNs now_ns() const override;
  std::vector<ActorState> actor_states() const;
  std::vector<WorkItem> work_owed() const;

 private:
  class ActorRuntime;
  struct RankSync {
    std::mutex mu;                 // the rank lock
    std::condition_variable cv;    // signals, and stop
  };
  // A signal's wake-up state, beside its name in the actor table; under the rank lock.
  struct SignalWake {
    std::uint64_t generation = 0;  // bumped by notify
    TimeNs notified_model_ns = 0;  // the notifier's model time at its latest notify
  };

  void connect_mesh(std::vector<std::unique_ptr<DataGroup>> data);
  void warm_up_mesh();
  // The topology's index of a resolved communicator.
  std::size_t comm_index(Group g) const;
  // Actor i's thread has returned from it (finished, died or parked): under world_mu_.
  bool left(std::size_t actor) const;

  // The watchdog's view (backend/watchdog.h).
  WatchTick wait_tick(std::chrono::nanoseconds tick) override;
  std::optional<Verdict> with_work(const std::function<std::optional<Verdict>(const WorkLedger&)>& read) override;
  void stop_actors(bool abort) override;
  Verdict finish(Verdict v) override;

  ThreadWorldConfig cfg_;
  StorageModel& storage_;
  FileL3& l3_;
  Device& device_;
  Topology topology_;
  std::vector<Group> comms_;           // the topology's communicators
  std::unique_ptr<GlooMesh> mesh_;
  std::vector<std::size_t> mesh_group_of_;            // by communicator; kNoMeshGroup: one member
  std::vector<std::unique_ptr<DataGroup>> data_;      // by stage, after mesh_: a Gloo data group uses it
  FlightRecorder recorder_;
  EventLog log_;
  std::vector<std::unique_ptr<RankSync>> ranks_;
  std::vector<std::unique_ptr<ActorRuntime>> actors_;  // by actor slot in table_
  std::vector<std::thread> threads_;
  std::vector<SignalWake> signal_wakes_;  // by signal; fixed once the actors start
  std::chrono::steady_clock::time_point start_;

  mutable std::mutex world_mu_;        // everything below, the wait records in table_, and the log
  std::vector<TimeNs> taken_model_ns_;  // by communicator: a channel's receiver's latest model time at a receive
  ActorTable table_;                   // identities and tasks fixed once the actors start
  std::exception_ptr internal_error_;  // an actor threw what the model does not: rethrown by run()
  std::condition_variable world_cv_;   // storage waits, stop, actor exits
  RequestStream requests_;
  WorkLedger work_;
  TimeNs last_progress_ns_ = 0;        // the last world call that completed
  TimeNs last_transfer_done_ns_ = 0;   // the last storage call that completed
  int actors_running_ = 0;
  std::mutex storage_mu_;              // the storage model's plans
  ThreadWorldStats stats_;

  std::atomic<bool> stop_{false};      // graceful: every request is done
  std::atomic<bool> abort_{false};     // the watchdog fired, or the transport failed
};

}  // namespace hcsim
