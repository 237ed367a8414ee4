// start_redis_cluster: a LocalCluster in cluster mode, formed with CLUSTER
// MEET, ADDSLOTSRANGE and REPLICATE through LocalCluster::command (no
// redis-cli), every wait bounded.
#include "redlock/cluster/redis_cluster.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "redlock/cluster/free_ports.hpp"
#include "redlock/tools/redis_connection.hpp"

namespace redlock::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kStartAttempts = 5;
constexpr milliseconds kPollInterval{50};
// Redis's default distance from a server's port to its cluster bus port.
constexpr int kBusPortOffset = 10000;

// "" when every server agrees the cluster is formed, else what is not.
std::string formed(LocalCluster& cluster, const RedisClusterOptions& options) {
  const std::string known = std::to_string(cluster.size());
  const std::string masters = std::to_string(options.shards);
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    const std::string server = "server " + std::to_string(i + 1);
    auto info = cluster.command(i, {"CLUSTER", "INFO"});
    if (!info) return server + ": " + info.error();
    if (tools::info_field(*info, "cluster_state") != "ok")
      return server + " is not cluster_state:ok";
    if (tools::info_field(*info, "cluster_slots_assigned") != std::to_string(kClusterSlots)) {
      return server + " does not see every slot assigned";
    }
    if (tools::info_field(*info, "cluster_known_nodes") != known) {
      return server + " does not know every server yet";
    }
    if (tools::info_field(*info, "cluster_size") != masters) {
      return server + " does not see " + masters + " masters with slots";
    }
    if (i >= options.shards) {
      auto repl = cluster.command(i, {"INFO", "replication"});
      if (!repl || tools::info_field(*repl, "master_link_status") != "up") {
        return "replica " + server + " is not in sync with its master";
      }
    }
  }
  return {};
}

