// validate.hpp: checks for everything a caller hands the engine.
//
// Each check returns the first problem as an Error with code
// kInvalidArgument and a message that names the field and the value.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "address.hpp"
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

// Everything but name resolution: parses every node and rejects duplicates by
// their text. (Two names of one server are told apart later, by the run_id
// the server reports: the second node to connect is refused.)
[[nodiscard]] Result<std::vector<NodeAddress>> validate_client_options(
    const ClientOptions& options);

[[nodiscard]] Result<void> validate_resource(std::string_view resource);
// One to kMaxResources valid, distinct resource names.
[[nodiscard]] Result<void> validate_resources(const std::vector<std::string>& resources);
// The resources' keys all lie in one Redis Cluster hash slot (keys.hpp): a
// cluster:// node runs a lock's command on one shard.
[[nodiscard]] Result<void> validate_one_slot(const std::vector<std::string>& resources);
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

}  // namespace redlock::detail
