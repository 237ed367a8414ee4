"""Lifetimes: a lock outliving its client, a client closed while a thread
waits, clients and locks dropped without closing, interpreter exit with
locks held and threads waiting, fork(). None may crash or hang."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import redlock
from cluster import scaled


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_lock_outlives_the_client_variable(nodes, name):
    lock = redlock.Client(nodes, restart_grace=0).lock(name)
    gc.collect()
    assert lock.acquire()  # the lock keeps its client alive
    lock.release()
    lock.client.close()


def test_closed_client(nodes, cluster, name):
    client = redlock.Client(nodes, restart_grace=0)
    lock = client.lock(name, timeout=1)
    assert lock.acquire()
    client.close()
    client.close()  # idempotent
    assert client.closed
    with pytest.raises(redlock.ClientClosed, match="closed") as info:
        lock.release()
    assert isinstance(info.value, ValueError)  # like I/O on a closed file
    with pytest.raises(redlock.ClientClosed):
        client.lock(name).acquire()
    with pytest.raises(redlock.ClientClosed):
        client.metrics()
    assert client.nodes == nodes  # still known
    # Not released by the close: it expires with its ttl.
    cluster.wait_no_lock_keys(name.encode(), timeout=3)


def test_close_while_a_thread_waits(nodes, name):
    holder = redlock.Client(nodes, restart_grace=0)
    client = redlock.Client(nodes, restart_grace=0)
    held = holder.lock(name)
    assert held.acquire()
    outcome = {}

    def wait():
        try:
            outcome["result"] = client.lock(name, sleep=0.05).acquire()  # for ever
        except redlock.RedlockError as e:
            outcome["error"] = e

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)
    start = time.monotonic()
    client.close()
    t.join(scaled(5))
    assert not t.is_alive()
    assert time.monotonic() - start < scaled(2)
    assert isinstance(outcome.get("error"), redlock.ClientClosed), outcome
    held.release()
    holder.close()


def test_dropped_client_stops_its_threads(nodes, name):
    gc.collect()
    before = _threads()
    client = redlock.Client(nodes, restart_grace=0)
    with client.lock(name):
        pass
    assert _threads() >= before + 2  # the engine's loop and the dispatcher
    del client
    gc.collect()
    deadline = time.monotonic() + scaled(5)
    while _threads() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _threads() <= before


def _run(script: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=scaled(timeout), env=dict(os.environ))


def test_interpreter_exit_with_locks_held_and_waiters(nodes, cluster, name):
    # Exits with: a plain lock and an auto-extended lock held, a daemon thread
    # blocked in acquire, an asyncio waiter left pending, an open client.
    done = _run(f"""
        import asyncio, threading, time, redlock
        nodes = {nodes!r}
        c = redlock.Client(nodes, restart_grace=0)
        a = c.lock({name!r} + ":plain", timeout=2); assert a.acquire()
        k = c.lock({name!r} + ":kept", timeout=1, auto_extend=True); assert k.acquire()
        other = redlock.Client(nodes, restart_grace=0)
        threading.Thread(target=lambda: other.lock({name!r} + ":plain").acquire(), daemon=True).start()
        async def pending():
            loop = asyncio.get_running_loop()
            asyncio.ensure_future(other.async_lock({name!r} + ":kept").acquire())
            await asyncio.sleep(0.1)
        asyncio.run(pending())
        time.sleep(0.1)
        print("exiting", flush=True)
    """)
    assert done.returncode == 0, done.stderr
    assert "exiting" in done.stdout
    assert "terminate" not in done.stderr and "Fatal" not in done.stderr, done.stderr
    # The locks were not released (the holder went away): they expire.
    cluster.wait_no_lock_keys(name.encode(), timeout=5)


def test_exit_from_a_thread_holding_the_gil_during_close(nodes, name):
    # Daemon threads hammer the client while the interpreter exits.
    done = _run(f"""
        import threading, redlock
        c = redlock.Client({nodes!r}, restart_grace=0)
        def spin(i):
            while True:
                try:
                    l = c.lock({name!r} + str(i % 2), sleep=0.001)
                    if l.acquire(blocking_timeout=0.05):
                        l.release()
                except redlock.RedlockError:
                    pass
        for i in range(4):
            threading.Thread(target=spin, args=(i,), daemon=True).start()
        import time; time.sleep(0.3)
    """)
    assert done.returncode == 0, done.stderr
    assert "terminate" not in done.stderr and "Fatal" not in done.stderr, done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork(client, name):
    lock = client.lock(name)
    assert lock.acquire()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(r)
            try:
                client.lock(name + ":child").acquire(blocking=False)
                msg = "old client worked"
            except redlock.ClientClosed as e:
                msg = "refused" if "fork" in str(e) else f"wrong message {e}"
            if msg == "refused":
                try:
                    lock.release()
                    msg = "release worked"
                except redlock.ClientClosed:
                    pass
            if msg == "refused":
                fresh = redlock.Client(client.nodes, restart_grace=0)
                child_lock = fresh.lock(name + ":child")
                msg = "ok" if child_lock.acquire(blocking_timeout=5) else "child could not lock"
                child_lock.release()
                fresh.close()
            del lock  # the inherited objects go, without touching the parent's engine
            gc.collect()
            os.write(w, msg.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + scaled(20)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the child hung")
        time.sleep(0.01)
    msg = os.read(r, 1000).decode()
    os.close(r)
    assert os.WEXITSTATUS(status) == 0 and msg == "ok", msg
    # The parent's client and lock are unaffected.
    assert lock.owned()
    lock.release()
    assert client.lock(name).acquire(blocking_timeout=scaled(5))


def test_health_reports_each_node_and_the_quorum(client, cluster):
    report = client.health(timeout=scaled(2))
    assert report["quorum"] == 3
    assert report["voting"] == 5
    assert report["quorum_available"] is True
    assert [n["node"] for n in report["nodes"]] == client.nodes
    for n in report["nodes"]:
        assert n["reachable"] and n["answering"] and n["voting"], n
        assert n["version"] and n["rtt_us"] is not None and n["tls"] is False
        assert n["shards"] == []
    # A stalled node answers no more: the report says so, and the quorum
    # holds with the other four.
    cluster.pause(4)
    try:
        report = client.health(timeout=0.3)
        stalled = report["nodes"][4]
        assert stalled["rtt_us"] is None
        assert report["voting"] >= 3 and report["quorum_available"] is True
        assert all(n["rtt_us"] is not None for n in report["nodes"][:4])
    finally:
        cluster.resume(4)


def test_health_refuses_a_timeout_that_is_not_positive(client):
    with pytest.raises(ValueError, match="timeout must be positive"):
        client.health(timeout=0)
    with pytest.raises(TypeError):
        client.health(timeout="1s")


def test_a_release_returns_once_a_majority_deleted_the_key(nodes, cluster, name):
    """release_wait="majority" (the default) does not wait release_timeout for
    paused nodes; "every_node" does. Either way the paused nodes delete the
    key when they resume."""
    opts = dict(restart_grace=0, node_timeout=0.1)
    majority = redlock.Client(nodes, release_timeout=scaled(4), **opts)
    every = redlock.Client(nodes, release_timeout=0.5, release_wait="every_node", **opts)
    try:
        cluster.pause(0)
        cluster.pause(1)
        try:
            lock = majority.lock(name, timeout=10)
            assert lock.acquire(blocking_timeout=scaled(5))
            t0 = time.monotonic()
            lock.release()
            assert time.monotonic() - t0 < scaled(4) / 2, "it waited for the paused nodes"
            lock = every.lock(name, timeout=10)
            assert lock.acquire(blocking_timeout=scaled(5))
            t0 = time.monotonic()
            lock.release()
            assert time.monotonic() - t0 >= 0.5, "it did not wait release_timeout"
        finally:
            cluster.resume(0)
            cluster.resume(1)
        cluster.wait_no_lock_keys(name.encode(), timeout=scaled(3))
    finally:
        majority.close()
        every.close()
