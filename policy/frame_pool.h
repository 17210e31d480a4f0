// Coroutine frames, recycled per thread. Every policy call that may wait is a coroutine, and a
// scheduler pass makes dozens of them: their frames come back in the same few sizes, so a freed
// frame waits on its thread's list for the next call of its size instead of going back to malloc.
//
//   void* p = allocate_frame(bytes);   // in a promise's operator new
//   free_frame(p, bytes);              // in its sized operator delete
//
// Frames up to kFramePooledBytesMax are pooled in 64-byte size classes; larger ones go to the
// global allocator. A thread's lists hold the frames it freed: those it made are bounded by the most
// it had live at once. A thread that frees frames others made (a GPU run's main thread, whose
// world destroys the actor threads' coroutines) gives them back with release_thread_frames() after
// each run. The lists are freed when their thread ends. Under AddressSanitizer frames are not
// pooled, so a use after free is still caught. The fast path is inline: a run makes about two
// frames an event.
#pragma once

#include <array>
#include <cstddef>
#include <new>

namespace hcsim {

inline constexpr std::size_t kFramePooledBytesMax = 16384;

namespace frame_pool {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kPooled = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kPooled = false;
#else
inline constexpr bool kPooled = true;
#endif
#else
inline constexpr bool kPooled = true;
#endif

inline constexpr std::size_t kStepBytes = 64;
inline constexpr std::size_t kClasses = kFramePooledBytesMax / kStepBytes;

// A free frame holds the link to the next one of its class.
struct FreeFrame {
  FreeFrame* next;
};

// This thread's free frames by size class. Constant-initialized and trivially destructible, so
// reaching it costs no guard; the lists' owner (frame_pool.cpp) frees them when the thread ends,
// once `owner_armed` says this thread has made it.
extern thread_local constinit std::array<FreeFrame*, kClasses> free_lists;
extern thread_local constinit bool owner_armed;

inline bool pooled(std::size_t bytes) { return kPooled && bytes != 0 && bytes <= kFramePooledBytesMax; }
inline std::size_t size_class(std::size_t bytes) { return (bytes - 1) / kStepBytes; }

// The slow paths: a frame from the global allocator; making this thread's lists' owner.
void* allocate_new(std::size_t c);
void arm_owner() noexcept;

}  // namespace frame_pool

inline void* allocate_frame(std::size_t bytes) {
  if (!frame_pool::pooled(bytes)) return ::operator new(bytes);
  const std::size_t c = frame_pool::size_class(bytes);
  frame_pool::FreeFrame* f = frame_pool::free_lists[c];
  if (f == nullptr) return frame_pool::allocate_new(c);
  frame_pool::free_lists[c] = f->next;
  return f;
}

// Frees the calling thread's lists now.
void release_thread_frames() noexcept;

inline void free_frame(void* frame, std::size_t bytes) noexcept {
  if (!frame_pool::pooled(bytes)) {
    ::operator delete(frame);
    return;
  }
  if (!frame_pool::owner_armed) frame_pool::arm_owner();  // this thread's first pooled call may be a free
  const std::size_t c = frame_pool::size_class(bytes);
  frame_pool::free_lists[c] = ::new (frame) frame_pool::FreeFrame{frame_pool::free_lists[c]};
}

}  // namespace hcsim
