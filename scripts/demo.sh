#!/usr/bin/env bash
# The main job: installs what is missing, builds redlock and runs the chatroom
# create race (tools/chatroom/chatroom-race): a local 5-node Redis cluster and
# 3 chatroomd replicas sharing one SQLite file, all on 127.0.0.1 in a
# temporary directory; 100 concurrent "create room X" requests spread over the
# replicas, with the lock, with 2 of the 5 lock nodes frozen, and without the
# lock. It prints a table and stops everything it started.
#
#   scripts/demo.sh            # the chatroom race
#   scripts/demo.sh --engine   # the engine demo: quorum, contention, 2 of 5 nodes stopped
#
# Any other arguments go to the program (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
if [[ "${1:-}" == "--engine" ]]; then
  shift
  cmake --build --preset release --target redlock-demo >/dev/null
  exec build/release/tools/demo/redlock-demo "$@"
fi
cmake --build --preset release --target chatroom-race chatroomd >/dev/null
exec build/release/tools/chatroom/chatroom-race "$@"
