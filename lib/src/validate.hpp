// validate.hpp: checks for everything a caller hands the engine.
//
// Each check returns the first problem as an Error with code
// kInvalidArgument and a message that names the field and the value.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "redlock/options.hpp"
#include "redlock/result.hpp"

namespace redlock::detail {

inline constexpr std::size_t kMaxResourceLength = 1024;
inline constexpr std::chrono::milliseconds kMaxTtlCeiling{std::chrono::hours(24 * 30)};
// Upper bound for retry and reconnect delays (keeps every deadline computed
// from them far from overflow; a larger pause is not a retry any more).
inline constexpr std::chrono::milliseconds kMaxDelay{std::chrono::hours(1)};
// The shortest ClientOptions::clock_check_interval other than 0 (off).
inline constexpr std::chrono::milliseconds kMinClockCheckInterval{10};

struct HostPort {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
};

struct NodeAddress {
  enum class Kind : std::uint8_t { kTcp, kUnix, kSentinel };
  Kind kind = Kind::kTcp;
  std::string text;     // as given; may hold a password, so never logged
  std::string display;  // text with any password replaced by "***": logs, errors, metrics
  std::string host;     // kTcp, without brackets for IPv6
  std::uint16_t port = 0;
  std::string path;                 // kUnix: the socket's path
  std::vector<HostPort> sentinels;  // kSentinel
  std::string master;               // kSentinel: the monitored master's name
  // Credentials from a URL; when none are given the client's shared ones
  // apply (ClientOptions::username / password).
  std::string username;
  std::string password;
  bool has_credentials = false;
  int db = 0;
};

// One of:
//   host:port, ip:port, [ipv6]:port
//   unix:/path/to/socket
//   redis://[user[:password]@]host[:port][/db]        (port 6379 by default)
//   sentinel://[user[:password]@]host:port,host:port,.../master-name[/db]
// User and password may be percent-encoded. Errors never quote a password.
[[nodiscard]] Result<NodeAddress> parse_node(std::string_view text);

// Everything but name resolution: parses every node and rejects duplicates by
// their text (connect() also rejects two names resolving to one address).
[[nodiscard]] Result<std::vector<NodeAddress>> validate_client_options(
    const ClientOptions& options);

[[nodiscard]] Result<void> validate_resource(std::string_view resource);
// One to kMaxResources valid, distinct resource names.
[[nodiscard]] Result<void> validate_resources(const std::vector<std::string>& resources);
[[nodiscard]] Result<void> validate_extend(std::chrono::milliseconds ttl,
                                           const ExtendOptions& options,
                                           const ClientOptions& client);
// `ttl` is the ttl each extension will use.
[[nodiscard]] Result<void> validate_auto_extend(const AutoExtendOptions& options,
                                                std::chrono::milliseconds ttl,
                                                const ClientOptions& client);
[[nodiscard]] Result<void> validate_acquire(std::string_view resource,
                                            std::chrono::milliseconds ttl,
                                            const AcquireOptions& options,
                                            const ClientOptions& client);
[[nodiscard]] Result<void> validate_lock_token(std::string_view token);

// The same IPv4 or IPv6 address and port.
[[nodiscard]] bool same_address(const sockaddr_storage& a, const sockaddr_storage& b);

}  // namespace redlock::detail
