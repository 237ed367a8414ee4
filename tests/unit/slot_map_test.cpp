// Redis Cluster, the pure parts: cluster:// addresses, the slot map read
// from CLUSTER SHARDS and CLUSTER SLOTS replies, which masters a failover
// made, MOVED and ASK, the one-slot rule for lock sets, and the sharded
// pub/sub pushes.
#include "slot_map.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "address.hpp"
#include "keys.hpp"
#include "validate.hpp"
#include "wake.hpp"

namespace redlock::detail {
namespace {

using ::testing::HasSubstr;

Reply bulk(std::string s) {
  Reply r;
  r.type = Reply::Type::kString;
  r.str = std::move(s);
  return r;
}
Reply integer(long long v) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = v;
  return r;
}
Reply array(std::vector<Reply> e) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements = std::move(e);
  return r;
}

// A CLUSTER SHARDS node entry, as Redis 7.0 writes it.
Reply shard_node(const std::string& id, int port, const std::string& role,
                 const std::string& health = "online", const std::string& endpoint = "127.0.0.1") {
  return array({bulk("id"), bulk(id), bulk("port"), integer(port), bulk("ip"), bulk("127.0.0.1"),
                bulk("endpoint"), bulk(endpoint), bulk("role"), bulk(role),
                bulk("replication-offset"), integer(100), bulk("health"), bulk(health)});
}
Reply shard(std::vector<Reply> slots, std::vector<Reply> nodes) {
  return array({bulk("slots"), array(std::move(slots)), bulk("nodes"), array(std::move(nodes))});
}

// Three masters, each with one replica.
Reply three_shards(const std::string& first_master = "m1") {
  return array({
      shard({integer(10923), integer(16383)},
            {shard_node("m3", 7003, "master"), shard_node("r3", 7006, "replica")}),
      shard({integer(0), integer(5460)},
            {shard_node(first_master, first_master == "m1" ? 7001 : 7004, "master"),
             shard_node(first_master == "m1" ? "r1" : "m1", first_master == "m1" ? 7004 : 7001,
                        "replica")}),
      shard({integer(5461), integer(10922)},
            {shard_node("m2", 7002, "master"), shard_node("r2", 7005, "replica")}),
  });
}

TEST(ClusterAddress, SeedsCredentialsAndDisplay) {
  auto a = parse_node("cluster://app:s3cret@10.0.0.1:7001,[::1]:7002,redis-3:7003");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->kind, NodeAddress::Kind::kCluster);
  ASSERT_EQ(a->seeds.size(), 3u);
  EXPECT_EQ(a->seeds[0].host, "10.0.0.1");
  EXPECT_EQ(a->seeds[1].host, "::1");
  EXPECT_EQ(a->seeds[2].port, 7003);
  EXPECT_EQ(a->username, "app");
  EXPECT_EQ(a->password, "s3cret");
  EXPECT_EQ(a->display, "cluster://app:***@10.0.0.1:7001,[::1]:7002,redis-3:7003");
}

