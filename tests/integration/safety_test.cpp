// Safety beyond Redlock, on real nodes: fencing tokens (monotonic across
// holders, expiry, restarts, raised when the nodes disagree, and what they
// buy a resource against a paused holder) and restart-aware voting (a node
// that restarted empty does not help grant a lock that is still held).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "fenced_store.hpp"
#include "keys.hpp"
#include "redlock/tools/subprocess.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class SafetyTest : public ClusterTest {
 protected:
  std::string nodes_list() const {
    std::string out;
    for (const auto& a : addresses()) out += (out.empty() ? "" : ",") + a;
    return out;
  }

  // The value of node i's fencing counter for `resource` (0 if missing).
  std::uint64_t counter(std::size_t i, const std::string& resource) {
    auto v = cluster().command(i, {"GET", detail::fence_key(resource)});
    if (!v || v->empty()) return 0;
    return std::stoull(*v);
  }

  // Options with restart-aware voting on, as a production client has it.
  ClientOptions voting_options(milliseconds max_ttl) {
    auto o = client_options(addresses());
    o.restart_grace.reset();
    o.max_ttl = max_ttl;
    return o;
  }

  // Waits until every node has been up for longer than `grace` (INFO rounds
  // uptime down to whole seconds), so a client with the rule on counts them.
  void wait_until_older_than(milliseconds grace) {
    const auto need = std::chrono::ceil<std::chrono::seconds>(grace) + 1s;
    ASSERT_TRUE(eventually(
        [&]() -> bool {
          for (std::size_t i = 0; i < cluster().size(); ++i) {
            auto info = cluster().command(i, {"INFO", "server"});
            if (!info) return false;
            const auto at = info->find("uptime_in_seconds:");
            if (at == std::string::npos) return false;
            if (std::stoll(info->substr(at + 18)) < need.count()) return false;
          }
          return true;
        },
        need + scaled(5s)));
  }

  AcquireOptions patient() const {
    AcquireOptions how;
    how.max_wait = scaled(10s);
    how.retry_delay = 20ms;
    how.retry_jitter = 10ms;
    return how;
  }

  // Client `a` takes `resource` on nodes 1-3 only: nodes 4 and 5 hold it
  // for someone else meanwhile, who then lets go there.
  Lock hold_on_first_three(Client& a, const std::string& resource, milliseconds ttl) {
    for (std::size_t i : {std::size_t{3}, std::size_t{4}}) {
      EXPECT_TRUE(
          cluster().command(i, {"SET", detail::lock_key(resource), "someone-else", "PX", "60000"}));
    }
    AcquireOptions once;  // one round: nodes 4 and 5 refuse it
    auto lock = a.acquire(resource, ttl, once);
    for (std::size_t i : {std::size_t{3}, std::size_t{4}})
      EXPECT_TRUE(cluster().command(i, {"DEL", detail::lock_key(resource)}));
    EXPECT_TRUE(lock) << lock.error();
    if (!lock) return {};
    EXPECT_EQ(count_status(lock->votes(), NodeStatus::kOk), 3U);
    return *lock;
  }
};

// ---------------------------------------------------------------------------
// Fencing tokens

TEST_F(SafetyTest, FencesGrowAcrossHoldersReleasesExpiryAndLockSets) {
  auto a = connect_or_fail(client_options(addresses()));
  auto b = connect_or_fail(client_options(addresses()));
  ASSERT_TRUE(a && b);
  std::uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    Client& c = i % 2 == 0 ? *a : *b;
    auto lock = c.acquire("fence:r", 2s, patient());
    ASSERT_TRUE(lock) << lock.error();
    EXPECT_GT(lock->fence(), last) << "grant " << i;
    last = lock->fence();
    ASSERT_TRUE(c.release(*lock));
  }
  // A holder that lets its lock expire, then another client.
  auto expiring = a->acquire("fence:r", scaled(300ms), patient());
  ASSERT_TRUE(expiring) << expiring.error();
  EXPECT_GT(expiring->fence(), last);
  auto after = b->acquire("fence:r", 2s, patient());
  ASSERT_TRUE(after) << after.error();
  EXPECT_GT(after->fence(), expiring->fence());
  ASSERT_TRUE(b->release(*after));
  // A lock set's fence is above every member's earlier fences, and each
  // member's later fences are above it.
  auto set = a->acquire_all({"fence:r", "fence:s"}, 2s, patient());
  ASSERT_TRUE(set) << set.error();
  EXPECT_GT(set->fence(), after->fence());
  ASSERT_TRUE(a->release(*set));
  auto single = b->acquire("fence:s", 2s, patient());
  ASSERT_TRUE(single) << single.error();
  EXPECT_GT(single->fence(), set->fence());
  ASSERT_TRUE(b->release(*single));
}

