#include "sim/world.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

// What one actor is blocked on; kept compact because it is written on every world call.
class SimWorld::ActorRuntime final : public Runtime {
 public:
  ActorRuntime(SimWorld& w, int rank, ActorKind kind, int index) : w_(w), rank_(rank), kind_(kind), index_(index) {}
  int index() const { return index_; }

  int rank() const override { return rank_; }
  int world_size() const override { return w_.cfg_.ranks; }
  ActorKind actor() const override { return kind_; }
  TimeNs now_ns() const override { return w_.kernel_.now_ns(); }

  SignalId make_signal(std::string_view name, ActorKind producer) override {
    w_.signals_.push_back({std::string(name), rank_, producer, {}});
    return static_cast<SignalId>(w_.signals_.size() - 1);
  }
  void notify(SignalId signal) override {
    auto& s = w_.signals_.at(static_cast<std::size_t>(signal));
    HCSIM_ASSERT(s.rank == rank_);
    for (auto h : s.waiters) w_.kernel_.schedule_at(w_.kernel_.now_ns(), h, rank_);
    s.waiters.clear();
  }

  int take_arrivals(std::span<RequestId> out) override { return w_.requests_.take_arrivals(now_ns(), out); }
  int take_aborts(std::span<RequestId> out) override { return w_.requests_.take_aborts(now_ns(), out); }
  TimeNs next_arrival_ns() const override { return w_.requests_.next_due_ns(); }
  void work_started(RequestId r) override {
    HCSIM_ASSERT(r >= 0 && static_cast<std::size_t>(r) < w_.request_count_);
    auto& t = w_.work_started_ns_[static_cast<std::size_t>(r)];
    if (t >= 0) return;
    t = now_ns();
    if (w_.finished_ranks_[static_cast<std::size_t>(r)] < w_.cfg_.ranks) w_.owed_by_start_.insert({t, r});
  }
  void work_finished(RequestId r) override {
    HCSIM_ASSERT(r >= 0 && static_cast<std::size_t>(r) < w_.request_count_);
    std::vector<bool>& by_rank = w_.work_finished_[static_cast<std::size_t>(r)];
    HCSIM_ASSERT(!by_rank[static_cast<std::size_t>(rank_)]);
    by_rank[static_cast<std::size_t>(rank_)] = true;
    if (++w_.finished_ranks_[static_cast<std::size_t>(r)] == w_.cfg_.ranks) w_.owed_by_start_.erase({w_.work_started_ns_[static_cast<std::size_t>(r)], r});
    if (++w_.finishes_ == w_.request_count_ * static_cast<std::size_t>(w_.cfg_.ranks)) w_.kernel_.stop();
  }

  void emit(EventKind kind, RequestId request, std::int64_t a, std::int64_t b, std::int64_t c) override {
    w_.log_.append({now_ns(), static_cast<std::int16_t>(rank_), kind_, kind, request, a, b, c});
  }

  TimeNs copy_done_ns(StorageOp op, RequestId request, std::int64_t pages) override {
    WorldCall c = copy_call(op, request, pages);
    const StoragePlan p = w_.storage_.plan(rank_, c, now_ns());
    emit(EventKind::kStorageCall, request, static_cast<std::int64_t>(op), p.never_completes ? kStorageNever : p.duration_ns, p.result);
    return p.never_completes ? kNever : now_ns() + p.duration_ns;
  }

  // For diagnosis.
  WaitKind wait = WaitKind::kRunnable;
  TimeNs since_ns = 0;
  const WorldCall* call = nullptr;
  std::uint64_t seq = 0;
  StoragePlan plan;

