// acquire, release and extend: one blocking Client call each.
//
// Once acquire holds a lock, the lock must end up either in the user's hands
// (its token written to stdout) or released: nothing between the grant and
// the output may end the process otherwise. A failed write (a closed stdout)
// releases the lock, and so does any exception while printing.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>

#include "cli_support.hpp"
#include "commands.hpp"
#include "redlock/tools/duration.hpp"
#include "redlock/tools/text.hpp"

namespace redlock::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The library's default connect timeout (ClientOptions::connect_timeout).
constexpr milliseconds kConnectTimeout{1000};

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

// Writes `text` to stdout and flushes; false if it did not get out.
bool write_stdout(const std::string& text) {
  std::cout << text << std::flush;
  return static_cast<bool>(std::cout);
}

void say(const Globals& globals, const std::string& message) {
  if (!globals.quiet) std::cerr << "redlock: " << message << '\n';
}

// Hands a granted or extended lock to the user: the token (or the JSON
// object) on stdout, the detail on stderr. False if stdout could not take
// it; never throws.
bool deliver(const Globals& globals, const Lock& lock, bool with_fence, std::string_view what) {
  std::string out;
  try {
    if (globals.json) {
      nlohmann::json json;
      put_bytes(json, "resource", lock.resource());
      json["token"] = lock.token();
      json["validity_ms"] = lock.remaining().count();
      json["ttl_ms"] = lock.ttl().count();
      // extend knows the lock by its token only: its fence is not known here.
      json["fence"] = with_fence ? nlohmann::json(lock.fence()) : nlohmann::json(nullptr);
      json["nodes"] = nodes_json(lock.votes());
      out = to_json_text(json) + '\n';
    } else {
      // The token alone on stdout, for T=$(redlock acquire ...).
      out = lock.token() + '\n';
    }
    if (!write_stdout(out)) return false;
  } catch (...) {
    return false;
  }
  if (globals.json) return true;
  // The user has the token now: what follows is only for people.
  try {
    say(globals, std::string(what) + " " + tools::quoted(lock.resource()) + ": valid for " +
                     std::to_string(lock.remaining().count()) + " ms (ttl " +
                     tools::format_duration(lock.ttl()) + ", " +
                     std::to_string(count_ok(lock.votes())) + " of " +
                     std::to_string(lock.votes().size()) + " nodes" +
                     (with_fence && lock.fence() != 0 ? ", fence " + std::to_string(lock.fence())
                                                      : std::string()) +
                     ")");
  } catch (...) {
  }
  return true;
}

}  // namespace

milliseconds WaitBudget::connect_timeout() const {
  if (wait.count() == 0 || wait == milliseconds::max()) return kConnectTimeout;
  const auto spent = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
  return std::clamp(wait - spent, milliseconds(1), kConnectTimeout);
}

milliseconds WaitBudget::left() const {
  if (wait == milliseconds::max()) return wait;
  const auto spent = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
  return std::max(wait - spent, milliseconds(0));
}

