// redlock-bench: the end-to-end load tool. Runs redlock against real Redis
// nodes and prints one JSON object per measured run on stdout; logs, a
// progress line for long runs and a human table (with the targets) go to
// stderr, so stdout stays JSON lines.
//
//   redlock-bench --scenario a,b,c,d,geo [--ports P1,P2,... [--hosts H1,H2,...]] [--seconds S] ...
//
// Scenarios (see bench/README.md):
//   a    one client, sequential acquire + release of one uncontended resource
//   b    --inflight K cycles in flight at once (async_acquire/async_release
//        callbacks, no extra threads), each on its own resource
//   c    --workers K threads contending on one resource with the library's
//        retry (or --processes P separate processes of this tool)
//   d    like a, with one of the nodes a socket that accepts and never answers
//   geo  like a, through delay proxies (one-way 1, 10, 40, 80, 150 ms)
//   handoff  a holder releases while another client waits for the lock:
//        release call -> the waiter holds, with wake-on-release (handoff/wake)
//        and with polling at the same retry delay (handoff/poll)
// Without --ports the tool starts its own local cluster (LocalCluster) and
// stops it on the way out; --hosts names the host of each port (127.0.0.1
// by default), e.g. nodes in other containers. --tls both runs a, b, c, d
// and handoff in plain text and then over TLS (labels ".../tls"), against
// the same servers: a local cluster then listens on a TLS port too, with
// certificates made for the run (the openssl command). --cluster-shards 1,3,6
// runs a, b, c and handoff again, each rep, against a local Redis Cluster of
// 1, 3 and 6 masters as the only node (labels ".../cluster3"), started for
// the rep and stopped after it. Each --rep starts with the base:
// redis-benchmark SET against one node (-c 1 -P 1, and the other --base-clients).
//
// Every load loop is bounded by time (--warmup-s + --seconds) and by count
// (--max-ops). Exit status: 0 when every run completed (whatever the figures),
// 1 when a run could not be set up, 2 bad usage.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "load.hpp"
#include "redlock/cluster/local_cluster.hpp"
#include "redlock/cluster/redis_cluster.hpp"
#include "redlock/cluster/tls_certs.hpp"
#include "silent_node.hpp"

