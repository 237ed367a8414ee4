// loop.hpp: the engine's event loop, on a thread of its own.
//
// A Loop owns a libuv loop and the few handles every engine needs: an eventfd
// that other threads write to hand it work (post) or to stop it, one timer
// that drives a queue of deadlines (the Scheduler), and a check handle that
// writes, once per loop iteration, whatever the iteration's callbacks queued
// (defer_flush).
//
// Threading: post(), stop() and on_loop_thread() may be called from any
// thread; everything else on the loop thread only (or before start()).
// Ownership: the Loop owns its handles and closes them itself; whoever opens
// other handles on it closes them in the on_stop callback given to start().
// A Loop that never ran closes what it opened in its destructor.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "redlock/result.hpp"
#include "rules.hpp"
#include "timer_queue.hpp"

namespace redlock::detail {

// Time and deferred work on the loop, as the operations see them (a test
// drives operations with a fake one).
class Scheduler {
 public:
  using TimerId = std::uint64_t;  // 0: no timer

  virtual ~Scheduler() = default;
  [[nodiscard]] virtual Clock::time_point now() const = 0;
  // Runs `fn` on the loop at or after `when`, unless cancelled first.
  virtual TimerId schedule(Clock::time_point when, std::function<void()> fn) = 0;
  // The same for a timer of `owner` (an operation, held by shared_ptr): `fn`
  // runs only if `owner` is still alive, and `owner` is held until it
  // returns. `fn` then captures a plain `this` (and a word at most), which
  // std::function keeps without allocating. An empty `owner` is no owner.
  virtual TimerId schedule(Clock::time_point when, std::weak_ptr<const void> owner,
                           std::function<void()> fn) = 0;
  // Cancelling 0, a timer that ran or one already cancelled does nothing.
  virtual void cancel(TimerId id) = 0;
  // Uniform in [0, 1): retry jitter, backoff.
  [[nodiscard]] virtual double random_unit() = 0;
  // Any thread. Runs `task` on the loop, in posting order. Error:
  // kShuttingDown (the task then never runs).
  [[nodiscard]] virtual Result<void> post(std::function<void()> task) = 0;
};

// Something with bytes to write once the loop iteration's callbacks ran.
class Flushable {
 public:
  virtual ~Flushable() = default;
  virtual void flush() = 0;

 private:
  friend class Loop;
  bool flush_queued_ = false;
};

class Loop final : public Scheduler {
 public:
  // `busy_poll`: after each event the loop keeps polling, without sleeping,
  // until nothing happened for this long (ClientOptions::busy_poll).
  [[nodiscard]] static Result<std::unique_ptr<Loop>> create(std::chrono::microseconds busy_poll);
  ~Loop() override;
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Starts the loop thread. On it, `on_start` runs first; `on_stop` runs
  // when stop() is called and must close every handle its owner opened on
  // the loop; the loop then runs until no handle is left (forcing any that
  // lingers closed after a grace period), and `on_exit` runs last, still on
  // the thread. `keep_alive` is held by the thread until it ends.
  [[nodiscard]] Result<void> start(std::function<void()> on_start, std::function<void()> on_stop,
                                   std::function<void()> on_exit, std::shared_ptr<void> keep_alive);
  // Any thread; idempotent. Refuses new posts, has the loop thread run
  // on_stop and waits for the thread to end (detaches when called on it).
  void stop() noexcept;
  // Any thread. Runs `task` on the loop thread, in posting order. Error:
  // kShuttingDown once stop() was called (the task then never runs).
  [[nodiscard]] Result<void> post(std::function<void()> task) override;
  [[nodiscard]] bool on_loop_thread() const noexcept;

  // Loop thread.
  [[nodiscard]] uv_loop_t* uv() noexcept { return &loop_; }
  [[nodiscard]] Clock::time_point now() const override { return Clock::now(); }
  TimerId schedule(Clock::time_point when, std::function<void()> fn) override;
  TimerId schedule(Clock::time_point when, std::weak_ptr<const void> owner,
                   std::function<void()> fn) override;
  void cancel(TimerId id) override;
  [[nodiscard]] double random_unit() override;
  // `f.flush()` runs in this iteration's check phase (once, however often
  // this is called). `f` must stay alive until then or until stop.
  void defer_flush(Flushable& f);
  // Runs the deferred flushes now: for callbacks that do not run in the
  // poll phase (timers run before it).
  void flush();
  // Something happened: busy polling goes on for another busy_poll.
  void note_activity() noexcept { ++activity_; }
  // stop() was called and on_stop has run (or is running).
  [[nodiscard]] bool stopping() const noexcept { return stopping_loop_; }
  // Closes the loop after the thread ended or when it never ran; nothing
  // may be open on it but the Loop's own handles. Called by the destructor;
  // returns uv_loop_close's error, if any.
  [[nodiscard]] Result<void> close();

 private:
  explicit Loop(std::chrono::microseconds busy_poll);
  void run();
  void run_loop();
  void on_wake();
  void wake() noexcept;
  void on_timer();
  void arm_timer();
  void begin_stop();
  void close_own_handles();

  std::chrono::microseconds busy_poll_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;  // uv_loop_init succeeded and close() has not run
  // Wakes the loop for posted tasks and stop. Not a uv_async_t: before
  // libuv 1.45 (Debian 12 ships 1.44) the loop thread busy-waits in
  // uv__async_io until the posting thread has returned from its own eventfd
  // write, which takes long when that thread was preempted (libuv#2769,
  // removed by libuv#3879). An eventfd written under mutex_ and read by a
  // uv_poll_t has no such wait.
  int wake_fd_ = -1;
  uv_poll_t wake_poll_{};
  uv_check_t flush_check_{};     // runs the deferred flushes; unreferenced
  uv_timer_t timer_{};           // the scheduler's single timer
  uv_timer_t shutdown_timer_{};  // forces handles closed if a stop stalls
  bool handles_open_ = false;

  std::function<void()> on_start_;
  std::function<void()> on_stop_;
  std::function<void()> on_exit_;

  std::mutex mutex_;  // guards tasks_ and stopping_
  std::vector<std::function<void()>> tasks_;
  std::vector<std::function<void()>> spare_tasks_;  // keeps tasks_'s capacity
  bool stopping_ = false;

  bool stopping_loop_ = false;  // the loop thread's view
  TimerQueue timers_;
  std::vector<Flushable*> dirty_;
  std::vector<Flushable*> spare_dirty_;
  std::uint64_t activity_ = 0;
  std::mt19937_64 rng_;
  std::atomic<std::thread::id> loop_thread_id_{};
  std::thread thread_;
};

}  // namespace redlock::detail
