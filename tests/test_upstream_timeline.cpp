// The upstream timeline: what a date or a commit stands for, which code path serves a model family
// then, and what each path has in force.
#include <string>

#include <catch2/catch.hpp>

#include "policy/policy_config.h"
#include "policy/upstream_timeline.h"

namespace hcsim {

namespace {
FixSet at(const char* text) {
  std::string error;
  const auto p = UpstreamPoint::parse(text, &error);
  INFO(text << ": " << error);
  REQUIRE(p.has_value());
  return fixes_at(*p);
}
}  // namespace

TEST_CASE("upstream timeline: rows are in date order and each names a merged fix", "[upstream]") {
  const auto rows = upstream_timeline();
  REQUIRE(rows.size() >= 2);
  for (std::size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1].date <= rows[i].date);
  for (const UpstreamChange& c : rows) {
    INFO(c.pr);
    CHECK(fix_info(c.fix).state == UpstreamState::kMerged);
    CHECK(fix_info(c.fix).commit == c.commit);  // the fix's record and its row agree
    CHECK(c.date <= kUpstreamPinDate);
  }
}

TEST_CASE("upstream point: a date takes every change merged by the end of that day", "[upstream]") {
  CHECK_FALSE(at("2026-06-03").has(Fix::kSidecarAfterKv));
  CHECK(at("2026-06-04").has(Fix::kSidecarAfterKv));
  CHECK_FALSE(at("2026-06-04").has(Fix::kPoolTransferGuard));
  CHECK(at("2026-06-05").has(Fix::kPoolTransferGuard));
  CHECK(at("2025-08-08") == FixSet{});  // the stop policies exist, no fix yet
  CHECK(at("2026-08-20").has(Fix::kThresholdInDrain));
  // A commit stands for its row; COMMIT^ for the row before it; a prefix of the hash will do.
  CHECK(at("faa628694") == at("2026-06-05"));
  CHECK(at("faa628694^") == at("2026-06-04"));
  CHECK(at("faa62869461d") == at("faa628694"));
  CHECK(at("17313cf4b") == at("2026-08-20"));
  CHECK(at("17313cf4b^") == at("2026-08-20"));  // the pin is no row: its parent has every row too
}

TEST_CASE("upstream point: what it refuses, and why", "[upstream]") {
  std::string error;
  CHECK_FALSE(UpstreamPoint::parse("2025-08-07", &error));
  CHECK(error.find("#8692") != std::string::npos);
  CHECK_FALSE(UpstreamPoint::parse("2026-08-29", &error));
  CHECK(error.find("up to 2026-08-28 (8e04f66a7)") != std::string::npos);
  // The mirror's last commit, which citations name, is upstream on its day.
  CHECK(UpstreamPoint::parse("17313cf4b", &error) == UpstreamPoint::parse("2026-08-20", &error));
  CHECK_FALSE(UpstreamPoint::parse("0123456789", &error));
  CHECK(error.find("not on the model's timeline") != std::string::npos);
  CHECK_FALSE(UpstreamPoint::parse("yesterday", &error));
  CHECK(error.find("YYYY-MM-DD") != std::string::npos);
  CHECK_FALSE(UpstreamPoint::parse("2026-13-01", &error));
  CHECK_FALSE(looks_like_upstream_point("pre-fix"));
  CHECK(looks_like_upstream_point("2026-06-04"));
  CHECK(looks_like_upstream_point("faa628694^"));
}

TEST_CASE("a model family starts where the model has code for it", "[upstream]") {
  CHECK(before_model("2026-03-22", ModelFamily::kHybridMamba, false));
  CHECK_FALSE(before_model("2026-03-23", ModelFamily::kHybridMamba, false));
  CHECK(before_model("2026-06-10", ModelFamily::kHybridSwa, false));
  CHECK_FALSE(before_model("2025-08-08", ModelFamily::kDense, false));
  CHECK(before_model("33467c05a", ModelFamily::kHybridMamba, false));  // a commit stands for its row's date
  CHECK_FALSE(before_model("faa628694^", ModelFamily::kHybridMamba, false));
  CHECK_FALSE(before_model("pre-fix", ModelFamily::kHybridSwa, false));  // a preset is never a date
  // Attention CP from #20460 (2026-04-27), or the family's date if later.
  CHECK(before_model("2026-04-26", ModelFamily::kDense, true));
  CHECK_FALSE(before_model("2026-04-27", ModelFamily::kDense, true));
  CHECK(model_since(ModelFamily::kHybridSwa, true) == "2026-06-11");
}