TEST(ClusterAddress, RefusesWhatACLusterCannotBe) {
  for (const auto* text : {"cluster://", "cluster://127.0.0.1", "cluster://127.0.0.1:7001,",
                           "cluster://127.0.0.1:7001/2"}) {
    auto a = parse_node(text);
    ASSERT_FALSE(a) << text;
    EXPECT_EQ(a.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_THAT(parse_node("cluster://127.0.0.1:7001/2").error().message(), HasSubstr("database"));
  EXPECT_THAT(parse_node("clusters://127.0.0.1:7001").error().message(), HasSubstr("cluster://"));
}

TEST(ClusterAddress, TheSameClusterTwiceIsRefused) {
  ClientOptions o;
  o.nodes = {"cluster://127.0.0.1:7001,127.0.0.1:7002", "cluster://127.0.0.1:7001,127.0.0.1:7002"};
  auto r = validate_client_options(o);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("listed twice"));
}

TEST(OneSlot, SetsMustShareAHashSlot) {
  EXPECT_TRUE(validate_one_slot({"a"}));
  EXPECT_TRUE(validate_one_slot({"{o:1}:items", "{o:1}:payment", "{o:1}"}));
  auto r = validate_one_slot({"{o:1}:items", "{o:2}:items"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().message(), HasSubstr("\"{o:1}:items\""));
  EXPECT_THAT(r.error().message(), HasSubstr("\"{o:2}:items\""));
  EXPECT_THAT(r.error().message(), HasSubstr("common {hash tag}"));
  // Every key and channel of a resource lies in its slot.
  using namespace std::string_literals;
  for (const auto& name : {"x"s, "{t}:y"s, "a}b%c"s, ""s, "{}"s, "x{}y"s, "a{b"s, "%}%"s, "}{"s,
                           "\xff\0{}}"s, "{a}{b}"s, "{{a}}"s}) {
    EXPECT_EQ(key_slot(lock_key(name)), resource_slot(name));
    EXPECT_EQ(key_slot(fence_key(name)), resource_slot(name));
    EXPECT_EQ(key_slot(release_channel(name)), resource_slot(name));
  }
  EXPECT_EQ(resource_slot("{user1000}:a"), key_slot("user1000"));
}

TEST(SlotMap, FromClusterShardsInSlotOrder) {
  auto map = SlotMap::from_shards(three_shards(), "127.0.0.1");
  ASSERT_TRUE(map) << map.error();
  ASSERT_EQ(map->shards().size(), 3u);
  EXPECT_EQ(map->covered(), kSlotCount);
  EXPECT_EQ(map->shards()[0].master.port, 7001);
  EXPECT_EQ(map->shards()[0].master.id, "m1");
  ASSERT_EQ(map->shards()[0].replicas.size(), 1u);
  EXPECT_EQ(map->shards()[0].replicas[0].port, 7004);
  EXPECT_EQ(ranges_text(map->shards()[2].ranges), "10923-16383");
  EXPECT_EQ(map->shard_of(0), 0u);
  EXPECT_EQ(map->shard_of(5461), 1u);
  EXPECT_EQ(map->shard_of(16383), 2u);
  EXPECT_EQ(map->shard_at("127.0.0.1", 7002), 1u);
  EXPECT_EQ(map->replica_at("127.0.0.1", 7006), 2u);
  EXPECT_FALSE(map->shard_at("127.0.0.1", 7006));
  EXPECT_TRUE(map->is_master("m2"));
  EXPECT_FALSE(map->is_master("r2"));
}

TEST(SlotMap, UncoveredSlotsEmptyEndpointsAndFailedMasters) {
  auto reply = array({
      // Only part of the slots; a master without slots serves nothing.
      shard({integer(0), integer(99), integer(200), integer(299)},
            {shard_node("m1", 7001, "master", "online", "")}),
      shard({}, {shard_node("m9", 7009, "master")}),
      // A failed master next to the one that took over: the live one.
      shard({integer(100), integer(199)},
            {shard_node("old", 7002, "master", "failed"), shard_node("new", 7005, "master")}),
      // An unknown endpoint: unusable.
      shard({integer(300), integer(399)}, {shard_node("m4", 7004, "master", "online", "?")}),
  });
  auto map = SlotMap::from_shards(reply, "10.1.2.3");
  ASSERT_TRUE(map) << map.error();
  EXPECT_EQ(map->covered(), 300u);
  ASSERT_EQ(map->shards().size(), 2u);
  EXPECT_EQ(map->shards()[0].master.host, "10.1.2.3");  // the node asked
  EXPECT_EQ(ranges_text(map->shards()[0].ranges), "0-99,200-299");
  EXPECT_EQ(map->shards()[1].master.id, "new");
  EXPECT_FALSE(map->shard_of(300));
}

TEST(SlotMap, FromClusterSlotsGroupsRangesByMaster) {
  auto node = [](const std::string& host, int port, const std::string& id) {
    return array({bulk(host), integer(port), bulk(id)});
  };
  auto reply = array({
      array(
          {integer(0), integer(100), node("127.0.0.1", 7001, "m1"), node("127.0.0.1", 7004, "r1")}),
      array({integer(101), integer(200), node("127.0.0.1", 7002, "m2")}),
      array({integer(201), integer(16383), node("127.0.0.1", 7001, "m1")}),
  });
  auto map = SlotMap::from_slots(reply, "127.0.0.1");
  ASSERT_TRUE(map) << map.error();
  ASSERT_EQ(map->shards().size(), 2u);
  EXPECT_EQ(ranges_text(map->shards()[0].ranges), "0-100,201-16383");
  EXPECT_EQ(map->shards()[0].replicas.size(), 1u);
  EXPECT_EQ(map->covered(), kSlotCount);
}

TEST(SlotMap, MalformedRepliesAreErrors) {
  EXPECT_FALSE(SlotMap::from_shards(bulk("nope"), "h"));
  EXPECT_FALSE(SlotMap::from_shards(array({array({bulk("slots")})}), "h"));
  // Two masters claiming one slot.
  auto twice = array({shard({integer(0), integer(10)}, {shard_node("a", 1, "master")}),
                      shard({integer(5), integer(20)}, {shard_node("b", 2, "master")})});
  auto r = SlotMap::from_shards(twice, "h");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("two masters"));
  EXPECT_FALSE(SlotMap::from_slots(array({array({integer(0), integer(99999), array({})})}), "h"));
}

TEST(FreshMasters, APromotedReplicaIsFreshAResharderIsNot) {
  auto before = SlotMap::from_shards(three_shards(), "h");
  ASSERT_TRUE(before);
  // The first map: nothing to compare with.
  EXPECT_TRUE(fresh_masters(SlotMap(), *before).empty());
  // r1 took over m1's slots.
  auto after = SlotMap::from_shards(three_shards("r1"), "h");
  ASSERT_TRUE(after);
  EXPECT_EQ(fresh_masters(*before, *after), std::vector<std::string>{"r1"});
  // Slots moved from m1 to m2 (resharding): m2 was a master already.
  auto resharded = array({
      shard({integer(0), integer(100)}, {shard_node("m2", 7002, "master")}),
      shard({integer(101), integer(16383)}, {shard_node("m1", 7001, "master")}),
  });
  auto moved = SlotMap::from_shards(resharded, "h");
  ASSERT_TRUE(moved);
  EXPECT_TRUE(fresh_masters(*before, *moved).empty());
  // A new node given slots that had a master is fresh too.
  auto added = array({shard({integer(0), integer(16383)}, {shard_node("n", 7010, "master")})});
  auto with_new = SlotMap::from_shards(added, "h");
  ASSERT_TRUE(with_new);
  EXPECT_EQ(fresh_masters(*before, *with_new), std::vector<std::string>{"n"});
}

TEST(Redirect, MovedAndAsk) {
  auto m = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->kind, Redirect::Kind::kMoved);
  EXPECT_EQ(m->slot, 3999u);
  EXPECT_EQ(m->host, "127.0.0.1");
  EXPECT_EQ(m->port, 6381);
  auto a = parse_redirect("ASK 1 [::1]:7000");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, Redirect::Kind::kAsk);
  EXPECT_EQ(a->host, "::1");
  auto blank = parse_redirect("MOVED 7 :7002");  // an unknown endpoint
  ASSERT_TRUE(blank);
  EXPECT_EQ(blank->host, "");
  for (const auto* bad : {"MOVED", "MOVED 16384 h:1", "MOVED x h:1", "ASK 1 h", "ASK 1 h:0",
                          "TRYAGAIN Multiple keys request during rehashing of slot",
                          "CLUSTERDOWN The cluster is down"}) {
    EXPECT_FALSE(parse_redirect(bad)) << bad;
  }
}

TEST(ShardedPubSub, PushesReadAsTheClassicOnes) {
  auto e = read_push(array({bulk("smessage"), bulk("redlock:{x}:released:x"), bulk("")}));
  EXPECT_EQ(e.kind, PushEvent::Kind::kMessage);
  EXPECT_EQ(e.channel, "redlock:{x}:released:x");
  EXPECT_EQ(read_push(array({bulk("ssubscribe"), bulk("c"), integer(1)})).kind,
            PushEvent::Kind::kSubscribe);
  EXPECT_EQ(read_push(array({bulk("sunsubscribe"), bulk("c"), integer(0)})).kind,
            PushEvent::Kind::kUnsubscribe);
}

}  // namespace
}  // namespace redlock::detail