TEST_F(SafetyTest, FencesStayMonotonicWhenEveryNodeRestartsEmpty) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  auto first = client->acquire("fence:restart", 2s, patient());
  ASSERT_TRUE(first) << first.error();
  ASSERT_TRUE(client->release(*first));
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    ASSERT_TRUE(cluster().kill(i).has_value());
    ASSERT_TRUE(cluster().restart(i).has_value());
  }
  ASSERT_EQ(cluster().count_keys(std::string(kFencePattern)).value_or(-1), 0)
      << "the counters are gone";
  // Fresh counters start from the nodes' clocks, past every earlier fence.
  auto second = client->acquire("fence:restart", 2s, patient());
  ASSERT_TRUE(second) << second.error();
  EXPECT_GT(second->fence(), first->fence());
  ASSERT_TRUE(client->release(*second));
}

TEST_F(SafetyTest, FreshCountersStartAtOneValueOnEveryNode) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  auto time = cluster().command(0, {"TIME"});
  ASSERT_TRUE(time.has_value());
  std::istringstream fields(*time);
  std::uint64_t seconds = 0, micros = 0;
  fields >> seconds >> micros;
  const std::uint64_t before = seconds * 1'000'000 + micros;
  // Each resource is new: every node starts its counter from the client's
  // seed (its clock plus a lead), which is ahead of the nodes' clocks here,
  // so all nodes agree on the fence and no grant needs a raise round.
  constexpr int kLocks = 20;
  for (int k = 0; k < kLocks; ++k) {
    const std::string resource = "fence:fresh:" + std::to_string(k);
    auto lock = client->acquire(resource, 5s, patient());
    ASSERT_TRUE(lock) << lock.error();
    EXPECT_GT(lock->fence(), before + 500'000) << "seeded ahead of the node's clock";
    // The grant needs three answers; the other scripts may still be on
    // their way, but none sets another value.
    std::size_t at_fence = 0;
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      const auto c = counter(i, resource);
      at_fence += c == lock->fence() ? 1U : 0U;
      EXPECT_TRUE(c == lock->fence() || c == 0) << resource << " on node " << i + 1 << ": " << c;
    }
    EXPECT_GE(at_fence, 3U) << resource;
    ASSERT_TRUE(client->release(*lock));
  }
  EXPECT_EQ(client->metrics().fence_raises, 0U);
}

TEST_F(SafetyTest, AFenceHeldByFewerThanAMajorityIsRaisedBeforeTheLockIsHandedOut) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  // Node 1 has seen a fence the others have not (as after a grant whose
  // raise reached only it).
  constexpr std::uint64_t kHigh = 5'000'000'000'000'000;
  ASSERT_TRUE(
      cluster().command(0, {"SET", detail::fence_key("fence:raise"), std::to_string(kHigh)}));
  // With nodes 4 and 5 paused, the grant comes from nodes 1-3.
  ASSERT_TRUE(cluster().pause(3).has_value());
  ASSERT_TRUE(cluster().pause(4).has_value());
  auto lock = client->acquire("fence:raise", scaled(5s), patient());
  ASSERT_TRUE(cluster().resume(3).has_value());
  ASSERT_TRUE(cluster().resume(4).has_value());
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_EQ(lock->fence(), kHigh + 1);
  EXPECT_EQ(client->metrics().fence_raises, 1U);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(counter(i, "fence:raise"), kHigh + 1) << "node " << i + 1 << " holds the fence";
  }
  ASSERT_TRUE(client->release(*lock));
  auto next = client->acquire("fence:raise", 2s, patient());
  ASSERT_TRUE(next) << next.error();
  EXPECT_GT(next->fence(), lock->fence());
  ASSERT_TRUE(client->release(*next));
}

