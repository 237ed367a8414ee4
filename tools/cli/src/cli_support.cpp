#include "cli_support.hpp"

#include <fstream>
#include <sstream>

#include "redlock/tools/duration.hpp"
#include "redlock/tools/lock_failure.hpp"
#include "redlock/tools/text.hpp"

namespace redlock::cli {

const char* const kExitCodeHelp =
    "Exit status:\n"
    "  0    done\n"
    "  1    refused or failed: not the owner (release, extend), a cluster command failed\n"
    "  2    bad usage: unknown command or option, bad duration, bad node address or config\n"
    "  3    unreachable: fewer than a majority of the nodes answered\n"
    "  4    not acquired: the lock was held by another until --wait ran out\n"
    "       (-E/--conflict-exit-code changes this one)\n"
    "  5    run: the lock was lost while the command ran (the command was signalled)\n"
    "  6    not voting: a majority of the nodes answers, but too few may vote now\n"
    "       (restarted nodes sit out --restart-grace; suspect clocks): see `redlock status`\n"
    "  run otherwise exits with the command's status: 126 not executable, 127 not found,\n"
    "  128+N killed by signal N (also when redlock itself got signal N while waiting)\n";

int exit_code_for(const Error& error, std::size_t quorum) {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    case ErrorCode::kHeldByAnother:
    case ErrorCode::kLockWaitTimeout:
    case ErrorCode::kNoQuorum:
    case ErrorCode::kValidityExhausted:
      switch (tools::classify_lock_failure(error, quorum)) {
        case tools::LockFailure::kBusy:
          return kExitNotAcquired;
        case tools::LockFailure::kNotVoting:
          return kExitNotVoting;
        case tools::LockFailure::kUnavailable:
        case tools::LockFailure::kOther:
          return kExitUnreachable;
      }
      return kExitUnreachable;
    case ErrorCode::kLockLost:
      return kExitLockLost;
    case ErrorCode::kNotOwner:
    case ErrorCode::kExpired:
    case ErrorCode::kCancelled:
    case ErrorCode::kShuttingDown:
    case ErrorCode::kWrongThread:
    case ErrorCode::kInternal:
      return kExitFailure;
  }
  return kExitFailure;
}

tl::expected<std::chrono::milliseconds, std::string> parse_wait(std::string_view text) {
  if (text == "forever") return std::chrono::milliseconds::max();
  auto parsed = tools::parse_duration(text);
  if (!parsed) return tl::make_unexpected(parsed.error() + " (or forever)");
  return parsed;
}

std::string to_json_text(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void put_bytes(nlohmann::json& json, const std::string& field, std::string_view bytes) {
  json[field] = std::string(bytes);
  if (!tools::is_valid_utf8(bytes)) json[field + "_hex"] = tools::to_hex(bytes);
}

std::optional<std::filesystem::path> default_config_path(
    const std::optional<std::string>& xdg_config_home, const std::optional<std::string>& home) {
  // XDG base directories: a relative $XDG_CONFIG_HOME is invalid and ignored.
  if (xdg_config_home && !xdg_config_home->empty() && xdg_config_home->front() == '/') {
    return std::filesystem::path(*xdg_config_home) / "redlock" / "config.json";
  }
  if (home && !home->empty()) {
    return std::filesystem::path(*home) / ".config" / "redlock" / "config.json";
  }
  return std::nullopt;
}

tl::expected<std::vector<std::string>, std::string> parse_config(std::string_view text) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return tl::make_unexpected(std::string("not JSON: ") + e.what());
  } catch (const nlohmann::json::exception&) {
    // A number too large for a double (1e999) is out_of_range, not a
    // parse_error: it used to escape and end the program.
    return tl::make_unexpected(std::string("not JSON: a number is out of range"));
  }
  if (!json.is_object())
    return tl::make_unexpected(std::string("expected an object {\"nodes\": [...]}"));
  for (const auto& [key, value] : json.items()) {
    if (key != "nodes") return tl::make_unexpected("unknown key \"" + key + "\" (only \"nodes\")");
  }
  if (!json.contains("nodes")) return tl::make_unexpected(std::string("no \"nodes\" key"));
  const auto& nodes = json.at("nodes");
  if (!nodes.is_array()) {
    return tl::make_unexpected(std::string("\"nodes\" must be an array of \"host:port\" strings"));
  }
  std::vector<std::string> out;
  for (const auto& node : nodes) {
    if (!node.is_string()) {
      return tl::make_unexpected(
          "\"nodes\" must hold \"host:port\" strings, not " +
          node.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    out.push_back(node.get<std::string>());
  }
  if (out.empty()) return tl::make_unexpected(std::string("\"nodes\" is empty"));
  return out;
}

namespace {

tl::expected<ResolvedNodes, std::string> from_list(const std::string& text, std::string origin) {
  auto nodes = tools::split_list(text);
  if (nodes.empty()) return tl::make_unexpected(origin + " lists no nodes");
  return ResolvedNodes{std::move(nodes), std::move(origin)};
}

tl::expected<ResolvedNodes, std::string> from_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return tl::make_unexpected("cannot read the config file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  auto nodes = parse_config(text.str());
  if (!nodes) return tl::make_unexpected("config file " + path.string() + ": " + nodes.error());
  return ResolvedNodes{std::move(*nodes), path.string()};
}

}  // namespace

tl::expected<ResolvedNodes, std::string> resolve_nodes(const NodeSources& sources) {
  if (sources.nodes_flag) return from_list(*sources.nodes_flag, "--nodes");
  if (sources.config_flag) return from_file(*sources.config_flag);
  if (sources.nodes_env) return from_list(*sources.nodes_env, "REDLOCK_NODES");
  if (auto path = default_config_path(sources.xdg_config_home, sources.home)) {
    std::error_code ec;
    if (std::filesystem::exists(*path, ec)) return from_file(*path);
  }
  return tl::make_unexpected(
      std::string("no lock nodes: give --nodes host:port,..., set REDLOCK_NODES, or write "
                  "{\"nodes\": [\"host:port\", ...]} to ~/.config/redlock/config.json"));
}

}  // namespace redlock::cli
