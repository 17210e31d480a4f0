#include "backend/gloo_mesh.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include "policy/assert.h"

namespace hcsim {

std::vector<MeshGroup> groups_over_all_ranks(int ranks, std::span<const char* const> names) {
  std::vector<int> all(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) all[static_cast<std::size_t>(r)] = r;
  std::vector<MeshGroup> out;
  for (const char* n : names) out.push_back({n, all, 0});
  return out;
}

struct GlooMesh::Endpoint {
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::uint32_t next_tag = 0;  // per call: a late message of an aborted call never matches the next
  // A wait in progress, for abort(); under the mesh's wait lock.
  gloo::transport::UnboundBuffer* waiting = nullptr;
  bool waiting_to_receive = false;
};

GlooMesh::GlooMesh(std::vector<MeshGroup> groups, std::chrono::milliseconds transport_timeout) : groups_(std::move(groups)) {
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";  // loopback only
  auto device = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::HashStore store;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const MeshGroup& group = groups_[g];
    HCSIM_ASSERT(!group.members.empty() && group.members.size() <= 64);
    HCSIM_ASSERT(group.frame_words == 0 || group.members.size() == 2);      // a channel links two ranks
    for (std::size_t i = 0; i < group.members.size(); ++i) {
      HCSIM_ASSERT(group.members[i] >= 0 && std::count(group.members.begin(), group.members.end(), group.members[i]) == 1);
    }
    first_endpoint_.push_back(endpoints_.size());
    for (std::size_t i = 0; i < group.members.size(); ++i) endpoints_.push_back(std::make_unique<Endpoint>());
  }
  std::mutex error_mu;
  std::string error;
  std::vector<std::thread> connectors;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const int size = static_cast<int>(groups_[g].members.size());
    for (int i = 0; i < size; ++i) {
      connectors.emplace_back([&, g, i, size] {
        try {
          // The group's index in the prefix: two groups of one name never meet.
          gloo::rendezvous::PrefixStore prefixed(std::to_string(g) + "/" + groups_[g].name, store);
          auto ctx = std::make_shared<gloo::rendezvous::Context>(i, size);
          ctx->setTimeout(transport_timeout);
          ctx->connectFullMesh(prefixed, device);
          endpoints_[first_endpoint_[g] + static_cast<std::size_t>(i)]->context = std::move(ctx);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (error.empty()) error = groups_[g].name + " rank " + std::to_string(groups_[g].members[static_cast<std::size_t>(i)]) + ": " + e.what();
        }
      });
    }
  }
  for (auto& t : connectors) t.join();
  if (!error.empty()) throw CollectiveFailed("gloo: cannot connect on 127.0.0.1: " + error);
}

GlooMesh::~GlooMesh() = default;

int GlooMesh::member_index(std::size_t g, int rank) const {
  const std::vector<int>& m = groups_.at(g).members;
  const auto it = std::find(m.begin(), m.end(), rank);
  HCSIM_ASSERT(it != m.end());  // only a member calls
  return static_cast<int>(it - m.begin());
}

GlooMesh::Endpoint& GlooMesh::endpoint(std::size_t g, int rank) {
  return *endpoints_[first_endpoint_.at(g) + static_cast<std::size_t>(member_index(g, rank))];
}

namespace {

template <typename F>
void guarded(const char* what, const std::atomic<bool>& aborted, F&& f) {
  if (aborted.load()) throw CollectiveFailed(std::string(what) + ": aborted");
  try {
    f();
  } catch (const std::exception& e) {
    throw CollectiveFailed(std::string(what) + (aborted.load() ? ": aborted: " : ": ") + e.what());
  }
}

}  // namespace

// Every member's `bytes` bytes from `in`, in member order, into `out`: each member sends its block
// to every other and receives theirs on Gloo's pairs, one message per pair and call (the slot is
// the call's tag, which every member counts alike). Each wait can be ended by abort(), which
// Gloo's own collectives, waiting inside the library, cannot.
void GlooMesh::gather_bytes(std::size_t g, int rank, const std::byte* in, std::size_t bytes, std::byte* out) {
  Endpoint& e = endpoint(g, rank);
  const int me = member_index(g, rank);
  const int n = static_cast<int>(groups_[g].members.size());
  const std::uint64_t slot = e.next_tag++;
  std::copy(in, in + bytes, out + static_cast<std::size_t>(me) * bytes);
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> sends;
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> recvs;
  guarded("gloo all_gather", aborted_, [&] {
    for (int peer = 0; peer < n; ++peer) {
      if (peer == me) continue;
      recvs.push_back(e.context->createUnboundBuffer(out + static_cast<std::size_t>(peer) * bytes, bytes));
      recvs.back()->recv(peer, slot);
      // Gloo reads the buffer it sends from; `in` is not written while the call lasts.
      sends.push_back(e.context->createUnboundBuffer(const_cast<std::byte*>(in), bytes));
      sends.back()->send(peer, slot);
    }
  });
  for (auto& r : recvs) {
    if (!wait_point_to_point(e, *r, true)) throw CollectiveFailed("gloo all_gather on " + groups_[g].name + ": aborted");
  }
  for (auto& s : sends) {
    if (!wait_point_to_point(e, *s, false)) throw CollectiveFailed("gloo all_gather on " + groups_[g].name + ": aborted");
  }
}

