// handoff.hpp: one result handed from the loop thread to a thread that blocks
// until it arrives (the blocking calls of Client and LockGuard). Lighter than
// a promise and future: one allocation, and the loop thread makes a single
// futex wake (none if the waiter has not gone to sleep yet).
//
// Threading: the callback runs once on the loop thread; wait() is called
// once by the blocked thread. Ownership: both share the state, so it outlives
// whichever side finishes last.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "redlock/result.hpp"

namespace redlock::detail {

// Whether a blocking call spins before it sleeps (ClientOptions::
// blocking_spin). Spinning pays when the result comes within the budget; when
// it does not, it only takes the CPU from whoever would produce the result
// (on a small machine: the servers themselves). So a call spins while the
// recent blocking waits, as a moving average, took no more than half the
// budget (most then end within it), and sleeps at once otherwise. Every wait,
// spun or not, is recorded, so the gate follows the nodes as they get nearer
// or farther.
//
// Threading: any thread; the average is updated without a lock (a lost
// update only delays the gate by one call).
class SpinGate {
 public:
  explicit SpinGate(std::chrono::microseconds budget) noexcept : budget_(budget) {}

  // The spin for the next blocking call: the budget, or 0.
  [[nodiscard]] std::chrono::microseconds spin() const noexcept {
    if (budget_.count() <= 0) return std::chrono::microseconds(0);
    const auto typical = std::chrono::nanoseconds(typical_ns_.load(std::memory_order_relaxed));
    return 2 * typical <= budget_ ? budget_ : std::chrono::microseconds(0);
  }
  // A blocking call waited this long for its result.
  void record(std::chrono::nanoseconds waited) noexcept {
    const auto w = std::max<std::int64_t>(waited.count(), 0);
    const auto old = typical_ns_.load(std::memory_order_relaxed);
    typical_ns_.store(old + (w - old) / kWeight, std::memory_order_relaxed);
  }

 private:
  static constexpr std::int64_t kWeight = 8;  // each wait moves the average by 1/8
  std::chrono::microseconds budget_;
  std::atomic<std::int64_t> typical_ns_{0};
};

// Checks `done()`, yielding the CPU between checks, for up to `budget`;
// returns at once when it is already true or the budget is 0.
template <typename Done>
void spin_until(Done&& done, std::chrono::microseconds budget) {
  if (budget.count() <= 0 || done()) return;
  const auto until = std::chrono::steady_clock::now() + budget;
  do {
    std::this_thread::yield();
  } while (!done() && std::chrono::steady_clock::now() < until);
}

template <typename T>
class Handoff {
 public:
  Handoff() : state_(std::make_shared<State>()) {}

  // The callback to give the engine.
  [[nodiscard]] auto callback() const {
    return [state = state_](Result<T> r) { state->put(std::move(r)); };
  }

  // Blocks until the callback ran; returns what it was given. For as long
  // as `gate` allows it checks, yielding between checks, before it sleeps: a
  // result that comes by then needs no futex wake. The wait is recorded in
  // `gate`.
  [[nodiscard]] Result<T> wait(SpinGate& gate) {
    const auto start = std::chrono::steady_clock::now();
    auto result = wait(gate.spin());
    gate.record(std::chrono::steady_clock::now() - start);
    return result;
  }

  // The same with a fixed spin (ClientOptions::blocking_spin's budget, or 0).
  [[nodiscard]] Result<T> wait(std::chrono::microseconds spin) {
    State& s = *state_;
    spin_until([&s] { return s.ready.load(std::memory_order_acquire) != 0; }, spin);
    while (s.ready.load(std::memory_order_acquire) == 0) s.ready.wait(0, std::memory_order_acquire);
    return std::move(*s.value);
  }

 private:
  struct State {
    std::atomic<std::uint32_t> ready{0};
    std::optional<Result<T>> value;

    void put(Result<T> r) {
      value.emplace(std::move(r));
      ready.store(1, std::memory_order_release);
      ready.notify_one();
    }
  };

  std::shared_ptr<State> state_;
};

}  // namespace redlock::detail
