// TLS to the nodes on real servers: redis-server processes with a TLS port
// next to their plain one (the fixture's own checks use the plain one, the
// client only the TLS one), certificates made by tls_certs.hpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "keys.hpp"
#include "redlock/cluster/tls_certs.hpp"
#include "redlock/tools/subprocess.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

using redlock::cluster::ClusterOptions;
using redlock::cluster::LocalCluster;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::shared_ptr<std::ostringstream> capture_logs(ClientOptions& o) {
  auto out = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out);
  o.logger = std::make_shared<spdlog::logger>("tls", sink);
  o.logger->set_level(spdlog::level::debug);
  return out;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// Connections a server accepted so far (both ports, the fixture's too).
long long connections_received(LocalCluster& cluster, std::size_t i) {
  auto info = cluster.command(i, {"INFO", "stats"});
  if (!info) return -1;
  const std::string field = "total_connections_received:";
  const auto pos = info->find(field);
  if (pos == std::string::npos) return -1;
  return std::atoll(info->c_str() + pos + field.size());
}

// What a certificate from a CA the client does not trust is refused with:
// OpenSSL says "self-signed certificate in certificate chain" when the
// server sends its CA along (redis-server does, from tls-ca-cert-file), and
// "unable to get local issuer certificate" when it does not.
::testing::Matcher<const std::string&> untrusted_ca() {
  return ::testing::AnyOf(
      HasSubstr("certificate verify failed: unable to get local issuer certificate"),
      HasSubstr("certificate verify failed: self-signed certificate in certificate chain"));
}

// Every node of the fixture's cluster also listens with TLS on a port of its
// own (tls_ports_[i]), which the cluster picks.
class TlsTest : public ClusterTest {
 protected:
  // Whether the servers require a client certificate.
  virtual bool auth_clients() const { return false; }

  ClusterOptions cluster_options() const override {
    ClusterOptions co;
    co.node_args.assign(nodes_count(),
                        tls_server_args(*files_, ClusterOptions::kExtraPort, auth_clients()));
    return co;
  }

  void SetUp() override {
    auto files = tls_files();
    ASSERT_TRUE(files) << files.error();
    files_ = *files;
    ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    for (std::size_t i = 0; i < cluster().size(); ++i)
      tls_ports_.push_back(cluster().info(i).extra_port);
  }

  std::string tls_node(std::size_t i, const std::string& host = "127.0.0.1") const {
    return "rediss://" + host + ":" + std::to_string(tls_ports_[i]);
  }
  std::vector<std::string> tls_nodes() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < tls_ports_.size(); ++i) out.push_back(tls_node(i));
    return out;
  }
  ClientOptions tls_options(std::vector<std::string> nodes) const {
    auto o = client_options(nodes);
    o.tls.ca_file = files_->ca_cert.string();
    return o;
  }

  // Whether every node holds `resource` with `token`: a grant returns once a
  // majority said yes, the others' SETs may still be on their way.
  bool held_everywhere(const std::string& resource, const std::string& token) {
    return eventually(
        [&]() -> bool {
          for (std::size_t i = 0; i < cluster().size(); ++i) {
            auto value = cluster().get(i, detail::lock_key(resource));
            if (!value || value->value_or("") != token) return false;
          }
          return true;
        },
        scaled(5s));
  }
  // Waits until every node votes (connected, its clock timed).
  static bool all_vote(Client& client, std::size_t n) {
    return eventually(
        [&]() -> bool {
          auto h = client.health(scaled(1s));
          return h && h->voting == n;
        },
        scaled(10s));
  }

  const TlsFiles* files_ = nullptr;
  std::vector<int> tls_ports_;
};

