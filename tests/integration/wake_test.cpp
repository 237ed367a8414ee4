// Wake-on-release on real servers: a release announces itself on each node,
// and waiters subscribed to it start their next round at once instead of
// sleeping out their retry delay; faults only take them back to that delay.
//
// The retry delays here are long (seconds, scaled for sanitizer builds), so
// "got the lock before its retry timer could have fired" is a statement
// about behaviour, not speed: the timer cannot fire earlier than the delay
// after the waiter's first round.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <string_view>

#include "keys.hpp"
#include "protocol.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using ::testing::HasSubstr;

// The long delay a woken waiter must beat.
std::chrono::milliseconds long_delay() { return scaled(10s); }

class WakeTest : public ClusterTest {
 protected:
  std::unique_ptr<Client> client(const ClientOptions& o) { return connect_or_fail(o); }
  std::unique_ptr<Client> client() { return client(client_options(addresses())); }

  // Subscribers of `channel` on node i (PUBSUB NUMSUB), -1 if it cannot say.
  long long subscribers(std::size_t i, const std::string& channel) {
    auto r = cluster().command(i, {"PUBSUB", "NUMSUB", channel});
    if (!r) return -1;
    const auto nl = r->rfind('\n');
    try {
      return std::stoll(nl == std::string::npos ? *r : r->substr(nl + 1));
    } catch (...) {
      return -1;
    }
  }

  // Waits until each of `nodes` (all when empty) has `n` subscribers on the
  // release channel of `key`.
  ::testing::AssertionResult subscribed(const std::string& key, long long n,
                                        std::vector<std::size_t> nodes = {}) {
    if (nodes.empty()) {
      for (std::size_t i = 0; i < cluster().size(); ++i) nodes.push_back(i);
    }
    const std::string channel = detail::release_channel(key);
    const bool ok = eventually(
        [&]() -> bool {
          for (auto i : nodes) {
            if (subscribers(i, channel) != n) return false;
          }
          return true;
        },
        scaled(5s));
    if (ok) return ::testing::AssertionSuccess();
    std::string seen;
    for (auto i : nodes) {
      seen.append(" ");
      seen.append(std::to_string(subscribers(i, channel)));
    }
    return ::testing::AssertionFailure()
           << "expected " << n << " subscriber(s) of " << channel << ", saw" << seen;
  }

  // Options for a test that counts each node's SET calls: fencing off (a
  // plain SET NX PX, apart from the release script), and a node timeout no
  // gate misses.
  ClientOptions counting_options() {
    auto o = client_options(addresses());
    o.fencing = false;
    o.node_timeout = scaled(2s);
    return o;
  }

  // SET calls node i served since its last CONFIG RESETSTAT (INFO
  // commandstats); -1 if it cannot say.
  long long set_calls(std::size_t i) {
    auto info = cluster().command(i, {"INFO", "commandstats"});
    if (!info) return -1;
    constexpr std::string_view kField = "cmdstat_set:calls=";
    const auto at = info->find(kField);
    if (at == std::string::npos) return 0;
    return std::stoll(info->substr(at + kField.size()));
  }

  // Each of `waits` gets the lock in turn, and `release(i, lock)` gives it
  // back: fails the test if one release is not followed by a holder within
  // the bound.
  void take_turns(std::vector<std::future<Result<Lock>>>& waits,
                  const std::function<bool(std::size_t, const Lock&)>& release) {
    std::vector<bool> done(waits.size(), false);
    for (std::size_t section = 0; section < waits.size(); ++section) {
      std::optional<std::size_t> winner;
      const auto deadline = Clock::now() + long_delay() / 2;
      while (!winner && Clock::now() < deadline) {
        for (std::size_t i = 0; i < waits.size() && !winner; ++i) {
          if (!done[i] && waits[i].wait_for(1ms) == std::future_status::ready) winner = i;
        }
      }
      ASSERT_TRUE(winner.has_value()) << "no waiter got the lock after release " << section + 1;
      done[*winner] = true;
      auto got = waits[*winner].get();
      ASSERT_TRUE(got) << got.error();
      ASSERT_TRUE(release(*winner, *got));
    }
  }

