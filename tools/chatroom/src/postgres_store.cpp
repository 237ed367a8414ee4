// The PostgreSQL store, over libpq's blocking API: one connection per pooled
// slot, parameters always sent separately from the SQL (PQexecParams).
#include <libpq-fe.h>

#include <utility>

#include "connection_pool.hpp"
#include "store.hpp"

namespace redlock::chatroom {
namespace {

// Replicas starting together serialize their schema creation on this
// advisory lock: concurrent CREATE TABLE IF NOT EXISTS can still collide in
// PostgreSQL's catalogs.
constexpr const char* kSchemaLockKey = "7305188214";

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS rooms (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS messages (
  id BIGSERIAL PRIMARY KEY,
  room_id BIGINT NOT NULL REFERENCES rooms(id),
  kind TEXT NOT NULL CHECK (kind IN ('system', 'user')),
  author TEXT NOT NULL,
  text TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages(room_id, id);
CREATE TABLE IF NOT EXISTS events (
  id BIGSERIAL PRIMARY KEY,
  kind TEXT NOT NULL,
  room_name TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_by_room ON events(room_name, kind);
CREATE TABLE IF NOT EXISTS fences (
  resource TEXT PRIMARY KEY,
  fence BIGINT NOT NULL
);
)sql";

#define CHATROOM_UTC_TEXT(column) \
  "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

struct Connection {
  std::unique_ptr<PGconn, ConnDeleter> conn;
  [[nodiscard]] PGconn* get() const noexcept { return conn.get(); }
};

using Pool = ConnectionPool<Connection, StoreError>;

std::string trimmed(const char* text) {
  std::string s = text != nullptr ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The outcome of one statement: its result, or an error classified by
// SQLSTATE (23505: unique violation) and connection state.
tl::expected<ResultPtr, StoreError> run(Pool::Lease& lease, const char* sql,
                                        const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  ResultPtr result(PQexecParams(lease->get(), sql, static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, 0));
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  StoreError e;
  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  e.message = trimmed(result ? PQresultErrorMessage(result.get()) : PQerrorMessage(lease->get()));
  if (PQstatus(lease->get()) != CONNECTION_OK) {
    lease.broken();
    e.kind = StoreErrorKind::kUnavailable;
  } else if (state != nullptr && std::string_view(state) == "23505") {
    e.kind = StoreErrorKind::kUniqueViolation;
  } else {
    e.kind = StoreErrorKind::kFailed;
  }
  return tl::make_unexpected(std::move(e));
}

std::int64_t integer(const PGresult* r, int row, int column) {
  return std::stoll(PQgetvalue(r, row, column));
}

std::string text(const PGresult* r, int row, int column) {
  return std::string(PQgetvalue(r, row, column),
                     static_cast<std::size_t>(PQgetlength(r, row, column)));
}

// Rolls back on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(Pool::Lease& lease) : lease_(lease) {}
  ~Transaction() {
    if (open_) (void)run(lease_, "ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  StoreResult<void> begin() {
    auto r = run(lease_, "BEGIN");
    if (!r) return tl::make_unexpected(r.error());
    open_ = true;
    return {};
  }
  StoreResult<void> commit() {
    auto r = run(lease_, "COMMIT");
    open_ = false;  // a failed COMMIT has rolled back already
    if (!r) return tl::make_unexpected(r.error());
    return {};
  }

 private:
  Pool::Lease& lease_;
  bool open_ = false;
};

class PostgresStore final : public Store {
 public:
  PostgresStore(std::string url, std::size_t pool_size)
      : url_(std::move(url)),
        pool_(pool_size, [this]() -> tl::expected<std::unique_ptr<Connection>, StoreError> {
          std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(url_.c_str()));
          if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
            return tl::make_unexpected(
                StoreError{StoreErrorKind::kUnavailable,
                           "cannot connect to PostgreSQL: " +
                               trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory")});
          }
          // NOTICEs ("relation already exists, skipping") are not errors:
          // keep them out of the log.
          PQsetNoticeProcessor(
              conn.get(), [](void*, const char*) {}, nullptr);
          return std::make_unique<Connection>(Connection{std::move(conn)});
        }) {}

  StoreResult<void> create_schema() {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    Transaction tx(*lease);
    if (auto ok = tx.begin(); !ok) return ok;
    if (auto r = run(*lease, "SELECT pg_advisory_xact_lock($1::bigint)", {kSchemaLockKey}); !r) {
      return tl::make_unexpected(r.error());
    }
    // Several statements: the simple query protocol (PQexec), no parameters.
    ResultPtr result(PQexec((*lease)->get(), kSchema));
    if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      return tl::make_unexpected(
          StoreError{StoreErrorKind::kFailed,
                     "creating the schema: " + trimmed(result ? PQresultErrorMessage(result.get())
                                                              : PQerrorMessage((*lease)->get()))});
    }
    return tx.commit();
  }

  std::string_view kind() const noexcept override { return "postgresql"; }

  StoreResult<std::optional<Room>> find_room(std::string_view name) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    auto r = run(*lease,
                 "SELECT id, name, " CHATROOM_UTC_TEXT("created_at") " FROM rooms WHERE name = $1",
                 {std::string(name)});
    if (!r) return tl::make_unexpected(r.error());
    if (PQntuples(r->get()) == 0) return std::optional<Room>();
    return std::optional<Room>(
        Room{integer(r->get(), 0, 0), text(r->get(), 0, 1), text(r->get(), 0, 2)});
  }

  StoreResult<Room> create_room(std::string_view name, std::string_view resource,
                                std::uint64_t fence,
                                const std::function<bool()>& still_ours) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    Transaction tx(*lease);
    if (auto ok = tx.begin(); !ok) return tl::make_unexpected(ok.error());
    if (fence != 0) {
      // The row lock this takes orders concurrent creators by their fences.
      auto recorded = run(*lease,
                          "INSERT INTO fences (resource, fence) VALUES ($1, $2::bigint) "
                          "ON CONFLICT (resource) DO UPDATE SET fence = excluded.fence "
                          "WHERE excluded.fence > fences.fence",
                          {std::string(resource), std::to_string(fence)});
      if (!recorded) return tl::make_unexpected(recorded.error());
      if (std::string_view(PQcmdTuples(recorded->get())) != "1") {
        return tl::make_unexpected(stale_fence(resource, fence));
      }
    }
    auto inserted =
        run(*lease,
            "INSERT INTO rooms (name) VALUES ($1) RETURNING id, " CHATROOM_UTC_TEXT("created_at"),
            {std::string(name)});
    if (!inserted) return tl::make_unexpected(inserted.error());
    Room room{integer(inserted->get(), 0, 0), std::string(name), text(inserted->get(), 0, 1)};
    const std::string id = std::to_string(room.id);
    if (auto r = run(*lease,
                     "INSERT INTO messages (room_id, kind, author, text) "
                     "VALUES ($1::bigint, 'system', 'chatroomd', $2)",
                     {id, std::string(kRoomCreatedText)});
        !r) {
      return tl::make_unexpected(r.error());
    }
    if (auto r = run(*lease, "INSERT INTO events (kind, room_name, payload) VALUES ($1, $2, $3)",
                     {std::string(kRoomCreatedEvent), std::string(name),
                      "{\"room_id\":" + id + ",\"fence\":" + std::to_string(fence) + "}"});
        !r) {
      return tl::make_unexpected(r.error());
    }
    if (still_ours && !still_ours()) {
      return tl::make_unexpected(
          StoreError{StoreErrorKind::kAborted, "the lock was lost before COMMIT; rolled back"});
    }
    if (auto ok = tx.commit(); !ok) return tl::make_unexpected(ok.error());
    return room;
  }

  StoreResult<Message> append_message(const Room& room, std::string_view author,
                                      std::string_view body) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    auto r = run(*lease,
                 "INSERT INTO messages (room_id, kind, author, text) VALUES ($1::bigint, 'user', "
                 "$2, $3) RETURNING id, " CHATROOM_UTC_TEXT("created_at"),
                 {std::to_string(room.id), std::string(author), std::string(body)});
    if (!r) return tl::make_unexpected(r.error());
    return Message{integer(r->get(), 0, 0), "user", std::string(author), std::string(body),
                   text(r->get(), 0, 1)};
  }

