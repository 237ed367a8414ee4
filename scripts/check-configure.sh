#!/usr/bin/env bash
# Configures (no build) each developer part on its own: REDLOCK_BUILD_TESTS,
# REDLOCK_BUILD_TOOLS or REDLOCK_BUILD_BENCH alone, and none of them (the
# library alone). All three together is what every other build does. Cheap:
# a few seconds per configuration, nothing is compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/redlock-configure.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
for parts in "ON OFF OFF" "OFF ON OFF" "OFF OFF ON" "OFF OFF OFF"; do
  read -r tests tools bench <<<"$parts"
  name="tests=$tests tools=$tools bench=$bench"
  dir="$work/$tests-$tools-$bench"
  if cmake -S . -B "$dir" -DREDLOCK_BUILD_TESTS="$tests" -DREDLOCK_BUILD_TOOLS="$tools" \
      -DREDLOCK_BUILD_BENCH="$bench" >"$dir.log" 2>&1; then
    echo "check-configure: $name: ok"
  else
    echo "check-configure: $name: FAILED" >&2
    sed 's/^/    /' "$dir.log" >&2
    failed=1
  fi
done
exit $failed