  // A client holding `res`, and a second one waiting for it with the contest
  // gate on, subscribed to its release.
  struct GatedWait {
    std::unique_ptr<Client> holder_client;
    std::unique_ptr<Client> waiter_client;
    std::optional<Lock> holder;
    std::future<Result<Lock>> waiter;
  };
  void start_gated_wait(const std::string& res, const ClientOptions& o, GatedWait& w) {
    w.holder_client = client(o);
    w.waiter_client = client(o);
    ASSERT_NE(w.holder_client, nullptr);
    ASSERT_NE(w.waiter_client, nullptr);
    auto held = w.holder_client->acquire(res, 30s);
    ASSERT_TRUE(held) << held.error();
    w.holder = *held;
    auto how = waiting(long_delay());
    how.contest_gate = true;
    w.waiter = w.waiter_client->async_acquire(res, 30s, how);
    ASSERT_TRUE(subscribed(res, 1));
  }

  static AcquireOptions waiting(std::chrono::milliseconds retry_delay) {
    AcquireOptions how;
    how.max_wait = scaled(120s);
    how.retry_delay = retry_delay;
    how.retry_jitter = 0ms;
    return how;
  }
};

TEST_F(WakeTest, AWaiterHoldsTheLockSoonAfterAnEarlyRelease) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:wake", 30s);
  ASSERT_TRUE(holder) << holder.error();

  const auto t0 = Clock::now();
  auto waiter = waiter_client->async_acquire("res:wake", 30s, waiting(long_delay()));
  ASSERT_TRUE(subscribed("res:wake", 1));
  auto released = holder_client->release(*holder);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);

  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  const auto took = Clock::now() - t0;
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  // Its first round failed after t0: its retry timer could not fire before
  // t0 + retry_delay.
  EXPECT_LT(took, long_delay());
  EXPECT_GE(waiter_client->metrics().wakeups, 1u);
  ASSERT_TRUE(waiter_client->release(*got));
  // Done waiting: the subscription goes too, a second later.
  EXPECT_TRUE(subscribed("res:wake", 0));
}

TEST_F(WakeTest, WithoutWakeOnReleaseTheWaiterSleepsItsRetryDelay) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:poll", 30s);
  ASSERT_TRUE(holder) << holder.error();

  const auto delay = scaled(2s);
  auto how = waiting(delay);
  how.wake_on_release = false;
  auto waiter = waiter_client->async_acquire("res:poll", 30s, how);
  // Its first round has failed (so its retry timer runs) before the release.
  ASSERT_TRUE(eventually([&]() -> bool { return waiter_client->metrics().contended_rounds >= 1; },
                         scaled(5s)));
  ASSERT_TRUE(holder_client->release(*holder));
  // The timer started before now: the lock cannot be taken within half the
  // delay from now, announcement or not.
  EXPECT_EQ(waiter.wait_for(delay / 2), std::future_status::timeout);
  ASSERT_EQ(waiter.wait_for(delay + scaled(5s)), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(waiter_client->metrics().wakeups, 0u);
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    EXPECT_EQ(subscribers(i, detail::release_channel("res:poll")), 0) << "node " << i + 1;
  }
  ASSERT_TRUE(waiter_client->release(*got));
}

