// commands.hpp: the `redlock` subcommands, each returning its exit status
// (cli_support.hpp). stdout carries data only: the token (acquire, extend),
// the node table (status), or one JSON object with --json, errors included.
// Messages for people go to stderr prefixed "redlock: " (with --quiet only
// errors do). Each runs on the main thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redlock/redlock.hpp"

namespace redlock::cli {

struct Globals {
  std::vector<std::string> nodes;
  bool json = false;
  bool verbose = false;
  bool quiet = false;
  std::chrono::milliseconds max_ttl{60000};
  std::optional<std::chrono::milliseconds> restart_grace;  // unset: the library's default
  std::optional<std::chrono::milliseconds> node_timeout;   // unset: the library's default
  bool fencing = true;
  TlsOptions tls;              // for rediss:// and sentinels:// nodes
  int conflict_exit_code = 4;  // -E: exit status for "held by another"
};

// A connected Client whose log goes to stderr, and only with --verbose.
// `adjust` may change the options first. Errors: as Client::connect
// (kInvalidArgument for a bad address).
[[nodiscard]] Result<std::unique_ptr<Client>> connect_client(
    const Globals& globals, const std::function<void(ClientOptions&)>& adjust = nullptr);

// Prints `error` (stderr, or stdout as JSON with --json) and returns its exit
// status for this client's quorum (-E applied). `resource`, when given, goes
// into the JSON as put_bytes() writes it.
int report_error(const Globals& globals, const Error& error, std::size_t quorum,
                 std::optional<std::string_view> resource = std::nullopt);

// A Client for an acquire bounded by `wait` (milliseconds::max(): none),
// counted from `started`: connecting waits at most what is left of it.
// Returns the client and the wait left for the acquire itself (0 when
// connecting used it all: then one round is still tried).
struct WaitBudget {
  std::chrono::steady_clock::time_point started;
  std::chrono::milliseconds wait;
  // ClientOptions::connect_timeout for a client that must fit in the wait.
  [[nodiscard]] std::chrono::milliseconds connect_timeout() const;
  // AcquireOptions::max_wait once connected.
  [[nodiscard]] std::chrono::milliseconds left() const;
};

struct AcquireArgs {
  std::string resource;
  std::chrono::milliseconds ttl{10000};
  std::chrono::milliseconds wait{0};  // milliseconds::max(): forever
  std::chrono::milliseconds retry_delay{200};
};
int cmd_acquire(const Globals& globals, const AcquireArgs& args);

int cmd_release(const Globals& globals, const std::string& resource, const std::string& token);

int cmd_extend(const Globals& globals, const std::string& resource, const std::string& token,
               std::chrono::milliseconds ttl);

// What a client of the nodes sees now (Client::health, bounded by
// `timeout`): per node, whether it votes and why not, round trip, version,
// run_id, uptime, persistence, eviction policy, clock, TLS, shards. With a
// clock window, the client first watches the clocks for that long. 0 when a
// majority votes, 6 when a majority answers but fewer vote, 3 otherwise; 2
// for a malformed or repeated node.
int cmd_status(const Globals& globals, std::chrono::milliseconds timeout,
               std::chrono::milliseconds clock_window = std::chrono::milliseconds(0));

struct RunArgs {
  std::string resource;
  std::chrono::milliseconds ttl{10000};
  std::chrono::milliseconds wait{0};  // milliseconds::max(): forever
  std::chrono::milliseconds retry_delay{200};
  std::chrono::milliseconds max_hold{3600 * 1000};
  std::chrono::milliseconds kill_after{10000};
  int signal = 15;  // SIGTERM
  std::vector<std::string> command;
};
// Acquires with automatic extension, runs the command, releases. See
// main.cpp's help text for the whole contract.
int cmd_run(const Globals& globals, const RunArgs& args);

}  // namespace redlock::cli
