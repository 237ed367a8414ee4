// test_util.hpp: small helpers shared by the integration tests.
#pragma once

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster_fixture.hpp"
#include "redlock/redlock.hpp"
#include "redlock/tools/redis_connection.hpp"

namespace redlock::testing {

using namespace std::chrono_literals;
using redlock::cluster::scaled;
using Clock = std::chrono::steady_clock;

// Options for a client of the fixture's cluster with quick reconnects, so
// tests that restart nodes do not wait long for the client to notice.
inline ClientOptions client_options(const std::vector<std::string>& nodes) {
  ClientOptions o;
  o.nodes = nodes;
  o.reconnect_min = 20ms;
  o.reconnect_max = 200ms;
  o.connect_timeout = scaled(1000ms);
  // Generous for loaded CI machines and sanitizer builds; the fault tests set
  // their own.
  o.node_timeout = scaled(250ms);
  // Each test starts its cluster empty, so no lock can predate it: skip the
  // wait restart-aware voting puts on young nodes. The tests of that rule set
  // their own.
  o.restart_grace = 0ms;
  // The tests read what every node did with a release; the default
  // (kMajority, which reports before the last nodes answered) has tests of
  // its own.
  o.release_wait = ClientOptions::ReleaseWait::kEveryNode;
  return o;
}

inline std::unique_ptr<Client> connect_or_fail(const ClientOptions& options) {
  auto client = Client::connect(options);
  if (!client) {
    ADD_FAILURE() << "connect failed: " << client.error();
    return nullptr;
  }
  return std::move(*client);
}

inline std::size_t count_status(const std::vector<NodeResult>& nodes, NodeStatus status) {
  std::size_t n = 0;
  for (const auto& r : nodes) n += r.status == status ? 1 : 0;
  return n;
}

// Polls `pred` every 10 ms until it holds or `limit` passes. Give lambdas an
// explicit `-> bool`: `[&] { return client->connected()[i]; }` would return a
// std::vector<bool> proxy into a vector that is already gone.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// A fresh cluster and one client connected to all of it, for each test.
class ClientTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    client_ = connect_or_fail(client_options(addresses()));
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override {
    client_.reset();
    ClusterTest::TearDown();
  }
  std::unique_ptr<Client> client_;
};

// Stalls node i with DEBUG SLEEP and returns only once the stall is in
// effect: DEBUG SLEEP travels on a connection of its own, so without this a
// command sent right after it may still be served first.
inline ::testing::AssertionResult stall(redlock::cluster::LocalCluster& cluster, std::size_t i,
                                        double seconds) {
  if (auto sent = cluster.debug_sleep(i, seconds); !sent) {
    return ::testing::AssertionFailure() << "DEBUG SLEEP: " << sent.error();
  }
  const auto deadline = std::chrono::steady_clock::now() + scaled(2s);
  while (std::chrono::steady_clock::now() < deadline) {
    redisContext* c = redisConnectWithTimeout("127.0.0.1", cluster.port(i), timeval{1, 0});
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return ::testing::AssertionFailure() << "cannot connect to node " << i + 1;
    }
    redisSetTimeout(c, timeval{0, 30000});
    auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
    const bool answered = reply != nullptr;
    if (reply != nullptr) freeReplyObject(reply);
    redisFree(c);
    if (!answered) return ::testing::AssertionSuccess();  // it no longer answers
  }
  return ::testing::AssertionFailure() << "node " << i + 1 << " never stalled";
}

// "<scheme>://127.0.0.1:P1,127.0.0.1:P2,.../mymaster": a node of the
// sentinels on `ports` ("sentinel" or "sentinels", the TLS form).
inline std::string sentinels_node(const std::string& scheme, const std::vector<int>& ports) {
  std::string url = scheme + "://";
  for (std::size_t i = 0; i < ports.size(); ++i) {
    if (i > 0) url += ',';
    url += "127.0.0.1:";
    url += std::to_string(ports[i]);
  }
  return url + "/mymaster";
}

// One command to the server on 127.0.0.1:port (a sentinel's plain port,
// say), its reply as text, every element of an array on a line; empty when
// the server cannot be reached or does not answer within 2 s.
inline std::string command_text(int port, const std::vector<std::string>& argv) {
  auto conn = redlock::tools::RedisConnection::open("127.0.0.1", port, std::chrono::seconds(2));
  if (!conn) return {};
  auto reply = conn->run(argv);
  return reply ? redlock::tools::reply_text(*reply) : std::string{};
}

// Whether the sentinel whose plain port is `port` answers and watches
// "mymaster" at `master_port`. A server of another test that took the port
// first would not: a sentinel that cannot bind its ports exits, and a test
// picks other ones.
inline bool sentinel_ready(int port, int master_port) {
  const auto text = command_text(port, {"SENTINEL", "get-master-addr-by-name", "mymaster"});
  return text.find('\n' + std::to_string(master_port)) != std::string::npos;
}

}  // namespace redlock::testing