namespace redlock::bench {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// --wait-idle: how busy (in cores) the machine may be before a rep starts.
constexpr double kIdleCores = 0.15;

// `wake`: handoff's variant (handoff/wake, handoff/poll). `topology`, when
// given, names the node instead of the node count ("cluster3": one Redis
// Cluster of 3 masters).
std::string label_for(const Config& cfg, const std::string& scenario, int nodes, bool wake,
                      const std::string& topology = {}) {
  std::string label = scenario;
  if (scenario == "b") label += "/" + std::to_string(cfg.inflight);
  if (scenario == "c") label += "/" + std::to_string(cfg.workers) + "thr";
  if ((scenario == "a" || scenario == "d") && cfg.release != "default") {
    if (release_for(cfg, scenario) != release_for(Config{}, scenario)) {
      label += "/" + std::string(release_name(release_for(cfg, scenario)));
    }
  }
  if (scenario == "handoff") label += wake ? "/wake" : "/poll";
  if (!topology.empty()) {
    label.append("/").append(topology);
  } else if (scenario != "geo" && nodes != 5) {
    label += "/" + std::to_string(nodes) + "n";
  }
  if (cfg.busy_poll_us >= 0) label += "/bp" + std::to_string(cfg.busy_poll_us);
  if (cfg.blocking_spin_us >= 0) label += "/spin" + std::to_string(cfg.blocking_spin_us);
  if (cfg.fencing != "default") label += "/fencing-" + cfg.fencing;
  if (cfg.contest_gate != "default") label += "/gate-" + cfg.contest_gate;
  return label;
}

// The first n of `nodes`.
Nodes prefix(const Nodes& nodes, std::size_t n) {
  Nodes out;
  out.ports.assign(nodes.ports.begin(), nodes.ports.begin() + static_cast<std::ptrdiff_t>(n));
  out.pids.assign(nodes.pids.begin(), nodes.pids.begin() + static_cast<std::ptrdiff_t>(n));
  out.hosts.assign(nodes.hosts.begin(), nodes.hosts.begin() + static_cast<std::ptrdiff_t>(n));
  out.tls = nodes.tls;
  return out;
}

// The scenarios that also run against a Redis Cluster as the one node: not
// d (it needs three nodes, one of them silent), not geo (five proxied
// nodes), not c across processes (they are given plain ports).
bool runs_on_a_cluster(const Config& cfg, const std::string& scenario) {
  if (scenario == "c") return cfg.processes == 0;
  return scenario == "a" || scenario == "b" || scenario == "handoff";
}

// One run of a rep: a scenario, handoff's wake-on-release or not, over TLS
// or not.
struct Variant {
  std::string scenario;
  bool wake;
  bool tls;
};

// Starts a Redis Cluster of `shards` masters, runs the plain-text variants
// that can run on it with it as the only node (labels ".../clusterS"),
// through `measure(run, nodes, tls)`, and stops it. False when the cluster
// could not be started or a run failed.
template <typename Measure>
bool run_on_cluster(const Config& cfg, int rep, int shards, const std::vector<Variant>& variants,
                    const Measure& measure) {
  redlock::cluster::RedisClusterOptions options;
  options.shards = static_cast<std::size_t>(shards);
  auto started = redlock::cluster::start_redis_cluster(options);
  if (!started) {
    std::cerr << "redlock-bench: cannot start a Redis Cluster of " << shards
              << " masters: " << started.error() << '\n';
    return false;
  }
  auto& cluster = **started;
  Nodes nodes;
  nodes.url = redlock::cluster::cluster_url(cluster, 2);
  std::vector<int> ports;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    nodes.pids.push_back(cluster.info(i).pid);
    ports.push_back(cluster.port(i));
  }
  if (cfg.child < 0) {
    std::cerr << "redlock-bench: Redis Cluster of " << shards << " masters on ports " << join(ports)
              << " (" << cluster.dir().string() << ")\n";
  }
  std::string topology = "cluster";
  topology.append(std::to_string(shards));
  bool ok = true;
  for (const auto& [scenario, wake, tls] : variants) {
    if (tls || !runs_on_a_cluster(cfg, scenario)) continue;
    Run run{scenario, label_for(cfg, scenario, 1, wake, topology), rep, 1, {}, wake};
    run.cluster_shards = shards;
    if (!measure(run, nodes, false)) ok = false;
  }
  cluster.stop();
  return ok;
}

// One scenario (but geo and a --processes c) on its own client.
std::optional<json> run_one(const Config& cfg, const Run& run, const Nodes& used, Output& out) {
  const std::string& scenario = run.scenario;
  std::vector<std::string> nodes = addresses(used);
  std::vector<int> pids = known_pids(used.pids);
  std::unique_ptr<SilentNode> silent;
  if (scenario == "d") {
    auto s = SilentNode::start();
    if (!s) {
      std::cerr << "redlock-bench: d: silent node: " << s.error() << '\n';
      return std::nullopt;
    }
    silent = std::move(*s);
    nodes.back() = silent->address();  // the last node never answers
    if (!pids.empty()) pids.pop_back();
  }
  // d: the silent node never completes the client's connection handshake;
  // only the others must be up.
  auto client = connect_client(cfg, nodes, node_timeout_for(cfg, scenario),
                               silent ? nodes.size() - 1 : nodes.size());
  if (!client) {
    std::cerr << "redlock-bench: " << run.label << ": " << client.error() << '\n';
    return std::nullopt;
  }
  json j;
  if (scenario == "a" || scenario == "d") {
    j = run_sequential(cfg, run, **client, run.key, release_for(cfg, scenario), pids, out);
  } else if (scenario == "b") {
    bool ok = true;
    j = run_inflight(cfg, run, **client, pids, out, ok);
    if (!ok) return std::nullopt;  // the client's destructor completes what is left
  } else if (scenario == "handoff") {
    bool ok = true;
    j = run_handoff(cfg, run, **client, nodes, pids, out, ok);
    if (!ok) return std::nullopt;
  } else if (scenario == "mem") {
    bool ok = true;
    j = run_memory(cfg, run, **client, nodes, ok);
    if (!ok) return std::nullopt;
  } else if (scenario == "c") {
    Samples raw;
    j = run_contended(cfg, run, **client, pids, out, cfg.raw_out.empty() ? nullptr : &raw);
    if (!cfg.raw_out.empty()) {
      std::ofstream f(cfg.raw_out, std::ios::app);
      for (double v : raw.cycle) f << run.rep << "\tcycle\t" << v << '\n';
      for (double v : raw.acquire) f << run.rep << "\tacquire\t" << v << '\n';
    }
  }
  if (silent) {
    j["silent_node_connections"] = silent->accepted();
    j["silent_node_seen_connected"] = static_cast<bool>((*client)->connected().back());
  }
  return j;
}

