// Runtime: everything the policy model asks of the world it runs in, and nothing more.
//
// One Runtime object belongs to one actor (a rank's scheduler, prefetch thread, an IO worker or the
// backup thread). The simulator answers with virtual time and a deterministic storage model; the
// GPU backend with steady_clock, Gloo/NCCL and files. Policy code never learns which:
//
//   co_await rt.sleep_ns(500'000);                                  // costs time in both worlds
//   std::array<std::int64_t, 2> v{1 - can, terminated};
//   co_await rt.collective(Group::kTp, CollectiveOp::kAllReduceMax, v);
//   const std::int64_t pages = co_await rt.storage(StorageOp::kKvGet, rid, keys);  // pages read
//   const TimeNs done_ns = rt.copy_done_ns(StorageOp::kHostToDevice, rid, pages);   // a copy's modelled end
#pragma once

#include <coroutine>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "policy/task.h"
#include "policy/trace_event.h"

namespace hcsim {

using PageKey = std::uint64_t;
using SignalId = std::int32_t;

// Process groups. Each actor kind uses its own, as upstream does, so the scheduler's, the prefetch
// thread's and the sync thread's collectives never interleave on one communicator. With DP
// attention or attention CP (policy/topology.h) the attention kinds split a stage's TP ranks. The
// *Pp kinds span the pipeline stages at one TP position (the acknowledgement design's hit and
// completion groups, #27010). kPpRequests, kPpProxy and kPpSync are point-to-point channels from a
// rank to its counterpart on the next stage: the request lists (point_to_point_pyobj on the world
// CPU group), the forward's proxy tensors (the PP device group), and the chained counts (the PP CPU
// group, HIRADIX_PP_SYNC).
enum class GroupKind : std::uint8_t {
  kTp, kPrefetchTp, kAttnTp, kAttnCp, kPrefetchCp, kPpRequests, kPpProxy, kPpSync,
  kPrefetchPp, kSyncTp, kSyncCp, kSyncPp,
};
inline constexpr int kGroupKindCount = 12;
constexpr bool point_to_point(GroupKind k) { return k == GroupKind::kPpRequests || k == GroupKind::kPpProxy || k == GroupKind::kPpSync; }
// The longest payload one send carries, in words: a world may size its channel frames by it.
inline constexpr std::size_t kChannelPayloadWordsMax = 2048;

// A communicator. Policy code names a kind (index kWhole); the world resolves it for the calling
// rank to the group that rank belongs to: the kind's group `index` where the topology splits the
// kind, or another kind's group with the same ranks, as upstream reuses the TP group object. With
// pipeline stages every group belongs to one stage. A point-to-point channel is named in full by
// policy code (Topology::channel_to_next): `index` is the TP rank, `stage` the sending stage.
struct Group {
  static constexpr std::int16_t kWhole = -1;    // the kind's one group, spanning every TP rank
  static constexpr std::int8_t kOnlyStage = -1;  // no pipeline stages: the one stage
  GroupKind kind = GroupKind::kTp;
  std::int16_t index = kWhole;
  std::int8_t stage = kOnlyStage;

