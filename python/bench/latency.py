"""Acquire + release latency from Python, against the CLI run once per call
(what a Python service does without the module).

    PYTHONPATH=build/release/python python3 python/bench/latency.py \
        --nodes 127.0.0.1:7001,...,127.0.0.1:7005 [--cli build/release/tools/cli/redlock] [--cycles 2000] \
        [--blocking-spin 0]

Each cycle takes and releases one uncontended lock (ttl 10 s); the figures
are per cycle, p50 and p99 of the cycles, after a warm-up. The nodes must
accept votes at once (started empty: --restart-grace 0 is passed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Callable, List

import redlock


def percentiles(samples: List[float]) -> str:
    samples = sorted(samples)
    p50 = samples[len(samples) // 2]
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return f"p50 {p50 * 1e6:8.0f} us   p99 {p99 * 1e6:8.0f} us   ({len(samples)} cycles)"


def timed(cycles: int, warmup: int, cycle: Callable[[int], None]) -> List[float]:
    for i in range(warmup):
        cycle(i)
    out = []
    for i in range(cycles):
        t0 = time.perf_counter()
        cycle(i)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--cli", help="the redlock command line tool, to compare with")
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--cli-cycles", type=int, default=200)
    ap.add_argument("--blocking-spin", type=float, default=None,
                    help="Client(blocking_spin=...) in seconds (default: the library's)")
    args = ap.parse_args()
    nodes = args.nodes.split(",")

    failed = {"sync": 0, "async": 0}
    extra = {} if args.blocking_spin is None else {"blocking_spin": args.blocking_spin}
    with redlock.Client(nodes, restart_grace=0, **extra) as client:
        def sync_cycle(i: int) -> None:
            lock = client.lock("bench:py", timeout=10)
            if lock.acquire(blocking=False):
                lock.release()
            else:  # a node slower than the node timeout, on a loaded machine
                failed["sync"] += 1

        print("python, Lock.acquire + release     ", percentiles(timed(args.cycles, 200, sync_cycle)))

        async def run_async() -> List[float]:
            out = []
            for i in range(args.cycles + 200):
                t0 = time.perf_counter()
                lock = client.async_lock("bench:py", timeout=10)
                if await lock.acquire(blocking=False):
                    await lock.release()
                else:
                    failed["async"] += 1
                if i >= 200:
                    out.append(time.perf_counter() - t0)
            return out

        print("python, AsyncLock.acquire + release", percentiles(asyncio.run(run_async())))
        if any(failed.values()):
            print(f"(not granted, counted anyway: {failed})")

    if args.cli:
        env = dict(os.environ, REDLOCK_RESTART_GRACE="0s")

        def cli_cycle(i: int) -> None:
            got = subprocess.run([args.cli, "--nodes", args.nodes, "acquire", "bench:cli", "--ttl", "10s",
                                  "--json"], capture_output=True, text=True, env=env, check=True)
            token = json.loads(got.stdout)["token"]
            subprocess.run([args.cli, "--nodes", args.nodes, "release", "bench:cli", token],
                           capture_output=True, env=env, check=True)

        print("CLI, redlock acquire + release      ", percentiles(timed(args.cli_cycles, 10, cli_cycle)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
