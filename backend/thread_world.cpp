#include "backend/thread_world.h"

#include <sys/prctl.h>

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

namespace {

// The descriptor every member sends before a collective's payload: op, size, stop bit, the
// member's model time, and up to kInline payload words, so the policy's small collectives take one
// exchange.
constexpr std::size_t kHeaderWords = 4;
constexpr std::size_t kFrameWords = kCollectiveFrameWords;
constexpr std::size_t kInline = kFrameWords - kHeaderWords;

// The policy's CPU group; the forward goes to the data group instead.
GlooChannel channel_of(const WorldCall& c) {
  HCSIM_ASSERT(c.op != CollectiveOp::kForward);
  return c.group == Group::kPrefetch ? GlooChannel::kPrefetch : GlooChannel::kScheduler;
}

}  // namespace

class ThreadWorld::ActorRuntime final : public Runtime {
 public:
  ActorRuntime(ThreadWorld& w, int rank, ActorKind kind, int index) : w_(w), rank_(rank), kind_(kind), index_(index) {}
  int index() const { return index_; }

  int rank() const override { return rank_; }
  int world_size() const override { return w_.cfg_.world.ranks; }
  ActorKind actor() const override { return kind_; }
  TimeNs now_ns() const override { return w_.now_ns(); }

  SignalId make_signal(std::string_view name, ActorKind producer) override {
    HCSIM_ASSERT(w_.threads_.empty());  // signals are made when binding, before the actors start
    w_.signals_.push_back({std::string(name), rank_, producer, 0});
    return static_cast<SignalId>(w_.signals_.size() - 1);
  }
  void notify(SignalId signal) override {
    Signal& s = w_.signals_.at(static_cast<std::size_t>(signal));
    HCSIM_ASSERT(s.rank == rank_);
    ++s.generation;  // under the rank lock, which this actor holds
    s.notified_model_ns = std::max(s.notified_model_ns, model_ns_);
    w_.ranks_[static_cast<std::size_t>(rank_)]->cv.notify_all();
  }

  // Due by the actor's model time, as the simulator delivers them.
  int take_arrivals(std::span<RequestId> out) override {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    return w_.requests_.take_arrivals(model_ns_, out);
  }
  int take_aborts(std::span<RequestId> out) override {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    return w_.requests_.take_aborts(model_ns_, out);
  }
  TimeNs next_arrival_ns() const override {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    return w_.requests_.next_due_ns();
  }
  void work_started(RequestId r) override {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    HCSIM_ASSERT(r >= 0 && static_cast<std::size_t>(r) < w_.request_count_);
    auto& t = w_.work_started_ns_[static_cast<std::size_t>(r)];
    if (t < 0) t = w_.now_ns();
  }
  void work_finished(RequestId r) override {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    HCSIM_ASSERT(r >= 0 && static_cast<std::size_t>(r) < w_.request_count_);
    auto by_rank = w_.work_finished_[static_cast<std::size_t>(r)].begin() + rank_;
    HCSIM_ASSERT(!*by_rank);
    *by_rank = true;
    ++w_.finishes_;
    w_.world_cv_.notify_all();
  }
  void emit(EventKind kind, RequestId request, std::int64_t a, std::int64_t b, std::int64_t c) override {
    std::lock_guard<std::mutex> lock(w_.world_mu_);  // the time is taken under the lock: the log stays in order
    w_.log_.append({w_.now_ns(), static_cast<std::int16_t>(rank_), kind_, kind, request, a, b, c});
  }

  // Host-device copies take the model's time here: the forward's gather is the real load-back, and
  // write-through data is not moved, so the acks follow the same clock as the simulator's.
  TimeNs copy_done_ns(StorageOp op, RequestId request, std::int64_t pages) override {
    WorldCall c = copy_call(op, request, pages);
    StoragePlan p;
    {
      std::lock_guard<std::mutex> lock(w_.storage_mu_);
      p = w_.storage_.plan(rank_, c, model_ns_);
    }
    emit(EventKind::kStorageCall, request, static_cast<std::int64_t>(op), p.never_completes ? kStorageNever : p.duration_ns, p.result);
    return p.never_completes ? kNever : now_ns() + p.duration_ns;
  }

