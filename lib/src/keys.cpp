#include "keys.hpp"

namespace redlock::detail {
namespace {

constexpr std::string_view kFencePrefix = "redlock:fence:";
constexpr std::string_view kReleaseChannelPrefix = "redlock:released:";

std::string prefixed(std::string_view prefix, std::string_view name) {
  std::string out;
  out.reserve(prefix.size() + name.size());
  out.append(prefix);
  out.append(name);
  return out;
}

}  // namespace

std::string lock_key(std::string_view resource) { return std::string(resource); }

std::string fence_key(std::string_view resource) { return prefixed(kFencePrefix, resource); }

std::string release_channel(std::string_view resource) {
  return prefixed(kReleaseChannelPrefix, resource);
}

std::vector<std::string> lock_keys(const std::vector<std::string>& resources) {
  std::vector<std::string> out;
  out.reserve(resources.size());
  for (const auto& r : resources) out.push_back(lock_key(r));
  return out;
}

std::vector<std::string> fence_keys(const std::vector<std::string>& resources) {
  std::vector<std::string> out;
  out.reserve(resources.size());
  for (const auto& r : resources) out.push_back(fence_key(r));
  return out;
}

}  // namespace redlock::detail