TEST_F(SafetyTest, ACounterThatCannotCountVotesNoAndKeepsNoKey) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  const auto holders = [&](std::string_view resource, const std::string& token) {
    std::vector<std::size_t> nodes;
    for (std::size_t i = 0; i < cluster().size(); ++i) {
      auto v = cluster().get(i, detail::lock_key(resource));
      if (v && *v && **v == token) nodes.push_back(i);
    }
    return nodes;
  };
  // Nodes 1-3's counters are not numbers: none of them can hand out a
  // fence, so none may grant, nor keep the lock key its script had set.
  // The round fails only once all three have said so, so each one's
  // answer is in the error.
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster().command(i, {"SET", detail::fence_key("fence:bad"), "not-a-number"}));
  }
  AcquireOptions once;
  once.max_attempts = 1;
  auto refused = client->acquire("fence:bad", 2s, once);
  ASSERT_FALSE(refused);
  ASSERT_EQ(refused.error().nodes().size(), 5U);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& vote = refused.error().nodes()[i];
    EXPECT_EQ(vote.status, NodeStatus::kError) << "node " << i + 1;
    EXPECT_THAT(vote.detail, HasSubstr("fence counter: INCR")) << "node " << i + 1;
    auto keys = cluster().dbsize(i);
    ASSERT_TRUE(keys) << keys.error();
    EXPECT_EQ(*keys, 1) << "node " << i + 1 << " kept more than its counter";
  }

  // With one such node the other four grant. A grant is made on the first
  // three yes votes, so the last answers are awaited here, boundedly.
  ASSERT_TRUE(cluster().command(0, {"SET", detail::fence_key("fence:one-bad"), "not-a-number"}));
  auto lock = client->acquire("fence:one-bad", 2s, patient());
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GT(lock->fence(), 0U);
  EXPECT_TRUE(
      eventually([&] { return holders("fence:one-bad", lock->token()).size() == 4; }, scaled(5s)));
  EXPECT_EQ(holders("fence:one-bad", lock->token()), (std::vector<std::size_t>{1, 2, 3, 4}))
      << "node 1 must hold no key";
  ASSERT_TRUE(client->release(*lock));
  EXPECT_TRUE(holders("fence:one-bad", lock->token()).empty());
}