TEST_F(WakeTest, AReleaseAnnouncedDuringTheFirstRoundOfTheNextWaitIsNotMissed) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  const std::string channel = detail::release_channel("res:again");
  // A first wait: when it ends, the channel stays subscribed for a while.
  auto holder = holder_client->acquire("res:again", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto first = waiter_client->async_acquire("res:again", 30s, waiting(long_delay()));
  ASSERT_TRUE(subscribed("res:again", 1));
  ASSERT_TRUE(holder_client->release(*holder));
  ASSERT_EQ(first.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = first.get();
  ASSERT_TRUE(got) << got.error();
  ASSERT_TRUE(waiter_client->release(*got));
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    EXPECT_EQ(subscribers(i, channel), 1) << "node " << i + 1 << ": not kept after the wait";
  }

  // Held again. Nodes 3-5 stall, so the next wait's first round stays open
  // for the node timeout after nodes 1 and 2 refused it.
  holder = holder_client->acquire("res:again", 30s);
  ASSERT_TRUE(holder) << holder.error();
  const auto replies = [&](std::size_t i) {
    return waiter_client->metrics().nodes[i].rtt_us.count;
  };
  const auto before = std::make_pair(replies(0), replies(1));
  for (std::size_t i = 2; i < 5; ++i) ASSERT_TRUE(cluster().pause(i));
  auto second = waiter_client->async_acquire("res:again", 30s, waiting(long_delay()));
  ASSERT_TRUE(
      eventually([&]() -> bool { return replies(0) > before.first && replies(1) > before.second; },
                 scaled(5s)));
  // The holder's release reaches nodes 1 and 2 now, while that round is
  // open and before it listens: it is announced there, and only there.
  const std::string key = detail::lock_key("res:again");
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(cluster().command(i, {"DEL", key}));
    ASSERT_TRUE(cluster().command(i, {"PUBLISH", channel, ""}));
  }
  ASSERT_TRUE(eventually([&]() -> bool { return waiter_client->metrics().contended_rounds >= 2; },
                         scaled(5s)))
      << "the first round did not fail";
  // Nodes 3-5 drop the key silently: no announcement will come from them.
  for (std::size_t i = 2; i < 5; ++i) {
    ASSERT_TRUE(cluster().resume(i));
    ASSERT_TRUE(cluster().command(i, {"DEL", key}));
  }
  // Heard during the round, so retried at once instead of after its long
  // retry delay.
  ASSERT_EQ(second.wait_for(long_delay() / 2), std::future_status::ready);
  got = second.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_GE(waiter_client->metrics().wakeups, 2u);
  ASSERT_TRUE(waiter_client->release(*got));
  EXPECT_TRUE(subscribed("res:again", 0));
}

TEST_F(WakeTest, SeveralWaitersAreWokenOneHoldsTheOthersWaitForTheNextRelease) {
  auto holder_client = client();
  ASSERT_NE(holder_client, nullptr);
  constexpr std::size_t kWaiters = 5;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::future<Result<Lock>>> waits;
  auto holder = holder_client->acquire("res:herd", 30s);
  ASSERT_TRUE(holder) << holder.error();
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < kWaiters; ++i) {
    clients.push_back(client());
    ASSERT_NE(clients.back(), nullptr);
    waits.push_back(clients.back()->async_acquire("res:herd", 30s, waiting(long_delay())));
  }
  ASSERT_TRUE(subscribed("res:herd", kWaiters));

  std::vector<bool> done(kWaiters, false);
  // The index of the one waiter that holds the lock next; fails the test if
  // none does within the bound, or if two do.
  const auto next_holder = [&]() -> std::optional<std::size_t> {
    std::optional<std::size_t> winner;
    const auto deadline = Clock::now() + long_delay() / 2;
    while (!winner && Clock::now() < deadline) {
      for (std::size_t i = 0; i < kWaiters; ++i) {
        if (!done[i] && waits[i].wait_for(5ms) == std::future_status::ready) {
          winner = i;
          break;
        }
      }
    }
    if (!winner) return std::nullopt;
    done[*winner] = true;
    // Nobody else gets it while it is held.
    for (std::size_t i = 0; i < kWaiters; ++i) {
      if (!done[i]) {
        EXPECT_EQ(waits[i].wait_for(100ms), std::future_status::timeout) << i;
      }
    }
    return winner;
  };

  Lock current = *holder;
  Client* current_client = holder_client.get();
  for (std::size_t round = 0; round < kWaiters; ++round) {
    ASSERT_TRUE(current_client->release(current));
    auto winner = next_holder();
    ASSERT_TRUE(winner.has_value()) << "no waiter got the lock after release " << round + 1;
    auto got = waits[*winner].get();
    ASSERT_TRUE(got) << got.error();
    current = *got;
    current_client = clients[*winner].get();
  }
  // Every hand-off came through an announcement.
  EXPECT_LT(Clock::now() - t0, long_delay());
  ASSERT_TRUE(current_client->release(current));
  EXPECT_TRUE(subscribed("res:herd", 0));
}

