// redis_cluster.hpp: RedisCluster, a real Redis Cluster on 127.0.0.1 for the
// tests: shards x (1 + replicas) redis-server processes in cluster mode (a
// LocalCluster with the cluster options in its extra_args), joined with
// CLUSTER MEET, the slots split evenly over the masters (CLUSTER
// ADDSLOTSRANGE), each replica attached with CLUSTER REPLICATE, and every
// wait bounded. Also failover (CLUSTER FAILOVER [FORCE]) and slot migration
// in steps (SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE), so a test
// can act between them (the ASK window).
//
// Servers are numbered as in the LocalCluster: masters first (0 .. shards-1,
// serving the slot ranges in order), then the replicas, the replica r of
// master m being shards + m * replicas + r. A failover changes who is master:
// ask master_of() / is_master().
//
// Ports: the cluster bus listens on port + 10000, so the servers take fixed
// ports from 20000 to 21999 (buses 30000 to 31999), below the ephemeral
// range and above the range other tests' free ports come from
// (free_tcp_ports); a start that meets a taken port tries other ports.
//
// Threading: as LocalCluster (the test's main thread). Ownership: the
// servers stop and the directory goes with the object, whatever the test's
// outcome.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "redlock/cluster/local_cluster.hpp"

namespace redlock::testing {

struct RedisClusterOptions {
  std::size_t shards = 3;
  std::size_t replicas = 0;  // per master
  // cluster-node-timeout: how soon a failed master is noticed (and a replica
  // takes over).
  std::chrono::milliseconds node_timeout{1000};
  // Redis refuses every slot while one has no master, unless this is off:
  // off, a shard that is down costs only its own slots.
  bool require_full_coverage = false;
  std::vector<std::string> extra_args;
};

class RedisCluster {
 public:
  using Expected = tl::expected<void, std::string>;
  static constexpr unsigned kSlots = 16384;

  [[nodiscard]] static tl::expected<std::unique_ptr<RedisCluster>, std::string> start(
      RedisClusterOptions options = {}) {
    std::unique_ptr<RedisCluster> c(new RedisCluster(options));
    const std::size_t n = options.shards * (1 + options.replicas);
    std::string last_error;
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 8 && !c->servers_; ++attempt) {
      const int base = 20000 + static_cast<int>(rng() % (2000 - n));
      if (!ports_free(base, n)) continue;
      redlock::cluster::ClusterOptions co;
      co.base_port = base;
      co.extra_args = {"--cluster-enabled",
                       "yes",
                       "--cluster-config-file",
                       "nodes.conf",
                       "--cluster-node-timeout",
                       std::to_string(options.node_timeout.count()),
                       "--cluster-require-full-coverage",
                       options.require_full_coverage ? "yes" : "no"};
      co.extra_args.insert(co.extra_args.end(), options.extra_args.begin(),
                           options.extra_args.end());
      auto started = redlock::cluster::LocalCluster::start(n, co);
      if (started) {
        c->servers_ = std::move(*started);
      } else {
        last_error = started.error();
      }
    }
    if (!c->servers_) return tl::make_unexpected("cannot start the servers: " + last_error);
    if (auto made = c->form(); !made) return tl::make_unexpected(made.error());
    return c;
  }

  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;
  ~RedisCluster() { stop(); }
  void stop() noexcept {
    if (servers_) servers_->stop();
  }

  redlock::cluster::LocalCluster& servers() { return *servers_; }
  [[nodiscard]] std::size_t size() const { return servers_->size(); }
  [[nodiscard]] std::size_t shards() const { return options_.shards; }
  [[nodiscard]] int port(std::size_t i) const { return servers_->port(i); }

  // "cluster://127.0.0.1:P1,127.0.0.1:P2" over the first `seeds` servers.
  [[nodiscard]] std::string url(std::size_t seeds = 2) const {
    std::string out = "cluster://";
    for (std::size_t i = 0; i < std::min(seeds, size()); ++i) {
      if (i > 0) out += ',';
      out += servers_->address(i);
    }
    return out;
  }

  // The replica r of the master that started as server m.
  [[nodiscard]] std::size_t replica(std::size_t m, std::size_t r = 0) const {
    return options_.shards + m * options_.replicas + r;
  }

  // Server i's node id.
  [[nodiscard]] tl::expected<std::string, std::string> id(std::size_t i) {
    return servers_->command(i, {"CLUSTER", "MYID"});
  }

  [[nodiscard]] bool is_master(std::size_t i) {
    auto role = servers_->command(i, {"ROLE"});
    return role && role->starts_with("master");
  }

