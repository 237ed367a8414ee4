"""The synchronous API against five real redis-server nodes: acquire
(blocking, non-blocking, timeouts), release by the owner only, extend,
automatic extension, faults, names, fences, the GIL."""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest

import redlock
from cluster import scaled


def test_acquire_release(client, cluster, name):
    lock = client.lock(name, timeout=10)
    assert lock.token is None and lock.fence is None and not lock.owned()
    assert lock.acquire() is True
    assert re.fullmatch(r"[0-9a-f]{32}", lock.token)
    assert lock.fence > 0
    assert 9.0 < lock.remaining <= 10.0
    assert lock.owned() and lock.locked()
    assert len(lock.votes) == 5 and sum(v.status == "ok" for v in lock.votes) >= 3
    assert cluster.lock_keys(name.encode())
    lock.release()
    assert lock.token is None and not lock.owned()
    cluster.wait_no_lock_keys(name.encode())


def test_context_manager(client, cluster, name):
    with client.lock(name, timeout=5) as lock:
        assert lock.owned()
        assert cluster.lock_keys(name.encode())
    assert not lock.owned()
    cluster.wait_no_lock_keys(name.encode())


def test_non_blocking_acquire_fails_while_held(client, other, name):
    held = client.lock(name)
    assert held.acquire()
    try:
        contender = other.lock(name)
        start = time.monotonic()
        assert contender.acquire(blocking=False) is False
        assert time.monotonic() - start < scaled(1.0)
        with pytest.raises(redlock.HeldByAnother) as info:
            contender.acquire(blocking=False, raise_on_failure=True)
        err = info.value
        assert isinstance(err, redlock.LockError) and err.code == redlock.ErrorCode.HELD_BY_ANOTHER
        assert err.lock_name == name
        assert len(err.nodes) == 5
        assert all(isinstance(n, redlock.NodeAnswer) for n in err.nodes)
        assert sum(n.status == "refused" for n in err.nodes) >= 3, err
        assert all(n.rtt >= 0 for n in err.nodes)
        with pytest.raises(redlock.HeldByAnother):
            with other.lock(name, blocking=False):
                pass
    finally:
        held.release()


def test_blocking_timeout_runs_out(client, other, name):
    held = client.lock(name)
    assert held.acquire()
    try:
        contender = other.lock(name, sleep=0.05, blocking_timeout=0.3)
        start = time.monotonic()
        assert contender.acquire() is False
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < scaled(2.0), elapsed
        # The per-call argument wins over the lock's.
        start = time.monotonic()
        assert contender.acquire(blocking_timeout=0.1) is False
        assert time.monotonic() - start < scaled(1.5)
        with pytest.raises(redlock.LockWaitTimeout) as info:
            with contender:
                pass
        assert info.value.code == redlock.ErrorCode.LOCK_WAIT_TIMEOUT
        assert info.value.lock_name == name
    finally:
        held.release()


def test_waiter_gets_the_lock_when_it_is_released(client, other, name):
    held = client.lock(name)
    assert held.acquire()
    got = {}

    def wait():
        lock = other.lock(name, sleep=1.0, blocking_timeout=scaled(10))
        start = time.monotonic()
        got["ok"] = lock.acquire()
        got["waited"] = time.monotonic() - start
        if got["ok"]:
            lock.release()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    held.release()
    t.join(scaled(10))
    assert not t.is_alive()
    assert got["ok"] is True
    # Woken by the release (wake-on-release), not by its 1 s retry delay.
    assert got["waited"] < 0.3 + scaled(0.5), got


def test_gated_waiters_each_get_the_lock_in_turn(cluster, nodes, name):
    # Four clients wait with contest_gate=True on a lock a fifth holds; each
    # release hands it to one of them through the gate node.
    clients = [redlock.Client(nodes, restart_grace=0, node_timeout=0.1) for _ in range(5)]
    try:
        held = clients[0].lock(name)
        assert held.acquire()
        results = []
        done = threading.Barrier(5)

        def wait(client):
            lock = client.lock(name, sleep=scaled(10), blocking_timeout=scaled(20), contest_gate=True)
            try:
                results.append(lock.acquire())
                lock.release()
            finally:
                done.wait(scaled(30))

        threads = [threading.Thread(target=wait, args=(c,)) for c in clients[1:]]
        for t in threads:
            t.start()
        time.sleep(0.3)
        start = time.monotonic()
        held.release()
        done.wait(scaled(30))
        for t in threads:
            t.join(scaled(10))
        assert results == [True] * 4
        # Woken through announcements, not by their 10 s retry delay.
        assert time.monotonic() - start < scaled(5)
        cluster.wait_no_lock_keys(name.encode())
    finally:
        for c in clients:
            c.close()


