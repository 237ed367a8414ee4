// redlock/client.hpp: Client, the Redlock engine.
//
// A Client owns one libuv event loop on a thread of its own and one persistent
// connection per node. Every method is thread-safe. Asynchronous callbacks run
// on the loop thread, exactly once, never inline from the call that started
// the operation; a call that returns an error never calls back. Callbacks must
// not block: the blocking methods refuse to run on the loop thread
// (ErrorCode::kWrongThread).
//
// Destroying the Client shuts it down: new calls are refused with
// kShuttingDown, operations in flight complete with kShuttingDown (keys an
// unfinished acquire may have set are released), connections are closed and
// the loop thread is joined. Locks already granted are not released by the
// shutdown; they expire with their ttl.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "redlock/callbacks.hpp"
#include "redlock/export.hpp"
#include "redlock/health.hpp"
#include "redlock/lock.hpp"
#include "redlock/lock_guard.hpp"
#include "redlock/metrics.hpp"
#include "redlock/options.hpp"
#include "redlock/result.hpp"

namespace redlock {

namespace detail {
class Engine;
}

class REDLOCK_EXPORT Client {
 public:
  // Validates the options, starts the loop thread and connects to every node,
  // waiting up to connect_timeout for the first connections. Nodes that are
  // down do not make this fail: they are retried in the background.
  // Errors: kInvalidArgument (options), kInternal (the loop could not start).
  [[nodiscard]] static Result<std::unique_ptr<Client>> connect(ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Takes the lock on `resource` for `ttl`, retrying as `options` says.
  // Blocking. Errors: kInvalidArgument, kHeldByAnother, kNoQuorum,
  // kValidityExhausted, kLockWaitTimeout, kShuttingDown, kWrongThread.
  [[nodiscard]] Result<Lock> acquire(std::string_view resource, std::chrono::milliseconds ttl,
                                     const AcquireOptions& options = {});
  // The same, with the outcome handed to `callback` on the loop thread.
  // Returns kInvalidArgument or kShuttingDown at once (and never calls back).
  [[nodiscard]] Result<void> async_acquire(std::string_view resource, std::chrono::milliseconds ttl,
                                           const AcquireOptions& options, AcquireCallback callback);
  // The same, with the outcome in a future (errors included).
  [[nodiscard]] std::future<Result<Lock>> async_acquire(std::string_view resource,
                                                        std::chrono::milliseconds ttl,
                                                        const AcquireOptions& options = {});
  // Several resources as one lock: on each node one script sets all of the
  // keys or none, and the node votes yes only if it set all of them. Release
  // and extend work on the whole set. Errors as acquire(), and
  // kInvalidArgument for an empty set, duplicates or more than kMaxResources.
  // With a cluster:// node, every resource of the set must lie in one hash
  // slot (kInvalidArgument otherwise, naming two that do not): give the
  // names a common {hash tag}, as in "{order:42}:items", "{order:42}:payment".
  static constexpr std::size_t kMaxResources = 64;
  [[nodiscard]] Result<Lock> acquire_all(std::vector<std::string> resources,
                                         std::chrono::milliseconds ttl,
                                         const AcquireOptions& options = {});
  [[nodiscard]] Result<void> async_acquire_all(std::vector<std::string> resources,
                                               std::chrono::milliseconds ttl,
                                               const AcquireOptions& options,
                                               AcquireCallback callback);

  // acquire() wrapped in a LockGuard that releases when it goes out of scope.
  [[nodiscard]] Result<LockGuard> acquire_guard(std::string_view resource,
                                                std::chrono::milliseconds ttl,
                                                const AcquireOptions& options = {});
  // The same, kept alive by automatic extension until the guard releases it
  // or the lock is lost (LockGuard::lost(), stop_token(), on_lost).
  [[nodiscard]] Result<LockGuard> acquire_guard(std::string_view resource,
                                                std::chrono::milliseconds ttl,
                                                const AcquireOptions& options,
                                                const AutoExtendOptions& extend);

  // Runs fn(std::stop_token) on the calling thread under an automatically
  // extended lock, then releases it (also when fn throws). The token is
  // requested when the lock is lost. Returns fn's result; kLockLost (fn's
  // result discarded) when the lock was lost while fn ran; acquire's errors
  // when the lock could not be had.
  template <typename Fn>
  auto with_lock(std::string_view resource, std::chrono::milliseconds ttl,
                 const LockOptions& options, Fn&& fn)
      -> Result<std::invoke_result_t<Fn, std::stop_token>>;

  // Extends the lock to `ttl` from now on every node where it still carries
  // the lock's token (atomic compare-and-pexpire). Succeeds only if a
  // majority did so within the lock's remaining validity; the new validity
  // is computed like an acquire's. Blocking. Errors: kExpired (refused
  // without touching the nodes), kNotOwner, kNoQuorum, kValidityExhausted,
  // kInvalidArgument, kShuttingDown, kWrongThread. A failed extension leaves
  // the lock valid until its old valid_until().
  [[nodiscard]] Result<Lock> extend(const Lock& lock, std::chrono::milliseconds ttl,
                                    const ExtendOptions& options = {});
  [[nodiscard]] Result<void> async_extend(const Lock& lock, std::chrono::milliseconds ttl,
                                          const ExtendOptions& options, AcquireCallback callback);
  [[nodiscard]] std::future<Result<Lock>> async_extend(const Lock& lock,
                                                       std::chrono::milliseconds ttl,
                                                       const ExtendOptions& options = {});

  // Deletes the lock's key on every node where it still carries the lock's
  // token (atomic compare-and-delete). Blocking. Errors: kInvalidArgument,
  // kShuttingDown, kWrongThread. Reports as soon as a majority deleted the
  // key, the nodes that have not answered yet as kPending with their deletes
  // still on their way (ClientOptions::release_wait: kEveryNode waits for
  // each); otherwise once every node answered or release_timeout passed.
  // Nodes that are down or late show in the report; a key they keep expires
  // with its ttl. Not [[nodiscard]]: releasing and moving on without looking
  // is a normal use.
  Result<ReleaseReport> release(const Lock& lock);
  [[nodiscard]] Result<void> async_release(const Lock& lock, ReleaseCallback callback);
  [[nodiscard]] std::future<Result<ReleaseReport>> async_release(const Lock& lock);

  // The nodes as ClientOptions::nodes gave them, any password shown as ***.
  [[nodiscard]] const std::vector<std::string>& nodes() const noexcept;
  // Votes needed for a grant: nodes().size() / 2 + 1.
  [[nodiscard]] std::size_t quorum() const noexcept;
  // Whether each node is connected now, in nodes() order.
  [[nodiscard]] std::vector<bool> connected() const;

  // Asks every node for its state (INFO; CONFIG GET appendfsync) and reports
  // it with what the client knows of it (connection, voting, clock), waiting
  // at most `timeout` for the answers; a node that does not answer in time
  // shows as such. Blocking. Errors: kInvalidArgument (timeout not
  // positive), kShuttingDown, kWrongThread.
  [[nodiscard]] Result<HealthReport> health(
      std::chrono::milliseconds timeout = std::chrono::seconds(1));
  // The same, the report handed to `callback` on the loop thread.
  [[nodiscard]] Result<void> async_health(std::chrono::milliseconds timeout,
                                          HealthCallback callback);
  // Whether `resource` is locked now, by anyone, as the nodes see it: held
  // when a majority of the voting nodes hold a lock key for it, free when
  // so many hold none that a majority cannot; read-only (PTTL on each node),
  // answered as soon as it is decided, waiting at most `timeout`. Blocking.
  // Errors: kInvalidArgument (resource, timeout), kNoQuorum (too few voting
  // nodes answered to tell; the error lists each node's answer),
  // kShuttingDown, kWrongThread. A result is a snapshot: by the time it is
  // read the lock may have been taken or released.
  [[nodiscard]] Result<LockState> inspect(
      std::string_view resource, std::chrono::milliseconds timeout = std::chrono::seconds(1));
  // The same, the state handed to `callback` on the loop thread.
  [[nodiscard]] Result<void> async_inspect(std::string_view resource,
                                           std::chrono::milliseconds timeout,
                                           InspectCallback callback);
  // Whether a majority of the nodes votes now (answering, not sitting out a
  // restart grace, clock not excluded), from the client's own state: no I/O,
  // any thread. A readiness check.
  [[nodiscard]] bool quorum_available() const;

  // The engine's counters now (any thread); to_prometheus() renders them.
  [[nodiscard]] MetricsSnapshot metrics() const;

 private:
  friend class LockGuard;
  explicit Client(std::shared_ptr<detail::Engine> engine);
  std::shared_ptr<detail::Engine> engine_;
};

template <typename Fn>
auto Client::with_lock(std::string_view resource, std::chrono::milliseconds ttl,
                       const LockOptions& options, Fn&& fn)
    -> Result<std::invoke_result_t<Fn, std::stop_token>> {
  using Value = std::invoke_result_t<Fn, std::stop_token>;
  auto guard = acquire_guard(resource, ttl, options.acquire, options.extend);
  if (!guard) return Unexpected(guard.error());
  auto lost = [&]() -> Unexpected {
    Error why = guard->lost_error().value_or(Error(ErrorCode::kLockLost, "lock lost"));
    return Unexpected(Error(ErrorCode::kLockLost,
                            "the lock on \"" + std::string(resource) +
                                "\" was lost while the function ran: " + to_string(why),
                            why.nodes()));
  };
  if constexpr (std::is_void_v<Value>) {
    std::forward<Fn>(fn)(guard->stop_token());
    const bool was_lost = guard->lost();
    (void)guard->release();
    if (was_lost) return lost();
    return {};
  } else {
    Value value = std::forward<Fn>(fn)(guard->stop_token());
    const bool was_lost = guard->lost();
    (void)guard->release();
    if (was_lost) return lost();
    return value;
  }
}

}  // namespace redlock