  // Set by the actor's thread; the rank lock it holds while policy code runs.
  std::unique_lock<std::mutex>* held = nullptr;
  bool exited = false;  // under world_mu_: the thread returned from the actor
  // Diagnosis state, under world_mu_.
  WaitKind wait = WaitKind::kRunnable;
  TimeNs since_ns = 0;
  const WorldCall* call = nullptr;
  std::uint64_t seq = 0;
  StoragePlan plan;

 protected:
  bool submit(WorldCall& c, std::coroutine_handle<>) override {
    if (must_stop_before(c)) return true;  // parked: the thread returns from the actor
    const bool parked = [&] {
      switch (c.kind) {
        case WorldCall::Kind::kSleep: return sleep(c);
        case WorldCall::Kind::kWait: return wait_signal(c);
        case WorldCall::Kind::kCollective: return collective(c);
        case WorldCall::Kind::kStorage: return storage(c);
      }
      return true;
    }();
    if (parked) return true;
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    wait = WaitKind::kRunnable;
    call = nullptr;
    w_.last_progress_ns_ = w_.now_ns();
    return false;
  }

  void set_state(WaitKind k, const WorldCall& c) {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    wait = k;
    since_ns = w_.now_ns();
    call = &c;
  }

  // Schedulers of a TP group stop together inside a collective; a single rank's, and every other
  // actor, stop at their next world call once the world asks.
  bool must_stop_before(const WorldCall& c) const {
    if (w_.abort_.load()) return true;
    if (!w_.stop_.load()) return false;
    const bool agrees_in_collective = kind_ == ActorKind::kScheduler && world_size() > 1 &&
                                      (c.kind == WorldCall::Kind::kSleep || c.kind == WorldCall::Kind::kCollective);
    return !agrees_in_collective;
  }

  std::chrono::steady_clock::time_point at(TimeNs t_ns) const { return w_.start_ + std::chrono::nanoseconds(t_ns); }

  // Pacing: a sleep ends at the model's time for it, so a real collective slower than its model
  // shortens the next sleep instead of delaying every later scheduler pass. Passes then happen at
  // the model's instants, and collective sequence numbers line up with the simulator's, as long as
  // the sleeps can absorb the excess; the worst lag behind the model is reported.
  bool sleep(const WorldCall& c) {
    HCSIM_ASSERT(c.duration_ns >= 0);
    set_state(WaitKind::kSleep, c);
    note_lag(c.duration_ns);
    model_ns_ += c.duration_ns;
    return wait_for_model_time();
  }

  // Waits until the real clock reaches this actor's model time. True if the world aborted.
  bool wait_for_model_time() {
    auto& cv = w_.ranks_[static_cast<std::size_t>(rank_)]->cv;
    cv.wait_until(*held, at(model_ns_), [&] { return w_.abort_.load(); });
    return w_.abort_.load();
  }

  void note_lag(TimeNs sleep_ns) {
    const TimeNs lag_ns = w_.now_ns() - model_ns_;
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    w_.stats_.model_lag_max_ns = std::max(w_.stats_.model_lag_max_ns, lag_ns);
    if (lag_ns >= sleep_ns) ++w_.stats_.sleeps_behind_model;
  }

  bool wait_signal(const WorldCall& c) {
    set_state(WaitKind::kSignal, c);
    const Signal& s = w_.signals_.at(static_cast<std::size_t>(c.signal));
    const std::uint64_t seen = s.generation;
    auto& cv = w_.ranks_[static_cast<std::size_t>(rank_)]->cv;
    cv.wait(*held, [&] { return s.generation != seen || w_.stop_.load() || w_.abort_.load(); });
    if (s.generation == seen) return true;
    model_ns_ = std::max(model_ns_, s.notified_model_ns);
    return false;
  }

  bool collective(WorldCall& c) {
    const std::int64_t size = collective_size(c);
    const std::uint64_t my_seq = w_.recorder_.enter(rank_, c.group, c.op, size, now_ns());
    emit(EventKind::kCollectiveEnter, kNoRequest, static_cast<std::int64_t>(c.group), static_cast<std::int64_t>(my_seq), size);
    {
      std::lock_guard<std::mutex> lock(w_.world_mu_);
      wait = WaitKind::kCollective;
      since_ns = w_.now_ns();
      call = &c;
      seq = my_seq;
    }
    held->unlock();
    bool parked = false;
    try {
      parked = exchange(c, size);
    } catch (const CollectiveFailed& e) {
      std::lock_guard<std::mutex> lock(w_.world_mu_);
      if (!w_.abort_.load() && !w_.stop_.load() && w_.stats_.transport_error.empty()) {
        w_.stats_.transport_error = actor_label(rank_, kind_, index_) + ": " + e.what();
      }
      w_.world_cv_.notify_all();
      parked = true;
    }
    held->lock();
    if (parked) return true;
    w_.recorder_.exit(rank_, c.group, my_seq, now_ns());
    // As the simulator's matcher: the collective ends its cost after its last member entered.
    model_ns_ = last_entry_model_ns_ + w_.cfg_.world.collective.duration_ns(c.op, size);
    return wait_for_model_time();
  }

