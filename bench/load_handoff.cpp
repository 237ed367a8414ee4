// handoff: how long a waiting client takes to hold a lock after its holder
// releases it, with wake-on-release and with plain polling.
#include <algorithm>
#include <future>
#include <memory>
#include <mutex>
#include <random>

#include "load.hpp"

namespace redlock::bench {
namespace {

// What the waiter's callback (on its client's loop thread) hands back.
struct Handed {
  std::mutex mutex;
  std::promise<redlock::Result<redlock::Lock>> done;
  Clock::time_point held{};
};

}  // namespace

json run_handoff(const Config& cfg, const Run& run, redlock::Client& holder,
                 const std::vector<std::string>& nodes, const std::vector<int>& server_pids,
                 Output& out, bool& ok) {
  ok = true;
  const milliseconds ttl = ttl_for(cfg, run.scenario);
  const std::string& resource = run.key;
  // The waiter is another client: its own connections, its own loop thread,
  // its own subscriber connections.
  auto waiter_client = connect_client(cfg, nodes, node_timeout_for(cfg, run.scenario));
  if (!waiter_client) {
    std::cerr << "redlock-bench: " << run.label << ": waiter: " << waiter_client.error() << '\n';
    ok = false;
    return {};
  }
  redlock::Client& waiter = **waiter_client;
  redlock::AcquireOptions how;
  how.max_wait = milliseconds(cfg.max_wait_ms);
  how.retry_delay = milliseconds(cfg.retry_delay_ms);
  how.retry_jitter = milliseconds(cfg.retry_jitter_ms);
  how.wake_on_release = run.wake;
  // Each hand-off waits for at most the waiter's max_wait, and a bit more
  // for its callback.
  const auto wait_bound = milliseconds(cfg.max_wait_ms) + std::chrono::seconds(5);

  std::mt19937_64 rng(std::random_device{}());
  // The holder holds for a time uniform in [hold, 2 hold]: the release then
  // falls anywhere in the waiter's retry cycle, not at one fixed phase.
  std::uniform_int_distribution<long> hold_us(cfg.handoff_hold_ms * 1000,
                                              cfg.handoff_hold_ms * 2000);
  ErrorLog log(run.label);
  Samples samples;
  samples.reserve(1 << 14);
  const auto before = waiter.metrics();
  const Window w = make_window(cfg);
  Progress progress(run, cfg, w.start);
  CpuMeter meter(server_pids);
  bool metering = false;
  long ops = 0;
  long errors = 0;
  long total = 0;
  Clock::time_point last = w.warm_end;
  while (total < cfg.max_ops) {
    const auto t0 = Clock::now();
    if (t0 >= w.end) break;
    if (!metering && t0 >= w.warm_end) {
      meter.start();
      metering = true;
    }
    ++total;
    const bool measured = t0 >= w.warm_end;
    const auto fail = [&](const std::string& what) {
      log.note(what);
      if (measured) ++errors;
    };
    auto held = holder.acquire(resource, ttl);  // free: the last waiter released it
    if (!held) {
      fail("holder acquire: " + redlock::to_string(held.error()));
      continue;
    }
    auto handed = std::make_shared<Handed>();
    auto result = handed->done.get_future();
    const auto t_wait = Clock::now();
    auto posted =
        waiter.async_acquire(resource, ttl, how, [handed](redlock::Result<redlock::Lock> r) {
          const auto now = Clock::now();
          std::lock_guard lk(handed->mutex);
          handed->held = now;
          handed->done.set_value(std::move(r));
        });
    if (!posted) {
      fail("waiter async_acquire: " + redlock::to_string(posted.error()));
      (void)holder.release(*held);
      continue;
    }
    std::this_thread::sleep_for(microseconds(hold_us(rng)));
    const auto t_release = Clock::now();
    auto report = holder.release(*held);
    const auto t_released = Clock::now();
    if (!report) fail("holder release: " + redlock::to_string(report.error()));
    if (result.wait_for(wait_bound) != std::future_status::ready) {
      // Cannot happen with a working max_wait; the client's destructor
      // completes it.
      fail("the waiter did not finish within max_wait");
      ok = false;
      break;
    }
    auto got = result.get();
    Clock::time_point t_held;
    {
      std::lock_guard lk(handed->mutex);
      t_held = handed->held;
    }
    if (!got) {
      fail("waiter acquire: " + redlock::to_string(got.error()));
      continue;
    }
    if (auto r = waiter.release(*got); !r) {
      fail("waiter release: " + redlock::to_string(r.error()));
    }
    if (measured && report) {
      ++ops;
      samples.cycle.push_back(micros(t_held - t_release));
      samples.acquire.push_back(micros(t_held - t_wait));
      samples.release.push_back(micros(t_released - t_release));
      last = Clock::now();
    }
    progress.tick(ops);
  }
  const CpuReport cpu = metering ? meter.stop() : CpuReport{};
  const auto after = waiter.metrics();
  out.write_samples(run, samples);
  json j = redlock_line(run);
  const double secs = std::chrono::duration<double>(last - w.warm_end).count();
  j["ops"] = ops;
  j["seconds"] = round3(secs);
  j["ops_per_s"] = round1(secs > 0 ? static_cast<double>(ops) / secs : 0);
  put_latency(j, samples);
  j["errors"] = errors;
  j["wake_on_release"] = run.wake;
  j["retry_delay_ms"] = cfg.retry_delay_ms;
  j["retry_jitter_ms"] = cfg.retry_jitter_ms;
  j["hold_ms"] = {cfg.handoff_hold_ms, 2 * cfg.handoff_hold_ms};
  j["ttl_ms"] = ttl.count();
  j["node_timeout_ms"] = node_timeout_for(cfg, run.scenario).count();
  // Over the whole run, warm-up included.
  const auto acquires = after.rounds_per_acquire.count - before.rounds_per_acquire.count;
  j["waiter_rounds_per_acquire"] =
      round3(acquires > 0 ? (after.rounds_per_acquire.sum - before.rounds_per_acquire.sum) /
                                static_cast<double>(acquires)
                          : 0.0);
  j["waiter_wakeups"] = after.wakeups - before.wakeups;
  j["waiter_acquires"] = acquires;
  put_cpu(j, cpu, ops, !server_pids.empty());
  return j;
}

}  // namespace redlock::bench
