#include "backend/gloo_mesh.h"

#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include "policy/assert.h"

namespace hcsim {

namespace {

const char* channel_name(GlooChannel ch) {
  switch (ch) {
    case GlooChannel::kScheduler: return "tp_cpu_group";
    case GlooChannel::kPrefetch: return "prefetch_group";
    case GlooChannel::kData: return "data_group";
    case GlooChannel::kSync: return "completion_group";
  }
  return "?";
}

}  // namespace

struct GlooMesh::Endpoint {
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::uint32_t next_tag = 0;  // per call: a late message of an aborted call never matches the next
};

GlooMesh::GlooMesh(int ranks, std::chrono::milliseconds transport_timeout) : ranks_(ranks) {
  HCSIM_ASSERT(ranks >= 1 && ranks <= 64);
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";  // loopback only
  auto device = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::HashStore store;
  endpoints_.resize(static_cast<std::size_t>(kGlooChannelCount * ranks));
  for (auto& e : endpoints_) e = std::make_unique<Endpoint>();
  std::mutex error_mu;
  std::string error;
  std::vector<std::thread> connectors;
  for (int ch = 0; ch < kGlooChannelCount; ++ch) {
    for (int r = 0; r < ranks; ++r) {
      connectors.emplace_back([&, ch, r] {
        try {
          gloo::rendezvous::PrefixStore prefixed(channel_name(static_cast<GlooChannel>(ch)), store);
          auto ctx = std::make_shared<gloo::rendezvous::Context>(r, ranks);
          ctx->setTimeout(transport_timeout);
          ctx->connectFullMesh(prefixed, device);
          endpoint(static_cast<GlooChannel>(ch), r).context = std::move(ctx);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (error.empty()) error = std::string(channel_name(static_cast<GlooChannel>(ch))) + " rank " + std::to_string(r) + ": " + e.what();
        }
      });
    }
  }
  for (auto& t : connectors) t.join();
  if (!error.empty()) throw CollectiveFailed("gloo: cannot connect on 127.0.0.1: " + error);
}

GlooMesh::~GlooMesh() = default;

GlooMesh::Endpoint& GlooMesh::endpoint(GlooChannel ch, int rank) {
  HCSIM_ASSERT(rank >= 0 && rank < ranks_);
  return *endpoints_[static_cast<std::size_t>(static_cast<int>(ch) * ranks_ + rank)];
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

namespace {

using ReduceFn = void (*)(void*, const void*, const void*, std::size_t);

template <typename T>
void all_reduce_in_place(const std::shared_ptr<gloo::rendezvous::Context>& ctx, std::uint32_t tag, std::span<T> values, ReduceFn fn) {
  gloo::AllreduceOptions opts(ctx);
  opts.setInput(values.data(), values.size());
  opts.setOutput(values.data(), values.size());
  opts.setReduceFunction(fn);
  opts.setTag(tag);
  gloo::allreduce(opts);
}

}  // namespace

void GlooMesh::all_reduce(GlooChannel ch, int rank, std::span<std::int64_t> values, GlooReduce op) {
  Endpoint& e = endpoint(ch, rank);
  const ReduceFn fn = op == GlooReduce::kMin ? static_cast<ReduceFn>(&gloo::min<std::int64_t>) : static_cast<ReduceFn>(&gloo::max<std::int64_t>);
  guarded("gloo all_reduce", aborted_, [&] { all_reduce_in_place(e.context, e.next_tag++, values, fn); });
}

void GlooMesh::all_reduce_sum(GlooChannel ch, int rank, std::span<float> values) {
  Endpoint& e = endpoint(ch, rank);
  guarded("gloo all_reduce", aborted_, [&] { all_reduce_in_place(e.context, e.next_tag++, values, static_cast<ReduceFn>(&gloo::sum<float>)); });
}

void GlooMesh::broadcast(GlooChannel ch, int rank, std::span<std::int64_t> values) {
  Endpoint& e = endpoint(ch, rank);
  guarded("gloo broadcast", aborted_, [&] {
    gloo::BroadcastOptions opts(e.context);
    opts.setOutput(values.data(), values.size());
    opts.setRoot(0);
    opts.setTag(e.next_tag++);
    gloo::broadcast(opts);
  });
}

void GlooMesh::all_gather(GlooChannel ch, int rank, std::span<const std::int64_t> in, std::span<std::int64_t> out) {
  HCSIM_ASSERT(out.size() == in.size() * static_cast<std::size_t>(ranks_));
  Endpoint& e = endpoint(ch, rank);
  guarded("gloo all_gather", aborted_, [&] {
    gloo::AllgatherOptions opts(e.context);
    opts.setInput(const_cast<std::int64_t*>(in.data()), in.size());  // Gloo's signature; it only reads
    opts.setOutput(out.data(), out.size());
    opts.setTag(e.next_tag++);
    gloo::allgather(opts);
  });
}

void GlooMesh::abort() {
  if (aborted_.exchange(true)) return;
  for (auto& e : endpoints_) {
    if (e->context) e->context->closeConnections();
  }
}

}  // namespace hcsim
