// redlock-cluster: starts, inspects and breaks a local cluster of independent
// redis-server nodes on 127.0.0.1.
//
//   redlock-cluster [--dir DIR] up N [--base-port P]   start N nodes (detached)
//   redlock-cluster [--dir DIR] down | status [--json]
//   redlock-cluster [--dir DIR] pause|resume|kill|restart I   (I from 1)
//
// The servers outlive the command; DIR/cluster.json records them. Only the
// processes recorded there, and still running redis-server on their port, are
// ever signalled. Exit status: 0 success, 1 failure, 2 bad usage.
#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "redlock/cluster/local_cluster.hpp"

namespace {

namespace fs = std::filesystem;
using redlock::cluster::ClusterOptions;
using redlock::cluster::LocalCluster;
using redlock::cluster::NodeInfo;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int fail(const std::string& message) {
  std::cerr << "redlock-cluster: " << message << '\n';
  return kExitFailure;
}

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
    std::cout << nodes.dump(2) << '\n';
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

int cmd_up(const fs::path& dir, std::size_t n, int base_port, const std::string& redis_server) {
  if (has_state(dir)) {
    auto attached = LocalCluster::attach(dir);
    if (!attached) return fail(attached.error());
    auto& cluster = **attached;
    const std::size_t running = count_running(cluster);
    if (running > 0) {
      if (cluster.size() != n) {
        return fail("a cluster of " + std::to_string(cluster.size()) + " nodes is already up in " +
                    cluster.dir().string() + " (" + std::to_string(running) +
                    " running); run `redlock-cluster down` first");
      }
      for (std::size_t i = 0; i < cluster.size(); ++i) {
        if (cluster.info(i).running) continue;
        if (auto restarted = cluster.restart(i); !restarted) return fail(restarted.error());
        std::cout << "node " << i + 1 << " (" << cluster.address(i) << ") restarted\n";
      }
      std::cout << "cluster already up in " << cluster.dir().string() << ": " << n << " nodes\n";
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
  if (!started) return fail(started.error());
  std::cout << "started " << n << " nodes in " << (*started)->dir().string() << '\n';
  print_status(**started, false);
  return kExitOk;
}

int cmd_down(const fs::path& dir) {
  if (!has_state(dir)) {
    std::cout << "no cluster in " << dir.string() << '\n';
    return kExitOk;
  }
  auto attached = LocalCluster::attach(dir);
  if (!attached) return fail(attached.error());
  const std::size_t running = count_running(**attached);
  if (running == 0) {
    std::cout << "nothing running in " << (*attached)->dir().string() << '\n';
    return kExitOk;
  }
  (*attached)->stop();
  const std::size_t left = count_running(**attached);
  if (left > 0) return fail(std::to_string(left) + " nodes are still running");
  std::cout << "stopped " << running << " nodes in " << (*attached)->dir().string() << '\n';
  return kExitOk;
}

int cmd_status(const fs::path& dir, bool json) {
  if (!has_state(dir)) {
    if (json) {
      std::cout << "[]\n";
    } else {
      std::cout << "no cluster in " << dir.string() << '\n';
    }
    return kExitOk;
  }
  auto attached = LocalCluster::attach(dir);
  if (!attached) return fail(attached.error());
  print_status(**attached, json);
  return kExitOk;
}

int cmd_node(const fs::path& dir, const std::string& action, std::size_t number) {
  auto attached = LocalCluster::attach(dir);
  if (!attached) return fail(attached.error());
  auto& cluster = **attached;
  if (number < 1 || number > cluster.size()) {
    return fail("no node " + std::to_string(number) + ": the cluster in " + cluster.dir().string() +
                " has nodes 1 to " + std::to_string(cluster.size()));
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
  if (!done) return fail(done.error());
  std::cout << "node " << number << " (" << cluster.address(i) << ") " << what << '\n';
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Local cluster of independent redis-server nodes on 127.0.0.1, for redlock"};
  app.require_subcommand(1);
  app.fallthrough();

  std::string dir = "./.cluster";
  app.add_option("--dir", dir, "Cluster directory: state file, node data and logs")
      ->capture_default_str();

  auto* up = app.add_subcommand("up", "Start N detached nodes (nothing to do if they already run)");
  std::size_t n = 0;
  int base_port = 7001;
  std::string redis_server = "redis-server";
  up->add_option("N", n, "Number of nodes")->required()->check(CLI::Range(1, 64));
  up->add_option("--base-port", base_port, "Port of node 1, then +1 per node (0: free ports)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  up->add_option("--redis-server", redis_server, "The redis-server binary to run")
      ->capture_default_str();

  app.add_subcommand("down", "Stop every node (nothing to do if none runs)");
  auto* status = app.add_subcommand("status", "One line per node: address, pid, state");
  bool json = false;
  status->add_flag("--json", json, "Print a JSON array instead");

  std::size_t number = 0;
  for (const char* action : {"pause", "resume", "kill", "restart"}) {
    const std::string help = std::string(action) == "pause"    ? "Stop node I with SIGSTOP"
                             : std::string(action) == "resume" ? "Continue node I (SIGCONT)"
                             : std::string(action) == "kill"   ? "Kill node I with SIGKILL"
                                                               : "Restart node I, empty, same port";
    app.add_subcommand(action, help)
        ->add_option("I", number, "Node number, from 1")
        ->required()
        ->check(CLI::Range(1, 64));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  const fs::path cluster_dir = dir;
  try {
    const auto* sub = app.get_subcommands().front();
    const std::string name = sub->get_name();
    if (name == "up") return cmd_up(cluster_dir, n, base_port, redis_server);
    if (name == "down") return cmd_down(cluster_dir);
    if (name == "status") return cmd_status(cluster_dir, json);
    return cmd_node(cluster_dir, name, number);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
