// HostSlotPool: host memory slots (KV pages or sidecar states) with an owner per slot, so a write
// into a slot its writer does not own, a free during a write, or a double free is caught when it
// happens (domain doc section 6, "Host memory ownership").
//
//   free --alloc--> operation --begin_write--> writing --end_write--> operation
//   operation --to_tree--> tree;  operation|tree --queue_release--> release_queued --free--> free
//
// A violation is emitted as a slot_violation event (slot, pool, owner) and counted.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/assert.h"
#include "policy/runtime.h"

namespace hcsim {

enum class SlotOwner : std::uint8_t { kFree, kOperation, kWriting, kTree, kReleaseQueued };
std::string_view slot_owner_name(SlotOwner o);

enum class SlotPoolKind : std::uint8_t { kKv, kSidecar };

class HostSlotPool {
 public:
  HostSlotPool(SlotPoolKind kind, std::int32_t capacity);

  std::int32_t capacity() const { return capacity_; }
  std::int32_t available() const { return static_cast<std::int32_t>(free_stack_.size()) + (capacity_ - fresh_); }
  std::int64_t violations() const { return violations_; }
  SlotOwner owner(std::int32_t slot) const;

  // Takes `count` slots for data resident in the host tree before the run (occupancy skew).
  void occupy_resident(std::int32_t count);

  // All or nothing: appends `count` slots owned by operation `op_id` to `out`, or returns false.
  bool alloc(TimeNs now_ns, std::int32_t count, std::int32_t op_id, std::vector<std::int32_t>& out);

  struct Record {
    SlotPoolKind pool = SlotPoolKind::kKv;
    std::int32_t slot = 0;
    SlotOwner owner = SlotOwner::kFree;
    std::int32_t op_id = -1;  // the owning operation, -1 for the tree
    TimeNs since_ns = 0;      // when the slot came to its owner
  };
  // Every slot that is not free, in slot order.
  std::vector<Record> census() const;
  // Every slot owned by work (an operation, a write, the release queue), in slot order: the
  // candidates for a leak, without walking the tree's slots.
  std::vector<Record> work_census() const;
  // How many of those `pred(const Record&)` holds for, visited in no order (nothing is sorted or kept).
  template <typename Pred>
  std::int64_t count_work(Pred pred) const {
    std::int64_t n = 0;
    for (const std::int32_t i : owned_by_work_) {
      const Slot& s = slots_[static_cast<std::size_t>(i)];
      n += pred(Record{kind_, i, s.owner, s.op_id, s.since_ns}) ? 1 : 0;
    }
    return n;
  }

  struct Leak {
    Record record;
    std::string owner;  // who holds it and why nobody will free it
  };

  void begin_write(Runtime& rt, std::int32_t slot, std::int32_t op_id);
  void end_write(Runtime& rt, std::int32_t slot, std::int32_t op_id);
  void to_tree(Runtime& rt, std::int32_t slot);
  // False (and a violation) if the slot was not the caller's to release: do not queue it then.
  [[nodiscard]] bool queue_release(Runtime& rt, std::int32_t slot);
  void free(Runtime& rt, std::int32_t slot);

 private:
  struct Slot {
    SlotOwner owner = SlotOwner::kFree;
    std::int32_t op_id = -1;
    TimeNs since_ns = 0;
  };
  void violation(Runtime& rt, std::int32_t slot, RequestId request);

  // Slots come from the free stack, then in slot order from those never used, so a pool costs
  // what its run touches: a run of a 100,000-slot pool that uses 40 slots sets up 40.
  std::int32_t take_free();
  Slot& slot_at(std::int32_t slot) {  // a slot never used is free
    HCSIM_ASSERT(slot >= 0 && slot < capacity_);
    const auto i = static_cast<std::size_t>(slot);
    if (i >= slots_.size()) [[unlikely]] grow_past(i);
    return slots_[i];
  }
  // Grown in steps, with the lists that hold at most one entry a touched slot, so that taking
  // slots one at a time allocates a few times a run, not once a slot.
  void grow_past(std::size_t slot);
  static constexpr std::size_t kSlotsFirstGrowth = 64;

  SlotPoolKind kind_;
  std::int32_t capacity_;
  std::int32_t fresh_ = 0;                // slots [fresh_, capacity_) were never used
  std::vector<Slot> slots_;               // those touched so far, by slot
  std::vector<std::int32_t> free_stack_;  // freed slots, the last freed on top
  // The slots neither free nor the tree's, in no order, and each slot's index there (-1: absent).
  std::vector<std::int32_t> owned_by_work_;
  std::vector<std::int32_t> work_index_;
  void set_owned_by_work(std::int32_t slot, bool owned) {
    std::int32_t& index = work_index_[static_cast<std::size_t>(slot)];
    if (owned == (index >= 0)) return;
    if (owned) {
      index = static_cast<std::int32_t>(owned_by_work_.size());
      owned_by_work_.push_back(slot);
      return;
    }
    const std::int32_t last = owned_by_work_.back();  // moves into the hole
    owned_by_work_[static_cast<std::size_t>(index)] = last;
    work_index_[static_cast<std::size_t>(last)] = index;
    owned_by_work_.pop_back();
    index = -1;
  }
  std::int64_t violations_ = 0;
};

}  // namespace hcsim
