// GlooMesh: the CPU process groups of one TP group over Gloo, TCP on loopback, as upstream runs
// tp_cpu_group on gloo. Ranks are threads of one process; each (channel, rank) has its own Gloo
// context, so the scheduler's, the prefetch thread's and the forward's collectives never share a
// communicator. abort() closes every connection: a rank blocked in a collective gets an error.
//
// Gloo's TCP transport cannot carry members that disagree on a message's size: its event-loop
// thread fails an enforce and terminates the process. Callers therefore agree on a fixed-size
// descriptor with all_gather first (the thread world does), and send payloads only when agreed.
//
//   GlooMesh mesh(2);                                   // connects every channel, all ranks
//   mesh.all_gather(GlooChannel::kScheduler, rank, frame, frames);   // on rank's thread
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

namespace gloo {
class Context;
}

namespace hcsim {

// kSync: the acknowledgement design's sync thread (its completion group, #27010).
enum class GlooChannel : std::uint8_t { kScheduler, kPrefetch, kData, kSync };
inline constexpr int kGlooChannelCount = 4;
enum class GlooReduce : std::uint8_t { kMin, kMax };

// A collective that failed in the transport: aborted, closed, timed out, or refused by Gloo.
struct CollectiveFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class GlooMesh {
 public:
  // Connects every channel of `ranks` ranks on 127.0.0.1 (in parallel: a full mesh needs all
  // ranks at once). `transport_timeout` bounds a Gloo wait; the watchdog acts long before.
  explicit GlooMesh(int ranks, std::chrono::milliseconds transport_timeout = std::chrono::minutes(30));
  ~GlooMesh();
  GlooMesh(const GlooMesh&) = delete;
  GlooMesh& operator=(const GlooMesh&) = delete;

  int ranks() const { return ranks_; }

  // Each call is made by `rank`'s thread; one thread per (channel, rank) at a time. All throw
  // CollectiveFailed when the transport fails or the mesh was aborted.
  // `out` receives every rank's `in`, in rank order: out.size() == in.size() * ranks().
  void all_gather(GlooChannel ch, int rank, std::span<const std::int64_t> in, std::span<std::int64_t> out);
  void all_reduce(GlooChannel ch, int rank, std::span<std::int64_t> values, GlooReduce op);
  void all_reduce_sum(GlooChannel ch, int rank, std::span<float> values);
  void broadcast(GlooChannel ch, int rank, std::span<std::int64_t> values);  // from rank 0

  // Closes every connection; safe from any thread, idempotent.
  void abort();

 private:
  struct Endpoint;
  Endpoint& endpoint(GlooChannel ch, int rank);

  int ranks_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;  // by channel, then rank
  std::atomic<bool> aborted_{false};
};

}  // namespace hcsim
