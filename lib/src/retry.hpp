// retry.hpp: when a failed acquire round is tried again, as pure functions.
//
// The jittered retry of the Redlock spec (next_retry), bounded by
// max_attempts and max_wait, and what wake-on-release changes in it
// (plan_retry): a waiter woken by a release announcement retries at once, and
// woken waiters that split the vote retry after short random pauses. No I/O
// and no clock reads: every instant is passed in.
#pragma once

#include <chrono>
#include <optional>

#include "rules.hpp"

namespace redlock::detail {

// When to try again after a failed round.
struct RetryPolicy {
  milliseconds max_wait{0};
  int max_attempts = 0;
  milliseconds delay{0};
  milliseconds jitter{0};
};

struct RetryDecision {
  // Set: start the next round after this long. Unset: stop.
  std::optional<milliseconds> delay;
  // Unset delay because max_wait ran out (the error becomes kLockWaitTimeout).
  bool wait_exhausted = false;
};

// `attempts_done` rounds have failed since `call_start`. `unit_random` is a
// uniform number in [0, 1) that places the delay within the jitter band.
[[nodiscard]] RetryDecision next_retry(const RetryPolicy& policy, int attempts_done,
                                       Clock::time_point call_start, Clock::time_point now,
                                       double unit_random) noexcept;

// After an announcement several waiters may have been woken at once, and
// their rounds can split the nodes so that none gets a majority (each
// failed round then releases what it got, quietly). So for a few retries
// after an announcement (a "contest"), a round that failed while the lock
// may be free is retried after a short random pause, not after retry_delay:
// the pause desynchronises the contenders, as the Redlock spec's random
// retry delay does, at the scale of a round instead of retry_delay. Each
// contest retry doubles the pause window.
inline constexpr int kContestRetries = 5;
inline constexpr milliseconds kContestMinWindow{2};

// The window of the k-th contest pause (k from 0): 2^k * max(2 ms, 4 x the
// failed round's duration), at most retry_delay.
[[nodiscard]] milliseconds contest_window(int k, Clock::duration round_took,
                                          milliseconds retry_delay) noexcept;

// How a failed acquire round went, for plan_retry.
struct FailedRound {
  // An announcement came while it was open (or during the pause before it):
  // a node may have deleted the key after refusing this round.
  bool woken = false;
  // At least one node granted it: a split vote between woken waiters, or
  // the holder's release still under way on the other nodes.
  bool saw_free = false;
  Clock::duration took{};  // start to decision
};

// What a failed acquire round that may be retried leads to.
struct RetryPlan {
  // Start the next round at this instant.
  std::optional<Clock::time_point> retry_at;
  // No retry is planned, but wait until this instant for an announcement
  // (which starts a round); give up then.
  std::optional<Clock::time_point> give_up_at;
  // retry_at is a contest retry (it uses one of contest_left): brought
  // forward because of an announcement.
  bool contest = false;
};

// `next`: next_retry's decision after the failed round, at `now`.
// `listening`: the acquire listens for announcements of its keys.
// `contest_left`: contest retries left (0: not in a contest).
// `unit_random`: uniform in [0, 1), places the contest pause in its window.
// `deadline`: the call's start + max_wait (time_point::max() for none).
//
// - In a contest, when the round was woken or saw the lock free, and a
//   retry is allowed (next_retry gave a delay, or stopped only because the
//   delay would end past max_wait): a contest retry after a pause within
//   contest_window, never later than next_retry's delay, and only if it
//   starts before the deadline.
// - Otherwise next_retry's delay, if it gave one.
// - Otherwise, if it stopped because the jittered delay would end past
//   max_wait, the acquire listens and the deadline is still ahead: wait for
//   an announcement until the deadline (the round it starts still begins
//   within max_wait).
// - Anything else (max_attempts reached, max_wait gone, a try-lock, not
//   listening): neither; the acquire ends now.
[[nodiscard]] RetryPlan plan_retry(const RetryDecision& next, bool listening, int contest_left,
                                   const FailedRound& round, milliseconds retry_delay,
                                   double unit_random, Clock::time_point now,
                                   Clock::time_point deadline) noexcept;

// call_start + max_wait, or time_point::max() when there is no time budget
// (max_wait 0) or it reaches past what a time_point holds.
[[nodiscard]] Clock::time_point wait_deadline(Clock::time_point call_start,
                                              milliseconds max_wait) noexcept;

}  // namespace redlock::detail