TEST_F(SafetyTest, WithFencingOffLocksCarryNoFenceAndNoCounterIsWritten) {
  auto options = client_options(addresses());
  options.fencing = false;
  auto client = connect_or_fail(options);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("fence:off", 2s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_EQ(lock->fence(), 0U);
  EXPECT_EQ(cluster().count_keys(std::string(kFencePattern)).value_or(-1), 0);
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(SafetyTest, AHolderPausedPastItsValidityIsRefusedByAFencedResource) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("redlock-fenced-" + std::to_string(::getpid()) + "-" + std::to_string(cluster().port(0)));
  std::filesystem::create_directories(dir);
  const auto store = (dir / "store").string();
  const auto out = dir / "writer.out";
  const auto ttl = scaled(3000ms);
  tools::SpawnOptions spawn;
  spawn.argv = {REDLOCK_FENCED_WRITER_PATH,
                "--nodes",
                nodes_list(),
                "--resource",
                "fence:paused",
                "--store",
                store,
                "--ttl-ms",
                std::to_string(ttl.count()),
                "--hold-ms",
                std::to_string(scaled(1000ms).count())};
  spawn.stdout_path = out;
  auto writer = tools::Subprocess::spawn(spawn);
  ASSERT_TRUE(writer.has_value()) << writer.error().message;
  auto read_out = [&] {
    std::ifstream in(out);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // As soon as it holds the lock, freeze it for longer than the lock lasts.
  ASSERT_TRUE(eventually([&]() -> bool { return read_out().find("fence=") != std::string::npos; },
                         scaled(10s)))
      << read_out();
  ASSERT_EQ(::kill(writer->pid(), SIGSTOP), 0);
  const auto paused_at = Clock::now();
  const std::uint64_t paused_fence = std::stoull(read_out().substr(6));

  // Meanwhile another client gets the lock once it has expired, and writes.
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  auto how = patient();
  how.max_wait = ttl + scaled(10s);
  auto lock = client->acquire("fence:paused", 10s, how);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GT(lock->fence(), paused_fence);
  EXPECT_EQ(fenced_write(store, lock->fence()), FencedWrite::kAccepted);

  // The paused holder wakes up, still believing it holds the lock.
  EXPECT_GE(Clock::now() - paused_at, ttl - scaled(1000ms));
  ASSERT_EQ(::kill(writer->pid(), SIGCONT), 0);
  const int status = writer->wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status << "\n" << read_out();
  EXPECT_THAT(read_out(), HasSubstr("rejected"));
  ASSERT_TRUE(client->release(*lock));
  std::filesystem::remove_all(dir);
}

TEST_F(SafetyTest, FencesStrictlyIncreaseOverThousandsOfGrantsWhileNodesRestart) {
  const auto ttl = scaled(300ms);
  const auto max_ttl = scaled(500ms);
  wait_until_older_than(max_ttl);
  if (HasFatalFailure()) return;
  constexpr int kClients = 3;
  constexpr int kGrants = 3000;
  constexpr int kRestarts = 6;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_or_fail(voting_options(max_ttl)));
    ASSERT_NE(clients.back(), nullptr);
  }
  std::mutex mu;
  std::uint64_t last_fence = 0;
  std::atomic<int> grants{0};
  std::atomic<int> regressions{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> inside{0};
  std::atomic<bool> stop{false};
  const auto give_up = Clock::now() + scaled(90s);
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < clients.size(); ++c) {
    threads.emplace_back([&, c] {
      AcquireOptions how;
      how.max_wait = scaled(5s);
      how.retry_delay = 3ms;
      how.retry_jitter = 2ms;
      while (!stop && grants < kGrants && Clock::now() < give_up) {
        auto lock = clients[c]->acquire("fence:chaos", ttl, how);
        if (!lock) continue;
        if (inside.fetch_add(1) != 0) ++overlaps;
        {
          std::lock_guard<std::mutex> hold(mu);
          if (lock->fence() <= last_fence) ++regressions;
          last_fence = std::max(last_fence, lock->fence());
        }
        ++grants;
        inside.fetch_sub(1);
        (void)clients[c]->release(*lock);
      }
    });
  }
  // The nodes are killed and restarted empty in turn, one every 250 ms, so
  // up to three at a time are down or sitting out their grace.
  int restarts = 0;
  while ((grants < kGrants || restarts < kRestarts) && Clock::now() < give_up) {
    std::this_thread::sleep_for(scaled(250ms));
    const std::size_t victim = static_cast<std::size_t>(restarts) % cluster().size();
    ASSERT_TRUE(cluster().kill(victim).has_value());
    ASSERT_TRUE(cluster().restart(victim).has_value());
    ++restarts;
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GE(grants.load(), kGrants);
  EXPECT_GE(restarts, kRestarts);
  std::cout << grants << " grants, " << restarts << " node restarts\n";
  EXPECT_EQ(regressions.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  std::uint64_t seen = 0;
  for (auto& c : clients) {
    for (const auto& n : c->metrics().nodes) seen += n.restarts;
  }
  EXPECT_GT(seen, 0U) << "the clients noticed restarts";
}

// ---------------------------------------------------------------------------
// Restart-aware voting

// The case the rule exists for: A holds on nodes 1-3; node 1 restarts empty.
// Without the rule, nodes 1, 4 and 5 grant B the lock while A's is valid.
TEST_F(SafetyTest, WithoutTheRuleARestartedNodeHelpsGrantALockThatIsStillHeld) {
  const auto ttl = scaled(3000ms);
  auto a = connect_or_fail(client_options(addresses()));
  auto b = connect_or_fail(client_options(addresses()));  // restart_grace 0
  ASSERT_TRUE(a && b);
  const Lock held = hold_on_first_three(*a, "restart:r", ttl);
  ASSERT_FALSE(held.token().empty());
  ASSERT_TRUE(cluster().kill(0).has_value());
  ASSERT_TRUE(cluster().restart(0).has_value());
  auto lock = b->acquire("restart:r", ttl, patient());
  const auto granted_at = Clock::now();
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_LT(granted_at, held.valid_until()) << "two holders at once: the hazard";
  ASSERT_TRUE(b->release(*lock));
  (void)a->release(held);
}

TEST_F(SafetyTest, ARestartedNodeSitsOutTheGraceSoALockStillHeldIsNotGrantedTwice) {
  const auto ttl = scaled(2000ms);
  wait_until_older_than(ttl);
  if (HasFatalFailure()) return;
  auto a = connect_or_fail(client_options(addresses()));
  auto b = connect_or_fail(voting_options(ttl));
  ASSERT_TRUE(a && b);
  const Lock held = hold_on_first_three(*a, "restart:r", ttl);
  ASSERT_FALSE(held.token().empty());
  ASSERT_TRUE(cluster().kill(0).has_value());
  ASSERT_TRUE(cluster().restart(0).has_value());
  // B sees node 1's new run_id when it reconnects.
  ASSERT_TRUE(
      eventually([&]() -> bool { return b->metrics().nodes[0].restarts == 1; }, scaled(5s)));
  auto lock = b->acquire("restart:r", ttl, patient());
  const auto granted_at = Clock::now();
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(granted_at, held.valid_until()) << "granted while A's lock was valid";
  // Granted by nodes 2-5 once A's keys expired; node 1 was still sitting out.
  EXPECT_EQ(lock->votes()[0].status, NodeStatus::kNotVoting) << lock->votes()[0].detail;
  EXPECT_THAT(lock->votes()[0].detail, HasSubstr("restarted"));
  ASSERT_TRUE(b->release(*lock));
}

TEST_F(SafetyTest, AClientStartedAfterTheRestartJudgesTheNodeByItsUptime) {
  const auto ttl = scaled(2000ms);
  wait_until_older_than(ttl);
  if (HasFatalFailure()) return;
  auto a = connect_or_fail(client_options(addresses()));
  ASSERT_NE(a, nullptr);
  const Lock held = hold_on_first_three(*a, "restart:r", ttl);
  ASSERT_FALSE(held.token().empty());
  ASSERT_TRUE(cluster().kill(0).has_value());
  ASSERT_TRUE(cluster().restart(0).has_value());
  // B has never seen node 1 before: only its uptime tells it restarted.
  auto b = connect_or_fail(voting_options(ttl));
  ASSERT_NE(b, nullptr);
  auto lock = b->acquire("restart:r", ttl, patient());
  const auto granted_at = Clock::now();
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(granted_at, held.valid_until()) << "granted while A's lock was valid";
  EXPECT_EQ(lock->votes()[0].status, NodeStatus::kNotVoting) << lock->votes()[0].detail;
  EXPECT_THAT(lock->votes()[0].detail, HasSubstr("up for only"));
  EXPECT_EQ(b->metrics().nodes[0].restarts, 0U) << "not seen restarting, only young";
  ASSERT_TRUE(b->release(*lock));
}

TEST_F(SafetyTest, ANodeNotVotingSaysWhyAndWhenItVotesAgain) {
  // A fresh cluster and the default rule: nothing votes yet, and the error
  // says so for each node instead of "held by another" or a timeout.
  auto b = connect_or_fail(voting_options(scaled(30s)));
  ASSERT_NE(b, nullptr);
  // A ttl that leaves room for the scaled node timeout of sanitizer builds.
  auto lock = b->acquire("restart:young", scaled(5s));
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  for (const auto& n : lock.error().nodes()) {
    EXPECT_EQ(n.status, NodeStatus::kNotVoting) << n.node;
    EXPECT_THAT(n.detail, HasSubstr("votes again in")) << n.node;
  }
  EXPECT_EQ(cluster().count_keys("restart:*").value_or(-1), 0) << "nothing was asked of them";
}

}  // namespace
}  // namespace redlock::testing
