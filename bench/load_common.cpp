#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

#include "keys.hpp"  // redlock::detail::resource_slot (the library's key layout)
#include "load.hpp"
#include "redis_benchmark.hpp"
#include "redlock/cluster/redis_cluster.hpp"

namespace redlock::bench {

namespace fs = std::filesystem;

double round1(double v) { return std::round(v * 10.0) / 10.0; }
double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

milliseconds ttl_for(const Config& cfg, const std::string& scenario) {
  if (cfg.ttl_ms > 0) return milliseconds(cfg.ttl_ms);
  return milliseconds(scenario == "geo" ? 30000 : 10000);
}

milliseconds node_timeout_for(const Config& cfg, const std::string& scenario) {
  if (cfg.cmd_timeout_ms > 0) return milliseconds(cfg.cmd_timeout_ms);
  return milliseconds(scenario == "geo" ? 1000 : 50);
}

ReleaseMode release_for(const Config& cfg, const std::string& scenario) {
  if (cfg.release == "wait") return ReleaseMode::kWait;
  if (cfg.release == "guard") return ReleaseMode::kGuard;
  // A blocking release waits for every node that is connected (up to
  // release_timeout, 1 s): with nodes 300 ms away (geo) the documented way is
  // a LockGuard, whose destructor releases asynchronously. d waits, like a:
  // the client never completes its connection handshake with the silent
  // node, so it is not connected and a release does not wait for it.
  return scenario == "geo" ? ReleaseMode::kGuard : ReleaseMode::kWait;
}

const char* release_name(ReleaseMode m) { return m == ReleaseMode::kGuard ? "guard" : "wait"; }

std::string join(const std::vector<int>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(v[i]);
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += v[i];
  }
  return out;
}

std::vector<std::string> addresses(const std::vector<int>& ports) {
  std::vector<std::string> out;
  for (int p : ports) out.push_back("127.0.0.1:" + std::to_string(p));
  return out;
}

std::vector<std::string> addresses(const Nodes& nodes) {
  if (!nodes.url.empty()) return {nodes.url};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < nodes.ports.size(); ++i) {
    out.push_back((nodes.tls ? "rediss://" : "") + nodes.hosts[i] + ":" +
                  std::to_string(nodes.ports[i]));
  }
  return out;
}

// The O_EXCL marker file of a key prefix: every process that contends with
// the same prefix creates the same file inside its critical section.
fs::path marker_path(const std::string& prefix) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (const char c : prefix) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  const char* tmp = std::getenv("TMPDIR");
  char name[64];
  std::snprintf(name, sizeof name, "redlock-bench-%016llx.cs", static_cast<unsigned long long>(h));
  return fs::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") / name;
}

Output::Output(const Config& cfg) {
  if (!cfg.samples_path.empty()) {
    samples_.open(cfg.samples_path, std::ios::app);
    if (!samples_) {
      std::cerr << "redlock-bench: cannot open --samples " << cfg.samples_path << '\n';
    }
  }
}

void Output::emit(json j) {
  // Labels and error texts may carry bytes that are not UTF-8: replaced,
  // never thrown on.
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
  lines_.push_back(std::move(j));
  if (samples_.is_open() && !pending_.empty()) {
    samples_ << pending_;
    samples_.flush();
  }
  pending_.clear();
}

void Output::write_samples(const Run& run, const Samples& s) {
  if (!samples_.is_open()) return;
  std::ostringstream text;
  const auto put = [&](const char* kind, const std::vector<double>& v) {
    for (double x : v) text << run.label << '\t' << run.rep << '\t' << kind << '\t' << x << '\n';
  };
  put("cycle", s.cycle);
  put("acquire", s.acquire);
  pending_ += text.str();
}

json redlock_line(const Run& run) {
  json j = {{"impl", "redlock"},
            {"scenario", run.scenario},
            {"label", run.label},
            {"rep", run.rep},
            {"nodes", run.nodes}};
  if (run.cluster_shards > 0) j["cluster_shards"] = run.cluster_shards;
  return j;
}

void put_slot_spread(json& j, const std::vector<std::string>& resources, std::size_t shards) {
  if (shards == 0) return;
  std::set<unsigned> slots;
  std::vector<long> per_shard(shards, 0);
  for (const auto& r : resources) {
    const unsigned slot = redlock::detail::resource_slot(r);
    slots.insert(slot);
    ++per_shard[redlock::cluster::shard_of_slot(slot, shards)];
  }
  j["slots_used"] = slots.size();
  j["shards_used"] =
      std::count_if(per_shard.begin(), per_shard.end(), [](long n) { return n > 0; });
  j["resources_per_shard_min"] = *std::min_element(per_shard.begin(), per_shard.end());
  j["resources_per_shard_max"] = *std::max_element(per_shard.begin(), per_shard.end());
}

void put_latency(json& j, Samples& s) {
  s.sort();
  j["p50_us"] = round1(percentile_sorted(s.cycle, 0.50));
  j["p99_us"] = round1(percentile_sorted(s.cycle, 0.99));
  j["acq_p50_us"] = round1(percentile_sorted(s.acquire, 0.50));
  j["acq_p99_us"] = round1(percentile_sorted(s.acquire, 0.99));
  if (!s.release.empty()) {
    j["rel_p50_us"] = round1(percentile_sorted(s.release, 0.50));
    j["rel_p99_us"] = round1(percentile_sorted(s.release, 0.99));
  }
}