  static const Group kTp;          // tp_cpu_group: request broadcast, forward, idle agreement
  static const Group kPrefetchTp;  // the prefetch thread's group over the attention-TP ranks
  static const Group kAttnTp;      // attention-TP CPU group
  static const Group kAttnCp;      // attention-CP CPU group
  static const Group kPrefetchCp;  // the prefetch thread's group over the attention-CP ranks
  friend constexpr bool operator==(Group, Group) = default;
  friend constexpr auto operator<=>(Group a, Group b) {
    return std::tuple(a.stage, a.kind, a.index) <=> std::tuple(b.stage, b.kind, b.index);
  }
  // As events record it: the kind for a whole group (so runs without split groups keep their
  // digests), else kind + 8 * (index + 1); kinds from 8 on add 1 << 19, a stage (stage + 1) << 20.
  static constexpr int kHighKindShift = 19;
  static constexpr int kStageShift = 20;
  constexpr std::int64_t code() const {
    const auto k = static_cast<std::int64_t>(kind);
    return (k & 7) + ((k >> 3) << kHighKindShift) + 8 * (index + 1) + (static_cast<std::int64_t>(stage + 1) << kStageShift);
  }
  static std::optional<Group> from_code(std::int64_t code);
};
inline constexpr Group Group::kTp{GroupKind::kTp};
inline constexpr Group Group::kPrefetchTp{GroupKind::kPrefetchTp};
inline constexpr Group Group::kAttnTp{GroupKind::kAttnTp};
inline constexpr Group Group::kAttnCp{GroupKind::kAttnCp};
inline constexpr Group Group::kPrefetchCp{GroupKind::kPrefetchCp};
// "tp_cpu_group", "attn_tp_cpu_group[1]", "prefetch_group", "tp_cpu_group@pp1",
// "pp_proxy[0] pp0->pp1"
std::string group_name(Group g);

// kSend and kRecv are the two ends of a point-to-point transfer on a channel.
enum class CollectiveOp : std::uint8_t { kAllReduceMin, kAllReduceMax, kBroadcast, kForward, kBarrier, kSend, kRecv };
std::string_view collective_op_name(CollectiveOp op);

// What the world moves for the policy, each with a modelled duration: L3 calls, and the copies
// between host and device memory on a rank's copy streams.
enum class StorageOp : std::uint8_t {
  kHitQuery,    // result: leading KV keys present; `present[i]` = sidecar object at key i exists
  kKvGet,       // result: leading pages read into host memory
  kSidecarGet,  // result: how many of the keys' sidecar objects were read; `present[i]`, if given, = key i's was
  kKvSet,       // result: pages written to L3 (present for later queries from then on)
  kSidecarSet,  // result: how many of the keys' sidecar objects were written (Mamba: one key; SWA: a window)
  kDeviceToHost,  // a write-through copy of `pages` pages to host memory (copy_done_ns)
  kHostToDevice,  // a load-back copy of `pages` pages to device memory (copy_done_ns)
};
inline constexpr int kStorageOpCount = 7;
std::string_view storage_op_name(StorageOp op);

// One request from an actor to the world. It lives in the awaiting coroutine frame until the world
// resumes the actor, so the world may keep a pointer to it while the actor waits.
struct WorldCall {
  enum class Kind : std::uint8_t { kSleep, kWait, kCollective, kStorage, kWaitSends };
  Kind kind = Kind::kSleep;
  TimeNs duration_ns = 0;               // kSleep
  SignalId signal = -1;                 // kWait
  Group group = Group::kTp;      // kCollective, kWaitSends
  CollectiveOp op = CollectiveOp::kAllReduceMin;
  std::span<std::int64_t> payload;      // kCollective: in and out
  StorageOp storage_op = StorageOp::kHitQuery;  // kStorage
  RequestId request = kNoRequest;
  std::span<const PageKey> keys;
  std::span<std::uint8_t> present;      // kHitQuery and kSidecarGet output, one entry per key
  // kStorage: the host slots a get reads into or a set writes from, one per key; kForward: the
  // host KV slots the batch loads back to the device. Worlds without real memory ignore them.
  std::span<const std::int32_t> slots;
  TimeNs timeout_ns = 0;                // kStorage: fail the call if it has not completed by then; 0: wait
  std::int64_t pages = 0;               // copies: how many KV pages
  std::int64_t result = 0;
  bool raised = false;                  // the call raised: the awaiting actor gets an exception
};

// The call a world plans a copy (copy_done_ns) with, as it plans an L3 call.
inline WorldCall copy_call(StorageOp op, RequestId request, std::int64_t pages) {
  WorldCall c;
  c.kind = WorldCall::Kind::kStorage;
  c.storage_op = op;
  c.request = request;
  c.pages = pages;
  return c;
}

class Runtime;

// The awaitable of every world call. await_suspend returns false when the world completed the call
// synchronously (a thread-per-actor world), true when it will resume the actor later (the simulator).
class WorldAwait {
 public:
  WorldAwait(Runtime& rt, const WorldCall& call) : rt_(rt), call_(call) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h);
  std::int64_t await_resume() const {
    if (call_.raised) throw WorldCallRaised(std::string("L3 ") + std::string(storage_op_name(call_.storage_op)) + " raised");
    return call_.result;
  }

 private:
  Runtime& rt_;
  WorldCall call_;
};

// Threading contract: the actors of one rank share state (the prefetch operation, queues, slot
// pools) without locks of their own, as upstream's Python threads rely on the GIL. A world that
// runs actors on threads must run each rank's actors under one rank lock that it releases only
// inside world calls, and must implement wait() so that a notify() made under that lock is never
// missed. The simulator, with one actor running at a time, meets this trivially.
class Runtime {
 public:
  virtual ~Runtime() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual ActorKind actor() const = 0;
  // This actor's time: the kernel's clock in the simulator, the actor's model clock in the threaded
  // world (which the real clock never trails).
  virtual TimeNs now_ns() const = 0;

  // Wake-ups between actors of one rank. `producer` names who notifies, for wait-for graphs.
  virtual SignalId make_signal(std::string_view name, ActorKind producer) = 0;
  virtual void notify(SignalId signal) = 0;

