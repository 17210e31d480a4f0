// GlooMesh: the CPU process groups of a model over Gloo, TCP on loopback, as upstream runs its CPU
// groups on gloo. Ranks are threads of one process; each (group, member) has its own Gloo context,
// so the scheduler's, the prefetch thread's, the sync thread's, the forward's and each pipeline
// channel's messages never share a communicator. Collectives are sends and receives on Gloo's
// pairs, waited for one at a time, so that abort() can end any wait: a rank blocked in a
// collective gets an error, one blocked in a channel's receive or send returns.
//
// Gloo's TCP transport cannot carry members that disagree on a message's size: its event-loop
// thread fails an enforce and terminates the process. Callers therefore agree on a fixed-size
// descriptor with all_gather first (the thread world does), and send payloads only when agreed; a
// point-to-point message is always one frame of the size its group was made with.
//
//   GlooMesh mesh({{"tp_cpu_group", {0, 1}}, {"pp_proxy[0] pp0->pp1", {0, 2}, 8}});
//   mesh.all_gather(0, rank, frame, frames);             // on rank's thread: group 0
//   auto sent = mesh.send(1, 0, frame, seq);             // rank 0 to rank 2; returns at once
//   mesh.recv(1, 2, frame, seq);                         // rank 2, the seq-th frame; false: aborted
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace gloo::transport {
class UnboundBuffer;
}

namespace hcsim {

enum class GlooReduce : std::uint8_t { kMin, kMax };

// A collective that failed in the transport: aborted, closed, timed out, or refused by Gloo.
struct CollectiveFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One communicator of the mesh. A point-to-point channel has two members, the sender first, and
// carries frames of `frame_words` words; a collective group has frame_words 0.
struct MeshGroup {
  std::string name;          // for errors: "tp_cpu_group@pp1"
  std::vector<int> members;  // global ranks, each once
  std::size_t frame_words = 0;
};
// `names.size()` groups, each over ranks 0 .. ranks - 1 (tests, benchmarks).
std::vector<MeshGroup> groups_over_all_ranks(int ranks, std::span<const char* const> names);

class GlooMesh {
 public:
  // Connects every group on 127.0.0.1 (in parallel: a full mesh needs all members at once).
  // `transport_timeout` bounds a Gloo wait; the watchdog acts long before.
  explicit GlooMesh(std::vector<MeshGroup> groups, std::chrono::milliseconds transport_timeout = std::chrono::minutes(30));
  ~GlooMesh();
  GlooMesh(const GlooMesh&) = delete;
  GlooMesh& operator=(const GlooMesh&) = delete;

  std::size_t group_count() const { return groups_.size(); }
  const MeshGroup& group(std::size_t g) const { return groups_.at(g); }

  // Each call is made by the thread of `rank`, a member of group `g`; one thread per (group,
  // rank) at a time. All throw CollectiveFailed when the transport fails or the mesh was aborted.
  // `out` receives every member's `in`, in member order: out.size() == in.size() * members.
  void all_gather(std::size_t g, int rank, std::span<const std::int64_t> in, std::span<std::int64_t> out);
  void all_reduce(std::size_t g, int rank, std::span<std::int64_t> values, GlooReduce op);
  void all_reduce_sum(std::size_t g, int rank, std::span<float> values);
  void broadcast(std::size_t g, int rank, std::span<std::int64_t> values);  // from the first member

  // Point to point on a channel: the sender's frame with slot n matches the receiver's receive
  // with slot n. send() copies the frame and returns (an isend); wait_send() blocks until the
  // receiver took it. recv() blocks until the frame arrives. Both waits return false when the mesh
  // was aborted instead.
  struct Endpoint;
  struct Send {
    std::vector<std::int64_t> frame;                           // the copy the buffer sends from
    std::shared_ptr<gloo::transport::UnboundBuffer> buffer;    // shared: its deleter is gloo's, here
    Endpoint* endpoint = nullptr;
  };
  std::unique_ptr<Send> send(std::size_t g, int rank, std::span<const std::int64_t> frame, std::uint64_t slot);
  bool wait_send(Send& s);
  bool recv(std::size_t g, int rank, std::span<std::int64_t> frame, std::uint64_t slot);

  // Ends every wait, now and later, and closes every connection; safe from any thread, idempotent.
  void abort();

 private:
  Endpoint& endpoint(std::size_t g, int rank);
  int member_index(std::size_t g, int rank) const;
  void gather_bytes(std::size_t g, int rank, const std::byte* in, std::size_t bytes, std::byte* out);
  bool wait_point_to_point(Endpoint& e, gloo::transport::UnboundBuffer& b, bool receive);
  void end_waits();

  std::vector<MeshGroup> groups_;
  std::vector<std::size_t> first_endpoint_;            // by group: its members' endpoints follow
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::atomic<bool> aborted_{false};
  std::mutex wait_mu_;  // the endpoints' waiting records
};

}  // namespace hcsim
