// operation.hpp: what an operation (release, acquire, extend, health) works
// with, as narrow interfaces: the nodes it sends commands to, a scheduler for
// its deadlines, the counters, the log and the options. The Engine provides
// the real ones; a unit test drives an operation with fakes and no Redis.
//
// Threading: the loop thread only. Ownership: an operation is held by
// shared_ptr, by the ActiveOps set while its caller waits for it, and by
// each node's reply queue while a reply is outstanding, so a late reply
// always finds it alive (and is dropped there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "keys.hpp"
#include "loop.hpp"
#include "metrics.hpp"
#include "protocol.hpp"
#include "redlock/callbacks.hpp"
#include "redlock/health.hpp"
#include "redlock/options.hpp"
#include "rules.hpp"

namespace spdlog {
class logger;
}

namespace redlock::detail {

// Something the engine must finish on shutdown.
class Abortable {
 public:
  virtual ~Abortable() = default;
  // The engine is shutting down: complete with kShuttingDown.
  virtual void abort() = 0;
};

// Something that waits for node replies.
class Operation : public Abortable, public std::enable_shared_from_this<Operation> {
 public:
  // The reply to a command sent with `tag` to node `node`. `reply` is null
  // when the command got no answer because the connection failed (`failure`
  // says why). Called exactly once per command sent.
  virtual void on_reply(std::size_t node, std::uint32_t tag, const Reply* reply,
                        std::string_view failure) = 0;
  void abort() override {}
};

// Where on a node a command goes. A plain node is one server: every route
// leads to it. A Redis Cluster node (one vote) sends a command on keys to the
// master of their hash slot, and a command on no key (INFO, TIME) to the
// shard the route names.
class Route {
 public:
  // The master of hash slot `slot`: every key of the command lies in it.
  [[nodiscard]] static constexpr Route slot(unsigned slot) noexcept { return Route(slot); }
  // Shard `k` (a plain node has shard 0 only).
  [[nodiscard]] static constexpr Route shard(std::size_t k) noexcept {
    return Route(kSlotCount + static_cast<std::uint32_t>(k));
  }
  // The slot of every key of `resources` (validate_one_slot() has checked,
  // for a client with a cluster node, that they share it).
  [[nodiscard]] static Route of(const std::vector<std::string>& resources) {
    return slot(resources.empty() ? 0 : resource_slot(resources.front()));
  }

  [[nodiscard]] constexpr bool is_shard() const noexcept { return value_ >= kSlotCount; }
  [[nodiscard]] constexpr unsigned slot_number() const noexcept { return value_; }
  [[nodiscard]] constexpr std::size_t shard_index() const noexcept { return value_ - kSlotCount; }

 private:
  constexpr explicit Route(std::uint32_t value) noexcept : value_(value) {}
  std::uint32_t value_;
};

// The nodes, as operations see them. Index i is ClientOptions::nodes[i].
class NodeSet {
 public:
  virtual ~NodeSet() = default;
  [[nodiscard]] virtual std::size_t size() const = 0;
  // The address with any password hidden: for errors and logs.
  [[nodiscard]] virtual const std::string& name(std::size_t i) const = 0;
  // Queues a command for node i, where `route` leads. Returns false, and
  // never calls back, when the node cannot take it now (not connected, or
  // too far behind): commands are never held for a later connection.
  // `fallback`, for an EVALSHA of one of kAllScripts: that command, shared,
  // whose EVAL form (eval_form) is sent instead of delivering a NOSCRIPT
  // error.
  [[nodiscard]] virtual bool send(std::size_t i, Route route, std::string_view wire,
                                  const std::shared_ptr<Operation>& op, std::uint32_t tag,
                                  const std::shared_ptr<const std::string>& fallback) = 0;
  // Whether node i can take a command for `route` now.
  [[nodiscard]] virtual bool connected(std::size_t i, Route route) const = 0;
  // Why node i cannot take a command for `route` ("" when it can, or when
  // nothing is known).
  [[nodiscard]] virtual std::string last_error(std::size_t i, Route route) const = 0;
  // Set when node i must not count toward a majority for the resources of
  // `route` at `now`: why.
  [[nodiscard]] virtual std::optional<std::string> vote_block(std::size_t i, Route route,
                                                              Clock::time_point now) const = 0;
  // Releases on node i announce with SPUBLISH (sharded pub/sub, a Redis
  // Cluster node) rather than PUBLISH.
  [[nodiscard]] virtual bool announce_sharded(std::size_t i) const = 0;
  // What the client knows of node i now (health(): no I/O).
  [[nodiscard]] virtual NodeHealth health(std::size_t i, Clock::time_point now) const = 0;
  // Keys this client may have left on node i while it was unreachable: they
  // are released (compare-and-delete) when it is connected again.
  virtual void remember_cleanup(std::size_t i, std::vector<std::string> keys, std::string token,
                                Clock::time_point until) = 0;
};

// Who hears a watch's announcements (an acquire that waits).
class ReleaseListener {
 public:
  // `node` announced a release of a watched resource. `gated`: whether a
  // listener of this client called before this one (in watch order) for
  // the same announcement has a gated round on its way to that node
  // (AcquireOptions::contest_gate). Answers whether this one has one itself.
  virtual bool on_release_announced(std::size_t node, bool gated) = 0;

