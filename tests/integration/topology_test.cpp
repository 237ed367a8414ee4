// Deployment topologies on real servers: ACL users and passwords, Unix
// sockets, IPv6, databases, a node in Redis Cluster mode, and a
// Sentinel-managed master followed across a forced failover.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "keys.hpp"
#include "redlock/cluster/free_ports.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using redlock::cluster::ClusterOptions;
using redlock::cluster::LocalCluster;
using ::testing::HasSubstr;
using ::testing::Not;

// The commands redlock needs, and nothing else (docs/deployment.md shows this ACL).
const std::vector<std::string> kMinimalAcl = {
    "ACL",           "SETUSER",    "redlock",    "on",          ">s3cret-pass", "~redlock:*",
    "resetchannels", "&redlock:*", "-@all",      "+set",        "+get",         "+del",
    "+exists",       "+incr",      "+evalsha",   "+eval",       "+script|load", "+info",
    "+time",         "+publish",   "+subscribe", "+unsubscribe"};

int free_port() {
  const auto ports = redlock::cluster::free_tcp_ports(1);
  return ports.empty() ? 0 : ports.front();
}

// A child process that dies with the test, for servers LocalCluster does not
// start (sentinels need a config file first on their command line).
class Child {
 public:
  Child(std::vector<std::string> argv, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

 private:
  pid_t pid_ = -1;
};

std::string capture_logs(ClientOptions& o, std::shared_ptr<std::ostringstream>& out) {
  out = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out);
  o.logger = std::make_shared<spdlog::logger>("topology", sink);
  o.logger->set_level(spdlog::level::debug);
  return {};
}

class TopologyTest : public ClusterTest {
 protected:
  std::size_t nodes_count() const override { return 3; }
  std::string url(std::size_t i, const std::string& userinfo, const std::string& path = "") {
    return "redis://" + userinfo + "@127.0.0.1:" + std::to_string(cluster().port(i)) + path;
  }
};

TEST_F(TopologyTest, AnAclUserWithOnlyTheCommandsRedlockNeedsCanDoEverything) {
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(cluster().command(i, kMinimalAcl));
  auto client =
      connect_or_fail(client_options({url(0, "redlock:s3cret-pass"), url(1, "redlock:s3cret-pass"),
                                      url(2, "redlock:s3cret-pass")}));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->connected(), (std::vector<bool>{true, true, true}));
  auto lock = client->acquire("res:acl", 10s);
  ASSERT_TRUE(lock) << lock.error();
  auto extended = client->extend(*lock, 10s);
  ASSERT_TRUE(extended) << extended.error();
  auto set = client->acquire_all({"res:acl:a", "res:acl:b"}, 10s);
  ASSERT_TRUE(set) << set.error();
  ASSERT_TRUE(client->release(*set));
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 3);
  // Secrets stay out of what the client reports.
  for (const auto& name : client->nodes()) EXPECT_THAT(name, Not(HasSubstr("s3cret")));
}

// An ACL written before the fenced acquire counted with INCR: every node
// refuses with Redis's own reason, and none keeps the key its script set.
TEST_F(TopologyTest, AnAclWithoutIncrRefusesTheFencedAcquireAndKeepsNoKey) {
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster().command(i, kMinimalAcl));
    ASSERT_TRUE(cluster().command(i, {"ACL", "SETUSER", "redlock", "-incr"}));
  }
  auto o = client_options(addresses());
  o.username = "redlock";
  o.password = "s3cret-pass";
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  AcquireOptions once;
  once.max_attempts = 1;
  auto lock = client->acquire("res:acl:noincr", 10s, once);
  ASSERT_FALSE(lock);
  std::size_t refused = 0;
  for (const auto& node : lock.error().nodes()) {
    if (node.status != NodeStatus::kError) continue;  // the third may still be pending
    ++refused;
    EXPECT_THAT(node.detail, HasSubstr("fence counter: INCR")) << node.node;
    EXPECT_THAT(node.detail, HasSubstr("can't run this command")) << node.node;
  }
  EXPECT_GE(refused, 2U);
  for (std::size_t i = 0; i < 3; ++i) {
    auto keys = cluster().dbsize(i);
    ASSERT_TRUE(keys) << keys.error();
    EXPECT_EQ(*keys, 0) << "node " << i + 1;
  }
}