int run_all(Config cfg, Output& out) {
  // The nodes: given, or a local cluster of our own.
  std::unique_ptr<redlock::cluster::LocalCluster> cluster;
  Nodes all;
  all.ports = cfg.ports;
  all.pids.assign(all.ports.size(), 0);
  all.hosts = cfg.hosts;
  all.hosts.resize(all.ports.size(), "127.0.0.1");
  // The same servers through their TLS ports.
  Nodes all_tls = all;
  all_tls.tls = true;
  if (!all.ports.empty() && cfg.tls == "on" && cfg.tls_ports.empty()) all.tls = true;
  if (!cfg.tls_ports.empty()) all_tls.ports = cfg.tls_ports;
  redlock::cluster::ClusterOptions cluster_options;
  if (all.ports.empty() && cfg.tls != "off") {
    auto files = redlock::testing::tls_files();
    if (!files) {
      std::cerr << "redlock-bench: cannot make TLS certificates: " << files.error() << '\n';
      return kExitFailure;
    }
    if (cfg.tls_ca.empty()) cfg.tls_ca = (*files)->ca_cert.string();
    const std::size_t n = cfg.nodes > 0 ? static_cast<std::size_t>(cfg.nodes) : 5;
    // The cluster picks each TLS port (read back once it runs).
    cluster_options.node_args.assign(n, redlock::testing::tls_server_args(
                                            **files, redlock::cluster::ClusterOptions::kExtraPort));
  }
  const std::size_t want = cfg.nodes > 0 ? static_cast<std::size_t>(cfg.nodes)
                                         : (all.ports.empty() ? 5 : all.ports.size());
  const bool has_geo =
      std::find(cfg.scenarios.begin(), cfg.scenarios.end(), "geo") != cfg.scenarios.end();
  const bool geo_only = has_geo && cfg.scenarios.size() == 1;
  const std::size_t geo_n = cfg.geo_delays_ms.size();
  if (all.ports.empty()) {
    const std::size_t start_n = has_geo ? std::max(geo_only ? 0 : want, geo_n) : want;
    auto started = redlock::cluster::LocalCluster::start(start_n, cluster_options);
    if (!started) {
      std::cerr << "redlock-bench: cannot start the local cluster: " << started.error() << '\n';
      return kExitFailure;
    }
    cluster = std::move(*started);
    for (std::size_t i = 0; i < cluster->size(); ++i) {
      all.ports.push_back(cluster->port(i));
      all.pids.push_back(cluster->info(i).pid);
      all.hosts.push_back("127.0.0.1");
      if (cluster->info(i).extra_port != 0) all_tls.ports.push_back(cluster->info(i).extra_port);
    }
    all_tls.pids = all.pids;
    all_tls.hosts = all.hosts;
    if (cfg.child < 0) {
      std::cerr << "redlock-bench: local cluster of " << all.ports.size() << " nodes on ports "
                << join(all.ports) << " (" << cluster->dir().string() << ")\n";
    }
  }
  if (want > all.ports.size()) {
    std::cerr << "redlock-bench: --nodes " << want << " but only " << all.ports.size()
              << " ports\n";
    return kExitUsage;
  }
  if (has_geo && geo_n > all.ports.size()) {
    std::cerr << "redlock-bench: geo needs " << geo_n << " nodes (one per --geo-delays-ms)\n";
    return kExitUsage;
  }
  if (std::find(cfg.scenarios.begin(), cfg.scenarios.end(), "d") != cfg.scenarios.end() &&
      want < 3) {
    std::cerr << "redlock-bench: d needs at least 3 nodes (one of them silent)\n";
    return kExitUsage;
  }
  if (cfg.tls != "off" && !all.tls && all_tls.ports.size() < want) {
    std::cerr << "redlock-bench: --tls " << cfg.tls << " needs --tls-ports, one per node\n";
    return kExitUsage;
  }
  const Nodes used = prefix(all, want);
  const Nodes used_tls = cfg.tls == "off" ? Nodes{} : all.tls ? used : prefix(all_tls, want);
  const bool only_tls = cfg.tls == "on";

  // Runs one scenario and emits its line. Other processes busy on this
  // machine make a run noise: it is run again (a bounded number of times),
  // after waiting for a quiet moment. False when it could not be run.
  const auto measure = [&](Run run, const Nodes& nodes, bool tls) {
    const std::string& scenario = run.scenario;
    std::optional<json> j;
    for (int attempt = 0; attempt <= cfg.noise_retries; ++attempt) {
      run.key = cfg.key_prefix + ":" + (scenario == "handoff" ? run.label : scenario) + ":" +
                std::to_string(run.rep) + "." + std::to_string(attempt);
      j = scenario == "geo" ? run_geo(cfg, run, prefix(all, geo_n), out)
                            : run_one(cfg, run, nodes, out);
      if (!j) break;
      const double noise = j->value("cpu_other_busy_cores", 0.0);
      if (cfg.max_noise_cores <= 0 || noise <= cfg.max_noise_cores) break;
      (*j)["noisy"] = true;
      if (attempt == cfg.noise_retries) break;
      out.drop_samples();
      std::fprintf(stderr,
                   "redlock-bench: %s rep %d: %.2f cores busy with other processes; "
                   "running it again\n",
                   run.label.c_str(), run.rep, noise);
      if (cfg.wait_idle_s > 0) {
        (void)wait_until_idle(kIdleCores, std::chrono::seconds(cfg.wait_idle_s));
      }
    }
    if (!j) return false;
    (*j)["tls"] = tls;
    out.emit(std::move(*j));
    return true;
  };

  int status = kExitOk;
  for (int rep = 1; rep <= cfg.rep; ++rep) {
    if (cfg.wait_idle_s > 0) {
      const double busy = wait_until_idle(kIdleCores, std::chrono::seconds(cfg.wait_idle_s));
      if (busy > kIdleCores) {
        std::fprintf(stderr, "redlock-bench: the machine is still busy (%.2f cores); going on\n",
                     busy);
      }
    }
    if (!all.tls) run_base(cfg, rep, all.hosts[0], all.ports[0], all.pids[0], out);
    // handoff runs once per --wake variant; the others once.
    // And with --tls both, each of them over TLS right after.
    std::vector<Variant> variants;
    for (const auto& scenario : cfg.scenarios) {
      std::vector<bool> wakes = {true};
      if (scenario == "handoff") {
        wakes.clear();
        for (const auto& w : cfg.wake) wakes.push_back(w == "on");
      }
      for (const bool wake : wakes) {
        if (!only_tls || scenario == "geo") variants.push_back({scenario, wake, false});
        const bool tls_too = (cfg.tls == "both" || only_tls) && scenario != "geo" &&
                             !(scenario == "c" && cfg.processes > 0);
        if (tls_too) variants.push_back({scenario, wake, true});
      }
    }
    for (const auto& [scenario, wake, tls] : variants) {
      const int n = scenario == "geo" ? static_cast<int>(geo_n) : static_cast<int>(want);
      Run run{scenario, label_for(cfg, scenario, n, wake) + (tls ? "/tls" : ""), rep, n, {}, wake};
      const Nodes& nodes = tls ? used_tls : used;
      if (scenario == "c" && cfg.processes > 0) {
        if (rep > 1) continue;  // the processes run every rep themselves
        if (!run_c_processes(cfg, used, out)) status = kExitFailure;
        continue;
      }
      if (!measure(run, nodes, tls)) status = kExitFailure;
    }
    // The same scenarios against one Redis Cluster per --cluster-shards,
    // each started for this rep and stopped after it.
    for (const int shards : cfg.cluster_shards) {
      if (!run_on_cluster(cfg, rep, shards, variants, measure)) status = kExitFailure;
    }
  }
  if (cluster) cluster->stop();
  if (cfg.child < 0) {
    print_table(out.lines());
    print_targets(out.lines());
  }
  return status;
}

}  // namespace

