// wake.hpp: wake-on-release, the pure parts.
//
// A release (the release script) announces each key it deleted with PUBLISH
// on the channel "redlock:released:<key>". A waiting acquire listens on its
// keys' channels and starts its next round as soon as an announcement comes,
// instead of sleeping out its jittered retry delay. These are the parts
// without I/O: the channel names, the reference-counted table of who listens
// to what, the reading of subscribed-mode replies, and when to retry.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.hpp"
#include "rules.hpp"

namespace redlock::detail {

// The prefix of every announcement channel (the README's ACL section names
// it: a user needs &redlock:released:* to subscribe and to publish).
inline constexpr std::string_view kReleaseChannelPrefix = "redlock:released:";

[[nodiscard]] std::string release_channel(std::string_view key);

// Which listeners want which channels. A channel is subscribed while it has
// at least one listener: add() says when the first one comes (SUBSCRIBE),
// remove() when the last one goes (UNSUBSCRIBE).
class ChannelTable {
 public:
  using ListenerId = std::uint64_t;

  // True when `channel` had no listener before. Adding a pair twice is a
  // no-op (false).
  bool add(const std::string& channel, ListenerId listener);
  // True when `listener` was the channel's last one. Removing a pair that is
  // not there is a no-op (false).
  bool remove(const std::string& channel, ListenerId listener);

  // The channel's listeners, in id order (a copy: waking one may change the
  // table).
  [[nodiscard]] std::vector<ListenerId> listeners(const std::string& channel) const;
  // Every channel with a listener, in order (to subscribe after a reconnect).
  [[nodiscard]] std::vector<std::string> channels() const;
  [[nodiscard]] bool contains(const std::string& channel) const;
  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }
  [[nodiscard]] bool empty() const noexcept { return map_.empty(); }

 private:
  std::map<std::string, std::set<ListenerId>, std::less<>> map_;
};

// A reply read on a connection in subscribed mode (RESP2).
struct PushEvent {
  enum class Kind : std::uint8_t {
    kMessage,      // ["message", channel, payload]
    kSubscribe,    // ["subscribe", channel, count]
    kUnsubscribe,  // ["unsubscribe", channel, count]
    kError,        // an error reply (NOPERM for a channel the ACL denies, ...)
    kOther         // anything else (a PONG, a pattern message, ...): ignored
  };
  Kind kind = Kind::kOther;
  std::string channel;  // kMessage, kSubscribe, kUnsubscribe
  std::string error;    // kError: the error text
};

[[nodiscard]] PushEvent read_push(const Reply& reply);

// SUBSCRIBE or UNSUBSCRIBE of `channels`, as wire commands of at most
// `per_command` channels each (none for no channels).
[[nodiscard]] std::vector<std::string> subscription_commands(
    std::string_view verb, const std::vector<std::string>& channels, std::size_t per_command = 512);

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
