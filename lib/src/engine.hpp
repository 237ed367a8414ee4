// engine.hpp: the Engine, what a Client is made of.
//
// The Engine validates the options and owns the pieces: the Loop (its thread,
// its scheduler), one Node per Redis node, the WakeHub of release
// subscribers, and the operations in flight. It is the operations' NodeSet
// and the nodes' NodeEvents; the Client facade posts operations to it.
//
//   Client -> Engine::post_* -> (loop thread) operation -> Nodes -> replies
//          -> operation (Round tally, retries) -> callback
//
// Threading: the methods marked "any thread" may be called from any thread;
// everything else runs on the loop thread. Ownership: the Client shares the
// Engine with the loop thread (which keeps it alive until it ends) and with
// LockGuards (weakly). Declaration order is destruction order: the
// operations go first, the loop last.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "handoff.hpp"
#include "lock_node.hpp"
#include "loop.hpp"
#include "metrics.hpp"
#include "operation.hpp"
#include "redlock/callbacks.hpp"
#include "subscriber.hpp"

namespace spdlog {
class logger;
}

namespace redlock::detail {

class Engine final : public std::enable_shared_from_this<Engine>, public NodeSet, NodeEvents {
 public:
  // Any thread. Validates, starts the loop thread and waits up to
  // connect_timeout for every node's first connection attempt. Nodes that
  // are down, or whose names do not resolve, do not make it fail.
  [[nodiscard]] static Result<std::shared_ptr<Engine>> start(ClientOptions options);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Any thread; idempotent. Refuses new work, completes pending operations
  // with kShuttingDown, closes the connections and joins the loop thread
  // (detaches it when called on the loop thread itself).
  void shutdown() noexcept;

  // Any thread. Errors (kInvalidArgument, kShuttingDown) are returned and
  // the callback is then never called; otherwise it runs once on the loop.
  [[nodiscard]] Result<void> post_acquire(std::vector<std::string> resources, milliseconds ttl,
                                          const AcquireOptions& options, AcquireCallback callback);
  // The same, the outcome set on `promise` (async_acquire's future). On an
  // error `promise` is left as it was.
  [[nodiscard]] Result<void> post_acquire(std::vector<std::string> resources, milliseconds ttl,
                                          const AcquireOptions& options,
                                          std::promise<Result<Lock>>& promise);
  [[nodiscard]] Result<void> post_extend(const Lock& lock, milliseconds ttl,
                                         const ExtendOptions& options, AcquireCallback callback);
  // A null callback makes a fire-and-forget release.
  [[nodiscard]] Result<void> post_release(const Lock& lock, ReleaseCallback callback);
  [[nodiscard]] Result<void> post_health(milliseconds timeout, HealthCallback callback);
  [[nodiscard]] Result<void> post_inspect(std::string resource, milliseconds timeout,
                                          InspectCallback callback);
  // Runs `task` on the loop thread. Error: kShuttingDown (then it never runs).
  [[nodiscard]] Result<void> post(std::function<void()> task) {
    return loop_->post(std::move(task));
  }

  // Any thread.
  [[nodiscard]] bool on_loop_thread() const noexcept { return loop_->on_loop_thread(); }
  [[nodiscard]] const ClientOptions& options() const noexcept { return options_; }
  // When the blocking calls spin (ClientOptions::blocking_spin).
  [[nodiscard]] SpinGate& spin_gate() noexcept { return spin_gate_; }
  // The nodes as ClientOptions::nodes gave them, passwords hidden.
  [[nodiscard]] const std::vector<std::string>& node_names() const noexcept { return node_names_; }
  [[nodiscard]] std::vector<bool> connected() const;
  // Whether a majority of the nodes votes now.
  [[nodiscard]] bool quorum_available() const;
  [[nodiscard]] MetricsSnapshot metrics_snapshot() const;
  // What operations work with (a KeepAlive is made with it on any thread,
  // and used on the loop).
  [[nodiscard]] const OpContext& op_context() const noexcept { return *ctx_; }

  // NodeSet (loop thread).
  [[nodiscard]] std::size_t size() const override { return nodes_.size(); }
  [[nodiscard]] const std::string& name(std::size_t i) const override { return node_names_[i]; }
  [[nodiscard]] bool send(std::size_t i, Route route, std::string_view wire,
                          const std::shared_ptr<Operation>& op, std::uint32_t tag,
                          const std::shared_ptr<const std::string>& fallback) override {
    return nodes_[i]->send(route, wire, op, tag, fallback);
  }
  [[nodiscard]] bool connected(std::size_t i, Route route) const override {
    return nodes_[i]->ready(route);
  }
  [[nodiscard]] std::string last_error(std::size_t i, Route route) const override {
    return nodes_[i]->last_error(route);
  }
  [[nodiscard]] std::optional<std::string> vote_block(std::size_t i, Route route,
                                                      Clock::time_point now) const override {
    return nodes_[i]->vote_block(route, now);
  }
  [[nodiscard]] bool announce_sharded(std::size_t i) const override {
    return nodes_[i]->announce_sharded();
  }
  [[nodiscard]] NodeHealth health(std::size_t i, Clock::time_point now) const override {
    return nodes_[i]->health(now);
  }
  void remember_cleanup(std::size_t i, std::vector<std::string> resources, std::string token,
                        Clock::time_point until) override {
    nodes_[i]->remember_cleanup(std::move(resources), std::move(token), until);
  }

 private:
  explicit Engine(ClientOptions options);
  // post_acquire's work: `done` is moved from only when the acquire was
  // posted.
  [[nodiscard]] Result<void> post_acquire_op(std::vector<std::string> resources, milliseconds ttl,
                                             const AcquireOptions& options, AcquireDone& done);

  // NodeEvents (loop thread).
  void node_ready(std::size_t node) override;
  void node_attempted(std::size_t node) override;
  void replay_release(std::size_t node, std::vector<std::string> resources, std::string token,
                      Clock::time_point until) override;
  [[nodiscard]] std::optional<std::size_t> same_server(std::size_t node,
                                                       std::string_view run_id) const override;

  void on_start();
  void on_stop();
  // Clock sanity: a TIME to every node, every clock_check_interval.
  void clock_tick();

  ClientOptions options_;
  SpinGate spin_gate_;
  milliseconds restart_grace_{0};
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<TlsContext> tls_;  // outlives the connections
  std::unique_ptr<Loop> loop_;
  // What operations work with; they hold it by reference, so it is
  // destroyed after everything that may hold one (nodes, watches, ActiveOps).
  std::unique_ptr<OpContext> ctx_;
  std::unique_ptr<NodeContext> node_ctx_;
  std::vector<std::string> node_names_;
  std::vector<std::unique_ptr<LockNode>> nodes_;
  bool has_cluster_ = false;       // a cluster:// node: a lock's resources share one slot
  std::unique_ptr<WakeHub> wake_;  // refers to the nodes: destroyed first
  ActiveOps active_;

  std::mutex mutex_;  // guards first_attempts_
  std::condition_variable cv_;
  std::size_t first_attempts_ = 0;
};

}  // namespace redlock::detail
