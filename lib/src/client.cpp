#include "redlock/client.hpp"

#include "engine.hpp"
#include "handoff.hpp"
#include "keep_alive.hpp"
#include "redlock/lock_guard.hpp"
#include "validate.hpp"

namespace redlock {
namespace {

Error wrong_thread(std::string_view what) {
  return Error(ErrorCode::kWrongThread, std::string(what) +
                                            " blocks and was called on the client's loop thread; "
                                            "use the async form from callbacks");
}

// Runs a callback-style post and blocks until its callback ran; a refused
// post returns its error (and never calls back).
template <typename T, typename Post>
Result<T> wait_for(detail::Engine& engine, Post&& post) {
  detail::Handoff<T> handoff;
  if (auto posted = post(handoff.callback()); !posted) return Unexpected(posted.error());
  return handoff.wait(engine.spin_gate());
}

// Turns a callback-style post into a future; a refused post fills the future
// with its error.
template <typename T, typename Post>
std::future<Result<T>> as_future(Post&& post) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  auto posted = post([promise](Result<T> r) { promise->set_value(std::move(r)); });
  if (!posted) promise->set_value(Unexpected(posted.error()));
  return future;
}

}  // namespace

Result<std::unique_ptr<Client>> Client::connect(ClientOptions options) {
  auto engine = detail::Engine::start(std::move(options));
  if (!engine) return Unexpected(engine.error());
  return std::unique_ptr<Client>(new Client(std::move(*engine)));
}

Client::Client(std::shared_ptr<detail::Engine> engine) : engine_(std::move(engine)) {}

Client::~Client() { engine_->shutdown(); }

Result<Lock> Client::acquire(std::string_view resource, std::chrono::milliseconds ttl,
                             const AcquireOptions& options) {
  if (engine_->on_loop_thread()) return Unexpected(wrong_thread("acquire()"));
  return wait_for<Lock>(*engine_, [&](AcquireCallback cb) {
    return engine_->post_acquire({std::string(resource)}, ttl, options, std::move(cb));
  });
}

Result<void> Client::async_acquire(std::string_view resource, std::chrono::milliseconds ttl,
                                   const AcquireOptions& options, AcquireCallback callback) {
  return engine_->post_acquire({std::string(resource)}, ttl, options, std::move(callback));
}

std::future<Result<Lock>> Client::async_acquire(std::string_view resource,
                                                std::chrono::milliseconds ttl,
                                                const AcquireOptions& options) {
  // The promise goes into the acquire itself: no callback around it.
  std::promise<Result<Lock>> promise;
  auto future = promise.get_future();
  auto posted = engine_->post_acquire({std::string(resource)}, ttl, options, promise);
  if (!posted) promise.set_value(Unexpected(posted.error()));
  return future;
}

Result<Lock> Client::acquire_all(std::vector<std::string> resources, std::chrono::milliseconds ttl,
                                 const AcquireOptions& options) {
  if (engine_->on_loop_thread()) return Unexpected(wrong_thread("acquire_all()"));
  return wait_for<Lock>(*engine_, [&](AcquireCallback cb) {
    return engine_->post_acquire(std::move(resources), ttl, options, std::move(cb));
  });
}

Result<void> Client::async_acquire_all(std::vector<std::string> resources,
                                       std::chrono::milliseconds ttl, const AcquireOptions& options,
                                       AcquireCallback callback) {
  return engine_->post_acquire(std::move(resources), ttl, options, std::move(callback));
}

Result<LockGuard> Client::acquire_guard(std::string_view resource, std::chrono::milliseconds ttl,
                                        const AcquireOptions& options) {
  auto lock = acquire(resource, ttl, options);
  if (!lock) return Unexpected(lock.error());
  return LockGuard(*this, std::move(*lock));
}

