// Extend, automatic extension, lock sets, cancellation and metrics, on real
// redis-server nodes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <future>
#include <sstream>
#include <stop_token>

#include "keys.hpp"
#include "redlock/delayproxy/delay_proxy.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using ::testing::HasSubstr;

class LifecycleTest : public ClientTest {
 protected:
  // Deletes `resource`'s lock key on every node, behind the holder's back.
  void delete_everywhere(const std::string& resource) {
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      ASSERT_TRUE(cluster().command(i, {"DEL", detail::lock_key(resource)}));
    }
  }
  std::size_t nodes_with(const std::string& resource) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      auto v = cluster().get(i, detail::lock_key(resource));
      if (v && *v) ++n;
    }
    return n;
  }
  long long max_pttl(const std::string& resource) {
    long long best = -2;
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      auto v = cluster().command(i, {"PTTL", detail::lock_key(resource)});
      if (v) best = std::max(best, std::stoll(*v));
    }
    return best;
  }
  // Short locks: a node timeout well below the ttl, whatever the time scale.
  static AcquireOptions quick() {
    AcquireOptions how;
    how.node_timeout = 50ms;
    return how;
  }
  static ExtendOptions quick_extend() {
    ExtendOptions how;
    how.node_timeout = 50ms;
    return how;
  }
};

// ---------------------------------------------------------------- extend

TEST_F(LifecycleTest, ExtendMovesTheValidityAndTheKeysTtlForward) {
  auto lock = client_->acquire("res:extend", 1000ms, quick());
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_EQ(lock->ttl(), 1000ms);
  std::this_thread::sleep_for(300ms);
  auto longer = client_->extend(*lock, 5000ms, quick_extend());
  ASSERT_TRUE(longer) << longer.error();
  EXPECT_GT(longer->valid_until(), lock->valid_until() + 3s);
  EXPECT_EQ(longer->token(), lock->token());
  EXPECT_EQ(longer->ttl(), 5000ms);
  EXPECT_GE(count_status(longer->votes(), NodeStatus::kOk), client_->quorum());
  EXPECT_GT(max_pttl("res:extend"), 4000);
  ASSERT_TRUE(client_->release(*longer));
}

TEST_F(LifecycleTest, ExtendingAnExpiredLockIsRefusedWithoutAskingTheNodes) {
  auto lock = client_->acquire("res:expired", 200ms, quick());
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(eventually([&]() -> bool { return lock->expired(); }, scaled(2s)));
  const auto before = client_->metrics();
  auto extended = client_->extend(*lock, 1000ms, quick_extend());
  ASSERT_FALSE(extended);
  EXPECT_EQ(extended.error().code(), ErrorCode::kExpired) << extended.error();
  EXPECT_TRUE(extended.error().nodes().empty());
  EXPECT_EQ(client_->metrics().extensions_failed, before.extensions_failed);  // no round ran
}

TEST_F(LifecycleTest, ExtendByAnotherTokenIsNotOwnerAndChangesNothing) {
  auto lock = client_->acquire("res:owner", 10s);
  ASSERT_TRUE(lock) << lock.error();
  const Lock forged("res:owner", "ffffffffffffffffffffffffffffffff", lock->valid_until());
  auto extended = client_->extend(forged, 60s);
  ASSERT_FALSE(extended);
  EXPECT_EQ(extended.error().code(), ErrorCode::kNotOwner) << extended.error();
  EXPECT_LE(max_pttl("res:owner"), 10000);
  ASSERT_TRUE(client_->release(*lock));
}

TEST_F(LifecycleTest, AMissingKeyIsOnlyRecreatedWhenAskedTo) {
  auto lock = client_->acquire("res:missing", 10s);
  ASSERT_TRUE(lock) << lock.error();
  delete_everywhere("res:missing");
  auto refused = client_->extend(*lock, 10s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kNotOwner) << refused.error();
  EXPECT_EQ(nodes_with("res:missing"), 0u);

  ExtendOptions recreate;
  recreate.recreate_missing = true;
  auto recreated = client_->extend(*lock, 10s, recreate);
  ASSERT_TRUE(recreated) << recreated.error();
  EXPECT_EQ(nodes_with("res:missing"), 5u);
  ASSERT_TRUE(client_->release(*recreated));
}