Result<std::unique_ptr<Client>> connect_client(const Globals& globals,
                                               const std::function<void(ClientOptions&)>& adjust) {
  ClientOptions options;
  options.nodes = globals.nodes;
  options.max_ttl = globals.max_ttl;
  options.restart_grace = globals.restart_grace;
  options.fencing = globals.fencing;
  options.tls = globals.tls;
  // A release's report says what every node did, not only the first majority.
  options.release_wait = ClientOptions::ReleaseWait::kEveryNode;
  if (globals.node_timeout) options.node_timeout = *globals.node_timeout;
  auto logger = std::make_shared<spdlog::logger>("redlock",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(globals.verbose ? spdlog::level::debug : spdlog::level::off);
  options.logger = std::move(logger);
  if (adjust) adjust(options);
  return Client::connect(std::move(options));
}

int report_error(const Globals& globals, const Error& error, std::size_t quorum,
                 std::optional<std::string_view> resource) {
  int code = exit_code_for(error, quorum);
  if (code == kExitNotAcquired) code = globals.conflict_exit_code;
  if (globals.json) {
    nlohmann::json out;
    if (resource) put_bytes(out, "resource", *resource);
    out["error"] = std::string(to_string(error.code()));
    out["message"] = error.message();
    out["exit_code"] = code;
    out["nodes"] = nodes_json(error.nodes());
    (void)write_stdout(to_json_text(out) + '\n');
  } else {
    // The library's messages quote names as they are; a terminal gets them
    // escaped.
    std::cerr << "redlock: " << tools::printable(to_string(error)) << '\n';
  }
  return code;
}

int cmd_acquire(const Globals& globals, const AcquireArgs& args) {
  const WaitBudget budget{Clock::now(), args.wait};
  auto client = connect_client(
      globals, [&](ClientOptions& o) { o.connect_timeout = budget.connect_timeout(); });
  if (!client) {
    return report_error(globals, client.error(), globals.nodes.size() / 2 + 1, args.resource);
  }
  AcquireOptions how;
  how.max_wait = budget.left();
  how.retry_delay = args.retry_delay;
  how.retry_jitter = args.retry_delay / 2;
  auto lock = (*client)->acquire(args.resource, args.ttl, how);
  if (!lock) return report_error(globals, lock.error(), (*client)->quorum(), args.resource);
  if (!deliver(globals, *lock, true, "acquired")) {
    // Nobody has the token: keep nobody waiting for the ttl.
    auto released = (*client)->release(*lock);
    std::cerr << "redlock: could not write the token to stdout; "
              << (released && static_cast<std::size_t>(released->deleted) >= (*client)->quorum()
                      ? "the lock was released"
                      : "the lock could not be released and expires with its ttl")
              << '\n';
    return kExitFailure;
  }
  return kExitOk;
}

int cmd_release(const Globals& globals, const std::string& resource, const std::string& token) {
  auto client = connect_client(globals);
  if (!client) return report_error(globals, client.error(), globals.nodes.size() / 2 + 1, resource);
  const std::size_t quorum = (*client)->quorum();
  const Lock lock(resource, token, Lock::Clock::now());
  auto report = (*client)->release(lock);
  if (!report) return report_error(globals, report.error(), quorum, resource);
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
    nlohmann::json out;
    put_bytes(out, "resource", resource);
    out["released"] = code == kExitOk;
    out["outcome"] = outcome;
    out["deleted"] = report->deleted;
    out["exit_code"] = code;
    out["nodes"] = nodes_json(report->nodes);
    (void)write_stdout(to_json_text(out) + '\n');
    return code;
  }
  const std::string name = tools::quoted(resource);
  const std::string counts = "deleted on " + std::to_string(deleted) + " of " +
                             std::to_string(report->nodes.size()) + " nodes";
  if (code == kExitOk) {
    say(globals, "released " + name + ": " + counts);
  } else if (code == kExitUnreachable) {
    std::cerr << "redlock: release of " << name << ": only " << answered << " of "
              << report->nodes.size() << " nodes answered (" << counts << ")\n";
  } else {
    std::cerr << "redlock: " << name << " is not held with this token (" << counts
              << "): it expired, was released, or belongs to another\n";
  }
  return code;
}

int cmd_extend(const Globals& globals, const std::string& resource, const std::string& token,
               milliseconds ttl) {
  auto client = connect_client(globals);
  if (!client) return report_error(globals, client.error(), globals.nodes.size() / 2 + 1, resource);
  // The remaining validity of a lock known only by its token is unknown here:
  // the nodes decide (compare-and-pexpire), and the round must end within the
  // new ttl.
  const Lock lock(resource, token, Lock::Clock::now() + ttl, {}, ttl);
  auto extended = (*client)->extend(lock, ttl);
  if (!extended) return report_error(globals, extended.error(), (*client)->quorum(), resource);
  // The lock stays held either way; a token that could not be printed is
  // the one the user gave.
  if (!deliver(globals, *extended, false, "extended")) return kExitFailure;
  return kExitOk;
}

}  // namespace redlock::cli
