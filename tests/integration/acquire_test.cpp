// Acquire and release against a real 5-node cluster.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

#include "keys.hpp"
#include "protocol.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using ::testing::HasSubstr;

class AcquireTest : public ClientTest {
 protected:
  std::size_t nodes_holding(const std::string& resource, const std::string& token) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      auto v = cluster().get(i, detail::lock_key(resource));
      if (v && *v && **v == token) ++n;
    }
    return n;
  }
};

TEST_F(AcquireTest, AcquireSetsTheKeyOnAMajorityAndReleaseDeletesItEverywhere) {
  auto lock = client_->acquire("res:basic", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_EQ(lock->resource(), "res:basic");
  EXPECT_EQ(lock->token().size(), 32u);
  EXPECT_FALSE(lock->expired());
  EXPECT_GT(lock->remaining(), 9s);
  EXPECT_LE(lock->remaining(), 10s);
  ASSERT_EQ(lock->votes().size(), 5u);
  EXPECT_GE(count_status(lock->votes(), NodeStatus::kOk), client_->quorum());
  // All five SETs were sent; by now every node has executed its own.
  EXPECT_TRUE(eventually([&]() -> bool { return nodes_holding("res:basic", lock->token()) == 5; },
                         scaled(2s)));

  auto released = client_->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
  EXPECT_EQ(count_status(released->nodes, NodeStatus::kOk), 5u);
  EXPECT_EQ(nodes_holding("res:basic", lock->token()), 0u);
}

TEST_F(AcquireTest, SecondAcquireOfAHeldResourceIsRefusedAsHeldByAnother) {
  auto first = client_->acquire("res:held", 10s);
  ASSERT_TRUE(first) << first.error();
  auto second = client_->acquire("res:held", 10s);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kHeldByAnother) << second.error();
  EXPECT_GE(count_status(second.error().nodes(), NodeStatus::kRefused), client_->quorum());
  ASSERT_TRUE(client_->release(*first));
  auto third = client_->acquire("res:held", 10s);
  ASSERT_TRUE(third) << third.error();
  ASSERT_TRUE(client_->release(*third));
}

TEST_F(AcquireTest, TheFencedAcquireSaysWhoseTheKeyIsWhenItRefuses) {
  const std::string key = detail::lock_key("res:whose");
  const std::string counter = detail::fence_key("res:whose");
  const auto run = [&](const std::string& token) {
    return cluster().command(0, {"EVAL", std::string(detail::kFencedAcquireOneScript.body), "2",
                                 key, counter, token, "10000", "0"});
  };
  auto granted = run("token-a");
  ASSERT_TRUE(granted) << granted.error();
  EXPECT_GT(std::stoll(*granted), 0);
  auto own = run("token-a");  // an earlier round of the same acquire set it
  ASSERT_TRUE(own) << own.error();
  EXPECT_EQ(*own, "-1");
  auto other = run("token-b");
  ASSERT_TRUE(other) << other.error();
  EXPECT_EQ(*other, "0");
  // Neither refusal counted the fence up.
  auto fence = cluster().get(0, counter);
  ASSERT_TRUE(fence && *fence) << "no counter";
  EXPECT_EQ(**fence, *granted);
  ASSERT_TRUE(cluster().command(0, {"DEL", key, counter}));
}

TEST_F(AcquireTest, AFailedRoundSendsNoReleaseWhereAnotherTokenHoldsTheKey) {
  const auto evalsha_calls = [&](std::size_t node) -> long long {
    auto info = cluster().command(node, {"INFO", "commandstats"});
    if (!info) return -1;
    const auto at = info->find("cmdstat_evalsha:calls=");
    return at == std::string::npos ? 0 : std::stoll(info->substr(at + 22));
  };
  auto first = client_->acquire("res:foreign", 10s);
  ASSERT_TRUE(first) << first.error();
  ASSERT_TRUE(eventually(
      [&]() -> bool { return nodes_holding("res:foreign", first->token()) == 5U; }, scaled(2s)));
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, {"CONFIG", "RESETSTAT"}));
  }
  auto second = client_->acquire("res:foreign", 10s);  // one round
  ASSERT_FALSE(second);
  // Another acquire and release on the same connections: once each node has
  // run both, it has run anything the failed round sent before them.
  auto after = client_->acquire("res:foreign:after", 10s);
  ASSERT_TRUE(after) << after.error();
  ASSERT_TRUE(client_->release(*after));
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(eventually([&]() -> bool { return evalsha_calls(i) >= 3; }, scaled(2s)))
        << "node " << i + 1;
    if (second.error().nodes()[i].status == NodeStatus::kRefused) {
      EXPECT_EQ(evalsha_calls(i), 3) << "node " << i + 1 << " refused, yet was sent a release";
    } else {
      // Not yet answered when the round failed: released, in case it set it.
      EXPECT_EQ(evalsha_calls(i), 4) << "node " << i + 1;
    }
  }
  EXPECT_GE(count_status(second.error().nodes(), NodeStatus::kRefused), client_->quorum());
  EXPECT_EQ(nodes_holding("res:foreign", first->token()), 5U);
  ASSERT_TRUE(client_->release(*first));
}

