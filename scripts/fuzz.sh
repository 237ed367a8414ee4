#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, CMake preset "fuzz": clang, ASan and
# UBSan) and runs each for a bounded time, starting from its checked-in seed
# corpus (fuzz/corpus/<target>/). Fails on any crash, leak, sanitizer report
# or input slower than 10 s; the input that did it is kept in
# build/fuzz/runs/ (reproduce: build/fuzz/fuzz/redlock_fuzz_<target> FILE).
#
#   scripts/fuzz.sh            60 s per target
#   scripts/fuzz.sh 600        10 min per target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: seconds per target, a positive number" >&2; exit 2; }

scripts/install-deps.sh fuzz
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

targets=(reply_parser node_address duration cli_config chatroom_request)
runs=build/fuzz/runs
rm -rf "$runs"
mkdir -p "$runs"
failed=0
for target in "${targets[@]}"; do
  bin=build/fuzz/fuzz/redlock_fuzz_$target
  # New inputs go to a scratch corpus; the checked-in seeds stay as they are.
  mkdir -p "$runs/$target"
  log="$runs/$target.log"
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$runs/$target-" "$runs/$target" "fuzz/corpus/$target" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    corpus=$(find "$runs/$target" -type f | wc -l)
    echo "fuzz: $target: ${execs:-?} inputs in ${seconds} s, $corpus new corpus entries, no crash"
  else
    echo "fuzz: $target: FAILED (log $log)" >&2
    grep -E "ERROR|SUMMARY|==[0-9]+==|Test unit written|runtime error" "$log" | head -20 >&2 || tail -40 "$log" >&2
    failed=1
  fi
done
exit $failed