  // Requests handed to this rank by the outside world since the last call (upstream: what TP
  // rank 0 receives from the tokenizer). Returns how many were written into `out`.
  virtual int take_arrivals(std::span<RequestId> out) = 0;
  // Client aborts received since the last call (upstream: abort_request from the tokenizer).
  virtual int take_aborts(std::span<RequestId> out) = 0;
  // When the next arrival or abort not yet taken is due, or -1 if none is left (upstream: what a
  // scheduler sleeping on idle wakes for).
  virtual TimeNs next_arrival_ns() const = 0;
  // Work accounting for completion and starvation: a request is owed a schedule from arrival on.
  virtual void work_started(RequestId request) = 0;
  virtual void work_finished(RequestId request) = 0;

  virtual void emit(EventKind kind, RequestId request, std::int64_t a = 0, std::int64_t b = 0,
                    std::int64_t c = 0) = 0;
  // The same by name: rt.emit(rid, ScheduleFields{.extend_tokens = e, .storage_hit_tokens = s, ...}).
  template <class Fields>
  void emit(RequestId request, const Fields& fields) {
    const auto& [a, b, c] = fields;
    emit(Fields::kKind, request, a, b, c);
  }

  // An asynchronous copy (kDeviceToHost or kHostToDevice) of `pages` KV pages for `request`, issued
  // now on this rank's copy stream: when it will have completed (upstream: when its CUDA
  // finish_event.query() turns true), or kNever. The caller does not wait; it polls the time.
  static constexpr TimeNs kNever = INT64_MAX;
  virtual TimeNs copy_done_ns(StorageOp op, RequestId request, std::int64_t pages) = 0;

  WorldAwait sleep_ns(TimeNs duration_ns) {
    WorldCall c;
    c.kind = WorldCall::Kind::kSleep;
    c.duration_ns = duration_ns;
    return {*this, c};
  }
  WorldAwait wait(SignalId signal) {
    WorldCall c;
    c.kind = WorldCall::Kind::kWait;
    c.signal = signal;
    return {*this, c};
  }
  WorldAwait collective(Group group, CollectiveOp op, std::span<std::int64_t> payload) {
    WorldCall c;
    c.kind = WorldCall::Kind::kCollective;
    c.group = group;
    c.op = op;
    c.payload = payload;
    return {*this, c};
  }
  // The forward of a batch of `tokens[0]` tokens over `group`, after loading `load_back_slots` from
  // host to device.
  WorldAwait forward(std::span<std::int64_t, 1> tokens, std::span<const std::int32_t> load_back_slots, Group group = Group::kTp) {
    WorldCall c;
    c.kind = WorldCall::Kind::kCollective;
    c.group = group;
    c.op = CollectiveOp::kForward;
    c.payload = tokens;
    c.slots = load_back_slots;
    return {*this, c};
  }
  // Point to point on `channel` (Topology::channel_to_next, from the sender's rank): a send
  // deposits a copy of `payload` and returns at once (an isend); a receive blocks until the peer's
  // next send on the channel and takes its payload, which must be as long as `payload` (a length
  // that differs is a crash: the receiver cannot take it). On kPpProxy the length is payload[0]
  // tokens, as a forward's.
  WorldAwait send(Group channel, std::span<std::int64_t> payload) { return collective(channel, CollectiveOp::kSend, payload); }
  WorldAwait recv(Group channel, std::span<std::int64_t> payload) { return collective(channel, CollectiveOp::kRecv, payload); }
  // Blocks until the peer has received every send this rank made on `channel` (work.wait()).
  WorldAwait wait_sends(Group channel) {
    WorldCall c;
    c.kind = WorldCall::Kind::kWaitSends;
    c.group = channel;
    c.op = CollectiveOp::kSend;
    return {*this, c};
  }
  // An L3 call. With `timeout_ns`, a call not done by then fails (result 0) and its late
  // completion, if any, is dropped.
  WorldAwait storage(StorageOp op, RequestId request, std::span<const PageKey> keys, std::span<std::uint8_t> present = {},
                     TimeNs timeout_ns = 0, std::span<const std::int32_t> slots = {}) {
    WorldCall c;
    c.kind = WorldCall::Kind::kStorage;
    c.storage_op = op;
    c.request = request;
    c.keys = keys;
    c.present = present;
    c.timeout_ns = timeout_ns;
    c.slots = slots;
    return {*this, c};
  }

 protected:
  friend class WorldAwait;
  // Starts `call`. Returns true if `h` will be resumed by the world later, false if the call has
  // already completed and the caller continues at once.
  virtual bool submit(WorldCall& call, std::coroutine_handle<> h) = 0;
};

inline bool WorldAwait::await_suspend(std::coroutine_handle<> h) { return rt_.submit(call_, h); }

}  // namespace hcsim
