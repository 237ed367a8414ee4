// redlock-scriptcost: what one node's CPU pays per lock command, a plain
// SET NX PX against the scripts redlock sends in its place.
//
// Starts one redis-server (LocalCluster: temporary directory, free port,
// stopped on exit), or uses one already running (--port, --pid). For each
// kind below, in turn and --rep times, one hiredis connection sends --count
// operations in batches of --pipeline commands (written at once, their
// replies read at once), each on a key of its own. Per kind and rep
// it prints one JSON line on stdout:
//   server_cpu_us_per_cmd   the server's threads' CPU time per command
//                           (/proc, CpuMeter): reading, parsing, running,
//                           replying;
//   usec_per_call           Redis's own time in the command (INFO
//                           commandstats of the top-level command; a script's
//                           includes the commands it runs);
// and at the end, on stderr, the medians and what a script adds.
//
// Kinds (KEYS and arguments as redlock sends them; keys k:<i>, counters
// c:<i % 64> seeded beforehand, as a running client's resources have them):
//   set         SET k token NX PX ttl: the acquire of one resource with
//               fencing off (and the floor's);
//   script-set  EVALSHA of a script that runs only that SET: what calling a
//               script adds to the command it runs;
//   function-set  the same SET in a Redis function, with FCALL;
//   set-incr    SET k token NX PX ttl, then INCR c: the fenced acquire's two
//               commands sent as two commands (per pair);
//   fenced      EVALSHA of the fenced acquire of one resource
//               (kFencedAcquireOneScript: the SET and the INCR);
//   release     EVALSHA of the release (kReleaseScript) of a key the token
//               holds, announced with PUBLISH: every cycle's, fenced or not.
#include <hiredis/hiredis.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <redlock/cluster/local_cluster.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_meter.hpp"
#include "protocol.hpp"

