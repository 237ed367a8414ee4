"""The create race: N concurrent ``POST /chatrooms`` for one room name,
spread over the replicas. With the lock, exactly one request creates the
room (201) and the others find it (200).

    python3 race.py --replicas http://127.0.0.1:8001,http://127.0.0.1:8002 --name general

or, all in one (five redis-server nodes and three replicas on free ports in
a temporary directory, stopped at the end):

    python3 race.py --spawn [--pause 2]

Exit status 0 when exactly one request answered 201, the others 200, and
the store holds exactly one room (one "room created" message, one event).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))


async def race(urls: Sequence[str], name: str, requests: int,
               timeout: float = 30.0) -> Tuple[collections.Counter, float]:
    """Fires `requests` concurrent creates of `name`, round robin over
    `urls`. Returns the count of each status (or exception name) and the
    time taken."""
    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        start = asyncio.Event()

        async def one(i: int):
            await start.wait()
            try:
                r = await http.post(f"{urls[i % len(urls)]}/chatrooms", json={"name": name})
                return r.status_code, r.json()
            except httpx.HTTPError as e:
                return type(e).__name__, None

        tasks = [asyncio.create_task(one(i)) for i in range(requests)]
        await asyncio.sleep(0.05)  # every task is waiting on the start line
        t0 = time.monotonic()
        start.set()
        results = await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
    statuses = collections.Counter(status for status, _ in results)
    return statuses, elapsed


def audit(url: str, name: str) -> Dict[str, int]:
    return httpx.get(f"{url}/audit/{name}", timeout=10).json()


def verdict(statuses: collections.Counter, store: Dict[str, int], requests: int) -> bool:
    return (statuses.get(201, 0) == 1 and statuses.get(200, 0) == requests - 1
            and store == {"rooms": 1, "created_messages": 1, "events": 1})


# --- --spawn: everything on free ports in a temporary directory -----------------------


def free_port() -> int:
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


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the replica exited ({proc.returncode})")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}: not ready after {timeout} s")


def stop(procs: List[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def redis_nodes(n: int, root: str) -> Iterator[List[subprocess.Popen]]:
    procs: List[subprocess.Popen] = []
    ports: List[int] = []
    try:
        for i in range(n):
            port = free_port()
            d = os.path.join(root, f"node{i + 1}")
            os.makedirs(d)
            # setpriv: the server dies with this process, even if it is killed.
            setpriv = shutil.which("setpriv")
            prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
            procs.append(subprocess.Popen(
                prefix + [shutil.which("redis-server") or "redis-server", "--port", str(port),
                 "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d,
                 "--logfile", os.path.join(d, "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports.append(port)
        for port, p in zip(ports, procs):
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(64).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start")
                time.sleep(0.02)
        for p, port in zip(procs, ports):
            p.port = port  # type: ignore[attr-defined]
        yield procs
    finally:
        stop(procs)


def spawn(nodes: Sequence[str], db: str, env: Optional[Dict[str, str]] = None,
          python: str = sys.executable) -> Tuple[subprocess.Popen, str]:
    """Starts one uvicorn process running app:app on a free port; returns it
    and its base URL (wait_http() tells when it is ready)."""
    port = free_port()
    child_env = dict(os.environ)
    child_env.update({"REDLOCK_NODES": ",".join(nodes), "CHAT_DB": db})
    child_env.update(env or {})
    proc = subprocess.Popen(
        [python, "-m", "uvicorn", "app:app", "--app-dir", HERE, "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=child_env)
    return proc, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def replicas(n: int, nodes: Sequence[str], db: str, env: Optional[Dict[str, str]] = None,
             python: str = sys.executable) -> Iterator[List[str]]:
    """n replicas sharing `db`, stopped at the end."""
    started = []
    try:
        for _ in range(n):
            started.append(spawn(nodes, db, env, python))
        for proc, url in started:
            wait_http(url, proc, 60)
        yield [url for _, url in started]
    finally:
        stop([proc for proc, _ in started])


def report(label: str, statuses: collections.Counter, store: Dict[str, int], elapsed: float,
           requests: int) -> bool:
    ok = verdict(statuses, store, requests)
    other = {k: v for k, v in statuses.items() if k not in (200, 201)}
    print(f"{label:<28} requests {requests:>4}  201 {statuses.get(201, 0):>3}  "
          f"200 {statuses.get(200, 0):>3}  other {other or '-'}  rooms {store['rooms']}  "
          f"created-messages {store['created_messages']}  events {store['events']}  "
          f"{elapsed:.2f} s  {'OK' if ok else 'FAILED'}")
    return ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", help="comma-separated base URLs of running replicas")
    ap.add_argument("--spawn", action="store_true", help="start 5 lock nodes and the replicas here")
    ap.add_argument("--count", type=int, default=3, help="replicas to start with --spawn (3)")
    ap.add_argument("--pause", type=int, default=0, help="with --spawn: also race with this many of the 5 nodes paused (SIGSTOP)")
    ap.add_argument("--name", default="general")
    ap.add_argument("--requests", type=int, default=100)
    args = ap.parse_args(argv)
    if args.replicas:
        urls = [u.strip().rstrip("/") for u in args.replicas.split(",") if u.strip()]
        statuses, elapsed = asyncio.run(race(urls, args.name, args.requests))
        return 0 if report("race", statuses, audit(urls[0], args.name), elapsed, args.requests) else 1
    if not args.spawn:
        ap.error("give --replicas URL,... or --spawn")
    # A timeout's SIGTERM still stops the servers and replicas (finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = tempfile.mkdtemp(prefix="chat-race-")
    ok = True
    try:
        with redis_nodes(5, root) as nodes:
            addresses = [f"127.0.0.1:{p.port}" for p in nodes]  # type: ignore[attr-defined]
            # The nodes were just started empty: they may vote at once.
            env = {"REDLOCK_RESTART_GRACE": "0"}
            with replicas(args.count, addresses, os.path.join(root, "chat.db"), env) as urls:
                statuses, elapsed = asyncio.run(race(urls, args.name, args.requests))
                ok &= report("with the lock", statuses, audit(urls[0], args.name), elapsed, args.requests)
                if args.pause:
                    for p in nodes[:args.pause]:
                        os.kill(p.pid, signal.SIGSTOP)
                    try:
                        name = args.name + "-paused"
                        statuses, elapsed = asyncio.run(race(urls, name, args.requests))
                        ok &= report(f"{args.pause} of 5 nodes paused", statuses, audit(urls[0], name),
                                     elapsed, args.requests)
                    finally:
                        for p in nodes[:args.pause]:
                            os.kill(p.pid, signal.SIGCONT)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