TEST_F(AcquireTest, TwoClientsRacingExactlyOneWins) {
  auto other = connect_or_fail(client_options(addresses()));
  ASSERT_NE(other, nullptr);
  for (int round = 0; round < 20; ++round) {
    const std::string resource = "res:race:" + std::to_string(round);
    auto fa = client_->async_acquire(resource, 10s);
    auto fb = other->async_acquire(resource, 10s);
    auto a = fa.get();
    auto b = fb.get();
    ASSERT_NE(a.has_value(), b.has_value()) << "round " << round << ": exactly one must win";
    const auto& loser = a ? b : a;
    EXPECT_EQ(loser.error().code(), ErrorCode::kHeldByAnother) << loser.error();
    ASSERT_TRUE(a ? client_->release(*a) : other->release(*b));
  }
}

TEST_F(AcquireTest, ReleaseWithAWrongTokenDeletesNothing) {
  auto lock = client_->acquire("res:token", 10s);
  ASSERT_TRUE(lock) << lock.error();
  const Lock forged("res:token", "00000000000000000000000000000000", lock->valid_until());
  auto wrong = client_->release(forged);
  ASSERT_TRUE(wrong) << wrong.error();
  EXPECT_EQ(wrong->deleted, 0);
  EXPECT_EQ(count_status(wrong->nodes, NodeStatus::kRefused), 5u);
  EXPECT_EQ(nodes_holding("res:token", lock->token()), 5u);
  auto right = client_->release(*lock);
  ASSERT_TRUE(right) << right.error();
  EXPECT_EQ(right->deleted, 5);
}

TEST_F(AcquireTest, ReleasingTwiceIsHarmless) {
  auto lock = client_->acquire("res:twice", 10s);
  ASSERT_TRUE(lock) << lock.error();
  auto first = client_->release(*lock);
  ASSERT_TRUE(first) << first.error();
  EXPECT_EQ(first->deleted, 5);
  auto second = client_->release(*lock);
  ASSERT_TRUE(second) << second.error();
  EXPECT_EQ(second->deleted, 0);
}

TEST_F(AcquireTest, LockExpiresAfterItsTtl) {
  AcquireOptions how;
  how.node_timeout = 100ms;  // below the ttl, whatever REDLOCK_TIME_SCALE says
  auto lock = client_->acquire("res:expire", 400ms, how);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_LE(lock->remaining(), 400ms);
  auto blocked = client_->acquire("res:expire", 400ms, how);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code(), ErrorCode::kHeldByAnother) << blocked.error();
  // Never released: the nodes drop the key after the ttl, and the lock value
  // knows it is no longer valid.
  EXPECT_TRUE(eventually([&]() -> bool { return lock->expired(); }, scaled(2s)));
  EXPECT_TRUE(
      eventually([&]() -> bool { return count_lock_keys().value_or(-1) == 0; }, scaled(2s)));
  auto after = client_->acquire("res:expire", 10s);
  ASSERT_TRUE(after) << after.error();
  ASSERT_TRUE(client_->release(*after));
}

TEST_F(AcquireTest, RetriesUntilTheHolderReleases) {
  auto holder = client_->acquire("res:wait", 10s);
  ASSERT_TRUE(holder) << holder.error();
  AcquireOptions how;
  how.max_wait = scaled(5s);
  how.retry_delay = 20ms;
  how.retry_jitter = 10ms;
  auto waiter = client_->async_acquire("res:wait", 10s, how);
  std::this_thread::sleep_for(150ms);
  ASSERT_TRUE(client_->release(*holder));
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  ASSERT_TRUE(client_->release(*got));
}

