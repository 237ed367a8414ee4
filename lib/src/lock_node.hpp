// lock_node.hpp: one vote, as the engine sees it: a Redis node (Node: one
// server, or a Sentinel-managed master) or a Redis Cluster (ClusterNode: a
// shard per master, each command sent to its slot's master).
//
// Threading: the loop thread, except the methods marked "any thread".
// Ownership: the Engine owns its LockNodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "address.hpp"
#include "operation.hpp"
#include "redlock/health.hpp"

namespace redlock::detail {

class ClusterNode;

class LockNode {
 public:
  virtual ~LockNode() = default;

  virtual void start() = 0;
  // Shutdown: fails what waits, writes what is queued, then closes.
  virtual void close() = 0;

  // Queues a command where `route` leads. Returns false, and never calls
  // back, when it cannot be sent now (NodeSet::send).
  [[nodiscard]] virtual bool send(Route route, std::string_view wire,
                                  const std::shared_ptr<Operation>& op, std::uint32_t tag,
                                  const std::shared_ptr<const std::string>& fallback) = 0;
  // A release this client may owe the node: run when it can be sent again.
  virtual void remember_cleanup(std::vector<std::string> resources, std::string token,
                                Clock::time_point until) = 0;
  // Clock sanity: a TIME to every server the node's votes rest on.
  virtual void sample_clock() = 0;

  // Whether a command for `route` can be sent now, and if not, why not.
  [[nodiscard]] virtual bool ready(Route route) const = 0;
  [[nodiscard]] virtual std::string last_error(Route route) const = 0;
  // Set when the node must not count toward a majority for the resources of
  // `route` at `now`: why.
  [[nodiscard]] virtual std::optional<std::string> vote_block(Route route,
                                                              Clock::time_point now) const = 0;
  // Some connection of the node is up: its release subscriber may connect.
  [[nodiscard]] virtual bool reachable() const = 0;
  // Where its release subscriber connects (a server the node's connection
  // goes to now). Unset unless reachable.
  [[nodiscard]] virtual std::optional<Endpoint> endpoint_now() const = 0;
  // Whether a connection of the node is up to the server with `run_id`.
  [[nodiscard]] virtual bool has_server(std::string_view run_id) const = 0;
  // What the client knows of the node now (no I/O).
  [[nodiscard]] virtual NodeHealth health(Clock::time_point now) const = 0;
  // Releases announce with SPUBLISH on this node (NodeSet::announce_sharded).
  [[nodiscard]] virtual bool announce_sharded() const { return false; }
  // The node as a Redis Cluster, if it is one.
  [[nodiscard]] virtual ClusterNode* cluster() noexcept { return nullptr; }

  // Any thread. Every resource's commands can be sent now.
  [[nodiscard]] virtual bool connected_any_thread() const noexcept = 0;
  // Any thread. Connected, and nothing has waited too long for a reply.
  [[nodiscard]] virtual bool answering(Clock::time_point now) const noexcept = 0;
  // Any thread. Answering and not left out of the vote, for every resource.
  [[nodiscard]] virtual bool voting(Clock::time_point now) const noexcept = 0;
  // Any thread. The address with any password hidden.
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  [[nodiscard]] virtual std::size_t index() const noexcept = 0;
};

}  // namespace redlock::detail
