#include "sim/world.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

// One actor's face to the world; what it is blocked on lives in the world's actor table.
class SimWorld::ActorRuntime final : public Runtime {
 public:
  ActorRuntime(SimWorld& w, std::size_t slot, int rank, ActorKind kind) : w_(w), slot_(slot), rank_(rank), kind_(kind) {}

  int rank() const override { return rank_; }
  int world_size() const override { return w_.cfg_.ranks; }
  ActorKind actor() const override { return kind_; }
  TimeNs now_ns() const override { return w_.kernel_.now_ns(); }

  SignalId make_signal(std::string_view name, ActorKind producer) override {
    w_.signal_waiters_.emplace_back();
    return w_.table_.add_signal(name, rank_, producer);
  }
  void notify(SignalId signal) override {
    HCSIM_ASSERT(w_.table_.signal(signal).rank == rank_);
    auto& waiters = w_.signal_waiters_[static_cast<std::size_t>(signal)];
    for (auto h : waiters) w_.kernel_.schedule_at(w_.kernel_.now_ns(), h, rank_);
    waiters.clear();
  }

  int take_arrivals(std::span<RequestId> out) override {
    return w_.requests_.take_arrivals(now_ns(), out, w_.cfg_.topology().replica(rank_));
  }
  int take_aborts(std::span<RequestId> out) override { return w_.requests_.take_aborts(now_ns(), out); }
  TimeNs next_arrival_ns() const override { return w_.requests_.next_due_ns(); }
  void work_started(RequestId r) override { w_.work_.start(r, now_ns()); }
  void work_finished(RequestId r) override {
    if (w_.work_.finish(r, rank_)) w_.kernel_.stop();
  }

  using Runtime::emit;
  void emit(EventKind kind, RequestId request, std::int64_t a, std::int64_t b, std::int64_t c) override {
    w_.log_.append({now_ns(), static_cast<std::int16_t>(rank_), kind_, kind, request, a, b, c});
  }

  TimeNs copy_done_ns(StorageOp op, RequestId request, std::int64_t pages) override {
    WorldCall c = copy_call(op, request, pages);
    const StoragePlan p = w_.storage_.plan(rank_, c, now_ns());
    emit(request, storage_call_event(op, p, p.result));
    return p.never_completes ? kNever : now_ns() + p.duration_ns;
  }

 protected:
  // The record keeps the last call's kind after the actor resumes: the simulator only reads it
  // while the actor is parked, and the schedule explorer hashes it as it stands.
  bool submit(WorldCall& c, std::coroutine_handle<> h) override {
    Kernel& k = w_.kernel_;
    ActorWait& rec = w_.table_.wait(slot_);
    switch (c.kind) {
      case WorldCall::Kind::kSleep:
        HCSIM_ASSERT(c.duration_ns >= 0);
        rec.block(WaitKind::kSleep, c, k.now_ns());
        k.schedule_at(k.now_ns() + c.duration_ns, h, rank_);
        break;
      case WorldCall::Kind::kWait:
        rec.block(WaitKind::kSignal, c, k.now_ns());
        w_.signal_waiters_.at(static_cast<std::size_t>(c.signal)).push_back(h);
        break;
      case WorldCall::Kind::kCollective: {
        c.group = w_.matcher_.resolve(c.group, rank_);  // the communicator this rank's group of the kind is
        const bool parks = c.op != CollectiveOp::kSend;
        if (parks) rec.block(WaitKind::kCollective, c, k.now_ns());
        // Entered, then logged: entering emits nothing and resumes nobody at once, so the log reads
        // as if the entry came first.
        const std::int64_t size = collective_size(c);  // before entering: a receive's payload is written then
        const std::uint64_t seq = w_.matcher_.enter(k, rank_, c, h);
        emit(kNoRequest, CollectiveEnterFields{.group = c.group.code(), .sequence = static_cast<std::int64_t>(seq), .payload_size = size});
        if (!parks) return false;  // an isend: the caller goes on
        rec.seq = seq;
        break;
      }
      case WorldCall::Kind::kWaitSends: {
        std::uint64_t seq = 0;
        if (w_.matcher_.wait_sends(rank_, c.group, h, seq)) return false;
        rec.block(WaitKind::kCollective, c, k.now_ns());
        rec.seq = seq;
        break;
      }
      case WorldCall::Kind::kStorage:
        rec.block(WaitKind::kStorage, c, k.now_ns());
        storage(c, h, rec.plan);
        break;
    }
    return true;
  }

 private:
  void storage(WorldCall& c, std::coroutine_handle<> h, StoragePlan& plan) {
    Kernel& k = w_.kernel_;
    plan = w_.storage_.plan(rank_, c, k.now_ns());
    if (c.timeout_ns > 0 && !plan.raises && (plan.never_completes || plan.duration_ns > c.timeout_ns)) {
      plan.never_completes = false;  // the caller gives up; the late completion is dropped
      plan.duration_ns = c.timeout_ns;
      plan.result = 0;
      std::fill(c.present.begin(), c.present.end(), 0);  // and has read nothing
    }
    c.result = plan.result;
    c.raised = plan.raises;
    emit(c.request, storage_call_event(c.storage_op, plan, plan.result));
    if (!plan.never_completes) k.schedule_at(k.now_ns() + plan.duration_ns, h, rank_);
  }

  SimWorld& w_;
  std::size_t slot_;  // in the world's actor table
  int rank_;
  ActorKind kind_;
};

