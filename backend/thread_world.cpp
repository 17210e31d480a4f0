#include "backend/thread_world.h"

#include <sys/prctl.h>

#include <algorithm>
#include <deque>
#include <map>

#include "policy/assert.h"
#include "policy/sidecar_stack.h"

namespace hcsim {

namespace {

// The descriptor every member sends before a collective's payload: op, size, stop bit, the
// member's model time, and up to kInline payload words, so the policy's small collectives take one
// exchange.
constexpr std::size_t kHeaderWords = 4;
constexpr std::size_t kFrameWords = kCollectiveFrameWords;
constexpr std::size_t kInline = kFrameWords - kHeaderWords;

// A channel's frame: op, size, payload words, the sender's model time, then the payload.
constexpr std::size_t kChannelFrameWords = kHeaderWords + kChannelPayloadWordsMax;
// Sends a channel's sender may leave untaken: the policy waits for its sends before it sends again
// on the request and proxy channels, and each tick for the counts it chained.
constexpr std::size_t kSendsPendingMax = 64;
constexpr std::size_t kNoMeshGroup = static_cast<std::size_t>(-1);

}  // namespace

class ThreadWorld::ActorRuntime final : public Runtime {
 public:
  ActorRuntime(ThreadWorld& w, std::size_t slot, int rank, ActorKind kind) : w_(w), slot_(slot), rank_(rank), kind_(kind) {}

  int rank() const override { return rank_; }
  int world_size() const override { return w_.cfg_.world.ranks; }
  ActorKind actor() const override { return kind_; }
  // The actor's model clock: policy code reads time as the simulator's would, so a check against a
  // modelled copy's end, a timeout or an idle poll decides at the model's instant however far the
  // real clock (never behind it) has run ahead. The log and the watchdog read the real clock.
  TimeNs now_ns() const override { return model_ns_; }

  SignalId make_signal(std::string_view name, ActorKind producer) override {
    HCSIM_ASSERT(w_.threads_.empty());  // signals are made when binding, before the actors start
    w_.signal_wakes_.emplace_back();
    return w_.table_.add_signal(name, rank_, producer);
  }
  void notify(SignalId signal) override {
    HCSIM_ASSERT(w_.table_.signal(signal).rank == rank_);
    SignalWake& s = w_.signal_wakes_[static_cast<std::size_t>(signal)];
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
    w_.work_.start(r, w_.now_ns());
  }
  void work_finished(RequestId r) override {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    (void)w_.work_.finish(r, rank_);  // the watchdog sees the last one at its next tick
    w_.world_cv_.notify_all();
  }
  using Runtime::emit;
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
    emit(request, storage_call_event(op, p, p.result));
    return p.never_completes ? kNever : model_ns_ + p.duration_ns;
  }

  // Set by the actor's thread; the rank lock it holds while policy code runs.
  std::unique_lock<std::mutex>* held = nullptr;
  bool exited = false;  // under world_mu_: the thread returned from the actor

 protected:
  bool submit(WorldCall& c, std::coroutine_handle<>) override {
    if (must_stop_before(c)) return true;  // parked: the thread returns from the actor
    const bool parked = [&] {
      switch (c.kind) {
        case WorldCall::Kind::kSleep: return sleep(c);
        case WorldCall::Kind::kWait: return wait_signal(c);
        case WorldCall::Kind::kCollective: return collective(c);
        case WorldCall::Kind::kStorage: return storage(c);
        case WorldCall::Kind::kWaitSends: return wait_sends(c);
      }
      HCSIM_ASSERT(false);
      return true;
    }();
    if (parked) return true;
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    w_.table_.wait(slot_).run();
    w_.last_progress_ns_ = w_.now_ns();
    return false;
  }

