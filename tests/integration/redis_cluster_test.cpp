// A Redis Cluster as one lock node (cluster://), on real clusters the tests
// build (RedisCluster): one cluster alone, three clusters as three votes,
// clusters mixed with plain masters, a slot resharded while locks are taken
// (MOVED and ASK), failovers (FORCE and graceful) while locks are held, and a
// shard killed. Every cluster is torn down whatever the outcome, and no lock
// key is left behind.
#include "redis_cluster.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "keys.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using redlock::cluster::LocalCluster;
using ::testing::HasSubstr;

RedisClusterOptions shards(std::size_t n, std::size_t replicas = 0) {
  RedisClusterOptions o;
  o.shards = n;
  o.replicas = replicas;
  return o;
}

// "node=status(detail) ...", for assertion messages.
std::string votes_text(const std::vector<NodeResult>& votes) {
  std::string out;
  for (const auto& v : votes) {
    out += v.node + "=" + std::to_string(static_cast<int>(v.status)) + "(" + v.detail + ") ";
  }
  return out;
}

// Every node can take commands for every resource (a cluster: every shard).
bool all_connected(const Client& client) {
  const auto c = client.connected();
  return std::all_of(c.begin(), c.end(), [](bool b) { return b; });
}

AcquireOptions attempts(int n, std::chrono::milliseconds delay) {
  AcquireOptions how;
  how.max_attempts = n;
  how.retry_delay = delay;
  return how;
}

AcquireOptions waiting(std::chrono::milliseconds max_wait, std::chrono::milliseconds delay) {
  AcquireOptions how;
  how.max_wait = max_wait;
  how.retry_delay = delay;
  return how;
}

// Waits up to `max_wait`, retrying only every 10 s: a grant within that
// came from the release announcement.
AcquireOptions woken_only(std::chrono::milliseconds max_wait) {
  AcquireOptions how = waiting(max_wait, 10s);
  how.retry_jitter = 0ms;
  return how;
}

class RedisClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // Clients first: what they release lands before the keys are counted.
    clients_.clear();
    if (!HasFatalFailure()) {
      for (auto& c : clusters_) expect_no_lock_keys(*c);
      for (auto& p : plain_) expect_no_lock_keys_plain(*p);
    }
    clusters_.clear();
    plain_.clear();
  }

  RedisCluster& make_cluster(RedisClusterOptions o = {}) {
    auto c = RedisCluster::start(o);
    if (!c) {
      ADD_FAILURE() << c.error();
      throw std::runtime_error("cannot start a Redis Cluster");
    }
    clusters_.push_back(std::move(*c));
    return *clusters_.back();
  }

  LocalCluster& make_plain(std::size_t n) {
    auto c = LocalCluster::start(n);
    if (!c) {
      ADD_FAILURE() << c.error();
      throw std::runtime_error("cannot start plain masters");
    }
    plain_.push_back(std::move(*c));
    return *plain_.back();
  }

  Client& connect(ClientOptions o) {
    auto c = connect_or_fail(o);
    if (!c) throw std::runtime_error("cannot connect");
    clients_.push_back(std::move(c));
    return *clients_.back();
  }

  static void expect_no_lock_keys(RedisCluster& c) {
    const auto deadline = Clock::now() + scaled(3000ms);
    tl::expected<long long, std::string> n = 0;
    do {
      n = c.count_lock_keys();
      if (n && *n == 0) return;
      std::this_thread::sleep_for(20ms);
    } while (Clock::now() < deadline);
    ADD_FAILURE() << "lock keys left behind on " << c.url() << ": "
                  << (n ? std::to_string(*n) : n.error());
  }
  static void expect_no_lock_keys_plain(LocalCluster& c) {
    const auto deadline = Clock::now() + scaled(3000ms);
    long long n = 0;
    do {
      auto all = c.count_keys("*");
      auto fences = c.count_keys("redlock:{*}:fence:*");
      n = all && fences ? *all - *fences : -1;
      if (n == 0) return;
      std::this_thread::sleep_for(20ms);
    } while (Clock::now() < deadline);
    ADD_FAILURE() << n << " lock key(s) left behind on the plain masters";
  }

  // A resource whose slot the master that started as server `m` serves
  // (named `prefix` plus a number).
  static std::string resource_on(RedisCluster& c, std::size_t m, const std::string& prefix) {
    for (int i = 0;; ++i) {
      auto name = prefix + std::to_string(i);
      if (c.master_of(detail::resource_slot(name)) == m) return name;
    }
  }

  std::vector<std::unique_ptr<RedisCluster>> clusters_;
  std::vector<std::unique_ptr<LocalCluster>> plain_;
  std::vector<std::unique_ptr<Client>> clients_;
};