TEST_F(LifecycleTest, ExtendWithAMajorityStalledFailsWithinTheLocksValidity) {
  auto lock = client_->acquire("res:stalled", 2000ms, quick());
  ASSERT_TRUE(lock) << lock.error();
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().pause(i));
  auto extended = client_->extend(*lock, 2000ms, quick_extend());
  ASSERT_FALSE(extended);
  EXPECT_EQ(extended.error().code(), ErrorCode::kNoQuorum) << extended.error();
  EXPECT_LT(Clock::now(), lock->valid_until());
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().resume(i));
  ASSERT_TRUE(client_->release(*lock));
}

// ---------------------------------------------------- automatic extension

TEST_F(LifecycleTest, AnAutoExtendedLockOutlivesSeveralTtls) {
  AutoExtendOptions keep;
  keep.max_extensions = 100;
  auto guard = client_->acquire_guard("res:keep", 300ms, quick(), keep);
  ASSERT_TRUE(guard) << guard.error();
  std::this_thread::sleep_for(1200ms);  // four ttls
  EXPECT_FALSE(guard->lost()) << to_string(guard->lost_error().value_or(Error()));
  EXPECT_FALSE(guard->stop_token().stop_requested());
  EXPECT_FALSE(guard->lock().expired());
  EXPECT_GE(client_->metrics().extensions, 3u);
  auto other = client_->acquire("res:keep", 300ms, quick());
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kHeldByAnother) << other.error();
  auto released = guard->release();
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
}

// An auto-extended guard hands out and releases the lock as it stands now,
// not as it was granted: long after the first validity ended, dismiss()
// gives a lock that extend() accepts.
TEST_F(LifecycleTest, ADismissedAutoExtendedGuardGivesTheCurrentLock) {
  AutoExtendOptions keep;
  keep.max_extensions = 1000;
  keep.extend_at_remaining = 0.9;  // extends every tenth of the ttl
  auto guard = client_->acquire_guard("res:dismiss", 1000ms, quick(), keep);
  ASSERT_TRUE(guard) << guard.error();
  const auto first = guard->lock().valid_until();
  ASSERT_TRUE(
      eventually([&]() -> bool { return std::chrono::steady_clock::now() > first; }, scaled(3s)));
  ASSERT_FALSE(guard->lost()) << to_string(guard->lost_error().value_or(Error()));
  auto lock = guard->dismiss();
  ASSERT_TRUE(lock.has_value());
  EXPECT_GT(lock->valid_until(), first);
  auto extended = client_->extend(*lock, 1000ms, quick_extend());
  ASSERT_TRUE(extended) << extended.error();
  ASSERT_TRUE(client_->release(*extended));
}

// A node cut off when an auto-extended guard is released gets the release
// when it is back, even long after the lock's first validity ended: the
// release is remembered until the key's current expiry, not the grant's.
TEST_F(LifecycleTest, AnAutoExtendedGuardsReleaseIsReplayedOnANodeThatWasCutOff) {
  client_.reset();
  // Node 5 behind a relay that can be cut and restored on the same port.
  redlock::delayproxy::Route route;
  route.target_port = cluster().port(4);
  auto proxy = redlock::delayproxy::DelayProxy::start({route});
  ASSERT_TRUE(proxy) << proxy.error();
  const int relay_port = (*proxy)->port(0);
  auto nodes = addresses();
  nodes[4] = "127.0.0.1:" + std::to_string(relay_port);
  auto client = connect_or_fail(client_options(nodes));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually([&]() -> bool { return client->connected()[4]; }, scaled(2s)));

  AutoExtendOptions keep;
  keep.max_extensions = 1000;
  keep.extend_at_remaining = 0.95;  // extends every twentieth of the ttl
  auto guard = client->acquire_guard("res:replay", 3000ms, quick(), keep);
  ASSERT_TRUE(guard) << guard.error();
  const auto first = guard->lock().valid_until();
  ASSERT_TRUE(eventually(
      [&]() -> bool { return std::chrono::steady_clock::now() > first + 1500ms; }, scaled(8s)));
  ASSERT_FALSE(guard->lost()) << to_string(guard->lost_error().value_or(Error()));

  (*proxy)->stop();  // node 5 is cut off, with its key
  ASSERT_TRUE(eventually([&]() -> bool { return !client->connected()[4]; }, scaled(2s)));
  const auto key = detail::lock_key(guard->lock().resource());
  auto pttl = cluster().command(4, {"PTTL", key});
  ASSERT_TRUE(pttl) << pttl.error();
  const auto expires_in = std::chrono::milliseconds(std::stoll(*pttl));
  ASSERT_GT(expires_in, 1500ms) << "the key should have been extended recently";
  const auto released_at = std::chrono::steady_clock::now();
  auto released = guard->release();
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 4);
  EXPECT_EQ(released->nodes[4].status, NodeStatus::kDisconnected);

  route.listen_port = relay_port;
  auto back = redlock::delayproxy::DelayProxy::start({route});
  ASSERT_TRUE(back) << back.error();
  // The remembered release runs as soon as the client is connected again:
  // well before the key would have expired by itself.
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        auto v = cluster().get(4, key);
        return v && !*v;
      },
      scaled(3s)));
  EXPECT_LT(std::chrono::steady_clock::now() - released_at, expires_in - 300ms);
}

