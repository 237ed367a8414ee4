// redlock/metrics.hpp: what the engine counts, as a snapshot, in the
// Prometheus text format, or routed elsewhere through a MetricsSink.
//
// The engine updates its counters on its loop thread with relaxed atomic
// increments; Client::metrics() reads them from any thread. A snapshot is a
// plain value. MetricsSink methods run on the loop thread and must not block.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redlock/error.hpp"
#include "redlock/export.hpp"

namespace redlock {

struct Histogram {
  std::vector<double> upper_bounds;   // bucket upper bounds; the last bucket is +Inf
  std::vector<std::uint64_t> counts;  // per bucket (not cumulative), upper_bounds.size() + 1
  std::uint64_t count = 0;
  double sum = 0;
};

struct NodeMetrics {
  std::string node;
  // Connected and answering: no command has gone unanswered for longer
  // than the stall threshold (1 s). A stopped node is not "connected".
  bool connected = false;
  // Counts toward a majority now (connected, not sitting out a restart
  // grace, clock not excluded).
  bool voting = false;
  std::uint64_t reconnects = 0;  // connections established after the first
  std::uint64_t restarts = 0;    // run_id changes seen (restart-aware voting)
  std::uint64_t timeouts = 0;    // commands not answered within the node timeout
  std::uint64_t errors = 0;      // error replies and connection failures
  Histogram rtt_us;              // send to reply, microseconds
  // Clock sanity (ClientOptions::clock_check_interval): the node's clock
  // runs off rate or jumped, and why ("clock runs fast (1.50x) over 3.2 s",
  // "clock jumped +5.2 s"; "" when not suspect).
  bool clock_suspect = false;
  std::string clock_reason;
  // The node's clock rate relative to the client's monotonic clock over the
  // last window (1: the same rate); unset until measured.
  std::optional<double> clock_rate;
  std::uint64_t clock_alarms = 0;  // times the clock became suspect
};

inline constexpr std::size_t kErrorCodeCount = 12;

struct MetricsSnapshot {
  Histogram acquire_latency_us;  // call to outcome, granted or not
  Histogram rounds_per_acquire;
  std::uint64_t acquires_granted = 0;
  // Failed acquires by final error, indexed by static_cast<size_t>(ErrorCode).
  std::array<std::uint64_t, kErrorCodeCount> acquires_failed{};
  std::uint64_t contended_rounds = 0;  // rounds that found the resource held
  std::uint64_t extensions = 0;
  std::uint64_t extensions_failed = 0;
  std::uint64_t locks_lost = 0;
  // Yes votes that arrived after their round had failed; their keys were
  // released by that round's cleanup.
  std::uint64_t late_replies_released = 0;
  // Grants whose fence had to be raised on a majority before the lock was
  // handed out (the granting nodes' counters disagreed): one round trip more.
  std::uint64_t fence_raises = 0;
  // Retries started early because a release was announced (wake-on-release).
  std::uint64_t wakeups = 0;
  std::vector<NodeMetrics> nodes;
  // A majority of the nodes votes now (Client::quorum_available()).
  bool quorum_available = false;
};

// The snapshot in the Prometheus text exposition format, every metric
// prefixed with `prefix` ("redlock_acquires_total", ...).
[[nodiscard]] REDLOCK_EXPORT std::string to_prometheus(const MetricsSnapshot& snapshot,
                                                       std::string_view prefix = "redlock");

// Receives every event the engine counts, as it happens, on the loop thread.
// Override what you need; the defaults do nothing.
class REDLOCK_EXPORT MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // `error` is null when the lock was granted.
  virtual void on_acquire(std::chrono::microseconds /*latency*/, int /*rounds*/,
                          const Error* /*error*/) {}
  virtual void on_node_reply(std::size_t /*node*/, NodeStatus /*status*/,
                             std::chrono::microseconds /*rtt*/) {}
  virtual void on_contended_round() {}
  virtual void on_extend(bool /*ok*/) {}
  virtual void on_lock_lost() {}
  virtual void on_late_reply_released(std::size_t /*node*/) {}
  virtual void on_wakeup() {}
  virtual void on_reconnect(std::size_t /*node*/) {}
  // The node's run_id changed: it restarted and sits out restart_grace.
  virtual void on_node_restart(std::size_t /*node*/) {}
  // The node's clock became suspect (`reason` says why), or sane again
  // (`suspect` false, `reason` empty).
  virtual void on_node_clock(std::size_t /*node*/, bool /*suspect*/, std::string_view /*reason*/) {}
};

}  // namespace redlock
