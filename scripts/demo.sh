#!/usr/bin/env bash
# The main job: installs what is missing, builds redlock, starts a local
# 5-node Redis cluster on 127.0.0.1, shows quorum, contention and a grant with
# 2 of 5 nodes stopped, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target redlock-demo >/dev/null
exec build/release/tools/demo/redlock-demo "$@"