TEST_F(LifecycleTest, KeysDeletedBehindItsBackFireLostExactlyOnceAndStopExtending) {
  std::atomic<int> lost_calls{0};
  AutoExtendOptions keep;
  keep.on_lost = [&](const Error& why) {
    EXPECT_EQ(why.code(), ErrorCode::kNotOwner) << why;
    ++lost_calls;
  };
  auto guard = client_->acquire_guard("res:stolen", 400ms, quick(), keep);
  ASSERT_TRUE(guard) << guard.error();
  std::atomic<bool> stop_callback_ran{false};
  std::stop_callback on_stop(guard->stop_token(), [&] { stop_callback_ran = true; });
  delete_everywhere("res:stolen");
  ASSERT_TRUE(eventually([&]() -> bool { return guard->lost(); }, scaled(2s)));
  EXPECT_TRUE(guard->stop_token().stop_requested());
  EXPECT_TRUE(stop_callback_ran);
  ASSERT_TRUE(guard->lost_error());
  EXPECT_EQ(guard->lost_error()->code(), ErrorCode::kNotOwner);
  const auto extensions = client_->metrics().extensions;
  std::this_thread::sleep_for(800ms);  // two more ttls: nothing else happens
  EXPECT_EQ(lost_calls.load(), 1);
  EXPECT_EQ(client_->metrics().extensions, extensions);
  EXPECT_EQ(client_->metrics().locks_lost, 1u);
  EXPECT_EQ(nodes_with("res:stolen"), 0u);
}

