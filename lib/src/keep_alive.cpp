#include "keep_alive.hpp"

#include <spdlog/spdlog.h>

#include "extend_op.hpp"
#include "text.hpp"

namespace redlock::detail {
namespace {

// Retry pace for an extension that got no quorum, while the lock holds.
constexpr milliseconds kMaxRetryPause{50};

}  // namespace

KeepAlive::KeepAlive(const OpContext& ctx, Lock lock, milliseconds ttl, AutoExtendOptions options)
    : ctx_(ctx),
      ttl_(ttl),
      options_(std::move(options)),
      granted_at_(ctx.scheduler.now()),
      last_grant_(granted_at_),
      current_(std::move(lock)) {}

Lock KeepAlive::current() const {
  std::lock_guard lk(mutex_);
  return current_;
}

std::optional<Error> KeepAlive::lost_error() const {
  std::lock_guard lk(mutex_);
  return lost_error_;
}

void KeepAlive::start() {
  ctx_.active.add(shared_from_this());
  schedule();
}

void KeepAlive::stop() {
  if (stopped_) return;
  stopped_ = true;
  cancel_timers();
  ctx_.active.remove(this);
}

void KeepAlive::abort() {
  if (stopped_) return;
  declare_lost(
      Error(ErrorCode::kShuttingDown, "the client shut down; the lock is no longer extended"));
}

void KeepAlive::cancel_timers() {
  ctx_.scheduler.cancel(extend_timer_);
  ctx_.scheduler.cancel(deadline_timer_);
  extend_timer_ = 0;
  deadline_timer_ = 0;
}

void KeepAlive::schedule() {
  cancel_timers();
  const Lock lock = current();
  deadline_timer_ = ctx_.scheduler.schedule(lock.valid_until(), weak_from_this(), [this] {
    deadline_timer_ = 0;
    std::string why = "the lock's validity ran out";
    if (!bound_reached_.empty()) why += " after " + bound_reached_;
    declare_lost(Error(ErrorCode::kExpired, why));
  });
  const auto span = lock.valid_until() - last_grant_;
  const auto at = lock.valid_until() -
                  std::chrono::duration_cast<Clock::duration>(span * options_.extend_at_remaining);
  extend_timer_ = ctx_.scheduler.schedule(at, weak_from_this(), [this] { extend_now(); });
}

void KeepAlive::extend_now() {
  extend_timer_ = 0;
  if (stopped_) return;
  const auto now = ctx_.scheduler.now();
  if (options_.max_extensions > 0 && extensions_ >= options_.max_extensions) {
    bound_reached_ = "max_extensions (" + std::to_string(options_.max_extensions) + ") were used";
    return;  // the deadline timer reports the loss when the validity ends
  }
  if (options_.max_hold.count() > 0 && now + ttl_ > granted_at_ + options_.max_hold) {
    bound_reached_ = "max_hold (" + std::to_string(options_.max_hold.count()) + " ms) was reached";
    return;
  }
  auto weak = weak_from_this();
  ExtendOptions how;
  how.node_timeout = options_.node_timeout;
  start_extend(ctx_, current(), ttl_, how, [weak](Result<Lock> result) {
    if (auto self = weak.lock()) self.get()->on_extended(std::move(result));
  });
}

void KeepAlive::on_extended(Result<Lock> result) {
  if (stopped_) return;
  const auto now = ctx_.scheduler.now();
  if (result) {
    ++extensions_;
    {
      std::lock_guard lk(mutex_);
      current_ = std::move(*result);
    }
    last_grant_ = now;
    schedule();
    return;
  }
  const auto code = result.error().code();
  if (code == ErrorCode::kNotOwner || code == ErrorCode::kExpired ||
      code == ErrorCode::kShuttingDown) {
    declare_lost(std::move(result.error()));
    return;
  }
  // No quorum this time (nodes slow or down): try again while the lock holds;
  // the deadline timer reports the loss if no attempt succeeds in time.
  const auto left = current().valid_until() - now;
  const auto pause = std::min<Clock::duration>(kMaxRetryPause, left / 4);
  ctx_.log.debug("extension of {} failed ({}), retrying", quote_bytes(current().resource()),
                 to_string(result.error()));
  extend_timer_ = ctx_.scheduler.schedule(now + pause, weak_from_this(), [this] { extend_now(); });
}

void KeepAlive::declare_lost(Error why) {
  if (declared_) return;
  declared_ = true;
  stopped_ = true;
  cancel_timers();
  // Publish in this order: a thread that sees lost() also sees the reason
  // and a requested stop token.
  {
    std::lock_guard lk(mutex_);
    lost_error_ = why;
  }
  stop_source_.request_stop();
  lost_.store(true);
  ctx_.metrics.lock_lost();
  ctx_.log.warn("lock on {} lost: {}", quote_bytes(current().resource()), to_string(why));
  if (options_.on_lost) {
    try {
      options_.on_lost(why);
    } catch (const std::exception& e) {
      ctx_.log.error("an on_lost callback threw: {}", e.what());
    } catch (...) {
      ctx_.log.error("an on_lost callback threw a non-standard exception");
    }
  }
  ctx_.active.remove(this);
}

}  // namespace redlock::detail