  // The collective itself, without the rank lock. True if the actor must park.
  bool exchange(WorldCall& c, std::int64_t size) {
    if (c.op == CollectiveOp::kForward) {
      if (!c.slots.empty()) w_.device_.load_back(rank_, c.slots);
      activations_.assign(static_cast<std::size_t>(size), 0.0f);
      w_.device_.forward(rank_, size, w_.cfg_.world.collective.forward_compute_ns(size), activations_);
      std::lock_guard<std::mutex> lock(w_.world_mu_);
      ++w_.stats_.forwards;
      w_.stats_.load_back_pages += static_cast<std::int64_t>(c.slots.size());
    }
    const int ranks = world_size();
    last_entry_model_ns_ = model_ns_;
    if (ranks == 1) return false;
    const bool forward = c.op == CollectiveOp::kForward;
    std::array<std::int64_t, kFrameWords> frame{};
    frame[0] = static_cast<std::int64_t>(c.op);
    frame[1] = size;
    frame[2] = w_.stop_.load() ? 1 : 0;
    frame[3] = model_ns_;
    const bool inline_payload = !forward && c.payload.size() <= kInline;
    if (inline_payload) std::copy(c.payload.begin(), c.payload.end(), frame.begin() + kHeaderWords);
    std::vector<std::int64_t> frames(kFrameWords * static_cast<std::size_t>(ranks));
    if (forward) {
      w_.data_->all_gather(rank_, frame, frames);
    } else {
      w_.mesh_->all_gather(channel_of(c), rank_, frame, frames);
    }
    bool stop = false;
    bool agreed = true;
    for (int r = 0; r < ranks; ++r) {
      const std::int64_t* f = frames.data() + kFrameWords * static_cast<std::size_t>(r);
      agreed = agreed && f[0] == frame[0] && f[1] == frame[1];
      stop = stop || f[2] != 0;
      last_entry_model_ns_ = std::max(last_entry_model_ns_, f[3]);
    }
    if (!agreed) {
      // Members disagree: in the model the collective never completes. Where the transport can
      // carry it, each rank sums its own count as upstream's do: NCCL leaves that unmatched (a rank
      // waits for data that never comes) until the watchdog aborts the communicators. NCCL does not
      // check counts, so a rank whose sum returns (with garbage) must not go on either. Gloo cannot
      // carry mismatched sizes (its transport would end the process). Either way: wait for the watchdog.
      if (forward && w_.data_->survives_mismatched_counts()) w_.data_->all_reduce_sum(rank_, activations_);
      std::unique_lock<std::mutex> lock(w_.world_mu_);
      w_.world_cv_.wait(lock, [&] { return w_.abort_.load(); });
      return true;
    }
    if (stop) return true;  // every member saw the same frames: all stop here
    switch (c.op) {
      case CollectiveOp::kAllReduceMin:
      case CollectiveOp::kAllReduceMax: {
        const bool is_min = c.op == CollectiveOp::kAllReduceMin;
        if (!inline_payload) {
          w_.mesh_->all_reduce(channel_of(c), rank_, c.payload, is_min ? GlooReduce::kMin : GlooReduce::kMax);
          break;
        }
        for (std::size_t i = 0; i < c.payload.size(); ++i) {
          for (int r = 0; r < ranks; ++r) {
            const std::int64_t v = frames[kFrameWords * static_cast<std::size_t>(r) + kHeaderWords + i];
            c.payload[i] = is_min ? std::min(c.payload[i], v) : std::max(c.payload[i], v);
          }
        }
        break;
      }
      case CollectiveOp::kBroadcast:
        if (!inline_payload) {
          w_.mesh_->broadcast(channel_of(c), rank_, c.payload);
        } else {
          std::copy(frames.begin() + kHeaderWords, frames.begin() + kHeaderWords + static_cast<std::ptrdiff_t>(c.payload.size()), c.payload.begin());
        }
        break;
      case CollectiveOp::kForward:
        w_.data_->all_reduce_sum(rank_, activations_);
        break;
      case CollectiveOp::kBarrier: break;
    }
    return false;
  }

