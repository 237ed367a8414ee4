// status: what a client of these nodes sees now, from the library itself
// (Client::health): the nodes are parsed, validated and shown as the library
// does (passwords as ***), every node form included, and each node says
// whether it votes now and, if not, why and for how long. With --clock
// WINDOW the client watches the nodes' clocks for that long first.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli_support.hpp"
#include "commands.hpp"
#include "redlock/tools/duration.hpp"
#include "redlock/tools/text.hpp"

namespace redlock::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A node's state in one word, for the table.
std::string state_of(const NodeHealth& n) {
  if (n.voting) return "voting";
  if (!n.reachable) return "unreachable";
  if (!n.answering) return "stalled";
  return "not voting";
}

std::string format_rtt(const std::optional<std::chrono::microseconds>& rtt) {
  if (!rtt) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(rtt->count()) / 1000.0);
  return buf;
}

// "3d4h", "5m12s", "42s": two units at most.
std::string format_uptime(const std::optional<std::chrono::seconds>& uptime) {
  if (!uptime) return "-";
  long long s = uptime->count();
  const long long d = s / 86400;
  const long long h = s % 86400 / 3600;
  const long long m = s % 3600 / 60;
  s %= 60;
  if (d > 0) return std::to_string(d) + "d" + std::to_string(h) + "h";
  if (h > 0) return std::to_string(h) + "h" + std::to_string(m) + "m";
  if (m > 0) return std::to_string(m) + "m" + std::to_string(s) + "s";
  return std::to_string(s) + "s";
}

// "off", or appendfsync's value when AOF is on; "-" when unknown.
std::string format_aof(const NodeHealth& n) {
  if (!n.aof_enabled) return "-";
  if (!*n.aof_enabled) return "off";
  return n.appendfsync.empty() ? "on" : n.appendfsync;
}

std::string format_rate(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4fx", rate);
  return buf;
}

std::string format_time(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string eviction_warning(const NodeHealth& n) {
  return "maxmemory-policy " + n.maxmemory_policy + " may evict lock keys" +
         (n.maxmemory_policy.rfind("allkeys", 0) == 0 ? " and fencing counters" : "") +
         " under memory pressure: a lock could vanish while held (use noeviction)";
}

// What the summary says, and the exit status: 0 a majority votes, 6 a
// majority answers but fewer vote, 3 fewer answer.
struct Verdict {
  int code = kExitOk;
  std::string text;
};

Verdict verdict(const HealthReport& report) {
  std::size_t answering = 0;
  for (const auto& n : report.nodes) answering += n.answering ? 1 : 0;
  const std::string counts = std::to_string(report.voting) + " of " +
                             std::to_string(report.nodes.size()) + " nodes vote; a lock needs " +
                             std::to_string(report.quorum);
  if (report.quorum_available()) return {kExitOk, counts + ": locks can be granted"};
  if (answering >= report.quorum) {
    return {kExitNotVoting, counts + ": NO LOCK CAN BE GRANTED now (" + std::to_string(answering) +
                                " answer, but too few may vote)"};
  }
  return {kExitUnreachable,
          counts + ": NO LOCK CAN BE GRANTED (only " + std::to_string(answering) + " answer)"};
}

nlohmann::json node_json(const NodeHealth& n) {
  const auto or_null = [](const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
  };
  nlohmann::json j;
  j["node"] = n.node;
  j["reachable"] = n.reachable;
  j["answering"] = n.answering;
  j["voting"] = n.voting;
  j["not_voting_reason"] = or_null(n.not_voting_reason);
  j["votes_again_in_ms"] =
      n.votes_again_in ? nlohmann::json(n.votes_again_in->count()) : nlohmann::json(nullptr);
  j["error"] = or_null(n.error);
  j["rtt_us"] = n.rtt ? nlohmann::json(n.rtt->count()) : nlohmann::json(nullptr);
  j["version"] = or_null(n.version);
  j["run_id"] = or_null(n.run_id);
  j["uptime_s"] = n.uptime ? nlohmann::json(n.uptime->count()) : nlohmann::json(nullptr);
  j["persistence"] = {
      {"appendonly", n.aof_enabled ? nlohmann::json(*n.aof_enabled) : nlohmann::json(nullptr)},
      {"appendfsync", or_null(n.appendfsync)}};
  j["maxmemory_policy"] = or_null(n.maxmemory_policy);
  j["eviction_can_drop_locks"] = n.eviction_can_drop_locks;
  j["clock"] = {{"rate", n.clock_rate ? nlohmann::json(*n.clock_rate) : nlohmann::json(nullptr)},
                {"suspect", n.clock_suspect},
                {"reason", n.clock_suspect ? or_null(n.clock_reason) : nlohmann::json(nullptr)}};
  if (n.tls) {
    j["tls"] = {
        {"protocol", or_null(n.tls_protocol)},
        {"cipher", or_null(n.tls_cipher)},
        {"peer_subject", or_null(n.tls_peer_subject)},
        {"peer_not_after", n.tls_peer_not_after ? nlohmann::json(format_time(*n.tls_peer_not_after))
                                                : nlohmann::json(nullptr)}};
  } else {
    j["tls"] = nullptr;
  }
  if (!n.shards.empty()) {
    nlohmann::json shards = nlohmann::json::array();
    for (const auto& s : n.shards) {
      shards.push_back({{"master", s.master},
                        {"slots", s.slots},
                        {"reachable", s.reachable},
                        {"error", or_null(s.error)}});
    }
    j["shards"] = std::move(shards);
  }
  return j;
}

void print_table(const HealthReport& report, bool with_clock) {
  std::printf("%-24s %-11s %9s  %-8s %-7s %-8s  %-8s  %s\n", "NODE", "STATE", "RTT", "VERSION",
              "UPTIME", "RUN ID", "AOF", "EVICTION");
  for (const auto& n : report.nodes) {
    const std::string name = tools::escape_bytes(n.node);
    const std::string run_id = n.run_id.empty() ? "-" : n.run_id.substr(0, 8);
    std::printf("%-24s %-11s %9s  %-8s %-7s %-8s  %-8s  %s\n", name.c_str(), state_of(n).c_str(),
                format_rtt(n.rtt).c_str(), n.version.empty() ? "-" : n.version.c_str(),
                format_uptime(n.uptime).c_str(), run_id.c_str(), format_aof(n).c_str(),
                n.maxmemory_policy.empty() ? "-" : n.maxmemory_policy.c_str());
    // The details, indented under their node.
    std::vector<std::string> notes;
    if (!n.voting) {
      std::string why = "not voting: " + tools::printable(n.not_voting_reason);
      if (n.votes_again_in && why.find("votes again") == std::string::npos) {
        why += "; votes again in " + tools::format_duration(*n.votes_again_in);
      }
      notes.push_back(why);
    } else if (!n.error.empty()) {
      notes.push_back("last error: " + tools::printable(n.error));
    }
    if (with_clock || n.clock_suspect) {
      std::string clock = "clock: " + (n.clock_rate ? format_rate(*n.clock_rate) +
                                                          " the rate of "
                                                          "this machine's"
                                                    : std::string("rate not measured"));
      if (n.clock_suspect) clock += "; SUSPECT: " + tools::printable(n.clock_reason);
      notes.push_back(clock);
    }
    if (n.eviction_can_drop_locks) notes.push_back("WARNING: " + eviction_warning(n));
    if (n.tls) {
      std::string tls = "tls: " + n.tls_protocol + " " + n.tls_cipher;
      if (!n.tls_peer_subject.empty()) tls += ", peer " + tools::printable(n.tls_peer_subject);
      if (n.tls_peer_not_after) tls += ", valid until " + format_time(*n.tls_peer_not_after);
      notes.push_back(tls);
    }
    for (const auto& s : n.shards) {
      notes.push_back("shard " + s.master + " slots " + s.slots +
                      (s.reachable
                           ? ""
                           : ": unreachable" +
                                 (s.error.empty() ? "" : " (" + tools::printable(s.error) + ")")));
    }
    for (const auto& note : notes) std::printf("    %s\n", note.c_str());
  }
}

}  // namespace