TEST_F(TlsTest, AcquireExtendAndReleaseOverTlsOnFiveNodes) {
  auto client = connect_or_fail(tls_options(tls_nodes()));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->connected(), std::vector<bool>(5, true));
  auto lock = client->acquire("res:tls", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(count_status(lock->votes(), NodeStatus::kOk), 3u);
  // The key is on the servers, written through their TLS ports.
  EXPECT_TRUE(held_everywhere("res:tls", lock->token()));
  auto extended = client->extend(*lock, 20s);
  ASSERT_TRUE(extended) << extended.error();
  EXPECT_GE(count_status(extended->votes(), NodeStatus::kOk), 3u);
  for (std::size_t i = 0; i < 5; ++i) {
    // The new ttl (20 s) reached every node.
    EXPECT_TRUE(eventually(
        [&]() -> bool {
          auto ttl = cluster().command(i, {"PTTL", detail::lock_key("res:tls")});
          return ttl && std::atoll(ttl->c_str()) > 10000;
        },
        scaled(5s)))
        << "node " << i + 1;
  }
  auto released = client->release(*extended);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);

  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  EXPECT_EQ(health->voting, 5u);
  const auto now = std::chrono::system_clock::now();
  for (const auto& n : health->nodes) {
    SCOPED_TRACE(n.node);
    EXPECT_TRUE(n.tls);
    EXPECT_EQ(n.tls_protocol, "TLSv1.3");
    EXPECT_FALSE(n.tls_cipher.empty());
    EXPECT_EQ(n.tls_peer_subject, "CN=localhost,O=redlock tests");
    ASSERT_TRUE(n.tls_peer_not_after.has_value());
    EXPECT_GT(*n.tls_peer_not_after, now + std::chrono::hours(24 * 29));
    EXPECT_LT(*n.tls_peer_not_after, now + std::chrono::hours(24 * 31));
  }
}

TEST_F(TlsTest, AHostNameIsVerifiedAgainstTheCertificatesDnsName) {
  std::vector<std::string> nodes;
  for (std::size_t i = 0; i < 5; ++i) nodes.push_back(tls_node(i, "localhost"));
  auto client = connect_or_fail(tls_options(nodes));
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:tls-name", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(TlsTest, AWaiterIsWokenByAReleaseAnnouncedOverTls) {
  auto o = tls_options(tls_nodes());
  auto holder_client = connect_or_fail(o);
  auto waiter_client = connect_or_fail(o);
  ASSERT_NE(holder_client, nullptr);
  ASSERT_NE(waiter_client, nullptr);
  auto held = holder_client->acquire("res:tls-wake", 30s);
  ASSERT_TRUE(held) << held.error();
  AcquireOptions how;
  how.max_wait = scaled(120s);
  how.retry_delay = scaled(60s);  // only an announcement hands it over in time
  how.retry_jitter = 0ms;
  auto waiter = waiter_client->async_acquire("res:tls-wake", 30s, how);
  // The release subscriptions are up on every node (PUBSUB NUMSUB answers
  // "channel\ncount").
  const auto channel = detail::release_channel("res:tls-wake");
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        for (std::size_t i = 0; i < 5; ++i) {
          auto r = cluster().command(i, {"PUBSUB", "NUMSUB", channel});
          if (!r || !r->ends_with("\n1")) return false;
        }
        return true;
      },
      scaled(5s)));
  ASSERT_TRUE(holder_client->release(*held));
  ASSERT_EQ(waiter.wait_for(scaled(10s)), std::future_status::ready);
  auto got = waiter.get();
  ASSERT_TRUE(got) << got.error();
  EXPECT_GE(waiter_client->metrics().wakeups, 1u);
  ASSERT_TRUE(waiter_client->release(*got));
}

TEST_F(TlsTest, AnUntrustedCaIsRefusedWithTheReasonAndRetriedSlowly) {
  auto o = tls_options(tls_nodes());
  o.tls.ca_file = files_->other_ca_cert.string();
  o.reconnect_min = 20ms;
  o.reconnect_max = 1500ms;
  auto logs = capture_logs(o);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  std::vector<long long> before;
  for (std::size_t i = 0; i < 5; ++i) before.push_back(connections_received(cluster(), i));
  const auto t0 = Clock::now();
  auto lock = client->acquire("res:tls-ca", 10s);
  EXPECT_LT(Clock::now() - t0, scaled(2s));
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  ASSERT_EQ(lock.error().nodes().size(), 5u);
  for (const auto& n : lock.error().nodes()) {
    EXPECT_EQ(n.status, NodeStatus::kDisconnected) << n.node;
    EXPECT_THAT(n.detail, untrusted_ca()) << n.node;
  }
  // A refusal that will not go away by itself is retried at reconnect_max,
  // not at the quick pace of a lost connection (20, 40, 80 ... ms).
  std::this_thread::sleep_for(3s);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto attempts = connections_received(cluster(), i) - before[i];
    EXPECT_LE(attempts, 5) << "node " << i + 1 << " was tried " << attempts << " times in 3 s";
  }
  client.reset();
  // Said once per node as an error, not at every attempt.
  EXPECT_EQ(occurrences(logs->str(), "[error]"), 5u) << logs->str();
}