// A name is bytes: the warning that a lock was lost names it escaped, so a
// terminal or a log pipeline reading it meets no raw control byte and no
// invalid UTF-8.
TEST_F(LifecycleTest, ALostLockIsLoggedWithItsNameEscaped) {
  auto log = std::make_shared<std::ostringstream>();
  auto o = client_options(addresses());
  o.logger = std::make_shared<spdlog::logger>(
      "lost", std::make_shared<spdlog::sinks::ostream_sink_mt>(*log));
  o.logger->set_level(spdlog::level::debug);
  auto client = Client::connect(o);
  ASSERT_TRUE(client) << client.error();
  const std::string name = "res:lost:\xff\x1b[2J\n";
  {
    auto guard = (*client)->acquire_guard(name, 400ms, quick(), AutoExtendOptions{});
    ASSERT_TRUE(guard) << guard.error();
    delete_everywhere(name);
    ASSERT_TRUE(eventually([&]() -> bool { return guard->lost(); }, scaled(2s)));
  }
  client->reset();  // the loop thread is gone: the log is complete
  const std::string text = log->str();
  EXPECT_NE(text.find("lock on \"res:lost:\\xff\\x1b[2J\\n\" lost"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\xff'), std::string::npos);
  EXPECT_EQ(nodes_with(name), 0u);
}

TEST_F(LifecycleTest, AStalledMajorityLosesTheLockWhenItsValidityRunsOut) {
  std::atomic<int> lost_calls{0};
  AutoExtendOptions keep;
  keep.on_lost = [&](const Error&) { ++lost_calls; };
  auto guard = client_->acquire_guard("res:stall", 500ms, quick(), keep);
  ASSERT_TRUE(guard) << guard.error();
  for (std::size_t i : {1u, 2u, 3u}) ASSERT_TRUE(cluster().pause(i));
  ASSERT_TRUE(eventually([&]() -> bool { return guard->lost(); }, scaled(3s)));
  // Not before the validity it had: it kept trying until then.
  EXPECT_GE(Clock::now(), guard->lock().valid_until());
  EXPECT_EQ(guard->lost_error()->code(), ErrorCode::kExpired) << *guard->lost_error();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(lost_calls.load(), 1);
  for (std::size_t i : {1u, 2u, 3u}) ASSERT_TRUE(cluster().resume(i));
}

TEST_F(LifecycleTest, MaxExtensionsIsHonoured) {
  AutoExtendOptions keep;
  keep.max_extensions = 2;
  auto guard = client_->acquire_guard("res:bounded", 300ms, quick(), keep);
  ASSERT_TRUE(guard) << guard.error();
  ASSERT_TRUE(eventually([&]() -> bool { return guard->lost(); }, scaled(3s)));
  EXPECT_EQ(client_->metrics().extensions, 2u);
  EXPECT_EQ(guard->lost_error()->code(), ErrorCode::kExpired);
  EXPECT_THAT(guard->lost_error()->message(), HasSubstr("max_extensions"));
}

TEST_F(LifecycleTest, MaxHoldIsHonoured) {
  AutoExtendOptions keep;
  keep.max_extensions = 0;
  keep.max_hold = 700ms;
  const auto t0 = Clock::now();
  auto guard = client_->acquire_guard("res:hold", 300ms, quick(), keep);
  ASSERT_TRUE(guard) << guard.error();
  ASSERT_TRUE(eventually([&]() -> bool { return guard->lost(); }, scaled(3s)));
  EXPECT_LE(guard->lock().valid_until(), t0 + 700ms + 50ms);
  EXPECT_THAT(guard->lost_error()->message(), HasSubstr("max_hold"));
}

TEST_F(LifecycleTest, AutoExtensionNeedsABound) {
  AutoExtendOptions keep;
  keep.max_extensions = 0;
  keep.max_hold = 0ms;
  auto guard = client_->acquire_guard("res:unbounded", 1s, {}, keep);
  ASSERT_FALSE(guard);
  EXPECT_EQ(guard.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(nodes_with("res:unbounded"), 0u);  // refused before acquiring
}

TEST_F(LifecycleTest, WithLockRunsTheFunctionUnderTheLockAndReleasesIt) {
  LockOptions how;
  how.acquire = quick();
  auto result = client_->with_lock("res:with", 300ms, how, [&](std::stop_token token) {
    std::this_thread::sleep_for(700ms);  // longer than the ttl: kept alive
    EXPECT_FALSE(token.stop_requested());
    auto other = client_->acquire("res:with", 300ms, quick());
    EXPECT_FALSE(other);
    return 42;
  });
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(*result, 42);
  EXPECT_EQ(nodes_with("res:with"), 0u);
}

TEST_F(LifecycleTest, WithLockTellsTheFunctionAndTheCallerWhenTheLockIsLost) {
  LockOptions how;
  how.acquire = quick();
  auto result = client_->with_lock("res:with-lost", 400ms, how, [&](std::stop_token token) {
    delete_everywhere("res:with-lost");
    const auto deadline = Clock::now() + scaled(3s);
    while (!token.stop_requested() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    EXPECT_TRUE(token.stop_requested());
  });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kLockLost) << result.error();
}

// ------------------------------------------------------------ lock sets

TEST_F(LifecycleTest, ALockSetConflictsWithASingleLockOnAnyMember) {
  auto set = client_->acquire_all({"res:a", "res:b", "res:c"}, 10s);
  ASSERT_TRUE(set) << set.error();
  EXPECT_EQ(set->resources(), (std::vector<std::string>{"res:a", "res:b", "res:c"}));
  for (const char* member : {"res:a", "res:b", "res:c"}) {
    auto single = client_->acquire(member, 10s);
    ASSERT_FALSE(single) << member;
    EXPECT_EQ(single.error().code(), ErrorCode::kHeldByAnother) << single.error();
  }
  auto overlapping = client_->acquire_all({"res:c", "res:d"}, 10s);
  ASSERT_FALSE(overlapping);
  EXPECT_EQ(overlapping.error().code(), ErrorCode::kHeldByAnother) << overlapping.error();
  EXPECT_EQ(nodes_with("res:d"), 0u) << "all or none: res:d must not be set";

  auto extended = client_->extend(*set, 20s);
  ASSERT_TRUE(extended) << extended.error();
  EXPECT_GT(max_pttl("res:b"), 15000);
  auto released = client_->release(*set);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
  for (const char* member : {"res:a", "res:b", "res:c"}) EXPECT_EQ(nodes_with(member), 0u);
}

TEST_F(LifecycleTest, ASingleLockBlocksASetContainingIt) {
  auto single = client_->acquire("res:m", 10s);
  ASSERT_TRUE(single) << single.error();
  auto set = client_->acquire_all({"res:n", "res:m"}, 10s);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code(), ErrorCode::kHeldByAnother) << set.error();
  EXPECT_EQ(nodes_with("res:n"), 0u);
  ASSERT_TRUE(client_->release(*single));
}

TEST_F(LifecycleTest, BadLockSetsAreRefused) {
  auto empty = client_->acquire_all({}, 10s);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  auto dup = client_->acquire_all({"x", "y", "x"}, 10s);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(dup.error().message(), HasSubstr("twice"));
}

// ---------------------------------------------------------- cancellation

TEST_F(LifecycleTest, CancellingARetryingAcquireEndsItAndLeavesNoKey) {
  auto holder = client_->acquire("res:cancel", 10s);
  ASSERT_TRUE(holder) << holder.error();
  std::stop_source stop;
  AcquireOptions how;
  how.max_wait = scaled(20s);
  how.retry_delay = 30ms;
  how.retry_jitter = 10ms;
  how.stop = stop.get_token();
  auto other = connect_or_fail(client_options(addresses()));
  ASSERT_NE(other, nullptr);
  auto waiter = other->async_acquire("res:cancel", 10s, how);
  std::this_thread::sleep_for(200ms);
  const auto t0 = Clock::now();
  stop.request_stop();
  ASSERT_EQ(waiter.wait_for(scaled(2s)), std::future_status::ready);
  EXPECT_LT(Clock::now() - t0, scaled(1s));
  auto result = waiter.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kCancelled) << result.error();
  ASSERT_TRUE(client_->release(*holder));
}

TEST_F(LifecycleTest, CancellingDuringAnOpenRoundReleasesWhatItSet) {
  auto o = client_options(addresses());
  o.node_timeout = scaled(5s);  // the round stays open on the stopped nodes
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().pause(i));
  std::stop_source stop;
  AcquireOptions how;
  how.stop = stop.get_token();
  auto pending = client->async_acquire("res:cancel-open", 60s, how);
  // The two live nodes (4 and 5) said yes; the round waits for the others.
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        for (std::size_t i : {3u, 4u}) {
          auto v = cluster().get(i, detail::lock_key("res:cancel-open"));
          if (!v || !*v) return false;
        }
        return true;
      },
      scaled(2s)));
  stop.request_stop();
  ASSERT_EQ(pending.wait_for(scaled(2s)), std::future_status::ready);
  auto result = pending.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kCancelled) << result.error();
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().resume(i));
  // TearDown: the two live nodes' keys and the stopped nodes' queued SETs
  // are all released.
}

