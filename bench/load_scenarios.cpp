#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "load.hpp"
#ifdef REDLOCK_BENCH_HAVE_DELAYPROXY
#include "redlock/delayproxy/delay_proxy.hpp"
#endif

namespace redlock::bench {
namespace {

constexpr int kRttPings = 9;

// ---------------------------------------------------------------------------
// b: K cycles in flight, driven by callbacks on the client's loop thread.

// Shared with its callbacks, so that one completed late (by the client's
// shutdown after a run that overran its deadline) still finds it alive.
class InflightRun : public std::enable_shared_from_this<InflightRun> {
 public:
  InflightRun(const Config& cfg, const Run& run, redlock::Client& client, const Window& w)
      : client_(client),
        ttl_(ttl_for(cfg, run.scenario)),
        window_(w),
        max_ops_(cfg.max_ops),
        log_(run.label) {
    slots_.resize(static_cast<std::size_t>(cfg.inflight));
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].resource = run.key + ":" + std::to_string(i);
    }
    samples_.reserve(1 << 20);
  }

  // Main thread: starts every slot, then waits until they all stopped (each
  // stops at the end of the window) or `deadline` passed.
  // The meter runs over the measured window.
  bool run(Clock::time_point deadline, Progress& progress, CpuMeter& meter, CpuReport& cpu) {
    active_ = static_cast<long>(slots_.size());
    for (std::size_t i = 0; i < slots_.size(); ++i) launch(i);
    bool metering = false;
    std::unique_lock lk(mutex_);
    while (active_ > 0) {
      const auto now = Clock::now();
      if (now >= deadline) return false;
      if (!metering && now >= window_.warm_end) {
        meter.start();
        metering = true;
      }
      const auto next = !metering ? window_.warm_end : window_.end;
      cv_.wait_until(lk,
                     std::min(now + std::chrono::milliseconds(200), next > now ? next : deadline));
      if (metering && Clock::now() >= window_.end && cpu.elapsed_s == 0) cpu = meter.stop();
      progress.tick(ops_.load());
    }
    if (metering && cpu.elapsed_s == 0) cpu = meter.stop();
    return true;
  }

  // After run() returned true: every callback has run.
  Samples& samples() { return samples_; }
  long ops() const { return ops_.load(); }
  long errors() const { return errors_.load(); }
  std::vector<std::string> resources() const {
    std::vector<std::string> out;
    for (const auto& s : slots_) out.push_back(s.resource);
    return out;
  }

 private:
  struct Slot {
    std::string resource;
    Clock::time_point t0;
    Clock::time_point t1;
  };

  // Any thread (the main thread at first, then the loop thread).
  void launch(std::size_t i) {
    Slot& s = slots_[i];
    s.t0 = Clock::now();
    if (s.t0 >= window_.end || started_.fetch_add(1) >= max_ops_) {
      stop_slot();
      return;
    }
    auto posted = client_.async_acquire(
        s.resource, ttl_, how_,
        [self = shared_from_this(), i](auto r) { self->on_acquired(i, std::move(r)); });
    if (!posted) {
      fail("async_acquire: " + redlock::to_string(posted.error()), s.t0);
      stop_slot();
    }
  }

  // Loop thread.
  void on_acquired(std::size_t i, redlock::Result<redlock::Lock> lock) {
    Slot& s = slots_[i];
    s.t1 = Clock::now();
    if (!lock) {
      fail("acquire: " + redlock::to_string(lock.error()), s.t1);
      launch(i);
      return;
    }
    auto posted = client_.async_release(*lock, [self = shared_from_this(), i](auto report) {
      self->on_released(i, std::move(report));
    });
    if (!posted) {
      fail("async_release: " + redlock::to_string(posted.error()), s.t1);
      stop_slot();
    }
  }

  // Loop thread.
  void on_released(std::size_t i, redlock::Result<redlock::ReleaseReport> report) {
    Slot& s = slots_[i];
    const auto t2 = Clock::now();
    if (!report) {
      fail("release: " + redlock::to_string(report.error()), t2);
    } else if (t2 >= window_.warm_end && t2 <= window_.end) {
      samples_.cycle.push_back(micros(t2 - s.t0));
      samples_.acquire.push_back(micros(s.t1 - s.t0));
      ops_.fetch_add(1);
    }
    launch(i);
  }

  void fail(const std::string& what, Clock::time_point when) {
    log_.note(what);
    if (when >= window_.warm_end && when <= window_.end) errors_.fetch_add(1);
  }

  void stop_slot() {
    std::lock_guard lk(mutex_);
    if (--active_ == 0) cv_.notify_all();
  }

