# Type stubs of redlock._native, the extension module behind the redlock
# package (private: use redlock.Client, Lock and AsyncLock).
import asyncio
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

_NodeTuple = Tuple[str, str, str, float]

class EngineError:
    """An engine error as a value; redlock turns it into its exception."""
    @property
    def code(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def nodes(self) -> Tuple[_NodeTuple, ...]: ...

def connect(
    *,
    nodes: List[str],
    username: str,
    password: str,
    drift_factor: float,
    node_timeout_ms: int,
    release_timeout_ms: int,
    busy_poll_us: int,
    blocking_spin_us: int,
    connect_timeout_ms: int,
    reconnect_min_ms: int,
    reconnect_max_ms: int,
    max_ttl_ms: int,
    restart_grace_ms: Optional[int],
    clock_check_interval_ms: int,
    exclude_suspect_clocks: bool,
    fencing: bool,
    tls: "TlsOptions",
    log_level: int,
) -> Union["NativeClient", EngineError]: ...
class TlsOptions: ...
def tls_options(
    *,
    ca_file: str,
    ca_dir: str,
    cert_file: str,
    key_file: str,
    server_name: str,
    verify: bool,
) -> TlsOptions: ...
def set_main_thread(ident: int) -> None: ...
def blocking_calls() -> int: ...
def version() -> str: ...
def defaults() -> dict[str, Any]: ...
def error_code_names() -> List[str]: ...

class AcquireSpec:
    def __init__(
        self,
        *,
        ttl_ms: int,
        retry_delay_ms: int,
        retry_jitter_ms: int,
        min_validity_ms: int,
        node_timeout_ms: int,
        wake_on_release: bool,
        auto_extend: bool,
        extend_at_remaining: float,
        extend_ttl_ms: int,
        max_extensions: int,
        max_hold_ms: int,
        contest_gate: bool = ...,
    ) -> None: ...
    @property
    def ttl_ms(self) -> int: ...
    @property
    def auto_extend(self) -> bool: ...

class NativeLock:
    @property
    def resource(self) -> bytes: ...
    @property
    def token(self) -> str: ...
    @property
    def fence(self) -> int: ...
    @property
    def ttl(self) -> float: ...
    @property
    def remaining(self) -> float: ...
    @property
    def expired(self) -> bool: ...
    @property
    def votes(self) -> Tuple[_NodeTuple, ...]: ...
    @property
    def released(self) -> bool: ...
    @property
    def auto_extended(self) -> bool: ...
    @property
    def lost(self) -> bool: ...
    @property
    def lost_error(self) -> Optional[EngineError]: ...
    def abandon(self) -> None: ...

class AsyncOp:
    def cancel(self) -> None: ...

class NativeClient:
    # Engine errors are returned as EngineError values, never raised.
    def acquire(self, resource: bytes, spec: AcquireSpec, max_wait_ms: int) -> Union[NativeLock, EngineError]: ...
    def acquire_async(
        self,
        resource: bytes,
        spec: AcquireSpec,
        max_wait_ms: int,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[[Any], None],
    ) -> Union[AsyncOp, EngineError]: ...
    def release(self, lock: NativeLock) -> Union[Tuple[int, Tuple[_NodeTuple, ...]], EngineError]: ...
    def release_async(
        self, lock: NativeLock, loop: asyncio.AbstractEventLoop, callback: Callable[[Any], None]
    ) -> Optional[EngineError]: ...
    def release_nowait(self, lock: NativeLock) -> None: ...
    def health(self, timeout_ms: int) -> Union[Dict[str, Any], EngineError]: ...
    def inspect(
        self, resource: Union[str, bytes], timeout_ms: int
    ) -> Union[Tuple[bool, int, int, Optional[int]], EngineError]: ...
    def inspect_async(
        self, resource: Union[str, bytes], timeout_ms: int, loop: Any, callback: Callable[[Any], None]
    ) -> Optional[EngineError]: ...
    def extend(
        self,
        lock: NativeLock,
        ttl_ms: int,
        recreate_missing: bool,
        min_validity_ms: int,
        node_timeout_ms: int,
    ) -> Optional[EngineError]: ...
    def extend_async(
        self,
        lock: NativeLock,
        ttl_ms: int,
        recreate_missing: bool,
        min_validity_ms: int,
        node_timeout_ms: int,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[[Any], None],
    ) -> Optional[EngineError]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def forked(self) -> bool: ...
    @property
    def nodes(self) -> List[str]: ...
    @property
    def quorum(self) -> int: ...
    def connected(self) -> Union[List[bool], EngineError]: ...
    def metrics(self) -> Union[dict, EngineError]: ...
    def prometheus(self, prefix: str = ...) -> Union[str, EngineError]: ...
