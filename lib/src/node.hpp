// node.hpp: one Redis node, one vote.
//
// A Node keeps one Connection to its server and pipelines commands over it:
// replies come back in the order the commands were sent, so a release sent
// after a SET always runs after it. It remembers which operation waits for
// which reply, fails them all at once when the connection is lost, and never
// holds a command for a later connection. Its handshake checks that the
// server is an independent master (not a Redis Cluster shard) and a server
// of its own (not another node's under a second name), and reads its run_id
// and uptime for restart-aware voting (NodeVitals). A sentinel:// node
// connects to whatever master its SentinelFollower names. A ClusterNode
// keeps one Node per shard master (Role::kShard): such a Node expects a
// Redis Cluster server and hands its cluster replies (MOVED, ASK, ...) over
// as they are.
//
// Threading: the loop thread, except the methods marked "any thread".
// Ownership: the Engine owns its Nodes; a Node owns its Connection, its
// vitals and its follower.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connection.hpp"
#include "lock_node.hpp"
#include "node_context.hpp"
#include "node_vitals.hpp"
#include "operation.hpp"
#include "redlock/health.hpp"
#include "sentinel.hpp"
#include "validate.hpp"

namespace redlock::detail {

// A node that leaves a command unanswered for this long is not "answering":
// health reports and metrics say so, and it does not count toward
// Client::quorum_available(). (Its votes fail by the node timeout anyway.)
inline constexpr std::chrono::milliseconds kStallThreshold{1000};

class Node final : public LockNode, public Connection::Owner, public SentinelFollower::Listener {
 public:
  enum class Role : std::uint8_t {
    kIndependent,  // a Redlock node of its own: refuses a Redis Cluster server
    kShard         // a shard master of a ClusterNode: refuses anything else
  };

  Node(const NodeContext& ctx, std::size_t index, NodeAddress address,
       Role role = Role::kIndependent);
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void start() override;
  void close() override;

  // Queues a command. Returns false, and never calls back, when the node is
  // not connected (and ready) or too far behind: commands are never held
  // for a later connection. `fallback`, for an EVALSHA of one of
  // kAllScripts: that command, shared, kept until the reply so that its EVAL
  // form (eval_form) goes out instead of delivering a NOSCRIPT error.
  [[nodiscard]] bool send(std::string_view wire, const std::shared_ptr<Operation>& op,
                          std::uint32_t tag, const std::shared_ptr<const std::string>& fallback);
  // A release this client may owe the node: run when it is connected again.
  void remember_cleanup(std::vector<std::string> resources, std::string token,
                        Clock::time_point until) override;
  // Clock sanity: asks the node for its TIME, unless it is not connected,
  // refused TIME on this connection, or has not answered the last one.
  void sample_clock() override;

  [[nodiscard]] bool connected() const noexcept { return conn_.ready(); }
  // Any thread.
  [[nodiscard]] bool connected_any_thread() const noexcept override { return ready_.load(); }
  // Connected, and no command has waited longer than kStallThreshold for its
  // reply (a stopped or overloaded node is connected but not answering).
  // Any thread.
  [[nodiscard]] bool answering(Clock::time_point now) const noexcept override;
  // How long the oldest unanswered command has waited without any reply
  // coming in (0 when nothing waits). Any thread.
  [[nodiscard]] Clock::duration waiting_for(Clock::time_point now) const noexcept;
  // Answering and not left out of the vote. Any thread.
  [[nodiscard]] bool voting(Clock::time_point now) const noexcept override;
  // Set when the node must not count toward a majority at `now`: why.
  [[nodiscard]] std::optional<std::string> vote_block(Clock::time_point now) const {
    return vitals_.vote_block(now, conn_.ready());
  }
  // The address with any password hidden: safe for logs and errors.
  [[nodiscard]] const std::string& name() const noexcept override { return address_.display; }
  [[nodiscard]] std::size_t index() const noexcept override { return index_; }
  // Why the node is not connected, if it is not ("" otherwise).
  [[nodiscard]] std::string last_error() const;
  [[nodiscard]] const std::string& run_id() const noexcept { return vitals_.run_id(); }
  // What the client knows of the node now (no I/O).
  [[nodiscard]] NodeHealth health(Clock::time_point now) const override;
  // Where the node's commands go now (the very address connected to) and
  // with which credentials, for its release subscriber. Unset unless
  // connected.
  [[nodiscard]] std::optional<Endpoint> endpoint_now() const override { return conn_.peer(); }
  // The server's address as configured (a shard's master).
  [[nodiscard]] const NodeAddress& address() const noexcept { return address_; }
  // Since when the node votes again after a restart (NodeVitals).
  [[nodiscard]] Clock::time_point votes_from() const noexcept { return vitals_.votes_from(); }

