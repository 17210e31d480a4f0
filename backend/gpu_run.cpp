#include "backend/gpu_run.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string_view>

#include "backend/file_l3.h"
#ifdef HCSIM_HAVE_NCCL
#include "backend/nccl_data_group.h"
#endif
#include "policy/assert.h"
#include "policy/frame_pool.h"
#include "run/l3_seed.h"
#include "run/wait_for_graph.h"

namespace hcsim {

namespace {

std::filesystem::path fresh_l3_dir() {
  static std::atomic<int> runs{0};
  return std::filesystem::temp_directory_path() /
         ("hcsim-l3-" + std::to_string(::getpid()) + "-" + std::to_string(runs.fetch_add(1)));
}

// The scenario's L3 contents as files: the pages and sidecar objects every rank's model holds.
void populate(FileL3& l3, const Scenario& scenario) {
  std::vector<std::byte> page(static_cast<std::size_t>(l3.kv_page_bytes()));
  std::vector<std::byte> state(static_cast<std::size_t>(l3.sidecar_bytes()));
  auto check = [&](bool ok) {
    if (!ok) throw std::runtime_error("cannot write L3 file under " + l3.root().string());
  };
  seed_l3(scenario, [&](const L3Object& o) {
    switch (o.kind) {
      case L3Object::Kind::kKvPage:
        FileL3::fill(o.key, page);
        check(l3.put_kv(o.rank, o.key, page.data()));
        break;
      case L3Object::Kind::kStalePage: l3.put_stale_kv(o.rank, o.key); break;
      case L3Object::Kind::kObject:
        FileL3::fill(o.key, state);
        check(l3.put_sidecar(o.rank, o.key, state.data()));
        break;
      case L3Object::Kind::kStaleObject: l3.put_stale_sidecar(o.rank, o.key); break;
    }
  });
}

PoolGeometry geometry_of(const PolicyConfig& policy, const GpuRunOptions& gpu) {
  PoolGeometry g;
  g.ranks = static_cast<int>(policy.ranks.size());
  g.ranks_per_gpu = gpu.ranks_per_gpu;
  for (const RankResources& r : policy.ranks) {
    g.kv_slots = std::max(g.kv_slots, r.host_kv_pages);
    g.sidecar_slots = std::max(g.sidecar_slots, r.host_sidecar_slots);
  }
  g.kv_page_bytes = gpu.page_bytes;
  g.sidecar_bytes = gpu.sidecar_bytes;
  // Load-back goes in chunks of the device pool: one batch's worth of pages is plenty.
  g.device_pages = std::max<std::int32_t>(1, static_cast<std::int32_t>(policy.max_prefill_tokens / policy.page_size_tokens));
  g.activation_floats = policy.max_prefill_tokens * 2;
  return g;
}

// By stage; empty: the thread world's Gloo groups.
std::vector<std::unique_ptr<DataGroup>> make_data_groups(const Device& device, const PoolGeometry& geometry, const Topology& topology,
                                                         const GpuRunOptions& gpu) {
  const bool nccl_possible = nccl_built() && device.kind() == DeviceKind::kCuda && geometry.ranks_per_gpu == 1;
  if (gpu.data == DataTransport::kNccl && !nccl_possible) {
    throw std::invalid_argument(!nccl_built()                           ? "NCCL: this hcsim was built without NCCL"
                                : device.kind() != DeviceKind::kCuda    ? "NCCL: needs the CUDA device, not host memory"
                                                                        : "NCCL: needs one rank per GPU (--ranks-per-gpu 1)");
  }
  std::vector<std::unique_ptr<DataGroup>> out;
  if (topology.tp == 1) return out;
  if (gpu.custom_data_group) {
    for (int stage = 0; stage < topology.pp; ++stage) out.push_back(gpu.custom_data_group(topology.tp));
    return out;
  }
  if (gpu.data == DataTransport::kGloo || !nccl_possible) return out;
#ifdef HCSIM_HAVE_NCCL
  // At least a frame's worth of floats: the thread world's warm-up sums that many.
  const auto floats_max = std::max<std::size_t>(kCollectiveFrameWords, static_cast<std::size_t>(geometry.activation_floats));
  for (int stage = 0; stage < topology.pp; ++stage) {
    std::vector<int> gpu_of_rank;
    for (int t = 0; t < topology.tp; ++t) gpu_of_rank.push_back(device.gpu_of(stage * topology.tp + t));
    out.push_back(make_nccl_data_group(gpu_of_rank, kCollectiveFrameWords, floats_max));
  }
#endif
  return out;
}

}  // namespace

bool nccl_built() {
#ifdef HCSIM_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::string nccl_environment_problem() {
  const char* nvls = std::getenv("NCCL_NVLS_ENABLE");
  if (nvls == nullptr || std::string_view(nvls) == "0") return {};
  return std::string("NCCL_NVLS_ENABLE is '") + nvls + "': NVLink multicast must stay off; unset it or set it to 0";
}

GpuRunResult run_on_gpu(const Scenario& scenario, const RunOptions& options, const GpuRunOptions& gpu) {
  if (scenario.world.attn_dp > 1 || scenario.world.attn_cp > 1) {
    throw ScenarioError(scenario.path, "/attention",
                        "the GPU world runs every group over a stage's TP ranks; DP attention and attention CP run in the simulator only (hcsim run)");
  }
  RunSetup setup = prepare_run(scenario, options);
  GpuRunResult out;
  RunResult& result = out.run;
  result.policy = setup.policy;
  result.seed = setup.seed;
  result.arrivals = setup.arrivals;
  result.aborts = setup.aborts;

  const PoolGeometry geometry = geometry_of(result.policy, gpu);
  auto device = make_device(gpu.device, geometry);
  out.device = device->describe();
  std::vector<std::unique_ptr<DataGroup>> data = make_data_groups(*device, geometry, scenario.world.topology(), gpu);
  const bool own_dir = gpu.l3_dir.empty();
  FileL3 l3(own_dir ? fresh_l3_dir() : gpu.l3_dir, scenario.world.ranks, gpu.page_bytes, gpu.sidecar_bytes, own_dir);
  populate(l3, scenario);

  ThreadWorldConfig cfg;
  cfg.world = scenario.world;
  cfg.watchdog_ns = gpu.watchdog_ns;
  auto world = std::make_unique<ThreadWorld>(cfg, *setup.storage, l3, *device, std::move(data), std::move(setup.arrivals),
                                             scenario.workload.size(), std::move(setup.aborts));
  auto ranks = spawn_ranks(*world, result.policy, scenario.workload);
  result.verdict = world->run();
  out.stats = world->stats();
  const FlightRecorder::Snapshot flight = world->recorder().snapshot();
  out.flight = flight.recent;
  result.collectives_completed = flight.completed;
  out.mean_collective_round_ns = flight.mean_round_ns;
  result.end_ns = world->now_ns();
  result.waited = WaitedCollectives(result.verdict, flight);
  result.log = world->take_log();
  // Folded from the log: the actors' threads may outlive the run (see below), so no tap of this
  // frame may stay in the world. A GPU run of a scenario stays far below the log's limit.
  InvariantEvents events;
  for (const TraceEvent& e : result.log.events()) events.on_event(e);
  if (out.stats.actors_abandoned > 0) {
    // Threads still run actor code that uses the ranks, the world and the device: they must
    // outlive this call, and the caller must end the process (hcsim does, with _exit).
    (void)world.release();
    (void)device.release();
    const auto* kept = new std::vector<std::unique_ptr<Rank>>(std::move(ranks));
    judge_run(scenario, *kept, events, result);
    return out;
  }
  world.reset();  // joins the actors' threads; the coroutine frames go with it
  release_thread_frames();  // those frames the actor threads made now sit on this thread's lists
  judge_run(scenario, ranks, events, result);
  for (const auto& rank : ranks) out.leaked_slots_at_exit += rank->leaked_slot_count(result.end_ns);
  return out;
}

}  // namespace hcsim