namespace {

using json = nlohmann::json;
using redlock::detail::Script;

// A script that runs only the acquire's SET NX PX.
// A script that runs only the acquire's SET NX PX, and its SHA1 (SCRIPT
// LOAD's answer).
constexpr std::string_view kSetOnlyBody =
    "return redis.call(\"set\", KEYS[1], ARGV[1], \"NX\", \"PX\", ARGV[2])";
std::string set_only_sha;
// The same SET as a Redis function (FUNCTION LOAD, FCALL; Redis 7).
constexpr std::string_view kSetOnlyLibrary =
    "#!lua name=redlock_scriptcost\nredis.register_function('set_only', function(keys, args) "
    "return redis.call('set', keys[1], args[1], 'NX', 'PX', args[2]) end)";

constexpr const char* kToken = "0123456789abcdef0123456789abcdef";  // a token's length
constexpr int kCounters = 64;

struct Kind {
  std::string name;
  std::vector<std::string> stats;  // its commands' commandstats entries
};

const std::vector<Kind> kKinds = {{"set", {"set"}},
                                  {"script-set", {"evalsha"}},
                                  {"function-set", {"fcall"}},
                                  {"set-incr", {"set", "incr"}},
                                  {"fenced", {"evalsha"}},
                                  {"release", {"evalsha"}}};

using Conn = std::unique_ptr<redisContext, decltype(&redisFree)>;

// One command and its reply, or the reason it failed.
std::optional<std::string> command(redisContext* c, const std::vector<std::string>& argv,
                                   std::string* out = nullptr) {
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
  if (r == nullptr) return std::string(c->errstr);
  std::optional<std::string> err;
  if (r->type == REDIS_REPLY_ERROR) err = std::string(r->str, r->len);
  if (out != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
    out->assign(r->str, r->len);
  }
  freeReplyObject(r);
  return err;
}

// usec_per_call of `stat` in INFO commandstats (0 when absent).
double usec_per_call(redisContext* c, const std::string& stat) {
  std::string info;
  if (command(c, {"INFO", "commandstats"}, &info)) return 0;
  const std::string tag = "cmdstat_" + stat + ":";
  const auto at = info.find(tag);
  if (at == std::string::npos) return 0;
  const auto field = info.find("usec_per_call=", at);
  if (field == std::string::npos) return 0;
  return std::stod(info.substr(field + 14));
}

// The commands of operation i of `kind`, as redlock sends them.
std::vector<std::string> wires(const std::string& kind, long i) {
  using namespace redlock::detail;
  const std::string key = "k:" + std::to_string(i);
  const std::string counter = "c:" + std::to_string(i % kCounters);
  const std::string_view ttl = "60000";
  if (kind == "set") return {set_nx_px_command(key, kToken, 60000)};
  if (kind == "script-set") {
    return {script_command(Script{kSetOnlyBody, set_only_sha}, true, {key}, {kToken, ttl})};
  }
  if (kind == "function-set") {
    const std::string_view fcall[] = {"FCALL", "set_only", "1", key, kToken, ttl};
    return {format_command(fcall)};
  }
  if (kind == "set-incr") {
    const std::string_view incr[] = {"INCR", counter};
    return {set_nx_px_command(key, kToken, 60000), format_command(incr)};
  }
  if (kind == "fenced") {
    return {script_command(kFencedAcquireOneScript, true, {key, counter}, {kToken, ttl, "0"})};
  }
  const std::string channel = "chan:" + key;
  return {script_command(kReleaseScript, true, {key}, {kToken, "1", channel})};
}

// Whether `r` is what `kind`'s command answers when it did its work: the
// key set (OK, or a fence), the counter raised, the key released.
bool did_its_work(const std::string& kind, const redisReply& r) {
  if (r.type == REDIS_REPLY_STATUS) {
    return kind != "fenced" && kind != "release" && std::string_view(r.str, r.len) == "OK";
  }
  if (r.type != REDIS_REPLY_INTEGER) return false;
  if (kind == "release") return r.integer == 1;
  return (kind == "fenced" || kind == "set-incr") && r.integer > 1;
}

// Sends operations [0, count) of `kind`, in batches of `pipeline` commands.
// Returns the number of replies that say the command did not do its work
// (an error, a refusal), or nullopt (and `why`) when the connection failed.
std::optional<long> drive(redisContext* c, const std::string& kind, long count, int pipeline,
                          std::string& why) {
  long errors = 0;
  long sent = 0;
  long read = 0;
  const auto read_one = [&]() -> bool {
    void* out = nullptr;
    if (redisGetReply(c, &out) != REDIS_OK || out == nullptr) {
      why = c->errstr;
      return false;
    }
    auto* r = static_cast<redisReply*>(out);
    if (!did_its_work(kind, *r)) {
      if (errors == 0) {
        why = r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS
                  ? std::string(r->str, r->len)
                  : "reply of type " + std::to_string(r->type);
        if (r->type == REDIS_REPLY_INTEGER) why += " (" + std::to_string(r->integer) + ")";
      }
      ++errors;
    }
    freeReplyObject(r);
    ++read;
    return true;
  };
  for (long i = 0; i < count; ++i) {
    for (const auto& w : wires(kind, i)) {
      if (redisAppendFormattedCommand(c, w.data(), w.size()) != REDIS_OK) {
        why = c->errstr;
        return std::nullopt;
      }
      ++sent;
    }
    // In batches, as redis-benchmark -P: the server reads `pipeline`
    // commands at once and writes their replies at once.
    if (sent - read >= pipeline) {
      while (read < sent) {
        if (!read_one()) return std::nullopt;
      }
    }
  }
  while (read < sent) {
    if (!read_one()) return std::nullopt;
  }
  return errors;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"redlock-scriptcost: a node's CPU per lock command, SET NX PX against scripts"};
  long count = 200'000;
  int pipeline = 16;
  int reps = 3;
  int port = 0;
  int pid = 0;
  app.add_option("--count", count, "operations per kind and rep")
      ->check(CLI::Range(1000L, 100'000'000L));
  app.add_option("--pipeline", pipeline, "commands per batch")->check(CLI::Range(1, 4096));
  app.add_option("--rep", reps, "repetitions of every kind")->check(CLI::Range(1, 100));
  app.add_option("--port", port, "a running redis-server on 127.0.0.1 (default: start one)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--pid", pid, "its process id (for its CPU time)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  CLI11_PARSE(app, argc, argv);
  if ((port == 0) != (pid == 0)) {
    std::cerr << "redlock-scriptcost: --port and --pid go together\n";
    return 2;
  }
  std::unique_ptr<redlock::cluster::LocalCluster> cluster;
  if (port == 0) {
    auto started = redlock::cluster::LocalCluster::start(1);
    if (!started) {
      std::cerr << "redlock-scriptcost: " << started.error() << '\n';
      return 1;
    }
    cluster = std::move(*started);
    port = cluster->port(0);
    pid = cluster->info(0).pid;
  }
  const timeval tv{10, 0};
  const Conn conn(redisConnectWithTimeout("127.0.0.1", port, tv), &redisFree);
  redisContext* const c = conn.get();
  if (c == nullptr || c->err != 0) {
    std::cerr << "redlock-scriptcost: connect to 127.0.0.1:" << port << ": "
              << (c != nullptr ? c->errstr : "no memory") << '\n';
    return 1;
  }
  redisSetTimeout(c, tv);
  std::cerr << "redlock-scriptcost: redis-server on 127.0.0.1:" << port << " (pid " << pid << "), "
            << count << " operations per kind, batches of " << pipeline << ", " << reps
            << " rep(s)\n";
  std::map<std::string, std::vector<double>> cpu;
  std::map<std::string, std::vector<double>> usec;
  for (int rep = 1; rep <= reps; ++rep) {
    for (const auto& kind : kKinds) {
      // A clean keyspace, the scripts loaded, the counters seeded (INCR's
      // path, as for a resource locked before), the statistics reset. A
      // release needs its keys held by the token.
      std::string why;
      for (const std::vector<std::string>& cmd :
           {std::vector<std::string>{"FLUSHALL"},
            {"SCRIPT", "LOAD", std::string(redlock::detail::kFencedAcquireOneScript.body)},
            {"SCRIPT", "LOAD", std::string(redlock::detail::kReleaseScript.body)}}) {
        if (auto err = command(c, cmd)) why = *err;
      }
      if (auto err = command(c, {"SCRIPT", "LOAD", std::string(kSetOnlyBody)}, &set_only_sha)) {
        why = *err;
      }
      if (auto err = command(c, {"FUNCTION", "LOAD", "REPLACE", std::string(kSetOnlyLibrary)})) {
        why = *err;
      }
      for (int k = 0; k < kCounters && why.empty(); ++k) {
        if (auto err = command(c, {"SET", "c:" + std::to_string(k), "1700000000000000"})) {
          why = *err;
        }
      }
      if (why.empty() && kind.name == "release") {
        if (!drive(c, "set", count, pipeline, why)) why = "setting the keys: " + why;
      }
      if (why.empty()) {
        if (auto err = command(c, {"CONFIG", "RESETSTAT"})) why = *err;
      }
      if (!why.empty()) {
        std::cerr << "redlock-scriptcost: " << kind.name << ": " << why << '\n';
        return 1;
      }
      redlock::bench::CpuMeter meter({pid});
      meter.start();
      const auto t0 = std::chrono::steady_clock::now();
      const auto errors = drive(c, kind.name, count, pipeline, why);
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto report = meter.stop();
      if (!errors) {
        std::cerr << "redlock-scriptcost: " << kind.name << ": " << why << '\n';
        return 1;
      }
      if (*errors > 0) {
        std::cerr << "redlock-scriptcost: " << kind.name << ": " << *errors
                  << " replies say the command did not do its work, the first: " << why << '\n';
        return 1;
      }
      const double per_cmd = report.servers.on_cpu_us / static_cast<double>(count);
      double call = 0;
      for (const auto& stat : kind.stats) call += usec_per_call(c, stat);
      cpu[kind.name].push_back(per_cmd);
      usec[kind.name].push_back(call);
      json j{{"tool", "redlock-scriptcost"},
             {"kind", kind.name},
             {"rep", rep},
             {"operations", count},
             {"pipeline", pipeline},
             {"server_cpu_us_per_op", per_cmd},
             {"usec_per_call", call},
             {"ops_per_s", static_cast<double>(count) / wall},
             {"other_busy_cores", report.other_busy_cores}};
      std::cout << j.dump() << std::endl;
    }
  }
  // The medians, and what a script and fencing add to a SET NX PX.
  std::cerr << "\nkind          server CPU per op (us)   Redis's time per call (us)\n";
  for (const auto& kind : kKinds) {
    std::fprintf(stderr, "%-13s %10.2f %26.2f\n", kind.name.c_str(), median(cpu[kind.name]),
                 median(usec[kind.name]));
  }
  const double set = median(cpu["set"]);
  const double script = median(cpu["script-set"]);
  const double fenced = median(cpu["fenced"]);
  std::fprintf(stderr,
               "\nserver CPU per op against a SET NX PX: a script that runs only the SET adds "
               "%.2f us;\nthe fenced acquire adds %.2f us, %.2f of it beyond that script call; "
               "an INCR sent as a command of its own adds %.2f us\n",
               script - set, fenced - set, fenced - script, median(cpu["set-incr"]) - set);
  return 0;
}