tl::expected<void, std::string> form(LocalCluster& cluster, const RedisClusterOptions& options,
                                     const std::vector<int>& bus_ports) {
  const auto deadline = Clock::now() + options.form_timeout;
  for (std::size_t i = 1; i < cluster.size(); ++i) {
    auto ok = cluster.command(i, {"CLUSTER", "MEET", "127.0.0.1", std::to_string(cluster.port(0)),
                                  std::to_string(bus_ports[0])});
    if (!ok) return tl::make_unexpected("CLUSTER MEET: " + ok.error());
  }
  for (std::size_t m = 0; m < options.shards; ++m) {
    const auto [first, last] = shard_slot_range(m, options.shards);
    auto ok = cluster.command(
        m, {"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)});
    if (!ok) return tl::make_unexpected("CLUSTER ADDSLOTSRANGE: " + ok.error());
  }
  // A replica must know its master (gossip) before it can replicate it.
  for (std::size_t m = 0; m < options.shards; ++m) {
    if (options.replicas == 0) break;
    auto master_id = cluster.command(m, {"CLUSTER", "MYID"});
    if (!master_id) return tl::make_unexpected("CLUSTER MYID: " + master_id.error());
    for (std::size_t r = 0; r < options.replicas; ++r) {
      const std::size_t replica = options.shards + m * options.replicas + r;
      for (;;) {
        auto ok = cluster.command(replica, {"CLUSTER", "REPLICATE", *master_id});
        if (ok) break;
        if (Clock::now() >= deadline) {
          return tl::make_unexpected("CLUSTER REPLICATE on server " + std::to_string(replica + 1) +
                                     ": " + ok.error());
        }
        std::this_thread::sleep_for(kPollInterval);
      }
    }
  }
  for (;;) {
    const std::string why = formed(cluster, options);
    if (why.empty()) return {};
    if (Clock::now() >= deadline) {
      std::string message = "the Redis Cluster was not formed within ";
      message.append(std::to_string(options.form_timeout.count())).append(" ms: ").append(why);
      return tl::make_unexpected(message);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

std::pair<unsigned, unsigned> shard_slot_range(std::size_t m, std::size_t shards) {
  // As redis-cli --cluster create: a float share per master, rounded.
  const float per_shard = static_cast<float>(kClusterSlots) / static_cast<float>(shards);
  unsigned first = 0;
  float cursor = 0.0F;
  for (std::size_t i = 0;; ++i) {
    long last = std::lround(cursor + per_shard - 1);
    if (last > static_cast<long>(kClusterSlots) - 1 || i + 1 >= shards) last = kClusterSlots - 1;
    if (last < static_cast<long>(first)) last = first;
    if (i == m) return {first, static_cast<unsigned>(last)};
    first = static_cast<unsigned>(last) + 1;
    cursor += per_shard;
  }
}

std::size_t shard_of_slot(unsigned slot, std::size_t shards) {
  for (std::size_t m = 0; m + 1 < shards; ++m) {
    if (slot <= shard_slot_range(m, shards).second) return m;
  }
  return shards > 0 ? shards - 1 : 0;
}

tl::expected<std::unique_ptr<LocalCluster>, std::string> start_redis_cluster(
    const RedisClusterOptions& options, ClusterOptions servers) {
  if (options.shards == 0) {
    return tl::make_unexpected(std::string("a Redis Cluster needs at least one master"));
  }
  const std::size_t n = options.shards * (1 + options.replicas);
  if (servers.base_port > 0 && servers.base_port + kBusPortOffset + static_cast<int>(n) > 65536) {
    return tl::make_unexpected(std::string(
        "the cluster bus ports (port + 10000) of the servers from the base port are no ports"));
  }
  std::vector<std::string> args = {"--cluster-enabled",
                                   "yes",
                                   "--cluster-config-file",
                                   "nodes.conf",
                                   "--cluster-node-timeout",
                                   std::to_string(options.node_timeout.count()),
                                   "--cluster-require-full-coverage",
                                   options.require_full_coverage ? "yes" : "no"};
  args.insert(args.end(), servers.extra_args.begin(), servers.extra_args.end());
  servers.extra_args = std::move(args);
  if (!servers.dir.empty()) {
    // A directory used before keeps its servers' cluster state (nodes.conf):
    // servers started on it would come up as members of the old cluster.
    if (auto old = LocalCluster::attach(servers.dir)) {
      for (std::size_t i = 0; i < (*old)->size(); ++i) {
        if ((*old)->info(i).running) {
          return tl::make_unexpected("a cluster is already running in " + (*old)->dir().string() +
                                     "; stop it first");
        }
      }
    }
    std::error_code ec;
    for (std::size_t i = 0; i < n; ++i) {
      std::filesystem::remove(servers.dir / ("node" + std::to_string(i + 1)) / "nodes.conf", ec);
    }
  }
  const auto node_args = servers.node_args;
  std::string last_error;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    ClusterOptions these = servers;
    std::vector<int> bus_ports;
    if (servers.base_port > 0) {
      for (std::size_t i = 0; i < n; ++i) {
        bus_ports.push_back(servers.base_port + kBusPortOffset + static_cast<int>(i));
      }
    } else {
      bus_ports = free_tcp_ports(n);
      if (bus_ports.size() != n) return tl::make_unexpected(std::string("no free ports"));
      these.node_args.resize(std::max(n, node_args.size()));
      for (std::size_t i = 0; i < n; ++i) {
        these.node_args[i].insert(these.node_args[i].end(),
                                  {"--cluster-port", std::to_string(bus_ports[i])});
      }
    }
    auto started = LocalCluster::start(n, these);
    if (!started) {
      last_error = started.error();
      // Fixed ports would meet the same ports again, and a directory of the
      // caller's keeps the failed servers' cluster state.
      if (servers.base_port > 0 || !servers.dir.empty()) break;
      continue;
    }
    auto& cluster = **started;
    if (auto made = form(cluster, options, bus_ports); !made) {
      cluster.stop();
      return tl::make_unexpected(made.error());
    }
    return std::move(*started);
  }
  return tl::make_unexpected("cannot start the servers: " + last_error);
}

std::string cluster_url(const LocalCluster& cluster, std::size_t seeds) {
  std::string url = "cluster://";
  for (std::size_t i = 0; i < seeds && i < cluster.size(); ++i) {
    if (i > 0) url += ',';
    url += cluster.address(i);
  }
  return url;
}

}  // namespace redlock::cluster
