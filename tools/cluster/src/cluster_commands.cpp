// ClusterCommands: the launcher's commands over LocalCluster. The servers
// outlive the command; DIR/cluster.json records them. Only the processes
// recorded there, and still running redis-server on their port, are ever
// signalled.
#include "redlock/cluster/cluster_commands.hpp"

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "redlock/cluster/local_cluster.hpp"
#include "redlock/cluster/redis_cluster.hpp"
#include "redlock/tools/text.hpp"

namespace redlock::cluster {
namespace {

namespace fs = std::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;

int fail(const std::string& program, const std::string& message) {
  std::cerr << program << ": " << redlock::tools::printable(message) << '\n';
  return kExitFailure;
}

// A directory as a message shows it: any byte survives (a name that is not
// UTF-8, a control character), escaped.
std::string shown(const fs::path& dir) { return redlock::tools::printable(dir.string()); }

bool has_state(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "cluster.json", ec);
}

const char* state_name(const NodeInfo& node) {
  if (!node.running) return "stopped";
  return node.paused ? "paused" : "running";
}

void print_status(const LocalCluster& cluster, bool json) {
  if (json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (std::size_t i = 0; i < cluster.size(); ++i) {
      const auto node = cluster.info(i);
      nodes.push_back({{"node", i + 1},
                       {"address", cluster.address(i)},
                       {"port", node.port},
                       {"pid", node.pid},
                       {"state", state_name(node)},
                       {"dir", node.dir.string()}});
    }
    std::cout << nodes.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return;
  }
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    const auto node = cluster.info(i);
    const std::string pid = node.pid != 0 ? std::to_string(node.pid) : "-";
    std::printf("node %zu  %-21s  pid %-8s  %s\n", i + 1, cluster.address(i).c_str(), pid.c_str(),
                state_name(node));
  }
  std::fflush(stdout);
}

std::size_t count_running(const LocalCluster& cluster) {
  std::size_t running = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.info(i).running) ++running;
  }
  return running;
}

int cmd_up_redis_cluster(const std::string& program, const fs::path& dir, std::size_t shards,
                         std::size_t replicas, int base_port, const std::string& redis_server) {
  if (has_state(dir)) {
    auto attached = LocalCluster::attach(dir);
    if (!attached) return fail(program, attached.error());
    if (count_running(**attached) > 0) {
      return fail(program, "servers are already up in " + shown((*attached)->dir()) + "; run `" +
                               program + " down` first");
    }
  }
  ClusterOptions options;
  options.dir = dir;
  options.base_port = base_port;
  options.detach = true;
  options.redis_server = redis_server;
  RedisClusterOptions rc;
  rc.shards = shards;
  rc.replicas = replicas;
  // With full coverage off, a shard that is down costs only its own slots.
  rc.require_full_coverage = false;
  auto started = start_redis_cluster(rc, options);
  if (!started) return fail(program, started.error() + "; nothing was left running");
  auto& cluster = **started;
  std::cout << "started a Redis Cluster of " << shards << " masters with " << replicas
            << " replica(s) each in " << shown(cluster.dir()) << '\n';
  print_status(cluster, false);
  std::cout << "lock node: " << cluster_url(cluster, 2) << '\n'
            << "the servers are new and empty: clients count them once they have been up for "
               "their restart grace, or at once with a grace of 0 (redlock --restart-grace 0s)\n";
  return kExitOk;
}

int cmd_up(const std::string& program, const fs::path& dir, std::size_t n, int base_port,
           const std::string& redis_server) {
  if (has_state(dir)) {
    auto attached = LocalCluster::attach(dir);
    if (!attached) return fail(program, attached.error());
    auto& cluster = **attached;
    const std::size_t running = count_running(cluster);
    if (running > 0) {
      if (cluster.size() != n) {
        return fail(program, "a cluster of " + std::to_string(cluster.size()) +
                                 " nodes is already up in " + shown(cluster.dir()) + " (" +
                                 std::to_string(running) + " running); run `" + program +
                                 " down` first");
      }
      for (std::size_t i = 0; i < cluster.size(); ++i) {
        if (cluster.info(i).running) continue;
        if (auto restarted = cluster.restart(i); !restarted)
          return fail(program, restarted.error());
        std::cout << "node " << i + 1 << " (" << cluster.address(i) << ") restarted\n";
      }
      std::cout << "cluster already up in " << shown(cluster.dir()) << ": " << n << " nodes\n";
      print_status(cluster, false);
      return kExitOk;
    }
  }
  ClusterOptions options;
  options.dir = dir;
  options.base_port = base_port;
  options.detach = true;
  options.redis_server = redis_server;
  auto started = LocalCluster::start(n, options);
  if (!started) return fail(program, started.error());
  std::cout << "started " << n << " nodes in " << shown((*started)->dir()) << '\n';
  print_status(**started, false);
  // Restart-aware voting: clients do not count a node that has been up for
  // less than their restart grace. These nodes are empty, so no lock can
  // predate them, and a client that knows this may skip the wait.
  std::cout << "the nodes are new and empty: clients count them once they have been up for "
               "their restart grace (max_ttl, 60s by default), or at once with a grace of 0 "
               "(redlock --restart-grace 0s, ClientOptions::restart_grace = 0ms)\n";
  return kExitOk;
}

