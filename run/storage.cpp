#include "run/storage.h"

#include <algorithm>
#include <cmath>

#include "policy/assert.h"
#include "policy/sidecar_stack.h"

namespace hcsim {

std::string describe(const DelayRule& r) {
  std::string s(storage_op_name(r.op));
  switch (r.effect) {
    case DelayRule::Effect::kFixed: s += " +" + std::to_string(r.a_ns / 1000) + "us"; break;
    case DelayRule::Effect::kUniform:
      s += " +uniform[" + std::to_string(r.a_ns / 1000) + "," + std::to_string(r.b_ns / 1000) + "]us";
      break;
    case DelayRule::Effect::kLognormal: s += " +lognormal(median " + std::to_string(r.a_ns / 1000) + "us)"; break;
    case DelayRule::Effect::kNever: s += " never completes"; break;
    case DelayRule::Effect::kFail: s += " fails"; break;
    case DelayRule::Effect::kRaise: s += " raises"; break;
  }
  return s;
}

StorageModel::StorageModel(StorageConfig cfg, int ranks, std::vector<DelayRule> rules, std::uint64_t seed, std::vector<DelayRule> jitter)
    : cfg_(cfg), stores_(static_cast<std::size_t>(ranks)), rules_(std::move(rules)), jitter_(std::move(jitter)),
      rule_draws_(rules_.size()), jitter_draws_(jitter_.size()) {
  HCSIM_ASSERT(ranks > 0 && cfg.read_bytes_per_ns > 0.0 && cfg.call_latency_ns >= 0 && cfg.kv_capacity_pages >= 0);
  rule_streams_.reserve(rules_.size());
  for (std::size_t i = 0; i < rules_.size(); ++i) rule_streams_.emplace_back(seed, "delay/" + std::to_string(i));
  for (std::size_t i = 0; i < jitter_.size(); ++i) {
    HCSIM_ASSERT(jitter_[i].effect == DelayRule::Effect::kFixed || jitter_[i].effect == DelayRule::Effect::kUniform ||
                 jitter_[i].effect == DelayRule::Effect::kLognormal);
    jitter_streams_.emplace_back(seed, "jitter/" + std::to_string(i));
  }
}

namespace {
bool matches(const DelayRule& r, int rank, const WorldCall& call, TimeNs now_ns) {
  if (r.op != call.storage_op || now_ns < r.from_ns || now_ns >= r.to_ns) return false;
  if (!r.ranks.empty() && std::find(r.ranks.begin(), r.ranks.end(), rank) == r.ranks.end()) return false;
  return r.requests.empty() || std::find(r.requests.begin(), r.requests.end(), call.request) != r.requests.end();
}

TimeNs draw(const DelayRule& r, RandomStream& stream) {
  switch (r.effect) {
    case DelayRule::Effect::kFixed: return r.a_ns;
    case DelayRule::Effect::kUniform: return stream.uniform_ns(r.a_ns, r.b_ns);
    case DelayRule::Effect::kLognormal: return stream.lognormal_ns(r.a_ns, r.sigma);
    case DelayRule::Effect::kNever:
    case DelayRule::Effect::kFail:
    case DelayRule::Effect::kRaise: break;
  }
  HCSIM_ASSERT(false);
  return 0;
}
}  // namespace

void StorageModel::add_kv_page(int rank, PageKey key) {
  HCSIM_ASSERT(!sealed_);
  use_kv(stores_.at(static_cast<std::size_t>(rank)), keys_.intern(key));
}

void StorageModel::add_sidecar(int rank, PageKey key) {
  HCSIM_ASSERT(!sealed_);
  mark(stores_.at(static_cast<std::size_t>(rank)), key, kObject);
}

void StorageModel::add_stale_page(int rank, PageKey key) {
  HCSIM_ASSERT(!sealed_);
  mark(stores_.at(static_cast<std::size_t>(rank)), key, kStalePage);
}

void StorageModel::add_stale_sidecar(int rank, PageKey key) {
  HCSIM_ASSERT(!sealed_);
  mark(stores_.at(static_cast<std::size_t>(rank)), key, kObject | kStaleObject);  // found by hit queries, not read
}

void StorageModel::seal() {
  for (RankStore& store : stores_) evict_over_capacity(store);
  sealed_ = true;
}

bool StorageModel::has_sidecar(int rank, PageKey key) const { return (marks_of(stores_[static_cast<std::size_t>(rank)], key) & kObject) != 0; }

std::uint8_t StorageModel::marks_of(const RankStore& store, PageKey key) const { return store.marks_at(keys_.find(key)); }

void StorageModel::mark(RankStore& store, PageKey key, std::uint8_t marks) { mark_id(store, keys_.intern(key), marks); }

void StorageModel::mark_id(RankStore& store, std::uint32_t id, std::uint8_t marks) {
  HCSIM_ASSERT(id != L3KeyTable::kNone);
  if (id >= store.marks.size()) store.marks.resize(std::size_t{id} + 1, 0);
  store.marks[id] |= marks;
}

std::int64_t StorageModel::kv_pages(int rank) const { return stores_.at(static_cast<std::size_t>(rank)).kv_pages; }

std::int64_t StorageModel::evicted_kv_pages(int rank) const { return stores_.at(static_cast<std::size_t>(rank)).evicted_kv_pages; }

void StorageModel::use_kv(RankStore& store, std::uint32_t id) {
  if (!store.holds_kv(id)) {
    mark_id(store, id, kKvPage);
    ++store.kv_pages;
  }
  if (cfg_.kv_capacity_pages > 0) store.kv_order.use(id);
}

// A page's sidecar object and stale mark go with it: they describe data the store no longer has.
void StorageModel::evict_over_capacity(RankStore& store) {
  if (cfg_.kv_capacity_pages == 0) return;
  HCSIM_ASSERT(static_cast<std::int64_t>(store.kv_order.size()) == store.kv_pages);
  while (store.kv_pages > cfg_.kv_capacity_pages) {  // bounded: one page per round
    const std::uint32_t id = store.kv_order.pop_oldest();
    store.marks[id] &= static_cast<std::uint8_t>(~(kKvPage | kStalePage));
    --store.kv_pages;
    for (std::size_t tag = 0; tag < cfg_.object_pools; ++tag) {
      const std::uint32_t object = keys_.find(object_key(tag, keys_.key(id)));
      if (object < store.marks.size()) store.marks[object] &= static_cast<std::uint8_t>(~(kObject | kStaleObject));
    }
    ++store.evicted_kv_pages;
  }
}

StoragePlan StorageModel::plan(int rank, WorldCall& call, TimeNs now_ns) {
  HCSIM_ASSERT(sealed_ && call.kind == WorldCall::Kind::kStorage);
  HCSIM_ASSERT(rank >= 0 && static_cast<std::size_t>(rank) < stores_.size());
  StoragePlan plan = plan_from_contents(rank, call);
  apply_delay_rule(plan, rank, call, now_ns);
  add_jitter(plan, rank, call, now_ns);
  add_late(plan, rank, call, now_ns);
  if (recorded_) replay_recorded(plan, rank, call);
  update_contents(plan, rank, call);
  return plan;
}

// The call's result from this rank's contents, and its duration: the call's latency plus its bytes
// over the bandwidth (an L3 call's or a copy's).
inline StoragePlan StorageModel::plan_from_contents(int rank, WorldCall& call) {
  StoragePlan plan;
  call_ids_.clear();
  std::int64_t bytes = 0;
  switch (call.storage_op) {
    case StorageOp::kHitQuery: {
      // `present` holds one block of keys.size() per pool asked about (the first ones): pool p's
      // object for each found page.
      const std::size_t n = call.keys.size();
      const std::size_t pools = n == 0 ? 0 : call.present.size() / n;
      HCSIM_ASSERT(call.present.size() == n * pools && pools <= cfg_.object_pools);
      const RankStore& store = stores_[static_cast<std::size_t>(rank)];
      std::size_t leading = 0;
      for (; leading < n; ++leading) {  // bounded by the keys
        const std::uint32_t id = keys_.find(call.keys[leading]);
        if (!store.holds_kv(id)) break;
        call_ids_.push_back(id);
        for (std::size_t tag = 0; tag < pools; ++tag) {
          call.present[tag * n + leading] = has_sidecar(rank, object_key(tag, call.keys[leading])) ? 1 : 0;
        }
      }
      plan.result = static_cast<std::int64_t>(leading);
      break;
    }
    case StorageOp::kKvGet:
      plan.result = readable_kv_pages(rank, call, plan);
      bytes = plan.result * cfg_.kv_page_bytes;
      break;
    case StorageOp::kKvSet:  // the pages exist for this rank's later queries once the call returns
      plan.result = static_cast<std::int64_t>(call.keys.size());
      bytes = plan.result * cfg_.kv_page_bytes;
      break;
    case StorageOp::kSidecarGet:  // one object per key: Mamba's state after a page, or an SWA window page's values
      HCSIM_ASSERT(!call.keys.empty() && (call.present.empty() || call.present.size() == call.keys.size()));
      for (std::size_t i = 0; i < call.keys.size(); ++i) {
        const RankStore& store = stores_[static_cast<std::size_t>(rank)];
        const std::uint8_t marks = marks_of(store, call.keys[i]);
        const bool read = (marks & kObject) != 0 && (marks & kStaleObject) == 0;
        if (!call.present.empty()) call.present[i] = read ? 1 : 0;
        plan.result += read ? 1 : 0;
      }
      bytes = plan.result * cfg_.sidecar_bytes;
      break;
    case StorageOp::kSidecarSet:  // an object of its own, keyed by its page: written before the page (HCC@faa628694:635-643)
      HCSIM_ASSERT(!call.keys.empty());
      plan.result = static_cast<std::int64_t>(call.keys.size());
      bytes = plan.result * cfg_.sidecar_bytes;
      break;
    case StorageOp::kDeviceToHost:
    case StorageOp::kHostToDevice:
      HCSIM_ASSERT(call.pages >= 0 && call.keys.empty());
      plan.result = call.pages;
      bytes = call.pages * cfg_.kv_page_bytes;
      break;
  }
  if (is_copy(call.storage_op)) {
    plan.duration_ns += cfg_.copy_latency_ns + static_cast<TimeNs>(std::llround(static_cast<double>(bytes) / cfg_.copy_bytes_per_ns));
  } else {
    plan.duration_ns += cfg_.call_latency_ns + static_cast<TimeNs>(std::llround(static_cast<double>(bytes) / cfg_.read_bytes_per_ns));
  }
  return plan;
}

// A KV read returns the leading pages this rank holds. A stale page in the run ends the read
// there, after the get's timeout (added to `plan`).
// One key lookup a page serves both tests.
inline std::int64_t StorageModel::readable_kv_pages(int rank, const WorldCall& call, StoragePlan& plan) {
  const RankStore& store = stores_[static_cast<std::size_t>(rank)];
  for (std::size_t i = 0; i < call.keys.size(); ++i) {
    const std::uint32_t id = keys_.find(call.keys[i]);
    if (!store.holds_kv(id)) return static_cast<std::int64_t>(i);
    if ((store.marks_at(id) & kStalePage) != 0) {
      plan.duration_ns += cfg_.stale_get_timeout_ns;
      return static_cast<std::int64_t>(i);
    }
    call_ids_.push_back(id);
  }
  return static_cast<std::int64_t>(call.keys.size());
}

// The first matching delay rule decides: never completes, raises, fails or takes longer.
inline void StorageModel::apply_delay_rule(StoragePlan& plan, int rank, WorldCall& call, TimeNs now_ns) {
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const DelayRule& r = rules_[i];
    if (!matches(r, rank, call, now_ns)) continue;
    plan.rule = static_cast<int>(i);
    if (r.effect == DelayRule::Effect::kNever) {
      plan.never_completes = true;
    } else if (r.effect == DelayRule::Effect::kRaise) {
      plan.raises = true;
      plan.duration_ns = cfg_.call_latency_ns;
      plan.result = 0;
    } else if (r.effect == DelayRule::Effect::kFail) {  // fails after the call latency, with nothing transferred
      plan.duration_ns = cfg_.call_latency_ns;
      plan.result = 0;
      if (call.storage_op == StorageOp::kHitQuery || call.storage_op == StorageOp::kSidecarGet) std::fill(call.present.begin(), call.present.end(), 0);
    } else {
      const TimeNs d = draw(r, rule_streams_[i]);
      if (r.effect == DelayRule::Effect::kUniform || r.effect == DelayRule::Effect::kLognormal) rule_draws_[i].add(d);
      plan.duration_ns += d;
    }
    return;
  }
}

