// redlock_acquire_bench: end-to-end latency of acquire and release against a
// local 5-node cluster, next to a plain Redis SET on one of its nodes.
//
//   redlock_acquire_bench [benchmark flags] [--redis_benchmark_requests=N]
//
// main() starts the cluster (redis-server processes in a temporary directory,
// free ports) and connects one Client before Google Benchmark runs. Each
// benchmark times every cycle on its own (manual time) and reports the p50
// and p99 of those samples as counters, in microseconds. After the run, unless
// N is 0 (default 100000), `redis-benchmark -c 1 -P 1 -n N -t set` is run against
// node 1 and a table puts its p50/p99 (one round trip to one node) next to
// redlock's. The cluster is stopped on every path out of main().
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keys.hpp"
#include "redis_benchmark.hpp"
#include "redlock/cluster/local_cluster.hpp"
#include "redlock/redlock.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kNodes = 5;
constexpr milliseconds kTtl{10000};
constexpr std::string_view kResource = "bench:uncontended";
constexpr std::string_view kRequestsFlag = "--redis_benchmark_requests=";

// Set in main() before any benchmark runs.
redlock::Client* g_client = nullptr;
// A client of the same five nodes with fencing off.
redlock::Client* g_unfenced = nullptr;
// The cluster, to set fencing counters between iterations.
redlock::cluster::LocalCluster* g_cluster = nullptr;
// Clients of the first 1, 3 and 5 nodes, for the node-count sweep.
std::map<std::int64_t, redlock::Client*> g_clients_by_nodes;

struct Percentiles {
  double p50_us = 0;
  double p99_us = 0;
};

// The figures of each benchmark's last (and longest) run, for the table.
std::map<std::string, Percentiles> g_results;

// Nearest-rank percentile of `samples` (sorted in place).
double percentile(std::vector<double>& samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(rank, samples.size() - 1)];
}

