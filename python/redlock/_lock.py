"""Lock and AsyncLock: the shape of redis-py's ``Lock`` and
``redis.asyncio.lock.Lock``, held on a majority of independent Redis nodes.

A lock object names one resource and carries how to take it; acquiring it
stores the granted lock (its token, fence and validity) in the object, per
thread unless ``thread_local=False``, exactly as redis-py stores its token.
Make one lock object per critical section (it is cheap); ``with`` and
``async with`` acquire and release it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Type, Union

from . import _args, _native
from ._errors import from_engine
from ._errors import (
    HeldByAnother,
    LockError,
    LockLost,
    LockWaitTimeout,
    NodeAnswer,
    NoQuorum,
    NotOwner,
    RedlockError,
    ValidityExhausted,
)

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Lock", "AsyncLock"]

logger = logging.getLogger("redlock")

# Outcomes of an acquire that mean "not granted": acquire() returns False.
_NOT_GRANTED = (HeldByAnother, NoQuorum, ValidityExhausted, LockWaitTimeout)

# How long locked() waits for the nodes' answers.
_INSPECT_TIMEOUT_MS = 1000


def checked(value: Any) -> Any:
    """`value`, unless it is an engine error: then its exception is raised."""
    if type(value) is _native.EngineError:
        raise from_engine(value)
    return value


def _settle(fut: "asyncio.Future[Any]", value: Any) -> None:
    """Runs on the event loop (call_soon_threadsafe from the engine's side):
    completes ``fut`` with the engine's outcome. A lock granted to an acquire
    whose waiter has gone (cancelled) is released."""
    if fut.done():
        if isinstance(value, _native.NativeLock):
            value.abandon()
        return
    if type(value) is _native.EngineError:
        fut.set_exception(from_engine(value))
    else:
        fut.set_result(value)


def _consume(fut: "asyncio.Future[Any]") -> None:
    """Retrieves an outcome nobody awaits any more (no 'exception was never
    retrieved' warning)."""
    if not fut.cancelled():
        fut.exception()


class _LockBase:
    """What Lock and AsyncLock share: arguments, per-thread state, and the
    rules that turn the engine's answers into redis-py's outcomes."""

    def __init__(
        self,
        client: "Client",
        name: Union[str, bytes],
        timeout: Optional[float] = 10.0,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: Optional[float] = None,
        thread_local: bool = True,
        raise_on_release_error: bool = True,
        *,
        auto_extend: bool = False,
        extend_at_remaining: float = 0.5,
        max_extensions: int = 100,
        max_hold: Optional[float] = None,
        retry_jitter: Optional[float] = None,
        wake_on_release: bool = True,
        min_validity: float = 0.001,
        node_timeout: Optional[float] = None,
        contest_gate: bool = False,
    ) -> None:
        from ._client import Client

        if not isinstance(client, Client):
            raise TypeError(f"client must be a redlock.Client, not {type(client).__name__}")
        self.client = client
        self.name = name
        self.resource = _args.name_bytes(name)
        if timeout is None:
            raise ValueError(
                "timeout=None (a lock that never expires) is not possible with Redlock: give the "
                "lock a ttl in seconds, and pass auto_extend=True to keep it for longer")
        self.timeout = _args.seconds("timeout", timeout, allow_zero=False)
        self._ttl_ms = _args.ms("timeout", timeout, allow_zero=False)
        if self._ttl_ms > client._max_ttl_ms:
            raise ValueError(
                f"timeout={self.timeout:g} s exceeds the client's max_ttl={client._max_ttl_ms / 1000:g} s: "
                "raise max_ttl in Client(...) (on every client of these nodes), or keep a shorter "
                "lock alive with auto_extend=True")
        self.sleep = _args.seconds("sleep", sleep)
        self.blocking = _args.flag("blocking", blocking)
        _args.wait_ms("blocking_timeout", blocking_timeout)
        self.blocking_timeout = blocking_timeout
        self.thread_local = _args.flag("thread_local", thread_local)
        self.raise_on_release_error = _args.flag("raise_on_release_error", raise_on_release_error)
        self.auto_extend = _args.flag("auto_extend", auto_extend)
        self._extend_at_remaining = _args.number(
            "extend_at_remaining", extend_at_remaining, 0, 1, low_open=True)
        self._max_extensions = _args.count("max_extensions", max_extensions, 0, 2**31 - 1)
        self._max_hold_ms = 0 if max_hold is None else _args.ms("max_hold", max_hold, allow_zero=False)
        if self.auto_extend and self._max_extensions == 0 and self._max_hold_ms == 0:
            raise ValueError(
                "auto_extend needs a bound: max_extensions > 0 or max_hold (the Redlock spec asks "
                "that re-acquisitions be limited)")
        self._retry_jitter = None if retry_jitter is None else _args.seconds("retry_jitter", retry_jitter)
        self._wake_on_release = _args.flag("wake_on_release", wake_on_release)
        self._contest_gate = _args.flag("contest_gate", contest_gate)
        self._min_validity_ms = _args.ms("min_validity", min_validity, allow_zero=False)
        self._node_timeout_ms = 0 if node_timeout is None else _args.ms(
            "node_timeout", node_timeout, allow_zero=False)
        self._spec = self._make_spec(self.sleep)
        self._local: Any = threading.local() if self.thread_local else SimpleNamespace()
        self._local.held = None

    def _make_spec(self, sleep: float) -> "_native.AcquireSpec":
        jitter = self._retry_jitter if self._retry_jitter is not None else sleep / 2
        return _native.AcquireSpec(
            ttl_ms=self._ttl_ms,
            retry_delay_ms=_args.ms("sleep", sleep),
            retry_jitter_ms=_args.ms("retry_jitter", jitter),
            min_validity_ms=self._min_validity_ms,
            node_timeout_ms=self._node_timeout_ms,
            wake_on_release=self._wake_on_release,
            auto_extend=self.auto_extend,
            extend_at_remaining=self._extend_at_remaining,
            extend_ttl_ms=0,
            max_extensions=self._max_extensions,
            max_hold_ms=self._max_hold_ms,
            contest_gate=self._contest_gate,
        )

    # --- per-thread state ------------------------------------------------------

    def _held(self) -> "Optional[_native.NativeLock]":
        return getattr(self._local, "held", None)

    def _set_held(self, held: "Optional[_native.NativeLock]") -> None:
        self._local.held = held

    def _max_wait_ms(self, blocking: Optional[bool], blocking_timeout: Optional[float]) -> int:
        if blocking is None:
            blocking = self.blocking
        elif not isinstance(blocking, bool):
            raise TypeError(f"blocking must be True or False, not {type(blocking).__name__}")
        if not blocking:
            return 0  # one round: a try-lock
        if blocking_timeout is None:
            blocking_timeout = self.blocking_timeout
        return _args.wait_ms("blocking_timeout", blocking_timeout)

    @staticmethod
    def _check_token(token: Any) -> None:
        if token is not None:
            raise ValueError(
                "token: the engine makes every lock's token itself (128 random bits); "
                "custom tokens are not supported")

    def _not_granted(self, error: RedlockError) -> RedlockError:
        error.lock_name = self.name
        return error

    def _release_outcome(self, lost: bool, lost_error: Optional[RedlockError], deleted: int,
                         nodes: Tuple[Tuple[str, str, str, float], ...]) -> None:
        """Raises when the release found that the lock was no longer ours:
        so many nodes answered that they did not hold its token that no
        majority can have held it."""
        refused = sum(1 for n in nodes if n[1] == "refused")
        if refused <= len(nodes) - self.client.quorum:
            return
        if lost:
            detail = f": {lost_error}" if lost_error is not None else ""
            raise LockLost(
                f"the lock on {self.name!r} was lost before it was released{detail}",
                lost_error.nodes if lost_error is not None else nodes, lock_name=self.name)
        raise NotOwner(
            f"Cannot release a lock that's no longer owned: {refused} of {len(nodes)} nodes no "
            f"longer held the lock on {self.name!r} (expired, or taken over)",
            nodes, lock_name=self.name)

    def _extend_ttl_ms(self, held: "_native.NativeLock", additional_time: Any,
                       replace_ttl: bool) -> int:
        if held.auto_extended:
            raise LockError(
                "Cannot extend a lock made with auto_extend=True: the engine extends it",
                lock_name=self.name)
        replace_ttl = _args.flag("replace_ttl", replace_ttl)
        add_ms = _args.ms("additional_time", additional_time, allow_zero=False)
        # Like redis-py: add to what is left, or replace it. What is left is
        # the lock's validity as this client counts it (slightly less than
        # the keys' own ttl on the nodes).
        ttl_ms = add_ms if replace_ttl else int(held.remaining * 1000) + add_ms
        if ttl_ms > self.client._max_ttl_ms:
            raise ValueError(
                f"extending to {ttl_ms / 1000:g} s exceeds the client's max_ttl="
                f"{self.client._max_ttl_ms / 1000:g} s" +
                ("" if replace_ttl else " (the time left plus additional_time; replace_ttl=True sets it)"))
        return ttl_ms

    # --- state of the lock this thread holds ---------------------------------------

    @property
    def token(self) -> Optional[str]:
        """This thread's token (32 hex characters), or None when not held."""
        held = self._held()
        return held.token if held is not None else None

    @property
    def fence(self) -> Optional[int]:
        """The fencing token of the held lock: larger than that of every
        earlier holder of the resource. Pass it with each write the lock
        protects, so that the store can refuse a holder that lost the lock
        without knowing. 0 when the client has fencing=False; None when not
        held."""
        held = self._held()
        return held.fence if held is not None else None

    @property
    def remaining(self) -> float:
        """Seconds of validity left (0.0 when not held). An automatically
        extended lock's validity moves with each extension."""
        held = self._held()
        return held.remaining if held is not None else 0.0

    @property
    def lost(self) -> bool:
        """True once an automatically extended lock was lost (an extension
        was refused, or its validity ran out)."""
        held = self._held()
        return held is not None and held.lost

    @property
    def lost_error(self) -> Optional[RedlockError]:
        """Why the lock was lost (see ``lost``), with each node's answer."""
        held = self._held()
        error = held.lost_error if held is not None else None
        return from_engine(error) if error is not None else None

    @property
    def votes(self) -> List[NodeAnswer]:
        """What each node answered in the round that granted the lock."""
        held = self._held()
        return [NodeAnswer(*v) for v in held.votes] if held is not None else []

    def _owned(self) -> bool:
        held = self._held()
        return held is not None and not held.lost and held.remaining > 0

    def __repr__(self) -> str:
        state = "held" if self._owned() else "not held"
        return f"<{type(self).__name__} {self.name!r} timeout={self.timeout:g} {state}>"


class Lock(_LockBase):
    """A distributed lock, shaped like redis-py's ``Lock``.

    ``client.lock(name, timeout=10, blocking_timeout=5)`` makes one; ``with``
    acquires it (raising :class:`LockWaitTimeout`, :class:`HeldByAnother`...
    when it cannot) and releases it. Blocking calls release the GIL.
    """

    def __enter__(self) -> "Lock":
        self.acquire(raise_on_failure=True)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        try:
            self.release()
        except LockError:
            if self.raise_on_release_error:
                raise
            logger.warning("Lock was unlocked or no longer owned when exiting context manager.")

    def acquire(
        self,
        sleep: Optional[float] = None,
        blocking: Optional[bool] = None,
        blocking_timeout: Optional[float] = None,
        token: None = None,
        *,
        raise_on_failure: bool = False,
    ) -> bool:
        """Takes the lock. Returns True once it is held; False if it could
        not be had: held by another (``blocking=False``, or until
        ``blocking_timeout`` ran out; None waits for ever), or too few nodes
        answered yes. With ``raise_on_failure=True`` those raise instead
        (:class:`HeldByAnother`, :class:`LockWaitTimeout`,
        :class:`NoQuorum`, :class:`ValidityExhausted`, with each node's
        answer). Ctrl-C while waiting cancels the wait."""
        self._check_token(token)
        spec = self._spec if sleep is None else self._make_spec(_args.seconds("sleep", sleep))
        max_wait = self._max_wait_ms(blocking, blocking_timeout)
        try:
            held = checked(self.client._native.acquire(self.resource, spec, max_wait))
        except _NOT_GRANTED as e:
            if raise_on_failure:
                raise self._not_granted(e) from None
            return False
        self._set_held(held)
        return True

    def release(self) -> None:
        """Releases the lock on every node. Raises :class:`LockError` if this
        thread does not hold it, :class:`NotOwner` (a
        :class:`LockNotOwnedError`) if it had expired or been taken over,
        :class:`LockLost` if the engine had reported it lost."""
        held = self._held()
        if held is None:
            raise LockError("Cannot release a lock that's not owned or is already unlocked.",
                            lock_name=self.name)
        lost, lost_error = held.lost, self.lost_error
        self._set_held(None)
        deleted, nodes = checked(self.client._native.release(held))
        self._release_outcome(lost, lost_error, deleted, nodes)

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Adds ``additional_time`` seconds to the time left (or, with
        ``replace_ttl=True``, makes it the new ttl from now). Raises
        :class:`NotOwner`/:class:`Expired` (both :class:`LockNotOwnedError`)
        if the lock is no longer held."""
        held = self._held()
        if held is None:
            raise LockError("Cannot extend an unlocked lock", lock_name=self.name)
        ttl_ms = self._extend_ttl_ms(held, additional_time, replace_ttl)
        checked(self.client._native.extend(held, ttl_ms, False, self._min_validity_ms,
                                           self._node_timeout_ms))
        return True

    def reacquire(self) -> bool:
        """Resets the lock's ttl to ``timeout`` from now."""
        return self.extend(self.timeout, replace_ttl=True)

    def locked(self) -> bool:
        """True if the lock is held, by this lock or by anyone else: a
        majority of the nodes hold it. Read-only: the nodes are asked
        (``PTTL``) and nothing is taken. Raises :class:`NoQuorum` when too
        few nodes answer to tell."""
        if self._owned():
            return True
        held, _holding, _free, _ttl = checked(
            self.client._native.inspect(self.resource, _INSPECT_TIMEOUT_MS))
        return bool(held)

    def owned(self) -> bool:
        """True if this thread holds the lock and it is still valid, as this
        client counts it (no node is asked)."""
        return self._owned()


class AsyncLock(_LockBase):
    """A distributed lock for asyncio, shaped like
    ``redis.asyncio.lock.Lock``: ``async with client.async_lock(name)``.

    The engine works on its own thread; the event loop is never blocked.
    Cancelling a task that waits in ``acquire()`` cancels the acquire, and a
    lock granted at that very moment is released before the task ends: no
    key outlives it.
    """

    async def __aenter__(self) -> "AsyncLock":
        await self.acquire(raise_on_failure=True)
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        try:
            await self.release()
        except LockError:
            if self.raise_on_release_error:
                raise
            logger.warning("Lock was unlocked or no longer owned when exiting context manager.")

    async def acquire(
        self,
        blocking: Optional[bool] = None,
        blocking_timeout: Optional[float] = None,
        token: None = None,
        *,
        raise_on_failure: bool = False,
    ) -> bool:
        """As :meth:`Lock.acquire`, awaited."""
        self._check_token(token)
        max_wait = self._max_wait_ms(blocking, blocking_timeout)
        try:
            held = await self._acquire_native(self._spec, max_wait)
        except _NOT_GRANTED as e:
            if raise_on_failure:
                raise self._not_granted(e) from None
            return False
        self._set_held(held)
        return True

    async def _acquire_native(self, spec: "_native.AcquireSpec", max_wait: int) -> "_native.NativeLock":
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[_native.NativeLock]" = loop.create_future()
        op = checked(self.client._native.acquire_async(
            self.resource, spec, max_wait, loop, functools.partial(_settle, fut)))
        try:
            # Shielded: a cancelled task must not cancel `fut`, whose outcome
            # it still needs to see (below).
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            op.cancel()
            await self._after_cancel(fut)
            raise

    async def _after_cancel(self, fut: "asyncio.Future[_native.NativeLock]") -> None:
        """The engine ends a cancelled acquire promptly (releasing what its
        open round set); a grant that raced the cancellation is released here,
        before the cancelled task ends."""
        try:
            held = await fut
        except asyncio.CancelledError:
            return  # cancelled again: _settle releases a late grant
        except BaseException:
            return  # Cancelled, or any other failure: nothing is held
        try:
            await self._release_native(held)
        except RedlockError as e:
            logger.warning("releasing a lock granted as its acquire was cancelled: %s", e)

    async def _release_native(self, held: "_native.NativeLock") -> Tuple[int, Any]:
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[Tuple[int, Any]]" = loop.create_future()
        fut.add_done_callback(_consume)
        checked(self.client._native.release_async(held, loop, functools.partial(_settle, fut)))
        # The engine finishes a release it started even if this task is
        # cancelled meanwhile.
        return await asyncio.shield(fut)

    async def release(self) -> None:
        """As :meth:`Lock.release`, awaited."""
        held = self._held()
        if held is None:
            raise LockError("Cannot release a lock that's not owned or is already unlocked.",
                            lock_name=self.name)
        lost, lost_error = held.lost, self.lost_error
        self._set_held(None)
        deleted, nodes = await self._release_native(held)
        self._release_outcome(lost, lost_error, deleted, nodes)

    async def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """As :meth:`Lock.extend`, awaited."""
        held = self._held()
        if held is None:
            raise LockError("Cannot extend an unlocked lock", lock_name=self.name)
        ttl_ms = self._extend_ttl_ms(held, additional_time, replace_ttl)
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[None]" = loop.create_future()
        fut.add_done_callback(_consume)
        checked(self.client._native.extend_async(held, ttl_ms, False, self._min_validity_ms,
                                                 self._node_timeout_ms, loop,
                                                 functools.partial(_settle, fut)))
        await asyncio.shield(fut)
        return True

    async def reacquire(self) -> bool:
        """Resets the lock's ttl to ``timeout`` from now."""
        return await self.extend(self.timeout, replace_ttl=True)

    async def locked(self) -> bool:
        """As :meth:`Lock.locked`, awaited."""
        if self._owned():
            return True
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[Tuple[bool, int, int, Optional[int]]]" = loop.create_future()
        fut.add_done_callback(_consume)
        checked(self.client._native.inspect_async(
            self.resource, _INSPECT_TIMEOUT_MS, loop, functools.partial(_settle, fut)))
        held, _holding, _free, _ttl = await fut
        return bool(held)

    async def owned(self) -> bool:
        """As :meth:`Lock.owned` (asynchronous like redis-py's; no node is
        asked)."""
        return self._owned()
