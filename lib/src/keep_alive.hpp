// keep_alive.hpp: automatic extension of a held lock.
//
// A KeepAlive extends its lock on the loop thread when a share of its
// validity remains, within the configured bounds, and signals "lost" exactly
// once (the stop source, the on_lost callback, lost()) when an extension is
// refused or the validity runs out. current(), lost(), lost_error() and
// token() may be called from any thread; everything else runs on the loop.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <stop_token>

#include "operation.hpp"
#include "redlock/lock.hpp"

namespace redlock::detail {

class KeepAlive final : public Abortable, public std::enable_shared_from_this<KeepAlive> {
 public:
  KeepAlive(const OpContext& ctx, Lock lock, milliseconds ttl, AutoExtendOptions options);

  [[nodiscard]] Lock current() const;
  [[nodiscard]] bool lost() const noexcept { return lost_.load(); }
  [[nodiscard]] std::optional<Error> lost_error() const;
  [[nodiscard]] std::stop_token token() const noexcept { return stop_source_.get_token(); }

  void start();  // loop thread
  void stop();   // loop thread: no more extensions, no lost signal

  void abort() override;

 private:
  void schedule();
  void extend_now();
  void on_extended(Result<Lock> result);
  void declare_lost(Error why);
  void cancel_timers();

  const OpContext& ctx_;  // the engine's: outlives every operation
  const milliseconds ttl_;
  const AutoExtendOptions options_;
  const Clock::time_point granted_at_;
  Clock::time_point last_grant_;

  mutable std::mutex mutex_;  // guards current_ and lost_error_
  Lock current_;
  std::optional<Error> lost_error_;
  std::atomic<bool> lost_{false};
  std::stop_source stop_source_;

  Scheduler::TimerId extend_timer_ = 0;
  Scheduler::TimerId deadline_timer_ = 0;
  int extensions_ = 0;
  bool stopped_ = false;
  bool declared_ = false;      // the loss was signalled (loop thread)
  std::string bound_reached_;  // why extensions stopped before the lock was lost
};

}  // namespace redlock::detail
