// redlock/lock.hpp: Lock, a granted lock as a plain value.
//
// A Lock names the resource, the random token that proves ownership and the
// steady-clock instant until which the lock is valid. It owns nothing: copying
// or dropping a Lock does not release it (see LockGuard for that). Thread-safe
// like any immutable value.
#pragma once

#include <chrono>
#include <cstdint>
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
       std::vector<NodeResult> votes = {}, std::chrono::milliseconds ttl = {},
       std::uint64_t fence = 0)
      : token_(std::move(token)),
        valid_until_(valid_until),
        votes_(std::move(votes)),
        ttl_(ttl),
        fence_(fence) {
    resources_.push_back(std::move(resource));
  }
  // A lock on several resources at once (Client::acquire_all).
  Lock(std::vector<std::string> resources, std::string token, Clock::time_point valid_until,
       std::vector<NodeResult> votes = {}, std::chrono::milliseconds ttl = {},
       std::uint64_t fence = 0)
      : resources_(std::move(resources)),
        token_(std::move(token)),
        valid_until_(valid_until),
        votes_(std::move(votes)),
        ttl_(ttl),
        fence_(fence) {}

  // The resource locked; for a lock on several resources, the first of them.
  [[nodiscard]] const std::string& resource() const noexcept {
    static const std::string kNone;
    return resources_.empty() ? kNone : resources_.front();
  }
  // Every resource the lock covers, in the order they were asked for.
  [[nodiscard]] const std::vector<std::string>& resources() const noexcept { return resources_; }
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
  // What each node answered in the round that granted (or last extended) the
  // lock, in ClientOptions::nodes order (kPending: had not answered when it
  // was decided).
  [[nodiscard]] const std::vector<NodeResult>& votes() const noexcept { return votes_; }
  // The ttl it was granted (or last extended) with; 0 if unknown.
  [[nodiscard]] std::chrono::milliseconds ttl() const noexcept { return ttl_; }
  // The fencing token: larger than that of every earlier holder of any of
  // the resources, so a resource that remembers the largest fence it has
  // seen can refuse a holder that lost the lock without knowing (paused past
  // its validity, say). Pass it with every write the lock protects. 0 when
  // ClientOptions::fencing is off. Values are near the nodes' clocks in
  // microseconds since the epoch (docs/guarantees.md, "Fencing tokens").
  [[nodiscard]] std::uint64_t fence() const noexcept { return fence_; }

 private:
  std::vector<std::string> resources_;
  std::string token_;
  Clock::time_point valid_until_{};
  std::vector<NodeResult> votes_;
  std::chrono::milliseconds ttl_{0};
  std::uint64_t fence_ = 0;
};

// What a release did on each node. Releasing is idempotent: a token that no
// longer holds a key (expired, released before, never set) deletes nothing.
struct ReleaseReport {
  int deleted = 0;  // nodes on which the key was deleted
  // ClientOptions::nodes order. kRefused: nothing to delete there. kPending:
  // no answer yet when a majority had deleted the key (ClientOptions::
  // release_wait); its delete is still on its way.
  std::vector<NodeResult> nodes;
};

// What the nodes say of a resource (Client::inspect). Read-only: nothing is
// taken or changed on any node.
struct LockState {
  bool held = false;        // a majority of the nodes hold a lock on it
  std::size_t holding = 0;  // nodes that answered and hold one
  std::size_t free = 0;     // nodes that answered and hold none
  // When held: how long a majority still holds it by the nodes' ttls (the
  // quorum-th longest remaining ttl); 0 when not held. A key without a ttl
  // (set by something other than this library) counts as holding for ever:
  // std::chrono::milliseconds::max().
  std::chrono::milliseconds ttl{0};
};

}  // namespace redlock
