"""Client: one engine (a loop thread and a connection per node) shared by
every lock made from it."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from types import TracebackType
from typing import Any, Dict, Iterable, List, Mapping, Optional, Type, TypeVar, Union

from . import _args, _native
from ._lock import AsyncLock, Lock, checked

__all__ = ["Client"]

_L = TypeVar("_L", bound=Lock)
_A = TypeVar("_A", bound=AsyncLock)

# Every open client, closed at interpreter exit (see _close_all_at_exit).
_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


class Client:
    """A Redlock client over N independent Redis masters.

    ``nodes`` lists them (``"host:port"``, ``"[::1]:port"``,
    ``"unix:/path"``, ``"redis://user:password@host:port/db"``,
    ``"sentinel://h1:26379,h2:26379/master"``, and over TLS ``"rediss://..."``,
    ``"sentinels://..."``); a majority must agree for a
    lock to be granted. The options are the library's ``ClientOptions``,
    under the same names, durations in seconds:

    - ``node_timeout``: how long one node may take to answer (None: a
      fraction of each lock's ttl, within 10-250 ms);
    - ``release_wait`` ("majority"): a release returns once a majority of
      the nodes deleted the key, the others' deletes still on their way;
      "every_node" waits for each node's answer, up to ``release_timeout``;
    - ``release_timeout`` (1.0), ``connect_timeout`` (1.0),
      ``reconnect_min`` (0.05), ``reconnect_max`` (2.0), ``busy_poll``
      (0.0001; 0 turns busy polling off);
    - ``blocking_spin`` (0.00015): a blocking call checks for its result this
      long, without the GIL, before it sleeps, while recent calls were that
      quick (0 turns it off; at most 0.01);
    - ``max_ttl`` (60.0): the longest ttl a lock may have;
    - ``restart_grace`` (None: max_ttl plus its drift allowance): how long a
      node that restarted, or that this client sees for the first time, sits
      out the vote. **0 only for nodes just started empty** (tests, a local
      cluster) or whose data survives restarts;
    - ``drift_factor`` (0.01), ``clock_check_interval`` (1.0; 0 off),
      ``exclude_suspect_clocks`` (True: a node whose clock is suspect, or
      not yet timed, does not vote), ``fencing`` (True);
    - ``username``/``password``: credentials for nodes whose address has none;
    - ``tls``: for ``rediss://`` and ``sentinels://`` nodes, a dict with
      ``ca_file``/``ca_dir`` (the CAs to trust; neither: the system's),
      ``cert_file``/``key_file`` (a client certificate, for mutual TLS),
      ``server_name`` (the name the certificates must be issued for; default:
      each node's host) and ``verify`` (True; False is for tests only and
      logs a warning).

    Connecting waits up to ``connect_timeout`` for the first connections;
    nodes that are down are retried in the background. The engine's log
    records go to ``logging.getLogger("redlock")`` (at the level it has when
    the client is made). ``close()`` (or ``with Client(...) as client``) stops
    the engine: waiting acquires end with :class:`ClientClosed`; granted
    locks expire with their ttl. Clients still open at interpreter exit are
    closed then. A client cannot be used in a process forked after it was
    made: make a new one there.
    """

    def __init__(
        self,
        nodes: Iterable[str],
        *,
        username: Optional[str] = None,
        password: Optional[str] = None,
        drift_factor: float = 0.01,
        node_timeout: Optional[float] = None,
        release_timeout: float = 1.0,
        release_wait: str = "majority",
        busy_poll: float = 0.0001,
        blocking_spin: float = 0.00015,
        connect_timeout: float = 1.0,
        reconnect_min: float = 0.05,
        reconnect_max: float = 2.0,
        max_ttl: float = 60.0,
        restart_grace: Optional[float] = None,
        clock_check_interval: float = 1.0,
        exclude_suspect_clocks: bool = True,
        fencing: bool = True,
        tls: Optional[Mapping[str, Any]] = None,
    ) -> None:
        node_list = _args.node_list(nodes)
        self._max_ttl_ms = _args.ms("max_ttl", max_ttl, allow_zero=False)
        self._native = checked(_native.connect(
            nodes=node_list,
            username=_args.text("username", username),
            password=_args.text("password", password),
            drift_factor=_args.number("drift_factor", drift_factor, 0, 0.5),
            node_timeout_ms=0 if node_timeout is None else _args.ms(
                "node_timeout", node_timeout, allow_zero=False),
            release_timeout_ms=_args.ms("release_timeout", release_timeout, allow_zero=False),
            release_wait_every_node=_args.choice(
                "release_wait", release_wait, ("majority", "every_node")) == "every_node",
            busy_poll_us=_args.us("busy_poll", busy_poll),
            blocking_spin_us=_args.us("blocking_spin", blocking_spin),
            connect_timeout_ms=_args.ms("connect_timeout", connect_timeout, allow_zero=False),
            reconnect_min_ms=_args.ms("reconnect_min", reconnect_min, allow_zero=False),
            reconnect_max_ms=_args.ms("reconnect_max", reconnect_max, allow_zero=False),
            max_ttl_ms=self._max_ttl_ms,
            restart_grace_ms=_args.optional_ms("restart_grace", restart_grace),
            clock_check_interval_ms=_args.ms("clock_check_interval", clock_check_interval),
            exclude_suspect_clocks=_args.flag("exclude_suspect_clocks", exclude_suspect_clocks),
            fencing=_args.flag("fencing", fencing),
            tls=_native.tls_options(**_args.tls(tls)),
            log_level=logging.getLogger("redlock").getEffectiveLevel(),
        ))
        _clients.add(self)

    # --- locks ---------------------------------------------------------------------

    def lock(
        self,
        name: Union[str, bytes],
        timeout: Optional[float] = 10.0,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: Optional[float] = None,
        lock_class: Optional[Type[_L]] = None,
        thread_local: bool = True,
        raise_on_release_error: bool = True,
        **options: Any,
    ) -> Lock:
        """A :class:`Lock` on ``name`` (str, encoded UTF-8, or bytes), with
        redis-py's arguments: ``timeout`` is the lock's ttl in seconds,
        ``sleep`` the pause between tries, ``blocking_timeout`` the longest
        wait (None: for ever). Keyword-only extras: ``auto_extend=True``
        keeps the lock alive until released (bounded by ``max_extensions``,
        100, and/or ``max_hold`` seconds; ``extend_at_remaining``, 0.5),
        ``retry_jitter`` (sleep / 2), ``wake_on_release`` (True),
        ``min_validity`` (0.001), ``node_timeout``, ``contest_gate`` (False)."""
        cls: Type[Lock] = Lock if lock_class is None else lock_class
        if not (isinstance(cls, type) and issubclass(cls, Lock)):
            raise TypeError(f"lock_class must be a subclass of redlock.Lock, not {cls!r}")
        return cls(self, name, timeout, sleep, blocking, blocking_timeout, thread_local,
                   raise_on_release_error, **options)

    def async_lock(
        self,
        name: Union[str, bytes],
        timeout: Optional[float] = 10.0,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: Optional[float] = None,
        lock_class: Optional[Type[_A]] = None,
        thread_local: bool = True,
        raise_on_release_error: bool = True,
        **options: Any,
    ) -> AsyncLock:
        """The same as :meth:`lock`, for asyncio: an :class:`AsyncLock`,
        shaped like ``redis.asyncio.Redis.lock()``'s."""
        cls: Type[AsyncLock] = AsyncLock if lock_class is None else lock_class
        if not (isinstance(cls, type) and issubclass(cls, AsyncLock)):
            raise TypeError(f"lock_class must be a subclass of redlock.AsyncLock, not {cls!r}")
        return cls(self, name, timeout, sleep, blocking, blocking_timeout, thread_local,
                   raise_on_release_error, **options)

    # --- state ---------------------------------------------------------------------

    @property
    def nodes(self) -> List[str]:
        """The nodes as given, passwords shown as ***."""
        return list(self._native.nodes)

    @property
    def quorum(self) -> int:
        """Votes needed for a grant: len(nodes) // 2 + 1."""
        return int(self._native.quorum)

    @property
    def closed(self) -> bool:
        return bool(self._native.closed)

    def connected(self) -> List[bool]:
        """Whether each node is connected now, in ``nodes`` order."""
        return list(checked(self._native.connected()))

    def health(self, timeout: float = 1.0) -> Dict[str, Any]:
        """What the client knows of each node, and whether a lock can be
        granted now: the nodes are asked (``INFO``, ``CONFIG GET``), waiting
        at most ``timeout`` seconds. A dict: ``quorum`` (votes a grant
        needs), ``voting`` (nodes that vote now), ``quorum_available``, and
        ``nodes``, a dict per node in ``nodes`` order (``reachable``,
        ``answering``, ``voting``, ``not_voting_reason``, ``error``,
        ``version``, ``rtt_us``, persistence, clock and TLS facts, and
        ``shards`` for a ``cluster://`` node), as the library's
        ``NodeHealth``. For a readiness probe, ``quorum_available`` is the
        answer."""
        timeout_ms = _args.ms("timeout", timeout, allow_zero=False)
        return dict(checked(self._native.health(timeout_ms)))

    def metrics(self) -> Dict[str, Any]:
        """The engine's counters and histograms (see the library's
        MetricsSnapshot), as a dict."""
        return dict(checked(self._native.metrics()))

    def prometheus(self, prefix: str = "redlock") -> str:
        """The metrics in the Prometheus text format."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        return str(checked(self._native.prometheus(prefix)))

    def close(self) -> None:
        """Stops the engine; idempotent. Acquires waiting in other threads
        or tasks end with :class:`ClientClosed`; granted locks are not
        released (they expire with their ttl)."""
        self._native.close()
        _clients.discard(self)

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<redlock.Client {state} nodes={self.nodes!r}>"


def _close_all_at_exit() -> None:
    """Closes the clients still open, before the interpreter finalizes: the
    engines' threads are joined while Python still runs, and threads that
    waited in a blocking call (now answered with ClientClosed) get back to
    Python before finalization would freeze them inside it."""
    for client in list(_clients):
        try:
            client.close()
        except Exception:  # noqa: BLE001 - nothing to report to at exit
            pass
    deadline = time.monotonic() + 2.0
    while _native.blocking_calls() > 0 and time.monotonic() < deadline:
        time.sleep(0.005)


def _forget_clients_after_fork() -> None:
    # The child has none of the parent's engine threads; its copies of the
    # clients refuse every call, and need no closing at exit.
    _clients.clear()


_native.set_main_thread(threading.main_thread().ident or 0)
atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_clients_after_fork)
