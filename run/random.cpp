#include "run/random.h"

#include <cmath>

#include "policy/assert.h"

namespace hcsim {

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

RandomStream::RandomStream(std::uint64_t seed, std::string_view name) {
  std::uint64_t x = seed ^ fnv1a64(name);
  for (auto& s : s_) s = splitmix64(x);
}

std::uint64_t RandomStream::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double RandomStream::next_unit() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

TimeNs RandomStream::uniform_ns(TimeNs lo_ns, TimeNs hi_ns) {
  HCSIM_ASSERT(lo_ns <= hi_ns);
  const auto span = static_cast<std::uint64_t>(hi_ns - lo_ns) + 1;
  return lo_ns + static_cast<TimeNs>(next_u64() % span);  // bias < 2^-40 for spans below 2^24 ns
}

double RandomStream::standard_normal() {
  // Box-Muller; u1 in (0, 1] so the log is finite.
  const double u1 = 1.0 - next_unit();
  const double u2 = next_unit();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

TimeNs RandomStream::lognormal_ns(TimeNs median_ns, double sigma) {
  HCSIM_ASSERT(median_ns > 0 && sigma >= 0.0);
  return static_cast<TimeNs>(std::llround(static_cast<double>(median_ns) * std::exp(sigma * standard_normal())));
}

}  // namespace hcsim
