#include "policy/frame_pool.h"

#include <array>
#include <cstdint>
#include <new>

namespace hcsim {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPooled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPooled = false;
#else
constexpr bool kPooled = true;
#endif
#else
constexpr bool kPooled = true;
#endif

constexpr std::size_t kStepBytes = 64;
constexpr std::size_t kClasses = kFramePooledBytesMax / kStepBytes;

// A free frame holds the link to the next one of its class.
struct FreeFrame {
  FreeFrame* next;
};

class FramePool {
 public:
  ~FramePool() {
    for (FreeFrame* head : heads_) {
      while (head != nullptr) {  // bounded: at most kFramesKeptPerSize per class
        FreeFrame* next = head->next;
        ::operator delete(head);
        head = next;
      }
    }
  }

  void* take(std::size_t c) {
    FreeFrame* f = heads_[c];
    if (f == nullptr) return ::operator new((c + 1) * kStepBytes);
    heads_[c] = f->next;
    --kept_[c];
    return f;
  }

  void give(void* frame, std::size_t c) noexcept {
    if (kept_[c] == kFramesKeptPerSize) {
      ::operator delete(frame);
      return;
    }
    heads_[c] = ::new (frame) FreeFrame{heads_[c]};
    ++kept_[c];
  }

 private:
  std::array<FreeFrame*, kClasses> heads_{};
  std::array<std::size_t, kClasses> kept_{};
};

// A frame freed on another thread than its own (a GPU-world actor destroyed by the main thread)
// joins that thread's pool: memory moves between pools, never shared.
thread_local FramePool pool;

std::size_t size_class(std::size_t bytes) { return (bytes - 1) / kStepBytes; }

}  // namespace

void* allocate_frame(std::size_t bytes) {
  if (!kPooled || bytes == 0 || bytes > kFramePooledBytesMax) return ::operator new(bytes);
  return pool.take(size_class(bytes));
}

void free_frame(void* frame, std::size_t bytes) noexcept {
  if (!kPooled || bytes == 0 || bytes > kFramePooledBytesMax) {
    ::operator delete(frame);
    return;
  }
  pool.give(frame, size_class(bytes));
}

}  // namespace hcsim
