#include "retry.hpp"

#include <algorithm>

namespace redlock::detail {

RetryDecision next_retry(const RetryPolicy& policy, int attempts_done, Clock::time_point call_start,
                         Clock::time_point now, double unit_random) noexcept {
  const bool timed = policy.max_wait.count() > 0;
  const bool counted = policy.max_attempts > 0;
  if (!timed && !counted) return {};  // a single round: try-lock
  if (counted && attempts_done >= policy.max_attempts) return {};

  unit_random = std::clamp(unit_random, 0.0, 1.0);
  const auto low = std::max(milliseconds(0), policy.delay - policy.jitter);
  const auto high = policy.delay + policy.jitter;
  const auto span = static_cast<double>((high - low).count());
  const auto delay = low + milliseconds(static_cast<milliseconds::rep>(span * unit_random));

  // Compared as durations, never as call_start + max_wait: a max_wait of
  // milliseconds::max() ("wait for ever") must not overflow the time point.
  if (timed) {
    const auto elapsed =
        std::chrono::ceil<milliseconds>(std::max(now - call_start, Clock::duration::zero()));
    if (elapsed >= policy.max_wait || delay >= policy.max_wait - elapsed) {
      return {std::nullopt, true};
    }
  }
  return {delay, false};
}

milliseconds contest_window(int k, Clock::duration round_took, milliseconds retry_delay) noexcept {
  const auto four =
      std::chrono::ceil<milliseconds>(4 * std::max(round_took, Clock::duration::zero()));
  auto window = std::max(kContestMinWindow, four);
  for (int i = 0; i < k && window < retry_delay; ++i) window *= 2;
  return std::min(window, retry_delay);
}

RetryPlan plan_retry(const RetryDecision& next, bool listening, int contest_left,
                     const FailedRound& round, milliseconds retry_delay, double unit_random,
                     Clock::time_point now, Clock::time_point deadline) noexcept {
  RetryPlan plan;
  const bool waits_for_wake = !next.delay && next.wait_exhausted && listening && now < deadline;
  if (!next.delay && !waits_for_wake) return plan;
  if (listening && contest_left > 0 && (round.woken || round.saw_free)) {
    const int k = kContestRetries - std::min(contest_left, kContestRetries);
    const auto window = contest_window(k, round.took, retry_delay);
    const double u = std::clamp(unit_random, 0.0, 1.0);
    auto at =
        now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(
                  static_cast<double>(window.count()) * u));
    if (next.delay) at = std::min(at, now + *next.delay);
    if (at < deadline) {
      plan.retry_at = at;
      plan.contest = true;
      return plan;
    }
  }
  if (next.delay) {
    plan.retry_at = now + *next.delay;
  } else {
    plan.give_up_at = deadline;
  }
  return plan;
}

Clock::time_point wait_deadline(Clock::time_point call_start, milliseconds max_wait) noexcept {
  if (max_wait.count() <= 0) return Clock::time_point::max();
  const auto room = std::chrono::duration_cast<milliseconds>(Clock::time_point::max() - call_start);
  if (max_wait >= room) return Clock::time_point::max();
  return call_start + max_wait;
}

}  // namespace redlock::detail
