// cluster_node.hpp: a Redis Cluster as one Redlock node (one vote).
//
// A ClusterNode learns the cluster's slot map (CLUSTER SHARDS, or CLUSTER
// SLOTS on servers before Redis 7) from its seeds, then from the nodes it
// knows, on a connection of its own; keeps one Node (Role::kShard) per shard
// master, pipelined as any node; and sends each command to the master of
// its keys' slot (the key layout puts every key of a resource in one slot,
// and a lock's resources must share it). It follows MOVED (and asks for the
// map again) and ASK (with ASKING), within a few hops: a redirected command
// that cannot be re-sent reaches its operation as the error it is, a "no".
// The map is asked for again when a shard's connection is lost, on
// CLUSTERDOWN, every few seconds, and never more often than every 100 ms;
// the loop never waits for it.
//
// Voting is per shard: a resource's vote rests on its slot's master. A
// shard that is down or stalled makes the vote "no" for the resources in its
// slots only. A master that restarted sits out the restart grace (its Node's
// vitals), and so does a replica promoted by a failover (fresh_masters()):
// replication is asynchronous, so it may lack the newest locks.
//
// Threading: the loop thread, except the methods marked "any thread".
// Ownership: the Engine owns its ClusterNodes; a ClusterNode owns its shard
// Nodes (and those retired by a new map, until the loop's next turn), its
// map connection and the commands it follows.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "connection.hpp"
#include "lock_node.hpp"
#include "node.hpp"
#include "node_context.hpp"
#include "slot_map.hpp"

namespace redlock::detail {

// How often the map is asked for when nothing prompts it.
inline constexpr milliseconds kClusterRefreshInterval{5000};
// ... and while some slot has no master.
inline constexpr milliseconds kClusterPartialRefreshInterval{1000};
// The shortest gap between two questions (a burst of MOVED asks once).
inline constexpr milliseconds kClusterMinRefreshGap{100};
// Redirects one command follows before it counts as a "no".
inline constexpr int kClusterMaxRedirects = 3;
// TRYAGAIN (a multi-key command on a slot being migrated, its keys not all
// on one side yet): sent again after this pause, at most this many times.
inline constexpr milliseconds kClusterTryAgainDelay{25};
inline constexpr int kClusterMaxTryAgain = 8;

class ClusterNode final : public LockNode, NodeEvents {
 public:
  ClusterNode(const NodeContext& ctx, std::size_t index, NodeAddress address);
  ~ClusterNode() override;
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // LockNode.
  void start() override;
  void close() override;
  [[nodiscard]] bool send(Route route, std::string_view wire, const std::shared_ptr<Operation>& op,
                          std::uint32_t tag,
                          const std::shared_ptr<const std::string>& fallback) override;
  void remember_cleanup(std::vector<std::string> resources, std::string token,
                        Clock::time_point until) override;
  void sample_clock() override;
  [[nodiscard]] bool ready(Route route) const override;
  [[nodiscard]] std::string last_error(Route route) const override;
  [[nodiscard]] std::optional<std::string> vote_block(Route route,
                                                      Clock::time_point now) const override;
  [[nodiscard]] bool reachable() const override;
  [[nodiscard]] std::optional<Endpoint> endpoint_now() const override;
  [[nodiscard]] bool has_server(std::string_view run_id) const override;
  [[nodiscard]] NodeHealth health(Clock::time_point now) const override;
  [[nodiscard]] bool announce_sharded() const override { return true; }
  [[nodiscard]] ClusterNode* cluster() noexcept override { return this; }
  [[nodiscard]] bool connected_any_thread() const noexcept override { return all_ready_.load(); }
  [[nodiscard]] bool answering(Clock::time_point now) const noexcept override;
  [[nodiscard]] bool voting(Clock::time_point now) const noexcept override;
  [[nodiscard]] const std::string& name() const noexcept override { return address_.display; }
  [[nodiscard]] std::size_t index() const noexcept override { return index_; }

