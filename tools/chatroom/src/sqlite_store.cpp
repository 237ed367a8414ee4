// The SQLite store: one database file that every replica on the host opens.
// WAL mode lets readers run beside the one writer; writers take the write
// lock up front (BEGIN IMMEDIATE), so that a transaction never has to upgrade
// a read lock, which SQLite cannot wait for. busy_timeout makes a writer wait
// for another replica's transaction instead of failing at once.
#include <sqlite3.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "connection_pool.hpp"
#include "store.hpp"

namespace redlock::chatroom {
namespace {

constexpr int kBusyTimeoutMs = 10000;

constexpr const char* kNow = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS rooms (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  room_id INTEGER NOT NULL REFERENCES rooms(id),
  kind TEXT NOT NULL CHECK (kind IN ('system', 'user')),
  author TEXT NOT NULL,
  text TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages(room_id, id);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  room_name TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_room ON events(room_name, kind);
CREATE TABLE IF NOT EXISTS fences (
  resource TEXT PRIMARY KEY,
  fence INTEGER NOT NULL
);
)sql";

struct DbDeleter {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbDeleter>;

// A pooled connection.
struct Connection {
  Db db;
  [[nodiscard]] sqlite3* get() const noexcept { return db.get(); }
};

StoreError error_of(sqlite3* db, std::string_view what) {
  const int code = sqlite3_extended_errcode(db);
  StoreError e;
  e.message = std::string(what) + ": " + sqlite3_errmsg(db);
  if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
    e.kind = StoreErrorKind::kUniqueViolation;
  } else if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED ||
             (code & 0xff) == SQLITE_CANTOPEN) {
    e.kind = StoreErrorKind::kUnavailable;
  } else {
    e.kind = StoreErrorKind::kFailed;
  }
  return e;
}

// One prepared statement; finalized on destruction.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  [[nodiscard]] bool ok() const { return rc_ == SQLITE_OK; }
  void bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  [[nodiscard]] std::int64_t integer(int column) const {
    return sqlite3_column_int64(stmt_, column);
  }
  [[nodiscard]] std::string text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    const int n = sqlite3_column_bytes(stmt_, column);
    return p == nullptr
               ? std::string()
               : std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

StoreResult<void> exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    auto e = error_of(db, sql);
    if (err != nullptr) sqlite3_free(err);
    return tl::make_unexpected(std::move(e));
  }
  return {};
}

// Rolls back on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (open_) (void)exec(db_, "ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  StoreResult<void> begin_immediate() {
    auto r = exec(db_, "BEGIN IMMEDIATE");
    open_ = r.has_value();
    return r;
  }
  StoreResult<void> commit() {
    auto r = exec(db_, "COMMIT");
    if (r) open_ = false;
    return r;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

// Puts the file in WAL mode, which then stays with the file. Switching a new
// file needs its exclusive lock, and when replicas open it at once SQLite
// answers SQLITE_BUSY at once instead of calling the busy handler (waiting
// there could deadlock two connections that each hold a read lock). So the
// switch is retried here, within the busy timeout that bounds every other
// wait for the file.
StoreResult<void> set_wal(sqlite3* db) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  std::minstd_rand jitter(std::random_device{}());
  for (;;) {
    Statement pragma(db, "PRAGMA journal_mode=WAL");
    const int rc = pragma.ok() ? pragma.step() : sqlite3_errcode(db);
    if (rc == SQLITE_ROW) {
      const std::string mode = pragma.text(0);
      if (mode == "wal") return {};
      return tl::make_unexpected(StoreError{
          StoreErrorKind::kFailed, "the store cannot use WAL mode (journal_mode is " + mode + ")"});
    }
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
      return tl::make_unexpected(error_of(db, "PRAGMA journal_mode=WAL"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + jitter() % 16));
  }
}

