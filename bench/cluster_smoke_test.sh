#!/bin/sh
# Smoke test of redlock-bench --cluster-shards (ctest label bench): usage
# errors, then a short scenario b against one plain node and against Redis
# Clusters of 1 and 3 masters, whose lines must carry the topology, the
# spread of the resources over the masters and the CPU split.
# Usage: cluster_smoke_test.sh PATH/TO/redlock-bench
set -u
B=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

expect_usage() {
  "$B" "$@" >/dev/null 2>&1
  code=$?
  [ "$code" -ne 0 ] || fail "redlock-bench $* was accepted"
}
expect_usage --scenario d --cluster-shards 3
expect_usage --scenario b --cluster-shards 0
expect_usage --scenario b --cluster-shards 17
expect_usage --scenario b --cluster-shards 3 --tls both

out=$(timeout 120 "$B" --scenario b --nodes 1 --cluster-shards 1,3 --seconds 0.5 \
  --warmup-s 0.2 --inflight 32 --base-requests 0 --max-noise 0 --cmd-timeout-ms 500) ||
  fail "the run failed"
echo "$out"
check() {
  echo "$out" | grep -q "$1" || fail "no line matches $1"
}
check '"label":"b/32/1n"'
check '"cluster_shards":1,.*"label":"b/32/cluster1",.*"shards_used":1,'
check '"cluster_shards":3,.*"label":"b/32/cluster3",.*"shards_used":3,'
for label in b/32/1n b/32/cluster1 b/32/cluster3; do
  line=$(echo "$out" | grep "\"label\":\"$label\"")
  for field in ops_per_s cpu_client_us_per_op cpu_servers_us_per_op cpu_servers_busiest_cores; do
    echo "$line" | grep -q "\"$field\":" || fail "$label has no $field"
  done
done
exit 0
