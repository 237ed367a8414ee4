// redis_benchmark.hpp: runs `redis-benchmark` and reads its --csv output, for
// the benchmarks that put redlock's figures next to one plain Redis command.
//
// Not thread-safe in any interesting way: call from one thread. Errors are
// returned as std::nullopt with a human-readable reason in `why`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redlock::bench {

struct RedisBenchmarkResult {
  double rps = 0;     // requests per second
  double p50_us = 0;  // latency percentiles, microseconds
  double p99_us = 0;
};

// Runs `argv` (looked up in PATH, no shell) and returns its standard output.
// Fails when it cannot be started or exits with a non-zero status.
[[nodiscard]] std::optional<std::string> capture(const std::vector<std::string>& argv,
                                                 std::string& why);

// The line of `test` ("SET", "GET", ...) in redis-benchmark 7's --csv output:
//   "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
//   "SET","10741.14","0.087","0.024","0.087","0.119","0.183","4.183"
[[nodiscard]] std::optional<RedisBenchmarkResult> parse_redis_benchmark(const std::string& csv,
                                                                        std::string_view test,
                                                                        std::string& why);

// The command line for `requests` SETs against host:port from `clients`
// connections with `pipeline` commands in flight per connection.
[[nodiscard]] std::vector<std::string> redis_benchmark_set_argv(
    int port, int clients, int pipeline, long requests, const std::string& host = "127.0.0.1");

// capture() + parse_redis_benchmark() of the SET line.
[[nodiscard]] std::optional<RedisBenchmarkResult> run_redis_benchmark_set(
    int port, int clients, int pipeline, long requests, std::string& why,
    const std::string& host = "127.0.0.1");

}  // namespace redlock::bench
