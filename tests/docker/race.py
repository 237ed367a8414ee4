#!/usr/bin/env python3
"""The chatroom create race against running chatroomd replicas.

  race.py --name ROOM [--requests N] [--concurrency C] URL [URL ...]

Fires N POST /chatrooms {"name": ROOM} spread over the replicas (request i
goes to URL i % len), from C threads released together, and prints one JSON
object: the count of each status ("201", "200", "503", ...; "error" for no
HTTP answer), the sum of chatroom_unique_conflicts_total over the replicas'
/metrics before and after, and the elapsed seconds. chatroom-race does the
same against replicas it starts itself; this one takes replicas that run
elsewhere (docker/compose.yaml's, through their published ports).

Exit status: 0 when every request got an answer (the caller judges the
counts), 1 otherwise, 2 bad usage.
"""
import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request


def post(url, body, timeout):
    req = urllib.request.Request(url + "/chatrooms", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            res.read()
            return str(res.status)
    except urllib.error.HTTPError as e:
        return str(e.code)
    except (urllib.error.URLError, OSError):
        return "error"


def conflicts(urls, timeout):
    total = 0.0
    for url in urls:
        with urllib.request.urlopen(url + "/metrics", timeout=timeout) as res:
            for line in res.read().decode().splitlines():
                if line.startswith("chatroom_unique_conflicts_total"):
                    total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()

    body = json.dumps({"name": args.name}).encode()
    before = conflicts(args.urls, args.timeout)
    statuses = [None] * args.requests
    start = threading.Barrier(args.concurrency)
    next_index = iter(range(args.requests))
    lock = threading.Lock()

    def worker():
        start.wait()
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            statuses[i] = post(args.urls[i % len(args.urls)], body, args.timeout)

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    after = conflicts(args.urls, args.timeout)

    counts = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    print(json.dumps({"name": args.name, "requests": args.requests, "status": counts,
                      "unique_conflicts": after - before, "seconds": round(elapsed, 3)}))
    return 1 if "error" in counts else 0


if __name__ == "__main__":
    sys.exit(main())
