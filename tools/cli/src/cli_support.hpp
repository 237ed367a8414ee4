// cli_support.hpp: the parts of the `redlock` command line tool that are pure
// functions on values (exit codes, where the nodes come from), kept apart so
// that the unit tests can call them. No I/O except reading a config file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "redlock/error.hpp"

namespace redlock::cli {

// Exit statuses, in the spirit of flock(1) and `etcdctl lock`. `run` exits
// with its command's status otherwise (see kExitCodeHelp).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // refused or failed: not the owner, nothing released
inline constexpr int kExitUsage = 2;        // bad flags, durations, addresses or config
inline constexpr int kExitUnreachable = 3;  // fewer than a majority of nodes answered
inline constexpr int kExitNotAcquired = 4;  // held by another until --wait ran out
inline constexpr int kExitLockLost = 5;     // run: the lock was lost while the command ran

// The table printed at the end of `redlock --help` (and in the README).
extern const char* const kExitCodeHelp;

// The exit status for an operation that failed with `error`. `quorum` is the
// number of nodes a majority needs: a wait that ran out while fewer than that
// many nodes answered is "unreachable", not "held".
[[nodiscard]] int exit_code_for(const Error& error, std::size_t quorum);

// Where the lock nodes come from, first match wins: the --nodes flag, the
// --config file, the REDLOCK_NODES environment variable, the default config
// file ($XDG_CONFIG_HOME/redlock/config.json, else
// ~/.config/redlock/config.json) if it exists.
struct NodeSources {
  std::optional<std::string> nodes_flag;   // --nodes
  std::optional<std::string> config_flag;  // --config
  std::optional<std::string> nodes_env;    // $REDLOCK_NODES
  std::optional<std::string> xdg_config_home;
  std::optional<std::string> home;
};

struct ResolvedNodes {
  std::vector<std::string> nodes;
  std::string origin;  // "--nodes", "REDLOCK_NODES", or the config file's path
};

// The node list, or a message for the user: nothing configured, an empty
// list, a config file that cannot be read or is not {"nodes": ["host:port",
// ...]}. Addresses themselves are checked by Client::connect.
[[nodiscard]] tl::expected<ResolvedNodes, std::string> resolve_nodes(const NodeSources& sources);

// The default config file path for these variables, or nullopt without HOME.
[[nodiscard]] std::optional<std::filesystem::path> default_config_path(
    const std::optional<std::string>& xdg_config_home, const std::optional<std::string>& home);

// Reads {"nodes": [...]} from `text`. Error: a message naming what is wrong.
[[nodiscard]] tl::expected<std::vector<std::string>, std::string> parse_config(
    std::string_view text);

}  // namespace redlock::cli
