#include "validate.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

#include "rules.hpp"

namespace redlock::detail {
namespace {

Unexpected invalid(std::string message) {
  return Unexpected(Error(ErrorCode::kInvalidArgument, std::move(message)));
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

namespace {

// "host:port" or "[v6]:port" (default_port 0: the port is required).
Result<HostPort> parse_host_port(std::string_view text, const std::string& quoted,
                                 std::uint16_t default_port) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return invalid(quoted + ": malformed IPv6 address; expected [address]:port");
    }
    host = text.substr(1, close - 1);
    if (close + 1 == text.size() && default_port == 0) {
      return invalid(quoted + ": malformed IPv6 address; expected [address]:port");
    }
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') {
        return invalid(quoted + ": malformed IPv6 address; expected [address]:port");
      }
      port = text.substr(close + 2);
      if (port.empty()) return invalid(quoted + ": port must be a number from 1 to 65535");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      host = text;
    } else {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return invalid(quoted + ": port must be a number from 1 to 65535");
    }
    if (host.find(':') != std::string_view::npos) {
      return invalid(quoted + ": an IPv6 address must be written [address]:port");
    }
  }
  if (host.empty()) return invalid(quoted + ": missing host; expected host:port");
  for (const char c : host) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' ||
                    c == '_' || c == ':' || c == '%';
    if (!ok) return invalid(quoted + ": host contains an invalid character");
  }
  if (port.empty()) {
    if (default_port == 0) return invalid(quoted + ": missing port; expected host:port");
    return HostPort{std::string(host), default_port};
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return invalid(quoted + ": port must be a number from 1 to 65535");
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(value)};
}

Result<std::string> percent_decode(std::string_view in, const std::string& quoted) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= in.size()) {
      return invalid(quoted + ": bad percent-encoding in the credentials");
    }
    const auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
    if (ec != std::errc() || end != in.data() + i + 3) {
      return invalid(quoted + ": bad percent-encoding in the credentials");
    }
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

// The text with the password of a URL's user-info replaced by "***".
std::string redact(std::string_view text) {
  const auto scheme = text.find("://");
  if (scheme == std::string_view::npos) return std::string(text);
  const auto rest = text.substr(scheme + 3);
  const auto at = rest.rfind('@', rest.find('/'));
  if (at == std::string_view::npos) return std::string(text);
  const auto userinfo = rest.substr(0, at);
  const auto colon = userinfo.find(':');
  const std::string user(colon == std::string_view::npos ? userinfo : userinfo.substr(0, colon));
  return std::string(text.substr(0, scheme + 3)) + user + ":***@" +
         std::string(rest.substr(at + 1));
}

Result<int> parse_db(std::string_view text, const std::string& quoted) {
  int db = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), db);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || db < 0 ||
      db > 1000000) {
    return invalid(quoted + ": the database must be a number from 0");
  }
  return db;
}

}  // namespace

Result<NodeAddress> parse_node(std::string_view text) {
  NodeAddress out;
  out.text = std::string(text);
  out.display = redact(text);
  const std::string quoted = "node \"" + out.display + "\"";
  if (text.empty()) return invalid("node address is empty; expected host:port");

  if (text.starts_with("unix:")) {
    auto path = text.substr(5);
    if (path.starts_with("//")) path.remove_prefix(2);
    if (path.empty() || path.front() != '/') {
      return invalid(quoted + ": expected unix:/absolute/path/to/socket");
    }
    if (path.size() > 107) return invalid(quoted + ": the socket path is longer than 107 bytes");
    out.kind = NodeAddress::Kind::kUnix;
    out.path = std::string(path);
    return out;
  }

  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    auto hp = parse_host_port(text, quoted, 0);
    if (!hp) return Unexpected(hp.error());
    out.host = std::move(hp->host);
    out.port = hp->port;
    return out;
  }

  const auto scheme = text.substr(0, scheme_end);
  if (scheme == "rediss") {
    return invalid(quoted + ": TLS (rediss://) is not supported; use a TLS tunnel to the node");
  }
  if (scheme != "redis" && scheme != "sentinel") {
    return invalid(quoted + ": unknown scheme \"" + std::string(scheme) +
                   "\"; expected redis://, sentinel:// or unix:");
  }
  auto rest = text.substr(scheme_end + 3);
  const auto slash_pos = rest.find('/');
  const auto at = rest.substr(0, slash_pos).rfind('@');
  if (at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    auto user = percent_decode(
        colon == std::string_view::npos ? userinfo : userinfo.substr(0, colon), quoted);
    if (!user) return Unexpected(user.error());
    out.username = std::move(*user);
    if (colon != std::string_view::npos) {
      auto pass = percent_decode(userinfo.substr(colon + 1), quoted);
      if (!pass) return Unexpected(pass.error());
      out.password = std::move(*pass);
    }
    out.has_credentials = true;
    rest.remove_prefix(at + 1);
  }
  const auto slash = rest.find('/');
  const auto authority = rest.substr(0, slash);
  std::string_view path =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  if (scheme == "redis") {
    auto hp = parse_host_port(authority, quoted, 6379);
    if (!hp) return Unexpected(hp.error());
    out.host = std::move(hp->host);
    out.port = hp->port;
    if (!path.empty()) {
      auto db = parse_db(path, quoted);
      if (!db) return Unexpected(db.error());
      out.db = *db;
    }
    return out;
  }

  out.kind = NodeAddress::Kind::kSentinel;
  std::size_t start = 0;
  while (start <= authority.size()) {
    const auto comma = authority.find(',', start);
    const auto one = authority.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    auto hp = parse_host_port(one, quoted, 26379);
    if (!hp) return Unexpected(hp.error());
    out.sentinels.push_back(std::move(*hp));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  const auto db_slash = path.find('/');
  out.master = std::string(path.substr(0, db_slash));
  if (out.master.empty()) {
    return invalid(quoted + ": missing the master's name; expected sentinel://host:port,.../name");
  }
  if (db_slash != std::string_view::npos) {
    auto db = parse_db(path.substr(db_slash + 1), quoted);
    if (!db) return Unexpected(db.error());
    out.db = *db;
  }
  return out;
}

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
  if (o.exclude_suspect_clocks && o.clock_check_interval.count() == 0) {
    return invalid("exclude_suspect_clocks needs the clock check: clock_check_interval is 0 (off)");
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
    if (!seen.insert(r).second) return invalid("resource \"" + r + "\" is listed twice");
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
    return invalid("ttl " + ms(ttl) + " is too short: after the clock drift allowance it leaves " +
                   std::to_string(best.count()) + " us, below min_validity " + ms(min_validity));
  }
  if (node_timeout.count() < 0) return invalid("node_timeout " + ms(node_timeout) + " is negative");
  if (node_timeout > kMaxDelay) {
    return invalid("node_timeout " + ms(node_timeout) + " exceeds " + ms(kMaxDelay));
  }
  const auto effective =
      effective_node_timeout(node_timeout.count() > 0 ? node_timeout : c.node_timeout, ttl);
  if (effective >= ttl) {
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

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
  }
  return false;
}

}  // namespace redlock::detail
