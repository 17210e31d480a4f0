// Coroutine frames, recycled per thread. Every policy call that may wait is a coroutine, and a
// scheduler pass makes dozens of them: their frames come back in the same few sizes, so a freed
// frame waits on its thread's list for the next call of its size instead of going back to malloc.
//
//   void* p = allocate_frame(bytes);   // in a promise's operator new
//   free_frame(p, bytes);              // in its sized operator delete
//
// A thread keeps at most kFramesKeptPerSize frames of each size class (64-byte steps up to
// kFramePooledBytesMax); larger frames and the rest go to the global allocator. Under
// AddressSanitizer frames are not pooled, so a use after free is still caught.
#pragma once

#include <cstddef>

namespace hcsim {

inline constexpr std::size_t kFramePooledBytesMax = 16384;
inline constexpr std::size_t kFramesKeptPerSize = 1024;

void* allocate_frame(std::size_t bytes);
void free_frame(void* frame, std::size_t bytes) noexcept;

}  // namespace hcsim