std::shared_ptr<std::ostringstream> capture_logs(ClientOptions& o) {
  auto out = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out);
  o.logger = std::make_shared<spdlog::logger>("cluster", sink);
  o.logger->set_level(spdlog::level::debug);
  return out;
}

TEST_F(RedisClusterTest, OneClusterIsOneNodeAndEachLockGoesToItsSlotsMaster) {
  auto& rc = make_cluster(shards(3));
  auto& client = connect(client_options({rc.url()}));
  EXPECT_EQ(client.connected(), std::vector<bool>{true});
  EXPECT_EQ(client.quorum(), 1u);
  ASSERT_TRUE(eventually([&]() -> bool { return client.quorum_available(); }, scaled(5s)));

  // One resource on each master: one vote each, the key on that master only.
  std::vector<Lock> locks;
  for (std::size_t m = 0; m < 3; ++m) {
    const auto name = resource_on(rc, m, "res:m" + std::to_string(m) + ":");
    auto lock = client.acquire(name, 10s);
    ASSERT_TRUE(lock) << lock.error();
    ASSERT_EQ(lock->votes().size(), 1u);
    EXPECT_EQ(lock->votes()[0].status, NodeStatus::kOk);
    EXPECT_GT(lock->fence(), 0u);
    auto there = rc.servers().get(m, detail::lock_key(name));
    ASSERT_TRUE(there) << there.error();
    EXPECT_EQ(there->value_or(""), lock->token());
    auto extended = client.extend(*lock, 10s);
    ASSERT_TRUE(extended) << extended.error();
    locks.push_back(*extended);
  }
  // Another owner is refused; a set with a common hash tag is one lock.
  auto other = client.acquire(locks[1].resources().front(), 10s);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kHeldByAnother) << other.error();
  auto set = client.acquire_all({"{order:42}:items", "{order:42}:payment"}, 10s);
  ASSERT_TRUE(set) << set.error();
  ASSERT_TRUE(client.release(*set));
  for (const auto& lock : locks) {
    auto released = client.release(lock);
    ASSERT_TRUE(released) << released.error();
    EXPECT_EQ(released->deleted, 1);
  }

  // Health shows the shards, in slot order.
  auto health = client.health(scaled(2000ms));
  ASSERT_TRUE(health) << health.error();
  ASSERT_EQ(health->nodes.size(), 1u);
  const auto& h = health->nodes[0];
  EXPECT_TRUE(h.reachable);
  EXPECT_TRUE(h.voting) << h.not_voting_reason;
  ASSERT_EQ(h.shards.size(), 3u);
  EXPECT_EQ(h.shards[0].slots, "0-5460");
  EXPECT_EQ(h.shards[2].slots, "10922-16383");
  for (std::size_t m = 0; m < 3; ++m) {
    EXPECT_EQ(h.shards[m].master, rc.servers().address(m));
    EXPECT_TRUE(h.shards[m].reachable) << h.shards[m].error;
    EXPECT_TRUE(h.shards[m].voting) << h.shards[m].not_voting_reason;
  }
  EXPECT_FALSE(h.version.empty());
  EXPECT_TRUE(h.rtt.has_value());
}

