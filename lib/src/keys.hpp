// keys.hpp: the keys and channels a lock uses on a node (the key layout).
//
// Every key and channel the library writes starts with "redlock:{", then the
// resource's hash tag, "}:", what it is for, ":" and the resource's name,
// byte for byte:
//
//   redlock:{<tag>}:lock:<resource>       the lock (a token, with a ttl)
//   redlock:{<tag>}:fence:<resource>      its fencing counter (no ttl)
//   redlock:{<tag>}:released:<resource>   its release announcements (a channel)
//
// <tag> is the resource's own Redis Cluster hash tag when it has one (the
// bytes between its first "{" and the first "}" after it, if any), otherwise
// the whole name with "%" and "}" written as %25 and %7D ("%" for the empty
// name, so that the tag is never empty). Redis hashes a key
// by the part between its first "{" and the first "}" after it, so every key
// of one resource lies in one hash slot, resources that share a hash tag
// share a slot, and a lock lies in the slot of the user's own keys that
// carry the same tag.
//
// No name can reach a key of another purpose or another resource: the tag
// holds no "}", so it ends at the first "}", the purpose word that follows
// holds no ":", and the name after it is the whole rest of the key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace redlock::detail {

// The prefix of every key and channel (an ACL needs ~redlock:* and
// &redlock:*).
inline constexpr std::string_view kKeyPrefix = "redlock:";

// The hash tag the resource's keys are placed by.
[[nodiscard]] std::string hash_tag(std::string_view resource);

// The key that holds `resource`'s lock.
[[nodiscard]] std::string lock_key(std::string_view resource);
// The key of `resource`'s fencing counter.
[[nodiscard]] std::string fence_key(std::string_view resource);
// The channel on which `resource`'s release is announced (wake-on-release).
[[nodiscard]] std::string release_channel(std::string_view resource);

[[nodiscard]] std::vector<std::string> lock_keys(const std::vector<std::string>& resources);
[[nodiscard]] std::vector<std::string> fence_keys(const std::vector<std::string>& resources);
[[nodiscard]] std::vector<std::string> release_channels(const std::vector<std::string>& resources);

// How many hash slots a Redis Cluster has.
inline constexpr unsigned kSlotCount = 16384;

// The Redis Cluster hash slot of a key (CRC16 of its hash tag, mod 16384).
[[nodiscard]] unsigned key_slot(std::string_view key) noexcept;
// The slot of every key and channel of `resource`.
[[nodiscard]] unsigned resource_slot(std::string_view resource);

}  // namespace redlock::detail