  bool storage(WorldCall& c) {
    StoragePlan p;
    {
      std::lock_guard<std::mutex> lock(w_.storage_mu_);
      p = w_.storage_.plan(rank_, c, model_ns_);
    }
    if (c.timeout_ns > 0 && !p.raises && (p.never_completes || p.duration_ns > c.timeout_ns)) {
      p.never_completes = false;  // the caller gives up; the late completion is dropped
      p.duration_ns = c.timeout_ns;
      p.result = 0;
    }
    {
      std::lock_guard<std::mutex> lock(w_.world_mu_);
      wait = WaitKind::kStorage;
      since_ns = w_.now_ns();
      call = &c;
      plan = p;
    }
    const TimeNs start_ns = since_ns;
    held->unlock();
    c.result = p.raises || p.never_completes ? 0 : real_io(c, p.result);
    c.raised = p.raises;
    emit(EventKind::kStorageCall, c.request, static_cast<std::int64_t>(c.storage_op),
         p.raises ? kStorageRaises : p.never_completes ? kStorageNever : p.duration_ns, c.result);
    bool parked = false;
    {
      std::unique_lock<std::mutex> lock(w_.world_mu_);
      ++w_.stats_.storage_calls;
      const TimeNs io_ns = w_.now_ns() - start_ns;
      if (!p.never_completes && io_ns > p.duration_ns + 1'000'000) {
        ++w_.stats_.storage_overruns;
        w_.stats_.storage_overrun_max_ns = std::max(w_.stats_.storage_overrun_max_ns, io_ns - p.duration_ns);
      }
      if (p.never_completes) {
        w_.world_cv_.wait(lock, [&] { return w_.stop_.load() || w_.abort_.load(); });
        parked = true;
      } else {
        // At least the modelled duration in real time too: an actor behind the model's clock
        // must not see its I/O end sooner than the simulator's would.
        const TimeNs end_ns = std::max(model_ns_, start_ns) + p.duration_ns;
        parked = w_.world_cv_.wait_until(lock, at(end_ns), [&] { return w_.abort_.load(); });
      }
    }
    held->lock();
    if (!parked) model_ns_ += p.duration_ns;
    return parked;
  }

  // The call's real file I/O into or out of host slots; the model's result bounds it (an injected
  // failure fails the call even when the file is there).
  std::int64_t real_io(WorldCall& c, std::int64_t planned) {
    Device& dev = w_.device_;
    FileL3& l3 = w_.l3_;
    std::int64_t n = 0;
    std::int64_t corrupt = 0;
    switch (c.storage_op) {
      case StorageOp::kHitQuery:
        while (static_cast<std::size_t>(n) < c.keys.size() && n < planned && l3.has_kv(rank_, c.keys[static_cast<std::size_t>(n)])) ++n;
        for (std::size_t i = 0; i < c.present.size() && i < c.keys.size(); ++i) {
          c.present[i] = c.present[i] && l3.has_sidecar(rank_, c.keys[i]) ? 1 : 0;
        }
        break;
      case StorageOp::kKvGet:
        HCSIM_ASSERT(c.slots.size() == c.keys.size());
        while (n < planned && static_cast<std::size_t>(n) < c.keys.size()) {
          const auto i = static_cast<std::size_t>(n);
          if (!l3.get_kv(rank_, c.keys[i], dev.kv_slot(rank_, c.slots[i]))) {
            corrupt += l3.has_kv(rank_, c.keys[i]) ? 1 : 0;
            break;
          }
          ++n;
        }
        break;
      case StorageOp::kSidecarGet:
        HCSIM_ASSERT(c.slots.size() == 1 && c.keys.size() == 1);
        if (planned > 0 && l3.get_sidecar(rank_, c.keys[0], dev.sidecar_slot(rank_, c.slots[0]))) n = 1;
        break;
      case StorageOp::kKvSet:
        HCSIM_ASSERT(c.slots.size() == c.keys.size());
        for (std::size_t i = 0; i < c.keys.size() && n < planned; ++i) {
          // The device-to-host copy of a new page is not modelled: the slot gets the key's contents.
          std::byte* slot = dev.kv_slot(rank_, c.slots[i]);
          FileL3::fill(c.keys[i], std::span<std::byte>(slot, static_cast<std::size_t>(l3.kv_page_bytes())));
          if (!l3.put_kv(rank_, c.keys[i], slot)) break;
          ++n;
        }
        break;
      case StorageOp::kSidecarSet:
        HCSIM_ASSERT(c.slots.size() == 1 && c.keys.size() == 1);
        if (planned > 0) {
          // As for kv_set: the slot gets the key's contents, standing in for the device's state.
          std::byte* slot = dev.sidecar_slot(rank_, c.slots[0]);
          FileL3::fill(c.keys[0], std::span<std::byte>(slot, static_cast<std::size_t>(l3.sidecar_bytes())));
          if (l3.put_sidecar(rank_, c.keys[0], slot)) n = 1;
        }
        break;
      case StorageOp::kDeviceToHost:
      case StorageOp::kHostToDevice:
        HCSIM_ASSERT(false);  // copies go through copy_done_ns, never through a storage call
        break;
    }
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    if (c.storage_op == StorageOp::kKvGet || c.storage_op == StorageOp::kSidecarGet) w_.stats_.pages_read += n;
    if (c.storage_op == StorageOp::kKvSet) w_.stats_.pages_written += n;
    w_.stats_.pages_corrupt += corrupt;
    return n;
  }

