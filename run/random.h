// RandomStream: one seeded generator per named stream (xoshiro256** seeded by splitmix64 from the
// run seed and the stream's name), so adding draws to one stream never shifts another's.
// No std:: distributions: their output differs between standard libraries.
//
//   RandomStream delays(seed, "delay/0");
//   TimeNs d = delays.uniform_ns(1'000, 5'000);
#pragma once

#include <cstdint>
#include <string_view>

#include "policy/trace_event.h"

namespace hcsim {

class RandomStream {
 public:
  RandomStream(std::uint64_t seed, std::string_view name);

  std::uint64_t next_u64();
  double next_unit();  // [0, 1) with 53 random bits
  TimeNs uniform_ns(TimeNs lo_ns, TimeNs hi_ns);  // inclusive bounds
  double standard_normal();
  TimeNs lognormal_ns(TimeNs median_ns, double sigma);

 private:
  std::uint64_t s_[4];
};

std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t h = 0xcbf29ce484222325ULL);

}  // namespace hcsim
