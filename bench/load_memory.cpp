// mem: the client's heap per held lock and per waiting acquire.
//
// glibc's mallinfo2() (bytes in use, small and mmapped blocks) before and
// after, with every thread on glibc's main arena (which is all mallinfo2
// reports; tool_main sets M_ARENA_MAX to 1 when mem is among the scenarios): --mem-locks locks held
// at once by one client, then as many acquires of a second client waiting for them (each after its
// first refused round, subscribed to the release announcements; no stop token), once as futures
// (async_acquire returning a std::future) and once with a callback (capturing one pointer, as a
// caller's context would be), each form on locks of its own. Whatever the client keeps for one more
// lock or waiter counts; what it makes once (connections, the subscriber's) is made before the
// first reading.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "load.hpp"

namespace redlock::bench {
namespace {

std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Where the callback waiters' outcomes go: one pointer to it is all a
// callback captures.
struct CallbackSink {
  std::atomic<std::size_t> called{0};
  std::mutex mutex;
  std::vector<redlock::Lock> granted;  // none expected; released if any
};

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
  // resources[n] is the warm-up's; those past it are the callback waiters'.
  std::vector<std::string> resources;
  resources.reserve(2 * n + 1);
  for (std::size_t i = 0; i <= 2 * n; ++i) resources.push_back(run.key + ":" + std::to_string(i));
  auto waiter = connect_client(cfg, nodes, node_timeout_for(cfg, "a"));
  if (!waiter) {
    std::cerr << "redlock-bench: " << run.label << ": " << waiter.error() << '\n';
    return {};
  }
  std::vector<redlock::Lock> held;
  held.reserve(2 * n + 1);
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
  // No stop token, as most callers use it (one would add its
  // std::stop_callback, about 100 bytes): the waiters end with their client.
  redlock::AcquireOptions wait;
  wait.max_wait = milliseconds(40'000);
  wait.retry_delay = milliseconds(20'000);
  wait.retry_jitter = milliseconds(0);
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
    waiter->reset();
    release_all();
    return {};
  }

  // Held locks, taken 32 at a time: a burst of thousands would grow the
  // connections' buffers, which is not a cost of holding.
  constexpr std::size_t kBatch = 32;
  std::vector<std::future<redlock::Result<redlock::Lock>>> acquiring;
  acquiring.reserve(kBatch);
  long errors = 0;
  const auto take = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; i += kBatch) {
      for (std::size_t k = i; k < std::min(to, i + kBatch); ++k) {
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
  };
  const std::size_t before_locks = heap_in_use();
  take(0, n);
  const std::size_t after_locks = heap_in_use();
  const std::size_t locks = held.size() - 1;
  // The callback waiters' locks, after the reading.
  take(n + 1, 2 * n + 1);

  // Waiting acquires, one for each held lock, 32 at a time as well: futures
  // for the first `locks`, callbacks for the rest.
  const std::size_t futures_end = 1 + locks;
  const std::size_t before_waiters = heap_in_use();
  bool all_waiting = true;
  for (std::size_t i = 1; i < futures_end && all_waiting; i += kBatch) {
    const std::size_t end = std::min(futures_end, i + kBatch);
    for (std::size_t k = i; k < end; ++k) {
      pending.push_back((*waiter)->async_acquire(held[k].resources().front(), ttl, wait));
    }
    all_waiting = refused(end);
  }
  const std::size_t after_waiters = heap_in_use();
  CallbackSink sink;
  std::size_t callbacks = 0;
  const std::size_t before_callbacks = heap_in_use();
  for (std::size_t i = futures_end; i < held.size() && all_waiting; i += kBatch) {
    const std::size_t end = std::min(held.size(), i + kBatch);
    for (std::size_t k = i; k < end; ++k) {
      auto posted = (*waiter)->async_acquire(held[k].resources().front(), ttl, wait,
                                             [s = &sink](redlock::Result<redlock::Lock> r) {
                                               if (r) {
                                                 std::lock_guard lk(s->mutex);
                                                 s->granted.push_back(std::move(*r));
                                               }
                                               s->called.fetch_add(1);
                                             });
      if (posted) ++callbacks;
    }
    all_waiting = refused(end);
  }
  const std::size_t after_callbacks = heap_in_use();
  // Closing the client ends every waiter (kShuttingDown) before it returns.
  waiter->reset();
  for (auto& f : pending) (void)f.get();
  const bool all_called = sink.called.load() == callbacks;
  release_all();
  {
    std::lock_guard lk(sink.mutex);
    for (auto& lock : sink.granted) (void)holder.release(lock);
  }
  if (!all_waiting) {
    std::cerr << "redlock-bench: " << run.label << ": not every waiter ran its first round\n";
    return {};
  }
  if (!all_called) {
    std::cerr << "redlock-bench: " << run.label
              << ": not every cancelled callback waiter was told\n";
    return {};
  }
  json j = redlock_line(run);
  j["ops"] = locks;
  j["locks"] = locks;
  j["waiters"] = locks;
  j["callback_waiters"] = callbacks;
  j["errors"] = errors;
  // The Lock object itself lives in the caller's vector, reserved before the
  // reading: counted here by its size.
  j["bytes_per_lock"] = round1(per_item(before_locks, after_locks, locks) + sizeof(redlock::Lock));
  j["bytes_per_waiter"] = round1(per_item(before_waiters, after_waiters, locks));
  j["bytes_per_callback_waiter"] = round1(per_item(before_callbacks, after_callbacks, callbacks));
  j["lock_object_bytes"] = sizeof(redlock::Lock);
  ok = true;
  return j;
}

}  // namespace redlock::bench
