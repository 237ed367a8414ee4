// redlock/lock.hpp: Lock, a granted lock as a plain value.
//
// A Lock names the resource, the random token that proves ownership and the
// steady-clock instant until which the lock is valid. It owns nothing: copying
// or dropping a Lock does not release it (see LockGuard for that). Thread-safe
// like any immutable value.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "redlock/error.hpp"

namespace redlock {

class Lock {
 public:
  using Clock = std::chrono::steady_clock;

  Lock() = default;
  Lock(std::string resource, std::string token, Clock::time_point valid_until,
       std::vector<NodeResult> votes = {})
      : resource_(std::move(resource)),
        token_(std::move(token)),
        valid_until_(valid_until),
        votes_(std::move(votes)) {}

  [[nodiscard]] const std::string& resource() const noexcept { return resource_; }
  // 32 hex characters: 128 bits from the operating system's CSPRNG.
  [[nodiscard]] const std::string& token() const noexcept { return token_; }
  // After this instant the lock must be assumed lost. It already accounts for
  // the time the acquire took and for clock drift.
  [[nodiscard]] Clock::time_point valid_until() const noexcept { return valid_until_; }
  // Time left until valid_until(), never negative.
  [[nodiscard]] std::chrono::milliseconds remaining() const noexcept {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(valid_until_ - Clock::now());
    return left.count() > 0 ? left : std::chrono::milliseconds(0);
  }
  [[nodiscard]] bool expired() const noexcept { return Clock::now() >= valid_until_; }
  // What each node answered in the round that granted the lock, in
  // ClientOptions::nodes order (kPending: had not answered when it was decided).
  [[nodiscard]] const std::vector<NodeResult>& votes() const noexcept { return votes_; }

 private:
  std::string resource_;
  std::string token_;
  Clock::time_point valid_until_{};
  std::vector<NodeResult> votes_;
};

}  // namespace redlock
