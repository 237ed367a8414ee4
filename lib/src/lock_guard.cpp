#include "redlock/lock_guard.hpp"

#include "engine.hpp"

namespace redlock {

LockGuard::LockGuard(Client& client, Lock lock) : engine_(client.engine_), lock_(std::move(lock)) {}

LockGuard::~LockGuard() { release_async(); }

LockGuard::LockGuard(LockGuard&& other) noexcept
    : engine_(std::move(other.engine_)), lock_(std::move(other.lock_)) {
  other.lock_.reset();
}

LockGuard& LockGuard::operator=(LockGuard&& other) noexcept {
  if (this != &other) {
    release_async();
    engine_ = std::move(other.engine_);
    lock_ = std::move(other.lock_);
    other.lock_.reset();
  }
  return *this;
}

Result<ReleaseReport> LockGuard::release() {
  if (!lock_) return Unexpected(Error(ErrorCode::kInvalidArgument, "the guard holds no lock"));
  auto engine = engine_.lock();
  Lock lock = std::move(*lock_);
  lock_.reset();
  if (!engine) return Unexpected(Error(ErrorCode::kShuttingDown, "the client is gone"));
  if (engine->on_loop_thread()) {
    // Cannot wait here; release in the background rather than leak the key.
    (void)engine->post_release(lock, nullptr);
    return Unexpected(Error(ErrorCode::kWrongThread,
                            "LockGuard::release() blocks and was called on the loop thread; "
                            "the lock is being released asynchronously"));
  }
  auto promise = std::make_shared<std::promise<Result<ReleaseReport>>>();
  auto future = promise->get_future();
  auto posted = engine->post_release(
      lock, [promise](Result<ReleaseReport> r) { promise->set_value(std::move(r)); });
  if (!posted) return Unexpected(posted.error());
  return future.get();
}

std::optional<Lock> LockGuard::dismiss() noexcept {
  std::optional<Lock> out = std::move(lock_);
  lock_.reset();
  return out;
}

void LockGuard::release_async() noexcept {
  if (!lock_) return;
  try {
    if (auto engine = engine_.lock()) (void)engine->post_release(*lock_, nullptr);
  } catch (...) {
    // Allocation failure while queueing: the key expires with its ttl.
  }
  lock_.reset();
}

}  // namespace redlock