  // LockNode: one server, whatever the route.
  [[nodiscard]] bool send(Route, std::string_view wire, const std::shared_ptr<Operation>& op,
                          std::uint32_t tag,
                          const std::shared_ptr<const std::string>& fallback) override {
    return send(wire, op, tag, fallback);
  }
  [[nodiscard]] bool ready(Route) const override { return connected(); }
  [[nodiscard]] std::string last_error(Route) const override { return last_error(); }
  [[nodiscard]] std::optional<std::string> vote_block(Route, Clock::time_point now) const override {
    return vote_block(now);
  }
  [[nodiscard]] bool reachable() const override { return connected(); }
  [[nodiscard]] bool has_server(std::string_view run_id) const override {
    return connected() && !run_id.empty() && vitals_.run_id() == run_id;
  }

 private:
  // The node's own handshake commands, after AUTH and SELECT.
  enum class Probe : std::uint8_t { kClusterInfo, kServerInfo };
  struct Pending {
    std::shared_ptr<Operation> op;
    std::uint32_t tag;
    std::shared_ptr<const std::string> fallback;
  };
  struct Cleanup {
    std::vector<std::string> resources;
    std::string token;
    Clock::time_point until;
  };
  class ClockOp;

  // Connection::Owner
  std::optional<Endpoint> endpoint() override;
  void handshake(std::vector<std::string>& commands) override;
  std::optional<Connection::Refusal> on_handshake_reply(std::size_t index,
                                                        const Reply& reply) override;
  void on_ready() override;
  void on_reply(Reply& reply) override;
  void on_down(const std::string& why, bool permanent) override;
  // SentinelFollower::Listener
  void on_master_changed(const std::string& why) override;
  void on_sentinel_failed(const std::string& why) override;

  bool push(std::string_view wire, const std::shared_ptr<Operation>& op, std::uint32_t tag,
            const std::shared_ptr<const std::string>& fallback);
  void fail_pending(std::string_view failure);
  void report_attempt();
  void replay_cleanup();
  void on_time_reply(const Reply* reply);

  const NodeContext& ctx_;
  std::size_t index_;
  NodeAddress address_;
  Role role_;
  NodeVitals vitals_;
  std::unique_ptr<SentinelFollower> sentinel_;  // sentinel:// nodes only
  std::shared_ptr<Operation> clock_op_;
  std::deque<Pending> pending_;  // sent or queued, awaiting replies, in order
  std::deque<Cleanup> cleanup_;  // oldest first; dropped from the front when full
  bool ever_connected_ = false;
  int failed_attempts_ = 0;             // since the last ready connection
  Scheduler::TimerId clock_burst_ = 0;  // the next first-clock sample
  bool reported_first_attempt_ = false;
  bool closed_ = false;
  // Read by any thread (Client::connected, quorum_available, metrics).
  std::atomic<bool> ready_{false};
  // When the oldest unanswered command was sent or last saw progress (0:
  // nothing waits).
  std::atomic<Clock::rep> waiting_since_{0};
  // Declared last: destroyed first, while the rest is still there for
  // whatever its destruction touches.
  Connection conn_;
};

}  // namespace redlock::detail