TEST_F(LifecycleTest, AnAcquireCancelledBeforeItStartsSetsNothing) {
  std::stop_source stop;
  stop.request_stop();
  AcquireOptions how;
  how.stop = stop.get_token();
  auto result = client_->acquire("res:cancel-early", 10s, how);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kCancelled) << result.error();
  EXPECT_EQ(nodes_with("res:cancel-early"), 0u);
}

// --------------------------------------------------------------- metrics

class CountingSink : public MetricsSink {
 public:
  void on_acquire(std::chrono::microseconds, int rounds, const Error* error) override {
    (error == nullptr ? granted : failed)++;
    max_rounds = std::max(max_rounds.load(), rounds);
  }
  void on_reconnect(std::size_t node) override { reconnected_node = static_cast<int>(node); }
  std::atomic<int> granted{0};
  std::atomic<int> failed{0};
  std::atomic<int> max_rounds{0};
  std::atomic<int> reconnected_node{-1};
};

TEST_F(LifecycleTest, MetricsCountWhatHappenedInAScriptedScenario) {
  auto sink = std::make_shared<CountingSink>();
  auto o = client_options(addresses());
  o.metrics_sink = sink;
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);

  // Three uncontended cycles.
  for (int i = 0; i < 3; ++i) {
    auto lock = client->acquire("res:metrics", 10s);
    ASSERT_TRUE(lock) << lock.error();
    ASSERT_TRUE(client->release(*lock));
  }
  // A held lock, a contended try-lock and a waiter that gives up after retries.
  auto held = client->acquire("res:metrics", 10s);
  ASSERT_TRUE(held) << held.error();
  auto refused = client->acquire("res:metrics", 10s);
  ASSERT_FALSE(refused);
  AcquireOptions how;
  how.max_attempts = 3;
  how.retry_delay = 5ms;
  how.retry_jitter = 0ms;
  auto gave_up = client->acquire("res:metrics", 10s, how);
  ASSERT_FALSE(gave_up);
  // An extension.
  ASSERT_TRUE(client->extend(*held, 10s));
  ASSERT_TRUE(client->release(*held));
  // A node restart: one reconnect.
  ASSERT_TRUE(cluster().restart(4));
  ASSERT_TRUE(
      eventually([&]() -> bool { return client->metrics().nodes[4].reconnects == 1; }, scaled(5s)));

  const auto m = client->metrics();
  EXPECT_EQ(m.acquires_granted, 4u);
  EXPECT_EQ(m.acquires_failed[static_cast<std::size_t>(ErrorCode::kHeldByAnother)], 2u);
  EXPECT_EQ(m.rounds_per_acquire.count, 6u);
  EXPECT_EQ(m.rounds_per_acquire.sum, 4 + 1 + 3);
  EXPECT_EQ(m.acquire_latency_us.count, 6u);
  EXPECT_EQ(m.contended_rounds, 4u);  // one try-lock + three rounds of the waiter
  EXPECT_EQ(m.extensions, 1u);
  EXPECT_EQ(m.extensions_failed, 0u);
  ASSERT_EQ(m.nodes.size(), 5u);
  EXPECT_EQ(m.nodes[0].node, addresses()[0]);
  EXPECT_GT(m.nodes[0].rtt_us.count, 0u);
  EXPECT_EQ(m.nodes[4].reconnects, 1u);
  EXPECT_EQ(sink->granted.load(), 4);
  EXPECT_EQ(sink->failed.load(), 2);
  EXPECT_EQ(sink->max_rounds.load(), 3);
  EXPECT_EQ(sink->reconnected_node.load(), 4);

  const std::string text = to_prometheus(m);
  EXPECT_THAT(text, HasSubstr("redlock_acquires_total{outcome=\"granted\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("redlock_acquires_total{outcome=\"held_by_another\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("redlock_extensions_total 1\n"));
  EXPECT_THAT(text,
              HasSubstr("redlock_node_reconnects_total{node=\"" + addresses()[4] + "\"} 1\n"));
}

TEST_F(LifecycleTest, MetricsCountTimeoutsAndLateRepliesThatWereReleased) {
  auto o = client_options(addresses());
  o.node_timeout = 50ms;
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(stall(cluster(), i, 0.5));
  auto lock = client->acquire("res:late-metrics", 10s);
  ASSERT_FALSE(lock);
  // The stalled nodes wake, say OK to the failed round, and the keys go.
  ASSERT_TRUE(eventually([&]() -> bool { return client->metrics().late_replies_released == 3; },
                         scaled(3s)));
  const auto m = client->metrics();
  for (std::size_t i : {0u, 1u, 2u}) EXPECT_EQ(m.nodes[i].timeouts, 1u) << "node " << i + 1;
  EXPECT_EQ(m.nodes[3].timeouts, 0u);
  EXPECT_EQ(m.acquires_failed[static_cast<std::size_t>(ErrorCode::kNoQuorum)], 1u);
}

}  // namespace
}  // namespace redlock::testing
