// When a failed acquire round is tried again: the jittered retry bounded by
// max_attempts and max_wait, and what wake-on-release changes in it. Fed with
// values: a fixed instant plus offsets, never Clock::now() and never a sleep.
#include "retry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <optional>

#include "time_values.hpp"

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;

// ------------------------------------------------------------ next_retry

RetryPolicy policy(std::chrono::milliseconds max_wait, int max_attempts,
                   std::chrono::milliseconds delay, std::chrono::milliseconds jitter) {
  RetryPolicy p;
  p.max_wait = max_wait;
  p.max_attempts = max_attempts;
  p.delay = delay;
  p.jitter = jitter;
  return p;
}

TEST(NextRetry, BothLimitsZeroMeansASingleAttempt) {
  const auto p = policy(0ms, 0, 200ms, 100ms);
  for (const double u : {0.0, 0.5, 0.999}) {
    const auto d = next_retry(p, 1, t0, t0 + 5ms, u);
    EXPECT_FALSE(d.delay.has_value()) << d.delay->count();
    EXPECT_FALSE(d.wait_exhausted);
  }
}

TEST(NextRetry, MaxAttemptsIsHonoured) {
  const auto p = policy(0ms, 3, 200ms, 0ms);
  for (int done = 1; done < 3; ++done) {
    const auto d = next_retry(p, done, t0, t0 + std::chrono::hours(1), 0.5);
    ASSERT_TRUE(d.delay.has_value()) << "attempts_done " << done;
    EXPECT_EQ(dur(*d.delay), dur(200ms));
    EXPECT_FALSE(d.wait_exhausted);
  }
  for (const int done : {3, 4, 1000}) {
    const auto d = next_retry(p, done, t0, t0 + 1ms, 0.5);
    EXPECT_FALSE(d.delay.has_value()) << "attempts_done " << done;
    EXPECT_FALSE(d.wait_exhausted) << "attempts_done " << done;
  }
}

TEST(NextRetry, OneAttemptMeansNoRetry) {
  const auto d = next_retry(policy(0ms, 1, 200ms, 100ms), 1, t0, t0, 0.5);
  EXPECT_FALSE(d.delay.has_value());
  EXPECT_FALSE(d.wait_exhausted);
}

TEST(NextRetry, MaxWaitExhaustedWhenTheNextStartWouldBeTooLate) {
  const auto p = policy(1000ms, 0, 200ms, 0ms);
  // 799 + 200 = 999 < 1000: one more round fits.
  auto d = next_retry(p, 5, t0, t0 + 799ms, 0.5);
  ASSERT_TRUE(d.delay.has_value());
  EXPECT_EQ(dur(*d.delay), dur(200ms));
  EXPECT_FALSE(d.wait_exhausted);
  // 800 + 200 = 1000 >= 1000: it does not.
  d = next_retry(p, 5, t0, t0 + 800ms, 0.5);
  EXPECT_FALSE(d.delay.has_value()) << d.delay->count();
  EXPECT_TRUE(d.wait_exhausted);
  d = next_retry(p, 5, t0, t0 + 5s, 0.5);
  EXPECT_FALSE(d.delay.has_value());
  EXPECT_TRUE(d.wait_exhausted);
}

TEST(NextRetry, WhicheverLimitComesFirst) {
  const auto p = policy(1000ms, 2, 100ms, 0ms);
  // The count runs out first: not a wait timeout.
  auto d = next_retry(p, 2, t0, t0 + 100ms, 0.5);
  EXPECT_FALSE(d.delay.has_value());
  EXPECT_FALSE(d.wait_exhausted);
  // The time runs out first.
  d = next_retry(p, 1, t0, t0 + 950ms, 0.5);
  EXPECT_FALSE(d.delay.has_value());
  EXPECT_TRUE(d.wait_exhausted);
  // Neither.
  d = next_retry(p, 1, t0, t0 + 100ms, 0.5);
  ASSERT_TRUE(d.delay.has_value());
  EXPECT_EQ(dur(*d.delay), dur(100ms));
}

TEST(NextRetry, DelayStaysWithinTheJitterBand) {
  const auto p = policy(0ms, 1000000, 200ms, 100ms);
  for (int i = 0; i < 1000; ++i) {
    const double u = i / 1000.0;
    const auto d = next_retry(p, 1, t0, t0, u);
    ASSERT_TRUE(d.delay.has_value()) << "u=" << u;
    EXPECT_GE(dur(*d.delay), dur(100ms)) << "u=" << u;
    EXPECT_LE(dur(*d.delay), dur(300ms)) << "u=" << u;
  }
  const auto near_one = next_retry(p, 1, t0, t0, 0.999999);
  ASSERT_TRUE(near_one.delay.has_value());
  EXPECT_LE(dur(*near_one.delay), dur(300ms));
  EXPECT_GE(dur(*near_one.delay), dur(299ms));
}

