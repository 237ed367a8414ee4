// redlock_logic_bench: the CPU cost of the engine's pure parts, no network.
//
// What one acquire pays besides the round trips: a token, the SET command's
// encoding, parsing the replies and tallying the votes; and what a failed
// round pays to decide when to retry.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics.hpp"
#include "protocol.hpp"
#include "retry.hpp"
#include "rules.hpp"
#include "token.hpp"

namespace {

using redlock::NodeStatus;
using redlock::detail::Clock;
using std::chrono::milliseconds;

constexpr milliseconds kTtl{10000};
constexpr double kDriftFactor = 0.01;

// Five nodes, decided (granted) by the third yes, as in the common case.
void BM_RoundGrantedAtThirdYes(benchmark::State& state) {
  const auto start = Clock::now();
  const auto reply_at = start + std::chrono::microseconds(300);
  for (auto _ : state) {
    redlock::detail::Round round(5, start, kTtl, kDriftFactor, milliseconds(1));
    round.vote(0, NodeStatus::kOk, reply_at);
    round.vote(3, NodeStatus::kOk, reply_at);
    round.vote(1, NodeStatus::kOk, reply_at);
    if (round.state() != redlock::detail::Round::State::kGranted) {
      state.SkipWithError("the round was not granted at the third yes");
      break;
    }
    benchmark::DoNotOptimize(round.valid_until());
  }
}
BENCHMARK(BM_RoundGrantedAtThirdYes);

void BM_NextRetry(benchmark::State& state) {
  const redlock::detail::RetryPolicy policy{milliseconds(5000), 0, milliseconds(200),
                                            milliseconds(100)};
  const auto call_start = Clock::now();
  const auto now = call_start + milliseconds(700);
  double unit = 0.0;
  for (auto _ : state) {
    // Walk the jitter band so the branch pattern is not constant.
    unit += 0.137;
    if (unit >= 1.0) unit -= 1.0;
    benchmark::DoNotOptimize(unit);
    auto decision = redlock::detail::next_retry(policy, 3, call_start, now, unit);
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_NextRetry);

void BM_SetNxPxCommand(benchmark::State& state) {
  const std::string key = "orders:42";
  const std::string token = "0123456789abcdef0123456789abcdef";
  for (auto _ : state) {
    auto wire = redlock::detail::set_nx_px_command(key, token, kTtl.count());
    benchmark::DoNotOptimize(wire.data());
  }
}
BENCHMARK(BM_SetNxPxCommand);

// One parser per connection, fed reply after reply, as the engine does.
void parse_replies(benchmark::State& state, std::string_view wire) {
  redlock::detail::ReplyParser parser;
  for (auto _ : state) {
    if (!parser.feed(wire.data(), wire.size())) {
      state.SkipWithError("feed failed");
      break;
    }
    auto reply = parser.next();
    if (!reply || !reply->has_value()) {
      state.SkipWithError("no reply parsed");
      break;
    }
    benchmark::DoNotOptimize(reply->value().integer);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(wire.size()));
}

// The reply to a granted SET NX PX.
void BM_ParseStatusOk(benchmark::State& state) { parse_replies(state, "+OK\r\n"); }
BENCHMARK(BM_ParseStatusOk);

// The reply to a release that deleted the key.
void BM_ParseInteger(benchmark::State& state) { parse_replies(state, ":1\r\n"); }
BENCHMARK(BM_ParseInteger);

// One getrandom(2) system call per token.
void BM_MakeToken(benchmark::State& state) {
  for (auto _ : state) {
    auto token = redlock::detail::make_token();
    if (!token) {
      state.SkipWithError("make_token failed");
      break;
    }
    benchmark::DoNotOptimize(token->data());
  }
}
BENCHMARK(BM_MakeToken);

}  // namespace

// What the engine's metrics add to one acquire on 5 nodes: the acquire's
// latency and rounds, and five node replies (relaxed atomic increments and
// histogram buckets). Compare with an acquire's cost in redlock_acquire_bench.
void BM_MetricsPerAcquire(benchmark::State& state) {
  redlock::detail::Metrics metrics(5, nullptr);
  std::int64_t i = 0;
  for (auto _ : state) {
    ++i;
    for (std::size_t node = 0; node < 5; ++node) {
      metrics.node_reply(node, redlock::NodeStatus::kOk, std::chrono::microseconds(100 + i % 50));
    }
    metrics.acquire(std::chrono::microseconds(140 + i % 100), 1, nullptr);
  }
  benchmark::DoNotOptimize(metrics.snapshot({}, {}, false).acquires_granted);
}
BENCHMARK(BM_MetricsPerAcquire);

BENCHMARK_MAIN();
