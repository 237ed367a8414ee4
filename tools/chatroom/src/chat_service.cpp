#include "chat_service.hpp"

#include <algorithm>
#include <random>
#include <thread>
#include <utility>

#include "redlock/tools/lock_failure.hpp"

namespace redlock::chatroom {
namespace {

RoomOutcome failed(const StoreError& error) {
  return RoomOutcome{Outcome::kFailed, std::nullopt, error.message};
}

}  // namespace

ChatService::ChatService(Store& store, Client* client, ServiceOptions options,
                         ServiceMetrics& metrics)
    : store_(store), client_(client), options_(options), metrics_(metrics) {}

RoomOutcome ChatService::ensure_room(const std::string& name) {
  // Most calls find the room: they never touch the lock.
  auto found = store_.find_room(name);
  if (!found) return failed(found.error());
  if (*found) return RoomOutcome{Outcome::kExisted, std::move(*found), ""};
  if (client_ == nullptr) return create(name, nullptr);

  // One round per try, with a look at the store between tries: a request
  // that waits while another one creates the room answers 200 as soon as the
  // room is there, instead of queueing for the lock only to find it.
  const auto deadline = std::chrono::steady_clock::now() + options_.lock_wait;
  // Too few lock nodes vote now: answer at once rather than hold a worker
  // thread for the whole wait (the readiness check says the same).
  if (!client_->quorum_available()) {
    metrics_.lock_unavailable();
    return RoomOutcome{Outcome::kLockUnavailable, std::nullopt,
                       "too few lock nodes vote now (see /readyz)"};
  }
  AcquireOptions how;
  how.stop = shutdown_.get_token();
  // Kept alive by the engine if the create ever takes longer than the ttl;
  // the default bound on extensions applies.
  const AutoExtendOptions keep;
  for (;;) {
    auto guard = client_->acquire_guard("chatroom:" + name, options_.lock_ttl, how, keep);
    if (guard) {
      // Another replica may have created the room since the look-up.
      found = store_.find_room(name);
      if (!found) return failed(found.error());
      if (*found) return RoomOutcome{Outcome::kExisted, std::move(*found), ""};
      // The guard releases the lock as it goes out of scope (asynchronously:
      // the response does not wait for the slowest node).
      return create(name, &*guard);
    }
    switch (guard.error().code()) {
      case ErrorCode::kHeldByAnother:
      case ErrorCode::kNoQuorum:
      case ErrorCode::kValidityExhausted:
      case ErrorCode::kLockWaitTimeout:
        break;
      case ErrorCode::kCancelled:
      case ErrorCode::kShuttingDown:
        return RoomOutcome{Outcome::kShuttingDown, std::nullopt, to_string(guard.error())};
      default:
        return RoomOutcome{Outcome::kFailed, std::nullopt, to_string(guard.error())};
    }
    found = store_.find_room(name);
    if (!found) return failed(found.error());
    if (*found) return RoomOutcome{Outcome::kExisted, std::move(*found), ""};
    if (tools::classify_lock_failure(guard.error(), client_->quorum()) !=
            tools::LockFailure::kBusy &&
        !client_->quorum_available()) {
      metrics_.lock_unavailable();
      return RoomOutcome{Outcome::kLockUnavailable, std::nullopt, to_string(guard.error())};
    }
    const auto pause = retry_pause();
    if (std::chrono::steady_clock::now() + pause >= deadline) {
      if (tools::classify_lock_failure(guard.error(), client_->quorum()) ==
          tools::LockFailure::kBusy) {
        metrics_.lock_wait_timeout();
        return RoomOutcome{Outcome::kLockTimeout, std::nullopt, to_string(guard.error())};
      }
      metrics_.lock_unavailable();
      return RoomOutcome{Outcome::kLockUnavailable, std::nullopt, to_string(guard.error())};
    }
    if (!sleep_unless_stopped(pause)) {
      return RoomOutcome{Outcome::kShuttingDown, std::nullopt, "shutting down"};
    }
  }
}

std::chrono::milliseconds ChatService::retry_pause() {
  thread_local std::mt19937 random(std::random_device{}());
  const auto jitter = options_.retry_jitter.count();
  std::uniform_int_distribution<long long> spread(-jitter, jitter);
  return std::max(std::chrono::milliseconds(1),
                  options_.retry_delay + std::chrono::milliseconds(spread(random)));
}

bool ChatService::sleep_unless_stopped(std::chrono::milliseconds pause) {
  std::unique_lock lock(sleep_mutex_);
  const auto stop = shutdown_.get_token();
  // Nothing notifies the variable: only the time or the stop ends the wait.
  (void)sleep_cv_.wait_for(lock, stop, pause, [] { return false; });
  return !stop.stop_requested();
}

RoomOutcome ChatService::create(const std::string& name, const LockGuard* guard) {
  if (options_.create_delay.count() > 0) std::this_thread::sleep_for(options_.create_delay);
  // Asked just before COMMIT: a lock lost or expired by then may have a new
  // holder, so nothing is written. That narrows the window but cannot close
  // it (a pause between this check and the COMMIT); the lock's fence closes
  // it: the store refuses a fence below one it has already recorded for the
  // room's lock.
  const auto still_ours = [guard] {
    return guard == nullptr || (!guard->lost() && !guard->lock().expired());
  };
  const std::uint64_t fence = guard == nullptr ? 0 : guard->lock().fence();
  auto created = store_.create_room(name, "chatroom:" + name, fence, still_ours);
  if (created) {
    metrics_.room_created();
    return RoomOutcome{Outcome::kCreated, std::move(*created), ""};
  }
  switch (created.error().kind) {
    case StoreErrorKind::kUniqueViolation: {
      // Defence in depth: two creators got past the look-up (never with the
      // lock). The store kept one room; this request reports it as existing.
      metrics_.unique_conflict();
      auto found = store_.find_room(name);
      if (!found) return failed(found.error());
      if (*found) return RoomOutcome{Outcome::kExisted, std::move(*found), ""};
      return RoomOutcome{Outcome::kFailed, std::nullopt,
                         "the room vanished after a unique violation"};
    }
    case StoreErrorKind::kAborted:
    case StoreErrorKind::kStaleFence:
      metrics_.lock_lost_before_commit();
      return RoomOutcome{Outcome::kLockLost, std::nullopt, created.error().message};
    case StoreErrorKind::kUnavailable:
    case StoreErrorKind::kFailed:
      break;
  }
  return failed(created.error());
}

StoreResult<std::optional<Room>> ChatService::find_room(const std::string& name) {
  return store_.find_room(name);
}

StoreResult<Message> ChatService::append_message(const Room& room, const std::string& author,
                                                 const std::string& text) {
  return store_.append_message(room, author, text);
}

StoreResult<std::vector<Message>> ChatService::messages(const Room& room, std::size_t limit) {
  return store_.messages(room, limit);
}

StoreResult<void> ChatService::ping() { return store_.ping(); }

bool ChatService::lock_available() const {
  return client_ == nullptr || client_->quorum_available();
}

void ChatService::begin_shutdown() { shutdown_.request_stop(); }

}  // namespace redlock::chatroom