// Contest gating: waiters woken by a release ask the resource's gate node
// alone; only the one it grants asks the other nodes.
TEST_F(WakeTest, WokenWaitersQueueAtTheGateNodeAndLeaveTheOtherNodesAlone) {
  const auto o = counting_options();
  const std::string res = "res:gate";
  const std::size_t gate = detail::resource_slot(res) % cluster().size();
  auto holder_client = client(o);
  ASSERT_NE(holder_client, nullptr);
  auto holder = holder_client->acquire(res, 30s);
  ASSERT_TRUE(holder) << holder.error();
  constexpr std::size_t kWaiters = 4;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::future<Result<Lock>>> waits;
  for (std::size_t i = 0; i < kWaiters; ++i) {
    clients.push_back(client(o));
    ASSERT_NE(clients.back(), nullptr);
    auto how = waiting(long_delay());
    how.contest_gate = true;
    waits.push_back(clients.back()->async_acquire(res, 30s, how));
  }
  // Subscribed after its first round, which asked every node: count from here.
  ASSERT_TRUE(subscribed(res, kWaiters));
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, {"CONFIG", "RESETSTAT"}));
  }
  const auto t0 = Clock::now();
  ASSERT_TRUE(holder_client->release(*holder));
  take_turns(waits, [&](std::size_t i, const Lock& lock) {
    return static_cast<bool>(clients[i]->release(lock));
  });
  EXPECT_LT(Clock::now() - t0, long_delay()) << "a retry timer, not an announcement, woke one";
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    if (i == gate) {
      EXPECT_GE(set_calls(i), static_cast<long long>(kWaiters)) << "the gate, node " << i + 1;
    } else {
      EXPECT_EQ(set_calls(i), static_cast<long long>(kWaiters)) << "node " << i + 1;
    }
  }
}

TEST_F(WakeTest, AWaiterOnASetIsWokenByTheReleaseOfAnyOfItsKeys) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  // The holder has a set; the waiter wants one key of it and another.
  auto holder = holder_client->acquire_all({"set:a", "set:b"}, 30s);
  ASSERT_TRUE(holder) << holder.error();
  std::promise<Result<Lock>> promise;
  auto waiter = promise.get_future();
  ASSERT_TRUE(waiter_client->async_acquire_all(
      {"set:b", "set:c"}, 30s, waiting(long_delay()),
      [&promise](Result<Lock> r) { promise.set_value(std::move(r)); }));
  ASSERT_TRUE(subscribed("set:b", 1));
  ASSERT_TRUE(subscribed("set:c", 1));
  EXPECT_EQ(subscribers(0, detail::release_channel("set:a")), 0);
  ASSERT_TRUE(holder_client->release(*holder));
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_GE(waiter_client->metrics().wakeups, 1u);
  ASSERT_TRUE(waiter_client->release(*got));
}

// Subscribers reach a node the way its own connection does.
class UnixSocketWakeTest : public WakeTest {
 protected:
  std::size_t nodes_count() const override { return 3; }
  redlock::cluster::ClusterOptions cluster_options() const override {
    redlock::cluster::ClusterOptions co;
    // Relative: each server creates it in its own directory.
    co.extra_args = {"--unixsocket", "redis.sock", "--unixsocketperm", "700"};
    return co;
  }
};

TEST_F(UnixSocketWakeTest, AWaiterOverUnixSocketsIsWoken) {
  std::vector<std::string> nodes;
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    nodes.push_back("unix:" +
                    std::filesystem::absolute(cluster().info(i).dir / "redis.sock").string());
  }
  auto holder_client = client(client_options(nodes));
  auto waiter_client = client(client_options(nodes));
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:unix", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto waiter = waiter_client->async_acquire("res:unix", 30s, waiting(long_delay()));
  ASSERT_TRUE(subscribed("res:unix", 1));
  ASSERT_TRUE(holder_client->release(*holder));
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_GE(waiter_client->metrics().wakeups, 1u);
  ASSERT_TRUE(waiter_client->release(*got));
}

// ------------------------------------------------------------------ faults

TEST_F(WakeTest, KilledNodesDoNotBreakWaiters) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:killed", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto waiter = waiter_client->async_acquire("res:killed", 30s, waiting(long_delay()));
  ASSERT_TRUE(subscribed("res:killed", 1));
  // Two nodes die with the waiter's subscriptions on them.
  ASSERT_TRUE(cluster().kill(0));
  ASSERT_TRUE(cluster().kill(1));
  ASSERT_TRUE(holder_client->release(*holder));
  // The other three announce it.
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  ASSERT_TRUE(waiter_client->release(*got));
}

