#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "policy/assert.h"

namespace hcsim {

namespace {

using namespace std::chrono_literals;

constexpr auto kQuietStart = 1s;           // work done within this prints nothing
constexpr auto kTerminalEvery = 100ms;     // redraws, at most
constexpr auto kLogEvery = 10s;            // plain lines, at most
constexpr auto kSampleEvery = 100ms;       // rate samples, at most
constexpr auto kRateWindow = 20s;
constexpr std::size_t kSamplesMax = 1024;  // a bound; the window holds about 200
constexpr int kBarWidth = 30;

std::string rate_text(double per_s) {
  char text[32];
  std::snprintf(text, sizeof text, per_s < 10 ? "%.1f" : "%.0f", per_s);
  return text;
}

std::string duration_text(double s) {
  char text[32];
  const auto whole = static_cast<long long>(std::llround(s));
  if (s < 10) {
    std::snprintf(text, sizeof text, "%.1f s", s);
  } else if (whole < 60) {
    std::snprintf(text, sizeof text, "%lld s", whole);
  } else if (whole < 3600) {
    std::snprintf(text, sizeof text, "%lldm%02llds", whole / 60, whole % 60);
  } else {
    std::snprintf(text, sizeof text, "%lldh%02lldm", whole / 3600, whole / 60 % 60);
  }
  return text;
}

}  // namespace

Progress::Progress(std::FILE* out, std::int64_t total, std::string unit, std::string label, std::int64_t already_done)
    : out_(out), total_(total), unit_(std::move(unit)), label_(std::move(label)), start_done_(already_done), done_(already_done) {
  HCSIM_ASSERT(already_done >= 0);
  tty_ = out_ != nullptr && ::isatty(::fileno(out_)) == 1;
  start_ = last_draw_ = Clock::now();
  samples_.emplace_back(start_, already_done);
}

Progress::~Progress() {
  std::lock_guard<std::mutex> lock(mu_);
  if (out_ != nullptr && tty_ && drawn_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

void Progress::record(Clock::time_point now, std::int64_t done) {
  done_ = std::max(done_, done);
  if (done_ > samples_.back().second && now - samples_.back().first >= kSampleEvery) samples_.emplace_back(now, done_);
  // Keep two samples at least, so the front always has less done than the newest while work goes on.
  while (samples_.size() > 2 && (now - samples_[1].first >= kRateWindow || samples_.size() > kSamplesMax)) samples_.pop_front();
}

double Progress::rate_at(Clock::time_point now) const {
  const auto& [t0, done0] = samples_.front();
  const double s = std::chrono::duration<double>(now - t0).count();
  if (done_ <= done0 || s <= 0 || now - start_ < kQuietStart) return 0.0;
  return static_cast<double>(done_ - done0) / s;
}

double Progress::rate_per_s() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rate_at(Clock::now());
}

void Progress::update(std::int64_t done) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  record(now, done);
  if (out_ == nullptr || finished_ || now - start_ < kQuietStart) return;
  if (tty_ ? (now - last_draw_ < kTerminalEvery && (drawn_ || !printed_)) : (now - last_draw_ < kLogEvery)) return;
  draw(now, false);
}

void Progress::clear_line() {
  std::lock_guard<std::mutex> lock(mu_);
  if (out_ == nullptr || !tty_ || !drawn_) return;
  std::fputs("\r\033[K", out_);
  std::fflush(out_);
  drawn_ = false;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (out_ == nullptr || finished_) return;
  finished_ = true;
  const auto now = Clock::now();
  if (!printed_ && now - start_ < kQuietStart) return;
  draw(now, true);
}

void Progress::draw(Clock::time_point now, bool final) {
  last_draw_ = now;
  const double pct = total_ > 0 ? 100.0 * static_cast<double>(std::min(done_, total_)) / static_cast<double>(total_) : 0.0;
  std::string counts = std::to_string(done_);
  if (total_ > 0) counts.append("/").append(std::to_string(total_));
  counts += " " + unit_;
  std::string pace;
  if (final) {
    const double s = std::chrono::duration<double>(now - start_).count();
    const double per_s = s > 0 ? static_cast<double>(done_ - start_done_) / s : 0.0;
    pace = " in " + duration_text(s) + " (" + rate_text(per_s) + " " + unit_ + "/s)";
  } else {
    const double per_s = rate_at(now);
    pace = per_s > 0 ? rate_text(per_s) + " " + unit_ + "/s" : "-- " + unit_ + "/s";
    if (total_ > 0) pace += per_s > 0 ? ", ETA " + duration_text(static_cast<double>(std::max<std::int64_t>(total_ - done_, 0)) / per_s) : ", ETA --";
  }
  if (tty_) {
    std::string line = "\r\033[K" + label_;
    if (total_ > 0) {
      const int filled = std::clamp(static_cast<int>(pct / 100.0 * kBarWidth), 0, kBarWidth);
      char percent[16];
      std::snprintf(percent, sizeof percent, "%5.1f%%", pct);
      line += " [" + std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(kBarWidth - filled), '.') + "] " + percent;
    }
    line += "  " + counts + (final ? pace : "  " + pace);
    if (final) line += "\n";
    std::fputs(line.c_str(), out_);
    drawn_ = !final;
  } else {
    std::string line = label_ + ": " + counts;
    if (total_ > 0 && !final) {
      char percent[16];
      std::snprintf(percent, sizeof percent, " (%.1f%%)", pct);
      line += percent;
    }
    line += final ? pace : ", " + pace;
    std::fputs((line + "\n").c_str(), out_);
  }
  printed_ = true;
  std::fflush(out_);
}

}  // namespace hcsim
