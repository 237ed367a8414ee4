#include "service_metrics.hpp"

#include <cstdio>

namespace redlock::chatroom {
namespace {

// Splits "/chatrooms/x/messages" into its segments without allocating.
std::size_t segments(std::string_view path, std::array<std::string_view, 4>& out) {
  std::size_t n = 0;
  std::size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    const auto end = path.find('/', pos);
    const auto seg = path.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (n == out.size()) return n + 1;
    out[n++] = seg;
    if (end == std::string_view::npos) break;
    pos = end;
  }
  return n;
}

std::string number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", value);
  return buf;
}

}  // namespace

std::string_view route_of(std::string_view method, std::string_view path) {
  // The routes have no empty segments: "/chatrooms/" is not "/chatrooms".
  if (path.empty() || path.front() != '/' || (path.size() > 1 && path.back() == '/') ||
      path.find("//") != std::string_view::npos) {
    return "other";
  }
  std::array<std::string_view, 4> seg;
  const std::size_t n = segments(path, seg);
  if (method == "GET" && n == 1 && seg[0] == "healthz") return "GET /healthz";
  if (method == "GET" && n == 1 && seg[0] == "readyz") return "GET /readyz";
  if (method == "GET" && n == 1 && seg[0] == "metrics") return "GET /metrics";
  if (n >= 1 && seg[0] == "chatrooms") {
    if (method == "POST" && n == 1) return "POST /chatrooms";
    if (method == "GET" && n == 2) return "GET /chatrooms/{name}";
    if (n == 3 && seg[2] == "messages") {
      if (method == "POST") return "POST /chatrooms/{name}/messages";
      if (method == "GET") return "GET /chatrooms/{name}/messages";
    }
  }
  return "other";
}

void ServiceMetrics::observe_request(std::string_view route, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(route), status}];
  auto& l = latency_[std::string(route)];
  std::size_t bucket = 0;
  while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) ++bucket;
  ++l.counts[bucket];
  ++l.count;
  l.sum += seconds;
}

void ServiceMetrics::room_created() {
  std::lock_guard lock(mutex_);
  ++rooms_created_;
}

void ServiceMetrics::unique_conflict() {
  std::lock_guard lock(mutex_);
  ++unique_conflicts_;
}

void ServiceMetrics::lock_wait_timeout() {
  std::lock_guard lock(mutex_);
  ++lock_wait_timeouts_;
}

void ServiceMetrics::lock_unavailable() {
  std::lock_guard lock(mutex_);
  ++lock_unavailable_;
}

void ServiceMetrics::lock_lost_before_commit() {
  std::lock_guard lock(mutex_);
  ++lock_lost_;
}

std::uint64_t ServiceMetrics::unique_conflicts() const {
  std::lock_guard lock(mutex_);
  return unique_conflicts_;
}

std::string ServiceMetrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP chatroom_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE chatroom_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out += "chatroom_http_requests_total{route=\"" + key.first + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
  }
  out += "# HELP chatroom_http_request_duration_seconds HTTP request latency by route.\n";
  out += "# TYPE chatroom_http_request_duration_seconds histogram\n";
  for (const auto& [route, l] : latency_) {
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= kLatencyBuckets.size(); ++b) {
      cumulative += l.counts[b];
      const std::string le = b < kLatencyBuckets.size() ? number(kLatencyBuckets[b]) : "+Inf";
      out += "chatroom_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"" + le +
             "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "chatroom_http_request_duration_seconds_sum{route=\"" + route + "\"} " + number(l.sum) +
           "\n";
    out += "chatroom_http_request_duration_seconds_count{route=\"" + route + "\"} " +
           std::to_string(l.count) + "\n";
  }
  const auto counter = [&out](const char* name, const char* help, std::uint64_t value) {
    out += std::string("# HELP ") + name + " " + help + "\n";
    out += std::string("# TYPE ") + name + " counter\n";
    out += std::string(name) + " " + std::to_string(value) + "\n";
  };
  counter("chatroom_rooms_created_total", "Rooms this replica created.", rooms_created_);
  counter("chatroom_unique_conflicts_total",
          "Creates stopped by the store's UNIQUE constraint: another request had created the "
          "room after this one looked it up.",
          unique_conflicts_);
  counter("chatroom_lock_wait_timeouts_total",
          "Creates answered 503 because the room's lock was held by another until the wait ran "
          "out.",
          lock_wait_timeouts_);
  counter("chatroom_lock_unavailable_total",
          "Creates answered 503 because too few lock nodes answered or voted.", lock_unavailable_);
  counter("chatroom_lock_lost_total", "Creates rolled back because the lock was lost first.",
          lock_lost_);
  return out;
}

}  // namespace redlock::chatroom
