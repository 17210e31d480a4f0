#include "policy/variant.h"

#include "policy/assert.h"
#include "policy/upstream_timeline.h"

namespace hcsim {

std::optional<Variant> Variant::parse(std::string_view text, std::string* error) {
  Variant v;
  const auto op = text.find_first_of("+~");
  v.preset = std::string(text.substr(0, op));
  if (looks_like_upstream_point(v.preset)) {
    if (!UpstreamPoint::parse(v.preset, error)) return std::nullopt;
  } else if (!preset_by_name(v.preset)) {
    if (error) *error = "unknown preset '" + v.preset + "': a preset name, an upstream date (YYYY-MM-DD) or a timeline commit";
    return std::nullopt;
  }
  for (auto at = op; at != std::string_view::npos;) {  // bounded: each round moves past one fix
    const auto next = text.find_first_of("+~", at + 1);
    const auto name = text.substr(at + 1, next == std::string_view::npos ? next : next - at - 1);
    if (!fix_by_name(name)) {
      if (error) *error = "unknown fix '" + std::string(name) + "'";
      return std::nullopt;
    }
    v.steps.push_back({text[at] == '+', std::string(name)});
    at = next;
  }
  return v;
}

std::string Variant::text() const {
  std::string out = preset;
  for (const Step& s : steps) out.append(s.add ? "+" : "~").append(s.fix);
  return out;
}

std::string Variant::flags() const {
  std::string out = (looks_like_upstream_point(preset) ? " --upstream " : " --preset ") + preset;
  for (const Step& s : steps) out.append(s.add ? " --fix " : " --without ").append(s.fix);
  return out;
}

FixSet Variant::fixes() const {
  std::optional<FixSet> base;
  if (looks_like_upstream_point(preset)) {
    const auto at = UpstreamPoint::parse(preset, nullptr);
    HCSIM_ASSERT(at.has_value());  // a parsed variant's point is valid
    base = fixes_at(*at);
  } else {
    base = preset_by_name(preset);
  }
  HCSIM_ASSERT(base.has_value());
  FixSet set = *base;
  for (const Step& s : steps) {
    const auto fix = fix_by_name(s.fix);
    HCSIM_ASSERT(fix.has_value());
    set = s.add ? set.with(*fix) : set.without(*fix);
  }
  return set;
}

std::optional<FixSet> parse_variant(std::string_view expr, std::string* error) {
  const auto v = Variant::parse(expr, error);
  return v ? std::optional<FixSet>(v->fixes()) : std::nullopt;
}

}  // namespace hcsim