TEST_F(AcquireTest, MaxWaitRunningOutIsALockWaitTimeout) {
  auto holder = client_->acquire("res:timeout", 10s);
  ASSERT_TRUE(holder) << holder.error();
  AcquireOptions how;
  how.max_wait = 300ms;
  how.retry_delay = 30ms;
  how.retry_jitter = 10ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto waited = client_->acquire("res:timeout", 10s, how);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code(), ErrorCode::kLockWaitTimeout) << waited.error();
  EXPECT_THAT(waited.error().message(), HasSubstr("held by another"));
  EXPECT_GE(took, 200ms);  // it did retry for most of its budget
  EXPECT_LT(took, scaled(3s));
  ASSERT_TRUE(client_->release(*holder));
}

TEST_F(AcquireTest, MaxAttemptsBoundsTheRetries) {
  auto holder = client_->acquire("res:attempts", 10s);
  ASSERT_TRUE(holder) << holder.error();
  AcquireOptions how;
  how.max_attempts = 3;
  how.retry_delay = 10ms;
  how.retry_jitter = 0ms;
  auto waited = client_->acquire("res:attempts", 10s, how);
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code(), ErrorCode::kHeldByAnother) << waited.error();
  ASSERT_TRUE(client_->release(*holder));
}

TEST_F(AcquireTest, ReleaseFallsBackToEvalAfterTheScriptCacheIsFlushed) {
  auto lock = client_->acquire("res:noscript", 10s);
  ASSERT_TRUE(lock) << lock.error();
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, {"SCRIPT", "FLUSH"}));
  }
  auto released = client_->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
}

TEST_F(AcquireTest, EveryScriptFallsBackToEvalAfterTheScriptCacheIsFlushed) {
  const auto flush = [&] {
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      ASSERT_TRUE(cluster().command(i, {"SCRIPT", "FLUSH"}));
    }
  };
  flush();
  auto one = client_->acquire("res:noscript:one", 10s);  // the fenced acquire of one
  ASSERT_TRUE(one) << one.error();
  // Granted on three yes votes: the last two answers may still be on their way.
  EXPECT_TRUE(eventually(
      [&]() -> bool { return nodes_holding("res:noscript:one", one->token()) == 5U; }, scaled(2s)));
  flush();
  auto set = client_->acquire_all({"res:noscript:a", "res:noscript:b"}, 10s);
  ASSERT_TRUE(set) << set.error();
  flush();
  auto extended = client_->extend(*one, 20s);
  ASSERT_TRUE(extended) << extended.error();
  flush();
  for (const auto* lock : {&*extended, &*set}) {
    auto released = client_->release(*lock);
    ASSERT_TRUE(released) << released.error();
    EXPECT_EQ(released->deleted, 5);
  }
}

TEST_F(AcquireTest, ScriptShasMatchWhatRedisComputes) {
  for (const auto& script : detail::kAllScripts) {
    auto sha = cluster().command(0, {"SCRIPT", "LOAD", std::string(script.body)});
    ASSERT_TRUE(sha) << sha.error();
    EXPECT_EQ(*sha, script.sha);
  }
}

TEST_F(AcquireTest, LockGuardReleasesWhenItGoesOutOfScope) {
  {
    auto guard = client_->acquire_guard("res:guard", 10s);
    ASSERT_TRUE(guard) << guard.error();
    EXPECT_TRUE(guard->owns_lock());
    EXPECT_EQ(nodes_holding("res:guard", guard->lock().token()), 5u);
  }
  // The destructor released asynchronously: the resource is free again.
  EXPECT_TRUE(
      eventually([&]() -> bool { return count_lock_keys().value_or(-1) == 0; }, scaled(2s)));
  auto guard = client_->acquire_guard("res:guard", 10s);
  ASSERT_TRUE(guard) << guard.error();
  auto released = guard->release();
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
  EXPECT_FALSE(guard->owns_lock());
}

TEST_F(AcquireTest, BadInputIsRefusedWithoutTouchingTheNodes) {
  auto empty = client_->acquire("", 10s);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(empty.error().message(), HasSubstr("resource"));

  auto huge = client_->acquire(std::string(4096, 'x'), 10s);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code(), ErrorCode::kInvalidArgument);

  auto zero = client_->acquire("res:bad", 0ms);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(zero.error().message(), HasSubstr("ttl"));

  auto forever = client_->acquire("res:bad", std::chrono::hours(24 * 365));
  ASSERT_FALSE(forever);
  EXPECT_EQ(forever.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(forever.error().message(), HasSubstr("max_ttl"));

  bool called = false;
  auto refused = client_->async_acquire("", 10s, {}, [&](Result<Lock>) { called = true; });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);

  auto forged = client_->release(Lock("res:bad", "", {}));
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().code(), ErrorCode::kInvalidArgument);

  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(called) << "a call that returns an error must never call back";
  EXPECT_EQ(count_lock_keys().value_or(-1), 0);
}

