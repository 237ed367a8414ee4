#!/bin/sh
# Smoke test of redlock-scriptcost (ctest label bench): a short run must
# print one line per kind, each with the server's CPU per operation, and
# every command must have done its work (the tool fails otherwise).
# Usage: scriptcost_smoke_test.sh PATH/TO/redlock-scriptcost
set -u
B=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
out=$(timeout 120 "$B" --count 2000 --rep 1) || fail "the run failed"
echo "$out"
for kind in set script-set function-set set-incr fenced release; do
  line=$(echo "$out" | grep "\"kind\":\"$kind\"") || fail "no $kind line"
  echo "$line" | grep -q '"server_cpu_us_per_op":[0-9]' || fail "$kind: no server_cpu_us_per_op"
  echo "$line" | grep -q '"usec_per_call":[0-9]' || fail "$kind: no usec_per_call"
done
"$B" --port 1 >/dev/null 2>&1 && fail "--port without --pid was accepted"
"$B" --port 70000 --pid 1 >/dev/null 2>&1 && fail "--port 70000 was accepted"
exit 0
