#include "policy/upstream_timeline.h"

#include <array>
#include <cctype>

#include "policy/assert.h"

namespace hcsim {

namespace {

// Dates and commits: the first-parent history of upstream main up to 17313cf4b (2026-08-20), then
// two merges dated by their upstream commits (829138a31, 8e04f66a7).
// docs/upstream-map.md has the code each row changed, at its commit.
constexpr std::array<UpstreamChange, 18> kTimeline = {{
    {"2025-08-27", "a3aee7c37", "#9397", Fix::kCompletionRaceGuard, "an empty hash_value is never complete"},
    {"2025-09-07", "33467c05a", "#9971", Fix::kFailedReadTerminates, "a short L3 read terminates the operation"},
    {"2026-05-11", "5495026a3", "#23309", Fix::kPrefetchTimeoutConfig,
     "HiRadixCache and HiMamba: default timeout 2 s + 0.1 s per Ki token, capped at 30 s"},
    {"2026-06-04", "736263f3d", "#26881", Fix::kSidecarAfterKv,
     "the hybrid controller reads sidecar objects after every KV page (the seed bug's window opens)"},
    {"2026-06-05", "faa628694", "#27366", Fix::kPoolTransferGuard, "HiMamba: a pending sidecar votes 'cannot terminate' (the seed fix)"},
    {"2026-06-06", "42fe02528", "#27285", Fix::kPpAckChain, "HiRadixCache and the unified tree: PP0 decides the ack counts, later stages follow"},
    {"2026-06-09", "991689fd0", "#27550", Fix::kHiRadixPoolGuard, "HiRadixCache: a pending sidecar (the DSA indexer) votes 'cannot terminate'"},
    {"2026-06-11", "5e0271536", "#27759", Fix::kUnifiedTreeRoute, "hybrid models with HiCache run the unified radix tree"},
    {"2026-06-22", "7f67965b4", "#26923", Fix::kSyncedAckChecks, "HiRadixCache and HiMamba: writing_check and loading_check always MIN-agree"},
    {"2026-06-26", "da0f4f6f9", "#28614", Fix::kRateLimitHalfHost, "rate limit: half the host pool"},
    {"2026-07-14", "afa3c06d1", "#30468", Fix::kDsaUnifiedRoute, "DSA models with HiCache run the unified radix tree"},
    {"2026-07-16", "7cd55c681", "#19320", Fix::kHitThenAlloc, "hit-then-alloc: host KV slots allocated in the scheduler's hit drain"},
    {"2026-07-21", "1a53f231d", "#31443", Fix::kHybridResultCheck,
     "hybrid results all-or-nothing; leading-run sidecar hits; no sidecar read once terminated"},
    {"2026-07-29", "50029f05a", "#30511", Fix::kMergedTickMin, "HiRadixCache and the unified tree: one MIN per tick for acks and queue sizes"},
    {"2026-08-06", "8e11feb68", "#30393", Fix::kDraftSidecars, "the unified tree: a draft model's own KV pool is a sidecar (EAGLE3)"},
    {"2026-08-06", "f6de147b8", "#33613", Fix::kThresholdInDrain, "revoke queue removed: the hit drain applies the threshold"},
    // After the mirror's last commit: read from upstream's own files at 001067ff and 8e04f66a7.
    {"2026-08-25", "829138a31", "#27010", Fix::kAckDesign, "the acknowledgement design: acks MIN-agreed over TP and PP, completion via the drain"},
    {"2026-08-28", "8e04f66a7", "#36425", Fix::kVoteOnlyUnderTimeout, "the termination vote's collective only under timeout"},
}};

// Upstream had no prefetch stop policies before #8692 (e2fd2b9c7).
constexpr std::string_view kFirstPolicyDate = "2025-08-08";

bool is_date(std::string_view t) {
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(t[i]))) return false;
  }
  const int month = (t[5] - '0') * 10 + (t[6] - '0');
  const int day = (t[8] - '0') * 10 + (t[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

bool is_hex(std::string_view t) {
  if (t.size() < 7 || t.size() > 40) return false;
  for (char c : t) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string row_text(int i) {
  const UpstreamChange& c = kTimeline[static_cast<std::size_t>(i)];
  return std::string(c.date) + " (" + std::string(c.commit) + ", " + std::string(c.pr) + ")";
}

}  // namespace

std::string_view model_family_name(ModelFamily f) {
  switch (f) {
    case ModelFamily::kDense: return "dense";
    case ModelFamily::kHybridMamba: return "hybrid_mamba";
    case ModelFamily::kHybridSwa: return "hybrid_swa";
    case ModelFamily::kDsa: return "dsa";
    case ModelFamily::kDeepSeekV4: return "deepseek_v4";
  }
  HCSIM_ASSERT(false);
  return {};
}

std::optional<ModelFamily> model_family_by_name(std::string_view name) {
  for (ModelFamily f : kModelFamilies) {
    if (model_family_name(f) == name) return f;
  }
  return std::nullopt;
}

std::string_view code_path_name(CodePath p) {
  switch (p) {
    case CodePath::kHiRadix: return "HiRadixCache";
    case CodePath::kHiMamba: return "HiMambaRadixCache";
    case CodePath::kUnified: return "UnifiedRadixCache";
  }
  HCSIM_ASSERT(false);
  return {};
}

CodePath code_path(ModelFamily family, const FixSet& fixes) {
  if (family == ModelFamily::kDense) return CodePath::kHiRadix;
  if (family == ModelFamily::kDsa) return fixes.has(Fix::kDsaUnifiedRoute) ? CodePath::kUnified : CodePath::kHiRadix;
  if (family == ModelFamily::kHybridSwa || family == ModelFamily::kDeepSeekV4) {
    return fixes.has(Fix::kUnifiedTreeRoute) ? CodePath::kUnified : CodePath::kHiRadix;
  }
  return fixes.has(Fix::kUnifiedTreeRoute) ? CodePath::kUnified : CodePath::kHiMamba;
}

std::span<const UpstreamChange> upstream_timeline() { return kTimeline; }

std::string_view family_since(ModelFamily family) {
  switch (family) {
    case ModelFamily::kDense: return kFirstPolicyDate;
    case ModelFamily::kHybridMamba: return "2026-03-23";
    case ModelFamily::kHybridSwa: return "2026-06-11";
    case ModelFamily::kDsa: return "2026-04-14";  // #21259 (e9d6b9eb2): HiRadixCache with the hybrid controller's indexer
    // L3 for DeepSeek-V4 came with #26881 (06-04), on the unified tree, which served it from #27759.
    case ModelFamily::kDeepSeekV4: return "2026-06-11";
  }
  HCSIM_ASSERT(false);
  return {};
}

std::string_view model_since(ModelFamily family, bool attention_cp) {
  constexpr std::string_view kAttentionCpSince = "2026-04-27";
  return attention_cp ? std::max(family_since(family), kAttentionCpSince) : family_since(family);
}

std::string model_scope(ModelFamily family, bool attention_cp) {
  return std::string(model_family_name(family)) + (attention_cp ? " with attention CP" : "");
}

bool before_model(std::string_view text, ModelFamily family, bool attention_cp) {
  if (!looks_like_upstream_point(text)) return false;
  if (is_date(text)) return text < model_since(family, attention_cp);
  // A commit stands for its row's date; one before every row, for the first policy date.
  const auto at = UpstreamPoint::parse(text, nullptr);
  if (!at) return false;
  const std::string_view date = at->last < 0 ? kFirstPolicyDate : kTimeline[static_cast<std::size_t>(at->last)].date;
  return date < model_since(family, attention_cp);
}

bool looks_like_upstream_point(std::string_view text) {
  if (!text.empty() && text.back() == '^') text.remove_suffix(1);
  return is_date(text) || is_hex(text);
}

std::optional<UpstreamPoint> UpstreamPoint::parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<UpstreamPoint> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (is_date(text)) {
    if (text < kFirstPolicyDate) return fail("upstream before " + std::string(kFirstPolicyDate) + " (#8692) had no prefetch stop policies; got " + std::string(text));
    if (text > kUpstreamPinDate) {
      return fail("the model follows upstream up to " + std::string(kUpstreamPinDate) + " (" + std::string(kUpstreamPinCommit) +
                  "); got " + std::string(text));
    }
    UpstreamPoint p;
    for (int i = 0; i < static_cast<int>(kTimeline.size()); ++i) {
      if (kTimeline[static_cast<std::size_t>(i)].date <= text) p.last = i;
    }
    return p;
  }
  const bool before = !text.empty() && text.back() == '^';
  const std::string_view commit = before ? text.substr(0, text.size() - 1) : text;
  if (is_hex(commit)) {
    for (int i = 0; i < static_cast<int>(kTimeline.size()); ++i) {
      const std::string_view row = kTimeline[static_cast<std::size_t>(i)].commit;
      if (row.starts_with(commit) || commit.starts_with(row)) return UpstreamPoint{before ? i - 1 : i};
    }
    // The mirror's last commit, which citations name, is no row: upstream main on its day.
    constexpr std::string_view kMirrorCommit = "17313cf4b";
    if (commit.starts_with(kMirrorCommit) || kMirrorCommit.starts_with(commit)) return parse("2026-08-20", error);
    return fail("commit " + std::string(commit) + " is not on the model's timeline; give a date (YYYY-MM-DD) or one of the commits 'hcsim fixes' lists");
  }
  return fail("expected a date (YYYY-MM-DD) or an upstream commit of the timeline, optionally with ^ for the point before it; got '" +
              std::string(text) + "'");
}

FixSet fixes_at(UpstreamPoint at) {
  HCSIM_ASSERT(at.last >= -1 && at.last < static_cast<int>(kTimeline.size()));
  FixSet s;
  for (int i = 0; i <= at.last; ++i) s = s.with(kTimeline[static_cast<std::size_t>(i)].fix);
  return s;
}

std::optional<UpstreamPoint> upstream_at(const FixSet& fixes) {
  for (int i = -1; i < static_cast<int>(kTimeline.size()); ++i) {
    if (fixes_at(UpstreamPoint{i}) == fixes) return UpstreamPoint{i};
  }
  return std::nullopt;
}

std::string upstream_label(const FixSet& fixes) {
  const auto at = upstream_at(fixes);
  if (!at) return "hypothetical: never upstream as a whole";
  const int next = at->last + 1;
  const std::string until = next < static_cast<int>(kTimeline.size()) ? " until " + row_text(next)
                                                                         : " to " + std::string(kUpstreamPinDate) + " (" + std::string(kUpstreamPinCommit) + ")";
  if (at->last < 0) return "upstream from " + std::string(kFirstPolicyDate) + until;
  return "upstream " + row_text(at->last) + until;
}

}  // namespace hcsim
