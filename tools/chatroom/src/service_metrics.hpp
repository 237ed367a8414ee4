// service_metrics.hpp: ServiceMetrics, what chatroomd counts, rendered in the
// Prometheus text format for GET /metrics.
//
// Threading: every method is thread-safe (one mutex; a few increments per
// request).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace redlock::chatroom {

// The route template a request matched, for metric labels: "POST /chatrooms",
// "GET /chatrooms/{name}", ..., or "other".
[[nodiscard]] std::string_view route_of(std::string_view method, std::string_view path);

class ServiceMetrics {
 public:
  static constexpr std::array<double, 13> kLatencyBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void observe_request(std::string_view route, int status, double seconds);
  void room_created();
  // A create that lost the race at the store's UNIQUE constraint: two
  // requests got past the look-up for one name, which the lock prevents.
  void unique_conflict();
  void lock_wait_timeout();
  // A create that gave up because too few lock nodes answered or voted.
  void lock_unavailable();
  void lock_lost_before_commit();

  [[nodiscard]] std::uint64_t unique_conflicts() const;

  // chatroom_http_requests_total{route,status},
  // chatroom_http_request_duration_seconds{route} (histogram),
  // chatroom_rooms_created_total, chatroom_unique_conflicts_total,
  // chatroom_lock_wait_timeouts_total, chatroom_lock_unavailable_total,
  // chatroom_lock_lost_total.
  [[nodiscard]] std::string render() const;

 private:
  struct Latency {
    std::array<std::uint64_t, kLatencyBuckets.size() + 1> counts{};
    std::uint64_t count = 0;
    double sum = 0;
  };

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Latency> latency_;
  std::uint64_t rooms_created_ = 0;
  std::uint64_t unique_conflicts_ = 0;
  std::uint64_t lock_wait_timeouts_ = 0;
  std::uint64_t lock_unavailable_ = 0;
  std::uint64_t lock_lost_ = 0;
};

}  // namespace redlock::chatroom
