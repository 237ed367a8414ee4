// Client::inspect(): whether a resource is locked, as a majority of the nodes
// sees it, without taking anything.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "keys.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

class InspectTest : public ClusterTest {
 protected:
  std::size_t lock_keys_anywhere(const std::string& resource) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      auto v = cluster().command(i, {"EXISTS", detail::lock_key(resource)});
      n += v && *v == "1" ? 1U : 0U;
    }
    return n;
  }
};

TEST_F(InspectTest, FreeHeldAndReleasedAsTheNodesSeeIt) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  auto before = client->inspect("inspect:a", scaled(2s));
  ASSERT_TRUE(before) << before.error();
  EXPECT_FALSE(before->held);
  EXPECT_EQ(before->holding, 0U);
  EXPECT_GE(before->free, 3U);
  EXPECT_EQ(before->ttl.count(), 0);
  EXPECT_EQ(lock_keys_anywhere("inspect:a"), 0U) << "inspecting takes nothing";

  auto lock = client->acquire("inspect:a", 10s);
  ASSERT_TRUE(lock) << lock.error();
  auto held = client->inspect("inspect:a", scaled(2s));
  ASSERT_TRUE(held) << held.error();
  EXPECT_TRUE(held->held);
  EXPECT_GE(held->holding, 3U);
  EXPECT_GT(held->ttl.count(), 0);
  EXPECT_LE(held->ttl.count(), 10000);

  ASSERT_TRUE(client->release(*lock));
  auto after = client->inspect("inspect:a", scaled(2s));
  ASSERT_TRUE(after) << after.error();
  EXPECT_FALSE(after->held);
}

TEST_F(InspectTest, AMinorityOfKeysIsNotALock) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  const auto key = detail::lock_key("inspect:minority");
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(cluster().command(i, {"SET", key, "someone", "PX", "10000"}));
  }
  auto state = client->inspect("inspect:minority", scaled(2s));
  ASSERT_TRUE(state) << state.error();
  EXPECT_FALSE(state->held);
  EXPECT_EQ(state->free, 3U);
  for (std::size_t i = 0; i < 2; ++i) ASSERT_TRUE(cluster().command(i, {"DEL", key}));
}

TEST_F(InspectTest, AKeyWithoutTtlHoldsForEver) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  const auto key = detail::lock_key("inspect:forever");
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, {"SET", key, "someone"}));
  }
  auto state = client->inspect("inspect:forever", scaled(2s));
  ASSERT_TRUE(state) << state.error();
  EXPECT_TRUE(state->held);
  EXPECT_EQ(state->ttl, std::chrono::milliseconds::max());
  for (std::size_t i = 0; i < cluster().size(); ++i)
    ASSERT_TRUE(cluster().command(i, {"DEL", key}));
}

TEST_F(InspectTest, TwoStalledNodesStillLeaveAnAnswer) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("inspect:stalled", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(cluster().pause(3).has_value());
  ASSERT_TRUE(cluster().pause(4).has_value());
  auto state = client->inspect("inspect:stalled", scaled(2s));
  ASSERT_TRUE(cluster().resume(3).has_value());
  ASSERT_TRUE(cluster().resume(4).has_value());
  ASSERT_TRUE(state) << state.error();
  EXPECT_TRUE(state->held);
  EXPECT_EQ(state->holding, 3U);
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(InspectTest, TooFewAnswersIsNoQuorumNotAGuess) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  for (std::size_t i = 2; i < 5; ++i) ASSERT_TRUE(cluster().pause(i).has_value());
  auto state = client->inspect("inspect:unknown", scaled(300ms));
  for (std::size_t i = 2; i < 5; ++i) ASSERT_TRUE(cluster().resume(i).has_value());
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().code(), ErrorCode::kNoQuorum) << state.error();
  EXPECT_THAT(state.error().message(), ::testing::HasSubstr("cannot tell whether it is locked"));
  ASSERT_EQ(state.error().nodes().size(), 5U);
  EXPECT_EQ(state.error().nodes()[4].status, NodeStatus::kTimeout);
}

TEST_F(InspectTest, BadArgumentsAreRefusedAtOnce) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  auto empty_timeout = client->inspect("inspect:x", std::chrono::milliseconds(0));
  ASSERT_FALSE(empty_timeout);
  EXPECT_EQ(empty_timeout.error().code(), ErrorCode::kInvalidArgument);
  auto bytes = client->inspect(std::string("z\xff\0y", 4), scaled(2s));
  ASSERT_TRUE(bytes) << bytes.error();  // any bytes are a name
  EXPECT_FALSE(bytes->held);
}

}  // namespace
}  // namespace redlock::testing
