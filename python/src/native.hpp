// native.hpp: the C++ side of the redlock Python package (redlock._native).
//
// NativeClient owns a redlock::Client and a Dispatcher; NativeLock holds one
// granted lock, plain or kept alive by the engine (a LockGuard). The Python
// package (redlock/*.py) validates arguments, converts seconds to integer
// milliseconds and shapes the API; this layer runs the engine.
//
// Errors: engine errors are returned, not raised, as EngineError values
// (code, message, nodes) that the Python layer turns into exceptions. This
// layer never runs Python code on a thread that did not ask for it, and a
// daemon thread the interpreter ends at exit (Python 3.11 makes it unwind
// from wherever it takes the GIL next) is never inside a call back into
// Python from here, where the unwinding would drop references without the
// GIL. Bad arguments raise ValueError/TypeError (pybind11, no Python code).
//
// Threading and the GIL:
//  - The GIL guards every member of NativeClient and NativeLock, including
//    the redlock::Client pointer and the table of asyncio targets: every
//    access holds it. (This module is built for the GIL-ful CPython.)
//  - The engine's loop thread never takes the GIL. Its callbacks fill a
//    Pending, which a blocked caller waits for with the GIL released, or push
//    a task to the Dispatcher, whose thread takes the GIL and hands the outcome
//    to the asyncio loop that asked (loop.call_soon_threadsafe).
//  - close() takes the redlock::Client out under the GIL, then releases the
//    GIL to destroy it (pending operations complete with kShuttingDown, the
//    loop thread is joined) and to stop the dispatcher, which delivers those
//    outcomes before it ends.
//  - After fork() the child has neither thread and may have inherited their
//    mutexes locked: a NativeClient or NativeLock made before the fork refuses
//    every call there and, when destroyed, leaks the engine instead of
//    touching it.
#pragma once

#include <pybind11/pybind11.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <unordered_map>
#include <vector>

#include "dispatcher.hpp"
#include "handoff.hpp"
#include "redlock/redlock.hpp"

namespace redlock::python {

namespace py = pybind11;
using detail::SpinGate;

// What a lock object asks of each acquire; built once per Python lock.
// Durations in milliseconds, already checked by the Python layer (and again
// here: negative or absurd values are refused with ValueError).
struct AcquireSpec {
  std::int64_t ttl_ms = 10000;
  std::int64_t retry_delay_ms = 100;
  std::int64_t retry_jitter_ms = 50;
  std::int64_t min_validity_ms = 1;
  std::int64_t node_timeout_ms = 0;
  bool wake_on_release = true;
  bool contest_gate = false;
  // Automatic extension (a LockGuard made with AutoExtendOptions).
  bool auto_extend = false;
  double extend_at_remaining = 0.5;
  std::int64_t extend_ttl_ms = 0;
  int max_extensions = 100;
  std::int64_t max_hold_ms = 0;

  // max_wait_ms: -1 waits for ever, 0 makes a single round.
  [[nodiscard]] AcquireOptions options(std::int64_t max_wait_ms) const;
  [[nodiscard]] AutoExtendOptions keep() const;
};

class NativeClient;

// An engine error as a plain value (redlock::Error): code, message and what
// each node answered, as (node, status, detail, rtt seconds) tuples.
struct EngineError {
  int code = 0;
  std::string message;
  py::tuple nodes;
};

// One granted lock. Not thread-safe by itself: the GIL guards it.
class NativeLock {
 public:
  NativeLock(std::weak_ptr<NativeClient> owner, Lock lock);
  NativeLock(std::weak_ptr<NativeClient> owner, LockGuard guard);
  ~NativeLock();
  NativeLock(NativeLock&&) noexcept = default;
  NativeLock& operator=(NativeLock&&) = delete;
  NativeLock(const NativeLock&) = delete;
  NativeLock& operator=(const NativeLock&) = delete;

  // The lock as it stands now (an automatic extension moves valid_until).
  [[nodiscard]] Lock current() const;
  [[nodiscard]] bool released() const noexcept { return released_; }
  [[nodiscard]] bool auto_extended() const noexcept { return guard_.has_value(); }
  [[nodiscard]] bool lost() const noexcept { return guard_ && guard_->lost(); }
  [[nodiscard]] std::optional<Error> lost_error() const;
  // For a release: stops the automatic extension and marks the lock
  // released; returns what to release. Precondition: !released().
  [[nodiscard]] Lock take();
  // After a successful extend() of a plain lock.
  void update(Lock extended);
  // Releases in the background through the client that granted it, if it
  // is still open; never raises. For a lock nobody will use (its waiter was
  // cancelled).
  void abandon() noexcept;

 private:
  std::weak_ptr<NativeClient> owner_;
  Lock lock_;                       // plain locks; the guard's first grant otherwise
  std::optional<LockGuard> guard_;  // automatic extension
  bool released_ = false;
  pid_t pid_;
};

// The handle of an asynchronous acquire: cancel() from any thread.
struct AsyncOp {
  std::stop_source stop;
  void cancel() { stop.request_stop(); }
};

class NativeClient : public std::enable_shared_from_this<NativeClient> {
 public:
  ~NativeClient();
  NativeClient(const NativeClient&) = delete;
  NativeClient& operator=(const NativeClient&) = delete;