  redlock::Client& client_;
  const milliseconds ttl_;
  const redlock::AcquireOptions how_;
  const Window window_;
  const long max_ops_;
  ErrorLog log_;
  std::vector<Slot> slots_;
  Samples samples_;  // loop thread only while running
  std::atomic<long> started_{0};
  std::atomic<long> ops_{0};
  std::atomic<long> errors_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
  long active_ = 0;
};

#ifdef REDLOCK_BENCH_HAVE_DELAYPROXY
// Median round trip of PING to 127.0.0.1:port, in microseconds; nullopt
// when the port does not answer PING.
std::optional<double> ping_rtt_us(int port, std::string& why) {
  const timeval tv{5, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err != 0) {
    why = "connect to 127.0.0.1:" + std::to_string(port) + ": " + (c ? c->errstr : "no memory");
    if (c != nullptr) redisFree(c);
    return std::nullopt;
  }
  redisSetTimeout(c, tv);
  std::vector<double> v;
  for (int i = 0; i <= kRttPings; ++i) {
    const auto t0 = Clock::now();
    auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
    const auto t1 = Clock::now();
    if (reply == nullptr) {
      why = "PING 127.0.0.1:" + std::to_string(port) + ": " + c->errstr;
      redisFree(c);
      return std::nullopt;
    }
    freeReplyObject(reply);
    if (i > 0) v.push_back(micros(t1 - t0));  // the first one warms up
  }
  redisFree(c);
  std::sort(v.begin(), v.end());
  return percentile_sorted(v, 0.5);
}

#endif

}  // namespace

// ---------------------------------------------------------------------------
// a, d, geo: one client, sequential cycles on one uncontended resource.

json run_sequential(const Config& cfg, const Run& run, redlock::Client& client,
                    const std::string& resource, ReleaseMode mode,
                    const std::vector<int>& server_pids, Output& out) {
  const redlock::AcquireOptions how;  // one round: a try-lock
  const milliseconds ttl = ttl_for(cfg, run.scenario);
  ErrorLog log(run.label);
  Samples samples;
  samples.reserve(1 << 16);
  const Window w = make_window(cfg);
  Progress progress(run, cfg, w.start);
  long ops = 0;
  long errors = 0;
  long total = 0;
  Clock::time_point last = w.warm_end;
  CpuMeter meter(server_pids);
  bool metering = false;
  while (total < cfg.max_ops) {
    const auto t0 = Clock::now();
    if (t0 >= w.end) break;
    if (!metering && t0 >= w.warm_end) {
      meter.start();
      metering = true;
    }
    ++total;
    Clock::time_point t1;
    Clock::time_point t2;
    bool ok = true;
    if (mode == ReleaseMode::kWait) {
      auto lock = client.acquire(resource, ttl, how);
      t1 = Clock::now();
      if (!lock) {
        ok = false;
        log.note("acquire: " + redlock::to_string(lock.error()));
      } else if (auto report = client.release(*lock); !report) {
        ok = false;
        log.note("release: " + redlock::to_string(report.error()));
      }
      t2 = Clock::now();
    } else {
      auto guard = client.acquire_guard(resource, ttl, how);
      t1 = Clock::now();
      if (!guard) {
        ok = false;
        log.note("acquire: " + redlock::to_string(guard.error()));
      } else {
        // The guard's destructor hands the release to the loop thread and
        // returns: it does not wait for the nodes.
        redlock::LockGuard done = std::move(*guard);
      }
      t2 = Clock::now();
    }
    if (t0 >= w.warm_end) {
      if (ok) {
        ++ops;
        samples.cycle.push_back(micros(t2 - t0));
        samples.acquire.push_back(micros(t1 - t0));
        if (mode == ReleaseMode::kWait) samples.release.push_back(micros(t2 - t1));
      } else {
        ++errors;
      }
      last = t2;
    }
    progress.tick(ops);
  }
  const CpuReport cpu = metering ? meter.stop() : CpuReport{};
  out.write_samples(run, samples);
  json j = redlock_line(run);
  const double secs = std::chrono::duration<double>(last - w.warm_end).count();
  j["ops"] = ops;
  j["seconds"] = round3(secs);
  j["ops_per_s"] = round1(secs > 0 ? static_cast<double>(ops) / secs : 0);
  put_latency(j, samples);
  j["errors"] = errors;
  j["release"] = release_name(mode);
  j["ttl_ms"] = ttl.count();
  j["node_timeout_ms"] = node_timeout_for(cfg, run.scenario).count();
  put_cpu(j, cpu, ops, !server_pids.empty());
  return j;
}