TEST_F(AcquireTest, ConnectRefusesBadNodeLists) {
  auto none = Client::connect(ClientOptions{});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalidArgument);

  auto o = client_options({"127.0.0.1:notaport"});
  auto malformed = Client::connect(o);
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(malformed.error().message(), HasSubstr("127.0.0.1:notaport"));

  // The same text twice is refused before any connection.
  const auto port = std::to_string(cluster().port(0));
  auto twice = Client::connect(client_options({"127.0.0.1:" + port, "127.0.0.1:" + port}));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), ErrorCode::kInvalidArgument) << twice.error();
  EXPECT_THAT(twice.error().message(), HasSubstr("listed twice"));

  auto drift = client_options(addresses());
  drift.drift_factor = 0.9;
  auto bad_drift = Client::connect(drift);
  ASSERT_FALSE(bad_drift);
  EXPECT_THAT(bad_drift.error().message(), HasSubstr("drift_factor"));
}

// Names that look like the library's own keys are just names: a lock can
// neither overwrite nor be blocked by another resource's fencing counter.
TEST_F(AcquireTest, NamesLikeInternalKeysAreOrdinaryLocks) {
  auto first = client_->acquire("redlock:fence:w", 20s);
  ASSERT_TRUE(first) << first.error();
  auto second = client_->acquire("w", 20s);  // writes w's fencing counter
  ASSERT_TRUE(second) << second.error();
  EXPECT_EQ(nodes_holding("redlock:fence:w", first->token()), 5u);
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    auto pttl = cluster().command(i, {"PTTL", detail::lock_key("redlock:fence:w")});
    ASSERT_TRUE(pttl) << pttl.error();
    EXPECT_GT(std::stoll(*pttl), 10000) << "node " << i + 1;
  }
  auto q = client_->acquire("q", 20s);
  ASSERT_TRUE(q) << q.error();
  auto counter = client_->acquire("redlock:fence:q", 20s);
  ASSERT_TRUE(counter) << counter.error();
  auto braces = client_->acquire("redlock:{q}:fence:q", 20s);
  ASSERT_TRUE(braces) << braces.error();
  for (const auto* lock : {&*first, &*second, &*q, &*counter, &*braces}) {
    auto released = client_->release(*lock);
    ASSERT_TRUE(released) << released.error();
    EXPECT_EQ(released->deleted, 5) << lock->resource();
  }
}

TEST_F(AcquireTest, OneServerUnderTwoNamesCastsOneVote) {
  // Names are resolved when connecting, not by connect(): the server tells
  // who it is (run_id), and the second node that turns out to be the same
  // server is refused.
  const auto port = std::to_string(cluster().port(0));
  auto client = connect_or_fail(
      client_options({"127.0.0.1:" + port, "localhost:" + port, addresses()[1], addresses()[2]}));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        auto c = client->connected();
        return c[0] != c[1] && c[2] && c[3];
      },
      scaled(3s)));
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  EXPECT_EQ(health->voting, 3u);
  const auto& refused = health->nodes[client->connected()[0] ? 1 : 0];
  EXPECT_FALSE(refused.reachable);
  EXPECT_THAT(refused.error, HasSubstr("the same server as node"));
  // Three distinct servers of four nodes: a lock needs all three.
  auto lock = client->acquire("res:two-names", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_EQ(count_status(lock->votes(), NodeStatus::kOk), 3u);
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(AcquireTest, CallbacksRunOnTheLoopThreadAndBlockingCallsAreRefusedThere) {
  std::promise<void> done;
  std::thread::id callback_thread;
  Result<Lock> nested = Unexpected(Error());
  Result<Lock> outcome = Unexpected(Error());
  auto posted = client_->async_acquire("res:thread", 10s, {}, [&](Result<Lock> r) {
    callback_thread = std::this_thread::get_id();
    outcome = std::move(r);
    nested = client_->acquire("res:other", 10s);  // would deadlock the loop
    done.set_value();
  });
  ASSERT_TRUE(posted) << posted.error();
  ASSERT_EQ(done.get_future().wait_for(scaled(5s)), std::future_status::ready);
  EXPECT_NE(callback_thread, std::this_thread::get_id());
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().code(), ErrorCode::kWrongThread);
  ASSERT_TRUE(outcome) << outcome.error();
  ASSERT_TRUE(client_->release(*outcome));
}

}  // namespace
}  // namespace redlock::testing
