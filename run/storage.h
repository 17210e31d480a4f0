// StorageModel: the simulated L3 store of every rank. A call costs a fixed latency plus its bytes
// over the read bandwidth (upstream's sim backend: 100 us, 5 GB/s), plus whatever the first
// matching delay rule injects. KV presence is per page and per rank; sidecar objects are keyed by
// the page their state belongs to (hybrid Mamba: the state after that page; hybrid SWA: that page's
// SWA values, so a window is the objects of its pages). With a capacity, each rank's store keeps at most that many KV
// pages: a kv_set past it evicts the least recently used pages (and their sidecar objects).
//
//   rule {op: sidecar_get, ranks: [1], requests: [R], delay: fixed 488 ms}
//   -> rank 1's sidecar read for R takes 100 us + bytes/bw + 488 ms; other reads are unaffected.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "policy/runtime.h"
#include "run/l3_key_table.h"
#include "run/lru_id_list.h"
#include "run/choices.h"
#include "run/random.h"
#include "run/recording.h"

namespace hcsim {

// A copy between host and device memory, not an L3 call: it costs copy time, never fails or raises.
constexpr bool is_copy(StorageOp op) { return op == StorageOp::kDeviceToHost || op == StorageOp::kHostToDevice; }

struct DelayRule {
  enum class Effect : std::uint8_t { kFixed, kUniform, kLognormal, kNever, kFail, kRaise };
  StorageOp op = StorageOp::kKvGet;
  std::vector<int> ranks;             // empty: every rank
  std::vector<RequestId> requests;    // empty: every request
  TimeNs from_ns = 0;                 // applies to calls starting in [from_ns, to_ns)
  TimeNs to_ns = INT64_MAX;
  Effect effect = Effect::kFixed;
  TimeNs a_ns = 0;                    // fixed delay, uniform low bound, lognormal median
  TimeNs b_ns = 0;                    // uniform high bound
  double sigma = 0.0;                 // lognormal
};
std::string describe(const DelayRule& r);

// A scenario's explore.late rule: each L3 call it matches (op, ranks, requests, window) takes one of
// `late_ns` on top of its duration. A ChoiceSource decides which; a run without one takes the first.
struct LateRule {
  DelayRule match;
  std::vector<TimeNs> late_ns;  // at least two
};

struct StorageConfig {
  TimeNs call_latency_ns = 100'000;
  double read_bytes_per_ns = 5.0;  // 5 GB/s
  std::int64_t kv_page_bytes = 0;
  std::int64_t sidecar_bytes = 0;  // one sidecar object: a Mamba state, or one page's SWA values
  // The model's sidecar pools (policy/sidecar_stack.h; at least 1): a hit query reports each
  // pool's objects, and evicting a page evicts every pool's object for it.
  std::size_t object_pools = 1;
  TimeNs stale_get_timeout_ns = 1'000'000'000;  // a read of a stale page fails after this long
  // Per rank; 0: unbounded. A kv_set past it evicts least recently used pages; a page is used when
  // written, found by a hit query or read.
  std::int64_t kv_capacity_pages = 0;
  // How the backend reports a batch read's progress (CC@faa628694:935-972): the file backend copies
  // each page from its read buffer into the host pool and counts it then (host_copy_bytes_per_ns a
  // page); a zero-copy backend (Mooncake, 3FS, NIXL) reads into the pool and counts the batch at once.
  bool zero_copy = false;
  double host_copy_bytes_per_ns = 10.0;  // 10 GB/s
  // Copies between host and device memory (write-through, load-back): latency plus bytes over PCIe.
  TimeNs copy_latency_ns = 10'000;
  double copy_bytes_per_ns = 25.0;       // 25 GB/s
};

// What the model answers for one call: when it completes (or never) and its result.
struct StoragePlan {
  bool never_completes = false;
  bool raises = false;  // the call throws after the call latency
  TimeNs duration_ns = 0;
  std::int64_t result = 0;
  int rule = -1;  // index of the delay rule applied, -1 if none
};

// The event a world logs as it takes an L3 call or a copy under `plan`, returning `result`.
inline StorageCallFields storage_call_event(StorageOp op, const StoragePlan& plan, std::int64_t result) {
  return {.op = static_cast<std::int64_t>(op),
          .duration_ns = plan.raises ? kStorageRaises : plan.never_completes ? kStorageNever : plan.duration_ns,
          .result = result};
}

// What the seed drew for one delay or jitter rule over a run, which the report prints.
struct DrawTally {
  std::int64_t draws = 0;
  TimeNs total_ns = 0;
  TimeNs max_ns = 0;
  void add(TimeNs d) {
    ++draws;
    total_ns += d;
    max_ns = std::max(max_ns, d);
  }
};

class StorageModel {
 public:
  // `rules`: the first match decides a call's injected delay or fault. `jitter`: every match adds
  // its draw on top (a scenario's random perturbations); never or fail are not jitter.
  StorageModel(StorageConfig cfg, int ranks, std::vector<DelayRule> rules, std::uint64_t seed, std::vector<DelayRule> jitter = {});

  // The seed's draws so far, by rule index: delay rules with a random effect (uniform, lognormal)
  // and every jitter rule; other rules draw nothing.
  const std::vector<DrawTally>& rule_draws() const { return rule_draws_; }
  const std::vector<DrawTally>& jitter_draws() const { return jitter_draws_; }