TEST_F(TopologyTest, SharedCredentialsApplyToEveryNodeWithoutItsOwn) {
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(cluster().command(i, kMinimalAcl));
  auto o = client_options(addresses());
  o.username = "redlock";
  o.password = "s3cret-pass";
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:shared-auth", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(TopologyTest, AWrongPasswordIsAClearPerNodeErrorNeverAHangAndNeverLogged) {
  for (std::size_t i = 0; i < 3; ++i) ASSERT_TRUE(cluster().command(i, kMinimalAcl));
  const std::string secret = "hunter2-not-it";
  auto o = client_options(
      {url(0, "redlock:" + secret), url(1, "redlock:" + secret), url(2, "redlock:" + secret)});
  std::shared_ptr<std::ostringstream> logs;
  capture_logs(o, logs);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  const auto t0 = Clock::now();
  auto lock = client->acquire("res:wrong-pass", 10s);
  EXPECT_LT(Clock::now() - t0, scaled(2s));
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  for (const auto& n : lock.error().nodes()) {
    EXPECT_EQ(n.status, NodeStatus::kDisconnected);
    EXPECT_THAT(n.detail, HasSubstr("authentication failed"));
    EXPECT_THAT(n.detail, HasSubstr("WRONGPASS"));
  }
  client.reset();
  EXPECT_THAT(logs->str(), HasSubstr("authentication failed"));
  EXPECT_THAT(logs->str(), Not(HasSubstr(secret)));
  EXPECT_THAT(to_string(lock.error()), Not(HasSubstr(secret)));
}

TEST_F(TopologyTest, ADatabaseInTheUrlIsSelectedOnEveryConnect) {
  auto client = connect_or_fail(
      client_options({"redis://127.0.0.1:" + std::to_string(cluster().port(0)) + "/3",
                      "redis://127.0.0.1:" + std::to_string(cluster().port(1)) + "/3",
                      "redis://127.0.0.1:" + std::to_string(cluster().port(2)) + "/3"}));
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:db", 10s);
  ASSERT_TRUE(lock) << lock.error();
  auto keyspace = cluster().command(0, {"INFO", "keyspace"});
  ASSERT_TRUE(keyspace) << keyspace.error();
  // The lock and its fencing counter.
  EXPECT_THAT(*keyspace, HasSubstr("db3:keys=2,expires=1"));
  EXPECT_THAT(*keyspace, Not(HasSubstr("db0:")));
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(TopologyTest, ANodeInRedisClusterModeIsRefusedWithAClearError) {
  ClusterOptions co;
  // A bus port of its own: the default (port + 10000) overflows for high ports.
  co.node_args = {{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                   "--cluster-port", std::string(ClusterOptions::kExtraPort)}};
  auto shard = LocalCluster::start(1, co);
  ASSERT_TRUE(shard) << shard.error();
  auto client = connect_or_fail(
      client_options({(*shard)->address(0), cluster().address(1), cluster().address(2)}));
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:cluster-mode", 10s);
  ASSERT_TRUE(lock) << lock.error();  // the two independent masters agree
  EXPECT_EQ(lock->votes()[0].status, NodeStatus::kDisconnected);
  EXPECT_THAT(lock->votes()[0].detail, HasSubstr("Redis Cluster mode"));
  ASSERT_TRUE(client->release(*lock));
}

class UnixSocketTest : public ::testing::Test {};

TEST_F(UnixSocketTest, NodesReachedThroughUnixSocketsWork) {
  std::vector<std::unique_ptr<LocalCluster>> servers;
  std::vector<std::string> nodes;
  for (int i = 0; i < 3; ++i) {
    // A relative path: each server creates it in its own directory.
    ClusterOptions co;
    co.extra_args = {"--unixsocket", "redis.sock", "--unixsocketperm", "700"};
    auto server = LocalCluster::start(1, co);
    ASSERT_TRUE(server) << server.error();
    nodes.push_back("unix:" +
                    std::filesystem::absolute((*server)->info(0).dir / "redis.sock").string());
    servers.push_back(std::move(*server));
  }
  auto client = connect_or_fail(client_options(nodes));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->connected(), (std::vector<bool>{true, true, true}));
  auto lock = client->acquire("res:unix", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_EQ(count_status(lock->votes(), NodeStatus::kOk) +
                count_status(lock->votes(), NodeStatus::kPending),
            3u);
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 3);
}

class Ipv6Test : public ClusterTest {
 protected:
  std::size_t nodes_count() const override { return 3; }
  ClusterOptions cluster_options() const override {
    ClusterOptions co;
    co.extra_args = {"--bind", "127.0.0.1", "::1"};
    return co;
  }
};

