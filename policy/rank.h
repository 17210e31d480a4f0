// Rank: one TP rank of upstream's HiMamba path (domain doc sections 1-4): the scheduler pass, the
// HiMamba cache's prefetch lifecycle, the prefetch thread, the IO workers on one FIFO and the
// write-through backup thread, over a host radix tree and host slot pools. Either world runs its
// actors, one Runtime each (spawn_ranks in sim/simulation.h does this for both worlds):
//
//   Rank r(policy, workload, rank_index);
//   Runtime& sched = world.add_actor(rank_index, ActorKind::kScheduler);
//   r.bind(sched);                                     // creates the rank's signals, once
//   world.spawn(sched, r.scheduler_loop(sched));
//   world.spawn(prefetch_rt, r.prefetch_thread(prefetch_rt));
//   world.spawn(io_rt, r.io_thread(io_rt));            // one per IO worker
//   world.spawn(backup_rt, r.backup_thread(backup_rt));
//
// The code follows upstream's order of checks and collectives, because hangs live in that order.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "policy/channel.h"
#include "policy/fifo.h"
#include "policy/host_radix_tree.h"
#include "policy/host_slot_pool.h"
#include "policy/policy_config.h"
#include "policy/prefetch_operation.h"
#include "policy/request.h"
#include "policy/runtime.h"
#include "policy/task.h"

namespace hcsim {

// Why a prefetch was not registered (register_skip's `reason`).
enum class SkipReason : std::int64_t { kThreshold, kRateLimited, kKvAlloc, kSidecarAlloc, kGroupDeclined };
std::string_view skip_reason_name(SkipReason r);  // "threshold", "rate_limited", "kv_alloc", ...

class Rank {
 public:
  Rank(const PolicyConfig& cfg, const std::vector<RequestSpec>& workload, int rank);
  Rank(const Rank&) = delete;
  Rank& operator=(const Rank&) = delete;

  // Creates the rank's signals; call once with any of its runtimes before spawning the actors.
  void bind(Runtime& rt);

