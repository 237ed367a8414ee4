#!/usr/bin/env bash
# The tests: installs what is missing, builds with the given CMake preset
# (dev by default; asan and tsan build with sanitizers) and runs the suite
# with ctest. Each integration test starts its own redis-server processes on
# free ports of 127.0.0.1 and stops them, pass or fail. The Python module's
# pytest suites are ctest tests too (label "python"; ctest -L python).
#
#   scripts/test.sh            # dev preset: the default, lean run
#   scripts/test.sh asan       # AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/test.sh dev soak   # the long fault/soak runs (label "soak")
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-dev}
test_preset=${2:-$preset}
scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$test_preset"