 protected:
  bool submit(WorldCall& c, std::coroutine_handle<> h) override {
    Kernel& k = w_.kernel_;
    since_ns = k.now_ns();
    call = &c;
    switch (c.kind) {
      case WorldCall::Kind::kSleep:
        HCSIM_ASSERT(c.duration_ns >= 0);
        wait = WaitKind::kSleep;
        k.schedule_at(k.now_ns() + c.duration_ns, h, rank_);
        break;
      case WorldCall::Kind::kWait:
        wait = WaitKind::kSignal;
        w_.signals_.at(static_cast<std::size_t>(c.signal)).waiters.push_back(h);
        break;
      case WorldCall::Kind::kCollective:
        wait = WaitKind::kCollective;
        emit(EventKind::kCollectiveEnter, kNoRequest, static_cast<std::int64_t>(c.group),
             static_cast<std::int64_t>(w_.matcher_.next_seq(c.group, rank_)), collective_size(c));
        seq = w_.matcher_.enter(k, rank_, c, h);
        break;
      case WorldCall::Kind::kStorage:
        wait = WaitKind::kStorage;
        plan = w_.storage_.plan(rank_, c, k.now_ns());
        if (c.timeout_ns > 0 && !plan.raises && (plan.never_completes || plan.duration_ns > c.timeout_ns)) {
          plan.never_completes = false;  // the caller gives up; the late completion is dropped
          plan.duration_ns = c.timeout_ns;
          plan.result = 0;
        }
        c.result = plan.result;
        c.raised = plan.raises;
        emit(EventKind::kStorageCall, c.request, static_cast<std::int64_t>(c.storage_op),
             plan.raises ? kStorageRaises : plan.never_completes ? kStorageNever : plan.duration_ns, plan.result);
        if (!plan.never_completes) k.schedule_at(k.now_ns() + plan.duration_ns, h, rank_);
        break;
    }
    return true;
  }

 private:
  SimWorld& w_;
  int rank_;
  ActorKind kind_;
  int index_;
};

SimWorld::SimWorld(WorldConfig cfg, StorageModel& storage, std::vector<Arrival> arrivals, std::size_t request_count,
                   std::vector<Arrival> aborts)
    : cfg_(cfg),
      storage_(storage),
      matcher_(cfg.ranks, cfg.collective),
      log_(cfg.log_kept_max),
      requests_(std::move(arrivals), std::move(aborts)),
      request_count_(request_count),
      work_started_ns_(request_count, -1),
      work_finished_(request_count, std::vector<bool>(static_cast<std::size_t>(cfg.ranks), false)),
      finished_ranks_(request_count, 0) {
  HCSIM_ASSERT(cfg.ranks > 0 && cfg.bounds.check_period_ns > 0);
  if (cfg_.events_max == 0) cfg_.events_max = static_cast<std::uint64_t>(limit_value(Limit::kEvents));
  HCSIM_ASSERT(cfg_.events_max > 0);
}

SimWorld::~SimWorld() = default;

Runtime& SimWorld::add_actor(int rank, ActorKind kind) {
  HCSIM_ASSERT(rank >= 0 && rank < cfg_.ranks);
  int index = 0;
  for (const auto& a : actors_) index += a->rank() == rank && a->actor() == kind ? 1 : 0;
  actors_.push_back(std::make_unique<ActorRuntime>(*this, rank, kind, index));
  tasks_.emplace_back();
  return *actors_.back();
}

void SimWorld::spawn(Runtime& rt, Task<> task) {
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    if (actors_[i].get() != &rt) continue;
    HCSIM_ASSERT(!tasks_[i].handle());
    kernel_.schedule_at(kernel_.now_ns(), task.handle(), actors_[i]->rank());
    tasks_[i] = std::move(task);
    return;
  }
  HCSIM_ASSERT(false);  // not an actor of this world
}

std::vector<WorkItem> SimWorld::work_owed() const { return owed_work(work_started_ns_, work_finished_, cfg_.ranks); }

Verdict SimWorld::finish(Verdict v) {
  v.actors = actor_states();
  name_lost_worker(v);
  return v;
}

TimeNs SimWorld::last_due_transfer_ns() const {
  TimeNs last = 0;
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    const ActorRuntime& a = *actors_[i];
    if (!tasks_[i].done() && a.wait == WaitKind::kStorage && !a.plan.never_completes) {
      last = std::max(last, a.since_ns + a.plan.duration_ns);
    }
  }
  return last;
}

std::uint64_t SimWorld::waits_digest() const {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](std::uint64_t word) {
    h ^= word;
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  };
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    const ActorRuntime& a = *actors_[i];
    mix((static_cast<std::uint64_t>(a.wait) << 1) | (tasks_[i].done() ? 1U : 0U));
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

