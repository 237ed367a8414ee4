"""The FastAPI chat example (examples/fastapi_chat) as three uvicorn
replicas over five real lock nodes and one SQLite file: 100 concurrent
creates of one room give exactly one 201 and one room, with all nodes up and
with 2 of 5 paused; a request that cannot get the lock answers 503
{"detail": "Lock wait timeout"}; without the lock the race shows."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

import redlock
from cluster import scaled

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                       "fastapi_chat")
sys.path.insert(0, EXAMPLE)
import race  # noqa: E402

ENV = {"REDLOCK_RESTART_GRACE": "0"}  # the nodes were just started empty


def metric(urls, name):
    total = 0
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        m = re.search(rf"^{name} (\d+)$", text, re.M)
        total += int(m.group(1))
    return total


@pytest.fixture(scope="module")
def services(cluster, tmp_path_factory):
    """Started together, as they take a while to import FastAPI: three
    replicas sharing one store; one with a short lock wait (the 503 test);
    one creating without the lock (the control)."""
    root = tmp_path_factory.mktemp("chat")
    groups = {
        "replicas": [race.spawn(cluster.nodes, str(root / "chat.db"), ENV) for _ in range(3)],
        "short_wait": [race.spawn(cluster.nodes, str(root / "short.db"),
                                  dict(ENV, CHAT_LOCK_WAIT="0.5", CHAT_LOCK_RETRY="0.1"))],
        "unlocked": [race.spawn(cluster.nodes, str(root / "unlocked.db"),
                                dict(ENV, CHAT_UNSAFE_NO_LOCK="1", CHAT_CREATE_DELAY_MS="20"))],
    }
    procs = [proc for group in groups.values() for proc, _ in group]
    try:
        for proc, url in (p for group in groups.values() for p in group):
            race.wait_http(url, proc, scaled(60))
        yield {name: [url for _, url in group] for name, group in groups.items()}
    finally:
        race.stop(procs)


@pytest.fixture(scope="module")
def replicas(services):
    return services["replicas"]


def run_race(urls, name, requests=100):
    statuses, elapsed = asyncio.run(race.race(urls, name, requests, timeout=scaled(30)))
    store = race.audit(urls[0], name)
    print(race.report(name, statuses, store, elapsed, requests))
    return statuses, store


def test_race_one_room(replicas, cluster):
    statuses, store = run_race(replicas, "general")
    assert statuses == {201: 1, 200: 99}, statuses
    assert store == {"rooms": 1, "created_messages": 1, "events": 1}
    assert metric(replicas, "chat_unique_conflicts_total") == 0
    cluster.wait_no_lock_keys(b"general")


def test_race_with_two_of_five_nodes_paused(replicas, cluster):
    cluster.pause(0)
    cluster.pause(3)
    try:
        statuses, store = run_race(replicas, "paused")
    finally:
        cluster.resume_all()
    assert statuses == {201: 1, 200: 99}, statuses
    assert store == {"rooms": 1, "created_messages": 1, "events": 1}
    assert metric(replicas, "chat_unique_conflicts_total") == 0
    # What the paused nodes were sent while stopped (the grants' SETs and
    # the releases after them) lands now, in order: nothing stays behind.
    cluster.wait_no_lock_keys(b"paused", timeout=5)


def test_send_message_creates_the_room_once(replicas):
    first = httpx.post(f"{replicas[0]}/chatrooms/lobby/messages",
                       json={"author": "ann", "text": "hi"}, timeout=10)
    assert first.status_code == 201 and first.json()["room_created"] is True
    second = httpx.post(f"{replicas[1]}/chatrooms/lobby/messages",
                        json={"author": "bob", "text": "hello"}, timeout=10)
    assert second.status_code == 201 and second.json()["room_created"] is False
    messages = httpx.get(f"{replicas[2]}/chatrooms/lobby/messages", timeout=10).json()
    assert [m["kind"] for m in messages] == ["system", "user", "user"]
    assert httpx.get(f"{replicas[0]}/chatrooms/nowhere", timeout=10).status_code == 404
    assert httpx.post(f"{replicas[0]}/chatrooms", json={"name": "a/b"}, timeout=10).status_code == 400


def test_lock_wait_timeout_is_503(cluster, services):
    urls = services["short_wait"]
    with redlock.Client(cluster.nodes, restart_grace=0) as client:
        with client.lock("chatroom:busy", timeout=10):
            start = time.monotonic()
            r = httpx.post(f"{urls[0]}/chatrooms", json={"name": "busy"}, timeout=10)
            elapsed = time.monotonic() - start
            assert r.status_code == 503
            assert r.json() == {"detail": "Lock wait timeout"}
            assert 0.4 <= elapsed < scaled(3), elapsed
        r = httpx.post(f"{urls[0]}/chatrooms", json={"name": "busy"}, timeout=10)
        assert r.status_code == 201


def test_without_the_lock_the_race_shows(services):
    # The control: the same race with the lock off reaches the store's
    # UNIQUE constraint (which still keeps the room single). One process
    # is enough: its requests interleave at every await.
    urls = services["unlocked"]
    statuses, store = run_race(urls, "unlocked")
    assert store["rooms"] == 1
    assert metric(urls, "chat_unique_conflicts_total") > 0



OPEN_STORE = """
import sys
sys.path.insert(0, sys.argv[1])
from store import Store
sys.stdin.read(1)  # the start signal: all open the file at once
Store(sys.argv[2]).ping()
"""


def test_replicas_opening_a_new_store_at_once_all_start(tmp_path):
    # Replicas started together all open a store file that does not exist
    # yet: switching it to WAL mode is contended, and each must wait its turn
    # instead of exiting with "database is locked". Several rounds, as the
    # collision depends on timing.
    for round_ in range(20):
        path = tmp_path / f"round{round_}.db"
        procs = [subprocess.Popen([sys.executable, "-c", OPEN_STORE, EXAMPLE, str(path)],
                                  stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        try:
            time.sleep(0.3)  # the interpreters start and wait for the signal
            for proc in procs:
                proc.stdin.write("g")
                proc.stdin.flush()
            for proc in procs:
                _, err = proc.communicate(timeout=scaled(30))
                assert proc.returncode == 0, f"round {round_}: {err}"
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