std::vector<int> known_pids(const std::vector<int>& pids) {
  std::vector<int> out;
  for (int p : pids) {
    if (p <= 0) return {};
    out.push_back(p);
  }
  return out;
}

void put_cpu(json& j, const CpuReport& cpu, long ops, bool servers_known) {
  if (ops <= 0) return;
  const double n = static_cast<double>(ops);
  j["cpu_client_main_us_per_op"] = round1(cpu.client_main.on_cpu_us / n);
  j["cpu_client_other_us_per_op"] = round1(cpu.client_other.on_cpu_us / n);
  j["cpu_client_runq_us_per_op"] = round1((cpu.client_main.runq_us + cpu.client_other.runq_us) / n);
  j["cpu_client_us_per_op"] = round1((cpu.client_main.on_cpu_us + cpu.client_other.on_cpu_us) / n);
  j["cpu_client_ctxsw_per_op"] =
      round3((cpu.client_main.ctx_switches + cpu.client_other.ctx_switches) / n);
  if (servers_known) {
    j["cpu_servers_us_per_op"] = round1(cpu.servers.on_cpu_us / n);
    j["cpu_servers_runq_us_per_op"] = round1(cpu.servers.runq_us / n);
    j["cpu_servers_ctxsw_per_op"] = round3(cpu.servers.ctx_switches / n);
    j["cpu_servers_busiest_cores"] = round3(cpu.busiest_server_cores);
  }
  j["cpu_tasks_busy_cores"] = round3(cpu.tasks_busy_cores);
  j["cpu_irq_cores"] = round3(cpu.irq_cores);
  j["cpu_kthread_cores"] = round3(cpu.kthread_cores);
  j["cpu_steal_cores"] = round3(cpu.steal_cores);
  j["cpu_other_busy_cores"] = round3(cpu.other_busy_cores);
}

Window make_window(const Config& cfg) {
  const auto now = Clock::now();
  const auto warm =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.warmup_s));
  const auto run =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
  return {now, now + warm, now + warm + run};
}

tl::expected<std::unique_ptr<redlock::Client>, std::string> connect_client(
    const Config& cfg, const std::vector<std::string>& nodes, milliseconds node_timeout,
    std::size_t required) {
  redlock::ClientOptions options;
  options.nodes = nodes;
  options.node_timeout = node_timeout;
  // Benchmarks run on nodes started for them, empty: let them vote at once.
  options.restart_grace = milliseconds(0);
  if (cfg.busy_poll_us >= 0) options.busy_poll = microseconds(cfg.busy_poll_us);
  if (cfg.blocking_spin_us >= 0) options.blocking_spin = microseconds(cfg.blocking_spin_us);
  if (cfg.fencing != "default") options.fencing = cfg.fencing == "on";
  // The TLS settings for TLS nodes only: a plain-text run of --tls both
  // would otherwise be warned that they go unused.
  if (std::any_of(nodes.begin(), nodes.end(),
                  [](const std::string& n) { return n.starts_with("rediss://"); })) {
    options.tls.ca_file = cfg.tls_ca;
    options.tls.cert_file = cfg.tls_cert;
    options.tls.key_file = cfg.tls_key;
    options.tls.server_name = cfg.tls_server_name;
    options.tls.verify_peer = !cfg.tls_insecure;
  }
  auto client = redlock::Client::connect(std::move(options));
  if (!client) return tl::unexpected(redlock::to_string(client.error()));
  // connect() returns after the first attempts; a node that is still in its
  // handshake then gets a moment more.
  const auto give_up = Clock::now() + std::chrono::seconds(3);
  for (;;) {
    const auto up = (*client)->connected();
    std::size_t missing = 0;
    for (std::size_t i = 0; i < up.size() && i < required; ++i) missing += up[i] ? 0U : 1U;
    if (missing == 0) break;
    if (Clock::now() >= give_up) {
      for (std::size_t i = 0; i < up.size() && i < required; ++i) {
        if (!up[i]) return tl::unexpected("could not connect to node " + nodes[i]);
      }
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return std::move(*client);
}

// ---------------------------------------------------------------------------
// The base: one plain SET per round trip on one node.

void run_base(const Config& cfg, int rep, const std::string& host, int port, int pid, Output& out) {
  if (cfg.base_requests <= 0) return;
  for (int clients : cfg.base_clients) {
    std::string why;
    CpuMeter meter(known_pids({pid}));
    meter.start();
    const auto r = run_redis_benchmark_set(port, clients, 1, cfg.base_requests, why, host);
    const CpuReport cpu = meter.stop();
    if (!r) {
      std::cerr << "redlock-bench: base not measured: " << why << '\n';
      continue;
    }
    out.emit({{"impl", "redis-benchmark"},
              {"scenario", "base"},
              {"label", "base/c" + std::to_string(clients)},
              {"rep", rep},
              {"nodes", 1},
              {"clients", clients},
              {"pipeline", 1},
              {"ops", cfg.base_requests},
              {"seconds", round3(r->rps > 0 ? static_cast<double>(cfg.base_requests) / r->rps : 0)},
              {"ops_per_s", round1(r->rps)},
              {"p50_us", round1(r->p50_us)},
              {"p99_us", round1(r->p99_us)},
              {"errors", 0},
              {"cpu_other_busy_cores", round3(cpu.other_busy_cores)}});
  }
}

}  // namespace redlock::bench
