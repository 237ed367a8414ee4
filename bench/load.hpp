// load.hpp: the parts of redlock-bench (the load tool) that its scenarios
// share: the configuration, the JSON lines, the time window of a run, and the
// scenario entry points.
//
// Threading: Output, Progress and the scenario functions are used from the
// main thread; ErrorLog may be used from any thread. Every scenario is bounded
// in time (warm-up + measured window) and in count (Config::max_ops).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "cpu_meter.hpp"
#include "redlock/redlock.hpp"
#include "stats.hpp"

namespace redlock::bench {

using json = nlohmann::json;
using std::chrono::microseconds;
using std::chrono::milliseconds;

enum class ReleaseMode { kWait, kGuard };

struct Config {
  std::vector<std::string> scenarios;
  std::vector<int> ports;
  std::vector<std::string> hosts;  // --hosts: the host of each port (empty: 127.0.0.1)
  int nodes = 0;                   // 0: as many as --ports, or 5
  double seconds = 10;
  double warmup_s = 1;
  int inflight = 64;
  int mem_locks = 2000;  // mem: locks held, then acquires waiting
  int workers = 4;
  int processes = 0;
  long ttl_ms = 0;  // 0: 10000, or 30000 for geo
  long retry_delay_ms = 20;
  long retry_jitter_ms = 10;
  long cmd_timeout_ms = 0;               // 0: 50, or 1000 for geo
  long busy_poll_us = -1;                // ClientOptions::busy_poll; -1: the library's default
  long blocking_spin_us = -1;            // ClientOptions::blocking_spin; -1: the library's default
  std::string fencing = "default";       // ClientOptions::fencing: default, on or off
  std::string contest_gate = "default";  // c: AcquireOptions::contest_gate: default, on or off
  long max_wait_ms = 10000;
  long hold_us = 0;
  long handoff_hold_ms = 50;                      // handoff: held for [H, 2H] before the release
  std::vector<std::string> wake = {"on", "off"};  // handoff: wake_on_release variants
  int rep = 1;
  std::string key_prefix;
  bool prefix_given = false;
  std::string release = "default";
  std::string c_retry = "library";
  long max_ops = 10'000'000;
  std::vector<double> geo_delays_ms = {1, 10, 40, 80, 150};
  long base_requests = 50000;
  long wait_idle_s = 0;          // before each rep, wait up to this long for an idle machine
  double max_noise_cores = 0.2;  // a run with more busy elsewhere is run again
  int noise_retries = 2;
  std::vector<int> base_clients = {1, 64};
  // For each S: the scenarios again against a local Redis Cluster of S
  // masters (no replicas) as the only node (cluster://), labelled
  // ".../clusterS"; the cluster is started for the rep and stopped after it.
  std::vector<int> cluster_shards;
  std::string samples_path;
  // TLS: "off", "on" (every run over TLS) or "both" (each run in plain text,
  // then over TLS, labelled "/tls"). A local cluster gets a TLS port per
  // node and throwaway certificates; existing nodes name their TLS ports
  // with --tls-ports (or, with "on", --ports are TLS ports).
  std::string tls = "off";
  std::vector<int> tls_ports;
  std::string tls_ca;  // ClientOptions::tls (the local cluster's CA by default)
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  bool tls_insecure = false;
  // Internal: set on the processes that --processes starts.
  int child = -1;
  std::string raw_out;
};

// What a run talks to: the nodes (hosts[i]:ports[i]), and the pid of the
// redis-server on each (0 when not started by us: no CPU accounting then).
struct Nodes {
  std::vector<int> ports;
  std::vector<int> pids;
  std::vector<std::string> hosts;
  bool tls = false;  // rediss://
  // Not empty: the one node is this cluster:// address, and `pids` are the
  // servers behind it (ports and hosts are unused).
  std::string url;
};

struct Run {
  std::string scenario;
  std::string label;
  int rep = 1;
  int nodes = 0;
  // a, b, d, geo: every key of the run derives from it, and it is new for
  // every run, so that a release lost at the end of one run (a LockGuard's,
  // not waited for) cannot leave a key that the next run meets. c contends
  // on --key-prefix + ":c" across runs and processes.
  std::string key;
  // handoff: the waiter's AcquireOptions::wake_on_release.
  bool wake = true;
  // > 0: the one node is a local Redis Cluster of this many masters.
  int cluster_shards = 0;
};

[[nodiscard]] double round1(double v);
[[nodiscard]] double round3(double v);
[[nodiscard]] milliseconds ttl_for(const Config& cfg, const std::string& scenario);
[[nodiscard]] milliseconds node_timeout_for(const Config& cfg, const std::string& scenario);
[[nodiscard]] ReleaseMode release_for(const Config& cfg, const std::string& scenario);
[[nodiscard]] const char* release_name(ReleaseMode m);
[[nodiscard]] std::string join(const std::vector<int>& v);
[[nodiscard]] std::string join(const std::vector<std::string>& v);
[[nodiscard]] std::vector<std::string> addresses(const std::vector<int>& ports);
[[nodiscard]] std::vector<std::string> addresses(const Nodes& nodes);
// The O_EXCL marker file of a key prefix: every process that contends with
// the same prefix creates the same file inside its critical section.
[[nodiscard]] std::filesystem::path marker_path(const std::string& prefix);

// The JSON lines (stdout, one per run) and the optional samples file.
class Output {
 public:
  explicit Output(const Config& cfg);
  // Writes one line to stdout and keeps it for the table.
  void emit(json j);
  // Keeps "label<TAB>rep<TAB>kind<TAB>microseconds" lines for --samples,
  // written by the next emit() (a run that is run again drops them).
  void write_samples(const Run& run, const Samples& s);
  void drop_samples() { pending_.clear(); }
  [[nodiscard]] const std::vector<json>& lines() const { return lines_; }