// Of one client's gated waiters on a resource, only the oldest asks the gate
// at each release: the others do not make a round each.
TEST_F(WakeTest, OfOneClientsGatedWaitersOneAsksTheGateAtEachRelease) {
  const auto o = counting_options();
  const std::string res = "res:gate-local";
  const std::size_t gate = detail::resource_slot(res) % cluster().size();
  auto holder_client = client(o);
  auto waiter_client = client(o);
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire(res, 30s);
  ASSERT_TRUE(holder) << holder.error();
  constexpr std::size_t kWaiters = 6;
  auto how = waiting(long_delay());
  how.contest_gate = true;
  std::vector<std::future<Result<Lock>>> waits;
  for (std::size_t i = 0; i < kWaiters; ++i) {
    waits.push_back(waiter_client->async_acquire(res, 30s, how));
  }
  // One subscription per channel and client: wait for the first rounds.
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        return waiter_client->metrics().rounds_per_acquire.count == 0 &&
               waiter_client->metrics().contended_rounds >= kWaiters;
      },
      scaled(5s)));
  ASSERT_TRUE(subscribed(res, 1));
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, {"CONFIG", "RESETSTAT"}));
  }
  ASSERT_TRUE(holder_client->release(*holder));
  take_turns(waits, [&](std::size_t, const Lock& lock) {
    return static_cast<bool>(waiter_client->release(lock));
  });
  // Each release: one round at the gate, and a second at most when the
  // gate's announcement came after another node's grace (everyone asking at
  // each release would make 6 + 5 + ... + 1 = 21).
  EXPECT_GE(set_calls(gate), static_cast<long long>(kWaiters));
  EXPECT_LE(set_calls(gate), static_cast<long long>(2 * kWaiters));
}

TEST_F(WakeTest, AGatedWaiterWhoseGateNodeDiesIsWokenByTheOthers) {
  const std::string res = "res:gate-killed";
  const std::size_t gate = detail::resource_slot(res) % cluster().size();
  GatedWait w;
  ASSERT_NO_FATAL_FAILURE(start_gated_wait(res, client_options(addresses()), w));
  ASSERT_TRUE(cluster().kill(gate));
  ASSERT_TRUE(
      eventually([&]() -> bool { return !w.waiter_client->connected()[gate]; }, scaled(5s)));
  ASSERT_TRUE(w.holder_client->release(*w.holder));
  // The other four announce it, and the round goes to them at once.
  ASSERT_EQ(w.waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = w.waiter.get();
  ASSERT_TRUE(got) << got.error();
  ASSERT_TRUE(w.waiter_client->release(*got));
}

TEST_F(WakeTest, AGatedWaiterWhoseGateNodePausesGetsTheLockFromTheOthers) {
  const std::string res = "res:gate-paused";
  const std::size_t gate = detail::resource_slot(res) % cluster().size();
  auto o = client_options(addresses());
  o.node_timeout = scaled(200ms);
  GatedWait w;
  ASSERT_NO_FATAL_FAILURE(start_gated_wait(res, o, w));
  // Connected and silent: another node's announcement asks it after a grace,
  // and its node timeout lets the others vote.
  ASSERT_TRUE(cluster().pause(gate));
  ASSERT_TRUE(w.holder_client->release(*w.holder));
  ASSERT_EQ(w.waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = w.waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(got->votes()[gate].status, NodeStatus::kTimeout);
  ASSERT_TRUE(w.waiter_client->release(*got));
  // TearDown resumes it: its queued commands run, no key stays.
}

TEST_F(WakeTest, AfterANodeRestartsTheSubscriptionIsMadeAgain) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:restart", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto waiter = waiter_client->async_acquire("res:restart", 30s, waiting(long_delay()));
  ASSERT_TRUE(subscribed("res:restart", 1));
  // Restarted empty: the holder keeps 4 of 5, the waiter subscribes again.
  ASSERT_TRUE(cluster().restart(0));
  ASSERT_TRUE(subscribed("res:restart", 1, {0}));
  // From here only node 1 can announce: channels are denied on the others
  // (which also drops the waiter's subscriptions there), and the holder's
  // key is put back on node 1 so that the release deletes it there.
  for (std::size_t i = 1; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, {"ACL", "SETUSER", "default", "resetchannels"}));
  }
  ASSERT_TRUE(cluster().command(
      0, {"SET", detail::lock_key("res:restart"), holder->token(), "PX", "30000"}));
  // The holder's release must reach node 1 now, not as a replay later, and
  // the waiter's round after the announcement must be able to win node 1.
  ASSERT_TRUE(eventually([&]() -> bool { return holder_client->connected()[0]; }, scaled(5s)));
  ASSERT_TRUE(eventually([&]() -> bool { return waiter_client->connected()[0]; }, scaled(5s)));
  auto released = holder_client->release(*holder);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_GE(waiter_client->metrics().wakeups, 1u);
  ASSERT_TRUE(waiter_client->release(*got));
}

