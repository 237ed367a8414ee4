// keys.hpp: the keys and channels a lock uses on a node.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace redlock::detail {

// The key that holds `resource`'s lock.
[[nodiscard]] std::string lock_key(std::string_view resource);
// The key of `resource`'s fencing counter.
[[nodiscard]] std::string fence_key(std::string_view resource);
// The channel on which `resource`'s release is announced (wake-on-release).
[[nodiscard]] std::string release_channel(std::string_view resource);

[[nodiscard]] std::vector<std::string> lock_keys(const std::vector<std::string>& resources);
[[nodiscard]] std::vector<std::string> fence_keys(const std::vector<std::string>& resources);

}  // namespace redlock::detail
