// redlock/lock_guard.hpp: LockGuard, a move-only owner of a granted Lock.
//
// The destructor releases the lock asynchronously: it never throws and never
// blocks. release() releases now and reports the outcome. A guard may outlive
// its Client: its release then fails with kShuttingDown and the lock expires
// with its ttl. A guard is not itself thread-safe; use it from one thread,
// except lost(), lost_error(), lock() and stop_token(), which any thread may
// call while the guard lives.
//
// A guard made with AutoExtendOptions keeps its lock alive: the engine
// extends it on its loop thread until the guard releases it or the lock is
// lost, which it signals exactly once (lost(), the stop token, on_lost).
#pragma once

#include <memory>
#include <optional>
#include <stop_token>

#include "redlock/export.hpp"
#include "redlock/lock.hpp"
#include "redlock/options.hpp"
#include "redlock/result.hpp"

namespace redlock {

class Client;

namespace detail {
class Engine;
class KeepAlive;
}  // namespace detail

class REDLOCK_EXPORT LockGuard {
 public:
  LockGuard() noexcept = default;
  LockGuard(Client& client, Lock lock);
  // Starts automatic extension of `lock` (its own keys, e.g. from
  // acquire_all). Errors: kInvalidArgument (options), kShuttingDown.
  [[nodiscard]] static Result<LockGuard> keep_alive(Client& client, Lock lock,
                                                    const AutoExtendOptions& options);
  ~LockGuard();

  LockGuard(LockGuard&& other) noexcept;
  LockGuard& operator=(LockGuard&& other) noexcept;
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

  [[nodiscard]] bool owns_lock() const noexcept { return lock_.has_value(); }
  explicit operator bool() const noexcept { return owns_lock(); }
  // The lock as it stands now (its valid_until moves with each automatic
  // extension). Precondition: owns_lock().
  [[nodiscard]] Lock lock() const;

  // Auto-extended guards: whether the lock was lost, and why. Always false
  // and empty for a guard without automatic extension. Once lost() is true,
  // lost_error() is set and the stop token has been requested.
  [[nodiscard]] bool lost() const noexcept;
  [[nodiscard]] std::optional<Error> lost_error() const;
  // Requested when the lock is lost (never, without automatic extension).
  [[nodiscard]] std::stop_token stop_token() const noexcept;

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
  std::shared_ptr<detail::KeepAlive> keep_alive_;
};

}  // namespace redlock
