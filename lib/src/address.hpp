// address.hpp: node addresses: parsed from what the user wrote, resolved
// when a connection is made, and compared.
//
// Parsing needs no DNS and fails fast (syntax, port range); names are looked
// up on every connection attempt (connection.hpp), never at parse time, so a
// name that does not resolve yet is a node that is down, not a bad argument.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redlock/result.hpp"

namespace redlock::detail {

struct HostPort {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
};

struct NodeAddress {
  enum class Kind : std::uint8_t { kTcp, kUnix, kSentinel, kCluster };
  Kind kind = Kind::kTcp;
  std::string text;     // as given; may hold a password, so never logged
  std::string display;  // text with any password replaced by "***": logs, errors, metrics
  std::string host;     // kTcp, without brackets for IPv6
  std::uint16_t port = 0;
  std::string path;                 // kUnix: the socket's path
  std::vector<HostPort> sentinels;  // kSentinel
  std::string master;               // kSentinel: the monitored master's name
  std::vector<HostPort> seeds;      // kCluster: where the slot map is first asked for
  // Credentials from a URL; when none are given the client's shared ones
  // apply (ClientOptions::username / password).
  std::string username;
  std::string password;
  bool has_credentials = false;
  int db = 0;
  // rediss:// and sentinels://: TLS to the node (for sentinels://, to the
  // sentinels and to the masters they name).
  bool tls = false;
};

// One of:
//   host:port, ip:port, [ipv6]:port
//   unix:/path/to/socket
//   redis://[user[:password]@]host[:port][/db]        (port 6379 by default)
//   sentinel://[user[:password]@]host:port,host:port,.../master-name[/db]
//   cluster://[user[:password]@]host:port,host:port,...   (Redis Cluster seeds)
//   rediss://... and sentinels://...: the same over TLS. One scheme covers
//     the sentinels and their masters alike ("s" for secure, as in rediss):
//     a deployment that secures one and not the other is not expressible.
// User and password may be percent-encoded. Errors never quote a password.
[[nodiscard]] Result<NodeAddress> parse_node(std::string_view text);

// Where a Connection goes, and with which credentials.
struct Endpoint {
  enum class Kind : std::uint8_t { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp: a name, or a literal address (IPv6 without brackets)
  std::uint16_t port = 0;
  std::string path;  // kUnix
  std::string username;
  std::string password;  // sent with AUTH on connect when not empty
  int db = 0;            // SELECT on connect when not 0
  bool tls = false;      // kTcp: TLS, never plain text
  // What the server's certificate must be issued for, and the SNI, when not
  // the host (or TlsOptions::server_name): set where the host is the address
  // a name resolved to (Connection::peer()).
  std::string server_name;

  // "host:port", "[v6]:port" or "unix:/path": for logs and errors.
  [[nodiscard]] std::string where() const;
};

// The same server address (host or path, port, and TLS); credentials aside.
[[nodiscard]] bool same_place(const Endpoint& a, const Endpoint& b);

// An endpoint with only the credentials set: the address's own, or the
// client's (`username`, `password`) when the address has none.
[[nodiscard]] Endpoint credentials_endpoint(const NodeAddress& address, std::string_view username,
                                            std::string_view password);

// Resolves a host name to its addresses, in the resolver's order. Runs on a
// thread of libuv's pool, never on the loop thread.
using Resolver = std::function<Result<std::vector<sockaddr_storage>>(const std::string& host,
                                                                     std::uint16_t port)>;
// getaddrinfo(3).
[[nodiscard]] Result<std::vector<sockaddr_storage>> system_resolve(const std::string& host,
                                                                   std::uint16_t port);
// A literal IPv4 or IPv6 address (no lookup needed), as a socket address.
[[nodiscard]] std::optional<sockaddr_storage> literal_address(const std::string& host,
                                                              std::uint16_t port);
// system_resolve, or the test's resolver when one is set. Blocks: never on
// the loop thread.
[[nodiscard]] Result<std::vector<sockaddr_storage>> resolve(const std::string& host,
                                                            std::uint16_t port);
// Tests only: replaces system_resolve for every Connection (null: restore).
void set_resolver_for_testing(Resolver resolver);

// The literal address, "1.2.3.4:6379" or "[::1]:6379"; ip_text without the port.
[[nodiscard]] std::string address_text(const sockaddr_storage& addr);
[[nodiscard]] std::string ip_text(const sockaddr_storage& addr);

}  // namespace redlock::detail