 protected:
  ~ReleaseListener() = default;
};

// Release announcements (wake-on-release): the listener hears each time a
// node announces the release of one of `resources`, until unwatch(id, the
// same resources).
class ReleaseWatch {
 public:
  using WatchId = std::uint64_t;  // 0: not watching
  virtual ~ReleaseWatch() = default;
  // Held weakly, without a heap block of its own: a listener that is gone
  // is not called.
  [[nodiscard]] virtual WatchId watch(const std::vector<std::string>& resources,
                                      std::weak_ptr<ReleaseListener> listener) = 0;
  // `resources` are the watch's own: the watch keeps nothing but its
  // listener, and a waiter has them anyway.
  virtual void unwatch(WatchId id, const std::vector<std::string>& resources) = 0;
  // Whether a release of one of `resources` was announced at or after
  // `since`, as far as this client could hear it (a channel it was not
  // subscribed to then says nothing).
  [[nodiscard]] virtual bool heard_since(const std::vector<std::string>& resources,
                                         Clock::time_point since) const = 0;
};

// The operations a caller waits for: kept alive until they complete, and
// aborted (completed with kShuttingDown) on shutdown.
class ActiveOps {
 public:
  void add(const std::shared_ptr<Abortable>& op) { ops_.emplace(op.get(), op); }
  void remove(Abortable* op) { ops_.erase(op); }
  // Aborts every operation (each may start others, e.g. a release, which
  // are not aborted).
  void abort_all();
  [[nodiscard]] std::size_t size() const noexcept { return ops_.size(); }

 private:
  std::unordered_map<Abortable*, std::shared_ptr<Abortable>> ops_;
};

// Held by reference by every operation: it must outlive them (the Engine's
// does).
struct OpContext {
  NodeSet& nodes;
  Scheduler& scheduler;
  Metrics& metrics;
  spdlog::logger& log;
  const ClientOptions& options;
  ActiveOps& active;
  ReleaseWatch* wake = nullptr;  // null: no wake-on-release
};

// A user callback must not take the loop thread down with it: runs it once
// (and clears it), logging what it throws.
void log_callback_exception(spdlog::logger& log, const char* what);
template <typename Callback, typename Value>
void invoke_user(spdlog::logger& log, Callback& callback, Value&& value) {
  if (!callback) return;
  auto cb = std::move(callback);
  callback = nullptr;
  try {
    cb(std::forward<Value>(value));
  } catch (const std::exception& e) {
    log_callback_exception(log, e.what());
  } catch (...) {
    log_callback_exception(log, nullptr);
  }
}

// Where an acquire's outcome goes: the caller's callback, or the promise of
// the future the caller holds (async_acquire), kept without a callback
// object around it.
using AcquireDone = std::variant<AcquireCallback, std::promise<Result<Lock>>>;
// Delivers `result` (once: invoke_user for a callback).
void deliver(spdlog::logger& log, AcquireDone& to, Result<Lock> result);

// An operation that ignores its replies: for commands whose answer nobody
// waits for (SCRIPT LOAD, cleanup of keys left while a node was away).
[[nodiscard]] std::shared_ptr<Operation> discard_op();
// Keys left on an unreachable node that a node remembers to delete, at most.
inline constexpr std::size_t kMaxCleanup = 10000;

// "resource \"a\"" or "resources {\"a\", \"b\"}", for messages.
[[nodiscard]] std::string describe(const std::vector<std::string>& resources);

// "12.3 ms".
[[nodiscard]] std::string format_ms(Clock::duration d);

NodeResult node_result(const std::string& name, NodeStatus status, std::string detail = {},
                       std::chrono::microseconds rtt = std::chrono::microseconds(0));

}  // namespace redlock::detail
