#include "validate.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "keys.hpp"
#include "rules.hpp"
#include "text.hpp"

namespace redlock::detail {
namespace {

Unexpected invalid(std::string message) {
  return Unexpected(Error(ErrorCode::kInvalidArgument, std::move(message)));
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

std::string describe_pair(const std::string& a, const std::string& b) {
  return "resources " + quote_bytes(a) + " and " + quote_bytes(b);
}

}  // namespace

Result<std::vector<NodeAddress>> validate_client_options(const ClientOptions& o) {
  if (o.nodes.empty()) return invalid("no nodes given; a lock needs at least one Redis node");
  if (o.nodes.size() > ClientOptions::kMaxNodes) {
    return invalid(std::to_string(o.nodes.size()) + " nodes given; at most " +
                   std::to_string(ClientOptions::kMaxNodes) + " are supported");
  }
  std::vector<NodeAddress> out;
  std::set<std::string> seen;
  for (const auto& text : o.nodes) {
    auto node = parse_node(text);
    if (!node) return Unexpected(node.error());
    std::string key;
    switch (node->kind) {
      case NodeAddress::Kind::kTcp:
        key = "tcp " + node->host + " " + std::to_string(node->port);
        break;
      case NodeAddress::Kind::kUnix:
        key = "unix " + node->path;
        break;
      case NodeAddress::Kind::kSentinel:
        key = "sentinel " + node->master;
        for (const auto& s : node->sentinels) key += " " + s.host + ":" + std::to_string(s.port);
        break;
      case NodeAddress::Kind::kCluster:
        key = "cluster";
        for (const auto& s : node->seeds) key += " " + s.host + ":" + std::to_string(s.port);
        break;
    }
    if (!seen.insert(key).second) {
      return invalid("node \"" + node->display + "\" is listed twice; every node must be distinct");
    }
    out.push_back(std::move(*node));
  }
  if (!std::isfinite(o.drift_factor) || o.drift_factor < 0.0 || o.drift_factor >= 0.5) {
    return invalid("drift_factor " + std::to_string(o.drift_factor) + " is out of range [0, 0.5)");
  }
  if (o.node_timeout.count() < 0)
    return invalid("node_timeout " + ms(o.node_timeout) + " is negative");
  if (o.release_timeout.count() <= 0) {
    return invalid("release_timeout " + ms(o.release_timeout) + " must be positive");
  }
  if (o.connect_timeout.count() <= 0) {
    return invalid("connect_timeout " + ms(o.connect_timeout) + " must be positive");
  }
  if (o.blocking_spin.count() < 0 || o.blocking_spin > std::chrono::milliseconds(10)) {
    return invalid("blocking_spin " + std::to_string(o.blocking_spin.count()) +
                   " us is out of range (0 to 10000 us)");
  }
  if (o.busy_poll.count() < 0 || o.busy_poll > std::chrono::milliseconds(10)) {
    return invalid("busy_poll " + std::to_string(o.busy_poll.count()) +
                   " us is out of range [0, 10000 us]");
  }
  if (o.reconnect_max > kMaxDelay) {
    return invalid("reconnect_max " + ms(o.reconnect_max) + " exceeds " + ms(kMaxDelay));
  }
  if (o.node_timeout > kMaxDelay || o.release_timeout > kMaxDelay ||
      o.connect_timeout > kMaxDelay) {
    return invalid("node_timeout, release_timeout and connect_timeout must not exceed " +
                   ms(kMaxDelay));
  }
  if (o.reconnect_min.count() <= 0 || o.reconnect_max < o.reconnect_min) {
    return invalid("reconnect backoff must satisfy 0 < reconnect_min <= reconnect_max (got " +
                   ms(o.reconnect_min) + ", " + ms(o.reconnect_max) + ")");
  }
  if (o.max_ttl.count() <= 0 || o.max_ttl > kMaxTtlCeiling) {
    return invalid("max_ttl " + ms(o.max_ttl) + " is out of range (0, " + ms(kMaxTtlCeiling) + "]");
  }
  if (o.restart_grace && (o.restart_grace->count() < 0 || *o.restart_grace > 2 * kMaxTtlCeiling)) {
    return invalid("restart_grace " + ms(*o.restart_grace) + " is out of range [0, " +
                   ms(2 * kMaxTtlCeiling) + "]");
  }
  if (o.clock_check_interval.count() != 0 &&
      (o.clock_check_interval < kMinClockCheckInterval || o.clock_check_interval > kMaxDelay)) {
    return invalid("clock_check_interval " + ms(o.clock_check_interval) +
                   " is out of range: 0 (off) or " + ms(kMinClockCheckInterval) + " to " +
                   ms(kMaxDelay));
  }
  return out;
}

Result<void> validate_resource(std::string_view resource) {
  if (resource.empty()) return invalid("resource name is empty");
  if (resource.size() > kMaxResourceLength) {
    return invalid("resource name is " + std::to_string(resource.size()) + " bytes; at most " +
                   std::to_string(kMaxResourceLength) + " are allowed");
  }
  return {};
}

Result<void> validate_resources(const std::vector<std::string>& resources) {
  if (resources.empty()) return invalid("no resources given");
  constexpr std::size_t kMaxResources = 64;
  if (resources.size() > kMaxResources) {
    return invalid(std::to_string(resources.size()) + " resources given; at most " +
                   std::to_string(kMaxResources) + " can be locked together");
  }
  std::set<std::string_view> seen;
  for (const auto& r : resources) {
    if (auto ok = validate_resource(r); !ok) return ok;
    if (!seen.insert(r).second) return invalid("resource " + quote_bytes(r) + " is listed twice");
  }
  return {};
}

Result<void> validate_one_slot(const std::vector<std::string>& resources) {
  if (resources.size() < 2) return {};
  const auto& first = resources.front();
  const unsigned slot = key_slot(lock_key(first));
  for (const auto& r : resources) {
    if (key_slot(lock_key(r)) == slot) continue;
    return invalid(describe_pair(first, r) +
                   " lie in different hash slots; a Redis Cluster node can lock several "
                   "resources together only within one slot: give them a common {hash tag}, "
                   "e.g. \"{order:42}:items\" and \"{order:42}:payment\"");
  }
  return {};
}

namespace {

Result<void> validate_ttl(std::chrono::milliseconds ttl, std::chrono::milliseconds min_validity,
                          std::chrono::milliseconds node_timeout, const ClientOptions& c) {
  if (ttl.count() <= 0) return invalid("ttl " + ms(ttl) + " must be positive");
  if (ttl > c.max_ttl) return invalid("ttl " + ms(ttl) + " exceeds max_ttl " + ms(c.max_ttl));
  if (min_validity.count() < 1) {
    return invalid("min_validity " + ms(min_validity) + " must be at least 1 ms");
  }
  // The best possible grant (instant answers) still loses the drift allowance.
  const auto best = validity(ttl, std::chrono::steady_clock::duration::zero(), c.drift_factor);
  if (best < min_validity) {
    char drift[96];
    std::snprintf(drift, sizeof drift, "(ttl x %g + 2 ms = %.2f ms)", c.drift_factor,
                  static_cast<double>(drift_allowance(ttl, c.drift_factor).count()) / 1000.0);
    return invalid("ttl " + ms(ttl) + " is too short: the clock drift allowance " + drift +
                   " leaves less than the " + ms(min_validity) +
                   " a lock must be valid for (min_validity)");
  }
  if (node_timeout.count() < 0) return invalid("node_timeout " + ms(node_timeout) + " is negative");
  if (node_timeout > kMaxDelay) {
    return invalid("node_timeout " + ms(node_timeout) + " exceeds " + ms(kMaxDelay));
  }
  const auto configured = node_timeout.count() > 0 ? node_timeout : c.node_timeout;
  const auto effective = effective_node_timeout(configured, ttl);
  if (effective >= ttl) {
    if (configured.count() == 0) {
      return invalid("ttl " + ms(ttl) + " is too short: each node gets at least " +
                     ms(kMinAutoNodeTimeout) +
                     " to answer (the automatic node_timeout), and a lock must outlast that");
    }
    return invalid("node_timeout " + ms(effective) + " must be shorter than the ttl " + ms(ttl));
  }
  return {};
}

}  // namespace

Result<void> validate_extend(std::chrono::milliseconds ttl, const ExtendOptions& o,
                             const ClientOptions& c) {
  return validate_ttl(ttl, o.min_validity, o.node_timeout, c);
}

Result<void> validate_auto_extend(const AutoExtendOptions& o, std::chrono::milliseconds ttl,
                                  const ClientOptions& c) {
  if (!std::isfinite(o.extend_at_remaining) || o.extend_at_remaining <= 0.0 ||
      o.extend_at_remaining >= 1.0) {
    return invalid("extend_at_remaining " + std::to_string(o.extend_at_remaining) +
                   " is out of range (0, 1)");
  }
  if (o.max_extensions < 0) {
    return invalid("max_extensions " + std::to_string(o.max_extensions) + " is negative");
  }
  if (o.max_hold.count() < 0) return invalid("max_hold " + ms(o.max_hold) + " is negative");
  if (o.max_extensions == 0 && o.max_hold.count() == 0) {
    return invalid(
        "automatic extension needs a bound: set max_extensions or max_hold (the Redlock spec "
        "requires the number of re-acquisitions to be limited)");
  }
  if (o.ttl.count() < 0) return invalid("auto-extend ttl " + ms(o.ttl) + " is negative");
  return validate_ttl(ttl, ExtendOptions{}.min_validity, o.node_timeout, c);
}

Result<void> validate_acquire(std::string_view resource, std::chrono::milliseconds ttl,
                              const AcquireOptions& a, const ClientOptions& c) {
  if (auto r = validate_resource(resource); !r) return r;
  if (a.max_wait.count() < 0) return invalid("max_wait " + ms(a.max_wait) + " is negative");
  if (a.max_attempts < 0) {
    return invalid("max_attempts " + std::to_string(a.max_attempts) + " is negative");
  }
  if (a.retry_delay.count() < 0 || a.retry_delay > kMaxDelay) {
    return invalid("retry_delay " + ms(a.retry_delay) + " is out of range [0, " + ms(kMaxDelay) +
                   "]");
  }
  if (a.retry_jitter.count() < 0 || a.retry_jitter > kMaxDelay) {
    return invalid("retry_jitter " + ms(a.retry_jitter) + " is out of range [0, " + ms(kMaxDelay) +
                   "]");
  }
  return validate_ttl(ttl, a.min_validity, a.node_timeout, c);
}

Result<void> validate_lock_token(std::string_view token) {
  if (token.empty()) return invalid("lock token is empty");
  if (token.size() > 128) return invalid("lock token is longer than 128 bytes");
  return {};
}

}  // namespace redlock::detail