int cmd_down(const std::string& program, const fs::path& dir) {
  if (!has_state(dir)) {
    std::cout << "no cluster in " << shown(dir) << '\n';
    return kExitOk;
  }
  auto attached = LocalCluster::attach(dir);
  if (!attached) return fail(program, attached.error());
  const std::size_t running = count_running(**attached);
  if (running == 0) {
    std::cout << "nothing running in " << shown((*attached)->dir()) << '\n';
    return kExitOk;
  }
  (*attached)->stop();
  const std::size_t left = count_running(**attached);
  if (left > 0) return fail(program, std::to_string(left) + " nodes are still running");
  std::cout << "stopped " << running << " nodes in " << shown((*attached)->dir()) << '\n';
  return kExitOk;
}

int cmd_status(const std::string& program, const fs::path& dir, bool json) {
  if (!has_state(dir)) {
    if (json) {
      std::cout << "[]\n";
    } else {
      std::cout << "no cluster in " << shown(dir) << '\n';
    }
    return kExitOk;
  }
  auto attached = LocalCluster::attach(dir);
  if (!attached) return fail(program, attached.error());
  print_status(**attached, json);
  return kExitOk;
}

int cmd_node(const std::string& program, const fs::path& dir, const std::string& action,
             std::size_t number) {
  auto attached = LocalCluster::attach(dir);
  if (!attached) return fail(program, attached.error());
  auto& cluster = **attached;
  if (number < 1 || number > cluster.size()) {
    return fail(program, "no node " + std::to_string(number) + ": the cluster in " +
                             shown(cluster.dir()) + " has nodes 1 to " +
                             std::to_string(cluster.size()));
  }
  const std::size_t i = number - 1;
  const bool was_running = cluster.info(i).running;
  tl::expected<void, std::string> done;
  std::string what;
  if (action == "pause") {
    done = cluster.pause(i);
    what = "paused";
  } else if (action == "resume") {
    done = cluster.resume(i);
    what = "resumed";
  } else if (action == "kill") {
    done = cluster.kill(i);
    what = was_running ? "killed" : "was not running";
  } else {
    done = cluster.restart(i);
    what = "restarted";
  }
  if (!done) return fail(program, done.error());
  std::cout << "node " << number << " (" << cluster.address(i) << ") " << what << '\n';
  return kExitOk;
}

}  // namespace

ClusterCommands::ClusterCommands(CLI::App& app, std::string program)
    : app_(&app), program_(std::move(program)) {
  app.add_option("--dir", dir_, "Cluster directory: state file, node data and logs")
      ->capture_default_str();

  auto* up = app.add_subcommand("up", "Start N detached nodes (nothing to do if they already run)");
  up->add_option("N", n_, "Number of nodes (independent masters)")->check(CLI::Range(1, 64));
  up->add_option("--shards", shards_,
                 "Start one Redis Cluster of this many masters instead (the slots split evenly); "
                 "name it as one node: cluster://host:port,host:port")
      ->check(CLI::Range(1, 16));
  up->add_option("--replicas", replicas_, "With --shards: replicas per master")
      ->capture_default_str()
      ->check(CLI::Range(0, 3));
  up->add_option("--base-port", base_port_, "Port of node 1, then +1 per node (0: free ports)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  up->add_option("--redis-server", redis_server_, "The redis-server binary to run")
      ->capture_default_str();

  app.add_subcommand("down", "Stop every node (nothing to do if none runs)");
  auto* status = app.add_subcommand("status", "One line per node: address, pid, state");
  status->add_flag("--json", json_, "Print a JSON array instead");

  for (const char* action : {"pause", "resume", "kill", "restart"}) {
    const std::string help = std::string(action) == "pause"    ? "Stop node I with SIGSTOP"
                             : std::string(action) == "resume" ? "Continue node I (SIGCONT)"
                             : std::string(action) == "kill"   ? "Kill node I with SIGKILL"
                                                               : "Restart node I, empty, same port";
    app.add_subcommand(action, help)
        ->add_option("I", number_, "Node number, from 1")
        ->required()
        ->check(CLI::Range(1, 64));
  }
}

int ClusterCommands::run(bool json) const {
  const fs::path cluster_dir = dir_;
  try {
    const auto subs = app_->get_subcommands();
    if (subs.empty()) return fail(program_, "no command given");
    const std::string name = subs.front()->get_name();
    if (name == "up") {
      if (shards_ > 0) {
        if (n_ > 0) return fail(program_, "give N or --shards, not both");
        return cmd_up_redis_cluster(program_, cluster_dir, shards_, replicas_, base_port_,
                                    redis_server_);
      }
      if (n_ == 0) return fail(program_, "up needs N (nodes) or --shards S (a Redis Cluster)");
      if (replicas_ > 0) return fail(program_, "--replicas goes with --shards");
      return cmd_up(program_, cluster_dir, n_, base_port_, redis_server_);
    }
    if (name == "down") return cmd_down(program_, cluster_dir);
    if (name == "status") return cmd_status(program_, cluster_dir, json || json_);
    return cmd_node(program_, cluster_dir, name, number_);
  } catch (const std::exception& e) {
    return fail(program_, e.what());
  }
}

}  // namespace redlock::cluster