  StoreResult<std::vector<Message>> messages(const Room& room, std::size_t limit) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    auto r = run(*lease,
                 "SELECT id, kind, author, text, " CHATROOM_UTC_TEXT(
                     "created_at") " FROM messages WHERE room_id = $1::bigint ORDER BY id "
                                   "LIMIT $2::bigint",
                 {std::to_string(room.id), std::to_string(limit)});
    if (!r) return tl::make_unexpected(r.error());
    std::vector<Message> out;
    const int rows = PQntuples(r->get());
    for (int i = 0; i < rows; ++i) {
      out.push_back(Message{integer(r->get(), i, 0), text(r->get(), i, 1), text(r->get(), i, 2),
                            text(r->get(), i, 3), text(r->get(), i, 4)});
    }
    return out;
  }

  StoreResult<RoomAudit> audit(std::string_view name) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    auto r =
        run(*lease,
            "SELECT (SELECT count(*) FROM rooms WHERE name = $1), "
            "(SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id "
            "  WHERE r.name = $1 AND m.kind = 'system' AND m.text = $2), "
            "(SELECT count(*) FROM events WHERE room_name = $1 AND kind = $3)",
            {std::string(name), std::string(kRoomCreatedText), std::string(kRoomCreatedEvent)});
    if (!r) return tl::make_unexpected(r.error());
    return RoomAudit{integer(r->get(), 0, 0), integer(r->get(), 0, 1), integer(r->get(), 0, 2)};
  }

  StoreResult<void> ping() override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    if (auto r = run(*lease, "SELECT 1"); !r) return tl::make_unexpected(r.error());
    return {};
  }

 private:
  std::string url_;
  Pool pool_;
};

}  // namespace

StoreResult<std::unique_ptr<Store>> open_postgres_store(const std::string& url,
                                                        std::size_t pool_size) {
  auto store = std::make_unique<PostgresStore>(url, pool_size);
  if (auto ok = store->create_schema(); !ok) return tl::make_unexpected(ok.error());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace redlock::chatroom