void GlooMesh::all_gather(std::size_t g, int rank, std::span<const std::int64_t> in, std::span<std::int64_t> out) {
  HCSIM_ASSERT(out.size() == in.size() * groups_.at(g).members.size());
  gather_bytes(g, rank, reinterpret_cast<const std::byte*>(in.data()), in.size_bytes(), reinterpret_cast<std::byte*>(out.data()));
}

void GlooMesh::all_reduce(std::size_t g, int rank, std::span<std::int64_t> values, GlooReduce op) {
  std::vector<std::int64_t> all(values.size() * groups_.at(g).members.size());
  all_gather(g, rank, values, all);
  for (std::size_t i = 0; i < values.size(); ++i) {
    for (std::size_t m = 0; m < all.size() / std::max<std::size_t>(1, values.size()); ++m) {
      const std::int64_t v = all[m * values.size() + i];
      values[i] = op == GlooReduce::kMin ? std::min(values[i], v) : std::max(values[i], v);
    }
  }
}

void GlooMesh::all_reduce_sum(std::size_t g, int rank, std::span<float> values) {
  const std::size_t n = groups_.at(g).members.size();
  std::vector<float> all(values.size() * n);
  gather_bytes(g, rank, reinterpret_cast<const std::byte*>(values.data()), values.size_bytes(), reinterpret_cast<std::byte*>(all.data()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    float sum = 0.0f;
    for (std::size_t m = 0; m < n; ++m) sum += all[m * values.size() + i];  // in member order: every member sums alike
    values[i] = sum;
  }
}

void GlooMesh::broadcast(std::size_t g, int rank, std::span<std::int64_t> values) {
  Endpoint& e = endpoint(g, rank);
  const int me = member_index(g, rank);
  const int n = static_cast<int>(groups_[g].members.size());
  const std::uint64_t slot = e.next_tag++;
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> ops;
  guarded("gloo broadcast", aborted_, [&] {
    for (int peer = me == 0 ? 1 : 0; peer < (me == 0 ? n : 1); ++peer) {
      ops.push_back(e.context->createUnboundBuffer(values.data(), values.size_bytes()));
      if (me == 0) {
        ops.back()->send(peer, slot);
      } else {
        ops.back()->recv(0, slot);
      }
    }
  });
  for (auto& op : ops) {
    if (!wait_point_to_point(e, *op, me != 0)) throw CollectiveFailed("gloo broadcast on " + groups_[g].name + ": aborted");
  }
}

namespace {
// Waits for a send or a receive; false when abort() ended it.
bool wait_for(gloo::transport::UnboundBuffer& b, bool receive) { return receive ? b.waitRecv() : b.waitSend(); }
}  // namespace

std::unique_ptr<GlooMesh::Send> GlooMesh::send(std::size_t g, int rank, std::span<const std::int64_t> frame, std::uint64_t slot) {
  const MeshGroup& group = groups_.at(g);
  HCSIM_ASSERT(group.frame_words == frame.size() && rank == group.members.front());  // the sender, one frame
  auto s = std::make_unique<Send>();
  s->frame.assign(frame.begin(), frame.end());
  s->endpoint = &endpoint(g, rank);
  guarded("gloo send", aborted_, [&] {
    s->buffer = s->endpoint->context->createUnboundBuffer(s->frame.data(), s->frame.size() * sizeof(std::int64_t));
    s->buffer->send(1, slot);
  });
  return s;
}

bool GlooMesh::wait_send(Send& s) { return wait_point_to_point(*s.endpoint, *s.buffer, false); }

bool GlooMesh::recv(std::size_t g, int rank, std::span<std::int64_t> frame, std::uint64_t slot) {
  const MeshGroup& group = groups_.at(g);
  HCSIM_ASSERT(group.frame_words == frame.size() && rank == group.members.back());  // the receiver, one frame
  Endpoint& e = endpoint(g, rank);
  if (aborted_.load()) return false;
  std::unique_ptr<gloo::transport::UnboundBuffer> buffer;
  guarded("gloo recv", aborted_, [&] {
    buffer = e.context->createUnboundBuffer(frame.data(), frame.size() * sizeof(std::int64_t));
    buffer->recv(0, slot);
  });
  return wait_point_to_point(e, *buffer, true);
}

bool GlooMesh::wait_point_to_point(Endpoint& e, gloo::transport::UnboundBuffer& b, bool receive) {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    if (aborted_.load()) return false;
    e.waiting = &b;
    e.waiting_to_receive = receive;
  }
  bool done = false;
  try {
    done = wait_for(b, receive);
  } catch (const std::exception& ex) {
    std::lock_guard<std::mutex> lock(wait_mu_);
    e.waiting = nullptr;
    if (aborted_.load()) return false;
    throw CollectiveFailed(std::string(receive ? "gloo recv: " : "gloo send: ") + ex.what());
  }
  std::lock_guard<std::mutex> lock(wait_mu_);
  e.waiting = nullptr;
  return done && !aborted_.load();
}

void GlooMesh::end_waits() {
  std::lock_guard<std::mutex> lock(wait_mu_);
  for (auto& e : endpoints_) {
    if (e->waiting == nullptr) continue;
    if (e->waiting_to_receive) {
      e->waiting->abortWaitRecv();
    } else {
      e->waiting->abortWaitSend();
    }
  }
}

void GlooMesh::abort() {
  if (aborted_.exchange(true)) return;
  // Closed first, so no message lands in a buffer its woken waiter is about to free; a closed
  // connection does not wake a wait, so then every wait is ended.
  for (auto& e : endpoints_) {
    if (e->context) e->context->closeConnections();
  }
  end_waits();
}

}  // namespace hcsim