TEST_F(RedisClusterTest, ALockSetAcrossSlotsIsRefusedNamingTheRule) {
  auto& rc = make_cluster(shards(2));
  auto& client = connect(client_options({rc.url()}));
  auto refused = client.acquire_all({"cart:1", "cart:2"}, 10s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(refused.error().message(), HasSubstr("different hash slots"));
  EXPECT_THAT(refused.error().message(), HasSubstr("{hash tag}"));
  auto same = client.acquire_all({"{cart}:1", "{cart}:2"}, 10s);
  ASSERT_TRUE(same) << same.error();
  ASSERT_TRUE(client.release(*same));
}

TEST_F(RedisClusterTest, ThreeClustersAreThreeVotes) {
  std::vector<std::string> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(make_cluster(shards(2)).url());
  auto& client = connect(client_options(nodes));
  EXPECT_EQ(client.quorum(), 2u);
  ASSERT_TRUE(eventually([&]() -> bool { return all_connected(client); }, scaled(5s)));
  auto lock = client.acquire("res:three", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(count_status(lock->votes(), NodeStatus::kOk), 2u) << votes_text(lock->votes());
  ASSERT_TRUE(client.release(*lock));

  // One whole cluster down: the other two still make a majority.
  clusters_[2]->stop();
  auto again = client.acquire("res:three", 10s, attempts(5, 50ms));
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(count_status(again->votes(), NodeStatus::kOk), 2u);
  EXPECT_NE(again->votes()[2].status, NodeStatus::kOk);
  ASSERT_TRUE(client.release(*again));
  clusters_.pop_back();
}

TEST_F(RedisClusterTest, ClustersAndPlainMastersMixedAndAWaiterIsWokenByTheRelease) {
  auto& rc = make_cluster(shards(3));
  auto& plain = make_plain(2);
  auto options = client_options({rc.url(), plain.address(0), plain.address(1)});
  auto& holder = connect(options);
  auto& waiter = connect(options);
  ASSERT_TRUE(eventually([&]() -> bool { return all_connected(holder); }, scaled(5s)));
  ASSERT_TRUE(eventually([&]() -> bool { return all_connected(waiter); }, scaled(5s)));
  auto lock = holder.acquire("res:mixed", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(count_status(lock->votes(), NodeStatus::kOk), 2u) << votes_text(lock->votes());

  // A long retry delay: only the announcement (SPUBLISH on the cluster,
  // PUBLISH on the plain masters) can wake the waiter soon.
  AcquireOptions wait = woken_only(20s);
  auto waiting = waiter.async_acquire("res:mixed", 10s, wait);
  std::this_thread::sleep_for(300ms);  // it tried once and subscribed
  const auto released_at = Clock::now();
  ASSERT_TRUE(holder.release(*lock));
  ASSERT_EQ(waiting.wait_for(scaled(5s)), std::future_status::ready);
  auto got = waiting.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_LT(Clock::now() - released_at, 5s);
  EXPECT_GT(got->fence(), lock->fence());
  ASSERT_TRUE(waiter.release(*got));
}

TEST_F(RedisClusterTest, ANodeTheWakeUpComesFromIsTheSlotsShard) {
  // The same with the cluster as the only node: the announcement must come
  // through the sharded subscription on the resource's own shard.
  auto& rc = make_cluster(shards(3));
  auto& holder = connect(client_options({rc.url()}));
  auto& waiter = connect(client_options({rc.url()}));
  const auto name = resource_on(rc, 2, "res:wake:");
  auto lock = holder.acquire(name, 10s);
  ASSERT_TRUE(lock) << lock.error();
  AcquireOptions wait = woken_only(20s);
  auto waiting = waiter.async_acquire(name, 10s, wait);
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(holder.release(*lock));
  ASSERT_EQ(waiting.wait_for(scaled(5s)), std::future_status::ready);
  auto got = waiting.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_GE(waiter.metrics().wakeups, 1u);
  ASSERT_TRUE(waiter.release(*got));
}

TEST_F(RedisClusterTest, ASlotReshardedWhileLocksAreTakenFollowsAskAndMoved) {
  auto& rc = make_cluster(shards(3));
  auto options = client_options({rc.url()});
  // Room for the TRYAGAIN answers below (sent again 8 times, 25 ms apart)
  // on a loaded machine, so that the "no" says TRYAGAIN, not a timeout.
  options.node_timeout = scaled(2000ms);
  auto logs = capture_logs(options);
  auto& client = connect(options);
  auto& contender = connect(client_options({rc.url()}));
  ASSERT_TRUE(eventually([&]() -> bool { return client.quorum_available(); }, scaled(5s)));
  // Two resources in one slot (a common hash tag), served by master 0.
  std::string tag;
  for (int i = 0;; ++i) {
    tag = "{mv" + std::to_string(i) + "}";
    if (rc.master_of(detail::resource_slot(tag + ":a")) == 0u) break;
  }
  const auto a = tag + ":a";
  const auto b = tag + ":b";
  const unsigned slot = detail::resource_slot(a);

  auto held = client.acquire(a, 20s);
  ASSERT_TRUE(held) << held.error();

  // Migration under way, the keys still on the source: served there.
  ASSERT_TRUE(rc.begin_migration(slot, 1));
  auto refused = contender.acquire(a, 10s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kHeldByAnother) << refused.error();

  // The keys moved, the slot not yet: the source answers ASK for them.
  auto moved = rc.migrate_keys(slot, 1);
  ASSERT_TRUE(moved) << moved.error();
  EXPECT_GE(*moved, 2);  // the lock key and its fence counter
  auto asked_before = rc.servers().command(1, {"INFO", "commandstats"});
  ASSERT_TRUE(asked_before);
  auto extended = client.extend(*held, 20s);
  ASSERT_TRUE(extended) << extended.error();
  // A lock that exists nowhere yet: its script's keys (lock and fence) are
  // on neither side, which the target refuses with TRYAGAIN until the slot
  // is its own. Sent again a few times, then a "no", never an error.
  auto not_yet = client.acquire(b, 20s);
  ASSERT_FALSE(not_yet);
  EXPECT_EQ(not_yet.error().code(), ErrorCode::kNoQuorum) << not_yet.error();
  EXPECT_THAT(not_yet.error().nodes()[0].detail, HasSubstr("TRYAGAIN")) << not_yet.error();
  auto refused_again = contender.acquire(a, 10s);
  ASSERT_FALSE(refused_again);
  EXPECT_EQ(refused_again.error().code(), ErrorCode::kHeldByAnother) << refused_again.error();
  auto asked = rc.servers().command(1, {"INFO", "commandstats"});
  ASSERT_TRUE(asked);
  EXPECT_THAT(*asked, HasSubstr("cmdstat_asking"));

  // The slot is the target's: the source answers MOVED, which is followed.
  ASSERT_TRUE(rc.finish_migration(slot, 1));
  auto second = client.acquire(b, 20s);
  ASSERT_TRUE(second) << second.error();
  auto on_target = rc.servers().get(1, detail::lock_key(b));
  ASSERT_TRUE(on_target) << on_target.error();
  EXPECT_EQ(on_target->value_or(""), second->token());
  auto released = client.release(*extended);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 1) << released->nodes[0].detail;
  auto next = contender.acquire(a, 10s, attempts(5, 50ms));
  ASSERT_TRUE(next) << next.error();
  EXPECT_GT(next->fence(), extended->fence());
  ASSERT_TRUE(contender.release(*next));
  ASSERT_TRUE(client.release(*second));
  EXPECT_THAT(logs->str(), HasSubstr("MOVED"));
}

TEST_F(RedisClusterTest, LocksKeepGoingWhileASlotMovesBackAndForth) {
  auto& rc = make_cluster(shards(2));
  auto& client = connect(client_options({rc.url()}));
  ASSERT_TRUE(eventually([&]() -> bool { return client.quorum_available(); }, scaled(5s)));
  std::string tag;
  for (int i = 0;; ++i) {
    tag = "{busy" + std::to_string(i) + "}";
    if (rc.master_of(detail::resource_slot(tag)) == 0u) break;
  }
  const unsigned slot = detail::resource_slot(tag);
  std::atomic<bool> stop{false};
  std::atomic<int> granted{0};
  std::atomic<int> overlaps{0};
  std::mutex held_mutex;
  std::set<std::string> held;
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      while (!stop) {
        const auto name = tag + ":" + std::to_string(w % 2);
        auto lock = client.acquire(name, 5s, attempts(3, 20ms));
        if (!lock) continue;
        {
          std::lock_guard lk(held_mutex);
          if (!held.insert(name).second) ++overlaps;
        }
        std::this_thread::sleep_for(2ms);
        {
          std::lock_guard lk(held_mutex);
          held.erase(name);
        }
        (void)client.release(*lock);
        ++granted;
      }
    });
  }
  for (int round = 0; round < 4; ++round) {
    const std::size_t to = round % 2 == 0 ? 1 : 0;
    ASSERT_TRUE(rc.begin_migration(slot, to));
    std::this_thread::sleep_for(100ms);
    auto moved = rc.migrate_keys(slot, to);
    ASSERT_TRUE(moved) << moved.error();
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(rc.finish_migration(slot, to));
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(granted.load(), 20);
}

