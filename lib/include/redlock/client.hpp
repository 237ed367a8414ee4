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
#include <vector>

#include "redlock/lock.hpp"
#include "redlock/options.hpp"
#include "redlock/result.hpp"

namespace redlock {

namespace detail {
class Engine;
}

class LockGuard;

// What a release did on each node. Releasing is idempotent: a token that no
// longer holds a key (expired, released before, never set) deletes nothing.
struct ReleaseReport {
  int deleted = 0;                // nodes on which the key was deleted
  std::vector<NodeResult> nodes;  // ClientOptions::nodes order; kRefused: nothing to delete
};

using AcquireCallback = std::function<void(Result<Lock>)>;
using ReleaseCallback = std::function<void(Result<ReleaseReport>)>;

class Client {
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
  // acquire() wrapped in a LockGuard that releases when it goes out of scope.
  [[nodiscard]] Result<LockGuard> acquire_guard(std::string_view resource,
                                                std::chrono::milliseconds ttl,
                                                const AcquireOptions& options = {});

  // Deletes the lock's key on every node where it still carries the lock's
  // token (atomic compare-and-delete). Blocking. Errors: kInvalidArgument,
  // kShuttingDown, kWrongThread. Nodes that are down or late show in the
  // report; their key expires with its ttl. Not [[nodiscard]]: releasing
  // and moving on without looking is a normal use.
  Result<ReleaseReport> release(const Lock& lock);
  [[nodiscard]] Result<void> async_release(const Lock& lock, ReleaseCallback callback);
  [[nodiscard]] std::future<Result<ReleaseReport>> async_release(const Lock& lock);

  [[nodiscard]] const std::vector<std::string>& nodes() const noexcept;
  // Votes needed for a grant: nodes().size() / 2 + 1.
  [[nodiscard]] std::size_t quorum() const noexcept;
  // Whether each node is connected now, in nodes() order.
  [[nodiscard]] std::vector<bool> connected() const;

 private:
  friend class LockGuard;
  explicit Client(std::shared_ptr<detail::Engine> engine);
  std::shared_ptr<detail::Engine> engine_;
};

}  // namespace redlock