  // Connects with the GIL released; returns the client or an EngineError.
  // `log_level` is a Python logging level: the engine's records at or above
  // it go to logging.getLogger("redlock").
  [[nodiscard]] static py::object connect(ClientOptions options, int log_level);

  // Blocking, with the GIL released; on the main thread Python's signal
  // handlers run while it waits, and one that raises (Ctrl-C) cancels the
  // acquire (a grant that raced it is released) and propagates. Returns a
  // NativeLock or an EngineError.
  py::object acquire(const std::string& resource, const AcquireSpec& spec,
                     std::int64_t max_wait_ms);
  // The same, answered by loop.call_soon_threadsafe(callback, outcome) where
  // outcome is a NativeLock or an EngineError. Returns an AsyncOp, or an
  // EngineError for a call refused at once (closed), which never calls back.
  py::object acquire_async(const std::string& resource, const AcquireSpec& spec,
                           std::int64_t max_wait_ms, py::object loop, py::object callback);

  // Releases (waits up to ClientOptions::release_timeout). Returns
  // (deleted, nodes) like ReleaseReport, or an EngineError.
  py::object release(NativeLock& lock);
  // Returns None, or an EngineError (then it never calls back).
  py::object release_async(NativeLock& lock, py::object loop, py::object callback);
  // Whether `resource` is locked (Client::inspect), with the GIL released:
  // (held, holding, free, ttl_ms) or an EngineError; ttl_ms is None for a
  // key without a ttl.
  py::object inspect(const std::string& resource, std::int64_t timeout_ms);
  // The same, settled on `loop` through `callback`.
  py::object inspect_async(const std::string& resource, std::int64_t timeout_ms, py::object loop,
                           py::object callback);
  // What the client knows of each node and whether a lock can be granted
  // (Client::health), with the GIL released: a dict (quorum, voting,
  // quorum_available, nodes: a dict per node) or an EngineError.
  py::object health(std::int64_t timeout_ms);
  // Fire and forget; never raises (a closed client lets the key expire).
  void release_nowait(NativeLock& lock) noexcept;

  // extend() of a plain lock: `lock` then carries the new validity.
  // Returns None or an EngineError (the async form: then no call back).
  py::object extend(NativeLock& lock, std::int64_t ttl_ms, bool recreate_missing,
                    std::int64_t min_validity_ms, std::int64_t node_timeout_ms);
  py::object extend_async(py::object lock, std::int64_t ttl_ms, bool recreate_missing,
                          std::int64_t min_validity_ms, std::int64_t node_timeout_ms,
                          py::object loop, py::object callback);

  // Idempotent. Pending operations complete with ShuttingDown (their keys
  // are released by the engine); granted locks are left to expire.
  void close();
  [[nodiscard]] bool closed() const noexcept { return client_ == nullptr; }
  // True in a child process forked after this client was made.
  [[nodiscard]] bool forked() const noexcept;

  // The engine, or null with *why set (closed, or forked).
  [[nodiscard]] Client* usable(Error* why);
  // The nodes as given (passwords shown as ***); kept after close().
  [[nodiscard]] const std::vector<std::string>& node_names() const noexcept { return nodes_; }

 private:
  struct Target {
    py::object loop;
    py::object callback;
    py::object subject;  // the NativeLock an extend updates
  };

  NativeClient() = default;
  std::uint64_t add_target(py::object loop, py::object callback, py::object subject);
  // Dispatcher thread, GIL held.
  void finish_acquire(std::uint64_t id, Result<Lock> result,
                      const std::optional<AutoExtendOptions>& keep);
  void finish_extend(std::uint64_t id, Result<Lock> result);
  void settle(std::uint64_t id, py::object value);
  void discard(const py::object& value) noexcept;
  [[nodiscard]] py::object make_lock(Lock lock, const std::optional<AutoExtendOptions>& keep);
  void fail_targets();

  // Declaration order is destruction order: the engine goes before the
  // dispatcher its callbacks push to (the destructor does both explicitly).
  std::shared_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Client> client_;
  std::vector<std::string> nodes_;
  std::unordered_map<std::uint64_t, Target> targets_;
  std::uint64_t next_id_ = 1;
  // Whether a blocking call spins before it sleeps (ClientOptions::
  // blocking_spin), as the library's own blocking calls do.
  std::unique_ptr<SpinGate> spin_gate_;
  bool closing_ = false;
  pid_t pid_ = 0;
};

// `error` as an EngineError value.
[[nodiscard]] py::object make_error(const Error& error);

// How many threads are inside a blocking call now (the package waits for
// them to leave at interpreter exit, after closing every client).
[[nodiscard]] int blocking_calls() noexcept;
// Records the main thread, whose waits run Python's signal handlers.
void set_main_thread(unsigned long ident) noexcept;

[[nodiscard]] py::tuple node_results(const std::vector<NodeResult>& nodes);

}  // namespace redlock::python