TEST(NextRetry, UnitRandomZeroGivesTheLowBound) {
  auto d = next_retry(policy(0ms, 10, 200ms, 100ms), 1, t0, t0, 0.0);
  ASSERT_TRUE(d.delay.has_value());
  EXPECT_EQ(dur(*d.delay), dur(100ms));
  d = next_retry(policy(0ms, 10, 200ms, 0ms), 1, t0, t0, 0.0);
  ASSERT_TRUE(d.delay.has_value());
  EXPECT_EQ(dur(*d.delay), dur(200ms));
  d = next_retry(policy(0ms, 10, 200ms, 0ms), 1, t0, t0, 0.999);
  ASSERT_TRUE(d.delay.has_value());
  EXPECT_EQ(dur(*d.delay), dur(200ms));
}

TEST(NextRetry, JitterLargerThanDelayClampsAtZero) {
  const auto p = policy(0ms, 10, 50ms, 200ms);
  const auto low = next_retry(p, 1, t0, t0, 0.0);
  ASSERT_TRUE(low.delay.has_value());
  EXPECT_EQ(dur(*low.delay), dur(0ms));
  for (int i = 0; i < 1000; ++i) {
    const double u = i / 1000.0;
    const auto d = next_retry(p, 1, t0, t0, u);
    ASSERT_TRUE(d.delay.has_value()) << "u=" << u;
    EXPECT_GE(dur(*d.delay), dur(0ms)) << "u=" << u;
    EXPECT_LE(dur(*d.delay), dur(250ms)) << "u=" << u;
  }
}

TEST(NextRetry, ZeroDelayAndJitterRetriesAtOnce) {
  const auto d = next_retry(policy(1000ms, 0, 0ms, 0ms), 1, t0, t0 + 10ms, 0.7);
  ASSERT_TRUE(d.delay.has_value());
  EXPECT_EQ(dur(*d.delay), dur(0ms));
  EXPECT_FALSE(d.wait_exhausted);
}

TEST(NextRetry, HugeMaxWaitDoesNotOverflow) {
  // validate_acquire accepts any non-negative max_wait, and "wait as long as
  // it takes" is naturally written as milliseconds::max(). call_start +
  // max_wait must not wrap around into the past.
  for (const auto max_wait :
       {std::chrono::milliseconds::max(), std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::hours(24 * 365 * 1000))}) {
    const auto d = next_retry(policy(max_wait, 0, 200ms, 100ms), 1, t0, t0 + 1s, 0.5);
    EXPECT_TRUE(d.delay.has_value()) << "max_wait " << max_wait.count() << " ms";
    EXPECT_FALSE(d.wait_exhausted) << "max_wait " << max_wait.count() << " ms";
  }
}

// ----------------------------------------------------------------- plan_retry

const Clock::time_point kNow = Clock::time_point() + std::chrono::hours(1);

RetryDecision retry_after(milliseconds d) { return {d, false}; }
RetryDecision exhausted() { return {std::nullopt, true}; }
RetryDecision stop() { return {std::nullopt, false}; }

const FailedRound kHeld{};                     // every node refused, nothing announced
const FailedRound kWoken{true, false, 1ms};    // an announcement during the round
const FailedRound kSawFree{false, true, 1ms};  // a node granted it (a split vote)

TEST(PlanRetry, OutsideAContestTheJitteredDelayStands) {
  for (const auto& round : {kHeld, kWoken, kSawFree}) {
    const auto p = plan_retry(retry_after(250ms), true, 0, round, 250ms, 0.5, kNow, kNow + 10s);
    ASSERT_TRUE(p.retry_at);
    EXPECT_EQ(*p.retry_at, kNow + 250ms);
    EXPECT_FALSE(p.give_up_at);
    EXPECT_FALSE(p.contest);
  }
}

TEST(PlanRetry, InAContestAWokenOrSplitRoundRetriesAfterAShortRandomPause) {
  for (const auto& round : {kWoken, kSawFree}) {
    auto p = plan_retry(retry_after(10s), true, kContestRetries, round, 10s, 0.0, kNow, kNow + 60s);
    ASSERT_TRUE(p.retry_at);
    EXPECT_EQ(*p.retry_at, kNow);
    EXPECT_TRUE(p.contest);
    // Half of the first window, max(2 ms, 4 x the round's 1 ms).
    p = plan_retry(retry_after(10s), true, kContestRetries, round, 10s, 0.5, kNow, kNow + 60s);
    ASSERT_TRUE(p.retry_at);
    EXPECT_EQ(*p.retry_at, kNow + 2ms);
  }
  // A round that found the lock held on every node ends the contest.
  const auto p = plan_retry(retry_after(10s), true, 3, kHeld, 10s, 0.5, kNow, kNow + 60s);
  EXPECT_FALSE(p.contest);
  EXPECT_EQ(*p.retry_at, kNow + 10s);
}

