// A rank's exchanges with its counterparts on the neighbouring pipeline stages: the request lists
// passed down the stages, the forward's proxy tensors, and the chained ack counts of #27285
// (scheduler_pp_mixin.py@17313cf4b:69-175, HR@42fe02528:224-273). Every exchange is point to point,
// each rank with the rank of its TP position on the stage before or after it.
#include <algorithm>
#include <string>

#include "policy/assert.h"
#include "policy/rank.h"

namespace hcsim {

// A later stage receives the request list from the stage before, at its first TP rank, as
// point_to_point_pyobj sends it: the length, then the items (request_receiver.py@17313cf4b:137-148).
Task<> Rank::recv_requests_from_previous_stage(Runtime& rt, std::array<std::int64_t, 2>& counts, std::vector<std::int64_t>& ids) {
  HCSIM_ASSERT(!topology_.first_stage(rank_) && tp_rank() == 0);
  const Group channel = topology_.channel_from_previous(GroupKind::kPpRequests, rank_);
  co_await rt.recv(channel, counts);
  HCSIM_ASSERT(counts[0] >= 0 && counts[1] >= 0 && counts[0] + counts[1] <= static_cast<std::int64_t>(2 * kArrivalsPerPassMax));
  ids.resize(static_cast<std::size_t>(counts[0] + counts[1]));
  if (!ids.empty()) co_await rt.recv(channel, ids);
}

// _pp_send_pyobj_to_next_stage, after _pp_commit_comm_work waited for the previous iteration's send
// (PPM@17313cf4b:94-101). Every iteration sends, an empty list too: the next stage's receive blocks.
Task<> Rank::send_requests_to_next_stage(Runtime& rt, std::array<std::int64_t, 2> counts, std::vector<std::int64_t> ids) {
  HCSIM_ASSERT(!topology_.last_stage(rank_) && tp_rank() == 0);
  const Group channel = topology_.channel_to_next(GroupKind::kPpRequests, rank_);
  co_await rt.wait_sends(channel);
  co_await rt.send(channel, counts);
  if (!ids.empty()) co_await rt.send(channel, ids);
}

// A stage that built a batch receives the previous stage's proxy tensors before its forward; it
// reshapes them with its own batch's token count, so a stage that admitted other requests than its
// neighbour cannot take them (#22607: "shape '[3013, -1, 128]' is invalid"). Then the previous
// iteration's proxy send is committed, batch or not, and after the forward every stage but the last
// sends its batch's proxies on (PPM@17313cf4b:118-169).
Task<> Rank::forward_in_pipeline(Runtime& rt, std::int64_t batch_tokens, std::span<const std::int32_t> load_back_slots) {
  HCSIM_ASSERT(pipeline() && !topology_.dp_attention());
  std::array<std::int64_t, 1> proxy{batch_tokens};
  if (batch_tokens >= 0 && !topology_.first_stage(rank_)) co_await rt.recv(topology_.channel_from_previous(GroupKind::kPpProxy, rank_), proxy);
  if (!topology_.last_stage(rank_)) co_await rt.wait_sends(topology_.channel_to_next(GroupKind::kPpProxy, rank_));
  if (batch_tokens < 0) co_return;
  std::array<std::int64_t, 1> forward{batch_tokens};
  co_await rt.forward(forward, load_back_slots, Group::kTp);
  if (!topology_.last_stage(rank_)) co_await rt.send(topology_.channel_to_next(GroupKind::kPpProxy, rank_), proxy);
}

bool Rank::chains_ack_counts() const { return pipeline() && cfg_.has(Fix::kPpAckChain); }

// _all_reduce (#27285): PP0 MIN-agrees the counts over its cache groups, then _pp_sync: a later
// stage receives them from the stage before, and every stage but the last sends them on. A later
// stage's own counts are overwritten. Without the chain each stage agrees within itself.
Task<> Rank::agree_ack_count_down_the_stages(Runtime& rt, std::span<std::int64_t, 1> acks, AckQueue queue) {
  HCSIM_ASSERT(chains_ack_counts());
  co_await agree_from_first_stage(rt, acks, CollectiveOp::kAllReduceMin, true);
  if (acks[0] == 0) co_return;
  // Each popped ack's finish_event.synchronize(): copies need not end in queue order.
  const auto n = static_cast<std::size_t>(acks[0]);
  TimeNs done_ns = 0;
  if (queue == AckQueue::kWrite) {
    const std::size_t held = ack_write_queue_.size();
    for (std::size_t i = 0; i < std::min(n, held); ++i) done_ns = std::max(done_ns, ongoing_write_through_.at(ack_write_queue_[i]).copy_done_ns);
    co_await await_acks_held(rt, acks[0], held, done_ns, "ack_write_queue");
  } else {
    const std::size_t held = ack_load_queue_.size();
    for (std::size_t i = 0; i < std::min(n, held); ++i) done_ns = std::max(done_ns, ack_load_queue_[i].done_ns);
    co_await await_acks_held(rt, acks[0], held, done_ns, "ack_load_queue");
  }
}

Task<> Rank::agree_queue_counts_down_the_stages(Runtime& rt, StorageQueueCounts& q) {
  HCSIM_ASSERT(chains_queue_counts());
  co_await agree_from_first_stage(rt, q.payload(), CollectiveOp::kAllReduceMin, true);
  co_await await_queues_hold(rt, q);
}

Task<> Rank::agree_from_first_stage(Runtime& rt, std::span<std::int64_t> values, CollectiveOp op, bool chained) {
  HCSIM_ASSERT(!chained || pipeline());
  if (!chained || topology_.first_stage(rank_)) {
    for (const Group g : cache_groups_) co_await rt.collective(g, op, values);
  }
  if (!chained) co_return;
  if (!topology_.first_stage(rank_)) co_await rt.recv(topology_.channel_from_previous(GroupKind::kPpSync, rank_), values);
  if (!topology_.last_stage(rank_)) co_await rt.send(topology_.channel_to_next(GroupKind::kPpSync, rank_), values);
}

// _drain_async_work: the next tick first waits until the stage after has taken every count sent.
Task<> Rank::drain_ack_count_sends(Runtime& rt) {
  HCSIM_ASSERT(chains_ack_counts() || chains_queue_counts());
  if (topology_.last_stage(rank_)) co_return;
  co_await rt.wait_sends(topology_.channel_to_next(GroupKind::kPpSync, rank_));
}

// A later stage takes PP0's count from its own queue: pop(0) of an ack it does not hold raises
// (IndexError), and finish_event.synchronize() waits for a copy still running here.
Task<> Rank::await_acks_held(Runtime& rt, std::int64_t acks, std::size_t held, TimeNs last_copy_done_ns, const char* queue) {
  if (acks > static_cast<std::int64_t>(held)) {
    throw UpstreamRaised(std::string("IndexError: pop from empty list: ") + queue + " holds " + std::to_string(held) + " of the " +
                             std::to_string(acks) + " acks PP0 counted");
  }
  if (last_copy_done_ns > rt.now_ns()) co_await rt.sleep_ns(last_copy_done_ns - rt.now_ns());
}

}  // namespace hcsim