TEST_F(TlsTest, AServerNameTheCertificateIsNotForIsAHostnameMismatch) {
  auto o = tls_options(tls_nodes());
  o.tls.server_name = "redis.example.org";
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:tls-name-mismatch", 10s);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  for (const auto& n : lock.error().nodes()) {
    EXPECT_EQ(n.status, NodeStatus::kDisconnected) << n.node;
    EXPECT_THAT(n.detail, HasSubstr("certificate verify failed: hostname mismatch"));
    EXPECT_THAT(n.detail, HasSubstr("redis.example.org"));
  }
}

TEST_F(TlsTest, AnAddressTheCertificateIsNotForIsAMismatchToo) {
  // The certificate names 127.0.0.1 and ::1 only.
  auto o = tls_options(tls_nodes());
  o.tls.server_name = "127.0.0.2";
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:tls-ip-mismatch", 10s);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  for (const auto& n : lock.error().nodes()) {
    EXPECT_THAT(n.detail, HasSubstr("certificate verify failed: IP address mismatch")) << n.node;
  }
}

TEST_F(TlsTest, WithoutVerificationTheClientConnectsAndWarnsOnce) {
  auto o = tls_options(tls_nodes());
  o.tls.ca_file = files_->other_ca_cert.string();
  o.tls.verify_peer = false;
  auto logs = capture_logs(o);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:tls-insecure", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client->release(*lock));
  client.reset();
  EXPECT_EQ(occurrences(logs->str(), "TLS peer verification is off"), 1u) << logs->str();
}

