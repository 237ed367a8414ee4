#include "clock_check.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace redlock::detail {
namespace {

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double micros(Clock::time_point t) { return micros(t.time_since_epoch()); }

// "+5.2 s", "-30 ms".
std::string signed_duration(double us) {
  char buf[32];
  if (std::fabs(us) >= 1e6) {
    std::snprintf(buf, sizeof buf, "%+.1f s", us / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%+.0f ms", us / 1e3);
  }
  return buf;
}

// "fast (1.50x)", "slow (-1.2%)".
std::string rate_text(double rate) {
  char buf[48];
  const char* way = rate >= 1.0 ? "fast" : "slow";
  if (std::fabs(rate - 1.0) >= 0.1) {
    std::snprintf(buf, sizeof buf, "%s (%.2fx)", way, rate);
  } else {
    std::snprintf(buf, sizeof buf, "%s (%+.2f%%)", way, (rate - 1.0) * 100.0);
  }
  return buf;
}

bool parse_count(std::string_view text, std::int64_t& out) {
  if (text.empty() || text.front() == '-' || text.front() == '+') return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<std::int64_t> time_reply_us(std::string_view seconds,
                                          std::string_view micros) noexcept {
  std::int64_t s = 0;
  std::int64_t us = 0;
  // Seconds up to the year 292277 keep the product within 64 bits.
  constexpr std::int64_t kMaxSeconds = 9'000'000'000'000;
  if (!parse_count(seconds, s) || !parse_count(micros, us) || s > kMaxSeconds || us >= 1'000'000) {
    return std::nullopt;
  }
  return s * 1'000'000 + us;
}

ClockCheck::ClockCheck(double tolerance, Clock::duration window, Clock::duration slack)
    : tolerance_(std::max(tolerance, kMinClockTolerance)),
      window_us_(micros(window)),
      slack_us_(micros(slack)) {}

void ClockCheck::reset() {
  samples_.clear();
  last_sent_ = {};
  kind_ = Kind::kNone;
  reason_.clear();
  rate_.reset();
}

bool ClockCheck::add(const ClockSample& sample) {
  if (sample.replied < sample.sent) return false;
  if (!samples_.empty() && sample.sent < last_sent_) return false;
  last_sent_ = sample.sent;
  Entry e;
  e.half_us = micros(sample.replied - sample.sent) / 2.0;
  e.mid_us = micros(sample.sent) + e.half_us;
  e.node_us = static_cast<double>(sample.node_us);
  if (!samples_.empty()) {
    Entry& prev = samples_.back();
    const double local = e.mid_us - prev.mid_us;
    e.deviation_us = (e.node_us - prev.node_us) - local;
    const double band = tolerance_ * local + prev.half_us + e.half_us + slack_us_;
    e.out = std::fabs(e.deviation_us) > band;
    const bool same_way = (e.deviation_us > 0) == (prev.deviation_us > 0);
    if (e.out && prev.out && same_way) {
      // Twice in a row the same way: a rate, not a step.
      e.into = Entry::Into::kCounted;
      if (prev.into == Entry::Into::kJump) prev.into = Entry::Into::kCounted;
    } else if (std::fabs(e.deviation_us) > 2.0 * band) {
      e.into = Entry::Into::kJump;
    } else {
      e.into = Entry::Into::kCounted;
    }
  }
  samples_.push_back(e);
  // Keep the last window: the first entry's interval then lies outside it.
  while (samples_.size() > 1 && e.mid_us - samples_.front().mid_us > window_us_) {
    samples_.pop_front();
    samples_.front().into = Entry::Into::kNone;
    samples_.front().out = false;
  }
  const Kind before = kind_;
  evaluate();
  return kind_ != before;
}

bool ClockCheck::would_catch(double rate_error) const noexcept {
  if (samples_.size() < 2) return false;
  const Entry& first = samples_.front();
  const Entry& last = samples_.back();
  const double local = last.mid_us - first.mid_us;
  if (local <= 0) return false;
  return rate_error * local > tolerance_ * local + first.half_us + last.half_us + slack_us_;
}

void ClockCheck::evaluate() {
  // The rate over every interval that is not a jump: each unbroken run of
  // them counts from its first sample to its last, with those two error
  // bars and one slack.
  double node = 0;
  double local = 0;
  double error = 0;
  int runs = 0;
  std::size_t run_start = 0;
  const auto close_run = [&](std::size_t end) {
    if (end <= run_start) return;
    node += samples_[end].node_us - samples_[run_start].node_us;
    local += samples_[end].mid_us - samples_[run_start].mid_us;
    error += samples_[run_start].half_us + samples_[end].half_us;
    ++runs;
  };
  const Entry* last_jump = nullptr;
  for (std::size_t i = 1; i < samples_.size(); ++i) {
    if (samples_[i].into == Entry::Into::kJump) {
      close_run(i - 1);
      run_start = i;
      last_jump = &samples_[i];
    }
  }
  if (!samples_.empty()) close_run(samples_.size() - 1);

  rate_.reset();
  if (local > 0) rate_ = node / local;
  const bool rate_bad = runs > 0 && local > 0 &&
                        std::fabs(node - local) > tolerance_ * local + error + slack_us_ * runs;

  reason_.clear();
  kind_ = Kind::kNone;
  if (rate_bad) {
    kind_ = Kind::kRate;
    char span[32];
    std::snprintf(span, sizeof span, "%.1f s", local / 1e6);
    reason_ = "clock runs " + rate_text(*rate_) + " over " + span;
    if (last_jump != nullptr) reason_ += "; jumped " + signed_duration(last_jump->deviation_us);
  } else if (last_jump != nullptr) {
    kind_ = Kind::kJump;
    reason_ = "clock jumped " + signed_duration(last_jump->deviation_us);
  }
}

}  // namespace redlock::detail