TEST_F(WakeTest, APausedNodeDoesNotBreakWaiters) {
  auto o = client_options(addresses());
  o.node_timeout = scaled(200ms);
  auto holder_client = client(o);
  auto waiter_client = client(o);
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:paused", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto waiter = waiter_client->async_acquire("res:paused", 30s, waiting(long_delay()));
  ASSERT_TRUE(subscribed("res:paused", 1));
  // Its subscriber connection to node 1 stays open and silent.
  ASSERT_TRUE(cluster().pause(0));
  ASSERT_TRUE(holder_client->release(*holder));
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(got->votes()[0].status, NodeStatus::kPending);  // decided without node 1
  ASSERT_TRUE(waiter_client->release(*got));
  // TearDown resumes node 1: its queued SETs and releases run, no key stays.
}

TEST_F(WakeTest, EverySubscriptionDeniedTheWaiterStillGetsTheLockByItsRetry) {
  // Channels denied to the default user: SUBSCRIBE fails with NOPERM, and the
  // release script's PUBLISH fails inside pcall.
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, {"ACL", "SETUSER", "default", "resetchannels"}));
  }
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:denied", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto waiter = waiter_client->async_acquire("res:denied", 30s, waiting(scaled(300ms)));
  ASSERT_TRUE(eventually([&]() -> bool { return waiter_client->metrics().contended_rounds >= 1; },
                         scaled(5s)));
  auto released = holder_client->release(*holder);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);  // released despite the denied PUBLISH
  ASSERT_EQ(waiter.wait_for(scaled(10s)), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(waiter_client->metrics().wakeups, 0u);
  ASSERT_TRUE(waiter_client->release(*got));
}

// The minimal ACL of docs/deployment.md, with and without the wake-on-release part.
std::vector<std::string> acl_user(const std::string& name, bool channels) {
  std::vector<std::string> argv = {
      "ACL",           "SETUSER",  name,    "on",           ">pw-" + name, "~redlock:*",
      "resetchannels", "-@all",    "+set",  "+get",         "+del",        "+exists",
      "+incr",         "+evalsha", "+eval", "+script|load", "+info",       "+time"};
  if (channels) {
    for (const char* a : {"&redlock:*", "+publish", "+subscribe", "+unsubscribe"}) {
      argv.emplace_back(a);
    }
  }
  return argv;
}

TEST_F(WakeTest, AnAclUserWithTheChannelIsWokenOneWithoutItStillReleasesAndPolls) {
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().command(i, acl_user("waker", true)));
    ASSERT_TRUE(cluster().command(i, acl_user("poller", false)));
  }
  const auto as = [&](const std::string& user) {
    auto o = client_options(addresses());
    o.username = user;
    o.password = "pw-" + user;
    return client(o);
  };
  for (const std::string user : {"waker", "poller"}) {
    SCOPED_TRACE(user);
    const bool wakes = user == "waker";
    auto holder_client = as(user);
    auto waiter_client = as(user);
    ASSERT_NE(holder_client, nullptr);
    ASSERT_NE(waiter_client, nullptr);
    const std::string key = "res:acl:" + user;
    auto holder = holder_client->acquire(key, 30s);
    ASSERT_TRUE(holder) << holder.error();
    // The poller's retry is short enough to wait for; the waker's is not.
    const auto delay = wakes ? long_delay() : scaled(300ms);
    auto waiter = waiter_client->async_acquire(key, 30s, waiting(delay));
    if (wakes) {
      ASSERT_TRUE(subscribed(key, 1));  // through AUTH as that user
    } else {
      ASSERT_TRUE(eventually(
          [&]() -> bool { return waiter_client->metrics().contended_rounds >= 1; }, scaled(5s)));
    }
    auto released = holder_client->release(*holder);
    ASSERT_TRUE(released) << released.error();
    EXPECT_EQ(released->deleted, 5);  // the key is gone either way
    ASSERT_EQ(waiter.wait_for(wakes ? long_delay() / 2 : scaled(10s)), std::future_status::ready);
    auto got = waiter.get();
    ASSERT_TRUE(got) << got.error();
    if (wakes) {
      EXPECT_GE(waiter_client->metrics().wakeups, 1u);
    } else {
      EXPECT_EQ(waiter_client->metrics().wakeups, 0u);
      EXPECT_EQ(subscribers(0, detail::release_channel(key)), 0);
    }
    ASSERT_TRUE(waiter_client->release(*got));
  }
}