  // The server that serves `slot` now, as server `ask` sees it.
  [[nodiscard]] std::optional<std::size_t> master_of(unsigned slot, std::size_t ask = 0) {
    auto nodes = servers_->command(ask, {"CLUSTER", "NODES"});
    if (!nodes) return std::nullopt;
    std::istringstream lines(*nodes);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string id;
      std::string addr;
      std::string flags;
      words >> id >> addr >> flags;
      if (flags.find("master") == std::string::npos) continue;
      std::string word;
      for (int skip = 0; skip < 5 && words >> word; ++skip) {
      }
      while (words >> word) {
        if (word.starts_with("[")) continue;  // a migration in progress
        const auto dash = word.find('-');
        const unsigned first = static_cast<unsigned>(std::stoul(word.substr(0, dash)));
        const unsigned last = dash == std::string::npos
                                  ? first
                                  : static_cast<unsigned>(std::stoul(word.substr(dash + 1)));
        if (slot < first || slot > last) continue;
        const auto port = std::stoi(addr.substr(addr.find(':') + 1, addr.find('@')));
        for (std::size_t i = 0; i < size(); ++i) {
          if (servers_->port(i) == port) return i;
        }
      }
    }
    return std::nullopt;
  }

  // Every running server says cluster_state:ok and agrees on who serves
  // each of `slots` (all when empty), within `limit`.
  Expected wait_ok(
      std::chrono::milliseconds limit = redlock::cluster::scaled(std::chrono::milliseconds(20000)),
      const std::vector<unsigned>& slots = {}) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::string why;
    for (;;) {
      why = check_ok(slots);
      if (why.empty()) return {};
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return tl::make_unexpected("the cluster did not settle within " +
                               std::to_string(limit.count()) + " ms: " + why);
  }

  // CLUSTER FAILOVER [FORCE] on replica `r`; returns once it is the master
  // and every server agrees.
  Expected failover(std::size_t r, bool force) {
    std::vector<std::string> cmd{"CLUSTER", "FAILOVER"};
    if (force) cmd.emplace_back("FORCE");
    if (auto ok = servers_->command(r, cmd); !ok) return tl::make_unexpected(ok.error());
    const auto deadline = std::chrono::steady_clock::now() +
                          redlock::cluster::scaled(std::chrono::milliseconds(20000));
    while (!is_master(r)) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return tl::make_unexpected("server " + std::to_string(r + 1) + " never became master");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return wait_ok();
  }

  // Slot migration, step by step: `slot` from its master to server `to`.
  Expected begin_migration(unsigned slot, std::size_t to) {
    const auto from = master_of(slot);
    if (!from) return tl::make_unexpected("no master serves slot " + std::to_string(slot));
    migrating_from_ = *from;
    auto from_id = id(*from);
    auto to_id = id(to);
    if (!from_id || !to_id) return tl::make_unexpected("CLUSTER MYID failed");
    const auto s = std::to_string(slot);
    if (auto ok = servers_->command(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", *from_id}); !ok) {
      return tl::make_unexpected("SETSLOT IMPORTING: " + ok.error());
    }
    if (auto ok = servers_->command(*from, {"CLUSTER", "SETSLOT", s, "MIGRATING", *to_id}); !ok) {
      return tl::make_unexpected("SETSLOT MIGRATING: " + ok.error());
    }
    return {};
  }
  // Moves every key of the slot (MIGRATE); returns how many moved.
  tl::expected<long long, std::string> migrate_keys(unsigned slot, std::size_t to) {
    long long moved = 0;
    for (;;) {
      auto keys = servers_->command(migrating_from_,
                                    {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), "100"});
      if (!keys) return tl::make_unexpected("GETKEYSINSLOT: " + keys.error());
      std::vector<std::string> argv{"MIGRATE", "127.0.0.1", std::to_string(port(to)), "", "0",
                                    "5000",    "KEYS"};
      std::istringstream lines(*keys);
      std::size_t n = 0;
      for (std::string key; std::getline(lines, key);) {
        if (key.empty()) continue;
        argv.push_back(key);
        ++n;
      }
      if (n == 0) return moved;
      if (auto ok = servers_->command(migrating_from_, argv); !ok) {
        return tl::make_unexpected("MIGRATE: " + ok.error());
      }
      moved += static_cast<long long>(n);
    }
  }
  // SETSLOT NODE everywhere: the slot is the target's.
  Expected finish_migration(unsigned slot, std::size_t to) {
    auto to_id = id(to);
    if (!to_id) return tl::make_unexpected(to_id.error());
    const auto s = std::to_string(slot);
    for (std::size_t i : {to, migrating_from_}) {
      if (auto ok = servers_->command(i, {"CLUSTER", "SETSLOT", s, "NODE", *to_id}); !ok) {
        return tl::make_unexpected("SETSLOT NODE on server " + std::to_string(i + 1) + ": " +
                                   ok.error());
      }
    }
    for (std::size_t i = 0; i < size(); ++i) {
      if (i == to || i == migrating_from_ || !servers_->info(i).running || !is_master(i)) continue;
      (void)servers_->command(i, {"CLUSTER", "SETSLOT", s, "NODE", *to_id});
    }
    return wait_ok(redlock::cluster::scaled(std::chrono::milliseconds(20000)), {slot});
  }

  // Lock keys (not fencing counters) on the running servers, replicas'
  // copies included.
  tl::expected<long long, std::string> count_lock_keys() {
    auto all = servers_->count_keys("*");
    if (!all) return all;
    auto fences = servers_->count_keys("redlock:{*}:fence:*");
    if (!fences) return fences;
    return *all - *fences;
  }

 private:
  explicit RedisCluster(RedisClusterOptions options) : options_(std::move(options)) {}

  static bool ports_free(int base, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      for (int offset : {0, 10000}) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(base + static_cast<int>(i) + offset));
        const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        if (!ok) return false;
      }
    }
    return true;
  }

  Expected form() {
    const std::size_t n = size();
    for (std::size_t i = 1; i < n; ++i) {
      if (auto ok = servers_->command(i, {"CLUSTER", "MEET", "127.0.0.1", std::to_string(port(0))});
          !ok) {
        return tl::make_unexpected("CLUSTER MEET: " + ok.error());
      }
    }
    for (std::size_t m = 0; m < options_.shards; ++m) {
      const auto first = m * kSlots / options_.shards;
      const auto last = (m + 1) * kSlots / options_.shards - 1;
      if (auto ok = servers_->command(
              m, {"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)});
          !ok) {
        return tl::make_unexpected("CLUSTER ADDSLOTSRANGE: " + ok.error());
      }
    }
    // Every node must know the masters before it can replicate one.
    const auto deadline = std::chrono::steady_clock::now() +
                          redlock::cluster::scaled(std::chrono::milliseconds(20000));
    for (std::size_t m = 0; m < options_.shards; ++m) {
      auto master_id = id(m);
      if (!master_id) return tl::make_unexpected(master_id.error());
      for (std::size_t r = 0; r < options_.replicas; ++r) {
        for (;;) {
          auto ok = servers_->command(replica(m, r), {"CLUSTER", "REPLICATE", *master_id});
          if (ok) break;
          if (std::chrono::steady_clock::now() >= deadline) {
            return tl::make_unexpected("CLUSTER REPLICATE: " + ok.error());
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    }
    return wait_ok();
  }

  // "" when settled, else what is not.
  std::string check_ok(const std::vector<unsigned>& slots) {
    std::optional<std::vector<std::optional<std::size_t>>> first_view;
    std::vector<unsigned> probe = slots;
    if (probe.empty()) {
      for (std::size_t m = 0; m < options_.shards; ++m) {
        probe.push_back(static_cast<unsigned>(m * kSlots / options_.shards));
      }
    }
    for (std::size_t i = 0; i < size(); ++i) {
      const auto node = servers_->info(i);
      if (!node.running || node.paused) continue;
      auto info = servers_->command(i, {"CLUSTER", "INFO"});
      if (!info) return "server " + std::to_string(i + 1) + ": " + info.error();
      if (info->find("cluster_state:ok") == std::string::npos) {
        return "server " + std::to_string(i + 1) + " is not cluster_state:ok";
      }
      if (info->find("cluster_slots_assigned:16384") == std::string::npos) {
        return "server " + std::to_string(i + 1) + " does not see every slot assigned";
      }
      std::vector<std::optional<std::size_t>> view;
      for (unsigned s : probe) view.push_back(master_of(s, i));
      if (!first_view) {
        first_view = view;
      } else if (view != *first_view) {
        return "the servers disagree on who serves the slots";
      }
    }
    for (std::size_t m = 0; m < options_.shards; ++m) {
      for (std::size_t r = 0; r < options_.replicas; ++r) {
        const auto i = replica(m, r);
        if (!servers_->info(i).running || is_master(i)) continue;
        auto repl = servers_->command(i, {"INFO", "replication"});
        if (!repl || repl->find("master_link_status:up") == std::string::npos) {
          return "replica " + std::to_string(i + 1) + " is not in sync";
        }
      }
    }
    return {};
  }

  RedisClusterOptions options_;
  std::unique_ptr<redlock::cluster::LocalCluster> servers_;
  std::size_t migrating_from_ = 0;
};

}  // namespace redlock::testing
