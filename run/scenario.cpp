#include "run/scenario.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "policy/variant.h"
#include "policy/assert.h"
#include "policy/prefetch_operation.h"
#include "run/input_file.h"
#include "run/invariants.h"
#include "run/json_node.h"
#include "run/random.h"

namespace hcsim {

namespace {

using nlohmann::json;

constexpr double kMaxMs = 86'400'000.0;  // one day: no scenario needs longer
constexpr double kMaxUs = kMaxMs * 1000.0;

std::optional<StorageOp> storage_op_by_name(std::string_view n) {
  for (int i = 0; i < kStorageOpCount; ++i) {
    if (storage_op_name(static_cast<StorageOp>(i)) == n) return static_cast<StorageOp>(i);
  }
  return std::nullopt;
}

const std::string kOwnContent = "#";

std::string prefix_name(const JsonNode& n) {
  std::string name = n.str();
  if (name.empty() || name.starts_with(kOwnContent)) n.fail("expected a non-empty prefix name not starting with '" + kOwnContent + "'");
  return name;
}

std::vector<int> rank_list(const JsonNode& n, int tp) {
  std::vector<int> out;
  for (const JsonNode& r : n.array(1)) out.push_back(static_cast<int>(r.integer(0, tp - 1)));
  return out;
}

// An entry's "ranks", or its "stages" (every rank of those pipeline stages); empty: every rank.
std::vector<int> ranks_or_stages(const JsonNode& entry, const Topology& t) {
  const auto ranks = entry.find("ranks");
  const auto stages = entry.find("stages");
  if (ranks && stages) stages->fail("give ranks or stages, not both");
  if (ranks) return rank_list(*ranks, t.ranks());
  std::vector<int> out;
  if (!stages) return out;
  for (const int stage : rank_list(*stages, t.pp)) {
    for (int r = stage * t.tp; r < (stage + 1) * t.tp; ++r) out.push_back(r);
  }
  return out;
}

void read_resources(const JsonNode& n, RankResources& r) {
  n.object({"device_free_tokens", "host_kv_pages", "host_kv_occupied_pages", "host_sidecar_slots"});
  if (auto v = n.find("device_free_tokens")) r.device_free_tokens = v->integer(0, std::int64_t{1} << 40);
  if (auto v = n.find("host_kv_pages")) r.host_kv_pages = static_cast<std::int32_t>(v->integer(1, 1 << 24));
  if (auto v = n.find("host_sidecar_slots")) r.host_sidecar_slots = static_cast<std::int32_t>(v->integer(1, 1 << 20));
  if (auto v = n.find("host_kv_occupied_pages")) {
    r.host_kv_occupied_pages = static_cast<std::int32_t>(v->integer(0, 1 << 24));
    if (r.host_kv_occupied_pages > r.host_kv_pages) v->fail("expected at most host_kv_pages (" + std::to_string(r.host_kv_pages) + ")");
  }
}

void read_policy(const JsonNode& n, PolicyConfig& p) {
  n.object({"name", "timeout", "page_size", "prefetch_threshold_tokens", "storage_batch_pages", "model", "sidecar", "max_prefill_tokens",
            "write_through", "hicache_ratio", "swa_window_pages", "draft"});
  p.policy = n.at("name").choice<PrefetchPolicy>(policy_by_name, "best_effort, wait_complete, timeout");
  if (auto t = n.find("timeout")) {
    p.timeout_given = true;
    t->object({"formula", "base_ms", "per_ki_token_ms", "max_ms"});
    const auto formula = t->at("formula").choice<TimeoutFormula>(timeout_formula_by_name, "linear, capped");
    p.timeout = formula == TimeoutFormula::kLinear ? TimeoutConfig::linear_defaults() : TimeoutConfig::capped_defaults();
    if (auto v = t->find("base_ms")) p.timeout.base_ns = v->duration(1'000'000, 0.0, kMaxMs);
    if (auto v = t->find("per_ki_token_ms")) p.timeout.per_ki_token_ns = v->duration(1'000'000, 0.0, kMaxMs);
    if (auto v = t->find("max_ms")) {
      if (formula == TimeoutFormula::kLinear) v->fail("the linear formula has no cap; use formula \"capped\" or drop max_ms");
      p.timeout.max_ns = v->duration(1'000'000, 0.001, kMaxMs);
    }
  }
  if (auto v = n.find("page_size")) {
    p.page_size_tokens = static_cast<std::int32_t>(v->integer(1, 1024));
    if (1024 % p.page_size_tokens != 0) v->fail("expected a page size dividing 1024 (1, 2, 4, ..., 1024); got " + std::to_string(p.page_size_tokens));
  }
  if (auto v = n.find("prefetch_threshold_tokens")) p.prefetch_threshold_tokens = static_cast<std::int32_t>(v->integer(0, 1 << 24));
  if (auto v = n.find("storage_batch_pages")) p.storage_batch_pages = static_cast<std::int32_t>(v->integer(1, 1 << 16));
  if (auto v = n.find("model")) p.family = v->choice<ModelFamily>(model_family_by_name, "dense, hybrid_mamba, hybrid_swa, dsa, deepseek_v4");
  if (auto v = n.find("sidecar")) {  // the older spelling: true is hybrid_mamba, false dense
    const ModelFamily f = v->boolean() ? ModelFamily::kHybridMamba : ModelFamily::kDense;
    if (n.find("model") && f != p.family) v->fail("contradicts /policy/model; drop \"sidecar\", which \"model\" replaces");
    p.family = f;
  }
  // The SWA window in pages: required for hybrid_swa and deepseek_v4, meaningless for the others.
  if (auto v = n.find("swa_window_pages")) {
    if (!p.swa()) {
      v->fail("only a hybrid_swa or deepseek_v4 model has a sliding window; set /policy/model to one of them or drop swa_window_pages");
    }
    p.swa_window_pages = static_cast<std::int32_t>(v->integer(1, 1 << 20));
  } else if (p.swa()) {
    n.fail(std::string("a ").append(model_family_name(p.family)).append(
        " model needs \"swa_window_pages\": its sliding window in pages (ceil(window / page_size)), at least 1"));
  }
  if (auto v = n.find("draft")) {
    if (v->str() == "packed") {
      v->fail("a packed draft (MTP/NextN, EAGLE with NextN layers) travels inside the KV pages and changes only their bytes: "
              "raise /storage/kv_page_bytes instead");
    }
    if (v->str() != "sidecar") v->fail("expected \"sidecar\" (a draft model with a KV pool of its own: EAGLE3, standalone EAGLE); got \"" + v->str() + "\"");
    p.draft_sidecar = true;
  }
  if (auto v = n.find("write_through")) p.write_through = v->boolean();
  if (auto v = n.find("max_prefill_tokens")) p.max_prefill_tokens = v->integer(1, std::int64_t{1} << 32);
  if (auto v = n.find("hicache_ratio")) p.hicache_ratio = v->number(1.0, 1000.0);
}

// [low, high]: the two elements of `n`, not yet read.
std::vector<JsonNode> low_high(const JsonNode& n) {
  auto bounds = n.array(2);
  if (bounds.size() != 2) n.fail("expected [low, high]");
  return bounds;
}

DelayRule read_delay(const JsonNode& n, const Topology& t, const std::map<std::string, RequestId>& ids, bool jitter = false) {
  if (jitter) {
    n.object({"op", "ranks", "stages", "requests", "from_us", "to_us", "fixed_us", "uniform_us", "lognormal", "note"});
  } else {
    n.object({"op", "ranks", "stages", "requests", "from_us", "to_us", "fixed_us", "uniform_us", "lognormal", "never", "fail", "raises", "note"});
  }
  DelayRule r;
  r.op = n.at("op").choice<StorageOp>(storage_op_by_name, "hit_query, kv_get, sidecar_get, kv_set, sidecar_set, d2h_copy, h2d_copy");
  r.ranks = ranks_or_stages(n, t);
  if (auto v = n.find("requests")) {
    for (const JsonNode& name : v->array(1)) {
      auto it = ids.find(name.str());
      if (it == ids.end()) name.fail("no request named \"" + name.str() + "\" in /requests");
      r.requests.push_back(it->second);
    }
  }
  if (auto v = n.find("from_us")) r.from_ns = v->duration(1000, 0.0, kMaxUs);
  if (auto v = n.find("to_us")) r.to_ns = v->duration(1000, 0.0, kMaxUs);
  if (r.to_ns <= r.from_ns) n.fail("expected to_us > from_us");
  int effects = 0;
  if (auto v = n.find("fixed_us")) {
    ++effects;
    r.effect = DelayRule::Effect::kFixed;
    r.a_ns = v->duration(1000, 0.0, kMaxUs);
  }
  if (auto v = n.find("uniform_us")) {
    ++effects;
    const auto bounds = low_high(*v);
    r.effect = DelayRule::Effect::kUniform;
    r.a_ns = bounds[0].duration(1000, 0.0, kMaxUs);
    r.b_ns = bounds[1].duration(1000, 0.0, kMaxUs);
    if (r.b_ns < r.a_ns) v->fail("expected low <= high");
  }
  if (auto v = n.find("lognormal")) {
    ++effects;
    v->object({"median_us", "sigma"});
    r.effect = DelayRule::Effect::kLognormal;
    r.a_ns = v->at("median_us").duration(1000, 0.001, kMaxUs);
    r.sigma = v->at("sigma").number(0.0, 10.0);
  }
  if (auto v = n.find("never")) {
    ++effects;
    if (!v->boolean()) v->fail("expected true (omit the key otherwise)");
    r.effect = DelayRule::Effect::kNever;
  }
  if (auto v = n.find("fail")) {
    ++effects;
    if (!v->boolean()) v->fail("expected true (omit the key otherwise)");
    r.effect = DelayRule::Effect::kFail;
  }
  if (auto v = n.find("raises")) {
    ++effects;
    if (!v->boolean()) v->fail("expected true (omit the key otherwise)");
    r.effect = DelayRule::Effect::kRaise;
  }
  if (effects != 1) {
    n.fail(jitter ? "expected exactly one effect: fixed_us, uniform_us or lognormal"
                  : "expected exactly one effect: fixed_us, uniform_us, lognormal, never, fail or raises");
  }
  if (is_copy(r.op) && (r.effect == DelayRule::Effect::kFail || r.effect == DelayRule::Effect::kRaise)) {
    n.at(r.effect == DelayRule::Effect::kFail ? "fail" : "raises").fail("a host-device copy is slow or never completes; it cannot fail or raise");
  }
  return r;
}

// {"op": "sidecar_get", "ranks": [1], "late_us": [0, 1000]}: the call's extra delay is one of late_us.
LateRule read_late(const JsonNode& n, const Topology& t, const std::map<std::string, RequestId>& ids) {
  n.object({"op", "ranks", "stages", "requests", "from_us", "to_us", "late_us", "note"});
  LateRule l;
  // The matching fields are a delay rule's; a fixed 0 stands in for its effect.
  json match = n.raw();
  match.erase("late_us");
  match["fixed_us"] = 0;
  const JsonNode as_rule(match, n.source(), n.pointer());
  l.match = read_delay(as_rule, t, ids);
  const JsonNode late = n.at("late_us");
  for (const JsonNode& v : late.array(2)) l.late_ns.push_back(v.duration(1000, 0.0, kMaxUs));
  return l;
}

Expectation read_expectation(const JsonNode& n, const std::map<std::string, RequestId>& ids, const std::string& upstream_at, ModelFamily family,
                             bool attention_cp) {
  n.object({"variant", "policy", "verdict", "violations", "l3_lost_tokens", "outcomes", "note"});
  Expectation e;
  if (!n.find("variant") && upstream_at.empty()) n.at("variant");  // names what is missing
  e.variant = n.find("variant") ? n.at("variant").str() : upstream_at;
  std::string error;
  auto fixes = parse_variant(e.variant, &error);
  if (!fixes) n.at("variant").fail(error + " (expected PRESET[+FIX|~FIX]... or DATE[+FIX|~FIX]...; see hcsim fixes)");
  const std::string start = Variant::parse(e.variant, nullptr)->preset;
  if (before_model(start, family, attention_cp)) {
    (n.find("variant") ? n.at("variant") : n).fail("upstream " + start + " is before the model has code for " + model_scope(family, attention_cp) +
                                                  " (from " + std::string(model_since(family, attention_cp)) + ")");
  }
  e.fixes = *fixes;
  if (auto v = n.find("policy")) e.policy = v->choice<PrefetchPolicy>(policy_by_name, "best_effort, wait_complete, timeout");
  const std::string verdict = n.at("verdict").str();
  const auto kind = hang_kind_by_name(verdict);
  if (verdict == "hang") {
    e.any_hang = true;
  } else if (verdict == "complete") {
    e.verdict = HangKind::kNone;
  } else if (kind && *kind != HangKind::kNone) {
    e.verdict = *kind;
  } else {
    n.at("verdict").expected("one of complete, hang, deadlock, collective_mismatch, starvation, lost_worker, crash");
  }
  if (auto v = n.find("violations")) {
    std::string all_names;
    for (std::string_view k : kInvariantNames) all_names.append(all_names.empty() ? "" : ", ").append(k);
    std::vector<std::string> names;
    for (const JsonNode& name : v->array()) {
      if (std::find(kInvariantNames.begin(), kInvariantNames.end(), name.str()) == kInvariantNames.end()) {
        name.expected("an invariant name: " + all_names);
      }
      if (std::find(names.begin(), names.end(), name.str()) != names.end()) name.fail("\"" + name.str() + "\" is listed twice");
      names.push_back(name.str());
    }
    std::sort(names.begin(), names.end());
    e.violations = std::move(names);
  }
  if (auto v = n.find("l3_lost_tokens")) e.l3_lost_tokens = v->integer(0, std::int64_t{1} << 50);
  if (auto v = n.find("outcomes")) {
    for (auto& [name, o] : v->members()) {
      auto id = ids.find(name);
      if (id == ids.end()) o.fail("no request named \"" + name + "\" in /requests");
      o.object({"storage_hit_tokens", "scheduled_within_ms", "scheduled_after_ms", "ended"});
      Expectation::Outcome out;
      out.request = id->second;
      if (auto x = o.find("storage_hit_tokens")) out.storage_hit_tokens = x->integer(0, std::int64_t{1} << 40);
      if (auto x = o.find("scheduled_within_ms")) out.scheduled_within_ns = x->duration(1'000'000, 0.0, kMaxMs);
      if (auto x = o.find("scheduled_after_ms")) out.scheduled_after_ns = x->duration(1'000'000, 0.0, kMaxMs);
      if (auto x = o.find("ended")) {
        const std::string e = x->str();
        bool known = e == "not_registered";
        for (auto end : {OpEnd::kCompleted, OpEnd::kTerminated, OpEnd::kRevoked, OpEnd::kAborted, OpEnd::kFailed}) known = known || op_end_name(end) == e;
        if (!known) x->expected("one of completed, terminated, revoked, aborted, failed, not_registered");
        out.ended = e;
      }
      e.outcomes.push_back(out);
    }
  }
  return e;
}

// name, description, incident, upstream, seed, upstream_at.
void read_about(const JsonNode& root, Scenario& s) {
  s.name = root.at("name").str();
  s.description = root.at("description").str();
  if (auto v = root.find("incident")) s.incident = v->str();
  if (auto v = root.find("upstream")) {
    for (const JsonNode& u : v->array()) s.upstream.push_back(u.str());
  }
  if (auto v = root.find("seed")) s.seed = static_cast<std::uint64_t>(v->integer(0, std::numeric_limits<std::int64_t>::max()));
  if (auto v = root.find("upstream_at")) {
    s.upstream_at = v->str();
    std::string error;
    if (!UpstreamPoint::parse(s.upstream_at, &error)) v->fail(error);
  }
}

void read_scheduler(const JsonNode& n, PolicyConfig& p) {
  n.object({"pass_us", "sleep_on_idle"});
  if (auto v = n.find("pass_us")) p.scheduler_pass_ns = v->duration(1000, 1.0, kMaxUs);
  if (auto v = n.find("sleep_on_idle")) p.sleep_on_idle = v->boolean();
}

// Each rank's resources: the defaults, then a rank's overrides (keyed "0", "1", ...).
std::vector<RankResources> read_ranks(const std::optional<JsonNode>& n, int tp) {
  RankResources defaults;
  if (!n) return std::vector<RankResources>(static_cast<std::size_t>(tp), defaults);
  n->object({"defaults", "overrides"});
  if (auto d = n->find("defaults")) read_resources(*d, defaults);
  std::vector<RankResources> ranks(static_cast<std::size_t>(tp), defaults);
  if (auto o = n->find("overrides")) {
    for (auto& [key, value] : o->members()) {
      int r = -1;
      for (int k = 0; k < tp; ++k) r = key == std::to_string(k) ? k : r;
      if (r < 0) value.fail("expected a rank index in [0, " + std::to_string(tp - 1) + "] as the key, written plainly (\"3\")");
      read_resources(value, ranks[static_cast<std::size_t>(r)]);
    }
  }
  return ranks;
}

void read_storage(const JsonNode& n, StorageConfig& c) {
  n.object({"call_latency_us", "read_gbps", "kv_page_bytes", "sidecar_bytes", "stale_get_timeout_us", "backend", "host_copy_gbps",
            "copy_latency_us", "copy_gbps"});
  if (auto v = n.find("call_latency_us")) c.call_latency_ns = v->duration(1000, 0.0, kMaxUs);
  if (auto v = n.find("read_gbps")) c.read_bytes_per_ns = v->number(0.001, 10'000.0);
  if (auto v = n.find("kv_page_bytes")) c.kv_page_bytes = v->integer(0, std::int64_t{1} << 34);
  if (auto v = n.find("sidecar_bytes")) c.sidecar_bytes = v->integer(0, std::int64_t{1} << 36);
  if (auto v = n.find("stale_get_timeout_us")) c.stale_get_timeout_ns = v->duration(1000, 0.0, kMaxUs);
  if (auto v = n.find("backend")) {
    const std::string b = v->str();
    if (b != "file" && b != "zero_copy") v->expected("one of file, zero_copy");
    c.zero_copy = b == "zero_copy";
  }
  if (auto v = n.find("host_copy_gbps")) c.host_copy_bytes_per_ns = v->number(0.001, 10'000.0);
  if (auto v = n.find("copy_latency_us")) c.copy_latency_ns = v->duration(1000, 0.0, kMaxUs);
  if (auto v = n.find("copy_gbps")) c.copy_bytes_per_ns = v->number(0.001, 10'000.0);
}

void read_collective(const JsonNode& n, WorldConfig& world) {
  n.object({"latency_us", "forward_base_us", "forward_ns_per_token"});
  if (auto v = n.find("latency_us")) world.collective.latency_ns = v->duration(1000, 0.0, kMaxUs);
  if (auto v = n.find("forward_base_us")) world.collective.forward_base_ns = v->duration(1000, 0.0, kMaxUs);
  if (auto v = n.find("forward_ns_per_token")) world.collective.forward_ns_per_token = v->integer(0, 1'000'000'000);
}

void read_bounds(const JsonNode& n, WorldConfig& world) {
  n.object({"horizon_ms", "starvation_ms", "collective_stall_ms", "check_period_ms", "settle_us", "quiesce_ms"});
  auto& b = world.bounds;
  if (auto v = n.find("horizon_ms")) b.horizon_ns = v->duration(1'000'000, 1.0, kMaxMs);
  if (auto v = n.find("starvation_ms")) b.starvation_ns = v->duration(1'000'000, 1.0, kMaxMs);
  if (auto v = n.find("collective_stall_ms")) b.collective_stall_ns = v->duration(1'000'000, 1.0, kMaxMs);
  if (auto v = n.find("check_period_ms")) b.check_period_ns = v->duration(1'000'000, 0.001, kMaxMs);
  if (auto v = n.find("settle_us")) b.settle_ns = v->duration(1000, 0.0, kMaxUs);
  if (auto v = n.find("quiesce_ms")) b.quiesce_ns = v->duration(1'000'000, 0.0, kMaxMs);
}

// The requests, into `s.workload`, each charged to `budget` as it is read. Returns their ids by name.
std::map<std::string, RequestId> read_requests(const JsonNode& requests, Scenario& s, PageBudget& budget) {
  std::map<std::string, RequestId> ids;
  requests.within(Limit::kRequests, static_cast<std::int64_t>(requests.raw().size()), "requests");
  std::vector<std::string> prefixes;  // by request
  for (const JsonNode& r : requests.array(1)) {
    r.object({"name", "arrival_us", "input_tokens", "prefix", "abort_us"});
    RequestSpec req;
    req.id = static_cast<RequestId>(s.workload.size());
    req.name = r.at("name").str();
    if (!ids.emplace(req.name, req.id).second) r.at("name").fail("duplicate request name \"" + req.name + "\"");
    req.arrival_ns = r.at("arrival_us").duration(1000, 0.0, kMaxUs);
    req.input_tokens = static_cast<std::int32_t>(r.at("input_tokens").integer(1, 1 << 24));
    if (auto v = r.find("abort_us")) {
      req.abort_ns = v->duration(1000, 0.0, kMaxUs);
      if (req.abort_ns < req.arrival_ns) v->fail("expected an abort at or after the request's arrival_us");
    }
    // Without a prefix a request's content is its own: a chain no named prefix can produce.
    prefixes.push_back(r.has("prefix") ? prefix_name(r.at("prefix")) : kOwnContent + req.name);
    budget.charge(req.input_tokens / s.policy.page_size_tokens, [&](const std::string& m) { r.at("input_tokens").fail("the requests up to here make " + m); });
    s.workload.push_back(std::move(req));
  }
  // Keys only once every request is read and counted: a scenario over the limit holds none.
  for (std::size_t i = 0; i < s.workload.size(); ++i) {
    s.workload[i].pages = prefix_page_keys(prefixes[i], s.workload[i].input_tokens / s.policy.page_size_tokens);
  }
  return ids;
}

// Pages of one entry, each in [1, kv_pages].
std::vector<std::int32_t> l3_pages(const JsonNode& v, std::int32_t kv_pages, std::string_view what) {
  if (kv_pages == 0 && !v.array().empty()) v.fail(std::string(what) + " must be one of the kv_pages; kv_pages is 0");
  std::vector<std::int32_t> pages;
  for (const JsonNode& p : v.array()) pages.push_back(static_cast<std::int32_t>(p.integer(1, kv_pages)));
  return pages;
}

// "pools": {"NAME": {"missing_pages": [...], "stale_pages": [...]}}, NAME a derived pool of the stack.
void read_derived_pools(const JsonNode& n, const PolicyConfig& policy, L3Contents& c) {
  const auto stack = policy.stored_stack();
  std::string names;
  for (std::size_t tag = 1; tag < stack.size(); ++tag) names.append(names.empty() ? "" : ", ").append(stack[tag].name);
  for (const auto& [name, o] : n.members()) {
    std::size_t tag = 1;
    while (tag < stack.size() && stack[tag].name != name) ++tag;
    if (tag >= stack.size()) {
      o.fail(std::string("no derived pool \"").append(name).append("\" in the ").append(model_family_name(policy.family)).append(
          names.empty() ? " stack, which has none" : " stack; its derived pools: " + names));
    }
    o.object({"missing_pages", "stale_pages"});
    L3Contents::DerivedPool d;
    d.tag = tag;
    if (auto v = o.find("missing_pages")) d.missing_pages = l3_pages(*v, c.kv_pages, "a missing object");
    if (auto v = o.find("stale_pages")) {
      d.stale_pages = l3_pages(*v, c.kv_pages, "a stale object");
      for (std::int32_t p : d.stale_pages) {
        if (std::find(d.missing_pages.begin(), d.missing_pages.end(), p) != d.missing_pages.end()) {
          v->fail("page " + std::to_string(p) + " is in missing_pages too: a stale object is one hit queries find");
        }
      }
    }
    c.pools.push_back(std::move(d));
  }
}

// One entry of "l3"; its pages are charged by the caller.
L3Contents read_l3_contents(const JsonNode& o, const Topology& t, const PolicyConfig& policy) {
  o.object({"prefix", "kv_pages", "sidecar_at_pages", "sidecar_stale_pages", "stale_pages", "pools", "ranks", "stages"});
  L3Contents c;
  c.prefix = prefix_name(o.at("prefix"));
  c.kv_pages = static_cast<std::int32_t>(o.at("kv_pages").integer(0, 1 << 24));
  if (auto v = o.find("sidecar_at_pages")) {
    c.sidecar_pages_given = true;
    if (c.kv_pages == 0 && !v->array().empty()) v->fail("a sidecar object needs a page to follow; kv_pages is 0");
    for (const JsonNode& p : v->array()) c.sidecar_at_pages.push_back(static_cast<std::int32_t>(p.integer(1, c.kv_pages)));
  }
  if (auto v = o.find("sidecar_stale_pages")) {
    if (c.kv_pages == 0 && !v->array().empty()) v->fail("a stale sidecar object must follow one of the kv_pages; kv_pages is 0");
    for (const JsonNode& p : v->array()) c.sidecar_stale_pages.push_back(static_cast<std::int32_t>(p.integer(1, c.kv_pages)));
  }
  if (auto v = o.find("stale_pages")) {
    if (c.kv_pages == 0 && !v->array().empty()) v->fail("a stale page must be one of the kv_pages; kv_pages is 0");
    for (const JsonNode& p : v->array()) c.stale_pages.push_back(static_cast<std::int32_t>(p.integer(1, c.kv_pages)));
  }
  if (auto v = o.find("pools")) read_derived_pools(*v, policy, c);
  c.ranks = ranks_or_stages(o, t);
  return c;
}

// The L3 contents, each charged to `budget` once per rank that holds it.
std::vector<L3Contents> read_l3(const JsonNode& n, const Topology& t, const PolicyConfig& policy, PageBudget& budget) {
  std::vector<L3Contents> l3;
  for (const JsonNode& o : n.array()) {
    L3Contents c = read_l3_contents(o, t, policy);
    const auto holders = static_cast<std::int64_t>(c.ranks.empty() ? t.ranks() : static_cast<int>(c.ranks.size()));
    budget.charge(c.kv_pages * holders, [&](const std::string& m) { o.at("kv_pages").fail("the L3 contents up to here make " + m); });
    l3.push_back(std::move(c));
  }
  return l3;
}

Perturbations read_perturbations(const JsonNode& n, const Topology& t, const std::map<std::string, RequestId>& ids) {
  n.object({"jitter", "device_free_pages", "arrival_us", "note"});
  Perturbations p;
  if (auto v = n.find("jitter")) {
    for (const JsonNode& d : v->array()) p.jitter.push_back(read_delay(d, t, ids, /*jitter=*/true));
  }
  if (auto v = n.find("device_free_pages")) {
    const auto b = low_high(*v);
    p.device_free_pages_lo = static_cast<std::int32_t>(b[0].integer(-(1 << 20), 1 << 20));
    p.device_free_pages_hi = static_cast<std::int32_t>(b[1].integer(p.device_free_pages_lo, 1 << 20));
  }
  if (auto v = n.find("arrival_us")) {
    const auto b = low_high(*v);
    p.arrival_lo_ns = b[0].duration(1000, 0.0, kMaxUs);
    p.arrival_hi_ns = b[1].duration(1000, static_cast<double>(p.arrival_lo_ns) / 1000.0, kMaxUs);
  }
  return p;
}

// A request the run ends before would read as starving; such a scenario cannot answer anything.
void check_arrivals_before_horizon(const JsonNode& requests, const Scenario& s) {
  const auto request_nodes = requests.array(1);
  const auto ms = [](TimeNs t) { return std::to_string(t / 1'000'000) + " ms"; };
  for (std::size_t i = 0; i < s.workload.size(); ++i) {
    const TimeNs latest_ns = s.workload[i].arrival_ns + s.perturbations.arrival_hi_ns;
    if (latest_ns < s.world.bounds.horizon_ns) continue;
    request_nodes[i].at("arrival_us").fail("arrives at " + ms(latest_ns) + (s.perturbations.arrival_hi_ns > 0 ? " with /perturbations/arrival_us" : "") +
                                           ", not before the horizon at " + ms(s.world.bounds.horizon_ns) +
                                           ": the run would end before it arrives; raise /bounds/horizon_ms");
  }
}

}  // namespace

std::vector<PageKey> prefix_page_keys(const std::string& prefix, std::int32_t pages) {
  std::vector<PageKey> keys;
  keys.reserve(static_cast<std::size_t>(std::max(pages, 0)));
  std::uint64_t h = fnv1a64(prefix);
  for (std::int32_t i = 0; i < pages; ++i) {
    h = fnv1a64(std::string_view(reinterpret_cast<const char*>(&i), sizeof i), h * 0x9e3779b97f4a7c15ULL);
    keys.push_back(h);
  }
  return keys;
}

// DP attention replicas and attention CP: how the TP ranks split into attention groups.
void read_attention(const JsonNode& n, Scenario& s) {
  n.object({"dp", "cp", "note"});
  Topology t = s.world.topology();
  if (auto v = n.find("dp")) t.dp = static_cast<int>(v->integer(1, t.tp));
  if (auto v = n.find("cp")) t.cp = static_cast<int>(v->integer(1, t.tp));
  if (const std::string problem = t.problem(); !problem.empty()) n.fail(problem);
  s.world.attn_dp = s.policy.attn_dp = t.dp;
  s.world.attn_cp = s.policy.attn_cp = t.cp;
}

Scenario parse_scenario(const std::string& text, const std::string& source) {
  const json doc = parse_json(text, source, "a scenario object (docs/scenario-format.md), like {\"name\": \"x\", \"tp\": 2, \"policy\": {...}, \"requests\": [...], ...}");
  const JsonNode root(doc, source, "");
  root.object({"name", "description", "incident", "upstream", "upstream_at", "seed", "tp", "pp", "attention", "policy", "scheduler", "ranks", "storage",
               "collective", "l3", "requests", "delays", "perturbations", "explore", "bounds", "expect"});
  Scenario s;
  s.path = source;
  read_about(root, s);
  const int tp_size = static_cast<int>(root.at("tp").limited_integer(1, Limit::kRanks, "ranks"));
  const int pp = root.find("pp") ? static_cast<int>(root.at("pp").integer(1, std::max<std::int64_t>(1, limit_value(Limit::kRanks) / tp_size))) : 1;
  const int tp = pp * tp_size;  // every rank of every stage, as delays and /ranks name them
  s.world.ranks = tp;
  s.world.pp = s.policy.pp = pp;
  if (auto n = root.find("attention")) read_attention(*n, s);
  if (pp > 1) {
    if (const std::string problem = s.world.topology().problem(); !problem.empty()) root.at("pp").fail(problem);
  }

  read_policy(root.at("policy"), s.policy);
  if (auto n = root.find("scheduler")) read_scheduler(*n, s.policy);
  s.policy.ranks = read_ranks(root.find("ranks"), tp);
  if (auto n = root.find("storage")) read_storage(*n, s.storage);
  if (auto n = root.find("collective")) read_collective(*n, s.world);
  if (auto n = root.find("bounds")) read_bounds(*n, s.world);

  // Pages are counted as they are described, so a scenario claiming too many fails before holding them.
  PageBudget budget;
  std::int64_t host_pages = 0;
  for (const RankResources& r : s.policy.ranks) host_pages += r.host_kv_pages;
  budget.charge(host_pages, [&](const std::string& m) { root.at("ranks").fail("the host pools of all ranks make " + m); });
  const JsonNode requests = root.at("requests");
  const std::map<std::string, RequestId> ids = read_requests(requests, s, budget);
  const Topology topology = s.world.topology();
  if (auto n = root.find("l3")) s.l3 = read_l3(*n, topology, s.policy, budget);

  if (auto n = root.find("delays")) {
    for (const JsonNode& d : n->array()) s.delays.push_back(read_delay(d, topology, ids));
  }
  if (auto n = root.find("perturbations")) s.perturbations = read_perturbations(*n, topology, ids);
  if (auto n = root.find("explore")) {
    n->object({"late", "note"});
    for (const JsonNode& l : n->at("late").array(1)) s.explore_late.push_back(read_late(l, topology, ids));
  }
  for (const JsonNode& e : root.at("expect").array(1)) {
    s.expect.push_back(read_expectation(e, ids, s.upstream_at, s.policy.family, s.policy.attn_cp > 1));
  }
  check_arrivals_before_horizon(requests, s);
  return s;
}

Scenario load_scenario_file(const std::string& path) {
  return parse_scenario(read_bounded_file(path, kScenarioBytesMax, "a scenario is a description, not data"), path);
}

Scenario load_scenario_file_at_tp(const std::string& path, int tp) {
  json doc = parse_json(read_bounded_file(path, kScenarioBytesMax, "a scenario is a description, not data"), path);
  if (!doc.is_object()) return parse_scenario(doc.dump(), path);  // the reader says what is wrong
  doc["tp"] = tp;
  return parse_scenario(doc.dump(), path + " at tp " + std::to_string(tp));
}

}  // namespace hcsim
