// Nodes that stall, die, restart empty and answer late.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <iostream>

#include "test_util.hpp"

namespace redlock::testing {
namespace {

class FaultTest : public ClusterTest {
 protected:
  std::unique_ptr<Client> connect(std::chrono::milliseconds node_timeout) {
    auto o = client_options(addresses());
    o.node_timeout = node_timeout;
    return connect_or_fail(o);
  }
};

TEST_F(FaultTest, TwoOfFiveStoppedStillGrantsWithoutWaitingForThem) {
  auto client = connect(scaled(200ms));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(cluster().pause(0));
  ASSERT_TRUE(cluster().pause(3));
  const auto t0 = std::chrono::steady_clock::now();
  auto lock = client->acquire("res:two-down", 10s);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(lock) << lock.error();
  // Decided by the three live nodes: the stopped ones had not answered yet.
  EXPECT_EQ(count_status(lock->votes(), NodeStatus::kOk), 3u);
  EXPECT_EQ(lock->votes()[0].status, NodeStatus::kPending);
  EXPECT_EQ(lock->votes()[3].status, NodeStatus::kPending);
  EXPECT_LT(took, scaled(2s));  // anti-hang bound only
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 3);
  // The SETs queued for the stopped nodes run when they resume, and so do the
  // releases queued behind them: TearDown finds no key.
  ASSERT_TRUE(cluster().resume(0));
  ASSERT_TRUE(cluster().resume(3));
}

// ClientOptions::release_wait's default, kMajority: a blocking release
// reports once a majority deleted the key, not after release_timeout for the
// stopped nodes, and their deletes still run when they resume.
TEST_F(FaultTest, ByDefaultAReleaseDoesNotWaitForStoppedNodes) {
  auto o = client_options(addresses());
  o.node_timeout = scaled(200ms);
  o.release_wait = ClientOptions::ReleaseWait::kMajority;
  o.release_timeout = 10s;
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(cluster().pause(0));
  ASSERT_TRUE(cluster().pause(3));
  auto lock = client->acquire("res:majority-release", 10s);
  ASSERT_TRUE(lock) << lock.error();
  const auto t0 = std::chrono::steady_clock::now();
  auto released = client->release(*lock);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(released) << released.error();
  EXPECT_LT(took, o.release_timeout / 2) << "it waited for the stopped nodes";
  EXPECT_EQ(released->deleted, 3) << Error(ErrorCode::kInternal, "report", released->nodes);
  for (std::size_t i : {0u, 3u}) {
    EXPECT_EQ(released->nodes[i].status, NodeStatus::kPending) << "node " << i + 1;
    EXPECT_THAT(released->nodes[i].detail, ::testing::HasSubstr("on its way"));
  }
  // The lock is free: another client takes it from the three live nodes.
  auto other = connect_or_fail(o);
  ASSERT_NE(other, nullptr);
  auto next = other->acquire("res:majority-release", 10s);
  ASSERT_TRUE(next) << next.error();
  auto next_released = other->release(*next);
  ASSERT_TRUE(next_released) << next_released.error();
  // The stopped nodes run the first lock's SET and then its delete when they
  // resume (the second client's SET found them stopped as well, and its
  // delete follows it): no key is left on any node.
  ASSERT_TRUE(cluster().resume(0));
  ASSERT_TRUE(cluster().resume(3));
  expect_no_keys(scaled(3s));
}

// A client destroyed right after releases that reported at a majority:
// the deletes still on their way had been sent, and run.
TEST_F(FaultTest, AClientGoneRightAfterMajorityReleasesLeavesNoKey) {
  auto o = client_options(addresses());
  o.release_wait = ClientOptions::ReleaseWait::kMajority;
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  std::size_t early = 0;
  for (int i = 0; i < 200; ++i) {
    auto lock = client->acquire("res:gone:" + std::to_string(i % 7), 10s);
    ASSERT_TRUE(lock) << lock.error();
    auto released = client->release(*lock);
    ASSERT_TRUE(released) << released.error();
    ASSERT_GE(released->deleted, 3);
    early += count_status(released->nodes, NodeStatus::kPending) > 0 ? 1U : 0U;
  }
  client.reset();
  expect_no_keys(scaled(3s));
  // How many of the 200 reported before every node answered depends on the
  // machine; it is printed, not asserted.
  std::cout << "[ info ] " << early << " of 200 releases reported before the last node answered\n";
}

TEST_F(FaultTest, ThreeOfFiveKilledFailsAtOnceWithNoQuorum) {
  auto client = connect(scaled(200ms));
  ASSERT_NE(client, nullptr);
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().kill(i));
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        auto c = client->connected();
        return !c[0] && !c[1] && !c[2];
      },
      scaled(2s)));
  auto lock = client->acquire("res:three-down", 10s);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  EXPECT_EQ(count_status(lock.error().nodes(), NodeStatus::kDisconnected), 3u) << lock.error();
}

TEST_F(FaultTest, ThreeOfFiveStoppedFailsAfterOneNodeTimeout) {
  const auto node_timeout = scaled(100ms);
  auto client = connect(node_timeout);
  ASSERT_NE(client, nullptr);
  for (std::size_t i : {1u, 2u, 4u}) ASSERT_TRUE(cluster().pause(i));
  const auto t0 = std::chrono::steady_clock::now();
  auto lock = client->acquire("res:three-stopped", 10s);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  EXPECT_EQ(count_status(lock.error().nodes(), NodeStatus::kTimeout), 3u) << lock.error();
  EXPECT_EQ(count_status(lock.error().nodes(), NodeStatus::kOk), 2u) << lock.error();
  EXPECT_GE(took, node_timeout);
  EXPECT_LT(took, scaled(2s));
  // Two nodes said OK; the failed round released them, and the stopped nodes
  // run SET then release when they resume.
  for (std::size_t i : {1u, 2u, 4u}) ASSERT_TRUE(cluster().resume(i));
}