TEST_F(Ipv6Test, NodesOnTheIpv6LoopbackWork) {
  std::vector<std::string> nodes;
  for (std::size_t i = 0; i < 3; ++i) nodes.push_back("[::1]:" + std::to_string(cluster().port(i)));
  auto client = connect_or_fail(client_options(nodes));
  ASSERT_NE(client, nullptr);
  if (client->connected() != std::vector<bool>{true, true, true}) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  auto lock = client->acquire("res:ipv6", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client->release(*lock));
}

// A master with one replica watched by three sentinels, plus two independent
// masters: three votes, one of them Sentinel-managed.
class SentinelTest : public ClusterTest {
 protected:
  std::size_t nodes_count() const override { return 2; }

  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    auto master = LocalCluster::start(1);
    ASSERT_TRUE(master) << master.error();
    master_ = std::move(*master);
    ClusterOptions co;
    co.extra_args = {"--replicaof", "127.0.0.1", std::to_string(master_->port(0))};
    auto replica = LocalCluster::start(1, co);
    ASSERT_TRUE(replica) << replica.error();
    replica_ = std::move(*replica);
    for (int s = 0; s < 3; ++s) {
      // The port may be taken between the pick and the sentinel's bind: then
      // the sentinel exits and another port is picked.
      bool ready = false;
      for (int attempt = 0; attempt < 5 && !ready; ++attempt) {
        const int port = free_port();
        const auto conf = master_->dir() / ("sentinel" + std::to_string(s) + ".conf");
        std::ofstream(conf) << "port " << port << "\nbind 127.0.0.1\n"
                            << "sentinel monitor mymaster 127.0.0.1 " << master_->port(0) << " 2\n"
                            << "sentinel down-after-milliseconds mymaster 1000\n"
                            << "sentinel failover-timeout mymaster 5000\n";
        auto child = std::make_unique<Child>(
            std::vector<std::string>{"redis-server", conf.string(), "--sentinel"},
            (master_->dir() / ("sentinel" + std::to_string(s) + ".log")).string());
        ready = eventually([&]() -> bool { return sentinel_ready(port, master_->port(0)); },
                           scaled(5s));
        if (ready) {
          sentinels_.push_back(std::move(child));
          sentinel_ports_.push_back(port);
        }
      }
      ASSERT_TRUE(ready) << "sentinel " << s + 1 << " never started";
    }
    // Wait until every sentinel knows the replica (so a failover can happen).
    ASSERT_TRUE(eventually(
        [&]() -> bool {
          for (int port : sentinel_ports_) {
            if (command_text(port, {"SENTINEL", "replicas", "mymaster"}).find("slave") ==
                std::string::npos) {
              return false;
            }
          }
          return true;
        },
        scaled(20s)))
        << "the sentinels never saw the replica";
  }

  void TearDown() override {
    sentinels_.clear();
    ClusterTest::TearDown();
  }

  std::string sentinel_url() const { return sentinels_node("sentinel", sentinel_ports_); }

  std::unique_ptr<LocalCluster> master_;
  std::unique_ptr<LocalCluster> replica_;
  std::vector<std::unique_ptr<Child>> sentinels_;
  std::vector<int> sentinel_ports_;
};

