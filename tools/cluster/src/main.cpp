// redlock-cluster: starts, inspects and breaks a local cluster of independent
// redis-server nodes on 127.0.0.1.
//
//   redlock-cluster [--dir DIR] up N [--base-port P]   start N nodes (detached)
//   redlock-cluster [--dir DIR] down | status [--json]
//   redlock-cluster [--dir DIR] pause|resume|kill|restart I   (I from 1)
//
// The servers outlive the command; DIR/cluster.json records them. Only the
// processes recorded there, and still running redis-server on their port, are
// ever signalled. Exit status: 0 success, 1 failure, 2 bad usage. The same
// commands are `redlock cluster ...` (ClusterCommands).
#include <CLI/CLI.hpp>

#include "redlock/cluster/cluster_commands.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Local cluster of independent redis-server nodes on 127.0.0.1, for redlock"};
  app.require_subcommand(1);
  app.fallthrough();
  const redlock::cluster::ClusterCommands commands(app, "redlock-cluster");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return commands.run();
}