def test_lock_expires_with_its_timeout(client, other, cluster, name):
    short = client.lock(name, timeout=0.3)
    assert short.acquire()
    time.sleep(0.45)
    assert short.remaining == 0.0 and not short.owned()
    taker = other.lock(name, timeout=5)
    assert taker.acquire(blocking=False)
    try:
        # The first owner's release must not touch the new owner's lock.
        with pytest.raises(redlock.NotOwner) as info:
            short.release()
        assert isinstance(info.value, redlock.LockNotOwnedError)
        assert taker.owned()
        assert other.lock(name).acquire(blocking=False) is False
        assert cluster.lock_keys(name.encode())
    finally:
        taker.release()
    cluster.wait_no_lock_keys(name.encode())


def test_release_by_the_owner_only(client, other, name):
    owner = client.lock(name)
    assert owner.acquire()
    try:
        stranger = other.lock(name)
        with pytest.raises(redlock.LockError, match="not owned or is already unlocked"):
            stranger.release()
        same_name_same_client = client.lock(name)
        with pytest.raises(redlock.LockError):
            same_name_same_client.release()
        assert stranger.acquire(blocking=False) is False
    finally:
        owner.release()
    with pytest.raises(redlock.LockError):
        owner.release()  # already released


def test_release_by_another_thread(client, name):
    lock = client.lock(name)
    assert lock.acquire()
    errors = []

    def release():
        try:
            lock.release()
        except redlock.LockError as e:
            errors.append(e)

    t = threading.Thread(target=release)
    t.start()
    t.join()
    assert len(errors) == 1  # thread-local token: another thread does not hold it
    assert lock.owned()
    lock.release()

    shared = client.lock(name, thread_local=False)
    assert shared.acquire()
    t = threading.Thread(target=shared.release)
    t.start()
    t.join()
    assert not shared.owned()


def test_extend(client, other, name):
    lock = client.lock(name, timeout=1)
    with pytest.raises(redlock.LockError, match="unlocked"):
        lock.extend(1)
    assert lock.acquire()
    try:
        assert lock.extend(2) is True  # added to what is left
        assert 2.5 < lock.remaining <= 3.0
        assert lock.extend(1.5, replace_ttl=True) is True
        assert 1.0 < lock.remaining <= 1.5
        assert lock.reacquire() is True
        assert 0.5 < lock.remaining <= 1.0
        time.sleep(0.5)
        assert lock.extend(1, replace_ttl=True)
        time.sleep(0.7)  # past the first ttl: only the extension keeps it
        assert other.lock(name).acquire(blocking=False) is False
    finally:
        lock.release()


def test_extend_after_expiry_fails(client, name):
    lock = client.lock(name, timeout=0.2)
    assert lock.acquire()
    time.sleep(0.35)
    with pytest.raises(redlock.LockNotOwnedError) as info:
        lock.extend(1)
    assert isinstance(info.value, (redlock.Expired, redlock.NotOwner))
    with pytest.raises(redlock.LockNotOwnedError):
        lock.release()


def test_auto_extend_outlives_its_ttl(client, other, cluster, name):
    lock = client.lock(name, timeout=0.4, auto_extend=True)
    assert lock.acquire()
    try:
        deadline = time.monotonic() + 1.5  # more than three ttls
        while time.monotonic() < deadline:
            assert other.lock(name).acquire(blocking=False) is False
            assert lock.owned() and not lock.lost
            time.sleep(0.1)
        assert client.metrics()["extensions"] >= 3
        with pytest.raises(redlock.LockError, match="auto_extend"):
            lock.extend(1)
    finally:
        lock.release()
    cluster.wait_no_lock_keys(name.encode())
    assert other.lock(name).acquire(blocking=False) is True


def test_auto_extended_lock_lost(client, cluster, name):
    lock = client.lock(name, timeout=0.4, auto_extend=True)
    assert lock.acquire()
    assert cluster.delete_keys(name.encode()) >= 3  # gone behind its back
    deadline = time.monotonic() + scaled(3)
    while not lock.lost and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lock.lost and not lock.owned()
    assert isinstance(lock.lost_error, redlock.RedlockError)
    with pytest.raises(redlock.LockLost):
        lock.release()


def test_auto_extended_lock_released_when_dropped(client, other, cluster, name):
    lock = client.lock(name, timeout=0.5, auto_extend=True)
    assert lock.acquire()
    del lock  # nobody can release it any more: its extension stops and it goes
    cluster.wait_no_lock_keys(name.encode())
    assert other.lock(name).acquire(blocking=False)


def test_names_str_and_bytes(client, other, name):
    text = name + ":h\u00e9llo"
    lock = client.lock(text)
    assert lock.acquire()
    try:
        same = other.lock(text.encode("utf-8"))
        assert same.acquire(blocking=False) is False
        assert other.lock(bytearray(text.encode("utf-8"))).acquire(blocking=False) is False
    finally:
        lock.release()
    raw = other.lock(name.encode() + b"\xff\x00\x01")  # any bytes
    assert raw.acquire(blocking=False)
    raw.release()