// Every matching jitter rule adds its draw.
inline void StorageModel::add_jitter(StoragePlan& plan, int rank, const WorldCall& call, TimeNs now_ns) {
  for (std::size_t i = 0; i < jitter_.size(); ++i) {
    if (!matches(jitter_[i], rank, call, now_ns)) continue;
    const TimeNs d = draw(jitter_[i], jitter_streams_[i]);
    jitter_draws_[i].add(d);
    plan.duration_ns += d;
  }
}

// The first matching late rule adds the delay its choice source picks, to a call that returns.
inline void StorageModel::add_late(StoragePlan& plan, int rank, const WorldCall& call, TimeNs now_ns) const {
  for (const LateRule& l : late_) {
    if (plan.never_completes || plan.raises || !matches(l.match, rank, call, now_ns)) continue;
    const int n = static_cast<int>(l.late_ns.size());
    const int pick = late_source_ != nullptr ? late_source_->choose(ChoiceKind::kLate, rank, n, now_ns) : 0;
    HCSIM_ASSERT(pick >= 0 && pick < n);
    plan.duration_ns += l.late_ns[static_cast<std::size_t>(pick)];
    return;
  }
}

// A call the recording has takes its recorded duration and result; the rest stay modelled.
inline void StorageModel::replay_recorded(StoragePlan& plan, int rank, WorldCall& call) {
  const int op = static_cast<int>(call.storage_op);
  const int ordinal = call_ordinals_[{rank, op, call.request}]++;
  auto it = recorded_->find({rank, op, call.request, ordinal});
  if (it == recorded_->end()) {
    ++modelled_calls_;
    return;
  }
  ++replayed_calls_;
  const StorageResponse& r = it->second;
  plan.never_completes = r.duration_ns == kStorageNever;
  plan.raises = r.duration_ns == kStorageRaises;
  plan.duration_ns = r.duration_ns >= 0 ? r.duration_ns : cfg_.call_latency_ns;
  if (r.result != plan.result && call.storage_op == StorageOp::kHitQuery) {  // each pool's block, beyond the recorded hit
    const std::size_t n = call.keys.size();
    for (std::size_t i = 0; i < call.present.size(); ++i) {
      if (static_cast<std::int64_t>(i % n) >= r.result) call.present[i] = 0;
    }
  }
  // Never more than this call could return: a trace from other contents, or a damaged one.
  const auto most = is_copy(call.storage_op) ? call.pages : static_cast<std::int64_t>(call.keys.size());
  const std::int64_t modelled = plan.result;
  plan.result = std::clamp<std::int64_t>(r.result, 0, most);
  // A recording has the count only: where the contents give that count, their objects stand (a read
  // over several pools says which pool missed); else the leading objects.
  if (call.storage_op == StorageOp::kSidecarGet && plan.result != modelled) {
    for (std::size_t i = 0; i < call.present.size(); ++i) call.present[i] = static_cast<std::int64_t>(i) < plan.result ? 1 : 0;
  }
}