  // For the release subscribers (sharded pub/sub): where the master serving
  // `slot` is connected now (unset unless it is), and a number that changes
  // with every map applied.
  [[nodiscard]] std::optional<Endpoint> slot_endpoint(unsigned slot) const;
  [[nodiscard]] std::uint64_t map_version() const noexcept { return map_version_; }
  // Asks for the map again soon (a subscriber was told MOVED).
  void refresh_soon(const std::string& why) { request_refresh(why); }

 private:
  struct Shard {
    ClusterShard map;
    std::unique_ptr<Node> node;
    Clock::time_point fresh_until{};  // a failover's grace (fresh_masters)
  };
  struct Cleanup {
    std::vector<std::string> resources;
    std::string token;
    Clock::time_point until;
  };
  class Command;
  class Topology;

  // NodeEvents, from the shard Nodes.
  void node_ready(std::size_t node) override;
  void node_attempted(std::size_t node) override;
  void node_down(std::size_t node) override;
  void replay_release(std::size_t node, std::vector<std::string> resources, std::string token,
                      Clock::time_point until) override;
  [[nodiscard]] std::optional<std::size_t> same_server(std::size_t node,
                                                       std::string_view run_id) const override;

  [[nodiscard]] std::optional<std::size_t> shard_index(Route route) const;
  [[nodiscard]] std::optional<std::string> shard_block(const Shard& shard,
                                                       Clock::time_point now) const;
  // A MOVED or ASK the command can follow: re-sent, true. Otherwise false,
  // and `why` says what kept it.
  bool follow(Command& command, const Reply& reply, std::string& why);
  // TRYAGAIN: sends the command again by its slot, soon. False when it has
  // been tried enough (or the node is closing).
  bool try_again(Command& command, std::string& why);
  void request_refresh(const std::string& why);
  void query();
  void on_map_reply(const Reply& reply, const std::string& host);
  void on_map_failed(const std::string& why);
  void apply(SlotMap next);
  void schedule_periodic();
  void replay_cleanups();
  void report_attempt();
  void update_summary();
  [[nodiscard]] NodeAddress shard_address(const ClusterPeer& master) const;
  // The credentials of every connection to the cluster's servers (no host).
  [[nodiscard]] Endpoint shard_endpoint_base() const;

  const NodeContext& ctx_;
  std::size_t index_;
  NodeAddress address_;
  NodeContext shard_ctx_;  // the shard Nodes' context: their events come here
  SlotMap map_;
  std::vector<Shard> shards_;                        // aligned with map_.shards()
  std::unordered_map<unsigned, std::size_t> moved_;  // MOVED since the map: slot -> shard
  std::unordered_map<std::string, Clock::time_point> fresh_until_;  // by node id
  std::vector<std::unique_ptr<Node>> retired_;  // closed; destroyed on the loop's next turn
  std::deque<Cleanup> cleanup_;
  std::uint64_t map_version_ = 0;
  bool use_slots_ = false;  // the server knows no CLUSTER SHARDS
  bool refresh_wanted_ = false;
  bool query_in_flight_ = false;
  Clock::time_point last_query_{};
  std::string map_error_;  // why the last question failed ("" once answered)
  Scheduler::TimerId refresh_timer_ = 0;
  Scheduler::TimerId periodic_timer_ = 0;
  Scheduler::TimerId reply_timer_ = 0;
  Scheduler::TimerId retired_timer_ = 0;
  // Commands waiting to be sent again after TRYAGAIN, by their timer.
  std::unordered_map<Scheduler::TimerId, std::shared_ptr<Command>> try_again_;
  std::size_t attempts_pending_ = 0;  // first map's shards yet to report
  bool have_map_ = false;
  bool reported_first_attempt_ = false;
  bool closed_ = false;
  // For the any-thread readers: guards shards_ (the vector, not the Nodes,
  // whose own state is atomic) against the loop thread replacing it.
  mutable std::mutex shards_mutex_;
  std::atomic<bool> all_ready_{false};
  // Declared last: destroyed first.
  std::unique_ptr<Topology> topology_;
};

}  // namespace redlock::detail