Percentiles summarize(std::vector<double>& samples) {
  return {percentile(samples, 0.50), percentile(samples, 0.99)};
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

void set_counters(benchmark::State& state, const std::string& prefix, const Percentiles& p) {
  state.counters[prefix + "p50_us"] = p.p50_us;
  state.counters[prefix + "p99_us"] = p.p99_us;
}

// Sequential acquire + release of one uncontended resource: the whole cycle
// is one sample.
void BM_AcquireRelease(benchmark::State& state) {
  std::vector<double> cycle;
  cycle.reserve(1 << 16);
  for (auto _ : state) {
    const auto t0 = Clock::now();
    auto lock = g_client->acquire(kResource, kTtl);
    if (!lock) {
      state.SkipWithError(redlock::to_string(lock.error()).c_str());
      return;
    }
    auto report = g_client->release(*lock);
    const auto t1 = Clock::now();
    if (!report) {
      state.SkipWithError(redlock::to_string(report.error()).c_str());
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    cycle.push_back(micros(t1 - t0));
  }
  const auto p = summarize(cycle);
  set_counters(state, "", p);
  g_results["acquire+release"] = p;
}
BENCHMARK(BM_AcquireRelease)->UseManualTime()->Unit(benchmark::kMicrosecond);

// The same cycle, timed in two parts: the acquire (decided at the third yes)
// is the benchmark's time; the release (waits for all five) is reported as
// its own counters.
void BM_AcquireThenRelease(benchmark::State& state) {
  std::vector<double> acquire;
  std::vector<double> release;
  acquire.reserve(1 << 16);
  release.reserve(1 << 16);
  for (auto _ : state) {
    const auto t0 = Clock::now();
    auto lock = g_client->acquire(kResource, kTtl);
    const auto t1 = Clock::now();
    if (!lock) {
      state.SkipWithError(redlock::to_string(lock.error()).c_str());
      return;
    }
    auto report = g_client->release(*lock);
    const auto t2 = Clock::now();
    if (!report) {
      state.SkipWithError(redlock::to_string(report.error()).c_str());
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    acquire.push_back(micros(t1 - t0));
    release.push_back(micros(t2 - t1));
  }
  const auto a = summarize(acquire);
  const auto r = summarize(release);
  set_counters(state, "", a);
  set_counters(state, "release_", r);
  g_results["acquire"] = a;
  g_results["release"] = r;
}
BENCHMARK(BM_AcquireThenRelease)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Times each acquire of `client` (then releases, untimed) as one iteration;
// sets the p50/p99 counters. Nothing when an acquire failed.
std::optional<Percentiles> time_acquires(benchmark::State& state, redlock::Client& client) {
  std::vector<double> acquire;
  acquire.reserve(1 << 16);
  for (auto _ : state) {
    const auto t0 = Clock::now();
    auto lock = client.acquire(kResource, kTtl);
    const auto t1 = Clock::now();
    if (!lock) {
      state.SkipWithError(redlock::to_string(lock.error()).c_str());
      return std::nullopt;
    }
    (void)client.release(*lock);
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    acquire.push_back(micros(t1 - t0));
  }
  const auto p = summarize(acquire);
  set_counters(state, "", p);
  return p;
}

// What fencing costs: the acquire latency with fencing off (arg 0: SET NX)
// and on (arg 1: the fenced acquire script; the five counters agree, so no
// raise round).
void BM_AcquireFencing(benchmark::State& state) {
  redlock::Client* client = state.range(0) == 0 ? g_unfenced : g_client;
  if (auto p = time_acquires(state, *client)) {
    g_results[state.range(0) == 0 ? "acquire, fencing off" : "acquire, fencing on"] = *p;
  }
}
BENCHMARK(BM_AcquireFencing)
    ->ArgName("fencing")
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The worst case of fencing: before each acquire (untimed) the five nodes'
// counters are set to five different values, so whichever three grant first
// disagree and the fence must be raised on a majority before the lock is
// handed out: one more round trip.
void BM_AcquireFenceRaise(benchmark::State& state) {
  const std::string counter = redlock::detail::fence_key(kResource);
  std::vector<double> acquire;
  std::uint64_t base = 4'000'000'000'000'000ULL;  // below 2^53: Lua numbers are doubles
  for (auto _ : state) {
    base += 10;
    for (std::size_t i = 0; i < kNodes; ++i) {
      if (!g_cluster->command(i, {"SET", counter, std::to_string(base + i)})) {
        state.SkipWithError("cannot set a fencing counter");
        return;
      }
    }
    const auto raises = g_client->metrics().fence_raises;
    const auto t0 = Clock::now();
    auto lock = g_client->acquire(kResource, kTtl);
    const auto t1 = Clock::now();
    if (!lock) {
      state.SkipWithError(redlock::to_string(lock.error()).c_str());
      return;
    }
    (void)g_client->release(*lock);
    if (g_client->metrics().fence_raises != raises + 1) {
      state.SkipWithError("the acquire did not raise the fence");
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    acquire.push_back(micros(t1 - t0));
  }
  const auto p = summarize(acquire);
  set_counters(state, "", p);
  g_results["acquire with a fence raise"] = p;
}
BENCHMARK(BM_AcquireFenceRaise)->UseManualTime()->Unit(benchmark::kMicrosecond);

std::string fmt_us(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%9.1f us", us);
  return buf;
}

std::string fmt_ratio(double a, double b) {
  if (b <= 0) return "      -";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%6.1fx", a / b);
  return buf;
}

void print_row(const std::string& label, const Percentiles& p, const Percentiles* base) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-52s %s %s", label.c_str(), fmt_us(p.p50_us).c_str(),
                fmt_us(p.p99_us).c_str());
  std::string line = buf;
  if (base != nullptr) {
    line += "   " + fmt_ratio(p.p50_us, base->p50_us) + " " + fmt_ratio(p.p99_us, base->p99_us);
  }
  std::cout << line << '\n';
}

void compare(const redlock::cluster::LocalCluster& cluster, long requests) {
  std::optional<Percentiles> redis;
  std::string why;
  if (requests <= 0) {
    why = "skipped (--redis_benchmark_requests=0)";
  } else {
    std::cout << "\nRunning redis-benchmark -h 127.0.0.1 -p " << cluster.port(0) << " -c 1 -P 1 -n "
              << requests << " -t set --csv ..." << std::endl;
    auto r = redlock::bench::run_redis_benchmark_set(cluster.port(0), 1, 1, requests, why);
    if (r) redis = Percentiles{r->p50_us, r->p99_us};
  }

  std::cout << "\nLatency, one client, sequential, 127.0.0.1 (" << kNodes << " nodes, quorum "
            << (kNodes / 2 + 1) << ")\n";
  char head[256];
  std::snprintf(head, sizeof head, "%-52s %12s %12s   %7s %7s", "", "p50", "p99", "p50 x", "p99 x");
  std::cout << head << '\n';
  const Percentiles* base = redis ? &*redis : nullptr;
  if (redis) {
    print_row("redis SET, 1 node (1 round trip, redis-benchmark)", *redis, nullptr);
  } else {
    std::cout << "redis SET: not measured: " << why << '\n';
  }
  const std::pair<const char*, const char*> rows[] = {
      {"acquire", "redlock acquire (fenced script to 5, decided at 3rd)"},
      {"release", "redlock release (script on 5, waits for all 5)"},
      {"acquire+release", "redlock acquire+release cycle (2 round trips)"},
      {"acquire, fencing off", "redlock acquire, fencing off (SET NX PX)"},
      {"acquire, fencing on", "redlock acquire, fencing on (no raise)"},
      {"acquire with a fence raise", "redlock acquire, fencing on, raise round forced"},
  };
  for (const auto& [key, label] : rows) {
    if (auto it = g_results.find(key); it != g_results.end()) print_row(label, it->second, base);
  }
  if (base != nullptr) std::cout << "(x: ratio to the redis SET figure)\n";
  std::cout << std::flush;
}

}  // namespace

// Acquire latency against the first N nodes of the same cluster: how much
// each node adds when every server shares this machine's cores.
void BM_AcquireByNodeCount(benchmark::State& state) {
  (void)time_acquires(state, *g_clients_by_nodes.at(state.range(0)));
}
BENCHMARK(BM_AcquireByNodeCount)
    ->ArgName("nodes")
    ->Arg(1)
    ->Arg(3)
    ->Arg(5)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  // Our own flag first, so that Google Benchmark does not reject it.
  long requests = 100000;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with(kRequestsFlag)) {
      char* end = nullptr;
      const std::string value(arg.substr(kRequestsFlag.size()));
      requests = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || requests < 0) {
        std::cerr << "redlock_acquire_bench: bad value in " << arg << '\n';
        return 2;
      }
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  auto cluster = redlock::cluster::LocalCluster::start(kNodes);
  if (!cluster) {
    std::cerr << "redlock_acquire_bench: cannot start the local cluster: " << cluster.error()
              << '\n';
    return 1;
  }
  redlock::ClientOptions options;
  options.nodes = (*cluster)->addresses();
  options.restart_grace = std::chrono::milliseconds(0);  // a cluster started empty, just now
  auto client = redlock::Client::connect(std::move(options));
  if (!client) {
    std::cerr << "redlock_acquire_bench: " << redlock::to_string(client.error()) << '\n';
    return 1;
  }
  const auto up = (*client)->connected();
  if (std::count(up.begin(), up.end(), true) != static_cast<std::ptrdiff_t>(kNodes)) {
    std::cerr << "redlock_acquire_bench: the client could not connect to every node\n";
    return 1;
  }
  g_client = client->get();
  std::vector<std::unique_ptr<redlock::Client>> subset_clients;
  for (std::size_t n : {std::size_t{1}, std::size_t{3}}) {
    redlock::ClientOptions subset;
    const auto all = (*cluster)->addresses();
    subset.nodes.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    subset.restart_grace = std::chrono::milliseconds(0);
    auto c = redlock::Client::connect(std::move(subset));
    if (!c) {
      std::cerr << "redlock_acquire_bench: " << redlock::to_string(c.error()) << '\n';
      return 1;
    }
    g_clients_by_nodes[static_cast<std::int64_t>(n)] = c->get();
    subset_clients.push_back(std::move(*c));
  }
  g_clients_by_nodes[static_cast<std::int64_t>(kNodes)] = g_client;
  redlock::ClientOptions unfenced_options;
  unfenced_options.nodes = (*cluster)->addresses();
  unfenced_options.restart_grace = std::chrono::milliseconds(0);
  unfenced_options.fencing = false;
  auto unfenced = redlock::Client::connect(std::move(unfenced_options));
  if (!unfenced) {
    std::cerr << "redlock_acquire_bench: " << redlock::to_string(unfenced.error()) << '\n';
    return 1;
  }
  g_unfenced = unfenced->get();
  g_cluster = cluster->get();

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  compare(**cluster, requests);

  g_client = nullptr;
  g_unfenced = nullptr;
  g_cluster = nullptr;
  unfenced->reset();
  g_clients_by_nodes.clear();
  subset_clients.clear();
  client->reset();
  (*cluster)->stop();
  return 0;
}