TEST(PlanRetry, ContestWindowsDoubleAndStayWithinTheRetryDelay) {
  EXPECT_EQ(contest_window(0, 100us, 10s), 2ms);  // at least 2 ms
  EXPECT_EQ(contest_window(0, 3ms, 10s), 12ms);   // 4 x the round
  EXPECT_EQ(contest_window(1, 3ms, 10s), 24ms);
  EXPECT_EQ(contest_window(4, 3ms, 10s), 192ms);
  EXPECT_EQ(contest_window(4, 3ms, 50ms), 50ms);
  EXPECT_EQ(contest_window(0, 3ms, 0ms), 0ms);
  EXPECT_EQ(contest_window(30, 1s, std::chrono::hours(1)), std::chrono::hours(1));
  // The k-th retry of a contest: kContestRetries left is the first (k = 0).
  const auto last = plan_retry(retry_after(10s), true, 1, kSawFree, 10s, 0.999, kNow, kNow + 60s);
  ASSERT_TRUE(last.retry_at);
  EXPECT_LE(*last.retry_at, kNow + contest_window(kContestRetries - 1, 1ms, 10s));
  EXPECT_GT(*last.retry_at, kNow + contest_window(kContestRetries - 2, 1ms, 10s));
}

TEST(PlanRetry, AContestPauseIsNeverLaterThanTheJitteredDelay) {
  const auto p =
      plan_retry(retry_after(1ms), true, kContestRetries, kWoken, 1ms, 0.99, kNow, kNow + 60s);
  ASSERT_TRUE(p.retry_at);
  EXPECT_LE(*p.retry_at, kNow + 1ms);
}

TEST(PlanRetry, NotListeningNeverContestsNorWaitsForAnnouncements) {
  auto p =
      plan_retry(retry_after(250ms), false, kContestRetries, kWoken, 250ms, 0.0, kNow, kNow + 10s);
  ASSERT_TRUE(p.retry_at);
  EXPECT_EQ(*p.retry_at, kNow + 250ms);
  EXPECT_FALSE(p.contest);
  p = plan_retry(exhausted(), false, 0, kHeld, 10s, 0.5, kNow, kNow + 10s);
  EXPECT_FALSE(p.retry_at);
  EXPECT_FALSE(p.give_up_at);
}

TEST(PlanRetry, WhenTheDelayWouldPassMaxWaitItWaitsForAnAnnouncementUntilTheDeadline) {
  auto p = plan_retry(exhausted(), true, 0, kHeld, 10s, 0.5, kNow, kNow + 3s);
  EXPECT_FALSE(p.retry_at);
  ASSERT_TRUE(p.give_up_at);
  EXPECT_EQ(*p.give_up_at, kNow + 3s);
  // In a contest it still contests, within the deadline.
  p = plan_retry(exhausted(), true, kContestRetries, kWoken, 10s, 0.5, kNow, kNow + 3s);
  ASSERT_TRUE(p.retry_at);
  EXPECT_EQ(*p.retry_at, kNow + 2ms);  // half of max(2 ms, 4 x 1 ms)
  EXPECT_TRUE(p.contest);
  // A pause that would end past the deadline: wait for an announcement.
  p = plan_retry(exhausted(), true, kContestRetries, kWoken, 10s, 0.5, kNow, kNow + 1ms);
  EXPECT_FALSE(p.retry_at);
  ASSERT_TRUE(p.give_up_at);
  EXPECT_EQ(*p.give_up_at, kNow + 1ms);
}

TEST(PlanRetry, NothingAfterTheDeadlineOrTheLastAttempt) {
  for (const auto& round : {kHeld, kWoken, kSawFree}) {
    for (int contest : {0, kContestRetries}) {
      auto p = plan_retry(exhausted(), true, contest, round, 10s, 0.5, kNow, kNow);
      EXPECT_FALSE(p.retry_at);
      EXPECT_FALSE(p.give_up_at);
      p = plan_retry(exhausted(), true, contest, round, 10s, 0.5, kNow + 1s, kNow);
      EXPECT_FALSE(p.retry_at);
      EXPECT_FALSE(p.give_up_at);
      // max_attempts reached, or a try-lock: next_retry said stop.
      p = plan_retry(stop(), true, contest, round, 10s, 0.5, kNow, kNow + 10s);
      EXPECT_FALSE(p.retry_at);
      EXPECT_FALSE(p.give_up_at);
    }
  }
}

TEST(WaitDeadline, StartPlusMaxWaitOrNone) {
  EXPECT_EQ(wait_deadline(kNow, 1500ms), kNow + 1500ms);
  EXPECT_EQ(wait_deadline(kNow, 0ms), Clock::time_point::max());
  EXPECT_EQ(wait_deadline(kNow, milliseconds::max()), Clock::time_point::max());
  // Larger than what is left of the clock's range: no overflow.
  EXPECT_EQ(wait_deadline(
                kNow, std::chrono::duration_cast<milliseconds>(std::chrono::hours(24 * 365 * 300))),
            Clock::time_point::max());
}

}  // namespace
}  // namespace redlock::detail
