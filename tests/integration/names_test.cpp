// Host names: looked up on every connection attempt, every address tried in
// order, and a name that does not resolve is a node that is down, never a
// failure of connect().
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "address.hpp"
#include "keys.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using ::testing::HasSubstr;

// Names of the tests' own, resolved by a table the test changes as it goes
// (every other name goes to getaddrinfo as usual).
class FakeNames {
 public:
  FakeNames() {
    detail::set_resolver_for_testing(
        [this](const std::string& host,
               std::uint16_t port) -> Result<std::vector<sockaddr_storage>> {
          std::lock_guard lk(mutex_);
          auto it = table_.find(host);
          if (it == table_.end()) return detail::system_resolve(host, port);
          std::vector<sockaddr_storage> out;
          for (int p : it->second) {
            out.push_back(*detail::literal_address("127.0.0.1", static_cast<std::uint16_t>(p)));
          }
          return out;
        });
  }
  ~FakeNames() { detail::set_resolver_for_testing(nullptr); }
  FakeNames(const FakeNames&) = delete;
  FakeNames& operator=(const FakeNames&) = delete;

  void set(const std::string& name, std::vector<int> ports) {
    std::lock_guard lk(mutex_);
    table_[name] = std::move(ports);
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<int>> table_;
};

class NamesTest : public ClusterTest {
 protected:
  std::size_t nodes_count() const override { return 6; }
};

TEST_F(NamesTest, AnUnresolvableNameIsADownNodeNotAFailureOfConnect) {
  auto nodes = addresses();
  nodes.resize(4);
  nodes.push_back("nosuchhost.invalid:6379");
  auto client = connect_or_fail(client_options(nodes));
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:names", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(count_status(lock->votes(), NodeStatus::kOk), 3u);
  EXPECT_EQ(lock->votes()[4].status, NodeStatus::kDisconnected);
  EXPECT_THAT(lock->votes()[4].detail, HasSubstr("cannot resolve \"nosuchhost.invalid\""));
  ASSERT_TRUE(client->release(*lock));
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  EXPECT_EQ(health->voting, 4u);
  EXPECT_FALSE(health->nodes[4].reachable);
  EXPECT_THAT(health->nodes[4].error, HasSubstr("cannot resolve"));
}

TEST_F(NamesTest, EveryAddressOfANameIsTriedInOrder) {
  FakeNames names;
  // A closed port first, then node 6.
  auto spare = redlock::cluster::LocalCluster::start(1);
  ASSERT_TRUE(spare) << spare.error();
  const int closed_port = (*spare)->port(0);
  (*spare)->stop();
  names.set("two-addresses.test", {closed_port, cluster().port(5)});
  auto nodes = addresses();
  nodes.resize(4);
  nodes.push_back("two-addresses.test:1");
  auto client = connect_or_fail(client_options(nodes));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually([&]() -> bool { return client->connected()[4]; }, scaled(3s)));
  auto lock = client->acquire("res:two-addresses", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(NamesTest, ANameThatMovesIsFollowedWhenTheNodeReconnects) {
  FakeNames names;
  names.set("moving.test", {cluster().port(4)});
  auto nodes = addresses();
  nodes.resize(4);
  nodes.push_back("moving.test:6379");
  auto client = connect_or_fail(client_options(nodes));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually([&]() -> bool { return client->connected()[4]; }, scaled(2s)));
  auto first = client->acquire("res:moving", 10s);
  ASSERT_TRUE(first) << first.error();
  ASSERT_TRUE(client->release(*first));
  EXPECT_EQ(cluster().dbsize(5).value_or(-1), 0);

  // The name now points at node 6, and the server it pointed at goes away:
  // the next connection attempt looks the name up again.
  names.set("moving.test", {cluster().port(5)});
  ASSERT_TRUE(cluster().kill(4));
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        auto h = client->health(scaled(1s));
        return h && h->nodes[4].voting;
      },
      scaled(5s)));
  auto lock = client->acquire("res:moving", 10s);
  ASSERT_TRUE(lock) << lock.error();
  // The lock's key is on node 6, where the name points now.
  EXPECT_TRUE(eventually(
      [&]() -> bool {
        auto v = cluster().get(5, detail::lock_key("res:moving"));
        return v && v->has_value();
      },
      scaled(2s)));
  ASSERT_TRUE(client->release(*lock));
}

}  // namespace
}  // namespace redlock::testing
