// acquire, release and extend: one blocking Client call each.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_support.hpp"
#include "commands.hpp"
#include "redlock/tools/duration.hpp"

namespace redlock::cli {
namespace {

using std::chrono::milliseconds;

nlohmann::json nodes_json(const std::vector<NodeResult>& nodes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& n : nodes) {
    nlohmann::json entry = {
        {"node", n.node}, {"status", std::string(to_string(n.status))}, {"rtt_us", n.rtt.count()}};
    if (!n.detail.empty()) entry["detail"] = n.detail;
    out.push_back(std::move(entry));
  }
  return out;
}

std::size_t count_ok(const std::vector<NodeResult>& nodes) {
  std::size_t n = 0;
  for (const auto& r : nodes) n += r.status == NodeStatus::kOk ? 1 : 0;
  return n;
}

void print_json(const nlohmann::json& json) { std::cout << json.dump() << '\n' << std::flush; }

void print_lock(const Globals& globals, const Lock& lock, std::string_view what) {
  if (globals.json) {
    print_json({{"resource", lock.resource()},
                {"token", lock.token()},
                {"validity_ms", lock.remaining().count()},
                {"ttl_ms", lock.ttl().count()},
                {"fence", lock.fence()},
                {"nodes", nodes_json(lock.votes())}});
    return;
  }
  // The token alone on the first line, for $(redlock acquire ... | head -n1).
  std::cout << lock.token() << '\n'
            << what << " for " << lock.remaining().count() << " ms (ttl "
            << tools::format_duration(lock.ttl()) << ", " << count_ok(lock.votes()) << " of "
            << lock.votes().size() << " nodes"
            << (lock.fence() != 0 ? ", fence " + std::to_string(lock.fence()) : std::string())
            << ")\n"
            << std::flush;
}

}  // namespace

Result<std::unique_ptr<Client>> connect_client(const Globals& globals,
                                               const std::function<void(ClientOptions&)>& adjust) {
  ClientOptions options;
  options.nodes = globals.nodes;
  options.max_ttl = globals.max_ttl;
  options.restart_grace = globals.restart_grace;
  options.fencing = globals.fencing;
  auto logger = std::make_shared<spdlog::logger>("redlock",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(globals.verbose ? spdlog::level::debug : spdlog::level::off);
  options.logger = std::move(logger);
  if (adjust) adjust(options);
  return Client::connect(std::move(options));
}

int report_error(const Globals& globals, const Error& error, std::size_t quorum) {
  const int code = exit_code_for(error, quorum);
  if (globals.json) {
    print_json({{"error", std::string(to_string(error.code()))},
                {"message", error.message()},
                {"exit_code", code},
                {"nodes", nodes_json(error.nodes())}});
  } else {
    std::cerr << "redlock: " << error << '\n';
  }
  return code;
}

int cmd_acquire(const Globals& globals, const AcquireArgs& args) {
  auto client = connect_client(globals);
  if (!client) return report_error(globals, client.error(), globals.nodes.size() / 2 + 1);
  AcquireOptions how;
  how.max_wait = args.wait;
  how.retry_delay = args.retry_delay;
  how.retry_jitter = args.retry_delay / 2;
  auto lock = (*client)->acquire(args.resource, args.ttl, how);
  if (!lock) return report_error(globals, lock.error(), (*client)->quorum());
  print_lock(globals, *lock, "valid");
  return kExitOk;
}

int cmd_release(const Globals& globals, const std::string& resource, const std::string& token) {
  auto client = connect_client(globals);
  if (!client) return report_error(globals, client.error(), globals.nodes.size() / 2 + 1);
  const std::size_t quorum = (*client)->quorum();
  const Lock lock(resource, token, Lock::Clock::now());
  auto report = (*client)->release(lock);
  if (!report) return report_error(globals, report.error(), quorum);
  std::size_t answered = 0;
  for (const auto& n : report->nodes) {
    if (n.status == NodeStatus::kOk || n.status == NodeStatus::kRefused) ++answered;
  }
  const auto deleted = static_cast<std::size_t>(report->deleted);
  int code = kExitOk;
  std::string outcome = "released";
  if (deleted < quorum && answered < quorum) {
    code = kExitUnreachable;
    outcome = "unreachable";
  } else if (deleted < quorum) {
    // Expired, released before, or another token: the lock was not ours.
    code = kExitFailure;
    outcome = "not owner";
  }
  if (globals.json) {
    print_json({{"resource", resource},
                {"released", code == kExitOk},
                {"outcome", outcome},
                {"deleted", report->deleted},
                {"exit_code", code},
                {"nodes", nodes_json(report->nodes)}});
    return code;
  }
  const std::string counts = "deleted on " + std::to_string(deleted) + " of " +
                             std::to_string(report->nodes.size()) + " nodes";
  if (code == kExitOk) {
    std::cout << "released \"" << resource << "\": " << counts << '\n';
  } else if (code == kExitUnreachable) {
    std::cerr << "redlock: release of \"" << resource << "\": only " << answered << " of "
              << report->nodes.size() << " nodes answered (" << counts << ")\n";
  } else {
    std::cerr << "redlock: \"" << resource << "\" is not held with this token (" << counts
              << "): it expired, was released, or belongs to another\n";
  }
  return code;
}

int cmd_extend(const Globals& globals, const std::string& resource, const std::string& token,
               milliseconds ttl) {
  auto client = connect_client(globals);
  if (!client) return report_error(globals, client.error(), globals.nodes.size() / 2 + 1);
  // The remaining validity of a lock known only by its token is unknown here:
  // the nodes decide (compare-and-pexpire), and the round must end within the
  // new ttl.
  const Lock lock(resource, token, Lock::Clock::now() + ttl, {}, ttl);
  auto extended = (*client)->extend(lock, ttl);
  if (!extended) return report_error(globals, extended.error(), (*client)->quorum());
  print_lock(globals, *extended, "extended, valid");
  return kExitOk;
}

}  // namespace redlock::cli
