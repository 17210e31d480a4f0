// Task<T>: the coroutine type of every policy actor and of every policy function that may wait.
//
// A Task starts when awaited (or when a world resumes a top-level actor), and resumes its awaiter
// by symmetric transfer when it returns, so nested policy calls cost no scheduler events in the
// simulator and plain calls on a thread in the GPU backend.
//
//   Task<bool> check(Runtime& rt) { co_await rt.sleep_ns(1'000); co_return true; }
//   Task<> actor(Runtime& rt) { bool ok = co_await check(rt); ... }
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

#include "policy/assert.h"
#include "policy/frame_pool.h"

namespace hcsim {

template <typename T>
class Task;

// What an actor sees when a world call raised (an L3 client that throws, as upstream's may).
struct WorldCallRaised : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// What modelled upstream code raises itself, as Python would (an IndexError from pop(0) on an
// empty list): it ends the actor as a raising world call does.
struct UpstreamRaised : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation;
  std::exception_ptr exception;

  static void* operator new(std::size_t bytes) { return allocate_frame(bytes); }
  static void operator delete(void* frame, std::size_t bytes) noexcept { free_frame(frame, bytes); }

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto next = h.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  // Only a world call that raised, or modelled upstream code that raised, is the modelled world's
  // doing: it ends the actor, as upstream's thread dies. Anything else (out of memory, a broken contract) leaves the run through resume().
  void unhandled_exception() {
    try {
      throw;
    } catch (const WorldCallRaised&) {
      exception = std::current_exception();
    } catch (const UpstreamRaised&) {
      exception = std::current_exception();
    }
  }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  template <typename U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
};

}  // namespace detail

template <typename T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) noexcept : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    HCSIM_ASSERT(handle_ && !handle_.done());
    handle_.promise().continuation = awaiter;
    return handle_;
  }
  T await_resume() {
    HCSIM_ASSERT(handle_.done());
    if (handle_.promise().exception) std::rethrow_exception(handle_.promise().exception);
    if constexpr (!std::is_void_v<T>) return std::move(*handle_.promise().value);
  }

  // For worlds that drive a top-level actor themselves.
  std::coroutine_handle<> handle() const noexcept { return handle_; }
  bool done() const noexcept { return handle_ && handle_.done(); }
  std::exception_ptr exception() const noexcept {
    return handle_ ? handle_.promise().exception : nullptr;
  }

 private:
  void destroy() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  Handle handle_;
};

namespace detail {
template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace hcsim
