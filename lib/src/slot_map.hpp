// slot_map.hpp: a Redis Cluster's slot map, as CLUSTER SHARDS (Redis 7) or
// CLUSTER SLOTS (older servers) tell it, and what changed between two maps.
//
// A map is a list of shards, each a master serving some slot ranges with its
// replicas, and a table from each of the 16384 slots to the shard serving it
// (none while no master serves it). Pure: built from replies, no I/O.
//
// Failover safety: replication is asynchronous, so a replica promoted to
// master may lack the newest keys of its slots (a lock granted a moment
// before the failover). fresh_masters() names the masters of a new map that
// were not masters in the previous one although their slots had a master: a
// ClusterNode treats each like a restarted node for the resources in its
// slots (it sits out the restart grace). Slots moved by resharding (MIGRATE
// carries the keys along) go from one master to another: that is no failover.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keys.hpp"
#include "protocol.hpp"
#include "redlock/result.hpp"

namespace redlock::detail {

struct ClusterPeer {
  std::string id;  // the cluster node id ("" when the reply gave none)
  std::string host;
  std::uint16_t port = 0;

  // "host:port" or "[v6]:port".
  [[nodiscard]] std::string where() const;
};

struct SlotRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;  // inclusive
};

struct ClusterShard {
  ClusterPeer master;
  std::vector<ClusterPeer> replicas;
  std::vector<SlotRange> ranges;  // sorted, not overlapping
};

class SlotMap {
 public:
  static constexpr std::int16_t kNoShard = -1;

  SlotMap() { slots_.fill(kNoShard); }

  // From CLUSTER SHARDS (Redis 7) / CLUSTER SLOTS. `queried_host` stands in
  // for a node whose endpoint the reply leaves empty (the node asked).
  // Errors: kInternal, naming what is malformed.
  [[nodiscard]] static Result<SlotMap> from_shards(const Reply& reply,
                                                   std::string_view queried_host);
  [[nodiscard]] static Result<SlotMap> from_slots(const Reply& reply,
                                                  std::string_view queried_host);

  [[nodiscard]] const std::vector<ClusterShard>& shards() const noexcept { return shards_; }
  [[nodiscard]] bool empty() const noexcept { return shards_.empty(); }
  // The shard serving `slot` (an index into shards()), if any.
  [[nodiscard]] std::optional<std::size_t> shard_of(unsigned slot) const noexcept {
    const auto s = slot < kSlotCount ? slots_[slot] : kNoShard;
    if (s == kNoShard) return std::nullopt;
    return static_cast<std::size_t>(s);
  }
  // How many slots have a master.
  [[nodiscard]] std::size_t covered() const noexcept { return covered_; }
  // Whether the node `id` is the master of a shard here.
  [[nodiscard]] bool is_master(std::string_view id) const noexcept;
  // The shard whose master is at host:port, if any.
  [[nodiscard]] std::optional<std::size_t> shard_at(std::string_view host,
                                                    std::uint16_t port) const noexcept;
  // The shard whose replicas include host:port, if any.
  [[nodiscard]] std::optional<std::size_t> replica_at(std::string_view host,
                                                      std::uint16_t port) const noexcept;

 private:
  // Adds `range` to the shard of `master` (created when new). Error when
  // the range overlaps one already in the map.
  Result<void> add(const ClusterPeer& master, std::vector<ClusterPeer> replicas, SlotRange range);
  void finish();

  std::vector<ClusterShard> shards_;
  std::array<std::int16_t, kSlotCount> slots_{};
  std::size_t covered_ = 0;
};

// "0-5460,10923", for reports.
[[nodiscard]] std::string ranges_text(const std::vector<SlotRange>& ranges);

// The ids of the masters of `next` that may lack keys of their slots: each
// serves a slot that had a master in `prev`, and was not itself a master in
// `prev` (a promoted replica, or a node `prev` did not know). None when
// `prev` is empty (the first map: the client knows no keys yet).
[[nodiscard]] std::vector<std::string> fresh_masters(const SlotMap& prev, const SlotMap& next);

// A MOVED or ASK error: "MOVED 3999 127.0.0.1:6381".
struct Redirect {
  enum class Kind : std::uint8_t { kMoved, kAsk };
  Kind kind = Kind::kMoved;
  unsigned slot = 0;
  std::string host;  // empty: the node that replied (an unknown endpoint)
  std::uint16_t port = 0;
};
[[nodiscard]] std::optional<Redirect> parse_redirect(std::string_view error);

}  // namespace redlock::detail
