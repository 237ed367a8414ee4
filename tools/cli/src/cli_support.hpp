// cli_support.hpp: the parts of the `redlock` command line tool that are pure
// functions on values (exit codes, where the nodes come from, checks of the
// flags, JSON output), kept apart so that the unit tests and the fuzz
// targets can call them. No I/O except reading a config file.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
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
inline constexpr int kExitNotAcquired = 4;  // held by another until --wait ran out (-E changes it)
inline constexpr int kExitLockLost = 5;     // run: the lock was lost while the command ran
inline constexpr int kExitNotVoting = 6;    // nodes answer, but fewer than a majority may vote

// The table printed at the end of `redlock --help` (and in the README).
extern const char* const kExitCodeHelp;

// The exit status for an operation that failed with `error`. `quorum` is the
// number of nodes a majority needs: a wait that ran out while fewer than that
// many nodes voted is "unreachable" (or "not voting"), not "held"
// (tools::classify_lock_failure).
[[nodiscard]] int exit_code_for(const Error& error, std::size_t quorum);

// Bounds the library puts on what the flags set, so that the CLI can refuse
// them in the flags' own terms.
inline constexpr std::chrono::milliseconds kMaxDelay{std::chrono::hours(1)};  // retry, timeouts
inline constexpr std::chrono::milliseconds kMaxMaxTtl{std::chrono::hours(24 * 30)};
inline constexpr std::chrono::milliseconds kMaxRestartGrace{std::chrono::hours(24 * 60)};

// --wait: a duration, or "forever" (milliseconds::max()).
[[nodiscard]] tl::expected<std::chrono::milliseconds, std::string> parse_wait(
    std::string_view text);

// JSON text that never throws on bytes that are not UTF-8: each invalid byte
// becomes U+FFFD. Fields that must stay lossless carry their bytes in hex
// next to it (put_bytes).
[[nodiscard]] std::string to_json_text(const nlohmann::json& json);

// json[field] = bytes, and, when bytes are not valid UTF-8, also
// json[field + "_hex"] = their hex: "resource" and "resource_hex".
void put_bytes(nlohmann::json& json, const std::string& field, std::string_view bytes);

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