SimWorld::SimWorld(WorldConfig cfg, StorageModel& storage, std::vector<Arrival> arrivals, std::size_t request_count,
                   std::vector<Arrival> aborts)
    : cfg_(std::move(cfg)),
      storage_(storage),
      matcher_(cfg_.topology(), cfg_.collective),
      log_(cfg_.log_kept_max),
      requests_(std::move(arrivals), std::move(aborts), cfg_.attn_dp),
      work_(request_count, cfg_.ranks, requests_.replica_of(request_count), cfg_.topology().replica_ranks()) {
  HCSIM_ASSERT(cfg_.ranks > 0 && cfg_.bounds.check_period_ns > 0);
  if (cfg_.events_max == 0) cfg_.events_max = static_cast<std::uint64_t>(limit_value(Limit::kEvents));
  HCSIM_ASSERT(cfg_.events_max > 0);
}

SimWorld::~SimWorld() = default;

Runtime& SimWorld::add_actor(int rank, ActorKind kind) {
  HCSIM_ASSERT(rank >= 0 && rank < cfg_.ranks);
  const std::size_t slot = table_.add_actor(rank, kind);
  HCSIM_ASSERT(slot == actors_.size());
  actors_.push_back(std::make_unique<ActorRuntime>(*this, slot, rank, kind));
  return *actors_.back();
}

void SimWorld::spawn(Runtime& rt, Task<> task) {
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    if (actors_[i].get() != &rt) continue;
    kernel_.schedule_at(kernel_.now_ns(), task.handle(), actors_[i]->rank());
    table_.set_task(i, std::move(task));
    return;
  }
  HCSIM_ASSERT(false);  // not an actor of this world
}

Verdict SimWorld::finish(Verdict v) const {
  return table_.finish(std::move(v), [this](std::size_t i) { return left(i); });
}

std::vector<ActorState> SimWorld::actor_states() const {
  return table_.states([this](std::size_t i) { return left(i); });
}

std::uint64_t SimWorld::waits_digest() const {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](std::uint64_t word) {
    h ^= word;
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  };
  for (std::size_t i = 0; i < table_.size(); ++i) {
    const ActorWait& a = table_.wait(i);
    mix((static_cast<std::uint64_t>(a.wait) << 1) | (left(i) ? 1U : 0U));
    mix(static_cast<std::uint64_t>(a.since_ns));
    if (a.call == nullptr) continue;
    switch (a.wait) {
      case WaitKind::kSleep: mix(static_cast<std::uint64_t>(a.call->duration_ns)); break;
      case WaitKind::kSignal: mix(static_cast<std::uint64_t>(a.call->signal)); break;
      case WaitKind::kCollective: mix(a.seq); break;
      case WaitKind::kStorage: mix(static_cast<std::uint64_t>(a.plan.duration_ns) ^ (static_cast<std::uint64_t>(a.call->storage_op) << 56)); break;
      default: break;
    }
  }
  return h;
}

WorldCheck SimWorld::check_at(TimeNs now_ns) const {
  WorldCheck c;
  c.now_ns = now_ns;
  c.ranks = cfg_.ranks;
  c.collectives = &matcher_;
  c.work = &work_;
  c.bounds = &cfg_.bounds;
  return c;
}

void SimWorld::settle_after_mismatch() {
  HCSIM_ASSERT(matcher_.mismatch());
  kernel_.run(matcher_.mismatch()->at_ns + cfg_.bounds.settle_ns, events_left());
}

void SimWorld::quiesce(TimeNs now_ns) {
  // A transfer started meanwhile pushes the end out, within the horizon and the event budget. A
  // round that ran no event reached quiet_ns, and the next one ends the loop: the event budget
  // bounds the rounds.
  const auto left_at = [this](std::size_t i) { return left(i); };
  while (!matcher_.mismatch()) {
    const TimeNs last_due_ns = table_.last_due_transfer_ns(left_at);
    const TimeNs quiet_ns = std::min(std::max(now_ns, last_due_ns) + cfg_.bounds.quiesce_ns, cfg_.bounds.horizon_ns);
    if (kernel_.now_ns() >= quiet_ns || kernel_.events_processed() >= cfg_.events_max) break;
    const auto round = kernel_.run(quiet_ns, cfg_.events_max - kernel_.events_processed());
    if (round == Kernel::RunEnd::kQueueEmpty || round == Kernel::RunEnd::kEventLimit) break;
  }
}

Verdict SimWorld::run() {
  TimeNs next_check_ns = cfg_.bounds.check_period_ns;
  // Every round moves the next check a period on, and the horizon's check ends the run.
  const TimeNs rounds_max = cfg_.bounds.horizon_ns / cfg_.bounds.check_period_ns + 2;
  for (TimeNs round = 0; round < rounds_max; ++round) {
    const auto end = kernel_.run(std::min(next_check_ns, cfg_.bounds.horizon_ns), events_left());
    WorldCheck c = check_at(kernel_.now_ns());
    if (matcher_.mismatch()) {
      settle_after_mismatch();
    } else if (work_.all_done() && requests_.arrivals_taken()) {
      quiesce(c.now_ns);
      if (matcher_.mismatch()) settle_after_mismatch();
      c.quiet_since_ns = c.now_ns;
    }
    c.none_runnable = end == Kernel::RunEnd::kQueueEmpty;
    c.event_bound_reached = end == Kernel::RunEnd::kEventLimit ? cfg_.events_max : 0;
    if (auto v = outright_verdict(c)) return finish(std::move(*v));
    if (sampler_) sampler_(c.now_ns);
    if (auto v = bound_verdict(c)) return finish(std::move(*v));
    next_check_ns += cfg_.bounds.check_period_ns;
  }
  HCSIM_ASSERT(false);  // the horizon's check returns a verdict
  return {};
}

}  // namespace hcsim
