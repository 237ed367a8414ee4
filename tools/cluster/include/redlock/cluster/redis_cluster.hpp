// redlock/cluster/redis_cluster.hpp: a Redis Cluster on 127.0.0.1 made of a
// LocalCluster's servers, for the launcher (redlock-cluster up --shards) and
// the benchmarks (redlock-bench --cluster-shards).
//
// start_redis_cluster() starts shards x (1 + replicas) redis-server processes
// in cluster mode (a LocalCluster with the cluster options in its
// extra_args), joins them with CLUSTER MEET, gives each master its share of
// the 16384 slots (CLUSTER ADDSLOTSRANGE, split as redis-cli --cluster create
// splits them), attaches each replica with CLUSTER REPLICATE and waits until
// every server says cluster_state:ok and sees every slot assigned. Unlike
// redis-cli --cluster create, it needs no minimum of three masters: one
// master serving every slot is a cluster too.
//
// Servers are numbered as in the LocalCluster: masters first (0 .. shards-1,
// serving the slot ranges in order), then the replicas, the replica r of
// master m being shards + m * replicas + r.
//
// Ports: with ClusterOptions::base_port set, server i listens on base + i
// and its cluster bus on base + i + 10000 (Redis's default). With 0, the
// servers and their buses take free ports chosen by the OS (the bus through
// --cluster-port); a start that meets a taken port starts again elsewhere, a
// few times.
//
// Threading and ownership: as LocalCluster. On error nothing is left
// running.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <tl/expected.hpp>
#include <utility>

#include "redlock/cluster/local_cluster.hpp"

namespace redlock::cluster {

// How many hash slots a Redis Cluster has.
inline constexpr unsigned kClusterSlots = 16384;

struct RedisClusterOptions {
  std::size_t shards = 3;    // masters, at least 1
  std::size_t replicas = 0;  // per master
  // cluster-node-timeout: how soon a failed master is noticed.
  std::chrono::milliseconds node_timeout{2000};
  // Redis refuses every slot while one has no master, unless this is off:
  // off, a shard that is down costs only its own slots.
  bool require_full_coverage = false;
  // How long the servers may take to agree that the cluster is formed.
  std::chrono::milliseconds form_timeout{30000};
};

// The first and last slot that master m (0-based) of `shards` serves.
[[nodiscard]] std::pair<unsigned, unsigned> shard_slot_range(std::size_t m, std::size_t shards);

// The master (0-based) of `shards` that serves `slot`.
[[nodiscard]] std::size_t shard_of_slot(unsigned slot, std::size_t shards);

// Starts and forms the cluster; `servers` says where and how the servers
// run (its extra_args and node_args come after the cluster options).
[[nodiscard]] tl::expected<std::unique_ptr<LocalCluster>, std::string> start_redis_cluster(
    const RedisClusterOptions& options, ClusterOptions servers = {});

// "cluster://127.0.0.1:P1,127.0.0.1:P2": the lock node of the cluster, with
// the first `seeds` servers as seeds.
[[nodiscard]] std::string cluster_url(const LocalCluster& cluster, std::size_t seeds = 2);

}  // namespace redlock::cluster
