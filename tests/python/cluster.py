"""A local cluster of redis-server processes for the Python tests: free ports
on 127.0.0.1, one temporary directory, no persistence. Every server dies
with the test process (setpriv --pdeathsig), and stop() kills what is left,
whatever happened. A small RESP client checks what the nodes hold.

The "no lock key left behind" checks never assume the engine's key names:
lock keys are the keys with an expiry (SET ... PX); fencing counters, kept
on purpose next to them, have none.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Union

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SETPRIV = shutil.which("setpriv")


def time_scale() -> float:
    """REDLOCK_TIME_SCALE (the sanitizer presets set it): stretches bounds."""
    try:
        value = float(os.environ.get("REDLOCK_TIME_SCALE", "1"))
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


def scaled(seconds: float) -> float:
    return seconds * time_scale()


class RespError(Exception):
    pass


def _encode(args: Sequence[Union[str, bytes, int]]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RespError(f"unexpected reply {line!r}")


def command(port: int, *args: Union[str, bytes, int], timeout: float = 2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_encode(args))
        return _Reader(sock).reply()


def _server_env() -> Dict[str, str]:
    # Sanitizer runtimes preloaded for the tests (the asan preset) are not
    # for redis-server.
    return {k: v for k, v in os.environ.items()
            if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def _free_port() -> int:
    # Drawn below the ephemeral range (32768-60999), which outgoing
    # connections take their local ports from: one of those could take a port
    # the OS handed out here before the server binds it. 20000 and up are the
    # Redis Cluster tests' fixed ports.
    rng = random.SystemRandom()
    for _ in range(256):
        port = rng.randrange(10000, 20000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1 between 10000 and 19999")


class Node:
    def __init__(self, index: int, root: str, tls_args: Sequence[str] = ()) -> None:
        self.index = index
        self.dir = os.path.join(root, f"node{index + 1}")
        os.makedirs(self.dir, exist_ok=True)
        self.port = 0
        # With tls_args (the certificate options): a TLS port next to the
        # plain one, which the checks keep using.
        self.tls_args = list(tls_args)
        self.tls_port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.paused = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float) -> None:
        last_error = ""
        for _ in range(5):  # a free port can be taken between the check and the bind
            self.port = _free_port()
            argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log"),
                    "--enable-debug-command", "yes"]
            if self.tls_args:
                self.tls_port = _free_port()
                argv += ["--tls-port", str(self.tls_port)] + self.tls_args
            if SETPRIV:
                argv = [SETPRIV, "--pdeathsig", "KILL", "--"] + argv
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=_server_env(),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if command(self.port, "PING", timeout=0.5) == "PONG":
                        return
                except (OSError, RespError) as e:
                    last_error = str(e)
                time.sleep(0.01)
            self.kill()
        raise RuntimeError(f"redis-server node {self.index + 1} did not start: {last_error}; "
                           f"log: {os.path.join(self.dir, 'redis.log')}")

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.proc is not None and self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.terminate()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        self.paused = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, n: int = 5, tls_args: Sequence[str] = ()) -> None:
        self.root = tempfile.mkdtemp(prefix="redlock-py-")
        self.nodes_: List[Node] = [Node(i, self.root, tls_args) for i in range(n)]
        try:
            for node in self.nodes_:
                node.start(scaled(10))
        except BaseException:
            self.stop()
            raise

    @property
    def nodes(self) -> List[str]:
        return [n.address for n in self.nodes_]

    @property
    def tls_nodes(self) -> List[str]:
        """The nodes' TLS ports, as rediss:// addresses."""
        return [f"rediss://127.0.0.1:{n.tls_port}" for n in self.nodes_]

    def pause(self, i: int) -> None:
        self.nodes_[i].pause()

    def resume(self, i: int) -> None:
        self.nodes_[i].resume()

    def resume_all(self) -> None:
        for n in self.nodes_:
            n.resume()

    def command(self, i: int, *args: Union[str, bytes, int]):
        return command(self.nodes_[i].port, *args)

    def lock_keys(self, containing: Optional[bytes] = None) -> Dict[str, List[bytes]]:
        """Keys with an expiry on each running, unpaused node (optionally
        only those whose name contains `containing`)."""
        found: Dict[str, List[bytes]] = {}
        for node in self.nodes_:
            if not node.running or node.paused:
                continue
            keys: List[bytes] = []
            cursor = b"0"
            while True:
                cursor, batch = command(node.port, "SCAN", cursor, "COUNT", 1000)
                for key in batch:
                    if containing is not None and containing not in key:
                        continue
                    if command(node.port, "PTTL", key) >= 0:
                        keys.append(key)
                if cursor == b"0":
                    break
            if keys:
                found[node.address] = keys
        return found

    def wait_no_lock_keys(self, containing: Optional[bytes] = None, timeout: float = 3.0) -> None:
        """Waits (bounded) for releases in flight to land, then asserts that
        no lock key is left."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            left = self.lock_keys(containing)
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        assert not left, f"lock keys left behind: {left}"

    def delete_keys(self, containing: bytes) -> int:
        """Deletes the lock keys whose name contains `containing` on every
        running node (a lock lost behind its holder's back)."""
        deleted = 0
        found = self.lock_keys(containing)
        for node in self.nodes_:
            for key in found.get(node.address, []):
                deleted += command(node.port, "DEL", key)
        return deleted

    def stop(self) -> None:
        for node in self.nodes_:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)
