#include "redlock/client.hpp"

#include "engine.hpp"
#include "redlock/lock_guard.hpp"

namespace redlock {
namespace {

Error wrong_thread(std::string_view what) {
  return Error(ErrorCode::kWrongThread, std::string(what) +
                                            " blocks and was called on the client's loop thread; "
                                            "use the async form from callbacks");
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
  return async_acquire(resource, ttl, options).get();
}

Result<void> Client::async_acquire(std::string_view resource, std::chrono::milliseconds ttl,
                                   const AcquireOptions& options, AcquireCallback callback) {
  return engine_->post_acquire(resource, ttl, options, std::move(callback));
}

std::future<Result<Lock>> Client::async_acquire(std::string_view resource,
                                                std::chrono::milliseconds ttl,
                                                const AcquireOptions& options) {
  auto promise = std::make_shared<std::promise<Result<Lock>>>();
  auto future = promise->get_future();
  auto posted = engine_->post_acquire(
      resource, ttl, options, [promise](Result<Lock> r) { promise->set_value(std::move(r)); });
  if (!posted) promise->set_value(Unexpected(posted.error()));
  return future;
}

Result<LockGuard> Client::acquire_guard(std::string_view resource, std::chrono::milliseconds ttl,
                                        const AcquireOptions& options) {
  auto lock = acquire(resource, ttl, options);
  if (!lock) return Unexpected(lock.error());
  return LockGuard(*this, std::move(*lock));
}

Result<ReleaseReport> Client::release(const Lock& lock) {
  if (engine_->on_loop_thread()) return Unexpected(wrong_thread("release()"));
  return async_release(lock).get();
}

Result<void> Client::async_release(const Lock& lock, ReleaseCallback callback) {
  if (!callback) {
    return Unexpected(Error(ErrorCode::kInvalidArgument, "release callback is empty"));
  }
  return engine_->post_release(lock, std::move(callback));
}

std::future<Result<ReleaseReport>> Client::async_release(const Lock& lock) {
  auto promise = std::make_shared<std::promise<Result<ReleaseReport>>>();
  auto future = promise->get_future();
  auto posted = engine_->post_release(
      lock, [promise](Result<ReleaseReport> r) { promise->set_value(std::move(r)); });
  if (!posted) promise->set_value(Unexpected(posted.error()));
  return future;
}

const std::vector<std::string>& Client::nodes() const noexcept { return engine_->node_names(); }

std::size_t Client::quorum() const noexcept { return detail::quorum(engine_->node_names().size()); }

std::vector<bool> Client::connected() const { return engine_->connected(); }

}  // namespace redlock
