#include "policy/frame_pool.h"

#include <new>

namespace hcsim::frame_pool {

thread_local constinit std::array<FreeFrame*, kClasses> free_lists{};
thread_local constinit bool owner_armed = false;

namespace {

// Frees this thread's lists when it ends. Made on a slow path, which every thread passes through
// before its lists hold a frame, so the fast path never tests its guard.
struct ListsOwner {
  ~ListsOwner() { hcsim::release_thread_frames(); }
};

}  // namespace

void arm_owner() noexcept {
  thread_local ListsOwner owner;  // made, and its destructor registered, on this first pass
  owner_armed = true;
}

void* allocate_new(std::size_t c) {
  if (!owner_armed) arm_owner();
  return ::operator new((c + 1) * kStepBytes);
}

}  // namespace hcsim::frame_pool

void hcsim::release_thread_frames() noexcept {
  for (frame_pool::FreeFrame*& head : frame_pool::free_lists) {
    while (head != nullptr) {  // bounded: the frames this thread freed since its lists were last emptied
      frame_pool::FreeFrame* next = head->next;
      ::operator delete(head);
      head = next;
    }
  }
}
