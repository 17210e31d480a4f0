#include "policy/host_slot_pool.h"

#include <algorithm>

#include "policy/assert.h"

namespace hcsim {

std::string_view slot_owner_name(SlotOwner o) {
  switch (o) {
    case SlotOwner::kFree: return "free";
    case SlotOwner::kOperation: return "operation";
    case SlotOwner::kWriting: return "writing";
    case SlotOwner::kTree: return "tree";
    case SlotOwner::kReleaseQueued: return "release_queued";
  }
  HCSIM_ASSERT(false);
  return {};
}

HostSlotPool::HostSlotPool(SlotPoolKind kind, std::int32_t capacity) : kind_(kind), capacity_(capacity) { HCSIM_ASSERT(capacity > 0); }

std::int32_t HostSlotPool::take_free() {
  if (free_stack_.empty()) {
    HCSIM_ASSERT(fresh_ < capacity_);
    return fresh_++;
  }
  const std::int32_t s = free_stack_.back();
  free_stack_.pop_back();
  return s;
}

void HostSlotPool::grow_past(std::size_t slot) {
  const std::size_t grown = std::min(static_cast<std::size_t>(capacity_), std::max({slot + 1, 2 * slots_.size(), kSlotsFirstGrowth}));
  slots_.resize(grown);
  work_index_.resize(grown, -1);
  free_stack_.reserve(grown);
  owned_by_work_.reserve(grown);
}

void HostSlotPool::occupy_resident(std::int32_t count) {
  HCSIM_ASSERT(count >= 0 && count <= available());
  for (std::int32_t i = 0; i < count; ++i) slot_at(take_free()) = {SlotOwner::kTree, -1, 0};
}

SlotOwner HostSlotPool::owner(std::int32_t slot) const {
  HCSIM_ASSERT(slot >= 0 && slot < capacity());
  return static_cast<std::size_t>(slot) < slots_.size() ? slots_[static_cast<std::size_t>(slot)].owner : SlotOwner::kFree;
}

bool HostSlotPool::alloc(TimeNs now_ns, std::int32_t count, std::int32_t op_id, std::vector<std::int32_t>& out) {
  HCSIM_ASSERT(count >= 0);
  if (count > available()) return false;
  out.reserve(out.size() + static_cast<std::size_t>(count));
  for (std::int32_t i = 0; i < count; ++i) {
    const std::int32_t s = take_free();
    Slot& slot = slot_at(s);
    HCSIM_ASSERT(slot.owner == SlotOwner::kFree);
    slot = {SlotOwner::kOperation, op_id, now_ns};
    set_owned_by_work(s, true);
    out.push_back(s);
  }
  return true;
}

void HostSlotPool::violation(Runtime& rt, std::int32_t slot, RequestId request) {
  ++violations_;
  rt.emit(request, SlotViolationFields{.slot = slot,
                                       .pool = static_cast<std::int64_t>(kind_),
                                       .owner = static_cast<std::int64_t>(owner(slot))});
}

void HostSlotPool::begin_write(Runtime& rt, std::int32_t slot, std::int32_t op_id) {
  Slot& s = slot_at(slot);
  if (s.owner != SlotOwner::kOperation || s.op_id != op_id) {
    violation(rt, slot, kNoRequest);
    return;  // the write goes into memory somebody else owns; ownership stays theirs
  }
  s.owner = SlotOwner::kWriting;
  s.since_ns = rt.now_ns();
}

void HostSlotPool::end_write(Runtime& rt, std::int32_t slot, std::int32_t op_id) {
  Slot& s = slot_at(slot);
  if (s.owner == SlotOwner::kWriting && s.op_id == op_id) {
    s.owner = SlotOwner::kOperation;
    s.since_ns = rt.now_ns();
    return;
  }
  // Freed under the write: flagged at the free. Re-allocated since: the write lands in memory that
  // now belongs to another owner, which is the corruption itself.
  if (s.owner != SlotOwner::kFree) violation(rt, slot, kNoRequest);
}

std::vector<HostSlotPool::Record> HostSlotPool::census() const {
  std::vector<Record> out;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.owner != SlotOwner::kFree) out.push_back({kind_, static_cast<std::int32_t>(i), s.owner, s.op_id, s.since_ns});
  }
  return out;
}

std::vector<HostSlotPool::Record> HostSlotPool::work_census() const {
  std::vector<std::int32_t> slots = owned_by_work_;
  std::sort(slots.begin(), slots.end());
  std::vector<Record> out;
  out.reserve(slots.size());
  for (std::int32_t i : slots) {
    const Slot& s = slots_[static_cast<std::size_t>(i)];
    HCSIM_ASSERT(s.owner != SlotOwner::kFree && s.owner != SlotOwner::kTree);
    out.push_back({kind_, i, s.owner, s.op_id, s.since_ns});
  }
  return out;
}

void HostSlotPool::to_tree(Runtime& rt, std::int32_t slot) {
  Slot& s = slot_at(slot);
  if (s.owner == SlotOwner::kWriting) {
    // Published while a read still writes it (upstream's tree takes it regardless; the write
    // lands later in a tree slot, flagged again at its end_write).
    violation(rt, slot, kNoRequest);
  } else if (s.owner != SlotOwner::kOperation) {
    violation(rt, slot, kNoRequest);
    return;  // the tree does not take a slot its operation does not own
  }
  s = {SlotOwner::kTree, -1, rt.now_ns()};
  set_owned_by_work(slot, false);
}

bool HostSlotPool::queue_release(Runtime& rt, std::int32_t slot) {
  Slot& s = slot_at(slot);
  if (s.owner == SlotOwner::kWriting) {
    // Queued while a read still writes it, as upstream queues it: the drain frees it under the
    // read (#31445), flagged here.
    violation(rt, slot, kNoRequest);
  } else if (s.owner != SlotOwner::kOperation && s.owner != SlotOwner::kTree) {
    violation(rt, slot, kNoRequest);
    return false;  // releasing what is free or queued would free it twice
  }
  s.owner = SlotOwner::kReleaseQueued;
  s.since_ns = rt.now_ns();
  set_owned_by_work(slot, true);
  return true;
}

void HostSlotPool::free(Runtime& rt, std::int32_t slot) {
  Slot& s = slot_at(slot);
  if (s.owner == SlotOwner::kFree) {  // double free: the slot is already on the free stack
    violation(rt, slot, kNoRequest);
    return;
  }
  if (s.owner == SlotOwner::kWriting) violation(rt, slot, kNoRequest);  // freed under a write
  s = {SlotOwner::kFree, -1, rt.now_ns()};
  set_owned_by_work(slot, false);
  free_stack_.push_back(slot);
}

}  // namespace hcsim
