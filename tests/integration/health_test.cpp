// What Client::health(), quorum_available() and the metrics say about the
// nodes: the truth about who votes, not only who is connected.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace redlock::testing {
namespace {

class HealthTest : public ClusterTest {};

TEST_F(HealthTest, HealthyClusterReportsEveryNodeVotingWithItsServerFacts) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually([&]() -> bool { return client->quorum_available(); }, scaled(2s)));
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  EXPECT_EQ(health->quorum, 3u);
  EXPECT_EQ(health->voting, 5u);
  EXPECT_TRUE(health->quorum_available());
  ASSERT_EQ(health->nodes.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto& n = health->nodes[i];
    SCOPED_TRACE(n.node);
    EXPECT_EQ(n.node, addresses()[i]);
    EXPECT_TRUE(n.reachable);
    EXPECT_TRUE(n.answering);
    EXPECT_TRUE(n.voting);
    EXPECT_EQ(n.not_voting_reason, "");
    EXPECT_FALSE(n.version.empty());
    EXPECT_EQ(n.run_id.size(), 40u);
    EXPECT_TRUE(n.uptime.has_value());
    EXPECT_TRUE(n.rtt.has_value());
    // The local cluster runs without persistence.
    ASSERT_TRUE(n.aof_enabled.has_value());
    EXPECT_FALSE(*n.aof_enabled);
    EXPECT_EQ(n.appendfsync, "everysec");
    EXPECT_EQ(n.maxmemory_policy, "noeviction");
    EXPECT_FALSE(n.eviction_can_drop_locks);
    EXPECT_FALSE(n.tls);
  }
  const auto m = client->metrics();
  EXPECT_TRUE(m.quorum_available);
  for (const auto& n : m.nodes) EXPECT_TRUE(n.voting) << n.node;
  const auto text = to_prometheus(m);
  EXPECT_THAT(text, ::testing::HasSubstr("redlock_quorum_available 1\n"));
  EXPECT_THAT(text, ::testing::HasSubstr("redlock_node_voting{node=\"" + addresses()[0] + "\"} 1"));
}

TEST_F(HealthTest, YoungNodesAreReachableButDoNotVoteAndSayForHowLong) {
  // Default restart grace (max_ttl plus drift): nodes just started are too
  // young to vote.
  auto o = client_options(addresses());
  o.restart_grace.reset();
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  EXPECT_EQ(health->voting, 0u);
  EXPECT_FALSE(health->quorum_available());
  EXPECT_FALSE(client->quorum_available());
  for (const auto& n : health->nodes) {
    SCOPED_TRACE(n.node);
    EXPECT_TRUE(n.reachable);
    EXPECT_TRUE(n.answering);
    EXPECT_FALSE(n.voting);
    EXPECT_THAT(n.not_voting_reason, ::testing::HasSubstr("up for only"));
    ASSERT_TRUE(n.votes_again_in.has_value());
    EXPECT_GT(*n.votes_again_in, 50s);
    EXPECT_LE(*n.votes_again_in, 61s);
  }
  const auto m = client->metrics();
  EXPECT_FALSE(m.quorum_available);
  for (const auto& n : m.nodes) {
    EXPECT_TRUE(n.connected) << n.node;
    EXPECT_FALSE(n.voting) << n.node;
  }
}

TEST_F(HealthTest, StoppedNodesAreNotConnectedOnceACommandWaitsPastTheStallThreshold) {
  auto o = client_options(addresses());
  o.clock_check_interval = 100ms;  // keeps a command on every connection
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually([&]() -> bool { return client->quorum_available(); }, scaled(2s)));
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().pause(i));
  ASSERT_TRUE(eventually([&]() -> bool { return !client->quorum_available(); }, scaled(5s)));
  const auto m = client->metrics();
  EXPECT_FALSE(m.quorum_available);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(m.nodes[i].connected, i >= 3) << m.nodes[i].node;
    EXPECT_EQ(m.nodes[i].voting, i >= 3) << m.nodes[i].node;
  }
  EXPECT_THAT(to_prometheus(m),
              ::testing::HasSubstr("redlock_node_connected{node=\"" + addresses()[0] + "\"} 0"));
  auto health = client->health(scaled(500ms));
  ASSERT_TRUE(health) << health.error();
  EXPECT_EQ(health->voting, 2u);
  EXPECT_TRUE(health->nodes[0].reachable);
  EXPECT_FALSE(health->nodes[0].answering);
  EXPECT_THAT(health->nodes[0].not_voting_reason, ::testing::HasSubstr("not answering"));
  EXPECT_FALSE(health->nodes[0].rtt.has_value());
  EXPECT_THAT(health->nodes[0].error, ::testing::HasSubstr("no answer to INFO"));

  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().resume(i));
  EXPECT_TRUE(eventually([&]() -> bool { return client->quorum_available(); }, scaled(5s)));
}

TEST_F(HealthTest, KilledNodesAreUnreachableWithTheirError) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  for (std::size_t i : {3u, 4u}) ASSERT_TRUE(cluster().kill(i));
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        auto c = client->connected();
        return !c[3] && !c[4];
      },
      scaled(2s)));
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  EXPECT_EQ(health->voting, 3u);
  EXPECT_TRUE(health->quorum_available());
  EXPECT_FALSE(health->nodes[4].reachable);
  EXPECT_FALSE(health->nodes[4].voting);
  EXPECT_THAT(health->nodes[4].not_voting_reason, ::testing::StartsWith("not connected"));
  EXPECT_FALSE(health->nodes[4].error.empty());
}

class EvictingHealthTest : public ClusterTest {
 protected:
  redlock::cluster::ClusterOptions cluster_options() const override {
    redlock::cluster::ClusterOptions o;
    o.extra_args = {"--maxmemory-policy", "volatile-lru", "--appendonly", "yes",
                    "--appendfsync",      "always"};
    return o;
  }
};

TEST_F(EvictingHealthTest, AnEvictionPolicyThatCanDropLockKeysIsFlagged) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  for (const auto& n : health->nodes) {
    SCOPED_TRACE(n.node);
    EXPECT_EQ(n.maxmemory_policy, "volatile-lru");
    EXPECT_TRUE(n.eviction_can_drop_locks);
    ASSERT_TRUE(n.aof_enabled.has_value());
    EXPECT_TRUE(*n.aof_enabled);
    EXPECT_EQ(n.appendfsync, "always");
  }
}

TEST(HealthArguments, ATimeoutThatIsNotPositiveIsRefused) {
  ClientOptions o;
  o.nodes = {"127.0.0.1:1"};
  o.connect_timeout = 100ms;
  auto client = Client::connect(o);
  ASSERT_TRUE(client) << client.error();
  auto health = (*client)->health(0ms);
  ASSERT_FALSE(health);
  EXPECT_EQ(health.error().code(), ErrorCode::kInvalidArgument) << health.error();
}

}  // namespace
}  // namespace redlock::testing
