"""redlock: distributed locks over N independent Redis masters (the Redlock
algorithm), from Python.

The engine is the redlock C++ library (one event loop thread per client,
one connection per node); this package gives it the shape of redis-py's
locks::

    import redlock

    client = redlock.Client(nodes=["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"])
    with client.lock("report:42", timeout=10, blocking_timeout=5) as lock:
        ...  # held on a majority of the nodes; lock.fence orders the holders

    async with client.async_lock("report:42", timeout=10, blocking_timeout=5):
        ...

See python/README.md in the source tree.
"""

from __future__ import annotations

from . import _native
from ._client import Client
from ._errors import (
    Cancelled,
    ClientClosed,
    ErrorCode,
    Expired,
    HeldByAnother,
    InternalError,
    InvalidArgument,
    LockError,
    LockLost,
    LockNotOwnedError,
    LockWaitTimeout,
    NodeAnswer,
    NoQuorum,
    NotOwner,
    RedlockError,
    ValidityExhausted,
    WrongThread,
)
from ._lock import AsyncLock, Lock

__all__ = [
    "Client",
    "Lock",
    "AsyncLock",
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
    "__version__",
]

__version__: str = _native.version()