 private:
  std::vector<json> lines_;
  std::ofstream samples_;
  std::string pending_;
};

// {"impl":"redlock","scenario",...,"label","rep","nodes"}: a line to complete
// (and "cluster_shards" when the node is a Redis Cluster).
[[nodiscard]] json redlock_line(const Run& run);
// How the resources' keys spread over the hash slots and over the masters of
// a Redis Cluster of `shards` masters (slots split as start_redis_cluster
// splits them): slots_used, shards_used, resources_per_shard_min / _max.
void put_slot_spread(json& j, const std::vector<std::string>& resources, std::size_t shards);
// p50_us/p99_us (cycle), acq_*, rel_* (when the release was timed). Sorts s.
void put_latency(json& j, Samples& s);
// cpu_* fields: CPU time per operation of the client's threads (each, and
// cpu_client_us_per_op for all of them) and of the servers (all of them,
// and the busiest one's cores), time spent runnable but waiting for a core,
// context switches, and how busy the rest of the machine was (see
// cpu_meter.hpp).
void put_cpu(json& j, const CpuReport& cpu, long ops, bool servers_known);
// `pids` if all are known (> 0), else none.
[[nodiscard]] std::vector<int> known_pids(const std::vector<int>& pids);

// Prints the first few errors of a run, then only counts them.
class ErrorLog {
 public:
  static constexpr int kShownErrors = 5;
  explicit ErrorLog(std::string where) : where_(std::move(where)) {}
  void note(const std::string& what) {
    std::lock_guard lk(mutex_);
    if (++count_ <= kShownErrors) {
      std::cerr << "redlock-bench: " << where_ << ": " << what << '\n';
    } else if (count_ == kShownErrors + 1) {
      std::cerr << "redlock-bench: " << where_ << ": more errors, only counted\n";
    }
  }

