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
// connects to whatever master its SentinelFollower names.
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

class Node final : public Connection::Owner, public SentinelFollower::Listener {
 public:
  Node(const NodeContext& ctx, std::size_t index, NodeAddress address);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void start();
  // Shutdown: fails what waits, writes what is queued, then closes.
  void close();

  // Queues a command. Returns false, and never calls back, when the node is
  // not connected (and ready) or too far behind: commands are never held
  // for a later connection. `fallback`, for EVALSHA: the EVAL form, sent
  // instead of delivering a NOSCRIPT error.
  [[nodiscard]] bool send(std::string_view wire, const std::shared_ptr<Operation>& op,
                          std::uint32_t tag, const std::shared_ptr<const std::string>& fallback);
  // A release this client may owe the node: run when it is connected again.
  void remember_cleanup(std::vector<std::string> resources, std::string token,
                        Clock::time_point until);
  // Clock sanity: asks the node for its TIME, unless it is not connected,
  // refused TIME on this connection, or has not answered the last one.
  void sample_clock();

  [[nodiscard]] bool connected() const noexcept { return conn_.ready(); }
  // Any thread.
  [[nodiscard]] bool connected_any_thread() const noexcept { return ready_.load(); }
  // Connected, and no command has waited longer than kStallThreshold for its
  // reply (a stopped or overloaded node is connected but not answering).
  // Any thread.
  [[nodiscard]] bool answering(Clock::time_point now) const noexcept;
  // How long the oldest unanswered command has waited without any reply
  // coming in (0 when nothing waits). Any thread.
  [[nodiscard]] Clock::duration waiting_for(Clock::time_point now) const noexcept;
  // Answering and not left out of the vote. Any thread.
  [[nodiscard]] bool voting(Clock::time_point now) const noexcept;
  // Set when the node must not count toward a majority at `now`: why.
  [[nodiscard]] std::optional<std::string> vote_block(Clock::time_point now) const {
    return vitals_.vote_block(now);
  }
  // The address with any password hidden: safe for logs and errors.
  [[nodiscard]] const std::string& name() const noexcept { return address_.display; }
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  // Why the node is not connected, if it is not ("" otherwise).
  [[nodiscard]] std::string last_error() const;
  [[nodiscard]] const std::string& run_id() const noexcept { return vitals_.run_id(); }
  // What the client knows of the node now (no I/O).
  [[nodiscard]] NodeHealth health(Clock::time_point now) const;
  // Where the node's commands go now (the very address connected to) and
  // with which credentials, for its release subscriber. Unset unless
  // connected.
  [[nodiscard]] std::optional<Endpoint> endpoint_now() const { return conn_.peer(); }

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

  const NodeContext& ctx_;
  std::size_t index_;
  NodeAddress address_;
  NodeVitals vitals_;
  std::unique_ptr<SentinelFollower> sentinel_;  // sentinel:// nodes only
  std::shared_ptr<Operation> clock_op_;
  std::deque<Pending> pending_;  // sent or queued, awaiting replies, in order
  std::deque<Cleanup> cleanup_;  // oldest first; dropped from the front when full
  bool ever_connected_ = false;
  int failed_attempts_ = 0;  // since the last ready connection
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
