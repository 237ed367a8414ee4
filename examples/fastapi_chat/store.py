"""The chat store: one SQLite file shared by every replica on the host (WAL
mode, a busy timeout), the same schema as chatroomd's.

Writers take the write lock up front (BEGIN IMMEDIATE), so a transaction
never has to upgrade a read lock, which SQLite cannot wait for. Creating a
room records the creator's lock fence first (table ``fences``) and rolls back
if a fence at least as large is there already: a replica that lost its lock
without knowing (paused past its validity) cannot write after the next
holder did.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from typing import Callable, Dict, List, Optional

ROOM_CREATED_TEXT = "room created"
ROOM_CREATED_EVENT = "room_created"

SCHEMA = """
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
"""

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


class LockLostBeforeCommit(Exception):
    """The room's lock was lost (or a later holder wrote first): nothing was
    written."""


BUSY_TIMEOUT_S = 10.0


def _set_wal(db: sqlite3.Connection) -> None:
    """Puts the file in WAL mode, which then stays with the file.

    Switching a new file to WAL needs its exclusive lock. When replicas open
    the file at once, SQLite answers SQLITE_BUSY at once instead of calling
    the busy handler (waiting there could deadlock two connections that each
    hold a read lock), so the switch is retried here, within the same bound
    as any other wait for the file."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as e:
            code = getattr(e, "sqlite_errorcode", None)  # Python 3.11 and later
            busy = (code & 0xFF == sqlite3.SQLITE_BUSY if code is not None
                    else str(e) == "database is locked")
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0.005, 0.02))
    if mode.lower() != "wal":
        raise sqlite3.OperationalError(f"the store cannot use WAL mode (journal_mode is {mode})")


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        # Idempotent, and safe when several replicas start at once: one
        # transaction that takes the write lock up front, waiting up to the
        # busy timeout.
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _db(self) -> sqlite3.Connection:
        """One connection per thread (FastAPI runs blocking calls on a pool)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.row_factory = sqlite3.Row
            _set_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    def ping(self) -> None:
        self._db().execute("SELECT 1").fetchone()

    def find_room(self, name: str) -> Optional[Dict]:
        row = self._db().execute(
            "SELECT id, name, created_at FROM rooms WHERE name = ?", (name,)).fetchone()
        return dict(row) if row is not None else None

    def create_room(self, name: str, resource: str, fence: int,
                    still_ours: Callable[[], bool]) -> Dict:
        """Creates the room, its first message and its outbox event in one
        transaction, committed only if the lock is still ours. Raises
        sqlite3.IntegrityError if the room exists (UNIQUE), and
        LockLostBeforeCommit."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            if fence:
                changed = db.execute(
                    "INSERT INTO fences (resource, fence) VALUES (?, ?) ON CONFLICT (resource) "
                    "DO UPDATE SET fence = excluded.fence WHERE excluded.fence > fences.fence",
                    (resource, fence)).rowcount
                if changed == 0:
                    raise LockLostBeforeCommit(
                        f"fence {fence} of {resource!r} is not above the last one recorded")
            row = db.execute(f"INSERT INTO rooms (name, created_at) VALUES (?, {NOW}) "
                             "RETURNING id, name, created_at", (name,)).fetchone()
            room = dict(row)
            db.execute("INSERT INTO messages (room_id, kind, author, text, created_at) "
                       f"VALUES (?, 'system', 'chat', ?, {NOW})", (room["id"], ROOM_CREATED_TEXT))
            db.execute(f"INSERT INTO events (kind, room_name, payload, created_at) VALUES (?, ?, ?, {NOW})",
                       (ROOM_CREATED_EVENT, name, json.dumps({"room_id": room["id"], "fence": fence})))
            # Asked just before COMMIT; the fence covers a pause between the
            # two.
            if not still_ours():
                raise LockLostBeforeCommit("the lock was lost before COMMIT; rolled back")
            db.execute("COMMIT")
            return room
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def append_message(self, room_id: int, author: str, text: str) -> Dict:
        row = self._db().execute(
            "INSERT INTO messages (room_id, kind, author, text, created_at) "
            f"VALUES (?, 'user', ?, ?, {NOW}) RETURNING id, kind, author, text, created_at",
            (room_id, author, text)).fetchone()
        return dict(row)

    def messages(self, room_id: int, limit: int) -> List[Dict]:
        rows = self._db().execute(
            "SELECT id, kind, author, text, created_at FROM messages WHERE room_id = ? "
            "ORDER BY id LIMIT ?", (room_id, limit)).fetchall()
        return [dict(r) for r in rows]

    def audit(self, name: str) -> Dict[str, int]:
        """How many rooms, "room created" messages and events exist for
        `name` (each must be 1 after a race)."""
        row = self._db().execute(
            "SELECT (SELECT count(*) FROM rooms WHERE name = ?1), "
            "(SELECT count(*) FROM messages m JOIN rooms r ON r.id = m.room_id "
            " WHERE r.name = ?1 AND m.kind = 'system' AND m.text = ?2), "
            "(SELECT count(*) FROM events WHERE room_name = ?1 AND kind = ?3)",
            (name, ROOM_CREATED_TEXT, ROOM_CREATED_EVENT)).fetchone()
        return {"rooms": row[0], "created_messages": row[1], "events": row[2]}