TEST_F(TlsTest, PlainAndTlsNodesMix) {
  auto client = connect_or_fail(tls_options(
      {tls_node(0), tls_node(1), tls_node(2), cluster().address(3), cluster().address(4)}));
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:tls-mixed", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(count_status(lock->votes(), NodeStatus::kOk), 3u);
  // Written on all five: three through TLS ports, two through plain ones.
  EXPECT_TRUE(held_everywhere("res:tls-mixed", lock->token()));
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(health->nodes[i].tls, i < 3) << health->nodes[i].node;
    EXPECT_EQ(health->nodes[i].tls_protocol.empty(), i >= 3) << health->nodes[i].node;
  }
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(TlsTest, ARestartedNodeIsReconnectedAndALostConnectionResumesItsSession) {
  auto client = connect_or_fail(tls_options(tls_nodes()));
  ASSERT_NE(client, nullptr);
  const auto node_health = [&](std::size_t i) -> NodeHealth {
    auto h = client->health(scaled(2s));
    return h ? h->nodes[i] : NodeHealth{};
  };
  EXPECT_FALSE(node_health(0).tls_resumed);

  ASSERT_TRUE(cluster().restart(0));
  // Back in the vote: reconnected, handshake verified, clock timed again.
  ASSERT_TRUE(all_vote(*client, 5));
  auto lock = client->acquire("res:tls-restart", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_TRUE(held_everywhere("res:tls-restart", lock->token()));
  auto released_restart = client->release(*lock);
  ASSERT_TRUE(released_restart) << released_restart.error();
  EXPECT_EQ(released_restart->deleted, 5);
  // A new server process cannot resume the old one's session: a full
  // handshake, verified afresh.
  auto restarted = node_health(0);
  EXPECT_TRUE(restarted.reachable);
  EXPECT_FALSE(restarted.tls_resumed);
  EXPECT_EQ(restarted.tls_peer_subject, "CN=localhost,O=redlock tests");

  // The same server, connection lost: the session is resumed.
  for (std::size_t i : {0u, 1u}) {
    ASSERT_TRUE(cluster().command(i, {"CLIENT", "KILL", "TYPE", "normal"}));
  }
  // Until the client notices, health may still show the old connection.
  for (std::size_t i : {0u, 1u}) {
    NodeHealth h;
    EXPECT_TRUE(eventually(
        [&]() -> bool {
          h = node_health(i);
          return h.reachable && h.tls_resumed;
        },
        scaled(5s)))
        << h.node << ": reachable " << h.reachable << ", resumed " << h.tls_resumed << " "
        << h.error;
    EXPECT_EQ(h.tls_peer_subject, "CN=localhost,O=redlock tests") << h.node;
  }
  ASSERT_TRUE(all_vote(*client, 5));
  auto again = client->acquire("res:tls-resumed", 10s);
  ASSERT_TRUE(again) << again.error();
  EXPECT_TRUE(held_everywhere("res:tls-resumed", again->token()));
  ASSERT_TRUE(client->release(*again));
}

TEST_F(TlsTest, CredentialsTravelInsideTlsAndStayOutOfTheLogs) {
  const std::string secret = "tls-s3cret";
  for (std::size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(cluster().command(
        i, {"ACL", "SETUSER", "locker", "on", ">" + secret, "~*", "&*", "+@all"}));
  }
  std::vector<std::string> nodes;
  for (std::size_t i = 0; i < 5; ++i) {
    nodes.push_back("rediss://locker:" + secret + "@127.0.0.1:" + std::to_string(tls_ports_[i]));
  }
  auto o = tls_options(nodes);
  auto logs = capture_logs(o);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:tls-auth", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client->release(*lock));
  for (const auto& name : client->nodes()) EXPECT_THAT(name, Not(HasSubstr(secret)));
  client.reset();
  EXPECT_THAT(logs->str(), Not(HasSubstr(secret)));
}

// The servers require a client certificate (tls-auth-clients yes).
class MutualTlsTest : public TlsTest {
 protected:
  bool auth_clients() const override { return true; }
};

TEST_F(MutualTlsTest, AClientCertificateIsPresentedAndAcceptedByEveryNode) {
  auto o = tls_options(tls_nodes());
  o.tls.cert_file = files_->client_cert.string();
  o.tls.key_file = files_->client_key.string();
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:mtls", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_GE(count_status(lock->votes(), NodeStatus::kOk), 3u);
  EXPECT_TRUE(held_everywhere("res:mtls", lock->token()));
  ASSERT_TRUE(client->release(*lock));
}

TEST_F(MutualTlsTest, WithoutAClientCertificateEveryNodeRefusesAndSaysWhy) {
  auto client = connect_or_fail(tls_options(tls_nodes()));
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:mtls-none", 10s);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code(), ErrorCode::kNoQuorum) << lock.error();
  for (const auto& n : lock.error().nodes()) {
    EXPECT_EQ(n.status, NodeStatus::kDisconnected) << n.node;
    EXPECT_THAT(n.detail, HasSubstr("certificate required")) << n.node;
  }
}

// Options connect() refuses before it opens any connection.
class TlsOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto files = tls_files();
    ASSERT_TRUE(files) << files.error();
    files_ = *files;
  }
  static ::testing::AssertionResult refused(ClientOptions o, const std::string& expected) {
    if (o.nodes.empty()) o.nodes = {"rediss://127.0.0.1:1"};
    auto client = Client::connect(o);
    if (client) return ::testing::AssertionFailure() << "connect() accepted the options";
    if (client.error().code() != ErrorCode::kInvalidArgument) {
      return ::testing::AssertionFailure() << "not kInvalidArgument: " << client.error();
    }
    if (client.error().message().find(expected) == std::string::npos) {
      return ::testing::AssertionFailure() << "\"" << expected << "\" not in: " << client.error();
    }
    return ::testing::AssertionSuccess();
  }
  const TlsFiles* files_ = nullptr;
};