TEST_F(WakeTest, AKeyThatExpiresIsNotAnnouncedTheRetryStillFindsItFree) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:expires", scaled(1s));
  ASSERT_TRUE(holder) << holder.error();
  auto how = waiting(scaled(300ms));
  auto waiter = waiter_client->async_acquire("res:expires", 30s, how);
  ASSERT_EQ(waiter.wait_for(scaled(10s)), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(waiter_client->metrics().wakeups, 0u);
  ASSERT_TRUE(waiter_client->release(*got));
}

// ------------------------------------------------------------------ bounds

TEST_F(WakeTest, AWakeUpIsAnAttemptMaxAttemptsStillBounds) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:attempts", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto how = waiting(long_delay());
  how.max_wait = 0ms;
  how.max_attempts = 2;
  auto waiter = waiter_client->async_acquire("res:attempts", 30s, how);
  ASSERT_TRUE(subscribed("res:attempts", 1));
  // An announcement while the lock is still held: the second (last) round
  // runs at once and fails.
  ASSERT_TRUE(cluster().command(2, {"PUBLISH", detail::release_channel("res:attempts"), ""}));
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kHeldByAnother) << got.error();
  EXPECT_EQ(waiter_client->metrics().rounds_per_acquire.sum, 2.0);
  EXPECT_TRUE(subscribed("res:attempts", 0));
  ASSERT_TRUE(holder_client->release(*holder));
}

TEST_F(WakeTest, MaxWaitShorterThanTheRetryDelayWaitsForAnAnnouncementUntilMaxWait) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:max-wait", 30s);
  ASSERT_TRUE(holder) << holder.error();

  // Nothing announced: it gives up at max_wait, not at once and not after
  // the retry delay.
  auto how = waiting(long_delay());
  how.max_wait = scaled(1500ms);
  auto t0 = Clock::now();
  auto alone = waiter_client->acquire("res:max-wait", 30s, how);
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(alone);
  EXPECT_EQ(alone.error().code(), ErrorCode::kLockWaitTimeout) << alone.error();
  EXPECT_THAT(alone.error().message(), HasSubstr("1 attempt(s)"));
  EXPECT_GE(took, how.max_wait);
  EXPECT_LT(took, long_delay());

  // A release announced within max_wait gets a round.
  auto waiter = waiter_client->async_acquire("res:max-wait", 30s, how);
  ASSERT_TRUE(subscribed("res:max-wait", 1));
  ASSERT_TRUE(holder_client->release(*holder));
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  ASSERT_TRUE(waiter_client->release(*got));
}

TEST_F(WakeTest, AnAnnouncementWhileStillHeldRunsOneRoundThenWaitsAgainUntilMaxWait) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:spurious", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto how = waiting(long_delay());
  how.max_wait = scaled(3s);
  auto waiter = waiter_client->async_acquire("res:spurious", 30s, how);
  ASSERT_TRUE(subscribed("res:spurious", 1));
  ASSERT_TRUE(cluster().command(0, {"PUBLISH", detail::release_channel("res:spurious"), ""}));
  ASSERT_EQ(waiter.wait_for(long_delay() / 2), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kLockWaitTimeout) << got.error();
  EXPECT_THAT(got.error().message(), HasSubstr("2 attempt(s)"));
  EXPECT_THAT(got.error().message(), HasSubstr("held by another"));
  ASSERT_TRUE(holder_client->release(*holder));
}

