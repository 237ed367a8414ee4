#include "address.hpp"

#include <netdb.h>
#include <uv.h>

#include <cctype>
#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>

namespace redlock::detail {
namespace {

Unexpected invalid(std::string message) {
  return Unexpected(Error(ErrorCode::kInvalidArgument, std::move(message)));
}

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

// "host:port,host:port,...": at least one.
Result<std::vector<HostPort>> parse_host_list(std::string_view text, const std::string& quoted,
                                              std::uint16_t default_port) {
  std::vector<HostPort> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const auto one = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    auto hp = parse_host_port(one, quoted, default_port);
    if (!hp) return Unexpected(hp.error());
    out.push_back(std::move(*hp));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
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

// The text with the password of a URL's user-info replaced by "***". The
// user-info is taken to end at the last '@' anywhere, not the last before
// the path: a password with a raw '/' in it ("redis://u:pa/ss@host") does
// not parse as one, and the error that quotes the node must not show it.
std::string redact(std::string_view text) {
  const auto scheme = text.find("://");
  if (scheme == std::string_view::npos) return std::string(text);
  const auto rest = text.substr(scheme + 3);
  const auto at = rest.rfind('@');
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

std::mutex& resolver_mutex() {
  static std::mutex m;
  return m;
}

Resolver& resolver_override() {
  static Resolver r;
  return r;
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

  auto scheme = text.substr(0, scheme_end);
  if (scheme == "rediss" || scheme == "sentinels") {
    out.tls = true;
    scheme.remove_suffix(1);
  } else if (scheme != "redis" && scheme != "sentinel" && scheme != "cluster") {
    return invalid(quoted + ": unknown scheme \"" + std::string(scheme) +
                   "\"; expected redis://, rediss://, sentinel://, sentinels://, cluster:// or "
                   "unix:");
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

  if (scheme == "cluster") {
    // A Redis Cluster has database 0 only.
    if (slash != std::string_view::npos) {
      return invalid(quoted +
                     ": a Redis Cluster has no database to choose; expected "
                     "cluster://host:port,host:port,...");
    }
    auto seeds = parse_host_list(authority, quoted, 0);
    if (!seeds) return Unexpected(seeds.error());
    out.kind = NodeAddress::Kind::kCluster;
    out.seeds = std::move(*seeds);
    return out;
  }

  out.kind = NodeAddress::Kind::kSentinel;
  auto sentinels = parse_host_list(authority, quoted, 26379);
  if (!sentinels) return Unexpected(sentinels.error());
  out.sentinels = std::move(*sentinels);
  const auto db_slash = path.find('/');
  out.master = std::string(path.substr(0, db_slash));
  if (out.master.empty()) {
    return invalid(quoted + ": missing the master's name; expected " + std::string(scheme) +
                   (out.tls ? "s" : "") + "://host:port,.../name");
  }
  if (db_slash != std::string_view::npos) {
    auto db = parse_db(path.substr(db_slash + 1), quoted);
    if (!db) return Unexpected(db.error());
    out.db = *db;
  }
  return out;
}

std::optional<sockaddr_storage> literal_address(const std::string& host, std::uint16_t port) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) == 0) return addr;
  if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) return addr;
  return std::nullopt;
}

std::string Endpoint::where() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Endpoint credentials_endpoint(const NodeAddress& address, std::string_view username,
                              std::string_view password) {
  Endpoint e;
  if (address.has_credentials) {
    e.username = address.username;
    e.password = address.password;
  } else {
    e.username = username;
    e.password = password;
  }
  return e;
}

bool same_place(const Endpoint& a, const Endpoint& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == Endpoint::Kind::kUnix) return a.path == b.path;
  return a.host == b.host && a.port == b.port && a.tls == b.tls;
}

Result<std::vector<sockaddr_storage>> system_resolve(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return Unexpected(Error(ErrorCode::kNoQuorum, "cannot resolve \"" + host + "\": " +
                                                      (rc != 0 ? gai_strerror(rc) : "no address")));
  }
  std::vector<sockaddr_storage> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage addr{};
    std::memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    out.push_back(addr);
  }
  ::freeaddrinfo(res);
  return out;
}

Result<std::vector<sockaddr_storage>> resolve(const std::string& host, std::uint16_t port) {
  Resolver resolver;
  {
    std::lock_guard lk(resolver_mutex());
    resolver = resolver_override();
  }
  return resolver ? resolver(host, port) : system_resolve(host, port);
}

void set_resolver_for_testing(Resolver resolver) {
  std::lock_guard lk(resolver_mutex());
  resolver_override() = std::move(resolver);
}

std::string ip_text(const sockaddr_storage& addr) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&addr), ip, sizeof ip);
  } else {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&addr), ip, sizeof ip);
  }
  return ip;
}

std::string address_text(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    // Built with append: GCC 12 at -O3 misreads `"[" + std::string&&` as an
    // overlapping memcpy (-Wrestrict).
    std::string text = "[";
    text.append(ip_text(addr)).append("]:").append(std::to_string(ntohs(a.sin6_port)));
    return text;
  }
  const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
  return ip_text(addr) + ":" + std::to_string(ntohs(a.sin_port));
}

}  // namespace redlock::detail