 private:
  std::string where_;
  std::mutex mutex_;
  long count_ = 0;
};

// A line on stderr every few seconds, for runs long enough to need one.
class Progress {
 public:
  static constexpr double kProgressMinRunSeconds = 5.0;
  static constexpr std::chrono::seconds kProgressEvery{2};
  Progress(const Run& run, const Config& cfg, Clock::time_point start)
      : label_(run.label + " rep " + std::to_string(run.rep) + "/" + std::to_string(cfg.rep)),
        start_(start),
        total_s_(cfg.warmup_s + cfg.seconds),
        enabled_(cfg.child < 0 && total_s_ >= kProgressMinRunSeconds),
        next_(start + kProgressEvery) {}

  void tick(long ops) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (now < next_) return;
    next_ = now + kProgressEvery;
    char buf[160];
    std::snprintf(buf, sizeof buf, "redlock-bench: %s: %.0f of %.0f s, %ld ops measured",
                  label_.c_str(), std::chrono::duration<double>(now - start_).count(), total_s_,
                  ops);
    std::cerr << buf << '\n';
  }

 private:
  std::string label_;
  Clock::time_point start_;
  double total_s_;
  bool enabled_;
  Clock::time_point next_;
};

struct Window {
  Clock::time_point start;
  Clock::time_point warm_end;
  Clock::time_point end;
};

[[nodiscard]] Window make_window(const Config& cfg);

// A client of `nodes` with ClientOptions::node_timeout, and busy_poll and
// fencing as `cfg` says; an error unless the first `required` nodes (all by
// default) are connected within a few seconds.
[[nodiscard]] tl::expected<std::unique_ptr<redlock::Client>, std::string> connect_client(
    const Config& cfg, const std::vector<std::string>& nodes, milliseconds node_timeout,
    std::size_t required = static_cast<std::size_t>(-1));

// The scenarios. Each returns its JSON line (or emits several), writes its
// samples with Output::write_samples, and reports CPU use per operation when
// `nodes.pids` are known.
// redis-benchmark SET against 127.0.0.1:port (the server's pid, or 0), one
// line per --base-clients value.
void run_base(const Config& cfg, int rep, const std::string& host, int port, int pid, Output& out);
[[nodiscard]] json run_sequential(const Config& cfg, const Run& run, redlock::Client& client,
                                  const std::string& resource, ReleaseMode mode,
                                  const std::vector<int>& server_pids, Output& out);
// ok is false when cycles were still in flight long after the window.
[[nodiscard]] json run_inflight(const Config& cfg, const Run& run, redlock::Client& client,
                                const std::vector<int>& server_pids, Output& out, bool& ok);
// raw, if not null, receives every sample (for a --processes parent).
[[nodiscard]] json run_contended(const Config& cfg, const Run& run, redlock::Client& client,
                                 const std::vector<int>& server_pids, Output& out, Samples* raw);
// Starts cfg.processes copies of this tool on scenario c; false if one failed.
[[nodiscard]] bool run_c_processes(const Config& cfg, const Nodes& nodes, Output& out);
// handoff: `holder` takes the lock, a second client (on `nodes`) waits for
// it, the holder releases after --handoff-hold-ms..2x; one sample per
// hand-off: holder's release call -> the waiter holds. ok is false when the
// waiter could not be set up or a wait overran max_wait.
[[nodiscard]] json run_handoff(const Config& cfg, const Run& run, redlock::Client& holder,
                               const std::vector<std::string>& nodes,
                               const std::vector<int>& server_pids, Output& out, bool& ok);
// mem: heap bytes per held lock (on `holder`) and per waiting acquire (on a
// second client on `nodes`); ok is false when a step could not be done.
[[nodiscard]] json run_memory(const Config& cfg, const Run& run, redlock::Client& holder,
                              const std::vector<std::string>& nodes, bool& ok);
// nullopt when the proxies or the client could not be set up (logged).
[[nodiscard]] std::optional<json> run_geo(const Config& cfg, const Run& run, const Nodes& nodes,
                                          Output& out);

// The human table and the targets, on stderr.
void print_table(const std::vector<json>& lines);
void print_targets(const std::vector<json>& lines);

}  // namespace redlock::bench