// A replica promoted while a lock is held may lack the lock (replication is
// asynchronous): that is made certain here by deleting the keys on the
// new master at once. The promoted master sits out the restart grace for its
// slots, so nobody else gets the lock while it is still valid, and the next
// holder's fence is larger.
class ClusterFailoverTest : public RedisClusterTest, public ::testing::WithParamInterface<bool> {};

TEST_P(ClusterFailoverTest, APromotedReplicaSitsOutTheGraceForItsSlotsOnly) {
  const bool force = GetParam();
  auto& rc = make_cluster(shards(3, 1));
  auto options = client_options({rc.url()});
  options.max_ttl = 5s;
  options.restart_grace = scaled(5000ms);
  auto& holder = connect(options);
  auto& other = connect(options);
  // Young servers sit out the grace too (they may have restarted); each
  // client times it from its own connect.
  ASSERT_TRUE(
      eventually([&]() -> bool { return holder.quorum_available() && other.quorum_available(); },
                 scaled(10s)));

  const auto name = resource_on(rc, 0, "res:fo:");
  const auto elsewhere = resource_on(rc, 1, "res:fo-other:");
  // The replica to be promoted must be past the young-server grace too, so
  // that what keeps it out of the vote below is the failover alone.
  const auto replica = rc.replica(0);
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        auto info = rc.servers().command(replica, {"INFO", "server"});
        auto up = info ? tools::info_field(*info, "uptime_in_seconds") : std::nullopt;
        return up && std::stoll(*up) * 1000 > options.restart_grace->count() + 1000;
      },
      scaled(30s)));
  auto lock = holder.acquire(name, 4s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(rc.failover(replica, force));
  ASSERT_TRUE(rc.is_master(replica));
  // The new master "missed" the lock, as a replica that lagged behind
  // would: its keys are gone there. (A replica in cluster mode redirects
  // every write, so they are deleted once it is master, before any client
  // has been told of the failover.)
  ASSERT_TRUE(
      rc.servers().command(replica, {"DEL", detail::lock_key(name), detail::fence_key(name)}));

  // While the old lock is valid, nobody else gets it, and the health report
  // says why (asked while the grace surely runs, not after the lock).
  bool health_says_failover = false;
  while (!lock->expired()) {
    auto stolen = other.acquire(name, 2s);
    if (stolen) {
      ADD_FAILURE() << "granted while the old lock was valid, fence " << stolen->fence();
      (void)other.release(*stolen);
      break;
    }
    EXPECT_THAT(
        stolen.error().nodes()[0].detail,
        ::testing::AnyOf(HasSubstr("failover"), HasSubstr("MOVED"), HasSubstr("connection")))
        << stolen.error();
    // Other slots are not held back.
    auto fine = other.acquire(elsewhere, 2s);
    ASSERT_TRUE(fine) << fine.error();
    ASSERT_TRUE(other.release(*fine));
    if (auto health = other.health(scaled(2000ms)); health) {
      health_says_failover = health_says_failover || health->nodes[0].not_voting_reason.find(
                                                         "failover") != std::string::npos;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(health_says_failover)
      << "no health report named the failover while the lock was valid";

  // After the grace, the lock is granted again, with a larger fence.
  auto next = other.acquire(name, 2s, waiting(scaled(10s), 100ms));
  ASSERT_TRUE(next) << next.error();
  EXPECT_GT(next->fence(), lock->fence());
  ASSERT_TRUE(other.release(*next));
  (void)holder.release(*lock);
}

INSTANTIATE_TEST_SUITE_P(ForceAndGraceful, ClusterFailoverTest, ::testing::Bool(),
                         [](const auto& param_info) {
                           return param_info.param ? "Force" : "Graceful";
                         });

TEST_F(RedisClusterTest, AKilledShardCostsTheVoteOfItsSlotsOnly) {
  auto& rc = make_cluster(shards(3));
  auto& client = connect(client_options({rc.url()}));
  ASSERT_TRUE(eventually([&]() -> bool { return client.quorum_available(); }, scaled(5s)));
  const auto on_dead = resource_on(rc, 1, "res:dead:");
  const auto on_live = resource_on(rc, 2, "res:live:");
  ASSERT_TRUE(rc.servers().kill(1));

  auto refused = client.acquire(on_dead, 10s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kNoQuorum) << refused.error();
  EXPECT_THAT(refused.error().nodes()[0].detail, HasSubstr(rc.servers().address(1)));
  auto granted = client.acquire(on_live, 10s);
  ASSERT_TRUE(granted) << granted.error();
  ASSERT_TRUE(client.release(*granted));

  EXPECT_FALSE(client.quorum_available());  // not for every resource
  auto health = client.health(scaled(2000ms));
  ASSERT_TRUE(health) << health.error();
  const auto& h = health->nodes[0];
  EXPECT_FALSE(h.reachable);
  ASSERT_EQ(h.shards.size(), 3u);
  EXPECT_FALSE(h.shards[1].reachable);
  EXPECT_TRUE(h.shards[0].reachable);
  EXPECT_TRUE(h.shards[2].reachable);
}

TEST_F(RedisClusterTest, TheFirstMapComesFromAnySeedThatAnswers) {
  auto& rc = make_cluster(shards(2));
  // The first seed is no server at all.
  auto options = client_options({"cluster://127.0.0.1:1," + rc.servers().address(1)});
  auto& client = connect(options);
  ASSERT_TRUE(eventually([&]() -> bool { return client.quorum_available(); }, scaled(5s)));
  auto lock = client.acquire("res:seed", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client.release(*lock));
}

}  // namespace
}  // namespace redlock::testing