json run_inflight(const Config& cfg, const Run& run, redlock::Client& client,
                  const std::vector<int>& server_pids, Output& out, bool& ok) {
  const Window w = make_window(cfg);
  Progress progress(run, cfg, w.start);
  auto load = std::make_shared<InflightRun>(cfg, run, client, w);
  // Every slot stops after its cycle in flight at the end of the window; a
  // cycle is bounded by the node timeout plus release_timeout (1 s).
  CpuMeter meter(server_pids);
  CpuReport cpu;
  ok = load->run(w.end + node_timeout_for(cfg, run.scenario) + std::chrono::seconds(10), progress,
                 meter, cpu);
  if (!ok) {
    std::cerr << "redlock-bench: " << run.label << ": cycles still in flight long after the end\n";
    return {};
  }
  Samples& samples = load->samples();
  out.write_samples(run, samples);
  json j = redlock_line(run);
  const double secs = std::chrono::duration<double>(w.end - w.warm_end).count();
  j["ops"] = load->ops();
  j["seconds"] = round3(secs);
  j["ops_per_s"] = round1(secs > 0 ? static_cast<double>(load->ops()) / secs : 0);
  put_latency(j, samples);
  j["errors"] = load->errors();
  j["inflight"] = cfg.inflight;
  j["release"] = "async";
  j["ttl_ms"] = ttl_for(cfg, run.scenario).count();
  j["node_timeout_ms"] = node_timeout_for(cfg, run.scenario).count();
  if (run.cluster_shards > 0) {
    put_slot_spread(j, load->resources(), static_cast<std::size_t>(run.cluster_shards));
  }
  put_cpu(j, cpu, load->ops(), !server_pids.empty());
  return j;
}

// ---------------------------------------------------------------------------
// geo: the nodes behind delay proxies.

#ifdef REDLOCK_BENCH_HAVE_DELAYPROXY
std::optional<json> run_geo(const Config& cfg, const Run& run, const Nodes& nodes, Output& out) {
  const std::vector<int>& ports = nodes.ports;
  std::vector<redlock::delayproxy::Route> routes;
  for (std::size_t i = 0; i < cfg.geo_delays_ms.size(); ++i) {
    routes.push_back({0, ports[i], microseconds(std::llround(cfg.geo_delays_ms[i] * 1000.0))});
  }
  auto proxy = redlock::delayproxy::DelayProxy::start(routes);
  if (!proxy) {
    std::cerr << "redlock-bench: geo: " << proxy.error() << '\n';
    return std::nullopt;
  }
  std::vector<int> proxy_ports;
  json rtts = json::array();
  std::vector<double> sorted;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    proxy_ports.push_back((*proxy)->port(i));
    std::string why;
    auto rtt = ping_rtt_us(proxy_ports.back(), why);
    if (!rtt) {
      std::cerr << "redlock-bench: geo: " << why << '\n';
      return std::nullopt;
    }
    rtts.push_back(round1(*rtt));
    sorted.push_back(*rtt);
  }
  std::sort(sorted.begin(), sorted.end());
  const std::size_t quorum = sorted.size() / 2 + 1;
  const double quorum_rtt = sorted[quorum - 1];

  auto client = connect_client(cfg, addresses(proxy_ports), node_timeout_for(cfg, run.scenario));
  if (!client) {
    std::cerr << "redlock-bench: geo: " << client.error() << '\n';
    return std::nullopt;
  }
  // The proxies run on a thread of this process: their CPU counts as the
  // client's here.
  json j =
      run_sequential(cfg, run, **client, run.key, release_for(cfg, run.scenario), nodes.pids, out);
  // The client closes first; its last release (a LockGuard's) is still in
  // the proxies: give it the longest one-way delay to arrive before they go.
  client->reset();
  const double slowest_ms = *std::max_element(cfg.geo_delays_ms.begin(), cfg.geo_delays_ms.end());
  std::this_thread::sleep_for(microseconds(std::llround(slowest_ms * 1000.0)) + milliseconds(50));
  (*proxy)->stop();
  json delays = json::array();
  for (double d : cfg.geo_delays_ms) delays.push_back(d);
  j["delays_ms"] = delays;
  j["rtts_us"] = rtts;
  j["quorum_rtt_us"] = round1(quorum_rtt);
  j["ratio"] = round3(quorum_rtt > 0 ? j["acq_p50_us"].get<double>() / quorum_rtt : 0);
  j["ratio_p99"] = round3(quorum_rtt > 0 ? j["acq_p99_us"].get<double>() / quorum_rtt : 0);
  return j;
}

#else
std::optional<json> run_geo(const Config&, const Run&, const Nodes&, Output&) {
  std::cerr << "redlock-bench: geo needs the delay proxy (REDLOCK_BUILD_TOOLS=ON)\n";
  return std::nullopt;
}
#endif

}  // namespace redlock::bench
