#include "redlock/lock_guard.hpp"

#include "engine.hpp"
#include "handoff.hpp"
#include "keep_alive.hpp"
#include "redlock/client.hpp"
#include "validate.hpp"

namespace redlock {

LockGuard::LockGuard(Client& client, Lock lock) : engine_(client.engine_), lock_(std::move(lock)) {}

Result<LockGuard> LockGuard::keep_alive(Client& client, Lock lock,
                                        const AutoExtendOptions& options) {
  auto engine = client.engine_;
  const auto ttl = options.ttl.count() > 0 ? options.ttl : lock.ttl();
  if (auto ok = detail::validate_auto_extend(options, ttl, engine->options()); !ok) {
    return Unexpected(ok.error());
  }
  LockGuard guard(client, lock);
  auto keep =
      std::make_shared<detail::KeepAlive>(engine->op_context(), std::move(lock), ttl, options);
  if (auto posted = engine->post([keep] { keep->start(); }); !posted) {
    (void)guard.dismiss();  // the client is going away: nothing can release it either
    return Unexpected(posted.error());
  }
  guard.keep_alive_ = std::move(keep);
  return guard;
}

LockGuard::~LockGuard() { release_async(); }

LockGuard::LockGuard(LockGuard&& other) noexcept
    : engine_(std::move(other.engine_)),
      lock_(std::move(other.lock_)),
      keep_alive_(std::move(other.keep_alive_)) {
  other.lock_.reset();
}

LockGuard& LockGuard::operator=(LockGuard&& other) noexcept {
  if (this != &other) {
    release_async();
    engine_ = std::move(other.engine_);
    lock_ = std::move(other.lock_);
    keep_alive_ = std::move(other.keep_alive_);
    other.lock_.reset();
  }
  return *this;
}

Lock LockGuard::lock() const { return keep_alive_ ? keep_alive_->current() : *lock_; }

bool LockGuard::lost() const noexcept { return keep_alive_ && keep_alive_->lost(); }

std::optional<Error> LockGuard::lost_error() const {
  return keep_alive_ ? keep_alive_->lost_error() : std::nullopt;
}

std::stop_token LockGuard::stop_token() const noexcept {
  return keep_alive_ ? keep_alive_->token() : std::stop_token();
}

namespace {

// Stops the extensions first: the engine runs posted tasks in order, so no
// extension starts after the release.
void stop_keep_alive(detail::Engine& engine, const std::shared_ptr<detail::KeepAlive>& keep) {
  if (keep) (void)engine.post([keep] { keep->stop(); });
}

}  // namespace

Result<ReleaseReport> LockGuard::release() {
  if (!lock_) return Unexpected(Error(ErrorCode::kInvalidArgument, "the guard holds no lock"));
  auto engine = engine_.lock();
  // The lock as it stands now: an extended lock's keys live longer than the
  // grant said, and a node that misses the release must get it until then.
  Lock lock = this->lock();
  lock_.reset();
  auto keep = std::move(keep_alive_);
  if (!engine) return Unexpected(Error(ErrorCode::kShuttingDown, "the client is gone"));
  stop_keep_alive(*engine, keep);
  if (engine->on_loop_thread()) {
    // Cannot wait here; release in the background rather than leak the key.
    (void)engine->post_release(lock, nullptr);
    return Unexpected(Error(ErrorCode::kWrongThread,
                            "LockGuard::release() blocks and was called on the loop thread; "
                            "the lock is being released asynchronously"));
  }
  detail::Handoff<ReleaseReport> handoff;
  if (auto posted = engine->post_release(lock, handoff.callback()); !posted) {
    return Unexpected(posted.error());
  }
  return handoff.wait(engine->spin_gate());
}

std::optional<Lock> LockGuard::dismiss() noexcept {
  std::optional<Lock> out;
  if (lock_) {
    try {
      // The lock as it stands now (extended since the grant, perhaps).
      out = keep_alive_ ? keep_alive_->current() : std::move(*lock_);
    } catch (...) {
      out = std::move(*lock_);  // no memory for the copy: the grant will do
    }
  }
  lock_.reset();
  if (keep_alive_) {
    if (auto engine = engine_.lock()) stop_keep_alive(*engine, keep_alive_);
    keep_alive_.reset();
  }
  return out;
}

void LockGuard::release_async() noexcept {
  if (!lock_) return;
  try {
    if (auto engine = engine_.lock()) {
      stop_keep_alive(*engine, keep_alive_);
      (void)engine->post_release(lock(), nullptr);
    }
  } catch (...) {
    // Allocation failure while queueing: the key expires with its ttl.
  }
  lock_.reset();
  keep_alive_.reset();
}

}  // namespace redlock
