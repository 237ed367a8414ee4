// stats.hpp: latency samples and their percentiles, for redlock-bench.
//
// Plain values; not thread-safe (each thread keeps its own Samples and they
// are merged after the threads are joined).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace redlock::bench {

using Clock = std::chrono::steady_clock;

inline double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// Nearest-rank percentile of `sorted` (ascending), q in [0, 1]; 0 when empty.
inline double percentile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

// The latencies of one measured run, in microseconds, one entry per operation.
struct Samples {
  std::vector<double> cycle;    // the whole operation (acquire ... release)
  std::vector<double> acquire;  // the acquire call (with its retries, if any)
  std::vector<double> release;  // the release call (empty when not waited for)

  void reserve(std::size_t n) {
    cycle.reserve(n);
    acquire.reserve(n);
  }
  void append(const Samples& other) {
    cycle.insert(cycle.end(), other.cycle.begin(), other.cycle.end());
    acquire.insert(acquire.end(), other.acquire.begin(), other.acquire.end());
    release.insert(release.end(), other.release.begin(), other.release.end());
  }
  void sort() {
    std::sort(cycle.begin(), cycle.end());
    std::sort(acquire.begin(), acquire.end());
    std::sort(release.begin(), release.end());
  }
};

}  // namespace redlock::bench