  void add_kv_page(int rank, PageKey key);
  void add_sidecar(int rank, PageKey key);
  // A stale page: hit queries find it, reads of it time out (metadata outlived the data).
  void add_stale_page(int rank, PageKey key);
  // A stale sidecar object: hit queries find it, a read misses it (evicted between the two, #30057).
  void add_stale_sidecar(int rank, PageKey key);
  // Room for `keys` distinct keys (pages and objects) before the key table grows: prepare_run
  // gives the scenario's L3 contents and workload pages.
  void reserve_keys(std::size_t keys) {
    keys_.reserve(keys);
    // A rank's marks (and links) grow with the ids it comes to hold: pre-sized up to a bound, past
    // which a rank that holds a part of the keys (a DP attention replica's) does not pay for all.
    for (RankStore& store : stores_) {
      if (cfg_.kv_capacity_pages > 0) store.kv_order.reserve(std::min(keys, kRankIdsReservedMax));
      store.marks.reserve(std::min(keys, kRankIdsReservedMax));
    }
  }
  // Call before the first query. Contents added beyond the capacity are evicted, first added first.
  void seal();

  // Plans `call` (a kStorage WorldCall) started by `rank` at `now_ns`; fills `call.present`.
  StoragePlan plan(int rank, WorldCall& call, TimeNs now_ns);

  // The scenario's explore.late rules, and what decides among their delays (null: the first).
  void late_rules(std::vector<LateRule> rules, ChoiceSource* source) {
    late_ = std::move(rules);
    late_source_ = source;
  }

  // Serve the recorded duration and result of every call the recording has (see recording.h).
  void replay_from(const std::map<StorageCallKey, StorageResponse>* recorded) { recorded_ = recorded; }
  std::int64_t replayed_calls() const { return replayed_calls_; }
  std::int64_t modelled_calls() const { return modelled_calls_; }

  const std::vector<DelayRule>& rules() const { return rules_; }
  const StorageConfig& config() const { return cfg_; }
  std::int64_t kv_pages(int rank) const;           // KV pages held now
  std::int64_t evicted_kv_pages(int rank) const;   // by the capacity, since the start

 private:
  // One rank's store: marks by key id, for its KV pages, its sidecar objects (an object's key is
  // object_key(pool, page)) and stale pages and objects; under a capacity, its KV pages in LRU
  // order too. A byte per id where a query needs no more: an unbounded store of a million pages
  // takes a megabyte, not the eight of an order it never uses.
  enum Mark : std::uint8_t { kObject = 1, kStalePage = 2, kStaleObject = 4, kKvPage = 8 };
  struct RankStore {
    std::vector<std::uint8_t> marks;  // by key id; an id past the end has none
    std::int64_t kv_pages = 0;        // ids marked kKvPage
    LruIdList kv_order;               // those ids, least recently used first; only under a capacity
    std::int64_t evicted_kv_pages = 0;
    // By key id, kNone (a key never seen) included: its marks, and whether it holds the KV page.
    std::uint8_t marks_at(std::uint32_t id) const { return id != L3KeyTable::kNone && id < marks.size() ? marks[id] : 0; }
    bool holds_kv(std::uint32_t id) const { return (marks_at(id) & kKvPage) != 0; }
  };
  bool has_sidecar(int rank, PageKey key) const;
  std::uint8_t marks_of(const RankStore& store, PageKey key) const;  // 0 for a key never held
  void mark(RankStore& store, PageKey key, std::uint8_t marks);
  static void mark_id(RankStore& store, std::uint32_t id, std::uint8_t marks);
  void use_kv(RankStore& store, std::uint32_t id);  // adds the page, or refreshes it
  void evict_over_capacity(RankStore& store);
  // plan()'s steps, in order: what the contents give, the first matching delay rule, jitter, the
  // first matching late rule, the recording's answer, and what the call does to the contents.
  // Inline, defined in storage.cpp (their one user): plan() is on the simulator's hot path.
  inline StoragePlan plan_from_contents(int rank, WorldCall& call);
  inline std::int64_t readable_kv_pages(int rank, const WorldCall& call, StoragePlan& plan);
  inline void apply_delay_rule(StoragePlan& plan, int rank, WorldCall& call, TimeNs now_ns);
  inline void add_jitter(StoragePlan& plan, int rank, const WorldCall& call, TimeNs now_ns);
  inline void add_late(StoragePlan& plan, int rank, const WorldCall& call, TimeNs now_ns) const;
  inline void replay_recorded(StoragePlan& plan, int rank, WorldCall& call);
  inline void update_contents(const StoragePlan& plan, int rank, const WorldCall& call);

  StorageConfig cfg_;
  L3KeyTable keys_;                            // every rank's keys
  // The ids of the call's leading keys, as plan_from_contents found them (a query's found pages, a
  // read's returned ones), so that update_contents looks each key up once.
  std::vector<std::uint32_t> call_ids_;
  std::vector<RankStore> stores_;              // per rank
  static constexpr std::size_t kRankIdsReservedMax = std::size_t{1} << 16;
  std::vector<DelayRule> rules_;
  std::vector<RandomStream> rule_streams_;     // one stream per rule: "delay/<index>"
  std::vector<DelayRule> jitter_;
  std::vector<RandomStream> jitter_streams_;   // "jitter/<index>"
  std::vector<DrawTally> rule_draws_;          // by rule: what its random delays drew
  std::vector<DrawTally> jitter_draws_;        // by jitter rule
  std::vector<LateRule> late_;
  ChoiceSource* late_source_ = nullptr;
  const std::map<StorageCallKey, StorageResponse>* recorded_ = nullptr;
  std::map<std::tuple<int, int, RequestId>, int> call_ordinals_;
  std::int64_t replayed_calls_ = 0;
  std::int64_t modelled_calls_ = 0;
  bool sealed_ = false;
};

}  // namespace hcsim