TEST_CASE("code path: hybrid Mamba runs HiMamba until #27759, then the unified tree", "[upstream]") {
  CHECK(code_path(ModelFamily::kHybridMamba, at("2026-06-10")) == CodePath::kHiMamba);
  CHECK(code_path(ModelFamily::kHybridMamba, at("2026-06-11")) == CodePath::kUnified);
  CHECK(code_path(ModelFamily::kDense, at("2026-08-20")) == CodePath::kHiRadix);
  CHECK(code_path(ModelFamily::kDsa, at("2026-07-13")) == CodePath::kHiRadix);  // #21259: HiRadixCache with the hybrid controller
  CHECK(code_path(ModelFamily::kDsa, at("2026-07-14")) == CodePath::kUnified);  // #30468
  CHECK(before_model("2026-04-13", ModelFamily::kDsa, false));
  // A counterfactual: today's upstream had #27759 not merged.
  CHECK(code_path(ModelFamily::kHybridMamba, at("2026-08-20").without(Fix::kUnifiedTreeRoute)) == CodePath::kHiMamba);
}

TEST_CASE("in force: the unified tree has four changes built in and keeps its own timeout", "[upstream]") {
  PolicyConfig cfg;
  cfg.family = ModelFamily::kHybridMamba;
  cfg.apply_fixes(at("2026-06-11"));
  REQUIRE(cfg.unified());
  // #26923 reached HiMamba on 06-22, but the unified tree had #27489 since 06-08.
  CHECK_FALSE(cfg.fixes.has(Fix::kSyncedAckChecks));
  CHECK(cfg.has(Fix::kSyncedAckChecks));
  CHECK(cfg.has(Fix::kSidecarHitSync));
  CHECK(cfg.has(Fix::kPoolTransferGuard));
  CHECK_FALSE(cfg.has(Fix::kPrefetchTimeoutConfig));
  CHECK(cfg.timeout.formula == TimeoutFormula::kLinear);  // 1 s + 0.25 s per Ki token, no cap
  CHECK(cfg.timeout.base_ns == 1'000'000'000);

  PolicyConfig himamba;
  himamba.family = ModelFamily::kHybridMamba;
  himamba.apply_fixes(at("2026-06-05"));
  CHECK_FALSE(himamba.unified());
  CHECK_FALSE(himamba.has(Fix::kSidecarHitSync));  // #27264 reached only the unified tree
  CHECK(himamba.timeout.formula == TimeoutFormula::kCapped);
  CHECK(himamba.timeout.base_ns == 2'000'000'000);

  // A scenario's own timeout wins over any date's default.
  PolicyConfig given;
  given.timeout_given = true;
  given.timeout.base_ns = 7;
  given.apply_fixes(at("2026-08-20"));
  CHECK(given.timeout.base_ns == 7);
}

TEST_CASE("upstream label: the range of dates a fix set stood for", "[upstream]") {
  CHECK(upstream_label(at("2026-06-05")) == "upstream 2026-06-05 (faa628694, #27366) until 2026-06-06 (42fe02528, #27285)");
  CHECK(upstream_label(at("2025-08-10")) == "upstream from 2025-08-08 until 2025-08-27 (a3aee7c37, #9397)");
  CHECK(upstream_label(at("2026-08-20").with(Fix::kTimeoutBeatsGuard)) == "hypothetical: never upstream as a whole");
  CHECK(upstream_at(at("2026-06-08")) == UpstreamPoint::parse("2026-06-06", nullptr));
}

}  // namespace hcsim
