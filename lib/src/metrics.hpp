// metrics.hpp: the engine's counters. Written on the loop thread with relaxed
// atomic increments, read from any thread. The clock state, written once per
// clock sample, sits behind a mutex.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "redlock/metrics.hpp"

namespace redlock::detail {

class AtomicHistogram {
 public:
  explicit AtomicHistogram(const std::vector<double>& upper_bounds);
  void observe(double value) noexcept;
  [[nodiscard]] Histogram snapshot() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

class Metrics {
 public:
  Metrics(std::size_t nodes, std::shared_ptr<MetricsSink> sink);

  void acquire(std::chrono::microseconds latency, int rounds, const Error* error);
  void node_reply(std::size_t node, NodeStatus status, std::chrono::microseconds rtt);
  void contended_round();
  void extend(bool ok);
  void lock_lost();
  void late_reply_released(std::size_t node);
  void wakeup();
  void reconnect(std::size_t node);
  void restart(std::size_t node);
  void fence_raise();
  // Clock sanity: the state after each sample, and each time the node's
  // clock became suspect or sane again (told to the sink; counted as an
  // alarm when it became suspect).
  void clock_state(std::size_t node, std::optional<double> rate, bool suspect,
                   const std::string& reason);
  void clock_changed(std::size_t node, bool suspect, const std::string& reason);

  // What the engine knows of a node now, for the snapshot.
  struct NodeState {
    bool connected = false;  // and answering
    bool voting = false;
  };
  [[nodiscard]] MetricsSnapshot snapshot(const std::vector<std::string>& names,
                                         const std::vector<NodeState>& states,
                                         bool quorum_available) const;

 private:
  struct PerNode {
    PerNode();
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> restarts{0};
    std::atomic<std::uint64_t> timeouts{0};
    std::atomic<std::uint64_t> errors{0};
    AtomicHistogram rtt;
    std::atomic<std::uint64_t> clock_alarms{0};
    // Written once per clock sample: a lock is cheap enough there.
    mutable std::mutex clock_mutex;
    bool clock_suspect = false;
    std::string clock_reason;
    std::optional<double> clock_rate;
  };

  std::shared_ptr<MetricsSink> sink_;
  AtomicHistogram acquire_latency_;
  AtomicHistogram rounds_;
  std::atomic<std::uint64_t> granted_{0};
  std::array<std::atomic<std::uint64_t>, kErrorCodeCount> failed_{};
  std::atomic<std::uint64_t> contended_{0};
  std::atomic<std::uint64_t> extensions_{0};
  std::atomic<std::uint64_t> extensions_failed_{0};
  std::atomic<std::uint64_t> lost_{0};
  std::atomic<std::uint64_t> late_released_{0};
  std::atomic<std::uint64_t> fence_raises_{0};
  std::atomic<std::uint64_t> wakeups_{0};
  std::vector<std::unique_ptr<PerNode>> nodes_;
};

}  // namespace redlock::detail