  ThreadWorld& w_;
  int rank_;
  ActorKind kind_;
  int index_;
  std::vector<float> activations_;
  TimeNs model_ns_ = 0;             // where this actor is on the model's clock (<= the real one)
  TimeNs last_entry_model_ns_ = 0;  // of the current collective's members
};

ThreadWorld::ThreadWorld(ThreadWorldConfig cfg, StorageModel& storage, FileL3& l3, Device& device, std::unique_ptr<DataGroup> data,
                         std::vector<Arrival> arrivals, std::size_t request_count, std::vector<Arrival> aborts)
    : cfg_(cfg),
      storage_(storage),
      l3_(l3),
      device_(device),
      recorder_(cfg.world.ranks),
      log_(cfg.world.log_kept_max),
      requests_(std::move(arrivals), std::move(aborts)),
      request_count_(request_count),
      work_started_ns_(request_count, -1),
      work_finished_(request_count, std::vector<bool>(static_cast<std::size_t>(cfg.world.ranks), false)) {
  HCSIM_ASSERT(cfg.world.ranks > 0 && cfg.watchdog_ns > 0);
  for (int r = 0; r < cfg.world.ranks; ++r) ranks_.push_back(std::make_unique<RankSync>());
  // Gloo gives up a little after the watchdog would have fired, so no thread waits in it forever.
  if (cfg.world.ranks > 1) {
    mesh_ = std::make_unique<GlooMesh>(cfg.world.ranks, std::chrono::milliseconds(cfg.watchdog_ns / 1'000'000 + 250));
    data_ = data ? std::move(data) : make_gloo_data_group(*mesh_);
    stats_.data_group = data_->describe();
    warm_up_mesh();
  } else {
    stats_.data_group = "none (one rank: the forward exchanges nothing)";
  }
}

// A fresh Gloo connection's first exchanges cost milliseconds, and NCCL connects its peers at its
// first collective (hundreds of ms): pay both before the clock starts.
void ThreadWorld::warm_up_mesh() {
  constexpr int kRounds = 8;
  std::vector<std::thread> members;
  std::mutex error_mu;
  std::string error;  // the first member's transport failure: the run cannot start
  for (int r = 0; r < cfg_.world.ranks; ++r) {
    members.emplace_back([&, r] {
      std::array<std::int64_t, kFrameWords> frame{};
      std::vector<std::int64_t> frames(kFrameWords * static_cast<std::size_t>(cfg_.world.ranks));
      std::vector<float> activations(kFrameWords);
      try {
        for (int i = 0; i < kRounds; ++i) {
          for (GlooChannel ch : {GlooChannel::kScheduler, GlooChannel::kPrefetch}) mesh_->all_gather(ch, r, frame, frames);
          data_->all_gather(r, frame, frames);
          data_->all_reduce_sum(r, activations);
        }
      } catch (const std::exception& e) {
        {
          std::lock_guard<std::mutex> lock(error_mu);
          if (error.empty()) error = e.what();
        }
        // No watchdog runs yet: the peers waiting for this member are released here.
        data_->abort();
        mesh_->abort();
      }
    });
  }
  for (auto& m : members) m.join();
  if (!error.empty()) {
    throw CollectiveFailed("the transport's warm-up failed before the run (" + error +
                           "); on a loaded machine, a longer --watchdog-ms gives the transport more time");
  }
}