TEST_F(SentinelTest, ASentinelManagedMasterVotesAndIsFollowedAcrossAFailover) {
  auto o = client_options({sentinel_url(), cluster().address(0), cluster().address(1)});
  std::shared_ptr<std::ostringstream> logs;
  capture_logs(o, logs);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:sentinel", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        return master_->get(0, detail::lock_key("res:sentinel")).value_or(std::nullopt).has_value();
      },
      scaled(2s)))
      << "the lock's key should be on the sentinel-named master";
  ASSERT_TRUE(client->release(*lock));

  // Until the sentinels have fresh news of the replica they answer
  // NOGOODSLAVE; keep asking, within a bound.
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        return command_text(sentinel_ports_[0], {"SENTINEL", "failover", "mymaster"}).find("OK") !=
               std::string::npos;
      },
      scaled(30s)))
      << "the sentinels never accepted a failover";
  // Locks keep being granted by the majority while the failover runs, and the
  // sentinel-managed vote comes back from the new master.
  bool followed = false;
  const auto deadline = Clock::now() + scaled(30s);
  int granted = 0;
  while (!followed && Clock::now() < deadline) {
    auto l = client->acquire("res:failover", 10s);
    ASSERT_TRUE(l) << l.error();
    ++granted;
    if (l->votes()[0].status == NodeStatus::kOk) {
      auto on_new = replica_->get(0, detail::lock_key("res:failover"));
      followed = on_new && *on_new;
    }
    ASSERT_TRUE(client->release(*l));
    if (!followed) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(followed) << "the client never wrote to the promoted replica";
  EXPECT_GT(granted, 0);
  // The promoted replica's clock was timed afresh (another server), and no
  // healthy clock was taken for a suspect one (exclusion is the default).
  std::this_thread::sleep_for(scaled(1500ms));
  for (const auto& n : client->metrics().nodes) {
    EXPECT_EQ(n.clock_alarms, 0u) << n.node << ": " << n.clock_reason;
    EXPECT_TRUE(n.voting) << n.node;
  }
  client.reset();
  // Followed through the sentinels' announcement, not only by noticing that
  // the old master turned read-only.
  EXPECT_THAT(logs->str(), HasSubstr("+switch-master"));
}

// Wake-on-release on a Sentinel-managed node: the waiter's subscription
// follows the master it votes through.
TEST_F(SentinelTest, AWaitersReleaseSubscriptionFollowsTheMasterAcrossAFailover) {
  auto o = client_options({sentinel_url(), cluster().address(0), cluster().address(1)});
  o.max_ttl = scaled(300s);  // the holder's lock outlives the failover
  auto holder_client = connect_or_fail(o);
  auto waiter_client = connect_or_fail(o);
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto held = holder_client->acquire("res:waited", scaled(120s));
  ASSERT_TRUE(held) << held.error();
  AcquireOptions how;
  how.max_wait = scaled(120s);
  how.retry_delay = scaled(60s);  // only an announcement hands it over in time
  how.retry_jitter = 0ms;
  auto waiter = waiter_client->async_acquire("res:waited", scaled(120s), how);
  // PUBSUB NUMSUB answers "channel\ncount".
  const auto subscribers = [](LocalCluster& server) -> std::string {
    const auto r = server.command(0, {"PUBSUB", "NUMSUB", detail::release_channel("res:waited")});
    const auto nl = r ? r->rfind('\n') : std::string::npos;
    return nl == std::string::npos ? std::string() : r->substr(nl + 1);
  };
  ASSERT_TRUE(eventually([&]() -> bool { return subscribers(*master_) == "1"; }, scaled(5s)));

  ASSERT_TRUE(eventually(
      [&]() -> bool {
        return command_text(sentinel_ports_[0], {"SENTINEL", "failover", "mymaster"}).find("OK") !=
               std::string::npos;
      },
      scaled(30s)))
      << "the sentinels never accepted a failover";
  EXPECT_TRUE(eventually([&]() -> bool { return subscribers(*replica_) == "1"; }, scaled(30s)))
      << "the waiter never subscribed on the promoted replica";

  ASSERT_TRUE(holder_client->release(*held));
  ASSERT_EQ(waiter.wait_for(scaled(10s)), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_GE(waiter_client->metrics().wakeups, 1u);
  ASSERT_TRUE(waiter_client->release(*got));
}

}  // namespace
}  // namespace redlock::testing

namespace redlock::testing {
namespace {

// One Redis shared by every replica of a service: a majority of one.
class SingleInstanceTest : public ClientTest {
 protected:
  std::size_t nodes_count() const override { return 1; }
};

TEST_F(SingleInstanceTest, OneNodeIsAMajorityOfOne) {
  EXPECT_EQ(client_->quorum(), 1u);
  auto lock = client_->acquire("res:single", 10s);
  ASSERT_TRUE(lock) << lock.error();
  auto other = client_->acquire("res:single", 10s);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kHeldByAnother) << other.error();
  auto extended = client_->extend(*lock, 10s);
  ASSERT_TRUE(extended) << extended.error();
  auto released = client_->release(*extended);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 1);
  // Losing the one node loses the lock service: fast "no quorum".
  ASSERT_TRUE(cluster().kill(0));
  ASSERT_TRUE(eventually([&]() -> bool { return !client_->connected()[0]; }, scaled(2s)));
  auto down = client_->acquire("res:single", 10s);
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), ErrorCode::kNoQuorum) << down.error();
}

}  // namespace
}  // namespace redlock::testing
