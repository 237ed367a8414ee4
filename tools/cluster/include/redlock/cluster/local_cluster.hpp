// redlock/cluster/local_cluster.hpp: LocalCluster, N independent redis-server
// processes on 127.0.0.1 for the tests, the tools and the benchmarks.
//
// Each server runs in a sub-directory of the cluster directory (nodeK, K from
// 1) with its own log file (nodeK/redis.log), no persistence, and the DEBUG
// command enabled. Servers are started with fork/exec, never through a shell.
//
// Threading: a LocalCluster is not thread-safe; use it from one thread. In the
// default (non-detached) mode every server is started with
// PR_SET_PDEATHSIG(SIGKILL) so that a crashed test leaves nothing behind. The
// kernel delivers that signal when the *thread* that forked the server exits,
// not the process: start, restart and destroy a cluster from a thread that
// outlives it (the test's main thread does).
//
// Ownership: the cluster signals only processes it started. Before any signal
// it checks that /proc/PID/cmdline still names redis-server and the node's
// port, so a stale pid (reused by the system) is never touched.
//
// Numbering: the API's indices are 0-based; human-readable text (error
// messages, directory names, the redlock-cluster CLI) counts nodes from 1.
//
// Errors: every fallible call returns tl::expected with a message that names
// the node and its address. port(), address() and info() throw
// std::out_of_range for an index >= size().
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::cluster {

struct ClusterOptions {
  // The server binary, looked up in PATH like a shell would.
  std::string redis_server = "redis-server";
  // Cluster directory. Empty: a fresh temporary directory (mkdtemp under
  // $TMPDIR or /tmp) which stop() removes.
  std::filesystem::path dir;
  // 0: free ports (free_tcp_ports()). Otherwise base_port, base_port + 1, ...
  int base_port = 0;
  // true: the servers outlive this process (own session, no PDEATHSIG), a
  // state file DIR/cluster.json lets attach() find them again, and the
  // destructor leaves them running. false: the destructor stops them.
  bool detach = false;
  // Appended to every redis-server command line.
  std::vector<std::string> extra_args;
  // Appended to node i's command line only (node_args[i]), after extra_args;
  // kept across restart(). An argument equal to kExtraPort stands for a
  // second port of the node's own, for example its --tls-port: see kExtraPort.
  std::vector<std::vector<std::string>> node_args;
  // Environment entries ("NAME=value") for node i's server (node_env[i]), on
  // top of this process's environment, which every server inherits; nodes
  // past the end get none. Kept across restart(); for example an LD_PRELOAD
  // for one node.
  std::vector<std::vector<std::string>> node_env;
  // How long one server may take to answer PING after it is started.
  std::chrono::milliseconds start_timeout{10000};

  // In node_args[i], replaced by a free port the launcher picks for node i
  // (NodeInfo::extra_port says which). When either of a node's ports turns
  // out to be taken at start, both are picked again, as base_port == 0 does
  // for the plain port alone; restart() keeps both.
  static constexpr std::string_view kExtraPort = "{extra-port}";
};

struct NodeInfo {
  int index;  // 0-based
  int port;
  int extra_port;  // the port that replaced ClusterOptions::kExtraPort; 0: none
  int pid;         // 0 if not running
  bool running;
  bool paused;  // stopped with SIGSTOP (by anyone)
  std::filesystem::path dir;
};

class LocalCluster {
 public:
  // Starts n servers and waits until each one answers PING (each bounded by
  // options.start_timeout). With base_port == 0 a server that finds its port
  // taken is started again on another free port, a few times; so is one that
  // finds its kExtraPort taken, whatever base_port says. On error nothing
  // is left running and the message names the node that failed with the tail
  // of its log.
  [[nodiscard]] static tl::expected<std::unique_ptr<LocalCluster>, std::string> start(
      std::size_t n, ClusterOptions options = {});

  // Re-attaches to a detached cluster started in `dir`, from its state file
  // DIR/cluster.json. Nodes whose recorded process is gone (or is no longer
  // the redis-server on that port) are reported as not running. The returned
  // cluster is detached: destroying it leaves the servers running; stop()
  // stops them. Error: no state file, or an unreadable one.
  [[nodiscard]] static tl::expected<std::unique_ptr<LocalCluster>, std::string> attach(
      const std::filesystem::path& dir);

  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Not detached: stop(). Detached: nothing. Never throws.
  ~LocalCluster();

  // SIGCONT then SIGTERM to each live server, SIGKILL to those still there
  // after a bounded wait, reap. Removes the directory if it was a temporary
  // one this object created. Idempotent; never throws.
  void stop() noexcept;

  std::size_t size() const;
  int port(std::size_t i) const;
  std::string address(std::size_t i) const;  // "127.0.0.1:PORT"
  std::vector<std::string> addresses() const;
  NodeInfo info(std::size_t i) const;
  // The cluster directory (absolute); node K lives in dir()/nodeK.
  const std::filesystem::path& dir() const;

  // Fault injection. Each acts only on the process this cluster started for
  // node i, and returns once the effect is visible in /proc (bounded waits).
  // pause/resume: error if node i is not running; pausing a paused node and
  // resuming a running one succeed. kill on a stopped node succeeds.
  [[nodiscard]] tl::expected<void, std::string> pause(std::size_t i);   // SIGSTOP
  [[nodiscard]] tl::expected<void, std::string> resume(std::size_t i);  // SIGCONT
  [[nodiscard]] tl::expected<void, std::string> kill(std::size_t i);    // SIGCONT + SIGKILL, reaped
  // Kills node i if it runs, starts it again (empty) on the same port and
  // waits for PING; a port still held is retried until start_timeout.
  [[nodiscard]] tl::expected<void, std::string> restart(std::size_t i);

  // Blocking helpers (tools/common's RedisConnection), 2 s connect and
  // command timeouts, one connection per call.
  //
  // The reply as text: status and string replies as they are, integers in
  // decimal, nil as "(nil)", arrays one element per line. A Redis error reply
  // is returned as the error, verbatim ("ERR ...", "WRONGTYPE ...");
  // connection errors and timeouts as "node K (ADDR): ...".
  [[nodiscard]] tl::expected<std::string, std::string> command(
      std::size_t i, const std::vector<std::string>& argv);
  [[nodiscard]] tl::expected<long long, std::string> dbsize(std::size_t i);
  // std::nullopt when the key does not exist.
  [[nodiscard]] tl::expected<std::optional<std::string>, std::string> get(std::size_t i,
                                                                          const std::string& key);
  // Number of keys matching `pattern` (SCAN MATCH) summed over the nodes that
  // run and are not paused.
  [[nodiscard]] tl::expected<long long, std::string> count_keys(const std::string& pattern);
  // Sends DEBUG SLEEP `seconds` to node i and returns once it is sent, without
  // waiting for the reply: the server stalls for that long.
  [[nodiscard]] tl::expected<void, std::string> debug_sleep(std::size_t i, double seconds);

 private:
  struct Node {
    int port = 0;
    int extra_port = 0;     // 0: node_args has no kExtraPort
    int pid = 0;            // 0: not running
    bool is_child = false;  // forked by this process: reap it with waitpid
    std::filesystem::path dir;
  };

  LocalCluster(ClusterOptions options, std::filesystem::path dir, bool remove_dir);

  tl::expected<void, std::string> check_index(std::size_t i) const;
  std::string node_name(std::size_t i) const;
  bool is_alive(const Node& node) const;
  tl::expected<void, std::string> wait_gone(std::size_t i, std::chrono::milliseconds timeout);
  // Writes DIR/cluster.json for a detached cluster (nothing otherwise). Later
  // writes are best effort: the servers run whether or not it succeeds.
  tl::expected<void, std::string> save_state() const noexcept;

  ClusterOptions options_;
  std::filesystem::path dir_;
  bool remove_dir_ = false;
  std::vector<Node> nodes_;
};

// `base` multiplied by the environment variable REDLOCK_TIME_SCALE (a positive
// number, default 1; anything else counts as 1), for time bounds in tests run
// under sanitizers.
std::chrono::milliseconds scaled(std::chrono::milliseconds base);

}  // namespace redlock::cluster
