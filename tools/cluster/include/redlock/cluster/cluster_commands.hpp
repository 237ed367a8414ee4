// redlock/cluster/cluster_commands.hpp: the local cluster launcher's commands
// (up, down, status, pause, resume, kill, restart) on a CLI11 app, shared by
// the redlock-cluster executable and `redlock cluster`.
//
//   [--dir DIR] up N [--base-port P] [--redis-server PATH]
//   [--dir DIR] up --shards S [--replicas R] [--base-port P]   a Redis Cluster
//   [--dir DIR] down | status [--json]
//   [--dir DIR] pause|resume|kill|restart I      (I from 1)
//
// Threading: use from one thread (the main thread: the servers it starts are
// detached, so they outlive it anyway).
#pragma once

#include <cstddef>
#include <string>

namespace CLI {
class App;
}

namespace redlock::cluster {

class ClusterCommands {
 public:
  // Adds --dir and the subcommands to `app`, which must outlive this object;
  // CLI11 writes the parsed values into it. `program` opens error messages
  // ("redlock-cluster: ...").
  ClusterCommands(CLI::App& app, std::string program);
  ClusterCommands(const ClusterCommands&) = delete;
  ClusterCommands& operator=(const ClusterCommands&) = delete;

  // After `app` was parsed: runs the subcommand that was given. `json` asks
  // for JSON from status as --json does. Returns the exit status: 0 done, 1
  // failure (the reason is on stderr).
  [[nodiscard]] int run(bool json = false) const;

 private:
  CLI::App* app_;
  std::string program_;
  std::string dir_ = "./.cluster";
  std::size_t n_ = 0;
  std::size_t shards_ = 0;    // up --shards: a Redis Cluster of this many masters
  std::size_t replicas_ = 0;  // up --replicas: per master
  int base_port_ = 7001;
  std::string redis_server_ = "redis-server";
  bool json_ = false;
  std::size_t number_ = 0;
};

}  // namespace redlock::cluster
