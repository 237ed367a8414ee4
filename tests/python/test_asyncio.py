"""The asyncio API: AsyncLock from client.async_lock(), awaited acquire,
release and extend; cancellation of a waiting task, including a grant that
races the cancellation; the event loop keeps running while a lock is
awaited."""

from __future__ import annotations

import asyncio
import functools
import random
import time

import pytest

import redlock
from redlock._lock import _settle
from cluster import scaled

pytestmark = pytest.mark.asyncio


async def test_async_acquire_release(client, cluster, name):
    lock = client.async_lock(name, timeout=5)
    assert await lock.acquire() is True
    assert lock.fence > 0 and await lock.owned() and await lock.locked()
    assert cluster.lock_keys(name.encode())
    await lock.release()
    assert not await lock.owned()
    await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())
    with pytest.raises(redlock.LockError):
        await lock.release()


async def test_async_with(client, cluster, name):
    async with client.async_lock(name) as lock:
        assert await lock.owned()
    assert not await lock.owned()
    await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())


async def test_async_not_granted(client, other, name):
    held = client.async_lock(name)
    assert await held.acquire()
    try:
        contender = other.async_lock(name, sleep=0.05)
        assert await contender.acquire(blocking=False) is False
        start = time.monotonic()
        assert await contender.acquire(blocking_timeout=0.3) is False
        assert 0.25 <= time.monotonic() - start < scaled(2.0)
        with pytest.raises(redlock.LockWaitTimeout):
            async with other.async_lock(name, blocking_timeout=0.1):
                pass
        with pytest.raises(redlock.HeldByAnother) as info:
            async with other.async_lock(name, blocking=False):
                pass
        assert len(info.value.nodes) == 5
    finally:
        await held.release()


async def test_event_loop_runs_while_a_lock_is_awaited(client, other, name):
    held = client.async_lock(name)
    assert await held.acquire()
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        waiter = asyncio.create_task(other.async_lock(name, sleep=1.0).acquire(blocking_timeout=5))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        assert ticks >= 10, ticks
        start = time.monotonic()
        await held.release()
        assert await asyncio.wait_for(waiter, scaled(5)) is True
        assert time.monotonic() - start < scaled(0.5)  # woken by the release
    finally:
        ticker.cancel()


async def test_cancelled_waiter_leaves_no_key(client, other, cluster, name):
    held = client.async_lock(name)
    assert await held.acquire()
    waiter = other.async_lock(name, sleep=0.05)
    task = asyncio.create_task(waiter.acquire())  # blocking_timeout=None: for ever
    await asyncio.sleep(0.2)
    task.cancel()
    start = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < scaled(1.0)
    assert waiter.token is None
    # The holder's lock is untouched, and the waiter left nothing of its own.
    assert await held.owned()
    keys = cluster.lock_keys(name.encode())
    assert sum(len(k) for k in keys.values()) >= 3
    await held.release()
    await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())
    await asyncio.sleep(0.2)  # a grant after the cancellation would show now
    assert not cluster.lock_keys(name.encode())


async def test_cancellation_racing_the_grant(client, other, cluster, name):
    # The holder releases while the waiter's task is cancelled, at many
    # different offsets: whichever wins, no key outlives the waiter's task.
    rng = random.Random(7)
    outcomes = {"granted": 0, "cancelled": 0}
    for _ in range(25):
        held = client.async_lock(name)
        assert await held.acquire()
        waiter = other.async_lock(name, sleep=0.5)
        task = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0.02)
        release = asyncio.create_task(held.release())
        await asyncio.sleep(rng.uniform(0, 0.004))
        task.cancel()
        try:
            await task
            outcomes["granted"] += 1
            await waiter.release()
        except asyncio.CancelledError:
            outcomes["cancelled"] += 1
        await release
        await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())
    assert outcomes["cancelled"] > 0, outcomes


async def test_grant_to_a_cancelled_waiter_is_released(client, cluster, name):
    # The engine's answer reaches a future already cancelled (the task is
    # gone): the lock it carries is released, not leaked.
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fut.cancel()
    lock = client.async_lock(name)
    client._native.acquire_async(lock.resource, lock._spec, 0, loop, functools.partial(_settle, fut))
    deadline = time.monotonic() + scaled(2)
    while not cluster.lock_keys(name.encode()) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)  # it may be set and released in between: fine either way
    await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())
    assert await client.async_lock(name).acquire(blocking=False)


async def test_wait_for_timeout_leaves_no_key(client, other, cluster, name):
    held = client.async_lock(name)
    assert await held.acquire()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(other.async_lock(name, sleep=0.05).acquire(), 0.2)
    await held.release()
    await asyncio.sleep(0.1)
    await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())


async def test_async_extend_and_auto_extend(client, other, cluster, name):
    lock = client.async_lock(name, timeout=1)
    with pytest.raises(redlock.LockError):
        await lock.extend(1)
    assert await lock.acquire()
    assert await lock.extend(2)
    assert 2.5 < lock.remaining <= 3.0
    assert await lock.reacquire()
    assert 0.5 < lock.remaining <= 1.0
    await lock.release()

    kept = client.async_lock(name, timeout=0.4, auto_extend=True)
    assert await kept.acquire()
    await asyncio.sleep(1.3)
    assert await kept.owned() and not kept.lost
    assert await other.async_lock(name).acquire(blocking=False) is False
    await kept.release()
    await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())


async def test_mutual_exclusion_between_tasks(client, other, name):
    inside = 0
    most = 0
    done = 0

    async def worker(c):
        nonlocal inside, most, done
        async with c.async_lock(name, sleep=0.01, blocking_timeout=scaled(20)):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.002)
            inside -= 1
            done += 1

    await asyncio.gather(*(worker(client if i % 2 else other) for i in range(30)))
    assert done == 30 and most == 1


async def test_close_fails_a_waiting_task(nodes, name):
    holder = redlock.Client(nodes, restart_grace=0)
    waiter_client = redlock.Client(nodes, restart_grace=0)
    try:
        held = holder.async_lock(name)
        assert await held.acquire()
        task = asyncio.create_task(waiter_client.async_lock(name, sleep=0.05).acquire())
        await asyncio.sleep(0.1)
        waiter_client.close()
        with pytest.raises(redlock.ClientClosed):
            await asyncio.wait_for(task, scaled(5))
        await held.release()
    finally:
        holder.close()
        waiter_client.close()


async def test_locked_async_asks_the_nodes(client, other, cluster, name):
    lock = client.async_lock(name)
    assert await lock.locked() is False
    assert cluster.lock_keys(name.encode()) == {}
    held = other.async_lock(name)
    assert await held.acquire()
    assert await lock.locked() is True
    await held.release()
    await asyncio.to_thread(cluster.wait_no_lock_keys, name.encode())
