// handoff.hpp: one result handed from the loop thread to a thread that blocks
// until it arrives (the blocking calls of Client and LockGuard). Lighter than
// a promise and future: one allocation, and the loop thread makes a single
// futex wake (none if the waiter has not gone to sleep yet).
//
// Threading: the callback runs once on the loop thread; wait() is called
// once by the blocked thread. Ownership: both share the state, so it outlives
// whichever side finishes last.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "redlock/result.hpp"

namespace redlock::detail {

template <typename T>
class Handoff {
 public:
  Handoff() : state_(std::make_shared<State>()) {}

  // The callback to give the engine.
  [[nodiscard]] auto callback() const {
    return [state = state_](Result<T> r) { state->put(std::move(r)); };
  }

  // Blocks until the callback ran; returns what it was given. For up to
  // `spin` it checks, yielding between checks, before it sleeps: a result
  // that comes by then needs no futex wake (ClientOptions::blocking_spin).
  [[nodiscard]] Result<T> wait(std::chrono::microseconds spin) {
    State& s = *state_;
    if (spin.count() > 0 && s.ready.load(std::memory_order_acquire) == 0) {
      const auto until = std::chrono::steady_clock::now() + spin;
      do {
        std::this_thread::yield();
      } while (s.ready.load(std::memory_order_acquire) == 0 &&
               std::chrono::steady_clock::now() < until);
    }
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
