// chat_service.hpp: ChatService, chatroomd's logic without HTTP: the create
// path under a Redlock lock, and the reads and writes around it.
//
// Threading: every method is thread-safe and blocking; HTTP worker threads
// call them concurrently. The Store, the Client and the ServiceMetrics must
// outlive the service.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "redlock/redlock.hpp"
#include "service_metrics.hpp"
#include "store.hpp"

namespace redlock::chatroom {

struct ServiceOptions {
  std::chrono::milliseconds lock_ttl{10000};
  // How long a create waits for the room's lock before answering 503.
  std::chrono::milliseconds lock_wait{5000};
  std::chrono::milliseconds retry_delay{100};
  std::chrono::milliseconds retry_jitter{50};
  // Pause between "look up" and "insert" on the create path: stands for the
  // work a real service does there, and makes the race observable without
  // the lock. 0 in production.
  std::chrono::milliseconds create_delay{0};
};

enum class Outcome {
  kCreated,          // this call created the room
  kExisted,          // the room was there already (or another request won the race)
  kLockTimeout,      // the lock was held by another (or contended) until lock_wait ran out
  kLockUnavailable,  // too few lock nodes answered or voted until lock_wait ran out
  kShuttingDown,     // the service is stopping: the wait was cancelled
  kLockLost,         // the lock was lost before COMMIT; nothing was written
  kFailed,           // the store or the lock engine failed; detail says how
};

struct RoomOutcome {
  Outcome outcome = Outcome::kFailed;
  std::optional<Room> room;  // set for kCreated and kExisted
  std::string detail;        // for the failures
};

class ChatService {
 public:
  // `client` null runs without the lock (chatroomd --unsafe-no-lock): only
  // the store's UNIQUE constraint then stands between racing creates.
  ChatService(Store& store, Client* client, ServiceOptions options, ServiceMetrics& metrics);

  // The room by that name, created if missing: look up; if missing, take
  // the lock "chatroom:{name}" (automatically extended), look up again, and
  // create the room, its first message and its outbox event in one
  // transaction; then release. While another holder has the lock it tries
  // again every retry_delay +/- retry_jitter, looking at the store in
  // between, until lock_wait has passed: kLockTimeout if the lock was busy,
  // kLockUnavailable if the lock nodes could not grant it (the last attempt
  // says which, tools::classify_lock_failure). When a majority of the lock
  // nodes does not vote (Client::quorum_available()), kLockUnavailable at
  // once, without waiting. The name must be valid (validation.hpp).
  [[nodiscard]] RoomOutcome ensure_room(const std::string& name);

  [[nodiscard]] StoreResult<std::optional<Room>> find_room(const std::string& name);
  [[nodiscard]] StoreResult<Message> append_message(const Room& room, const std::string& author,
                                                    const std::string& text);
  [[nodiscard]] StoreResult<std::vector<Message>> messages(const Room& room, std::size_t limit);
  [[nodiscard]] StoreResult<void> ping();
  // Whether a lock can be had now: a majority of the lock nodes votes (no
  // I/O). Always true without the lock.
  [[nodiscard]] bool lock_available() const;

  // Cancels every lock wait in progress and refuses new ones (kShuttingDown).
  void begin_shutdown();

  [[nodiscard]] bool uses_lock() const noexcept { return client_ != nullptr; }

 private:
  RoomOutcome create(const std::string& name, const LockGuard* guard);
  // retry_delay +/- retry_jitter, uniform.
  std::chrono::milliseconds retry_pause();
  // False if the shutdown began (at once, or during the pause).
  bool sleep_unless_stopped(std::chrono::milliseconds pause);

  Store& store_;
  Client* client_;
  ServiceOptions options_;
  ServiceMetrics& metrics_;
  std::stop_source shutdown_;
  std::mutex sleep_mutex_;
  std::condition_variable_any sleep_cv_;
};

}  // namespace redlock::chatroom