TEST_F(FaultTest, LateOkAfterTheRoundFailedLeavesNoKey) {
  auto client = connect(scaled(50ms));
  ASSERT_NE(client, nullptr);
  // Three nodes stall for a while: their OKs arrive long after the round
  // was decided as failed.
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(stall(cluster(), i, 0.5));
  auto lock = client->acquire("res:late", 10s);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  // Once they wake, the key must be gone from all of them.
  std::this_thread::sleep_for(500ms);
  expect_no_keys(scaled(3s));
}

TEST_F(FaultTest, GrantThatCameTooLateIsRefusedAndReleased) {
  auto client = connect(900ms);  // must stay below the 1 s ttl
  ASSERT_NE(client, nullptr);
  // A majority answers only after several hundred ms of a 1 s ttl: asking for 800 ms of
  // validity, the grant is worthless and must not be handed out.
  for (std::size_t i : {0u, 1u, 2u, 3u}) ASSERT_TRUE(stall(cluster(), i, 0.6));
  AcquireOptions how;
  how.min_validity = 800ms;
  auto lock = client->acquire("res:too-late", 1000ms, how);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kValidityExhausted) << lock.error();
  expect_no_keys(scaled(3s));
}

TEST_F(FaultTest, KilledNodeIsReconnectedAndVotesAgainAfterRestart) {
  auto client = connect(scaled(200ms));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(cluster().kill(2));
  ASSERT_TRUE(eventually([&]() -> bool { return !client->connected()[2]; }, scaled(2s)));
  auto without = client->acquire("res:restart", 10s);
  ASSERT_TRUE(without) << without.error();
  EXPECT_EQ(without->votes()[2].status, NodeStatus::kDisconnected);
  ASSERT_TRUE(client->release(*without));

  ASSERT_TRUE(cluster().restart(2));
  ASSERT_TRUE(eventually([&]() -> bool { return client->connected()[2]; }, scaled(5s)))
      << "the client did not reconnect to the restarted node";
  // The restarted node is empty and takes part again, once the client has
  // sampled its clock (a few ms after it connects): bounded in time, not in
  // acquires, which can all fit into those few ms.
  bool voted = false;
  const auto deadline = std::chrono::steady_clock::now() + scaled(5s);
  while (!voted && std::chrono::steady_clock::now() < deadline) {
    auto lock = client->acquire("res:restart", 10s);
    ASSERT_TRUE(lock) << lock.error();
    voted = lock->votes()[2].status == NodeStatus::kOk;
    auto released = client->release(*lock);
    ASSERT_TRUE(released) << released.error();
  }
  EXPECT_TRUE(voted) << "node 3 never voted again after its restart";
}

TEST_F(FaultTest, ANodeDownAtStartDoesNotStopTheClient) {
  ASSERT_TRUE(cluster().kill(4));
  auto client = connect(scaled(200ms));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->connected(), (std::vector<bool>{true, true, true, true, false}));
  auto lock = client->acquire("res:down-at-start", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_EQ(lock->votes()[4].status, NodeStatus::kDisconnected);
  ASSERT_TRUE(client->release(*lock));
  // It comes up later: the client finds it without being told.
  ASSERT_TRUE(cluster().restart(4));
  EXPECT_TRUE(eventually([&]() -> bool { return client->connected()[4]; }, scaled(5s)));
}

TEST_F(FaultTest, AStalledNodeDoesNotSlowTheOthers) {
  auto client = connect(scaled(100ms));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(stall(cluster(), 1, 2.0));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::future<Result<ReleaseReport>>> releases;
  for (int i = 0; i < 20; ++i) {
    auto lock = client->acquire("res:stall:" + std::to_string(i), 10s);
    ASSERT_TRUE(lock) << lock.error();
    EXPECT_EQ(lock->votes()[1].status, NodeStatus::kPending) << "iteration " << i;
    // A blocking release would wait release_timeout for the stalled node.
    releases.push_back(client->async_release(*lock));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, scaled(1500ms));  // anti-hang
  for (auto& f : releases) {
    auto r = f.get();
    ASSERT_TRUE(r) << r.error();
    EXPECT_GE(r->deleted, 4);
  }
  std::this_thread::sleep_for(1s);
  expect_no_keys(scaled(3s));
}

TEST_F(FaultTest, ReleaseWhileANodeIsDownIsReplayedWhenItReturns) {
  auto client = connect(scaled(200ms));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(cluster().pause(0));
  auto lock = client->acquire("res:replay", 10s);
  ASSERT_TRUE(lock) << lock.error();
  // Kill the connection under the pending SET: the server will not run it,
  // but the client cannot know that and must release it when it can.
  ASSERT_TRUE(cluster().kill(0));
  ASSERT_TRUE(eventually([&]() -> bool { return !client->connected()[0]; }, scaled(2s)));
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 4) << Error(ErrorCode::kInternal, "report", released->nodes);
  EXPECT_EQ(released->nodes[0].status, NodeStatus::kDisconnected);
  ASSERT_TRUE(cluster().restart(0));
  EXPECT_TRUE(eventually([&]() -> bool { return client->connected()[0]; }, scaled(5s)));
}

}  // namespace
}  // namespace redlock::testing