  Task<> scheduler_loop(Runtime& rt);
  Task<> prefetch_thread(Runtime& rt);
  Task<> io_thread(Runtime& rt);  // one per IO worker, all on one FIFO
  Task<> backup_thread(Runtime& rt);  // write-through: host pages to L3
  // ack-design (#27010): the prefetch sync thread, which MIN-agrees the IO thread's acks over the
  // completion groups. A world spawns it only where sync_thread() says so.
  Task<> prefetch_sync_thread(Runtime& rt);
  bool sync_thread() const { return ack_design(); }
  // One IO thread under the acknowledgement design: its acks must reach the sync thread in the same
  // order on every rank (prefetch_io_aux_func stayed one thread, CC@001067ff).
  int io_workers() const { return cfg_.has(Fix::kIoWorkerPool) && !ack_design() ? 4 : 1; }
  // transfer-stall-timeout: how long an L3 read may stay in flight; 0: forever.
  TimeNs stall_timeout_ns() const { return cfg_.has(Fix::kTransferStallTimeout) ? 10'000'000'000 : 0; }

  const HostSlotPool& kv_pool() const { return kv_pool_; }
  const HostSlotPool& sidecar_pool() const { return sidecar_pool_; }

  // Host slots nobody will free: owned by a prefetch that ended and that the IO thread is done
  // with, queued for a release no drain took, or held by a write-through backup acked long ago and
  // never drained. Slots being written by a transfer in flight, or owned by live work, are not.
  std::vector<HostSlotPool::Leak> leaked_slots(TimeNs now_ns) const;
  std::int64_t leaked_slot_count(TimeNs now_ns) const;  // leaked_slots(now_ns).size(), without naming them

 private:
  // Whether a slot owned by work is held where nobody will free it (a question of its owner and
  // operation alone, not of the slot); and by whom, in words.
  bool leaked(const HostSlotPool::Record& r, TimeNs now_ns) const;
  std::string leak_owner(const HostSlotPool::Record& r) const;
  struct Ongoing {
    PrefetchOperationPtr op;
    std::int32_t anchor_pages = 0;          // pages already on host when registered
    std::int32_t anchor_node = 0;           // their last node, locked while the operation lives
    std::vector<std::int32_t> host_indices; // the tree's own copy: the full allocation
    std::int64_t prefetch_tokens = 0;
  };

  // Scheduler pass (scheduler.cpp).
  Task<> recv_requests(Runtime& rt);
  Task<> recv_requests_dp_attention(Runtime& rt);
  static constexpr std::size_t kArrivalsPerPassMax = 1024;
  static_assert(2 * kArrivalsPerPassMax <= kChannelPayloadWordsMax);  // a request list: arrivals and aborts
  // Pipeline stages (policy/pipeline_stages.cpp).
  bool pipeline() const { return topology_.pp > 1; }
  int tp_rank() const { return topology_.tp_rank(rank_); }
  Task<> recv_requests_from_previous_stage(Runtime& rt, std::array<std::int64_t, 2>& counts, std::vector<std::int64_t>& ids);
  Task<> send_requests_to_next_stage(Runtime& rt, std::array<std::int64_t, 2> counts, std::vector<std::int64_t> ids);
  // The forward of one microbatch between the stages: the previous stage's proxy received, the
  // last send committed, the forward, this stage's proxy sent on. batch_tokens < 0: no batch this
  // iteration, so no proxy and no forward (the commit still runs).
  Task<> forward_in_pipeline(Runtime& rt, std::int64_t batch_tokens, std::span<const std::int32_t> load_back_slots);
  bool chains_ack_counts() const;
  enum class AckQueue : std::uint8_t { kWrite, kLoad };
  // #27285: PP0's count of ready acks, received down the stages, then waited for here.
  Task<> agree_ack_count_down_the_stages(Runtime& rt, std::span<std::int64_t, 1> acks, AckQueue queue);
  // _all_reduce: PP0 reduces `values` over its cache groups with `op`; with `chained`, later stages
  // take PP0's values down the stages (_pp_sync); without, each stage reduces its own.
  Task<> agree_from_first_stage(Runtime& rt, std::span<std::int64_t> values, CollectiveOp op, bool chained);
  Task<> drain_ack_count_sends(Runtime& rt);
  Task<> await_acks_held(Runtime& rt, std::int64_t acks, std::size_t held, TimeNs last_copy_done_ns, const char* queue);
  Task<> broadcast_ids(Runtime& rt, Group g, std::vector<std::int64_t>& ids);
  Task<> take_requests(Runtime& rt, std::span<const std::int64_t> arrivals, std::span<const std::int64_t> aborts);
  Task<> add_request_to_queue(Runtime& rt, RequestId rid);
  Task<> abort_request(Runtime& rt, RequestId rid);
  Task<> drain_storage_control_queues(Runtime& rt);
  // The storage control queues' sizes in the drain's MIN payload, and where each queue sits in it.
  struct StorageQueueCounts {
    static constexpr std::size_t kMax = 6;
    static constexpr std::size_t kAbsent = kMax;  // a queue this date does not have
    std::array<std::int64_t, kMax> counts{};
    std::size_t size = 0;
    std::size_t revoke_at = kAbsent, hit_at = kAbsent, ack_at = kAbsent, backup_at = kAbsent, release_at = kAbsent, sidecar_at = kAbsent;
    std::int64_t agreed(std::size_t at) const { return at < size ? counts[at] : 0; }
    std::span<std::int64_t> payload() { return {counts.data(), size}; }
  };
  StorageQueueCounts storage_queue_counts(TimeNs now_ns) const;
  void take_storage_queues(Runtime& rt, const StorageQueueCounts& q);
  // merged-tick-min (#30511): HiRadixCache and the unified tree, not HiMamba.
  // #30511 merged the per-tick MINs for pp_size 1 only (URC@17313cf4b:2525-2530).
  bool merged_tick_min() const { return cfg_.has(Fix::kMergedTickMin) && cfg_.path != CodePath::kHiMamba && !pipeline(); }
  Task<> check_hicache_events_merged(Runtime& rt);
  // The acknowledgement design (policy/prefetch_acks.cpp, #27010).
  bool ack_design() const { return cfg_.has(Fix::kAckDesign); }
  bool chains_queue_counts() const { return pipeline() && ack_design(); }
  // A later stage blocks until its queues hold the counts PP0 decided (_drain_queue's q.get()).
  Task<> await_queues_hold(Runtime& rt, const StorageQueueCounts& q);
  // ack-design: the storage queue counts, PP0's MIN chained down the stages and waited for here.
  Task<> agree_queue_counts_down_the_stages(Runtime& rt, StorageQueueCounts& q);
  void take_prefetch_acks(Runtime& rt, std::int64_t acks);
  Task<bool> check_prefetch_progress_acked(Runtime& rt, RequestId rid);
  bool pp0_can_terminate(Runtime& rt, const PrefetchOperation& op) const;
  Task<> page_transfer_acked(Runtime& rt, PrefetchOperation& op);
  void push_ack(Runtime& rt, const PrefetchOperationPtr& op, PrefetchAck::Kind kind);
  // One KV batch's KV-derived objects, read beside it: the least leading run of their hits.
  Task<std::int64_t> read_kv_derived_batch(Runtime& rt, PrefetchOperation& op, std::int64_t first, std::int64_t count);
  // The pool hits a result is judged on: a KV-derived pool's own hits went into the completed
  // tokens, and report none; the unified tree skips them (URC@001067ff), HiRadixCache counts the
  // 0 until #37145's clamp-skips-kv-derived.
  std::array<std::int64_t, PrefetchAck::kPoolsMax> acked_pool_hits(const PrefetchOperation& op) const;
  // hit-then-alloc (#19320): host KV slots for the group's agreed hit, or a revoke.
  void take_storage_hit(Runtime& rt, const PrefetchOperationPtr& op);
  // revoke_pending_prefetch: ends a prefetch that will read nothing more; its KV slots, if any,
  // went back already.
  void revoke_pending_prefetch(Runtime& rt, RequestId rid);
  bool init_load_back(Runtime& rt, RequestId rid, std::int64_t host_hit_tokens, std::int64_t& device_free_tokens, std::int64_t& budget_tokens);
  Task<> get_new_batch_prefill_and_forward(Runtime& rt);
  Task<> sleep_on_idle(Runtime& rt);  // an empty pass's sleep with sleep_on_idle
  void emit_batch_full(Runtime& rt, RequestId rid, std::int64_t budget_tokens_left, std::size_t batch_requests);
  // The idle sleeper polls the request sockets with this timeout (upstream's IdleSleeper).
  static constexpr TimeNs kIdlePollNs = 1'000'000'000;
  bool idle() const;  // nothing waiting, in flight or queued on this rank

  // Write-through (write_through.cpp): back up a forward's new pages to host, and drain the acks.
  Task<> write_backup(Runtime& rt, RequestId rid);
  bool writing_check_agrees() const;  // else it would return at once: the pass skips it
  Task<> writing_check(Runtime& rt);
  std::int64_t ready_write_acks(Runtime& rt) const;  // the leading acks whose copy completed here
  void take_write_acks(Runtime& rt, std::int64_t acks);
  // Load-back (write_through.cpp): the batch's host hits go to the device; their nodes stay locked
  // until loading_check takes the copy's ack.
  void load_back(Runtime& rt, RequestId rid, std::int32_t host_hit_pages);
  bool loading_check_agrees() const;  // else each rank takes its own ready acks, with no collective
  Task<> loading_check(Runtime& rt);
  std::int64_t ready_load_acks(Runtime& rt) const;
  void take_load_acks(Runtime& rt, std::int64_t acks);
  // A write-through's sidecar slots onto the path ending at `leaf`, one per trailing node; a node
  // that has its value already gets none, and that slot is freed.
  void attach_write_sidecars(Runtime& rt, std::int32_t leaf, const std::vector<std::int32_t>& slots);
  // What of the path ending at `leaf` (the last pages of `pages`) the backup writes as sidecar objects.
  void backup_sidecars(std::int32_t leaf, std::span<const PageKey> pages, std::vector<std::int32_t>& slots, std::vector<PageKey>& keys) const;

  // IO (io_thread.cpp).
  Task<> page_transfer(Runtime& rt, PrefetchOperation& op);
  // `kv_derived`: the KV-derived pools too; false: only the others (the acknowledgement design
  // reads the KV-derived ones with each KV batch).
  Task<> sidecar_transfer(Runtime& rt, PrefetchOperation& op, bool kv_derived = true);
  Task<std::int64_t> read_into(Runtime& rt, HostSlotPool& pool, std::span<const std::int32_t> slots, StorageOp op,
                               const PrefetchOperation& prefetch, std::span<const PageKey> keys, std::span<std::uint8_t> present = {},
                               std::span<const std::int32_t> kv_laid_out = {});
  // _sync_trailing_keys (HCC@17313cf4b:767-807): the sidecar reads the last min(N, hit) pages of
  // the hit; buffer slots beyond them are queued for release from the IO thread.
  void sync_trailing_keys(Runtime& rt, PrefetchOperation& op);

  // HiMamba cache prefetch lifecycle (prefetch_lifecycle.cpp).
  Task<> prefetch_from_storage(Runtime& rt, RequestId rid, std::int32_t host_hit_pages);
  Task<bool> check_prefetch_progress(Runtime& rt, RequestId rid);
  Task<> release_aborted_request(Runtime& rt, RequestId rid);
  // The scheduler is done with an operation's sidecar slots: free them (HiMamba), queue them for
  // the next drain (the unified tree), or leave them to the IO thread if it is still reading into
  // them and sidecar-release-by-io is in force.
  void release_sidecar_slot(Runtime& rt, PrefetchOperation& op);
  // One sidecar slot to the unified tree's per-pool release queue (extra_host_mem_release_queues).
  void release_sidecar_slot_later(Runtime& rt, std::int32_t slot);
  // sidecar-release-by-io: whoever ends last frees the operation's sidecar slots now.
  void free_sidecar_slots(Runtime& rt, const PrefetchOperation& op);
  // How many sidecar slots a prefetch of `prefetch_pages` pages under an anchor of `host_hit_pages`
  // takes at registration: Mamba one (MC@17313cf4b:677-689); SWA a full window, the requested pages
  // when shorter and anchored at the root, else none (SC@17313cf4b:767-803); dense none.
  std::int32_t sidecar_slots_wanted(std::int32_t prefetch_pages, std::int32_t host_hit_pages) const;
  // Hybrid SWA commit (SC@17313cf4b:984-1067): the window's slots become the SWA values of the last
  // nodes of the inserted path, leaf toward the anchor; the rest go back. False: the window dropped.
  bool commit_swa_window(Runtime& rt, const Ongoing& entry, std::int32_t leaf, std::int32_t total_pages, bool loaded);
  Task<> bulk_check_prefetch_progress(Runtime& rt);
  bool best_effort() const { return cfg_.policy == PrefetchPolicy::kBestEffort; }
  // match_prefix on the host tree: HiMamba's rule with a sidecar, the plain KV prefix without.
  std::int32_t host_match_pages(const RequestSpec& req) const;
  bool local_can_terminate_now(Runtime& rt, const PrefetchOperation& op) const;
  // [completed, one hit per pool transfer]: the result MIN's payload.
  using PoolHits = std::array<std::int64_t, 1 + kMaxSidecarPools>;
  // `pool_hits`: each pool transfer's hit, the group's MIN where the MIN carries them.
  void finish_prefetch(Runtime& rt, RequestId rid, TerminateReason why, std::int64_t min_completed, std::span<const std::int64_t> pool_hits);
  // hybrid-result-check (#31443): all of KV and of every pool transfer was read on every rank, or
  // nothing is published and everything goes back through the release queues.
  bool hybrid_result_complete(const PrefetchOperation& op, std::int64_t min_completed, std::span<const std::int64_t> pool_hits) const;
  void finish_clamped_prefetch(Runtime& rt, RequestId rid, TerminateReason why, std::int64_t min_completed,
                               std::span<const std::int64_t> pool_hits);
  // indexer_gap: published new pages [first_new, published) missing a derived pool's object on this rank.
  std::int64_t report_derived_gap(Runtime& rt, const PrefetchOperation& op, std::int32_t first_new, std::int32_t published,
                                  bool window_committed);
  // The result MIN carries the pool hits: the unified tree's packed MIN (#27264); HiRadixCache's
  // for the DSA indexer from #31443 (HR@17313cf4b:1708-1714).
  bool sync_pool_hits() const { return cfg_.has(Fix::kSidecarHitSync) || (cfg_.clamp_stack() && cfg_.has(Fix::kHybridResultCheck)); }
  void discard_prefetch(Runtime& rt, RequestId rid, TerminateReason why, std::int64_t min_completed);
  // hit_lost: what the request can use of its agreed L3 hit, when that is less than all of it.
  void report_hit_loss(Runtime& rt, RequestId rid, const Ongoing& entry, TerminateReason why, std::int64_t min_completed,
                       bool sidecar_attached,
                       bool discarded);
  // Ends the operation on this rank: its terminal state, the anchor, the rate-limit tokens.
  void release_ongoing(Runtime& rt, RequestId rid, OpEnd end);
  // evict_host: frees least recently used host tree leaves until `kv_pages` slots are available
  // and Mamba states until `sidecar_slots` are, or nothing unlocked is left. Rank-local.
  void evict_host(Runtime& rt, RequestId rid, std::int32_t kv_pages, std::int32_t sidecar_slots);
  // append_host_mem_release: the slot goes back at the next drain, if it was ours to release.
  void release_kv_slot_later(Runtime& rt, std::int32_t slot);

  const PolicyConfig& cfg_;
  const std::vector<RequestSpec>& workload_;
  const int rank_;
  const RankResources resources_;
  const Topology topology_;
  int tp_size() const { return topology_.tp; }
  const GroupList cache_groups_;     // the cache's scheduler-side reductions, in order
  const GroupList prefetch_groups_;  // the prefetch thread's
  const GroupList completion_groups_;  // ack-design: the sync thread's

  HostSlotPool kv_pool_;
  HostSlotPool sidecar_pool_;
  HostRadixTree tree_;
  const std::int32_t device_cache_pages_;  // host tree pages also on the device: not host-evictable

  std::vector<RequestId> waiting_queue_;
  // A scheduler pass's buffers, kept so that a pass allocates nothing and its coroutine frames stay
  // small: the scheduler runs one pass at a time.
  struct PassBuffers {
    std::array<RequestId, kArrivalsPerPassMax> taken;  // recv_requests: written up to the count taken
    std::vector<std::int64_t> request_ids;               // recv_requests: what the group broadcasts
    std::vector<RequestId> order;                        // get_new_batch_prefill_and_forward's walk
    std::vector<RequestId> batch;
    std::vector<std::int32_t> load_back_slots;
    void start_walk(const std::vector<RequestId>& waiting) {
      order.assign(waiting.begin(), waiting.end());
      batch.clear();
      load_back_slots.clear();
    }
  } pass_;
  std::map<RequestId, Ongoing> ongoing_prefetch_;     // ordered: rank-identical iteration
  std::map<RequestId, std::int64_t> loaded_tokens_;   // prefetch_loaded_tokens_by_reqid
  std::map<RequestId, bool> bulk_ready_;              // bulk-progress-check: this pass's verdicts
  std::int64_t prefetch_tokens_occupied_ = 0;
  std::int64_t prefetch_capacity_limit_ = 0;
  std::int32_t next_op_id_ = 0;
  // Every operation of this rank, by id. One that ended and left the IO thread is let go (null) once
  // every older one has too, so a long trace holds the operations in flight, not its history.
  std::vector<PrefetchOperationPtr> ops_;
  std::size_t ops_let_go_ = 0;  // ops_[0, ops_let_go_) are null
  void let_go_of_finished_ops();

  Channel<PrefetchOperationPtr> prefetch_queue_;   // scheduler -> prefetch thread
  Channel<PrefetchOperationPtr> prefetch_buffer_;  // prefetch thread -> IO thread
  // An item the prefetch thread queued for the scheduler's drain, with its clock then. The drain
  // counts only items its own clock has reached: where actors take turns on one clock that is
  // every item queued; where they run at once, not what the prefetch thread made at a later time.
  template <class T>
  struct Queued {
    T item;
    TimeNs at_ns = 0;
  };
  template <class T>
  static std::size_t reached(const Fifo<Queued<T>>& q, TimeNs now_ns) {
    std::size_t n = 0;
    while (n < q.size() && q[n].at_ns <= now_ns) ++n;  // bounded by the queue
    return n;
  }
  Fifo<Queued<RequestId>> revoke_queue_;              // prefetch thread -> scheduler drain
  Fifo<Queued<PrefetchOperationPtr>> hit_queue_;      // prefetch thread -> scheduler drain (hit-then-alloc)
  Channel<PrefetchAck> prefetch_sync_queue_;          // ack-design: IO thread -> sync thread
  Fifo<PrefetchAck> ack_prefetch_queue_;              // ack-design: sync thread -> scheduler drain
  static constexpr TimeNs kQueueWaitPollNs = 50'000;  // a later stage's wait for PP0's counts
  static constexpr std::size_t kAckQueueMax = std::size_t{1} << 24;  // acks in flight: a few per operation
  Fifo<std::int32_t> sidecar_release_queue_;          // unified tree: the Mamba pool's release queue
  Fifo<std::int32_t> kv_release_queue_;               // any -> scheduler drain, one slot per page
  struct WriteThrough {
    RequestId request = kNoRequest;
    std::int32_t first_page = 0;            // pages [first_page, first_page + slots.size()) of the request
    std::vector<std::int32_t> slots;
    TimeNs copy_done_ns = 0;                // when its device-to-host copy completes (finish_event)
    std::int32_t prefix_node = 0;           // the node of page first_page - 1, locked until the insert
    std::vector<std::int32_t> sidecar_slots; // the request's Mamba state, or its last pages' SWA values
  };
  std::map<std::int32_t, WriteThrough> ongoing_write_through_;  // by write id
  struct LoadBack {
    RequestId request = kNoRequest;
    std::int32_t node = 0;                  // the loaded prefix's last node, locked until the ack is taken
    TimeNs done_ns = 0;                     // when the host-to-device copy completes (finish_event)
  };
  Fifo<LoadBack> ack_load_queue_;                               // in issue order
  Fifo<std::int32_t> ack_write_queue_;                          // write ids, in ack order
  struct Backup {
    std::int32_t id = 0;
    RequestId request = kNoRequest;
    std::vector<PageKey> pages;             // host pages to write to L3
    std::vector<std::int32_t> slots;        // their host slots
    // The last page's Mamba state, or the last pages' SWA values, written to L3 before the pages.
    std::vector<std::int32_t> sidecar_slots;
    std::vector<PageKey> sidecar_keys;
  };
  Channel<Backup> backup_queue_;                                // scheduler -> backup thread
  Fifo<std::int32_t> ack_backup_queue_;                         // backup thread -> scheduler drain
  std::map<std::int32_t, std::int32_t> backup_nodes_;           // backup id -> its last node, locked until drained
  std::int32_t next_backup_id_ = 0;
  std::int32_t next_write_id_ = 0;
  // Write slots are owned by "operation" ids above every prefetch id.
  static constexpr std::int32_t kWriteOwnerBase = 1 << 24;
  // An acked write not drained after this long is leaked (its lock and slots are never released).
  static constexpr TimeNs kAckDrainGraceNs = 10'000'000;

 public:
  // How long after its last step a rank's leaked_slots() can still change (by time alone).
  static constexpr TimeNs kLeakSettleNs = kAckDrainGraceNs;

 private:

  // negative-cache: keys whose read failed, absent to hit queries until the time given.
  std::map<PageKey, TimeNs> negative_until_;
  static constexpr TimeNs kNegativeCacheTtlNs = 10'000'000'000;
  static constexpr std::size_t kNegativeCacheMax = 1 << 16;
};

}  // namespace hcsim
