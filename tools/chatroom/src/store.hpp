// store.hpp: Store, where chatroomd keeps its rooms, their messages and an
// outbox of events; SQLite (embedded, the default) and PostgreSQL behind one
// interface.
//
// Threading: every method is thread-safe; each call borrows a connection
// from the store's pool for its duration (at most pool_size at once, callers
// beyond that wait). Errors are values (StoreResult), never exceptions.
//
// Schema (both stores): rooms(id, name UNIQUE, created_at), messages(id,
// room_id, kind 'system'|'user', author, text, created_at), events(id, kind,
// room_name, payload, created_at), fences(resource PRIMARY KEY, fence): the
// largest fencing token each lock resource has written with. The UNIQUE name is the last line of
// defence when two requests race to create one room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace redlock::chatroom {

struct Room {
  std::int64_t id = 0;
  std::string name;
  std::string created_at;  // UTC, ISO 8601 with milliseconds
};

struct Message {
  std::int64_t id = 0;
  std::string kind;  // "system" or "user"
  std::string author;
  std::string text;
  std::string created_at;
};

// What the store holds for one room name: a healthy room has one of each.
struct RoomAudit {
  std::int64_t rooms = 0;
  std::int64_t created_messages = 0;  // system messages "room created"
  std::int64_t created_events = 0;    // outbox events "room_created"
};

enum class StoreErrorKind {
  kUniqueViolation,  // create_room: the name exists already
  kAborted,          // create_room: still_ours() said no; rolled back
  kStaleFence,       // create_room: a larger fence was recorded already; rolled back
  kUnavailable,      // the database could not be reached or is busy
  kFailed,           // anything else the database refused
};

struct StoreError {
  StoreErrorKind kind = StoreErrorKind::kFailed;
  std::string message;
};

template <typename T>
using StoreResult = tl::expected<T, StoreError>;

// The kStaleFence error of create_room.
[[nodiscard]] inline StoreError stale_fence(std::string_view resource, std::uint64_t fence) {
  return StoreError{StoreErrorKind::kStaleFence, "fence " + std::to_string(fence) +
                                                     " is not above the largest one recorded for " +
                                                     std::string(resource) +
                                                     ": the lock was lost; rolled back"};
}

// The text of the first message of every room, and the outbox event kind.
inline constexpr std::string_view kRoomCreatedText = "room created";
inline constexpr std::string_view kRoomCreatedEvent = "room_created";

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgresql".
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;

  // The room, or nullopt if there is none by that name.
  [[nodiscard]] virtual StoreResult<std::optional<Room>> find_room(std::string_view name) = 0;

  // In one transaction: the room, its first message (system, "room
  // created") and an outbox event "room_created". `fence` (the lock's
  // fencing token; 0: none) is recorded for `resource` first: a fence not
  // above the largest one recorded for it rolls everything back
  // (kStaleFence), so a creator that lost its lock without knowing cannot
  // write. `still_ours` is asked just before COMMIT; false rolls everything
  // back (kAborted). Errors: kUniqueViolation when a room by that name exists
  // (nothing written).
  [[nodiscard]] virtual StoreResult<Room> create_room(std::string_view name,
                                                      std::string_view resource,
                                                      std::uint64_t fence,
                                                      const std::function<bool()>& still_ours) = 0;

  [[nodiscard]] virtual StoreResult<Message> append_message(const Room& room,
                                                            std::string_view author,
                                                            std::string_view text) = 0;

  // The room's messages, oldest first, at most `limit`.
  [[nodiscard]] virtual StoreResult<std::vector<Message>> messages(const Room& room,
                                                                   std::size_t limit) = 0;

  // Counts for one name, for the race checker (rooms may exceed 1 only in a
  // store without the UNIQUE constraint).
  [[nodiscard]] virtual StoreResult<RoomAudit> audit(std::string_view name) = 0;

  // One round trip to the database.
  [[nodiscard]] virtual StoreResult<void> ping() = 0;
};

// Opens "sqlite:PATH" (created if missing; WAL mode, busy timeout) or
// "postgresql://user@host:port/db" ("postgres://" too), creates the schema if
// it is missing, and keeps up to `pool_size` connections. Errors: a URL of
// another kind, or the database refused the first connection or the schema.
[[nodiscard]] StoreResult<std::unique_ptr<Store>> open_store(const std::string& url,
                                                             std::size_t pool_size);

[[nodiscard]] StoreResult<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                                    std::size_t pool_size);
[[nodiscard]] StoreResult<std::unique_ptr<Store>> open_postgres_store(const std::string& url,
                                                                      std::size_t pool_size);

}  // namespace redlock::chatroom
