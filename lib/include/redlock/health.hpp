// redlock/health.hpp: what the client knows of each node, and whether a lock
// can be granted now.
//
// A HealthReport is a plain value. Client::health() fills it by asking every
// node (INFO, CONFIG GET appendfsync) within a deadline; Client::quorum_available()
// answers from the state the engine keeps, without any I/O, from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace redlock {

// One shard of a node that is a Redis Cluster (a cluster:// node).
struct ShardHealth {
  std::string master;        // "host:port" of the shard's master
  std::string slots;         // the slot ranges it serves, "0-5460"
  std::size_t replicas = 0;  // replicas the cluster map lists for it
  bool reachable = false;    // the client's connection to it is up
  std::string error;         // why not, if not
  // Counts toward the cluster's vote for the resources in its slots (a
  // master that restarted, or a replica that a failover promoted, sits out
  // the restart grace; see NodeHealth::voting).
  bool voting = false;
  std::string not_voting_reason;
};

struct NodeHealth {
  std::string node;  // as in Client::nodes(): any password shown as ***

  // The connection is up and the handshake done.
  bool reachable = false;
  // Reachable, and no command has gone unanswered for longer than the
  // stall threshold (a SIGSTOPped or overloaded node is reachable but not
  // answering). Metrics report this as the node's "connected" gauge.
  bool answering = false;
  // Counts toward a majority now: answering, not sitting out a restart
  // grace, its clock not excluded as suspect.
  bool voting = false;
  // Why the node does not vote, if it does not ("not connected: ...",
  // "restarted (run_id ...)", "up for only 3 s", "clock runs fast ...").
  std::string not_voting_reason;
  // When a node sits out restart_grace: how long until it votes again.
  std::optional<std::chrono::milliseconds> votes_again_in;
  // The last connection or protocol error ("" when none).
  std::string error;

  // From the node (the handshake's INFO server; health() asks again).
  std::string version;  // redis_version
  std::string run_id;   // "" when unknown
  std::optional<std::chrono::seconds> uptime;
  // Round trip of health()'s own command; unset when it got no answer.
  std::optional<std::chrono::microseconds> rtt;

  // Persistence and eviction (health() only; unset or "" when the node
  // refused the command, e.g. an ACL without +config).
  std::optional<bool> aof_enabled;  // appendonly
  std::string appendfsync;          // "always", "everysec", "no"
  std::string maxmemory_policy;     // "noeviction", "allkeys-lru", ...
  // The eviction policy may delete lock keys (every policy but noeviction:
  // lock keys carry a ttl, so volatile-* policies may pick them too) or
  // fencing counters (allkeys-*).
  bool eviction_can_drop_locks = false;

  // Clock sanity (ClientOptions::clock_check_interval).
  bool clock_suspect = false;
  std::string clock_reason;
  std::optional<double> clock_rate;

  // Transport security (rediss:// and sentinels:// nodes). `tls` false:
  // plain text. The rest describes the current connection (empty while the
  // node is not connected).
  bool tls = false;
  std::string tls_protocol;      // "TLSv1.3"
  std::string tls_cipher;        // "TLS_AES_256_GCM_SHA384"
  std::string tls_peer_subject;  // the server certificate's subject, "CN=...,O=..."
  std::optional<std::chrono::system_clock::time_point> tls_peer_not_after;
  // The connection resumed an earlier TLS session (no full handshake).
  bool tls_resumed = false;

  // cluster:// nodes: the shards the client routes to, in slot order. The
  // node as a whole is reachable, answering and voting when every slot's
  // shard is; a resource's vote rests on its own slot's shard only.
  std::vector<ShardHealth> shards;
};

struct HealthReport {
  std::vector<NodeHealth> nodes;  // in ClientOptions::nodes order
  std::size_t quorum = 0;         // votes a grant needs
  std::size_t voting = 0;         // nodes that vote now
  [[nodiscard]] bool quorum_available() const noexcept { return quorum > 0 && voting >= quorum; }
};

}  // namespace redlock
