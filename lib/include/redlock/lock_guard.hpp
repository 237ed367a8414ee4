// redlock/lock_guard.hpp: LockGuard, a move-only owner of a granted Lock.
//
// The destructor releases the lock asynchronously: it never throws and never
// blocks. release() releases now and reports the outcome. A guard may outlive
// its Client: its release then fails with kShuttingDown and the lock expires
// with its ttl. A guard is not itself thread-safe; use it from one thread.
#pragma once

#include <memory>
#include <optional>

#include "redlock/client.hpp"
#include "redlock/lock.hpp"
#include "redlock/result.hpp"

namespace redlock {

class LockGuard {
 public:
  LockGuard() noexcept = default;
  LockGuard(Client& client, Lock lock);
  ~LockGuard();

  LockGuard(LockGuard&& other) noexcept;
  LockGuard& operator=(LockGuard&& other) noexcept;
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

  [[nodiscard]] bool owns_lock() const noexcept { return lock_.has_value(); }
  explicit operator bool() const noexcept { return owns_lock(); }
  // Precondition: owns_lock().
  [[nodiscard]] const Lock& lock() const noexcept { return *lock_; }

  // Releases now and waits for the outcome; the guard is empty afterwards,
  // whatever the outcome. Errors: kInvalidArgument (empty guard),
  // kShuttingDown, kWrongThread.
  [[nodiscard]] Result<ReleaseReport> release();
  // Hands the lock back without releasing it; the guard is empty afterwards.
  [[nodiscard]] std::optional<Lock> dismiss() noexcept;

 private:
  void release_async() noexcept;

  std::weak_ptr<detail::Engine> engine_;
  std::optional<Lock> lock_;
};

}  // namespace redlock
