// mem: the client's heap per held lock and per waiting acquire.
//
// glibc's mallinfo2() (bytes in use, small and mmapped blocks) before and
// after, with every thread on glibc's main arena (which is all mallinfo2
// reports; tool_main sets M_ARENA_MAX to 1 when mem is among the scenarios): --mem-locks locks held
// at once by one client, then as many acquires of a second client waiting for them (each after its
// first refused round, subscribed to the release announcements). Whatever the client keeps for one
// more lock or waiter counts; what it makes once (connections, the subscriber's) is made before the
// first reading.
#include <malloc.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <stop_token>
#include <thread>

#include "load.hpp"

namespace redlock::bench {
namespace {

std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

double per_item(std::size_t before, std::size_t after, std::size_t n) {
  return n == 0
             ? 0.0
             : (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(n);
}

}  // namespace

json run_memory(const Config& cfg, const Run& run, redlock::Client& holder,
                const std::vector<std::string>& nodes, bool& ok) {
  ok = false;
  const auto n = static_cast<std::size_t>(cfg.mem_locks);
  const milliseconds ttl(50'000);
  std::vector<std::string> resources;
  resources.reserve(n + 1);
  for (std::size_t i = 0; i <= n; ++i) resources.push_back(run.key + ":" + std::to_string(i));
  auto waiter = connect_client(cfg, nodes, node_timeout_for(cfg, "a"));
  if (!waiter) {
    std::cerr << "redlock-bench: " << run.label << ": " << waiter.error() << '\n';
    return {};
  }
  std::vector<redlock::Lock> held;
  held.reserve(n + 1);
  std::vector<std::future<redlock::Result<redlock::Lock>>> pending;
  pending.reserve(n + 1);
  const auto release_all = [&] {
    for (auto& lock : held) (void)holder.release(lock);
  };
  // Warm-up: one lock held and one acquire waiting for it, so that buffers
  // and the waiter's subscriber connections exist before the first reading.
  auto first = holder.acquire(resources[n], ttl);
  if (!first) {
    std::cerr << "redlock-bench: " << run.label << ": " << to_string(first.error()) << '\n';
    return {};
  }
  held.push_back(std::move(*first));
  std::stop_source stop;
  redlock::AcquireOptions wait;
  wait.max_wait = milliseconds(40'000);
  wait.retry_delay = milliseconds(20'000);
  wait.retry_jitter = milliseconds(0);
  wait.stop = stop.get_token();
  pending.push_back((*waiter)->async_acquire(resources[n], ttl, wait));
  // Waits until the waiter has had `rounds` refused rounds, and a moment
  // more: the subscriptions go out right after a refused round.
  const auto refused = [&](std::uint64_t rounds) {
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while ((*waiter)->metrics().contended_rounds < rounds) {
      if (Clock::now() >= give_up) return false;
      std::this_thread::sleep_for(milliseconds(1));
    }
    std::this_thread::sleep_for(milliseconds(20));
    return true;
  };
  if (!refused(1)) {
    std::cerr << "redlock-bench: " << run.label << ": the first waiter never ran a round\n";
    stop.request_stop();
    release_all();
    return {};
  }

  // Held locks, taken 32 at a time: a burst of thousands would grow the
  // connections' buffers, which is not a cost of holding.
  constexpr std::size_t kBatch = 32;
  std::vector<std::future<redlock::Result<redlock::Lock>>> acquiring;
  acquiring.reserve(kBatch);
  const std::size_t before_locks = heap_in_use();
  long errors = 0;
  for (std::size_t i = 0; i < n; i += kBatch) {
    for (std::size_t k = i; k < std::min(n, i + kBatch); ++k) {
      acquiring.push_back(holder.async_acquire(resources[k], ttl));
    }
    for (auto& f : acquiring) {
      auto got = f.get();
      if (got) {
        held.push_back(std::move(*got));
      } else {
        ++errors;
      }
    }
    acquiring.clear();
  }
  const std::size_t after_locks = heap_in_use();
  const std::size_t locks = held.size() - 1;

  // Waiting acquires, one for each held lock, 32 at a time as well.
  const std::size_t before_waiters = heap_in_use();
  bool all_waiting = true;
  for (std::size_t i = 1; i < held.size() && all_waiting; i += kBatch) {
    const std::size_t end = std::min(held.size(), i + kBatch);
    for (std::size_t k = i; k < end; ++k) {
      pending.push_back((*waiter)->async_acquire(held[k].resources().front(), ttl, wait));
    }
    all_waiting = refused(end);
  }
  const std::size_t after_waiters = heap_in_use();
  stop.request_stop();
  for (auto& f : pending) (void)f.get();
  release_all();
  if (!all_waiting) {
    std::cerr << "redlock-bench: " << run.label << ": not every waiter ran its first round\n";
    return {};
  }
  json j = redlock_line(run);
  j["ops"] = locks;
  j["locks"] = locks;
  j["waiters"] = locks;
  j["errors"] = errors;
  // The Lock object itself lives in the caller's vector, reserved before the
  // reading: counted here by its size.
  j["bytes_per_lock"] = round1(per_item(before_locks, after_locks, locks) + sizeof(redlock::Lock));
  j["bytes_per_waiter"] = round1(per_item(before_waiters, after_waiters, locks));
  j["lock_object_bytes"] = sizeof(redlock::Lock);
  ok = true;
  return j;
}

}  // namespace redlock::bench