StoreResult<Db> open_connection(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open " + path + ": ";
    msg += raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return tl::make_unexpected(StoreError{StoreErrorKind::kUnavailable, msg});
  }
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  sqlite3_extended_result_codes(db.get(), 1);
  if (auto ok = set_wal(db.get()); !ok) return tl::make_unexpected(ok.error());
  for (const char* pragma : {"PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}) {
    if (auto ok = exec(db.get(), pragma); !ok) return tl::make_unexpected(ok.error());
  }
  return db;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, std::size_t pool_size)
      : path_(std::move(path)),
        pool_(pool_size, [this]() -> tl::expected<std::unique_ptr<Connection>, StoreError> {
          auto db = open_connection(path_);
          if (!db) return tl::make_unexpected(db.error());
          return std::make_unique<Connection>(Connection{std::move(*db)});
        }) {}

  StoreResult<void> create_schema() {
    auto db = pool_.borrow();
    if (!db) return tl::make_unexpected(db.error());
    Transaction tx((*db)->get());
    if (auto ok = tx.begin_immediate(); !ok) return ok;
    if (auto ok = exec((*db)->get(), kSchema); !ok) return ok;
    return tx.commit();
  }

  std::string_view kind() const noexcept override { return "sqlite"; }

  StoreResult<std::optional<Room>> find_room(std::string_view name) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    return find((*lease)->get(), name);
  }

  StoreResult<Room> create_room(std::string_view name, std::string_view resource,
                                std::uint64_t fence,
                                const std::function<bool()>& still_ours) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    sqlite3* db = (*lease)->get();
    Transaction tx(db);
    if (auto ok = tx.begin_immediate(); !ok) return tl::make_unexpected(ok.error());
    if (fence != 0) {
      Statement record(
          db,
          "INSERT INTO fences (resource, fence) VALUES (?1, ?2) ON CONFLICT (resource) "
          "DO UPDATE SET fence = excluded.fence WHERE excluded.fence > fences.fence");
      if (!record.ok()) return tl::make_unexpected(error_of(db, "prepare INSERT fences"));
      record.bind(1, resource);
      record.bind(2, static_cast<std::int64_t>(fence));
      if (record.step() != SQLITE_DONE) return tl::make_unexpected(error_of(db, "INSERT fences"));
      if (sqlite3_changes(db) == 0) return tl::make_unexpected(stale_fence(resource, fence));
    }
    Room room;
    {
      Statement insert(db, (std::string("INSERT INTO rooms (name, created_at) VALUES (?1, ") +
                            kNow + ") RETURNING id, created_at")
                               .c_str());
      if (!insert.ok()) return tl::make_unexpected(error_of(db, "prepare INSERT rooms"));
      insert.bind(1, name);
      if (insert.step() != SQLITE_ROW) return tl::make_unexpected(error_of(db, "INSERT rooms"));
      room.id = insert.integer(0);
      room.name = std::string(name);
      room.created_at = insert.text(1);
      if (insert.step() != SQLITE_DONE) return tl::make_unexpected(error_of(db, "INSERT rooms"));
    }
    {
      Statement message(db, (std::string("INSERT INTO messages (room_id, kind, author, text, "
                                         "created_at) VALUES (?1, 'system', 'chatroomd', ?2, ") +
                             kNow + ")")
                                .c_str());
      if (!message.ok()) return tl::make_unexpected(error_of(db, "prepare INSERT messages"));
      message.bind(1, room.id);
      message.bind(2, kRoomCreatedText);
      if (message.step() != SQLITE_DONE) {
        return tl::make_unexpected(error_of(db, "INSERT messages"));
      }
    }
    {
      Statement event(db, (std::string("INSERT INTO events (kind, room_name, payload, "
                                       "created_at) VALUES (?1, ?2, ?3, ") +
                           kNow + ")")
                              .c_str());
      if (!event.ok()) return tl::make_unexpected(error_of(db, "prepare INSERT events"));
      event.bind(1, kRoomCreatedEvent);
      event.bind(2, name);
      event.bind(3, "{\"room_id\":" + std::to_string(room.id) +
                        ",\"fence\":" + std::to_string(fence) + "}");
      if (event.step() != SQLITE_DONE) return tl::make_unexpected(error_of(db, "INSERT events"));
    }
    if (still_ours && !still_ours()) {
      return tl::make_unexpected(
          StoreError{StoreErrorKind::kAborted, "the lock was lost before COMMIT; rolled back"});
    }
    if (auto ok = tx.commit(); !ok) return tl::make_unexpected(ok.error());
    return room;
  }

  StoreResult<Message> append_message(const Room& room, std::string_view author,
                                      std::string_view text) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    sqlite3* db = (*lease)->get();
    Statement insert(db, (std::string("INSERT INTO messages (room_id, kind, author, text, "
                                      "created_at) VALUES (?1, 'user', ?2, ?3, ") +
                          kNow + ") RETURNING id, created_at")
                             .c_str());
    if (!insert.ok()) return tl::make_unexpected(error_of(db, "prepare INSERT messages"));
    insert.bind(1, room.id);
    insert.bind(2, author);
    insert.bind(3, text);
    if (insert.step() != SQLITE_ROW) return tl::make_unexpected(error_of(db, "INSERT messages"));
    Message m;
    m.id = insert.integer(0);
    m.created_at = insert.text(1);
    m.kind = "user";
    m.author = std::string(author);
    m.text = std::string(text);
    if (insert.step() != SQLITE_DONE) return tl::make_unexpected(error_of(db, "INSERT messages"));
    return m;
  }

  StoreResult<std::vector<Message>> messages(const Room& room, std::size_t limit) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    sqlite3* db = (*lease)->get();
    Statement select(db,
                     "SELECT id, kind, author, text, created_at FROM messages WHERE room_id = ?1 "
                     "ORDER BY id LIMIT ?2");
    if (!select.ok()) return tl::make_unexpected(error_of(db, "prepare SELECT messages"));
    select.bind(1, room.id);
    select.bind(2, static_cast<std::int64_t>(limit));
    std::vector<Message> out;
    int rc = 0;
    while ((rc = select.step()) == SQLITE_ROW) {
      out.push_back(Message{select.integer(0), select.text(1), select.text(2), select.text(3),
                            select.text(4)});
    }
    if (rc != SQLITE_DONE) return tl::make_unexpected(error_of(db, "SELECT messages"));
    return out;
  }

  StoreResult<RoomAudit> audit(std::string_view name) override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    sqlite3* db = (*lease)->get();
    Statement select(db,
                     "SELECT (SELECT count(*) FROM rooms WHERE name = ?1), "
                     "(SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id "
                     "  WHERE r.name = ?1 AND m.kind = 'system' AND m.text = ?2), "
                     "(SELECT count(*) FROM events WHERE room_name = ?1 AND kind = ?3)");
    if (!select.ok()) return tl::make_unexpected(error_of(db, "prepare audit"));
    select.bind(1, name);
    select.bind(2, kRoomCreatedText);
    select.bind(3, kRoomCreatedEvent);
    if (select.step() != SQLITE_ROW) return tl::make_unexpected(error_of(db, "audit"));
    return RoomAudit{select.integer(0), select.integer(1), select.integer(2)};
  }

  StoreResult<void> ping() override {
    auto lease = pool_.borrow();
    if (!lease) return tl::make_unexpected(lease.error());
    return exec((*lease)->get(), "SELECT 1");
  }

 private:
  static StoreResult<std::optional<Room>> find(sqlite3* db, std::string_view name) {
    Statement select(db, "SELECT id, name, created_at FROM rooms WHERE name = ?1");
    if (!select.ok()) return tl::make_unexpected(error_of(db, "prepare SELECT rooms"));
    select.bind(1, name);
    const int rc = select.step();
    if (rc == SQLITE_DONE) return std::optional<Room>();
    if (rc != SQLITE_ROW) return tl::make_unexpected(error_of(db, "SELECT rooms"));
    return std::optional<Room>(Room{select.integer(0), select.text(1), select.text(2)});
  }

  std::string path_;
  ConnectionPool<Connection, StoreError> pool_;
};

}  // namespace

StoreResult<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                      std::size_t pool_size) {
  if (path.empty()) {
    return tl::make_unexpected(StoreError{StoreErrorKind::kFailed, "sqlite: empty path"});
  }
  auto store = std::make_unique<SqliteStore>(path, pool_size);
  // Replicas starting together all create the schema; BEGIN IMMEDIATE and the
  // busy timeout serialize them, and IF NOT EXISTS makes the later ones no-ops.
  if (auto ok = store->create_schema(); !ok) return tl::make_unexpected(ok.error());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace redlock::chatroom
