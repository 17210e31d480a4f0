// median_round_us(): what one collective round costs a group whose ranks are threads of this
// process, measured the same way for every transport (`hcsim bench --gpu` compares Gloo and NCCL).
//
//   double us = median_round_us(4, 2000, [&](int rank) { mesh.all_gather(ch, rank, in, out[rank]); },
//                               [&] { mesh.abort(); });
#pragma once

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "policy/assert.h"

namespace hcsim {

// Every rank's thread calls `round(rank)` `rounds` times; rank 0 times each call from its start to its
// return. The rounds pace each other (a rank cannot finish round i before every rank entered it), so
// rank 0's median is the round's latency. When a rank throws, `abort()` releases the ranks waiting
// for it, and the first exception is rethrown here.
template <typename Round, typename Abort>
double median_round_us(int ranks, int rounds, Round round, Abort abort) {
  HCSIM_ASSERT(ranks >= 1 && rounds >= 1);
  std::vector<double> per_round_us(static_cast<std::size_t>(rounds));
  std::mutex error_mu;
  std::exception_ptr error;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      try {
        for (int i = 0; i < rounds; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          round(r);
          if (r == 0) per_round_us[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        }
      } catch (...) {
        {
          const std::lock_guard lock(error_mu);
          if (!error) error = std::current_exception();
        }
        abort();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  std::sort(per_round_us.begin(), per_round_us.end());
  return per_round_us[per_round_us.size() / 2];
}

}  // namespace hcsim