  // The actor's wait record in the world's table: under world_mu_.
  void set_state(WaitKind k, const WorldCall& c) {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    w_.table_.wait(slot_).block(k, c, w_.now_ns());
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
    const SignalWake& s = w_.signal_wakes_.at(static_cast<std::size_t>(c.signal));
    const std::uint64_t seen = s.generation;
    auto& cv = w_.ranks_[static_cast<std::size_t>(rank_)]->cv;
    cv.wait(*held, [&] { return s.generation != seen || w_.stop_.load() || w_.abort_.load(); });
    if (s.generation == seen) return true;
    model_ns_ = std::max(model_ns_, s.notified_model_ns);
    return false;
  }

  bool collective(WorldCall& c) {
    // Attention kinds resolve to the stage's tp_cpu_group here (run_gpu refuses attention groups),
    // as upstream reuses the TP group.
    c.group = w_.topology_.resolve(c.group, rank_);
    if (point_to_point(c.group.kind)) return c.op == CollectiveOp::kSend ? send(c) : recv(c);
    const std::int64_t size = collective_size(c);
    const std::uint64_t my_seq = enter_recorded(c, size);
    block_in(c, my_seq);
    held->unlock();
    bool parked = false;
    try {
      parked = exchange(c, size);
    } catch (const CollectiveFailed& e) {
      note_transport_failure(e);
      parked = true;
    }
    held->lock();
    if (parked) return true;
    w_.recorder_.exit(rank_, c.group, my_seq, w_.now_ns());
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
    const std::size_t comm = w_.comm_index(c.group);
    const std::size_t mesh_group = w_.mesh_group_of_[comm];
    last_entry_model_ns_ = model_ns_;
    if (mesh_group == kNoMeshGroup) return false;  // a group of one
    const int ranks = static_cast<int>(w_.mesh_->group(mesh_group).members.size());
    const bool forward = c.op == CollectiveOp::kForward;
    DataGroup* data = forward ? w_.data_[static_cast<std::size_t>(w_.topology_.stage(rank_))].get() : nullptr;
    const int member = w_.topology_.tp_rank(rank_);  // in its stage's data group
    std::array<std::int64_t, kFrameWords> frame{};
    frame[0] = static_cast<std::int64_t>(c.op);
    frame[1] = size;
    frame[2] = w_.stop_.load() ? 1 : 0;
    frame[3] = model_ns_;
    const bool inline_payload = !forward && c.payload.size() <= kInline;
    if (inline_payload) std::copy(c.payload.begin(), c.payload.end(), frame.begin() + kHeaderWords);
    std::vector<std::int64_t> frames(kFrameWords * static_cast<std::size_t>(ranks));
    if (forward) {
      data->all_gather(member, frame, frames);
    } else {
      w_.mesh_->all_gather(mesh_group, rank_, frame, frames);
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
      if (forward && data->survives_mismatched_counts()) data->all_reduce_sum(member, activations_);
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
          w_.mesh_->all_reduce(mesh_group, rank_, c.payload, is_min ? GlooReduce::kMin : GlooReduce::kMax);
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
          w_.mesh_->broadcast(mesh_group, rank_, c.payload);
        } else {
          std::copy(frames.begin() + kHeaderWords, frames.begin() + kHeaderWords + static_cast<std::ptrdiff_t>(c.payload.size()), c.payload.begin());
        }
        break;
      case CollectiveOp::kForward:
        data->all_reduce_sum(member, activations_);
        break;
      case CollectiveOp::kBarrier: break;
      case CollectiveOp::kSend:
      case CollectiveOp::kRecv: HCSIM_ASSERT(false);  // send() and recv()
    }
    return false;
  }

  // The call's entry in the flight recorder and the log: its sequence on its communicator.
  std::uint64_t enter_recorded(const WorldCall& c, std::int64_t size) {
    const std::uint64_t seq = w_.recorder_.enter(rank_, c.group, c.op, size, model_ns_, w_.now_ns());
    emit(kNoRequest, CollectiveEnterFields{.group = c.group.code(), .sequence = static_cast<std::int64_t>(seq), .payload_size = size});
    return seq;
  }

  // The actor's wait record: blocked in `c`, at `seq` of its communicator.
  void block_in(const WorldCall& c, std::uint64_t seq) {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    ActorWait& rec = w_.table_.wait(slot_);
    rec.block(WaitKind::kCollective, c, w_.now_ns());
    rec.seq = seq;
  }

  // A transport failure of this actor's call, for the watchdog (unless the world is stopping).
  void note_transport_failure(const CollectiveFailed& e) {
    std::lock_guard<std::mutex> lock(w_.world_mu_);
    if (!w_.abort_.load() && !w_.stop_.load() && w_.stats_.transport_error.empty()) {
      w_.stats_.transport_error = actor_label(rank_, kind_, w_.table_.actor(slot_).index) + ": " + e.what();
    }
    w_.world_cv_.notify_all();
  }

  // An isend, as the simulator's: the frame is copied and the sender goes on at once, with no
  // model time spent; wait_sends() later waits until the receiver took it.
  bool send(WorldCall& c) {
    HCSIM_ASSERT(c.payload.size() <= kChannelPayloadWordsMax);
    const std::int64_t size = collective_size(c);
    const std::uint64_t seq = enter_recorded(c, size);
    std::vector<std::int64_t> frame(kChannelFrameWords, 0);
    frame[0] = static_cast<std::int64_t>(c.op);
    frame[1] = size;
    frame[2] = static_cast<std::int64_t>(c.payload.size());
    frame[3] = model_ns_;
    std::copy(c.payload.begin(), c.payload.end(), frame.begin() + kHeaderWords);
    auto& pending = sends_[w_.comm_index(c.group)];
    HCSIM_ASSERT(pending.size() < kSendsPendingMax);
    held->unlock();
    bool parked = false;
    try {
      pending.push_back({seq, w_.mesh_->send(w_.mesh_group_of_[w_.comm_index(c.group)], rank_, frame, seq)});
    } catch (const CollectiveFailed& e) {
      note_transport_failure(e);
      parked = true;
    }
    held->lock();
    if (!parked) w_.recorder_.exit(rank_, c.group, seq, w_.now_ns());
    return parked;
  }

  // The receiver takes the n-th send. A payload of another length or size is the simulator's crash:
  // the recorder holds the mismatch, and the receiver waits for the watchdog.
  bool recv(WorldCall& c) {
    const std::int64_t size = collective_size(c);
    const std::size_t comm = w_.comm_index(c.group);
    const std::uint64_t seq = enter_recorded(c, size);
    block_in(c, seq);
    {
      std::lock_guard<std::mutex> lock(w_.world_mu_);
      w_.taken_model_ns_[comm] = std::max(w_.taken_model_ns_[comm], model_ns_);
    }
    std::vector<std::int64_t>& frame = channel_frame_;
    frame.assign(kChannelFrameWords, 0);
    held->unlock();
    bool parked = false;
    try {
      parked = !w_.mesh_->recv(w_.mesh_group_of_[comm], rank_, frame, seq);
    } catch (const CollectiveFailed& e) {
      note_transport_failure(e);
      parked = true;
    }
    if (!parked && (frame[1] != size || frame[2] != static_cast<std::int64_t>(c.payload.size()))) {
      std::unique_lock<std::mutex> lock(w_.world_mu_);
      w_.world_cv_.wait(lock, [&] { return w_.abort_.load() || w_.stop_.load(); });
      parked = true;
    }
    held->lock();
    if (parked) return true;
    std::copy(frame.begin() + kHeaderWords, frame.begin() + kHeaderWords + static_cast<std::ptrdiff_t>(c.payload.size()), c.payload.begin());
    w_.recorder_.exit(rank_, c.group, seq, w_.now_ns());
    // As the simulator's matcher: the transfer ends its cost after the later of the two entered.
    model_ns_ = std::max(model_ns_, frame[3]) + w_.cfg_.world.collective.duration_ns(CollectiveOp::kRecv, size);
    return wait_for_model_time();
  }

  // Blocks until the receiver took every send on the channel; as in the simulator, the sender goes
  // on its latency after the receive that took the last one, or at once if all were taken.
  bool wait_sends(WorldCall& c) {
    HCSIM_ASSERT(point_to_point(c.group.kind));
    const std::size_t comm = w_.comm_index(c.group);
    auto& pending = sends_[comm];
    if (pending.empty()) return false;
    block_in(c, pending.front().seq);
    w_.recorder_.waiting_for_sends(c.group, true, w_.now_ns());
    held->unlock();
    bool parked = false;
    try {
      while (!pending.empty() && !parked) {  // bounded by kSendsPendingMax
        parked = !w_.mesh_->wait_send(*pending.front().sent);
        if (!parked) pending.pop_front();
      }
    } catch (const CollectiveFailed& e) {
      note_transport_failure(e);
      parked = true;
    }
    held->lock();
    if (parked) return true;
    w_.recorder_.waiting_for_sends(c.group, false, w_.now_ns());
    TimeNs taken_ns = 0;
    {
      std::lock_guard<std::mutex> lock(w_.world_mu_);
      taken_ns = w_.taken_model_ns_[comm];
    }
    if (taken_ns > model_ns_) model_ns_ = taken_ns + w_.cfg_.world.collective.latency_ns;
    return wait_for_model_time();
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
    TimeNs start_ns = 0;
    {
      std::lock_guard<std::mutex> lock(w_.world_mu_);
      ActorWait& rec = w_.table_.wait(slot_);
      rec.block(WaitKind::kStorage, c, w_.now_ns());
      rec.plan = p;
      start_ns = rec.since_ns;
    }
    held->unlock();
    c.result = p.raises || p.never_completes ? 0 : real_io(c, p.result);
    c.raised = p.raises;
    emit(c.request, storage_call_event(c.storage_op, p, c.result));
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
        if (!parked) w_.last_transfer_done_ns_ = w_.now_ns();
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
        for (std::size_t i = 0; i < c.present.size() && !c.keys.empty(); ++i) {  // one block of keys per pool
          const std::size_t n = c.keys.size();
          c.present[i] = c.present[i] && l3.has_sidecar(rank_, object_key(i / n, c.keys[i % n])) ? 1 : 0;
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
      case StorageOp::kSidecarGet: {  // one object per key and slot (Mamba: one; SWA: a window's pages)
        // Without a slot (-1: a pool laid out like KV, whose host pool the backend does not hold)
        // each object is read and checked into a scratch buffer.
        HCSIM_ASSERT(c.slots.size() == c.keys.size() && (c.present.empty() || c.present.size() == c.keys.size()));
        std::vector<std::byte> scratch(static_cast<std::size_t>(l3.sidecar_bytes()));
        for (std::size_t i = 0; i < c.keys.size(); ++i) {
          std::byte* dst = c.slots[i] < 0 ? scratch.data() : dev.sidecar_slot(rank_, c.slots[i]);
          const bool read = planned > 0 && (c.present.empty() || c.present[i]) && l3.get_sidecar(rank_, c.keys[i], dst);
          if (!c.present.empty()) c.present[i] = read ? 1 : 0;
          n += read ? 1 : 0;
        }
        break;
      }
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
      case StorageOp::kSidecarSet: {
        HCSIM_ASSERT(c.slots.size() == c.keys.size());
        std::vector<std::byte> scratch(static_cast<std::size_t>(l3.sidecar_bytes()));
        for (std::size_t i = 0; i < c.keys.size() && n < planned; ++i) {
          // As for kv_set: the slot gets the key's contents, standing in for the device's state; an
          // object without a slot (a pool laid out like KV) is written from a scratch buffer.
          std::byte* slot = c.slots[i] < 0 ? scratch.data() : dev.sidecar_slot(rank_, c.slots[i]);
          FileL3::fill(c.keys[i], std::span<std::byte>(slot, static_cast<std::size_t>(l3.sidecar_bytes())));
          if (!l3.put_sidecar(rank_, c.keys[i], slot)) break;
          ++n;
        }
        break;
      }
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

  struct PendingSend {
    std::uint64_t seq = 0;
    std::unique_ptr<GlooMesh::Send> sent;
  };

  ThreadWorld& w_;
  std::size_t slot_;  // in the world's actor table
  int rank_;
  ActorKind kind_;
  std::vector<float> activations_;
  std::vector<std::int64_t> channel_frame_;                  // a receive's
  std::map<std::size_t, std::deque<PendingSend>> sends_;     // by communicator: sent, not known taken
  TimeNs model_ns_ = 0;             // where this actor is on the model's clock (<= the real one)
  TimeNs last_entry_model_ns_ = 0;  // of the current collective's members
};

ThreadWorld::ThreadWorld(ThreadWorldConfig cfg, StorageModel& storage, FileL3& l3, Device& device, std::vector<std::unique_ptr<DataGroup>> data,
                         std::vector<Arrival> arrivals, std::size_t request_count, std::vector<Arrival> aborts)
    : cfg_(cfg),
      storage_(storage),
      l3_(l3),
      device_(device),
      topology_(cfg.world.topology()),
      comms_(topology_.communicators()),
      recorder_(topology_),
      log_(cfg.world.log_kept_max),
      requests_(std::move(arrivals), std::move(aborts)),
      work_(request_count, cfg.world.ranks) {
  HCSIM_ASSERT(cfg.world.ranks > 0 && cfg.watchdog_ns > 0 && topology_.problem().empty() && !topology_.dp_attention() && topology_.cp == 1);
  for (int r = 0; r < cfg.world.ranks; ++r) ranks_.push_back(std::make_unique<RankSync>());
  taken_model_ns_.assign(comms_.size(), 0);
  if (cfg.world.ranks > 1) {
    connect_mesh(std::move(data));
    warm_up_mesh();
  } else {
    mesh_group_of_.assign(comms_.size(), kNoMeshGroup);
    data_.resize(1);
    stats_.data_group = "none (one rank: the forward exchanges nothing)";
  }
}

std::size_t ThreadWorld::comm_index(Group g) const {
  const auto it = std::find(comms_.begin(), comms_.end(), g);
  HCSIM_ASSERT(it != comms_.end());  // resolved, of this topology
  return static_cast<std::size_t>(it - comms_.begin());
}

// A Gloo group for every communicator of more than one rank (channels carry fixed frames), and a
// data group per stage of more than one rank: the given one, else a Gloo group of the stage.
void ThreadWorld::connect_mesh(std::vector<std::unique_ptr<DataGroup>> data) {
  const auto stages = static_cast<std::size_t>(topology_.pp);
  HCSIM_ASSERT(data.empty() || data.size() == stages);
  std::vector<MeshGroup> groups;
  for (const Group g : comms_) {
    std::vector<int> members = topology_.members(g);
    if (members.size() < 2) {
      mesh_group_of_.push_back(kNoMeshGroup);
      continue;
    }
    mesh_group_of_.push_back(groups.size());
    groups.push_back({group_name(g), std::move(members), point_to_point(g.kind) ? kChannelFrameWords : 0});
  }
  std::vector<std::size_t> gloo_data_group(stages, kNoMeshGroup);
  for (std::size_t stage = 0; stage < stages && topology_.tp > 1; ++stage) {
    if (!data.empty() && data[stage]) continue;
    std::vector<int> members;
    for (int t = 0; t < topology_.tp; ++t) members.push_back(static_cast<int>(stage) * topology_.tp + t);
    gloo_data_group[stage] = groups.size();
    groups.push_back({stages > 1 ? "data_group@pp" + std::to_string(stage) : std::string("data_group"), std::move(members), 0});
  }
  // The watchdog may wait for a transfer due up to the horizon; Gloo gives up a little after, so no
  // thread waits in it forever.
  const TimeNs transport_timeout_ns = cfg_.world.bounds.horizon_ns + cfg_.watchdog_ns + 250'000'000;
  mesh_ = std::make_unique<GlooMesh>(std::move(groups), std::chrono::milliseconds(transport_timeout_ns / 1'000'000));
  data_.resize(stages);
  for (std::size_t stage = 0; stage < stages; ++stage) {
    if (!data.empty() && data[stage]) data_[stage] = std::move(data[stage]);
    if (gloo_data_group[stage] != kNoMeshGroup) data_[stage] = make_gloo_data_group(*mesh_, gloo_data_group[stage]);
  }
  if (topology_.tp == 1) {
    stats_.data_group = "none (one rank per stage: the forward exchanges nothing)";
  } else {
    stats_.data_group = data_[0]->describe() + (stages > 1 ? ", one per stage (" + std::to_string(stages) + " stages)" : "");
  }
}

// A fresh Gloo connection's first exchanges cost milliseconds, and NCCL connects its peers at its
// first collective (hundreds of ms): pay both before the clock starts. Every member visits the
// groups in one order, so the rounds cannot deadlock.
void ThreadWorld::warm_up_mesh() {
  constexpr int kRounds = 8;
  // Above any sequence a run reaches: a warm-up frame never matches a run's receive.
  constexpr std::uint64_t kWarmUpSlot = std::uint64_t{1} << 62;
  std::vector<std::thread> members;
  std::mutex error_mu;
  std::string error;  // the first member's transport failure: the run cannot start
  for (int r = 0; r < cfg_.world.ranks; ++r) {
    members.emplace_back([&, r] {
      std::vector<std::int64_t> frame(kChannelFrameWords, 0);
      std::vector<std::int64_t> frames;
      std::vector<float> activations(kFrameWords);
      DataGroup* data = data_[static_cast<std::size_t>(topology_.stage(r))].get();
      try {
        for (int i = 0; i < kRounds; ++i) {
          for (std::size_t g = 0; g < mesh_->group_count(); ++g) {
            const MeshGroup& group = mesh_->group(g);
            if (std::find(group.members.begin(), group.members.end(), r) == group.members.end()) continue;
            const auto slot = kWarmUpSlot + static_cast<std::uint64_t>(i);
            if (group.frame_words > 0 && r == group.members.front()) {
              if (!mesh_->wait_send(*mesh_->send(g, r, frame, slot))) throw CollectiveFailed("warm-up send ended");
            } else if (group.frame_words > 0) {
              if (!mesh_->recv(g, r, frame, slot)) throw CollectiveFailed("warm-up receive ended");
            } else {
              frames.assign(kFrameWords * group.members.size(), 0);
              mesh_->all_gather(g, r, std::span<const std::int64_t>(frame).first(kFrameWords), frames);
            }
          }
          if (data == nullptr) continue;
          frames.assign(kFrameWords * static_cast<std::size_t>(topology_.tp), 0);
          data->all_gather(topology_.tp_rank(r), std::span<const std::int64_t>(frame).first(kFrameWords), frames);
          data->all_reduce_sum(topology_.tp_rank(r), activations);
        }
      } catch (const std::exception& e) {
        {
          std::lock_guard<std::mutex> lock(error_mu);
          if (error.empty()) error = e.what();
        }
        // No watchdog runs yet: the peers waiting for this member are released here.
        for (auto& d : data_) {
          if (d) d->abort();
        }
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
  const std::size_t slot = table_.add_actor(rank, kind);
  HCSIM_ASSERT(slot == actors_.size());
  actors_.push_back(std::make_unique<ActorRuntime>(*this, slot, rank, kind));
  return *actors_.back();
}

void ThreadWorld::spawn(Runtime& rt, Task<> task) {
  HCSIM_ASSERT(threads_.empty());
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    if (actors_[i].get() != &rt) continue;
    table_.set_task(i, std::move(task));
    return;
  }
  HCSIM_ASSERT(false);  // not an actor of this world
}

bool ThreadWorld::left(std::size_t actor) const { return actors_[actor]->exited; }

std::vector<WorkItem> ThreadWorld::work_owed() const {
  std::lock_guard<std::mutex> lock(world_mu_);
  return work_.owed();
}

std::vector<ActorState> ThreadWorld::actor_states() const {
  std::lock_guard<std::mutex> lock(world_mu_);
  return table_.states([this](std::size_t i) { return left(i); });
}

Verdict ThreadWorld::finish(Verdict v) {
  std::lock_guard<std::mutex> lock(world_mu_);
  return table_.finish(std::move(v), [this](std::size_t i) { return left(i); });
}

WatchTick ThreadWorld::wait_tick(std::chrono::nanoseconds tick) {
  std::unique_lock<std::mutex> lock(world_mu_);
  world_cv_.wait_for(lock, tick);
  WatchTick t;
  t.now_ns = now_ns();
  t.transport_error = stats_.transport_error;
  t.last_progress_ns = last_progress_ns_;
  t.work_done = work_.all_done() && requests_.arrivals_taken();
  t.work_owed = work_.owed_count() > 0;
  const auto has_left = [this](std::size_t i) { return left(i); };
  t.last_due_transfer_ns = table_.last_due_transfer_ns(has_left);
  t.last_transfer_done_ns = last_transfer_done_ns_;
  t.none_runnable = table_.none_runnable(has_left);
  return t;
}

std::optional<Verdict> ThreadWorld::with_work(const std::function<std::optional<Verdict>(const WorkLedger&)>& read) {
  std::lock_guard<std::mutex> lock(world_mu_);
  return read(work_);
}

void ThreadWorld::stop_actors(bool abort) {
  (abort ? abort_ : stop_).store(true);
  // With stages, a graceful stop closes the transports too (see the header).
  const bool close = abort || topology_.pp > 1;
  if (close && mesh_) mesh_->abort();
  for (auto& d : data_) {
    if (!close || !d) continue;
    d->abort();
    if (abort) stats_.data_group_aborted = d->abort_action();
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
    for (std::size_t i = 0; i < actors_.size(); ++i) {
      if (left(i)) continue;
      const ActorState a = table_.state(i, false);
      stats_.abandoned_actors.append(stats_.abandoned_actors.empty() ? "" : "; ").append(actor_label(a)).append(" ").append(describe_wait(a));
    }
    for (auto& t : threads_) t.detach();  // stuck in a call nothing can interrupt
  }
}

Verdict ThreadWorld::run() {
  HCSIM_ASSERT(threads_.empty());
  actors_running_ = static_cast<int>(actors_.size());
  // The clock starts once every thread exists: creating them takes hundreds of microseconds, and
  // an actor started late would run its first steps behind the model's clock, seeing what other
  // actors made at later model times (a hit query's result at the scheduler's first pass).
  int waiting_at_start = 0;
  bool started = false;
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    threads_.emplace_back([this, i, &waiting_at_start, &started] {
      // Linux lets a timed wait overrun by the thread's timer slack, 50 us by default: a 1 ms
      // scheduler pass would drift from the model's by that much each time.
      (void)::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      {
        std::unique_lock<std::mutex> lock(world_mu_);
        ++waiting_at_start;
        world_cv_.notify_all();
        world_cv_.wait(lock, [&] { return started; });
      }
      ActorRuntime& a = *actors_[i];
      {
        std::unique_lock<std::mutex> lock(ranks_[static_cast<std::size_t>(a.rank())]->mu);
        a.held = &lock;
        try {
          table_.task(i).handle().resume();  // returns when the actor finished, died or parked
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
  {
    std::unique_lock<std::mutex> lock(world_mu_);
    world_cv_.wait(lock, [&] { return waiting_at_start == static_cast<int>(actors_.size()); });
    start_ = std::chrono::steady_clock::now();
    started = true;
    world_cv_.notify_all();
  }
  Watchdog dog(*this, WatchdogBounds{cfg_.world.ranks, cfg_.world.bounds, cfg_.watchdog_ns});
  Verdict v = dog.watch();
  stats_.watchdog_fired = dog.firing().fired;
  stats_.watchdog_reason = dog.firing().reason;
  stats_.watchdog_fired_ns = dog.firing().at_ns;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (internal_error_) std::rethrow_exception(internal_error_);
  return v;
}

}  // namespace hcsim