def test_fences_increase_across_holders(client, other, name):
    fences = []
    for c in (client, other, client, other):
        lock = c.lock(name)
        assert lock.acquire()
        fences.append(lock.fence)
        lock.release()
    assert fences == sorted(fences) and len(set(fences)) == 4


def test_two_of_five_nodes_paused(client, other, cluster, name):
    cluster.pause(0)
    cluster.pause(1)
    try:
        lock = client.lock(name, timeout=5)
        start = time.monotonic()
        assert lock.acquire(blocking=False)
        assert time.monotonic() - start < scaled(1.0)
        assert other.lock(name).acquire(blocking=False) is False
        lock.release()
    finally:
        cluster.resume_all()
    cluster.wait_no_lock_keys(name.encode())


def test_majority_paused_is_no_quorum(client, cluster, name):
    for i in range(3):
        cluster.pause(i)
    try:
        lock = client.lock(name, timeout=5, node_timeout=0.05)
        assert lock.acquire(blocking=False) is False
        with pytest.raises(redlock.NoQuorum) as info:
            lock.acquire(blocking=False, raise_on_failure=True)
        statuses = [n.status for n in info.value.nodes]
        assert statuses.count("timeout") + statuses.count("pending") >= 3, info.value
    finally:
        cluster.resume_all()
    cluster.wait_no_lock_keys(name.encode())


def test_locked_asks_the_nodes_and_takes_nothing(client, other, cluster, name):
    lock = client.lock(name)
    assert lock.locked() is False
    assert cluster.lock_keys(name.encode()) == {}, "locked() took nothing"
    held = other.lock(name)
    assert held.acquire()
    try:
        assert lock.locked() is True
        assert lock.owned() is False
        # The check is read-only: the holder's keys are as they were.
        assert len(cluster.lock_keys(name.encode())) >= 3
    finally:
        held.release()
    assert lock.locked() is False
    # Too few nodes answer to tell: an error, not a guess.
    for i in (2, 3, 4):
        cluster.pause(i)
    try:
        with pytest.raises(redlock.NoQuorum):
            lock.locked()
    finally:
        cluster.resume_all()


def test_gil_is_released_while_waiting(client, other, name):
    held = client.lock(name)
    assert held.acquire()
    counted = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counted[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        before = counted[0]
        assert other.lock(name, sleep=0.05).acquire(blocking_timeout=0.5) is False
        during = counted[0] - before
    finally:
        stop.set()
        t.join()
        held.release()
    # A pure-Python loop counts millions per second; a thread stuck behind a
    # GIL held by the waiter would not count at all.
    assert during > 10_000, during


@pytest.mark.parametrize("spin", [0, 0.01])
def test_blocking_calls_spin_without_the_gil(nodes, cluster, name, spin):
    """blocking_spin changes how a blocking call waits for its result, not
    what it returns; at the largest spin another thread still runs."""
    counted = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counted[0] += 1

    with redlock.Client(nodes, restart_grace=0, node_timeout=0.1, blocking_spin=spin) as c:
        t = threading.Thread(target=count)
        t.start()
        try:
            for _ in range(20):
                lock = c.lock(name, timeout=10)
                assert lock.acquire(blocking=False) is True
                assert lock.owned()
                lock.release()
                assert not lock.owned()
        finally:
            stop.set()
            t.join()
    assert counted[0] > 10_000, counted[0]
    cluster.wait_no_lock_keys(name.encode())


class _Interrupted(Exception):
    pass


def test_signal_interrupts_a_wait(client, other, cluster, name):
    held = client.lock(name)
    assert held.acquire()

    def handler(signum, frame):
        raise _Interrupted()

    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(0.2, lambda: signal.pthread_kill(threading.main_thread().ident,
                                                             signal.SIGUSR1))
    try:
        timer.start()
        start = time.monotonic()
        with pytest.raises(_Interrupted):
            other.lock(name, sleep=0.05).acquire(blocking_timeout=scaled(10))
        assert time.monotonic() - start < scaled(2.0)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
        held.release()
    cluster.wait_no_lock_keys(name.encode())


def test_metrics_and_prometheus(client, name):
    with client.lock(name):
        pass
    m = client.metrics()
    assert m["acquires_granted"] >= 1
    assert len(m["nodes"]) == 5 and all(n["connected"] for n in m["nodes"])
    assert "held by another" in m["acquires_failed"]
    text = client.prometheus()
    assert "redlock_" in text
    assert client.connected() == [True] * 5
    assert client.quorum == 3 and len(client.nodes) == 5


def test_error_codes_match_the_engine():
    names = redlock._native.error_code_names()
    assert [c.name.lower().replace("_", " ") for c in redlock.ErrorCode] == [
        n.replace("internal error", "internal") for n in names]
