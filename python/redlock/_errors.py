"""The exceptions of the redlock package, one per engine error code.

Every error the engine reports is a :class:`RedlockError` carrying ``code``
(an :class:`ErrorCode`), ``message`` and ``nodes``: what each node answered
in the last round, as :class:`NodeAnswer` tuples ``(node, status, detail,
rtt)``. The lock errors also derive from redis-py's names, :class:`LockError`
and :class:`LockNotOwnedError`, so that code written against
``redis.lock()`` can keep its ``except`` clauses (import them from here).

Bad arguments are :class:`TypeError` or :class:`ValueError` (the engine's own
argument errors are :class:`InvalidArgument`, a :class:`ValueError`).
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple, Optional, Sequence, Tuple, Type, Union

__all__ = [
    "ErrorCode",
    "NodeAnswer",
    "RedlockError",
    "LockError",
    "LockNotOwnedError",
    "InvalidArgument",
    "HeldByAnother",
    "NoQuorum",
    "ValidityExhausted",
    "LockWaitTimeout",
    "Cancelled",
    "ClientClosed",
    "WrongThread",
    "InternalError",
    "NotOwner",
    "Expired",
    "LockLost",
]


class ErrorCode(enum.IntEnum):
    """redlock::ErrorCode, in the same order."""

    INVALID_ARGUMENT = 0
    HELD_BY_ANOTHER = 1
    NO_QUORUM = 2
    VALIDITY_EXHAUSTED = 3
    LOCK_WAIT_TIMEOUT = 4
    CANCELLED = 5
    SHUTTING_DOWN = 6
    WRONG_THREAD = 7
    INTERNAL = 8
    NOT_OWNER = 9
    EXPIRED = 10
    LOCK_LOST = 11


class NodeAnswer(NamedTuple):
    """What one node answered: ``status`` is one of "ok", "refused",
    "error", "timeout", "disconnected", "pending" (not answered when the
    round was decided) or "not voting"; ``rtt`` is in seconds (0.0 without a
    reply)."""

    node: str
    status: str
    detail: str
    rtt: float


class RedlockError(Exception):
    """Base of every error the engine reports."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str = "",
        nodes: Sequence[Union[NodeAnswer, Tuple[str, str, str, float]]] = (),
        *,
        code: Optional[ErrorCode] = None,
        lock_name: Union[str, bytes, None] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.nodes = [NodeAnswer(*n) for n in nodes]
        if code is not None:
            self.code = code
        self.lock_name = lock_name

    def __str__(self) -> str:
        text = self.message or self.code.name.lower().replace("_", " ")
        if self.nodes:
            answers = ", ".join(
                f"{n.node}={n.status}" + (f"({n.detail})" if n.detail else "")
                for n in self.nodes
            )
            text = f"{text} [{answers}]"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, nodes={self.nodes!r})"

    def __reduce__(self):  # picklable, e.g. across multiprocessing
        return (_rebuild, (type(self), self.message, tuple(self.nodes), int(self.code), self.lock_name))


def _rebuild(cls, message, nodes, code, lock_name):
    return cls(message, nodes, code=ErrorCode(code), lock_name=lock_name)


class LockError(RedlockError):
    """Acquiring, extending or releasing a lock failed (redis-py's name)."""


class LockNotOwnedError(LockError):
    """The lock is no longer held by its owner (redis-py's name)."""


class InvalidArgument(RedlockError, ValueError):
    """The engine refused an argument or an option."""

    code = ErrorCode.INVALID_ARGUMENT


class HeldByAnother(LockError):
    """A majority could not be had because another owner holds the lock."""

    code = ErrorCode.HELD_BY_ANOTHER


class NoQuorum(LockError):
    """Too few nodes said yes, for reasons other than another holder (nodes
    down, slow or not voting)."""

    code = ErrorCode.NO_QUORUM


class ValidityExhausted(LockError):
    """A majority agreed, but too late: no useful validity was left."""

    code = ErrorCode.VALIDITY_EXHAUSTED


class LockWaitTimeout(LockError):
    """``blocking_timeout`` ran out before the lock was granted."""

    code = ErrorCode.LOCK_WAIT_TIMEOUT


class Cancelled(LockError):
    """The operation was cancelled."""

    code = ErrorCode.CANCELLED


class ClientClosed(RedlockError, ValueError):
    """The client is closed (or was made before this process forked). A
    ValueError, like an operation on a closed file."""

    code = ErrorCode.SHUTTING_DOWN


class WrongThread(RedlockError):
    """A blocking call was made on the engine's own thread."""

    code = ErrorCode.WRONG_THREAD


class InternalError(RedlockError):
    """The engine itself failed."""

    code = ErrorCode.INTERNAL


class NotOwner(LockNotOwnedError):
    """A majority of the nodes no longer holds this lock's token."""

    code = ErrorCode.NOT_OWNER


class Expired(LockNotOwnedError):
    """The lock's validity had already ended."""

    code = ErrorCode.EXPIRED


class LockLost(LockNotOwnedError):
    """An automatically extended lock was lost: an extension was refused, or
    its validity ran out."""

    code = ErrorCode.LOCK_LOST


_BY_CODE: "dict[ErrorCode, Type[RedlockError]]" = {
    ErrorCode.INVALID_ARGUMENT: InvalidArgument,
    ErrorCode.HELD_BY_ANOTHER: HeldByAnother,
    ErrorCode.NO_QUORUM: NoQuorum,
    ErrorCode.VALIDITY_EXHAUSTED: ValidityExhausted,
    ErrorCode.LOCK_WAIT_TIMEOUT: LockWaitTimeout,
    ErrorCode.CANCELLED: Cancelled,
    ErrorCode.SHUTTING_DOWN: ClientClosed,
    ErrorCode.WRONG_THREAD: WrongThread,
    ErrorCode.INTERNAL: InternalError,
    ErrorCode.NOT_OWNER: NotOwner,
    ErrorCode.EXPIRED: Expired,
    ErrorCode.LOCK_LOST: LockLost,
}


def from_engine(error: Any) -> RedlockError:
    """The exception for an engine error value (redlock._native.EngineError:
    code, message, nodes). The extension returns those instead of raising:
    it never runs Python code to build an exception."""
    try:
        cls = _BY_CODE[ErrorCode(error.code)]
    except (ValueError, KeyError):
        return InternalError(f"engine error {error.code}: {error.message}", error.nodes)
    return cls(error.message, error.nodes)