Result<LockGuard> Client::acquire_guard(std::string_view resource, std::chrono::milliseconds ttl,
                                        const AcquireOptions& options,
                                        const AutoExtendOptions& extend) {
  // Extensions use the acquire's node timeout unless told otherwise.
  AutoExtendOptions keep = extend;
  if (keep.node_timeout.count() == 0) keep.node_timeout = options.node_timeout;
  // Check the extension options before taking a lock they would refuse.
  const auto extend_ttl = keep.ttl.count() > 0 ? keep.ttl : ttl;
  if (auto ok = detail::validate_auto_extend(keep, extend_ttl, engine_->options()); !ok) {
    return Unexpected(ok.error());
  }
  auto lock = acquire(resource, ttl, options);
  if (!lock) return Unexpected(lock.error());
  return LockGuard::keep_alive(*this, std::move(*lock), keep);
}

Result<Lock> Client::extend(const Lock& lock, std::chrono::milliseconds ttl,
                            const ExtendOptions& options) {
  if (engine_->on_loop_thread()) return Unexpected(wrong_thread("extend()"));
  return wait_for<Lock>(*engine_, [&](AcquireCallback cb) {
    return engine_->post_extend(lock, ttl, options, std::move(cb));
  });
}

Result<void> Client::async_extend(const Lock& lock, std::chrono::milliseconds ttl,
                                  const ExtendOptions& options, AcquireCallback callback) {
  return engine_->post_extend(lock, ttl, options, std::move(callback));
}

std::future<Result<Lock>> Client::async_extend(const Lock& lock, std::chrono::milliseconds ttl,
                                               const ExtendOptions& options) {
  return as_future<Lock>(
      [&](AcquireCallback cb) { return engine_->post_extend(lock, ttl, options, std::move(cb)); });
}

Result<ReleaseReport> Client::release(const Lock& lock) {
  if (engine_->on_loop_thread()) return Unexpected(wrong_thread("release()"));
  return wait_for<ReleaseReport>(
      *engine_, [&](ReleaseCallback cb) { return engine_->post_release(lock, std::move(cb)); });
}

Result<void> Client::async_release(const Lock& lock, ReleaseCallback callback) {
  if (!callback) {
    return Unexpected(Error(ErrorCode::kInvalidArgument, "release callback is empty"));
  }
  return engine_->post_release(lock, std::move(callback));
}

std::future<Result<ReleaseReport>> Client::async_release(const Lock& lock) {
  return as_future<ReleaseReport>(
      [&](ReleaseCallback cb) { return engine_->post_release(lock, std::move(cb)); });
}

const std::vector<std::string>& Client::nodes() const noexcept { return engine_->node_names(); }

std::size_t Client::quorum() const noexcept { return detail::quorum(engine_->node_names().size()); }

std::vector<bool> Client::connected() const { return engine_->connected(); }

MetricsSnapshot Client::metrics() const { return engine_->metrics_snapshot(); }

Result<HealthReport> Client::health(std::chrono::milliseconds timeout) {
  if (engine_->on_loop_thread()) return Unexpected(wrong_thread("health()"));
  return wait_for<HealthReport>(
      *engine_, [&](HealthCallback cb) { return engine_->post_health(timeout, std::move(cb)); });
}

Result<void> Client::async_health(std::chrono::milliseconds timeout, HealthCallback callback) {
  return engine_->post_health(timeout, std::move(callback));
}

Result<LockState> Client::inspect(std::string_view resource, std::chrono::milliseconds timeout) {
  if (engine_->on_loop_thread()) return Unexpected(wrong_thread("inspect()"));
  return wait_for<LockState>(*engine_, [&](InspectCallback cb) {
    return engine_->post_inspect(std::string(resource), timeout, std::move(cb));
  });
}

Result<void> Client::async_inspect(std::string_view resource, std::chrono::milliseconds timeout,
                                   InspectCallback callback) {
  return engine_->post_inspect(std::string(resource), timeout, std::move(callback));
}

bool Client::quorum_available() const { return engine_->quorum_available(); }

}  // namespace redlock