ThreadWorld::~ThreadWorld() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

TimeNs ThreadWorld::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
}

Runtime& ThreadWorld::add_actor(int rank, ActorKind kind) {
  HCSIM_ASSERT(rank >= 0 && rank < cfg_.world.ranks && threads_.empty());
  int index = 0;
  for (const auto& a : actors_) index += a->rank() == rank && a->actor() == kind ? 1 : 0;
  actors_.push_back(std::make_unique<ActorRuntime>(*this, rank, kind, index));
  tasks_.emplace_back();
  return *actors_.back();
}

void ThreadWorld::spawn(Runtime& rt, Task<> task) {
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    if (actors_[i].get() != &rt) continue;
    HCSIM_ASSERT(!tasks_[i].handle());
    tasks_[i] = std::move(task);
    return;
  }
  HCSIM_ASSERT(false);  // not an actor of this world
}

bool ThreadWorld::all_work_done() const {
  return finishes_ == request_count_ * static_cast<std::size_t>(cfg_.world.ranks) && requests_.arrivals_taken();
}

std::vector<WorkItem> ThreadWorld::work_owed() const { return owed_work(work_started_ns_, work_finished_, cfg_.world.ranks); }

TimeNs ThreadWorld::last_due_transfer_ns() const {
  TimeNs last = 0;
  for (const auto& a : actors_) {
    if (!a->exited && a->wait == WaitKind::kStorage && !a->plan.never_completes) last = std::max(last, a->since_ns + a->plan.duration_ns);
  }
  return last;
}

std::vector<ActorState> ThreadWorld::actor_states() const {
  std::lock_guard<std::mutex> lock(world_mu_);
  std::vector<ActorState> out;
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    const ActorRuntime& a = *actors_[i];
    ActorState s;
    s.rank = a.rank();
    s.actor = a.actor();
    s.index = a.index();
    s.wait = a.wait;
    s.since_ns = a.since_ns;
    if (a.exited && tasks_[i].done()) {  // done() is safe to read once the thread has left the actor
      describe_ended(s, tasks_[i].exception());
    } else if (a.call) {
      const Signal* sig = a.wait == WaitKind::kSignal ? &signals_.at(static_cast<std::size_t>(a.call->signal)) : nullptr;
      describe_blocked_call(s, *a.call, a.seq, sig ? sig->name : std::string(), sig ? sig->producer : ActorKind::kScheduler,
                            a.plan.never_completes, a.since_ns + a.plan.duration_ns);
    }
    out.push_back(std::move(s));
  }
  return out;
}

Verdict ThreadWorld::finish(Verdict v) {
  v.actors = actor_states();
  name_lost_worker(v);
  return v;
}

void ThreadWorld::stop_actors(bool abort) {
  (abort ? abort_ : stop_).store(true);
  if (abort && mesh_) mesh_->abort();
  if (abort && data_) {
    data_->abort();
    stats_.data_group_aborted = data_->abort_action();
  }
  // Taking each lock orders the flag before any waiter's next check: no wake-up is lost.
  for (auto& r : ranks_) {
    std::lock_guard<std::mutex> lock(r->mu);
    r->cv.notify_all();
  }
  std::unique_lock<std::mutex> lock(world_mu_);
  world_cv_.notify_all();
  const auto grace = std::chrono::nanoseconds(cfg_.join_grace_ns);
  if (!world_cv_.wait_for(lock, grace, [&] { return actors_running_ == 0; }) && !abort) {
    lock.unlock();
    stop_actors(true);  // a graceful stop that does not end in time is an abort
    return;
  }
  if (actors_running_ > 0) {
    stats_.actors_abandoned = actors_running_;
    for (auto& t : threads_) t.detach();  // stuck in a call nothing can interrupt
  }
}

