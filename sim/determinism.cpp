#include "sim/determinism.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "policy/assert.h"

namespace hcsim {

namespace {

constexpr std::size_t kChunkEvents = 4096;
constexpr std::size_t kChunksAheadMax = 8;  // how far the first run may get ahead of the second

// The first run's events on their way to the second, in chunks, at most kChunksAheadMax of them.
class Handoff {
 public:
  // Blocks while the queue is full, unless the second run has stopped comparing.
  void push(std::vector<TraceEvent> chunk) {
    std::unique_lock lock(mu_);
    space_.wait(lock, [&] { return chunks_.size() < kChunksAheadMax || abandoned_.load(); });
    if (abandoned_.load()) return;
    chunks_.push_back(std::move(chunk));
    ready_.notify_one();
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    ready_.notify_one();
  }
  // The next chunk; empty once the first run has closed and every chunk was taken.
  std::vector<TraceEvent> pop() {
    std::unique_lock lock(mu_);
    ready_.wait(lock, [&] { return !chunks_.empty() || closed_; });
    if (chunks_.empty()) return {};
    std::vector<TraceEvent> chunk = std::move(chunks_.front());
    chunks_.pop_front();
    space_.notify_one();
    return chunk;
  }
  // The second run compares no more: the first runs to its end without waiting or keeping events.
  void abandon() {
    std::lock_guard lock(mu_);
    abandoned_.store(true);
    chunks_.clear();
    space_.notify_one();
  }
  bool abandoned() const { return abandoned_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<std::vector<TraceEvent>> chunks_;
  bool closed_ = false;
  std::atomic<bool> abandoned_{false};
};

class Producer final : public EventTap {
 public:
  explicit Producer(Handoff& handoff) : handoff_(handoff) { chunk_.reserve(kChunkEvents); }
  void on_event(const TraceEvent& e) override {
    if (handoff_.abandoned()) return;
    chunk_.push_back(e);
    if (chunk_.size() == kChunkEvents) flush();
  }
  void flush() {
    if (chunk_.empty()) return;
    handoff_.push(std::move(chunk_));
    chunk_ = {};
    chunk_.reserve(kChunkEvents);
  }

 private:
  Handoff& handoff_;
  std::vector<TraceEvent> chunk_;
};

class Comparer final : public EventTap {
 public:
  Comparer(Handoff& handoff, DeterminismReport& report) : handoff_(handoff), report_(report) {}

  void on_event(const TraceEvent& e) override {
    if (report_.first_difference) return;
    const TraceEvent* expected = next();
    if (expected == nullptr || *expected != e) {
      differ(expected, &e);
      return;
    }
    report_.agreed_before.push_back(e);
    if (report_.agreed_before.size() > kDeterminismContextEvents) report_.agreed_before.pop_front();
    ++report_.events_compared;
  }
  // After the second run: anything the first run had beyond it is the difference.
  void finish() {
    if (!report_.first_difference) {
      if (const TraceEvent* extra = next()) differ(extra, nullptr);
    }
    handoff_.abandon();
  }

 private:
  const TraceEvent* next() {
    if (at_ == chunk_.size()) {
      chunk_ = handoff_.pop();
      at_ = 0;
      if (chunk_.empty()) return nullptr;
    }
    return &chunk_[at_++];
  }
  void differ(const TraceEvent* first, const TraceEvent* second) {
    HCSIM_ASSERT(first != nullptr || second != nullptr);
    report_.first_difference = report_.events_compared;
    if (first) report_.first_run_event = *first;
    if (second) report_.second_run_event = *second;
    handoff_.abandon();
  }

  Handoff& handoff_;
  DeterminismReport& report_;
  std::vector<TraceEvent> chunk_;
  std::size_t at_ = 0;
};

// What differs between two runs' results whose events agree, or "".
std::string result_difference(const RunResult& x, const RunResult& y) {
  if (x.log.digest() != y.log.digest() || x.log.count() != y.log.count()) return "event-log digest or count";
  if (x.verdict.kind != y.verdict.kind || x.verdict.at_ns != y.verdict.at_ns || x.verdict.headline != y.verdict.headline) return "verdict";
  if (x.kernel_events != y.kernel_events) return "kernel events processed";
  if (x.end_ns != y.end_ns) return "end time";
  if (x.collectives_completed != y.collectives_completed) return "collectives completed";
  if (x.wait_for_dot() != y.wait_for_dot()) return "wait-for graph";
  if (x.invariants.size() != y.invariants.size()) return "invariants";
  for (std::size_t i = 0; i < x.invariants.size(); ++i) {
    const InvariantResult& a = x.invariants[i];
    const InvariantResult& b = y.invariants[i];
    if (a.name != b.name || a.held != b.held || a.details != b.details) return "invariant " + a.name;
  }
  if (x.ranks.size() != y.ranks.size()) return "ranks";
  for (std::size_t i = 0; i < x.ranks.size(); ++i) {
    if (x.ranks[i].slot_violations != y.ranks[i].slot_violations) return "slot violations of rank " + std::to_string(i);
  }
  return "";
}

}  // namespace

DeterminismReport check_determinism(const RunOnce& run_once) {
  HCSIM_ASSERT(run_once);
  Handoff handoff;
  DeterminismReport report;
  std::optional<RunResult> first;
  std::exception_ptr first_error;
  std::thread first_thread([&] {
    Producer producer(handoff);
    try {
      first = run_once(&producer);
      producer.flush();
    } catch (...) {
      first_error = std::current_exception();
    }
    handoff.close();
  });

  Comparer comparer(handoff, report);
  std::optional<RunResult> second;
  std::exception_ptr second_error;
  try {
    second = run_once(&comparer);
    comparer.finish();
  } catch (...) {
    second_error = std::current_exception();
    handoff.abandon();
  }
  first_thread.join();
  if (first_error) std::rethrow_exception(first_error);
  if (second_error) std::rethrow_exception(second_error);
  HCSIM_ASSERT(first && second);
  report.digest = first->log.digest();
  if (!report.first_difference) report.result_difference = result_difference(*first, *second);
  return report;
}

}  // namespace hcsim