int cmd_status(const Globals& globals, milliseconds timeout, milliseconds clock_window) {
  auto client = connect_client(globals, [&](ClientOptions& o) {
    o.connect_timeout = timeout;
    // Ten samples or so over the window (the clock check keeps twenty
    // intervals); without --clock, the library's default.
    if (clock_window.count() > 0) {
      o.clock_check_interval = std::clamp(clock_window / 10, milliseconds(10), milliseconds(1000));
    }
  });
  // A malformed or repeated node: bad usage, as for every command.
  if (!client) return report_error(globals, client.error(), globals.nodes.size() / 2 + 1);
  if (clock_window.count() > 0) std::this_thread::sleep_for(clock_window);
  auto report = (*client)->health(timeout);
  if (!report) return report_error(globals, report.error(), (*client)->quorum());
  const Verdict v = verdict(*report);

  if (globals.json) {
    nlohmann::json nodes = nlohmann::json::array();
    std::size_t reachable = 0;
    std::size_t answering = 0;
    std::size_t suspect = 0;
    for (const auto& n : report->nodes) {
      nodes.push_back(node_json(n));
      reachable += n.reachable ? 1 : 0;
      answering += n.answering ? 1 : 0;
      suspect += n.clock_suspect ? 1 : 0;
    }
    nlohmann::json out = {
        {"nodes", nodes},           {"reachable", reachable},
        {"answering", answering},   {"voting", report->voting},
        {"quorum", report->quorum}, {"quorum_available", report->quorum_available()},
        {"clock_suspect", suspect}, {"exit_code", v.code}};
    if (clock_window.count() > 0) out["clock_window_ms"] = clock_window.count();
    std::cout << to_json_text(out) << '\n' << std::flush;
    return v.code;
  }
  print_table(*report, clock_window.count() > 0);
  std::printf("%s\n", v.text.c_str());
  if (clock_window.count() > 0) {
    std::size_t suspect = 0;
    for (const auto& n : report->nodes) suspect += n.clock_suspect ? 1 : 0;
    std::printf("clocks checked for %s against this machine's: %zu suspect\n",
                tools::format_duration(clock_window).c_str(), suspect);
  }
  std::fflush(stdout);
  return v.code;
}

}  // namespace redlock::cli
