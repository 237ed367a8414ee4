// status: each node asked directly (tools/common's blocking
// RedisConnection), not through the engine, so that what is shown is what
// each node answers right now. The clock check (--clock WINDOW) is the
// engine's own: a client samples every node's TIME for the window and its
// metrics say what it found.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli_support.hpp"
#include "commands.hpp"
#include "redlock/tools/redis_connection.hpp"

namespace redlock::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

struct Probe {
  std::string node;
  bool reachable = false;
  microseconds rtt{0};
  std::string version;
  std::string run_id;
  std::string error;
};

// "host:port" split at the last colon; false for anything else.
bool split_address(const std::string& address, std::string& host, int& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= address.size()) return false;
  const std::string digits = address.substr(colon + 1);
  if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  port = std::stoi(digits);
  host = address.substr(0, colon);
  return port >= 1 && port <= 65535;
}

Probe probe(const std::string& address, milliseconds timeout) {
  Probe out;
  out.node = address;
  std::string host;
  int port = 0;
  if (!split_address(address, host, port)) {
    out.error = "not host:port";
    return out;
  }
  auto conn = tools::RedisConnection::open(host, port, timeout);
  if (!conn) {
    out.error = conn.error();
    return out;
  }
  const auto t0 = Clock::now();
  auto pong = conn->run({"PING"});
  const auto t1 = Clock::now();
  if (!pong || pong->is_error()) {
    out.error = "PING: " + (pong ? pong->str : pong.error());
    return out;
  }
  out.reachable = true;
  out.rtt = std::chrono::duration_cast<microseconds>(t1 - t0);
  auto info = conn->run({"INFO", "server"});
  if (!info || info->type != tools::RedisReply::Type::kString) {
    out.error = "INFO: " + (info ? tools::reply_text(*info) : info.error());
  } else {
    out.version = tools::info_field(info->str, "redis_version").value_or("");
    out.run_id = tools::info_field(info->str, "run_id").value_or("");
  }
  return out;
}

// What a client's clock check found per node over `window`, in node order.
// Unset when the client could not start (the reason is on stderr).
std::optional<std::vector<NodeMetrics>> check_clocks(const Globals& globals, milliseconds timeout,
                                                     milliseconds window) {
  // Ten samples or so over the window (ClockCheck keeps twenty intervals).
  const auto interval = std::clamp(window / 10, milliseconds(10), milliseconds(1000));
  const auto started = Clock::now();
  auto client = connect_client(globals, [&](ClientOptions& o) {
    o.clock_check_interval = interval;
    o.connect_timeout = timeout;
  });
  if (!client) {
    std::cerr << "redlock: clock check: " << client.error() << '\n';
    return std::nullopt;
  }
  std::this_thread::sleep_until(started + window);
  return (*client)->metrics().nodes;
}

std::string format_rate(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4fx", rate);
  return buf;
}

std::string format_rtt(microseconds rtt) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(rtt.count()) / 1000.0);
  return buf;
}

}  // namespace

int cmd_status(const Globals& globals, milliseconds timeout, milliseconds clock_window) {
  std::vector<Probe> probes(globals.nodes.size());
  std::optional<std::vector<NodeMetrics>> clocks;
  {
    std::vector<std::thread> threads;
    threads.reserve(globals.nodes.size());
    for (std::size_t i = 0; i < globals.nodes.size(); ++i) {
      threads.emplace_back([&, i] { probes[i] = probe(globals.nodes[i], timeout); });
    }
    // Meanwhile, on this thread.
    if (clock_window.count() > 0) clocks = check_clocks(globals, timeout, clock_window);
    for (auto& t : threads) t.join();
  }
  // The clock check's findings for node i (null when not measured).
  const auto clock_of = [&](std::size_t i) -> const NodeMetrics* {
    return clocks && i < clocks->size() ? &(*clocks)[i] : nullptr;
  };
  std::size_t suspect = 0;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    if (const auto* c = clock_of(i); c != nullptr && c->clock_suspect) ++suspect;
  }
  std::size_t reachable = 0;
  for (const auto& p : probes) reachable += p.reachable ? 1 : 0;
  const std::size_t quorum = probes.size() / 2 + 1;
  const int code = reachable >= quorum ? kExitOk : kExitUnreachable;

  if (globals.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& p : probes) {
      nlohmann::json entry = {{"node", p.node}, {"reachable", p.reachable}};
      entry["rtt_us"] = p.reachable ? nlohmann::json(p.rtt.count()) : nlohmann::json(nullptr);
      entry["version"] = p.version.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.version);
      entry["run_id"] = p.run_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.run_id);
      entry["error"] = p.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.error);
      if (clock_window.count() > 0) {
        const auto* c = clock_of(static_cast<std::size_t>(&p - probes.data()));
        entry["clock"] = {
            {"rate", c != nullptr && c->clock_rate ? nlohmann::json(*c->clock_rate)
                                                   : nlohmann::json(nullptr)},
            {"suspect", c != nullptr && c->clock_suspect},
            {"reason", c != nullptr && c->clock_suspect ? nlohmann::json(c->clock_reason)
                                                        : nlohmann::json(nullptr)}};
      }
      nodes.push_back(std::move(entry));
    }
    nlohmann::json out = {
        {"nodes", nodes}, {"reachable", reachable}, {"quorum", quorum}, {"exit_code", code}};
    if (clock_window.count() > 0) {
      out["clock_window_ms"] = clock_window.count();
      out["clock_suspect"] = suspect;
    }
    std::cout << to_json_text(out) << '\n';
    return code;
  }
  const bool with_clock = clock_window.count() > 0;
  std::printf("%-22s %-12s %10s  %-8s  %-40s", "NODE", "STATE", "RTT", "VERSION", "RUN ID");
  if (with_clock) std::printf("  %-9s", "CLOCK");
  std::printf("\n");
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const auto& p = probes[i];
    const std::string rtt = p.reachable ? format_rtt(p.rtt) : "-";
    std::printf("%-22s %-12s %10s  %-8s  %-40s", p.node.c_str(),
                p.reachable ? "reachable" : "unreachable", rtt.c_str(),
                p.version.empty() ? "-" : p.version.c_str(),
                p.run_id.empty() ? "-" : p.run_id.c_str());
    if (with_clock) {
      const auto* c = clock_of(i);
      const std::string rate = c != nullptr && c->clock_rate ? format_rate(*c->clock_rate) : "-";
      std::printf("  %-9s", rate.c_str());
      if (c != nullptr && c->clock_suspect) std::printf("  SUSPECT: %s", c->clock_reason.c_str());
    }
    if (!p.error.empty()) std::printf("  %s", p.error.c_str());
    std::printf("\n");
  }
  std::printf("%zu of %zu nodes reachable; a lock needs %zu\n", reachable, probes.size(), quorum);
  if (with_clock) {
    std::printf("clocks checked for %lld ms against this machine's: %zu suspect\n",
                static_cast<long long>(clock_window.count()), suspect);
  }
  std::fflush(stdout);
  return code;
}

}  // namespace redlock::cli
