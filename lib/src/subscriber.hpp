// subscriber.hpp: wake-on-release, the connections.
//
// The WakeHub keeps who listens for which release announcements (a
// ChannelTable) and, per node, a Subscriber: a second connection to the very
// server the node's connection goes to, in subscribed mode, opened on the
// first listener (never before) and kept open after. Each Subscriber follows
// the table: SUBSCRIBE when a channel gets its first listener, UNSUBSCRIBE
// when it loses its last, everything again after a reconnect. A message on a
// channel wakes its listeners.
//
// A Redis Cluster node announces with sharded pub/sub (SPUBLISH, Redis 7):
// a message stays within its channel's shard, where a PUBLISH would be
// broadcast to every node of the cluster, so announcements scale out with
// the shards as the locks do. Its ShardedSubscriber keeps a connection per
// shard master that serves a watched channel's slot (SSUBSCRIBE), and
// follows the slot map: every new map subscribes afresh.
//
// Announcements are an optimisation, never needed for correctness: a
// subscriber that is down, stalled, denied by an ACL or not subscribed yet
// only means that the waiters fall back to their jittered retry.
//
// Threading: the engine's loop thread only. Ownership: the Engine owns the
// hub, the hub its Subscribers, each Subscriber its Connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "connection.hpp"
#include "lock_node.hpp"
#include "node_context.hpp"
#include "operation.hpp"
#include "wake.hpp"

namespace redlock::detail {

class WakeHub;
class ClusterNode;

// What the hub keeps per node.
class NodeSubscription {
 public:
  virtual ~NodeSubscription() = default;
  // The table gave `channel` its first listener / took its last one.
  virtual void subscribe(const std::string& channel) = 0;
  virtual void unsubscribe(const std::string& channel) = 0;
  // The node's own connection is ready again (it may have restarted, or a
  // Sentinel failover or a name that moved took it elsewhere; a cluster's
  // shard is back, or its map changed): connect now, there, if there is
  // something to hear.
  virtual void node_ready() = 0;
  virtual void close() = 0;
};

class Subscriber final : public NodeSubscription, Connection::Owner {
 public:
  Subscriber(const NodeContext& ctx, WakeHub& hub, LockNode& node);

  void subscribe(const std::string& channel) override;
  void unsubscribe(const std::string& channel) override;
  void node_ready() override;
  void close() override;

  // Subscribed mode reached (AUTH done, SUBSCRIBE sent).
  [[nodiscard]] bool ready() const noexcept { return conn_.ready(); }

 private:
  std::optional<Endpoint> endpoint() override;
  void on_ready() override;
  void on_reply(Reply& reply) override;
  void on_down(const std::string& why, bool permanent) override;

  const NodeContext& ctx_;
  WakeHub& hub_;
  LockNode& node_;
  bool warned_denied_ = false;  // NOPERM logged once per connection
  Connection conn_;
};

// A Redis Cluster node's subscriptions: SSUBSCRIBE on each channel's shard.
class ShardedSubscriber final : public NodeSubscription {
 public:
  ShardedSubscriber(const NodeContext& ctx, WakeHub& hub, ClusterNode& node);
  ~ShardedSubscriber() override;

  void subscribe(const std::string& channel) override;
  void unsubscribe(const std::string& channel) override;
  void node_ready() override;
  void close() override;

 private:
  class Shard;

  // The subscriber for the master now serving `slot` (made when new); null
  // while that master is not connected.
  Shard* shard_for(unsigned slot);

  const NodeContext& ctx_;
  WakeHub& hub_;
  ClusterNode& node_;
  // One per master ever subscribed to (a handful): idle when not needed.
  std::vector<std::unique_ptr<Shard>> shards_;
  std::uint64_t map_version_ = 0;
  bool closed_ = false;
};

// How long a channel stays subscribed after its last listener went, on top
// of two node timeouts (ClientOptions::node_timeout, or its automatic
// largest): a round that starts within kChannelLinger of the last wait is
// still subscribed when it ends, and so hears what was announced while it
// was open.
inline constexpr milliseconds kChannelLinger{1000};

class WakeHub final : public ReleaseWatch {
 public:
  WakeHub(const NodeContext& ctx, const std::vector<std::unique_ptr<LockNode>>& nodes);
  ~WakeHub() override;
  WakeHub(const WakeHub&) = delete;
  WakeHub& operator=(const WakeHub&) = delete;

  // Tells `listener` whenever a node announces the release of one of
  // `resources`, until unwatch(). Returns 0 (and never calls) once closed.
  [[nodiscard]] WatchId watch(const std::vector<std::string>& resources,
                              std::weak_ptr<ReleaseListener> listener) override;
  void unwatch(WatchId id, const std::vector<std::string>& resources) override;
  [[nodiscard]] bool heard_since(const std::vector<std::string>& resources,
                                 Clock::time_point since) const override;

  void node_ready(std::size_t node);
  void close();

  // From the Subscribers.
  void on_message(std::size_t node, const std::string& channel);
  [[nodiscard]] const ChannelTable& table() const noexcept { return table_; }

 private:
  // Unsubscribes the channels idle for linger_, and comes back while others
  // are idle.
  void sweep();

  const NodeContext& ctx_;
  const milliseconds linger_;  // kChannelLinger + 2 node timeouts
  ChannelTable table_;
  // Each watch's listener: the table names the watches of a channel.
  std::unordered_map<WatchId, std::weak_ptr<ReleaseListener>> watches_;
  std::vector<std::unique_ptr<NodeSubscription>> subscribers_;
  WatchId next_id_ = 1;
  Scheduler::TimerId sweep_timer_ = 0;
  bool closed_ = false;
};

}  // namespace redlock::detail
