// Variant: which code a run stands for, as a value: a preset or an upstream point (a date or a
// timeline commit), with named fixes added (+) and removed (~) in order.
//
//   Variant v = *Variant::parse("timeout-bounded+sidecar-hit-sync", &error);
//   v.text()   -> "timeout-bounded+sidecar-hit-sync"
//   v.flags()  -> " --preset timeout-bounded --fix sidecar-hit-sync"   (for reproduce lines)
//   v.fixes()  -> the preset's fixes with sidecar-hit-sync
//   Variant::parse("2026-08-20+timeout-beats-guard", &error)->flags()
//              -> " --upstream 2026-08-20 --fix timeout-beats-guard"
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/fixes.h"

namespace hcsim {

struct Variant {
  struct Step {
    bool add = true;  // + adds the fix, ~ removes it
    std::string fix;
    bool operator==(const Step&) const = default;
  };
  std::string preset{kDefaultPreset};  // a preset name or an upstream point (date or commit)
  std::vector<Step> steps;

  // Checks every name (old names of renamed fixes included); on failure nullopt, and why in `error`.
  static std::optional<Variant> parse(std::string_view text, std::string* error);
  std::string text() const;
  std::string flags() const;  // the command-line options that select it
  FixSet fixes() const;       // the names must be known: a parsed variant's are
  bool operator==(const Variant&) const = default;
};

// Parses "PRESET[+FIX|~FIX]..." into a fix set; on failure returns nullopt and says why in `error`.
std::optional<FixSet> parse_variant(std::string_view expr, std::string* error);

}  // namespace hcsim
