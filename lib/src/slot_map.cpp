#include "slot_map.hpp"

#include <algorithm>
#include <charconv>
#include <set>

namespace redlock::detail {
namespace {

Unexpected malformed(std::string what) {
  return Unexpected(Error(ErrorCode::kInternal, "malformed cluster map: " + std::move(what)));
}

bool is_text(const Reply& r) {
  return r.type == Reply::Type::kString || r.type == Reply::Type::kStatus;
}

std::optional<long long> as_integer(const Reply& r) {
  if (r.type == Reply::Type::kInteger) return r.integer;
  if (!is_text(r)) return std::nullopt;
  long long v = 0;
  const auto [end, ec] = std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
  if (ec != std::errc() || end != r.str.data() + r.str.size()) return std::nullopt;
  return v;
}

std::optional<std::uint16_t> as_port(const Reply& r) {
  const auto v = as_integer(r);
  if (!v || *v <= 0 || *v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

// An endpoint the reply leaves empty is the node that answered; "?" is a
// node whose address is unknown (unusable).
std::optional<std::string> endpoint_host(const std::string& endpoint,
                                         std::string_view queried_host) {
  if (endpoint == "?") return std::nullopt;
  if (endpoint.empty()) return std::string(queried_host);
  return endpoint;
}

// CLUSTER SHARDS: a node's attributes, a flat name/value list.
struct ShardNode {
  ClusterPeer peer;
  std::string role;
  std::string health;
  bool usable = false;
};

Result<ShardNode> read_shard_node(const Reply& r, std::string_view queried_host) {
  if (r.type != Reply::Type::kArray || r.elements.size() % 2 != 0) {
    return malformed("a shard's node is not a list of names and values");
  }
  ShardNode n;
  std::string endpoint;
  std::string ip;
  bool has_endpoint = false;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    const auto& name = r.elements[i].str;
    const auto& value = r.elements[i + 1];
    if (name == "id") {
      n.peer.id = value.str;
    } else if (name == "port") {
      if (auto p = as_port(value)) n.peer.port = *p;
    } else if (name == "endpoint") {
      endpoint = value.str;
      has_endpoint = true;
    } else if (name == "ip") {
      ip = value.str;
    } else if (name == "role") {
      n.role = value.str;
    } else if (name == "health") {
      n.health = value.str;
    }
  }
  auto host = endpoint_host(has_endpoint ? endpoint : ip, queried_host);
  n.usable = host.has_value() && n.peer.port != 0;
  if (host) n.peer.host = std::move(*host);
  return n;
}

}  // namespace

std::string ClusterPeer::where() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<void> SlotMap::add(const ClusterPeer& master, std::vector<ClusterPeer> replicas,
                          SlotRange range) {
  if (range.first > range.last || range.last >= kSlotCount) {
    return malformed("slot range " + std::to_string(range.first) + "-" +
                     std::to_string(range.last));
  }
  auto it = std::find_if(shards_.begin(), shards_.end(), [&](const ClusterShard& s) {
    return master.id.empty() ? s.master.host == master.host && s.master.port == master.port
                             : s.master.id == master.id;
  });
  if (it == shards_.end()) {
    shards_.push_back(ClusterShard{master, std::move(replicas), {}});
    it = shards_.end() - 1;
  } else {
    for (auto& r : replicas) {
      const bool known = std::any_of(it->replicas.begin(), it->replicas.end(), [&](const auto& x) {
        return x.host == r.host && x.port == r.port;
      });
      if (!known) it->replicas.push_back(std::move(r));
    }
  }
  const auto index = static_cast<std::int16_t>(it - shards_.begin());
  for (unsigned s = range.first; s <= range.last; ++s) {
    if (slots_[s] != kNoShard && slots_[s] != index) {
      return malformed("slot " + std::to_string(s) + " is served by two masters");
    }
    slots_[s] = index;
  }
  it->ranges.push_back(range);
  return {};
}

void SlotMap::finish() {
  covered_ = 0;
  for (auto& shard : shards_) {
    auto& r = shard.ranges;
    std::sort(r.begin(), r.end(),
              [](const SlotRange& a, const SlotRange& b) { return a.first < b.first; });
    // Adjacent ranges read as one ("0-5460", not "0-100,101-5460").
    std::vector<SlotRange> merged;
    for (const auto& x : r) {
      if (!merged.empty() && merged.back().last + 1U == x.first) {
        merged.back().last = x.last;
      } else {
        merged.push_back(x);
      }
      covered_ += static_cast<std::size_t>(x.last - x.first) + 1;
    }
    r = std::move(merged);
  }
  // In slot order, for reports.
  std::stable_sort(shards_.begin(), shards_.end(),
                   [](const ClusterShard& a, const ClusterShard& b) {
                     return a.ranges.front().first < b.ranges.front().first;
                   });
  slots_.fill(kNoShard);
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    for (const auto& x : shards_[i].ranges) {
      for (unsigned s = x.first; s <= x.last; ++s) slots_[s] = static_cast<std::int16_t>(i);
    }
  }
}

Result<SlotMap> SlotMap::from_shards(const Reply& reply, std::string_view queried_host) {
  if (reply.type != Reply::Type::kArray) return malformed("CLUSTER SHARDS did not return a list");
  SlotMap map;
  for (const auto& shard : reply.elements) {
    if (shard.type != Reply::Type::kArray || shard.elements.size() % 2 != 0) {
      return malformed("a shard is not a list of names and values");
    }
    const Reply* slots = nullptr;
    const Reply* nodes = nullptr;
    for (std::size_t i = 0; i + 1 < shard.elements.size(); i += 2) {
      if (shard.elements[i].str == "slots") slots = &shard.elements[i + 1];
      if (shard.elements[i].str == "nodes") nodes = &shard.elements[i + 1];
    }
    if (slots == nullptr || nodes == nullptr || slots->type != Reply::Type::kArray ||
        nodes->type != Reply::Type::kArray || slots->elements.size() % 2 != 0) {
      return malformed("a shard without its slots and nodes");
    }
    if (slots->elements.empty()) continue;  // a master without slots serves nothing
    std::optional<ClusterPeer> master;
    bool master_failed = false;
    std::vector<ClusterPeer> replicas;
    for (const auto& n : nodes->elements) {
      auto node = read_shard_node(n, queried_host);
      if (!node) return Unexpected(node.error());
      if (!node->usable) continue;
      // A master that failed keeps its slots until a replica takes them
      // over: it is still where they are served (and is down). One that
      // failed next to a live one is the former master.
      const bool failed = node->health == "fail" || node->health == "failed";
      if (node->role == "master" && (!master || (master_failed && !failed))) {
        if (master) replicas.push_back(std::move(*master));
        master = std::move(node->peer);
        master_failed = failed;
      } else {
        replicas.push_back(std::move(node->peer));
      }
    }
    if (!master) continue;  // no reachable master: its slots are uncovered
    for (std::size_t i = 0; i + 1 < slots->elements.size(); i += 2) {
      const auto first = as_integer(slots->elements[i]);
      const auto last = as_integer(slots->elements[i + 1]);
      if (!first || !last || *first < 0 || *last < *first || *last >= kSlotCount) {
        return malformed("a slot range");
      }
      auto added = map.add(*master, replicas,
                           {static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)});
      if (!added) return Unexpected(added.error());
    }
  }
  map.finish();
  return map;
}

