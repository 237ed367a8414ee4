// rules.hpp: Redlock's rules as pure functions and a pure round tally.
//
// No I/O and no clock reads: every instant is passed in, so the rules are
// unit-tested by feeding values (the way hiredis's redisReader is a feed/get
// parser with no socket). The engine drives these with steady_clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "redlock/error.hpp"

namespace redlock::detail {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// Votes needed out of n: a strict majority.
[[nodiscard]] constexpr std::size_t quorum(std::size_t n) noexcept { return n / 2 + 1; }

// ttl * drift_factor + 2 ms: what the Redlock spec subtracts for clock drift.
[[nodiscard]] microseconds drift_allowance(milliseconds ttl, double drift_factor) noexcept;

// ttl - elapsed - drift_allowance; negative when the grant came too late.
[[nodiscard]] microseconds validity(milliseconds ttl, Clock::duration elapsed,
                                    double drift_factor) noexcept;

// The per-node timeout to use for a lock of `ttl`: `configured` if non-zero,
// otherwise ttl / 200 within [kMinAutoNodeTimeout, kMaxAutoNodeTimeout].
inline constexpr milliseconds kMinAutoNodeTimeout{10};
inline constexpr milliseconds kMaxAutoNodeTimeout{250};
[[nodiscard]] milliseconds effective_node_timeout(milliseconds configured,
                                                  milliseconds ttl) noexcept;

// One acquire round over n nodes. Fed each node's answer as it arrives; it is
// decided as soon as a majority said yes or a majority became impossible, so
// the caller never waits for the slowest node.
class Round {
 public:
  enum class State : std::uint8_t { kOpen, kGranted, kFailed };

  // `refused` is the failure when any node refused: kHeldByAnother for an
  // acquire, kNotOwner for an extension.
  Round(std::size_t n, Clock::time_point start, milliseconds ttl, double drift_factor,
        milliseconds min_validity, ErrorCode refused = ErrorCode::kHeldByAnother);

  // Records node's answer. A second answer from the same node, or any answer
  // after the round was decided, is ignored. `status` must not be kPending.
  void vote(std::size_t node, NodeStatus status, Clock::time_point now);
  // The node timeout fired: every node that has not answered votes kTimeout.
  void expire(Clock::time_point now);

  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] bool decided() const noexcept { return state_ != State::kOpen; }
  // Granted: the instant the lock stops being valid (start + ttl - drift).
  [[nodiscard]] Clock::time_point valid_until() const noexcept { return valid_until_; }
  // Granted or kValidityExhausted: the validity computed at the deciding vote.
  [[nodiscard]] microseconds validity_at_decision() const noexcept { return validity_; }
  // Failed: the `refused` code when any node refused (kHeldByAnother: the
  // key exists there), kValidityExhausted when a majority agreed too late,
  // else kNoQuorum.
  [[nodiscard]] ErrorCode failure() const noexcept { return failure_; }
  [[nodiscard]] const std::vector<NodeStatus>& votes() const noexcept { return votes_; }
  [[nodiscard]] std::size_t yes() const noexcept { return yes_; }
  [[nodiscard]] std::size_t no() const noexcept { return no_; }
  [[nodiscard]] std::size_t refused() const noexcept { return refused_; }
  [[nodiscard]] Clock::time_point start() const noexcept { return start_; }

 private:
  void decide(Clock::time_point now);

  std::vector<NodeStatus> votes_;
  Clock::time_point start_;
  milliseconds ttl_;
  double drift_factor_;
  milliseconds min_validity_;
  std::size_t quorum_;
  ErrorCode refused_code_;
  std::size_t yes_ = 0;
  std::size_t no_ = 0;
  std::size_t refused_ = 0;
  State state_ = State::kOpen;
  ErrorCode failure_ = ErrorCode::kNoQuorum;
  microseconds validity_{0};
  Clock::time_point valid_until_{};
};

// Restart-aware voting. A node that restarted may have lost the keys it held,
// so it must not help grant a lock that a client could still hold from before
// the restart: it does not vote for `grace` (the largest ttl handed out plus
// the drift allowance) after the restart. The client notices a restart by a
// new run_id; a node it meets for the first time is judged by its uptime.
struct VotingDecision {
  // When the node may vote again (a past instant: at once).
  Clock::time_point votes_from{};
  // The run_id changed since the last handshake.
  bool restarted = false;
};

// `previous_run_id`: what the last handshake saw ("" for the first one).
// `uptime`: INFO's uptime_in_seconds, whole seconds rounded down (unset when
// unknown). `current_votes_from`: the node's present rule, kept when nothing
// new is learnt (a reconnect to the same process does not lift a wait).
[[nodiscard]] VotingDecision restart_rule(std::string_view previous_run_id, std::string_view run_id,
                                          std::optional<std::chrono::seconds> uptime,
                                          milliseconds grace, Clock::time_point now,
                                          Clock::time_point current_votes_from) noexcept;

// The value of `field` in an INFO reply ("field:value" lines), if present.
[[nodiscard]] std::optional<std::string_view> info_field(std::string_view info,
                                                         std::string_view field) noexcept;

// Capped exponential reconnect backoff with "equal jitter": the nominal delay
// min * 2^failures, capped at max, of which the upper half is randomised.
// Result within [nominal / 2, nominal].
[[nodiscard]] milliseconds reconnect_delay(int failures, milliseconds min, milliseconds max,
                                           double unit_random) noexcept;

}  // namespace redlock::detail
