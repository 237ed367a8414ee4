#include "loop.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <system_error>

namespace redlock::detail {
namespace {

// How long a stop may take to close every handle before the rest are forced
// closed (a peer that never acknowledges a graceful shutdown, say).
constexpr std::chrono::milliseconds kShutdownGrace{1000};

void close_all(uv_loop_t* loop) {
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (uv_is_closing(h) == 0) uv_close(h, nullptr);
      },
      nullptr);
}

}  // namespace

Loop::Loop(std::chrono::microseconds busy_poll)
    : busy_poll_(busy_poll), rng_(std::random_device{}()) {}

Result<std::unique_ptr<Loop>> Loop::create(std::chrono::microseconds busy_poll) {
  std::unique_ptr<Loop> loop(new Loop(busy_poll));
  Loop& l = *loop;
  l.wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (l.wake_fd_ < 0) {
    return Unexpected(Error(ErrorCode::kInternal, std::string("eventfd: ") + std::strerror(errno)));
  }
  if (int rc = uv_loop_init(&l.loop_); rc != 0) {
    return Unexpected(Error(ErrorCode::kInternal, std::string("uv_loop_init: ") + uv_strerror(rc)));
  }
  l.loop_ready_ = true;
  l.loop_.data = &l;
  if (int rc = uv_poll_init(&l.loop_, &l.wake_poll_, l.wake_fd_); rc != 0) {
    return Unexpected(Error(ErrorCode::kInternal, std::string("uv_poll_init: ") + uv_strerror(rc)));
  }
  l.handles_open_ = true;
  l.wake_poll_.data = &l;
  uv_poll_start(&l.wake_poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* self = static_cast<Loop*>(h->data);
    std::uint64_t count = 0;
    (void)!::read(self->wake_fd_, &count, sizeof count);
    self->on_wake();
  });
  uv_check_init(&l.loop_, &l.flush_check_);
  l.flush_check_.data = &l;
  uv_check_start(&l.flush_check_, [](uv_check_t* h) { static_cast<Loop*>(h->data)->flush(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(&l.flush_check_));
  uv_timer_init(&l.loop_, &l.timer_);
  l.timer_.data = &l;
  uv_timer_init(&l.loop_, &l.shutdown_timer_);
  l.shutdown_timer_.data = &l;
  return loop;
}

Loop::~Loop() {
  stop();
  (void)close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Result<void> Loop::close() {
  if (!loop_ready_) return {};
  // Never ran (or ran and left something behind): close what is open and
  // let the close callbacks run.
  if (handles_open_) close_own_handles();
  close_all(&loop_);
  uv_run(&loop_, UV_RUN_DEFAULT);
  loop_ready_ = false;
  if (int rc = uv_loop_close(&loop_); rc != 0) {
    return Unexpected(Error(ErrorCode::kInternal,
                            std::string("the event loop did not close: ") + uv_strerror(rc)));
  }
  return {};
}

void Loop::close_own_handles() {
  handles_open_ = false;
  for (auto* h :
       {reinterpret_cast<uv_handle_t*>(&timer_), reinterpret_cast<uv_handle_t*>(&wake_poll_),
        reinterpret_cast<uv_handle_t*>(&flush_check_)}) {
    if (uv_is_closing(h) == 0) uv_close(h, nullptr);
  }
}

Result<void> Loop::start(std::function<void()> on_start, std::function<void()> on_stop,
                         std::function<void()> on_exit, std::shared_ptr<void> keep_alive) {
  on_start_ = std::move(on_start);
  on_stop_ = std::move(on_stop);
  on_exit_ = std::move(on_exit);
  try {
    thread_ = std::thread([this, keep = std::move(keep_alive)] { run(); });
  } catch (const std::system_error& ex) {
    return Unexpected(
        Error(ErrorCode::kInternal, std::string("cannot start the loop thread: ") + ex.what()));
  }
  return {};
}

void Loop::run() {
  // A write to a node that has just gone away fails with EPIPE, and raises
  // SIGPIPE, which ends the process unless the application ignores it. This
  // thread may write twice to a connection in one loop iteration, the second
  // time after the peer's reset. Blocked on this thread only: the
  // application's own SIGPIPE handling is untouched.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
  loop_thread_id_ = std::this_thread::get_id();
  if (on_start_) on_start_();
  flush();
  run_loop();
  // Only after a forced stop is anything still open here.
  close_all(&loop_);
  uv_run(&loop_, UV_RUN_DEFAULT);
  timers_.clear();
  if (on_exit_) on_exit_();
  on_start_ = nullptr;
  on_stop_ = nullptr;
  on_exit_ = nullptr;
  // Thread ids are reused: a later thread must not pass for the loop thread.
  loop_thread_id_ = std::thread::id();
}

void Loop::run_loop() {
  const auto budget = std::chrono::duration_cast<Clock::duration>(busy_poll_);
  if (budget.count() <= 0) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    return;
  }
  // A blocking caller, a node's reply or the next request of a pipeline
  // often comes within microseconds of the last event. Sleeping in epoll in
  // between costs two context switches and, when the other side runs on
  // another CPU, an inter-processor wake-up each way; polling instead finds
  // it at once. Yielding between polls keeps the CPU for whoever else needs
  // it (on a small machine: the servers themselves).
  bool alive = true;
  while (alive) {
    alive = uv_run(&loop_, UV_RUN_ONCE) != 0;  // sleeps until something happens
    auto last = Clock::now();
    std::uint64_t seen = activity_;
    while (alive) {
      std::this_thread::yield();
      alive = uv_run(&loop_, UV_RUN_NOWAIT) != 0;
      const auto now = Clock::now();
      if (activity_ != seen) {
        seen = activity_;
        last = now;
      } else if (now - last >= budget) {
        break;
      }
    }
  }
}

bool Loop::on_loop_thread() const noexcept {
  return loop_thread_id_.load() == std::this_thread::get_id();
}

void Loop::stop() noexcept {
  {
    std::lock_guard lk(mutex_);
    if (!stopping_) {
      stopping_ = true;
      wake();
    }
  }
  if (!thread_.joinable()) return;
  if (std::this_thread::get_id() == thread_.get_id()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

Result<void> Loop::post(std::function<void()> task) {
  std::lock_guard lk(mutex_);
  if (stopping_) return Unexpected(Error(ErrorCode::kShuttingDown, "the client is shutting down"));
  const bool wake_up = tasks_.empty();
  tasks_.push_back(std::move(task));
  if (wake_up) wake();
  return {};
}

void Loop::wake() noexcept {
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Loop::on_wake() {
  // tasks_ takes the spare vector's capacity: posts do not allocate it anew.
  std::vector<std::function<void()>> batch = std::move(spare_tasks_);
  bool stop_now = false;
  {
    std::lock_guard lk(mutex_);
    batch.swap(tasks_);
    stop_now = stopping_;
  }
  note_activity();
  for (auto& t : batch) t();
  batch.clear();
  spare_tasks_ = std::move(batch);
  if (stop_now && !stopping_loop_) begin_stop();
  // The check phase writes what the tasks queued.
}

void Loop::begin_stop() {
  stopping_loop_ = true;
  if (on_stop_) on_stop_();
  flush();
  dirty_.clear();
  timers_.clear();
  close_own_handles();
  uv_timer_start(
      &shutdown_timer_, [](uv_timer_t* t) { close_all(t->loop); },
      static_cast<std::uint64_t>(kShutdownGrace.count()), 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&shutdown_timer_));
}

Scheduler::TimerId Loop::schedule(Clock::time_point when, std::function<void()> fn) {
  const TimerId id = timers_.add(when, std::move(fn));
  if (timers_.next_id() == id) arm_timer();
  return id;
}

Scheduler::TimerId Loop::schedule(Clock::time_point when, std::weak_ptr<const void> owner,
                                  std::function<void()> fn) {
  const TimerId id = timers_.add(when, std::move(owner), std::move(fn));
  if (timers_.next_id() == id) arm_timer();
  return id;
}

void Loop::cancel(TimerId id) { timers_.cancel(id); }

double Loop::random_unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

void Loop::arm_timer() {
  if (stopping_loop_) return;
  if (timers_.empty()) {
    uv_timer_stop(&timer_);
    return;
  }
  const auto delta = timers_.next_when() - Clock::now();
  const auto ms = std::max<std::int64_t>(0, std::chrono::ceil<milliseconds>(delta).count());
  uv_update_time(&loop_);
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<Loop*>(t->data)->on_timer(); },
      static_cast<std::uint64_t>(ms), 0);
}

void Loop::on_timer() {
  const auto now = Clock::now();
  while (const auto due = timers_.pop_due(now)) due();
  arm_timer();
  flush();
}

void Loop::defer_flush(Flushable& f) {
  if (f.flush_queued_) return;
  f.flush_queued_ = true;
  dirty_.push_back(&f);
}

void Loop::flush() {
  // The two vectors trade places and keep their capacity: no allocation per
  // loop iteration.
  std::vector<Flushable*> batch = std::move(spare_dirty_);
  if (!dirty_.empty()) note_activity();
  while (!dirty_.empty()) {
    batch.swap(dirty_);
    for (Flushable* f : batch) {
      f->flush_queued_ = false;
      f->flush();
    }
    batch.clear();
  }
  spare_dirty_ = std::move(batch);
}

}  // namespace redlock::detail
