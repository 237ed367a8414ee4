// lock_keys.hpp: finding a lock's keys on the nodes without knowing how the
// library names them. A lock key is a key whose name contains the resource
// name and that carries a ttl; fencing counters, which also name the
// resource, never expire.
//
// Threading: for the test's main thread, like the cluster it asks.
#pragma once

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "redlock/cluster/local_cluster.hpp"

namespace redlock::testing {

// `text` with the glob characters of SCAN MATCH / KEYS escaped.
inline std::string glob_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Node i's lock keys for `resource` (empty when the node does not answer).
inline std::vector<std::string> lock_keys_on(redlock::cluster::LocalCluster& cluster, std::size_t i,
                                             const std::string& resource) {
  std::vector<std::string> out;
  const auto node = cluster.info(i);
  if (!node.running || node.paused) return out;
  auto keys = cluster.command(i, {"KEYS", "*" + glob_escape(resource) + "*"});
  if (!keys) return out;
  std::istringstream lines(*keys);
  for (std::string key; std::getline(lines, key);) {
    if (key.empty()) continue;
    auto pttl = cluster.command(i, {"PTTL", key});
    if (pttl && !pttl->empty() && pttl->front() != '-') out.push_back(key);
  }
  return out;
}

// How many nodes hold a lock key for `resource`.
inline std::size_t nodes_with_lock(redlock::cluster::LocalCluster& cluster,
                                   const std::string& resource) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (!lock_keys_on(cluster, i, resource).empty()) ++n;
  }
  return n;
}

// How many nodes hold a lock key for `resource` whose value is `token`.
inline std::size_t nodes_holding(redlock::cluster::LocalCluster& cluster,
                                 const std::string& resource, const std::string& token) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    for (const auto& key : lock_keys_on(cluster, i, resource)) {
      auto value = cluster.get(i, key);
      if (value && *value && **value == token) {
        ++n;
        break;
      }
    }
  }
  return n;
}

// The remaining ttl (PTTL, ms) of each of `resource`'s lock keys, over the
// nodes.
inline std::vector<long long> lock_ttls(redlock::cluster::LocalCluster& cluster,
                                        const std::string& resource) {
  std::vector<long long> out;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    for (const auto& key : lock_keys_on(cluster, i, resource)) {
      auto pttl = cluster.command(i, {"PTTL", key});
      if (pttl) out.push_back(std::stoll(*pttl));
    }
  }
  return out;
}

}  // namespace redlock::testing