TEST_F(TlsOptionsTest, FilesThatCannotBeUsedAreRefusedByConnectNamingTheFile) {
  ClientOptions o;
  o.tls.ca_file = "/nonexistent/ca.pem";
  EXPECT_TRUE(refused(o, "tls.ca_file \"/nonexistent/ca.pem\""));

  o = {};
  o.tls.ca_dir = "/nonexistent/certs";
  EXPECT_TRUE(refused(o, "tls.ca_dir \"/nonexistent/certs\""));

  o = {};
  o.tls.ca_file = files_->ca_cert.string();
  o.tls.key_file = files_->client_key.string();
  EXPECT_TRUE(refused(
      o, "tls.key_file \"" + files_->client_key.string() + "\" is set without tls.cert_file"));

  o = {};
  o.tls.ca_file = files_->ca_cert.string();
  o.tls.cert_file = files_->client_cert.string();
  EXPECT_TRUE(
      refused(o, "tls.cert_file \"" + files_->client_cert.string() + "\" holds no private key"));

  o = {};
  o.tls.ca_file = files_->ca_cert.string();
  o.tls.cert_file = files_->client_cert.string();
  o.tls.key_file = files_->server_key.string();
  EXPECT_TRUE(refused(o, "does not match the certificate"));

  o = {};
  o.tls.ca_file = files_->client_key.string();  // not a certificate
  EXPECT_TRUE(refused(o, "tls.ca_file \"" + files_->client_key.string() + "\""));

  // Checked even when no node uses TLS: a typo must not wait for the day a
  // node does.
  o = {};
  o.nodes = {"127.0.0.1:1"};
  o.tls.ca_file = "/nonexistent/ca.pem";
  EXPECT_TRUE(refused(o, "tls.ca_file"));
}

TEST_F(TlsOptionsTest, ACaDirectoryIsReadWhole) {
  ClientOptions o;
  o.nodes = {"rediss://127.0.0.1:1"};
  o.connect_timeout = 100ms;
  o.tls.ca_dir = files_->dir.string();
  auto client = Client::connect(o);
  ASSERT_TRUE(client) << client.error();
}

// A master with one replica, both with TLS ports and replicating over TLS,
// watched by three sentinels that listen with TLS and speak it to the
// servers; plus two independent TLS masters: three votes over TLS, one of
// them Sentinel-managed.
class TlsSentinelTest : public TlsTest {
 protected:
  std::size_t nodes_count() const override { return 2; }

  void SetUp() override {
    TlsTest::SetUp();
    if (HasFatalFailure()) return;
    ClusterOptions co;
    co.node_args = {tls_server_args(*files_, ClusterOptions::kExtraPort)};
    auto master = LocalCluster::start(1, co);
    ASSERT_TRUE(master) << master.error();
    master_ = std::move(*master);
    master_tls_ = master_->info(0).extra_port;
    co.extra_args = {"--replicaof", "127.0.0.1", std::to_string(master_tls_), "--tls-replication",
                     "yes"};
    auto replica = LocalCluster::start(1, co);
    ASSERT_TRUE(replica) << replica.error();
    replica_ = std::move(*replica);
    replica_tls_ = replica_->info(0).extra_port;
    for (std::size_t s = 0; s < 3; ++s) {
      // The ports may be taken between the pick and the sentinel's bind:
      // then the sentinel exits and other ports are picked.
      bool ready = false;
      for (int attempt = 0; attempt < 5 && !ready; ++attempt) {
        const auto ports = free_tcp_ports(2);
        ASSERT_EQ(ports.size(), 2U);
        const int plain = ports[0];
        const int tls = ports[1];
        const auto conf = master_->dir() / ("sentinel" + std::to_string(s) + ".conf");
        std::ofstream(conf) << "port " << plain << "\nbind 127.0.0.1\n"
                            << "tls-port " << tls << "\n"
                            << "tls-cert-file " << files_->server_cert.string() << "\n"
                            << "tls-key-file " << files_->server_key.string() << "\n"
                            << "tls-ca-cert-file " << files_->ca_cert.string() << "\n"
                            << "tls-auth-clients no\n"
                            << "tls-replication yes\n"
                            << "sentinel monitor mymaster 127.0.0.1 " << master_tls_ << " 2\n"
                            << "sentinel down-after-milliseconds mymaster 1000\n"
                            << "sentinel failover-timeout mymaster 5000\n";
        tools::SpawnOptions spawn;
        spawn.argv = {"redis-server", conf.string(), "--sentinel"};
        spawn.stdout_path = spawn.stderr_path =
            master_->dir() / ("sentinel" + std::to_string(s) + ".log");
        auto child = tools::Subprocess::spawn(spawn);
        ASSERT_TRUE(child) << child.error().message;
        ready =
            eventually([&]() -> bool { return sentinel_ready(plain, master_tls_); }, scaled(5s));
        if (ready) {
          sentinels_.push_back(std::move(*child));
          sentinel_plain_.push_back(plain);
          sentinel_tls_.push_back(tls);
        }
      }
      ASSERT_TRUE(ready) << "sentinel " << s + 1 << " never started";
    }
    // Every sentinel knows the replica (so a failover can happen), at its
    // TLS port.
    ASSERT_TRUE(eventually(
        [&]() -> bool {
          for (int port : sentinel_plain_) {
            auto r = command_text(port, {"SENTINEL", "replicas", "mymaster"});
            if (r.find(std::to_string(replica_tls_)) == std::string::npos) return false;
          }
          return true;
        },
        scaled(20s)))
        << "the sentinels never saw the replica";
  }

