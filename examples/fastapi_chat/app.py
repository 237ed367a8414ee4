"""The chat service on FastAPI, its rooms created under a Redlock lock.

Several replicas (uvicorn processes) share one SQLite file and five lock
nodes. ``send_message`` (and ``POST /chatrooms``) creates the room it names
if needed, under the lock ``chatroom:<name>``: look the room up, and if it is
missing, take the lock, look again, create it, release. A request that cannot
get the lock tries again every CHAT_LOCK_RETRY seconds (0.5), looking at the
store between tries, and after CHAT_LOCK_WAIT seconds (5) answers 503
{"detail": "Lock wait timeout"}. Only the owner releases the lock.

Configuration (environment):
  REDLOCK_NODES          comma-separated host:port of the lock nodes (required)
  REDLOCK_RESTART_GRACE  seconds; 0 only for nodes just started empty
  CHAT_DB                the SQLite file (chat.db)
  CHAT_LOCK_TTL          the lock's ttl in seconds (10)
  CHAT_LOCK_WAIT         how long a request waits for the lock (5)
  CHAT_LOCK_RETRY        the pause between tries (0.5)
For the tests only: CHAT_CREATE_DELAY_MS (a pause before the insert, to
widen the race) and CHAT_UNSAFE_NO_LOCK=1 (create without the lock, to show
what the lock prevents: the race then reaches the store's UNIQUE constraint).

Run: uvicorn app:app --app-dir examples/fastapi_chat --port 8001 (README.md).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import unicodedata
from typing import Dict, Optional, Tuple

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

import redlock
from store import LockLostBeforeCommit, Store

NODES = [n.strip() for n in os.environ.get("REDLOCK_NODES", "").split(",") if n.strip()]
RESTART_GRACE = os.environ.get("REDLOCK_RESTART_GRACE")
DB_PATH = os.environ.get("CHAT_DB", "chat.db")
LOCK_TTL = float(os.environ.get("CHAT_LOCK_TTL", "10"))
LOCK_WAIT = float(os.environ.get("CHAT_LOCK_WAIT", "5"))
LOCK_RETRY = float(os.environ.get("CHAT_LOCK_RETRY", "0.5"))
CREATE_DELAY = float(os.environ.get("CHAT_CREATE_DELAY_MS", "0")) / 1000
UNSAFE_NO_LOCK = os.environ.get("CHAT_UNSAFE_NO_LOCK") == "1"

app = FastAPI(title="chat")
counters: Dict[str, int] = {"rooms_created": 0, "lock_wait_timeouts": 0, "unique_conflicts": 0}


class NewRoom(BaseModel):
    name: str


class NewMessage(BaseModel):
    author: str
    text: str


@app.on_event("startup")
def startup() -> None:
    if not NODES:
        raise RuntimeError("REDLOCK_NODES is not set (host:port,host:port,...)")
    grace = None if RESTART_GRACE is None else float(RESTART_GRACE)
    app.state.locks = redlock.Client(NODES, restart_grace=grace)
    app.state.store = Store(DB_PATH)


@app.on_event("shutdown")
def shutdown() -> None:
    app.state.locks.close()


def check_name(name: str) -> None:
    problem = None
    if not name:
        problem = "empty"
    elif len(name.encode("utf-8", "surrogatepass")) > 64:
        problem = "longer than 64 bytes"
    elif "/" in name or any(unicodedata.category(c) == "Cc" for c in name):
        problem = "contains '/' or a control character"
    if problem:
        raise HTTPException(400, f"Invalid room name: {problem}")


async def ensure_room(name: str) -> Tuple[Dict, bool]:
    """The room, and whether this request created it."""
    store: Store = app.state.store
    room = await run_in_threadpool(store.find_room, name)
    if room is not None:
        return room, False
    if UNSAFE_NO_LOCK:
        return await create_unlocked(store, name)
    # One try waits up to LOCK_RETRY (a round, a pause of LOCK_RETRY +/- half,
    # a last round); between tries the request looks at the store, so that
    # it answers as soon as another request has made the room, instead of
    # queueing for a lock it no longer needs. wake_on_release=False for the
    # same reason: once the room exists, waking every waiter at each release
    # would only make them fight for the lock. thread_local=False: the
    # store's thread (run_in_threadpool) reads the lock's state just before
    # COMMIT.
    lock = app.state.locks.async_lock(
        f"chatroom:{name}", timeout=LOCK_TTL, sleep=LOCK_RETRY, blocking_timeout=LOCK_RETRY,
        thread_local=False, wake_on_release=False)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            async with lock:
                # Another replica may have created it since the look-up.
                room = await run_in_threadpool(store.find_room, name)
                if room is not None:
                    return room, False
                if CREATE_DELAY:
                    await asyncio.sleep(CREATE_DELAY)
                room = await run_in_threadpool(
                    store.create_room, name, f"chatroom:{name}", lock.fence,
                    lambda: lock.remaining > 0 and not lock.lost)
                counters["rooms_created"] += 1
                return room, True
        except (redlock.LockWaitTimeout, redlock.HeldByAnother, redlock.NoQuorum,
                redlock.ValidityExhausted) as e:
            reason = e
        except (LockLostBeforeCommit, redlock.LockNotOwnedError):
            raise HTTPException(503, "Lock lost") from None
        except sqlite3.IntegrityError:
            return await found_after_conflict(store, name)
        room = await run_in_threadpool(store.find_room, name)
        if room is not None:
            return room, False
        if time.monotonic() >= deadline:
            if isinstance(reason, (redlock.LockWaitTimeout, redlock.HeldByAnother)):
                counters["lock_wait_timeouts"] += 1
                raise HTTPException(503, "Lock wait timeout")
            raise HTTPException(503, f"Lock unavailable: {reason}")


async def found_after_conflict(store: Store, name: str) -> Tuple[Dict, bool]:
    # Defence in depth: only without the lock can two creators get past the
    # look-up; the UNIQUE constraint keeps the room single.
    counters["unique_conflicts"] += 1
    room = await run_in_threadpool(store.find_room, name)
    if room is None:
        raise HTTPException(500, "the room vanished after a unique violation")
    return room, False


async def create_unlocked(store: Store, name: str) -> Tuple[Dict, bool]:
    if CREATE_DELAY:
        await asyncio.sleep(CREATE_DELAY)
    try:
        room = await run_in_threadpool(store.create_room, name, f"chatroom:{name}", 0, lambda: True)
    except sqlite3.IntegrityError:
        return await found_after_conflict(store, name)
    counters["rooms_created"] += 1
    return room, True


@app.post("/chatrooms")
async def create_room(body: NewRoom):
    check_name(body.name)
    room, created = await ensure_room(body.name)
    return JSONResponse(room, status_code=201 if created else 200)


@app.post("/chatrooms/{name}/messages", status_code=201)
async def send_message(name: str, body: NewMessage):
    check_name(name)
    if not body.author or not body.text:
        raise HTTPException(400, "author and text must not be empty")
    room, created = await ensure_room(name)
    message = await run_in_threadpool(app.state.store.append_message, room["id"], body.author,
                                      body.text)
    return {"room": room, "room_created": created, "message": message}


@app.get("/chatrooms/{name}")
async def get_room(name: str):
    room = await run_in_threadpool(app.state.store.find_room, name)
    if room is None:
        raise HTTPException(404, "Not found")
    return room


@app.get("/chatrooms/{name}/messages")
async def get_messages(name: str, limit: int = Query(100, ge=1, le=1000)):
    room = await run_in_threadpool(app.state.store.find_room, name)
    if room is None:
        raise HTTPException(404, "Not found")
    return await run_in_threadpool(app.state.store.messages, room["id"], limit)


@app.get("/healthz")
async def healthz():
    try:
        await run_in_threadpool(app.state.store.ping)
    except sqlite3.Error as e:
        raise HTTPException(503, f"store unavailable: {e}") from None
    return {"status": "ok", "lock_nodes_connected": sum(app.state.locks.connected())}


@app.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> str:
    own = "".join(f"chat_{k}_total {v}\n" for k, v in counters.items())
    return own + app.state.locks.prometheus()


@app.get("/audit/{name}")
async def audit(name: str) -> Optional[Dict[str, int]]:
    """For the race checker: rooms, "room created" messages and events."""
    return await run_in_threadpool(app.state.store.audit, name)
