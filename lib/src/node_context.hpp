// node_context.hpp: what a node needs from the engine that owns it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loop.hpp"
#include "metrics.hpp"
#include "redlock/options.hpp"
#include "tls.hpp"

namespace spdlog {
class logger;
}

namespace redlock::detail {

// What a node tells the engine. Loop thread.
class NodeEvents {
 public:
  // The node's connection is ready (again): its release subscriber follows.
  virtual void node_ready(std::size_t node) = 0;
  // The node's first connection attempt ended, either way (connect() waits
  // for every node's).
  virtual void node_attempted(std::size_t node) = 0;
  // The node's connection failed or was lost.
  virtual void node_down(std::size_t node) { (void)node; }
  // A release the node missed while it was unreachable: run it on that node
  // now that it is back.
  virtual void replay_release(std::size_t node, std::vector<std::string> resources,
                              std::string token, Clock::time_point until) = 0;
  // Another node whose connection is up to the server with `run_id`, if any:
  // two nodes that are one server must not cast two votes.
  [[nodiscard]] virtual std::optional<std::size_t> same_server(std::size_t node,
                                                               std::string_view run_id) const = 0;

 protected:
  virtual ~NodeEvents() = default;
};

struct NodeContext {
  Loop& loop;
  const ClientOptions& options;
  milliseconds restart_grace;  // ClientOptions::restart_grace, resolved
  spdlog::logger& log;
  Metrics& metrics;
  NodeEvents& events;
  TlsContext* tls = nullptr;  // set when a node uses TLS
};

}  // namespace redlock::detail