  void TearDown() override {
    sentinels_.clear();
    TlsTest::TearDown();
  }

  std::string sentinels_url() const { return sentinels_node("sentinels", sentinel_tls_); }

  int master_tls_ = 0;
  int replica_tls_ = 0;
  std::unique_ptr<LocalCluster> master_;
  std::unique_ptr<LocalCluster> replica_;
  std::vector<tools::Subprocess> sentinels_;
  std::vector<int> sentinel_plain_;
  std::vector<int> sentinel_tls_;
};

TEST_F(TlsSentinelTest, SentinelsAndTheirMastersAreReachedOverTlsAcrossAFailover) {
  auto o = tls_options({sentinels_url(), tls_node(0), tls_node(1)});
  auto logs = capture_logs(o);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:tls-sentinel", 10s);
  ASSERT_TRUE(lock) << lock.error();
  // Two votes of three grant it: the sentinel-named master's may still be on
  // its way.
  EXPECT_TRUE(eventually(
      [&]() -> bool {
        auto value = master_->get(0, detail::lock_key("res:tls-sentinel"));
        return value && value->value_or("") == lock->token();
      },
      scaled(5s)))
      << "the lock's key should be on the sentinel-named master";
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 3);
  auto health = client->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  EXPECT_TRUE(health->nodes[0].tls);
  EXPECT_EQ(health->nodes[0].tls_protocol, "TLSv1.3");

  // Until the sentinels have fresh news of the replica they answer
  // NOGOODSLAVE; keep asking, within a bound.
  ASSERT_TRUE(eventually(
      [&]() -> bool {
        return command_text(sentinel_plain_[0], {"SENTINEL", "failover", "mymaster"}).find("OK") !=
               std::string::npos;
      },
      scaled(30s)))
      << "the sentinels never accepted a failover";
  bool followed = false;
  const auto deadline = Clock::now() + scaled(30s);
  while (!followed && Clock::now() < deadline) {
    auto l = client->acquire("res:tls-failover", 10s);
    ASSERT_TRUE(l) << l.error();
    if (l->votes()[0].status == NodeStatus::kOk) {
      auto on_new = replica_->get(0, detail::lock_key("res:tls-failover"));
      followed = on_new && *on_new;
    }
    ASSERT_TRUE(client->release(*l));
    if (!followed) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(followed) << "the client never wrote to the promoted replica";
  client.reset();
  EXPECT_THAT(logs->str(), HasSubstr("+switch-master"));
  EXPECT_THAT(logs->str(), Not(HasSubstr("certificate verify failed")));
}

}  // namespace
}  // namespace redlock::testing