int tool_main(int argc, char** argv) {
  CLI::App app{"redlock-bench: load scenarios against real Redis nodes; JSON lines on stdout"};
  Config cfg;
  app.add_option("--scenario", cfg.scenarios,
                 "a, b, c, d, geo, handoff, mem (comma-separated), or all (a, b, c, d, geo)")
      ->delimiter(',')
      ->required()
      ->check(CLI::IsMember({"a", "b", "c", "d", "geo", "handoff", "mem", "all"}));
  app.add_option("--ports", cfg.ports,
                 "existing nodes on 127.0.0.1, or on --hosts (default: start 5 locally)")
      ->delimiter(',')
      ->check(CLI::Range(1, 65535));
  app.add_option("--hosts", cfg.hosts,
                 "the host of each --ports node, in order (default: 127.0.0.1 for all)")
      ->delimiter(',');
  app.add_option("--nodes", cfg.nodes, "use the first N nodes (default: all ports, or 5)")
      ->check(CLI::Range(1, 64));
  app.add_option("--seconds", cfg.seconds, "measured time per run")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup-s", cfg.warmup_s, "unmeasured time before each run")
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--inflight", cfg.inflight, "b: cycles in flight")->check(CLI::Range(1, 10000));
  app.add_option("--mem-locks", cfg.mem_locks, "mem: locks held at once, then acquires waiting")
      ->check(CLI::Range(1, 100000));
  app.add_option("--workers", cfg.workers, "c: threads contending")->check(CLI::Range(1, 256));
  app.add_option("--processes", cfg.processes,
                 "c: run P processes of this tool (each with --workers threads) instead")
      ->check(CLI::Range(0, 64));
  app.add_option("--ttl-ms", cfg.ttl_ms, "lock ttl (default 10000; geo 30000)")
      ->check(CLI::Range(0L, 86400000L));
  app.add_option("--retry-delay-ms", cfg.retry_delay_ms, "c, handoff: pause between rounds")
      ->check(CLI::Range(0L, 3600000L));
  app.add_option("--retry-jitter-ms", cfg.retry_jitter_ms, "c, handoff: +/- jitter of the pause")
      ->check(CLI::Range(0L, 3600000L));
  app.add_option("--cmd-timeout-ms", cfg.cmd_timeout_ms,
                 "node timeout, ClientOptions::node_timeout (default 50; geo 1000)")
      ->check(CLI::Range(0L, 3600000L));
  app.add_option("--busy-poll-us", cfg.busy_poll_us,
                 "ClientOptions::busy_poll in microseconds (-1: the library's default, 100)")
      ->check(CLI::Range(-1L, 10000L));
  app.add_option("--blocking-spin-us", cfg.blocking_spin_us,
                 "ClientOptions::blocking_spin in microseconds (-1: the library's default, 150)")
      ->check(CLI::Range(-1L, 10000L));
  app.add_option("--fencing", cfg.fencing, "ClientOptions::fencing (default: the library's, on)")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--contest-gate", cfg.contest_gate,
                 "c: AcquireOptions::contest_gate (default: the library's, on)")
      ->check(CLI::IsMember({"default", "on", "off"}));
  app.add_option("--max-wait-ms", cfg.max_wait_ms, "c, handoff: longest wait for the lock")
      ->check(CLI::Range(1L, 3600000L));
  app.add_option("--hold-us", cfg.hold_us, "c: time spent inside the critical section")
      ->check(CLI::Range(0L, 10000000L));
  app.add_option("--handoff-hold-ms", cfg.handoff_hold_ms,
                 "handoff: the holder releases after a time uniform in [H, 2H] ms")
      ->check(CLI::Range(1L, 600000L));
  app.add_option("--wake", cfg.wake,
                 "handoff: on (wake_on_release, label handoff/wake), off (polling, "
                 "handoff/poll), or both: on,off")
      ->delimiter(',')
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--c-retry", cfg.c_retry,
                 "c: library (AcquireOptions retry; attempts estimated) or manual (try-locks "
                 "and our own sleeps; attempts counted)")
      ->check(CLI::IsMember({"library", "manual"}));
  app.add_option("--release", cfg.release,
                 "a/d/geo: wait (blocking release) or guard (LockGuard, not waited for); "
                 "default: wait, but guard for geo")
      ->check(CLI::IsMember({"default", "wait", "guard"}));
  app.add_option("--rep", cfg.rep, "repetitions (one JSON line each)")->check(CLI::Range(1, 1000));
  app.add_option("--key-prefix", cfg.key_prefix,
                 "every key derives from it: processes with the same prefix contend");
  app.add_option("--max-ops", cfg.max_ops, "upper bound of operations per run")
      ->check(CLI::Range(1L, 1000000000L));
  app.add_option("--geo-delays-ms", cfg.geo_delays_ms, "geo: one-way delay of each node")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 10000.0));
  app.add_option("--base-requests", cfg.base_requests, "redis-benchmark -n (0: no base)")
      ->check(CLI::Range(0L, 100000000L));
  app.add_option("--base-clients", cfg.base_clients, "redis-benchmark -c values")
      ->delimiter(',')
      ->check(CLI::Range(1, 10000));
  app.add_option("--cluster-shards", cfg.cluster_shards,
                 "a, b, c, handoff: also run against a local Redis Cluster of S masters as the "
                 "only node (cluster://), for each S given (label .../clusterS)")
      ->delimiter(',')
      ->check(CLI::Range(1, 16));
  app.add_option("--wait-idle", cfg.wait_idle_s,
                 "before each rep, wait up to S seconds for the machine to be idle "
                 "(other processes make the figures noise)")
      ->check(CLI::Range(0L, 86400L));
  app.add_option("--max-noise", cfg.max_noise_cores,
                 "run a scenario again when other processes kept more cores than this busy "
                 "(0: never)")
      ->check(CLI::Range(0.0, 64.0));
  app.add_option("--noise-retries", cfg.noise_retries, "how many times at most")
      ->check(CLI::Range(0, 20));
  app.add_option("--tls", cfg.tls,
                 "off, on (every run over TLS) or both (each run in plain text, then over TLS)")
      ->check(CLI::IsMember({"off", "on", "both"}));
  app.add_option("--tls-ports", cfg.tls_ports,
                 "the TLS ports of the --ports nodes (default: a local cluster's own; with "
                 "--tls on, the --ports themselves: nodes that speak TLS only)")
      ->delimiter(',');
  app.add_option("--tls-ca", cfg.tls_ca, "CA certificates (PEM) the nodes' certificates chain to");
  app.add_option("--tls-cert", cfg.tls_cert, "client certificate (PEM), for mutual TLS");
  app.add_option("--tls-key", cfg.tls_key, "the client certificate's key (PEM)");
  app.add_option("--tls-server-name", cfg.tls_server_name,
                 "the name the nodes' certificates must be issued for (default: each host)");
  app.add_flag("--tls-insecure", cfg.tls_insecure,
               "do not verify the nodes' certificates (tests only)");
  app.add_option("--samples", cfg.samples_path,
                 "append every latency sample to FILE (label, rep, kind, us; for CDFs)");
  app.add_option("--child", cfg.child)->group("");
  app.add_option("--raw-out", cfg.raw_out)->group("");
  CLI11_PARSE(app, argc, argv);

  // mem reads mallinfo2(), which counts only glibc's main arena: every
  // thread allocates there, before the client's threads start.
  if (std::find(cfg.scenarios.begin(), cfg.scenarios.end(), "mem") != cfg.scenarios.end()) {
    mallopt(M_ARENA_MAX, 1);
  }
  if (std::find(cfg.scenarios.begin(), cfg.scenarios.end(), "all") != cfg.scenarios.end()) {
    cfg.scenarios = {"a", "b", "c", "d", "geo"};
  }
  cfg.prefix_given = !cfg.key_prefix.empty();
  if (!cfg.prefix_given) {
    cfg.key_prefix = "redlock-bench:" + std::to_string(::getpid()) + ":" +
                     std::to_string(std::random_device{}() % 1000000);
  }
  if (!cfg.hosts.empty() && cfg.hosts.size() != cfg.ports.size()) {
    std::cerr << "redlock-bench: --hosts needs one host per --ports entry\n";
    return kExitUsage;
  }
  const bool remote = std::any_of(cfg.hosts.begin(), cfg.hosts.end(),
                                  [](const std::string& h) { return h != "127.0.0.1"; });
  if (remote &&
      std::find(cfg.scenarios.begin(), cfg.scenarios.end(), "geo") != cfg.scenarios.end()) {
    std::cerr << "redlock-bench: geo's delay proxies reach nodes on 127.0.0.1 only\n";
    return kExitUsage;
  }
  if (!cfg.cluster_shards.empty() && cfg.tls != "off") {
    std::cerr << "redlock-bench: --cluster-shards runs in plain text only: not with --tls\n";
    return kExitUsage;
  }
  if (!cfg.cluster_shards.empty() &&
      std::none_of(cfg.scenarios.begin(), cfg.scenarios.end(),
                   [&](const std::string& s) { return runs_on_a_cluster(cfg, s); })) {
    std::cerr << "redlock-bench: --cluster-shards: none of the scenarios runs on a cluster "
                 "(a, b, c without --processes, handoff)\n";
    return kExitUsage;
  }
  if (cfg.geo_delays_ms.empty()) {
    std::cerr << "redlock-bench: --geo-delays-ms is empty\n";
    return kExitUsage;
  }
  for (const auto& s : cfg.scenarios) {
    const long timeout = node_timeout_for(cfg, s).count();
    if (timeout >= ttl_for(cfg, s).count()) {
      std::cerr << "redlock-bench: " << s << ": the node timeout must be shorter than the ttl\n";
      return kExitUsage;
    }
    if (s == "geo" && timeout <= 2 * static_cast<long>(*std::max_element(
                                         cfg.geo_delays_ms.begin(), cfg.geo_delays_ms.end()))) {
      std::cerr << "redlock-bench: geo: --cmd-timeout-ms " << timeout
                << " is not above the slowest round trip\n";
      return kExitUsage;
    }
  }
  // Logs of the library go to stderr (its private logger); stdout is ours.
  ::signal(SIGPIPE, SIG_IGN);
  Output out(cfg);
  return run_all(cfg, out);
}

}  // namespace redlock::bench

int main(int argc, char** argv) { return redlock::bench::tool_main(argc, argv); }