std::vector<ActorState> SimWorld::actor_states() const {
  std::vector<ActorState> out;
  for (std::size_t i = 0; i < actors_.size(); ++i) {
    const ActorRuntime& a = *actors_[i];
    ActorState s;
    s.rank = a.rank();
    s.actor = a.actor();
    s.index = a.index();
    s.wait = a.wait;
    s.since_ns = a.since_ns;
    if (tasks_[i].done()) {
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

Verdict SimWorld::run() {
  TimeNs next_check_ns = cfg_.bounds.check_period_ns;
  for (;;) {
    const std::uint64_t budget = cfg_.events_max - std::min(cfg_.events_max, kernel_.events_processed());
    const auto end = kernel_.run(std::min(next_check_ns, cfg_.bounds.horizon_ns), budget);
    const TimeNs now = kernel_.now_ns();
    if (matcher_.mismatch()) {
      // Ranks slightly behind still reach the mismatched sequence (or block before it); let them.
      kernel_.run(matcher_.mismatch()->at_ns + cfg_.bounds.settle_ns, cfg_.events_max - std::min(cfg_.events_max, kernel_.events_processed()));
      return finish(mismatch_verdict(matcher_, cfg_.ranks));
    }
    if (finishes_ == request_count_ * static_cast<std::size_t>(cfg_.ranks) && requests_.arrivals_taken()) {
      // Quiescence: no new work; let in-flight transfers land and releases drain, then stop.
      // A transfer started meanwhile pushes the end out, within the horizon and the event budget.
      // Each round either reaches quiet_ns, or is stopped by an actor, or ends the loop.
      for (TimeNs quiet_ns = now; !matcher_.mismatch();) {
        quiet_ns = std::min(std::max(now, last_due_transfer_ns()) + cfg_.bounds.quiesce_ns, cfg_.bounds.horizon_ns);
        if (kernel_.now_ns() >= quiet_ns || kernel_.events_processed() >= cfg_.events_max) break;
        const auto round = kernel_.run(quiet_ns, cfg_.events_max - kernel_.events_processed());
        if (round == Kernel::RunEnd::kQueueEmpty || round == Kernel::RunEnd::kEventLimit) break;
      }
      if (matcher_.mismatch()) {
        kernel_.run(matcher_.mismatch()->at_ns + cfg_.bounds.settle_ns, cfg_.events_max - std::min(cfg_.events_max, kernel_.events_processed()));
        return finish(mismatch_verdict(matcher_, cfg_.ranks));
      }
      Verdict v;
      v.at_ns = now;
      v.headline = "complete: every request was scheduled on every rank";
      return finish(std::move(v));
    }
    if (end == Kernel::RunEnd::kQueueEmpty) return finish(deadlock_verdict(matcher_, cfg_.ranks, now, work_owed().size()));
    if (end == Kernel::RunEnd::kEventLimit) {
      Verdict v;
      v.kind = HangKind::kStarvation;
      v.at_ns = now;
      v.headline = "starvation: the run reached its bound of " + std::to_string(cfg_.events_max) +
                   " events with requests still owed a schedule (raise it with --limit events=N)";
      return finish(std::move(v));
    }
    if (sampler_) sampler_(now);
    if (auto v = check_stalled_collectives(matcher_, cfg_.ranks, now, cfg_.bounds)) return finish(std::move(*v));
    // The oldest owed request decides whether any starves; only then is the list built.
    if (!owed_by_start_.empty() && now - owed_by_start_.begin()->first >= cfg_.bounds.starvation_ns) {
      if (auto v = check_starvation(work_owed(), now, cfg_.bounds)) return finish(std::move(*v));
    }
    if (now >= cfg_.bounds.horizon_ns) {
      Verdict v;
      v.kind = HangKind::kStarvation;
      v.at_ns = now;
      v.headline = "starvation: the horizon passed with requests still owed a schedule";
      return finish(std::move(v));
    }
    next_check_ns += cfg_.bounds.check_period_ns;
  }
}

}  // namespace hcsim