Verdict ThreadWorld::run() {
  HCSIM_ASSERT(threads_.empty());
  start_ = std::chrono::steady_clock::now();
  actors_running_ = static_cast<int>(actors_.size());
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    threads_.emplace_back([this, i] {
      // Linux lets a timed wait overrun by the thread's timer slack, 50 us by default: a 1 ms
      // scheduler pass would drift from the model's by that much each time.
      (void)::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      ActorRuntime& a = *actors_[i];
      {
        std::unique_lock<std::mutex> lock(ranks_[static_cast<std::size_t>(a.rank())]->mu);
        a.held = &lock;
        try {
          tasks_[i].handle().resume();  // returns when the actor finished, died or parked
        } catch (...) {  // not the modelled world's doing: the run ends with it once every thread is joined
          std::lock_guard<std::mutex> error_lock(world_mu_);
          if (!internal_error_) internal_error_ = std::current_exception();
        }
      }
      std::lock_guard<std::mutex> lock(world_mu_);
      a.exited = true;
      --actors_running_;
      world_cv_.notify_all();
    });
  }
  Verdict v = watch();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (internal_error_) std::rethrow_exception(internal_error_);
  return v;
}

Verdict ThreadWorld::watch() {
  const DetectorBounds& bounds = cfg_.world.bounds;
  TimeNs next_check_ns = bounds.check_period_ns;
  TimeNs done_at_ns = -1;
  auto fire = [&](std::string reason) {
    const TimeNs now = now_ns();
    const FlightRecorder::Snapshot snap = recorder_.snapshot();
    Verdict v;
    if (snap.first_mismatch()) {
      v = mismatch_verdict(snap, cfg_.world.ranks);
    } else if (auto partial = oldest_partial_collective(snap, cfg_.world.ranks, now, HangKind::kCollectiveMismatch);
               partial && !partial->missing_ranks.empty()) {
      v = std::move(*partial);
      v.headline = "collective mismatch: " + std::to_string(v.missing_ranks.size()) +
                   " rank(s) never entered the collective others have waited in for " +
                   std::to_string((now - v.entered.front().at_ns) / 1'000'000) + " ms";
    } else {
      std::lock_guard<std::mutex> lock(world_mu_);
      v = deadlock_verdict(snap, cfg_.world.ranks, now, work_owed().size());
    }
    stats_.watchdog_fired = true;
    stats_.watchdog_reason = std::move(reason);
    stats_.watchdog_fired_ns = now;
    v = finish(std::move(v));  // the actors' states as the watchdog found them
    stop_actors(true);
    return v;
  };
  for (;;) {
    std::unique_lock<std::mutex> lock(world_mu_);
    world_cv_.wait_for(lock, std::chrono::milliseconds(1));
    const TimeNs now = now_ns();
    if (!stats_.transport_error.empty()) {
      const std::string why = "the transport failed: " + stats_.transport_error;
      lock.unlock();
      return fire(why);
    }
    const TimeNs idle_ns = now - last_progress_ns_;
    const bool owed = !work_owed().empty();
    if (all_work_done()) {
      // Quiescence, as the simulator's: let transfers in flight land and releases drain, then stop.
      if (done_at_ns < 0) done_at_ns = now;
      if (now >= std::max(done_at_ns, last_due_transfer_ns()) + bounds.quiesce_ns) {
        lock.unlock();
        stop_actors(false);
        if (recorder_.snapshot().first_mismatch()) return finish(mismatch_verdict(recorder_.snapshot(), cfg_.world.ranks));
        Verdict v;
        v.at_ns = done_at_ns;
        v.headline = "complete: every request was scheduled on every rank";
        return finish(std::move(v));
      }
      continue;
    }
    lock.unlock();
    const TimeNs open_since = recorder_.oldest_open_since_ns();
    if (open_since >= 0 && now - open_since >= cfg_.watchdog_ns) {
      return fire("a collective has been open for " + std::to_string((now - open_since) / 1'000'000) + " ms");
    }
    if (owed && idle_ns >= cfg_.watchdog_ns) return fire("no actor made progress for " + std::to_string(idle_ns / 1'000'000) + " ms");
    if (now < next_check_ns) continue;
    next_check_ns += bounds.check_period_ns;
    std::optional<Verdict> starved;
    {
      std::lock_guard<std::mutex> g(world_mu_);
      starved = check_starvation(work_owed(), now, bounds);
    }
    if (!starved && now >= bounds.horizon_ns) {
      starved = Verdict{};
      starved->kind = HangKind::kStarvation;
      starved->at_ns = now;
      starved->headline = "starvation: the horizon passed with requests still owed a schedule";
    }
    if (starved) {
      Verdict v = finish(std::move(*starved));
      stop_actors(true);
      return v;
    }
  }
}

}  // namespace hcsim
