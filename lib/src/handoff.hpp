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
#include <cstdint>
#include <memory>
#include <optional>
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

  // Blocks until the callback ran; returns what it was given.
  [[nodiscard]] Result<T> wait() {
    State& s = *state_;
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
