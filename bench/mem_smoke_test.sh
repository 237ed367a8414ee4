#!/bin/sh
# Smoke test of redlock-bench --scenario mem (ctest label bench): a short run
# whose line must carry the bytes per held lock and per waiting acquire (a
# future's and a callback's), with every lock taken and every waiter counted.
# Usage: mem_smoke_test.sh PATH/TO/redlock-bench
set -u
B=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
out=$(timeout 120 "$B" --scenario mem --mem-locks 64 --rep 1 --base-requests 0 --max-noise 0) ||
  fail "the run failed"
echo "$out"
line=$(echo "$out" | grep '"label":"mem"') || fail "no mem line"
for field in bytes_per_lock bytes_per_waiter bytes_per_callback_waiter lock_object_bytes; do
  echo "$line" | grep -q "\"$field\":[0-9]" || fail "no $field"
done
echo "$line" | grep -q '"errors":0,' || fail "not every lock was taken"
echo "$line" | grep -q '"locks":64,' || fail "locks is not 64"
echo "$line" | grep -q '"waiters":64' || fail "waiters is not 64"
echo "$line" | grep -q '"callback_waiters":64' || fail "callback_waiters is not 64"
exit 0