Result<SlotMap> SlotMap::from_slots(const Reply& reply, std::string_view queried_host) {
  if (reply.type != Reply::Type::kArray) return malformed("CLUSTER SLOTS did not return a list");
  SlotMap map;
  const auto peer = [&](const Reply& r) -> std::optional<ClusterPeer> {
    if (r.type != Reply::Type::kArray || r.elements.size() < 2) return std::nullopt;
    auto host = endpoint_host(r.elements[0].str, queried_host);
    const auto port = as_port(r.elements[1]);
    if (!host || !port) return std::nullopt;
    ClusterPeer p{r.elements.size() > 2 ? r.elements[2].str : std::string(), std::move(*host),
                  *port};
    return p;
  };
  for (const auto& entry : reply.elements) {
    if (entry.type != Reply::Type::kArray || entry.elements.size() < 3) {
      return malformed("a CLUSTER SLOTS entry without a range and a master");
    }
    const auto first = as_integer(entry.elements[0]);
    const auto last = as_integer(entry.elements[1]);
    if (!first || !last || *first < 0 || *last < *first || *last >= kSlotCount) {
      return malformed("a slot range");
    }
    auto master = peer(entry.elements[2]);
    if (!master) continue;
    std::vector<ClusterPeer> replicas;
    for (std::size_t i = 3; i < entry.elements.size(); ++i) {
      if (auto r = peer(entry.elements[i])) replicas.push_back(std::move(*r));
    }
    auto added = map.add(*master, std::move(replicas),
                         {static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)});
    if (!added) return Unexpected(added.error());
  }
  map.finish();
  return map;
}

bool SlotMap::is_master(std::string_view id) const noexcept {
  return !id.empty() && std::any_of(shards_.begin(), shards_.end(),
                                    [&](const ClusterShard& s) { return s.master.id == id; });
}

std::optional<std::size_t> SlotMap::shard_at(std::string_view host,
                                             std::uint16_t port) const noexcept {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    if (shards_[i].master.host == host && shards_[i].master.port == port) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> SlotMap::replica_at(std::string_view host,
                                               std::uint16_t port) const noexcept {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    for (const auto& r : shards_[i].replicas) {
      if (r.host == host && r.port == port) return i;
    }
  }
  return std::nullopt;
}

std::string ranges_text(const std::vector<SlotRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out += ',';
    out += std::to_string(r.first);
    if (r.last != r.first) out.append("-").append(std::to_string(r.last));
  }
  return out;
}

std::vector<std::string> fresh_masters(const SlotMap& prev, const SlotMap& next) {
  std::vector<std::string> out;
  if (prev.empty()) return out;
  for (const auto& shard : next.shards()) {
    const auto& id = shard.master.id;
    if (id.empty() || prev.is_master(id)) continue;
    const bool had_master = std::any_of(shard.ranges.begin(), shard.ranges.end(), [&](auto r) {
      for (unsigned s = r.first; s <= r.last; ++s) {
        if (prev.shard_of(s)) return true;
      }
      return false;
    });
    if (had_master) out.push_back(id);
  }
  return out;
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    r.kind = Redirect::Kind::kMoved;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.kind = Redirect::Kind::kAsk;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto slot_text = error.substr(0, space);
  const auto [end, ec] =
      std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), r.slot);
  if (ec != std::errc() || end != slot_text.data() + slot_text.size() || r.slot >= kSlotCount) {
    return std::nullopt;
  }
  auto where = error.substr(space + 1);
  const auto colon = where.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto host = where.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const auto port_text = where.substr(colon + 1);
  unsigned port = 0;
  const auto [pend, pec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (pec != std::errc() || pend != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  r.host = std::string(host);
  r.port = static_cast<std::uint16_t>(port);
  return r;
}

}  // namespace redlock::detail