// What a call that returns does to the rank's store: a sidecar written, pages written or used.
inline void StorageModel::update_contents(const StoragePlan& plan, int rank, const WorldCall& call) {
  if (is_copy(call.storage_op)) {
    HCSIM_ASSERT(!plan.raises);  // the scenario reader refuses fail and raises for copies
  } else if (!plan.never_completes && !plan.raises && call.storage_op == StorageOp::kSidecarSet) {
    RankStore& store = stores_[static_cast<std::size_t>(rank)];
    HCSIM_ASSERT(plan.result >= 0 && static_cast<std::size_t>(plan.result) <= call.keys.size());
    for (std::size_t i = 0; i < static_cast<std::size_t>(plan.result); ++i) mark(store, call.keys[i], kObject);
  } else if (!plan.never_completes && !plan.raises && call.storage_op != StorageOp::kSidecarGet) {
    // Written pages, and pages a query found or a read returned, are used now, when the call is
    // planned: a rank never queries pages it is still writing. A failed call (result 0) uses none.
    RankStore& store = stores_[static_cast<std::size_t>(rank)];
    const bool writes = call.storage_op == StorageOp::kKvSet;
    HCSIM_ASSERT(plan.result >= 0 && static_cast<std::size_t>(plan.result) <= call.keys.size());
    for (std::size_t i = 0; i < static_cast<std::size_t>(plan.result); ++i) {
      // A replayed result may count pages this model does not hold: only a write adds pages. A key
      // is looked up once a call: the pages the contents gave are in call_ids_.
      std::uint32_t id = L3KeyTable::kNone;
      if (i < call_ids_.size()) {
        id = call_ids_[i];
      } else {
        id = writes ? keys_.intern(call.keys[i]) : keys_.find(call.keys[i]);
      }
      if (writes || store.holds_kv(id)) use_kv(store, id);
    }
    evict_over_capacity(store);
  }
}

}  // namespace hcsim