TEST_F(WakeTest, StoppingAWaiterEndsItAndItsSubscription) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:stop", 30s);
  ASSERT_TRUE(holder) << holder.error();
  std::stop_source stop;
  auto how = waiting(long_delay());
  how.stop = stop.get_token();
  auto waiter = waiter_client->async_acquire("res:stop", 30s, how);
  ASSERT_TRUE(subscribed("res:stop", 1));
  stop.request_stop();
  ASSERT_EQ(waiter.wait_for(scaled(2s)), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kCancelled) << got.error();
  EXPECT_TRUE(subscribed("res:stop", 0));
  // An announcement now wakes nobody.
  ASSERT_TRUE(holder_client->release(*holder));
  EXPECT_EQ(waiter_client->metrics().wakeups, 0u);
}

TEST_F(WakeTest, AClientClosedWhileItsAcquireWaitsEndsItCleanly) {
  auto holder_client = client();
  auto waiter_client = client();
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto holder = holder_client->acquire("res:close", 30s);
  ASSERT_TRUE(holder) << holder.error();
  auto waiter = waiter_client->async_acquire("res:close", 30s, waiting(long_delay()));
  ASSERT_TRUE(subscribed("res:close", 1));
  waiter_client.reset();
  ASSERT_EQ(waiter.wait_for(scaled(2s)), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), ErrorCode::kShuttingDown) << got.error();
  EXPECT_TRUE(subscribed("res:close", 0));
  ASSERT_TRUE(holder_client->release(*holder));
}

// ------------------------------------------------------------- the script

// The release script publishes only what it deleted, and only when asked:
// a failed round's cleanup must not wake anyone (its own waiter included).
// Messages on one connection keep their order: if either quiet case had
// published, its message would come before the third one's.
TEST_F(WakeTest, TheReleaseScriptAnnouncesOnlyDeletionsAndOnlyWhenAsked) {
  redisContext* sub = redisConnectWithTimeout("127.0.0.1", cluster().port(0), timeval{2, 0});
  ASSERT_TRUE(sub != nullptr && sub->err == 0);
  std::unique_ptr<redisContext, void (*)(redisContext*)> guard(sub, redisFree);
  const auto us = std::chrono::microseconds(scaled(5s)).count();
  redisSetTimeout(
      sub, timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)});
  for (const char* resource : {"k1", "k2", "k3"}) {
    const auto channel = detail::release_channel(resource);
    auto* r =
        static_cast<redisReply*>(redisCommand(sub, "SUBSCRIBE %b", channel.data(), channel.size()));
    ASSERT_NE(r, nullptr);
    freeReplyObject(r);
  }
  const auto release = [&](const std::string& resource, const std::string& token,
                           const std::string& announce) {
    return cluster().command(
        0, {"EVAL", std::string(detail::kReleaseScript.body), "1", detail::lock_key(resource),
            token, announce, detail::release_channel(resource)});
  };
  for (const char* resource : {"k1", "k2", "k3"}) {
    ASSERT_TRUE(cluster().command(0, {"SET", detail::lock_key(resource), "tok"}));
  }
  EXPECT_EQ(release("k1", "other", "1").value_or("?"), "0");  // not ours: nothing deleted
  EXPECT_EQ(release("k2", "tok", "0").value_or("?"), "1");    // a round's cleanup: quiet
  EXPECT_EQ(release("k3", "tok", "1").value_or("?"), "1");    // a release: announced
  void* reply = nullptr;
  ASSERT_EQ(redisGetReply(sub, &reply), REDIS_OK);
  auto* m = static_cast<redisReply*>(reply);
  ASSERT_TRUE(m->type == REDIS_REPLY_ARRAY && m->elements == 3);
  EXPECT_EQ(std::string(m->element[0]->str), "message");
  EXPECT_EQ(std::string(m->element[1]->str), detail::release_channel("k3"));
  freeReplyObject(m);
  ASSERT_TRUE(cluster().command(0, {"DEL", detail::lock_key("k1")}));
}

}  // namespace
}  // namespace redlock::testing
