// The README's example, compiled and run as written, against a cluster on the
// ports it names.
#include <gtest/gtest.h>

#include <iostream>

#include "cluster_fixture.hpp"
#include "redlock/redlock.hpp"

namespace {

// --- begin README example (keep identical to README.md) ---
int readme_example() {
  redlock::ClientOptions opts;
  opts.nodes = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004",
                "127.0.0.1:7005"};
  // These nodes were just started empty (redlock-cluster up), so no lock can
  // predate them: let them vote at once. Against long-lived nodes leave this
  // unset, and a node that restarted waits out max_ttl before it votes.
  opts.restart_grace = std::chrono::milliseconds(0);
  auto client = redlock::Client::connect(opts);
  if (!client) {
    std::cerr << client.error() << "\n";
    return 1;
  }
  redlock::AcquireOptions how;
  how.max_wait = std::chrono::seconds(5);
  auto lock = (*client)->acquire("chatroom:general", std::chrono::seconds(10), how);
  if (!lock) {
    std::cerr << lock.error() << "\n";
    return 2;
  }
  std::cout << lock->token() << " valid for " << lock->remaining().count() << " ms\n";
  (*client)->release(*lock);
  return 0;
}
// --- end README example ---

class ReadmeExampleTest : public redlock::testing::ClusterTest {
 protected:
  redlock::cluster::ClusterOptions cluster_options() const override {
    redlock::cluster::ClusterOptions o;
    o.base_port = 7001;
    return o;
  }
  void SetUp() override {
    auto started = redlock::cluster::LocalCluster::start(nodes_count(), cluster_options());
    if (!started) GTEST_SKIP() << "ports 7001-7005 are taken here: " << started.error();
    cluster_ = std::move(*started);
  }
};

TEST_F(ReadmeExampleTest, RunsAsWritten) { EXPECT_EQ(readme_example(), 0); }

}  // namespace
