// Clock sanity on real servers. One node runs with the fake clock shim
// (tests/support/fake_clock.c) preloaded: its clocks run 1.5x fast, or its
// wall clock is stepped while it runs. The client must report that node (log,
// metrics, Prometheus), only that node, leave it out of the vote when asked
// to, and keep locking normally while it samples TIME.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fake_clock.hpp"
#include "redlock/delayproxy/delay_proxy.hpp"
#include "test_util.hpp"

namespace redlock::testing {
namespace {

namespace fs = std::filesystem;
using redlock::cluster::ClusterOptions;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The client's log lines ("warn: ..."), readable while the loop writes.
class LogLines final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lk(mutex_);
    return lines_;
  }
  // The first line holding every one of `parts`, or "".
  std::string find(const std::vector<std::string>& parts) {
    for (const auto& line : lines()) {
      bool all = true;
      for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
      if (all) return line;
    }
    return "";
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.push_back(std::string(spdlog::level::to_string_view(msg.level).data()) + ": " +
                     std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

fs::path make_dir() {
  std::string templ = (fs::temp_directory_path() / "redlock-clock-test-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) return {};
  return templ;
}

class ClockTest : public ClusterTest {
 protected:
  // The node that runs with the shim (0-based).
  static constexpr std::size_t kOdd = 2;

  ClockTest() : dir_(make_dir()), clock_(dir_ / "clock") {}
  ~ClockTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // How fast the odd node's clocks run.
  virtual double odd_rate() const { return 1.5; }

  ClusterOptions cluster_options() const override {
    ClusterOptions o;
    o.node_env.resize(kOdd + 1);
    o.node_env[kOdd] = clock_.env(odd_rate());
    return o;
  }

  void SetUp() override {
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(clock_.ok()) << "cannot write " << clock_.control();
    ClusterTest::SetUp();
  }

  // Client options sampling every 100 ms (a 2 s window), logging to log_.
  ClientOptions options() {
    auto o = client_options(addresses());
    o.clock_check_interval = 100ms;
    o.logger = std::make_shared<spdlog::logger>("clock", log_);
    o.logger->set_level(spdlog::level::debug);
    return o;
  }

  NodeMetrics node_metrics(Client& client, std::size_t i) { return client.metrics().nodes.at(i); }

  // Waits (bounded) until node i's clock check says `suspect`, and its reason
  // holds `reason_part`.
  ::testing::AssertionResult wait_clock(Client& client, std::size_t i, bool suspect,
                                        const std::string& reason_part = "",
                                        std::chrono::milliseconds limit = 10s) {
    const bool reached = eventually(
        [&]() -> bool {
          const auto n = node_metrics(client, i);
          return n.clock_suspect == suspect &&
                 n.clock_reason.find(reason_part) != std::string::npos;
        },
        scaled(limit));
    if (reached) return ::testing::AssertionSuccess();
    const auto n = node_metrics(client, i);
    return ::testing::AssertionFailure()
           << "node " << i + 1 << ": clock_suspect " << n.clock_suspect << ", reason \""
           << n.clock_reason << "\", rate " << n.clock_rate.value_or(-1) << "; wanted suspect "
           << suspect << " with \"" << reason_part << "\"";
  }

  // Node i has been sampled at least `samples` times (its rate is known and
  // the TIME calls show in its command stats).
  ::testing::AssertionResult wait_sampled(std::size_t i, int samples) {
    const bool reached = eventually(
        [&]() -> bool {
          auto stats = cluster().command(i, {"INFO", "commandstats"});
          if (!stats) return false;
          const auto at = stats->find("cmdstat_time:calls=");
          return at != std::string::npos &&
                 std::stoi(stats->substr(at + std::string("cmdstat_time:calls=").size())) >=
                     samples;
        },
        scaled(10s));
    return reached ? ::testing::AssertionSuccess()
                   : ::testing::AssertionFailure() << "node " << i + 1 << " never sampled";
  }

  fs::path dir_;
  FakeClock clock_;
  std::shared_ptr<LogLines> log_ = std::make_shared<LogLines>();
};

TEST_F(ClockTest, AFastClockIsReportedAndOnlyThatOne) {
  auto o = options();
  o.exclude_suspect_clocks = false;  // reported only
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  // One interval already shows it (as a step); the next makes it a rate.
  ASSERT_TRUE(wait_clock(*client, kOdd, true, "clock runs fast ("));
  const auto odd = node_metrics(*client, kOdd);
  ASSERT_TRUE(odd.clock_rate.has_value());
  EXPECT_NEAR(*odd.clock_rate, 1.5, 0.05);
  EXPECT_EQ(odd.clock_alarms, 1u);

  // The log says so, naming the node.
  const std::string warned = log_->find({"warn", cluster().address(kOdd), "clock runs fast"});
  EXPECT_NE(warned, "") << ::testing::PrintToString(log_->lines());
  EXPECT_THAT(warned, HasSubstr("Redlock assumes every node's clock runs at the client's rate"));

  // The other nodes were sampled as long and are fine.
  ASSERT_TRUE(wait_sampled(0, 10));
  const auto m = client->metrics();
  for (std::size_t i = 0; i < m.nodes.size(); ++i) {
    if (i == kOdd) continue;
    EXPECT_FALSE(m.nodes[i].clock_suspect) << i << ": " << m.nodes[i].clock_reason;
    EXPECT_EQ(m.nodes[i].clock_alarms, 0u) << i;
    ASSERT_TRUE(m.nodes[i].clock_rate.has_value()) << i;
    EXPECT_NEAR(*m.nodes[i].clock_rate, 1.0, 0.05) << i;
    EXPECT_EQ(log_->find({"warn", cluster().address(i) + ":"}), "");
  }
  const std::string text = to_prometheus(m);
  EXPECT_THAT(
      text, HasSubstr("redlock_node_clock_suspect{node=\"" + cluster().address(kOdd) + "\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("redlock_node_clock_suspect{node=\"" + cluster().address(0) + "\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("redlock_node_clock_alarms_total{node=\"" + cluster().address(kOdd) +
                              "\"} 1\n"));

  // Reported, not excluded (exclusion is off here): it still votes.
  auto lock = client->acquire("res:clock:fast", 10s);
  ASSERT_TRUE(lock) << lock.error();
  EXPECT_NE(lock->votes()[kOdd].status, NodeStatus::kNotVoting);
  // The grant came at the third yes; the release, which waits for every
  // node, shows that every node set the key.
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
}

TEST_F(ClockTest, ExcludedFastClockSitsOutTheVote) {
  auto client = connect_or_fail(options());  // the default: excluded
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(wait_clock(*client, kOdd, true, "clock runs fast"));
  EXPECT_NE(log_->find({"warn", cluster().address(kOdd), "it does not vote"}), "");

  auto lock = client->acquire("res:clock:excluded", 10s);
  ASSERT_TRUE(lock) << lock.error();
  const auto& votes = lock->votes();
  ASSERT_EQ(votes.size(), 5u);
  EXPECT_EQ(votes[kOdd].status, NodeStatus::kNotVoting);
  EXPECT_THAT(votes[kOdd].detail, StartsWith("clock runs fast ("));
  EXPECT_EQ(count_status(votes, NodeStatus::kNotVoting), 1u);
  EXPECT_GE(count_status(votes, NodeStatus::kOk), 3u);
  // Not asked: the odd node holds no key.
  EXPECT_EQ(cluster().dbsize(kOdd).value_or(-1), 0);
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 4);

  // Three of five is still a majority: with two more nodes gone, no lock.
  ASSERT_TRUE(cluster().kill(0).has_value());
  ASSERT_TRUE(cluster().kill(1).has_value());
  ASSERT_TRUE(eventually(
      [&]() -> bool { return !client->connected()[0] && !client->connected()[1]; }, scaled(5s)));
  auto refused = client->acquire("res:clock:excluded", 10s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kNoQuorum) << refused.error();
}

class SteadyClockTest : public ClockTest {
 protected:
  double odd_rate() const override { return 1.0; }
};

TEST_F(SteadyClockTest, AJumpIsReportedThenClearsAfterAWindow) {
  auto client = connect_or_fail(options());
  ASSERT_NE(client, nullptr);
  // The shim alone (rate 1) does not make a node suspect.
  ASSERT_TRUE(wait_sampled(kOdd, 10));
  auto odd = node_metrics(*client, kOdd);
  EXPECT_FALSE(odd.clock_suspect) << odd.clock_reason;
  ASSERT_TRUE(odd.clock_rate.has_value());
  EXPECT_NEAR(*odd.clock_rate, 1.0, 0.05);

  ASSERT_TRUE(clock_.set_offset(5s));
  ASSERT_TRUE(wait_clock(*client, kOdd, true, "clock jumped +5.0 s"));
  EXPECT_NE(log_->find({"warn", cluster().address(kOdd), "clock jumped +5.0 s"}), "");
  for (std::size_t i = 0; i < 5; ++i) {
    if (i != kOdd) {
      EXPECT_FALSE(node_metrics(*client, i).clock_suspect) << i;
    }
  }
  // A step is not a rate: once the window (20 samples, 2 s) no longer holds
  // it, the node is fine again.
  ASSERT_TRUE(wait_clock(*client, kOdd, false));
  EXPECT_NE(log_->find({"info", cluster().address(kOdd), "clock looks sane again"}), "");

  // Backwards too.
  ASSERT_TRUE(clock_.set_offset(2s));
  ASSERT_TRUE(wait_clock(*client, kOdd, true, "clock jumped -3.0 s"));
  EXPECT_EQ(node_metrics(*client, kOdd).clock_alarms, 2u);
}

TEST_F(SteadyClockTest, ARestartedNodeIsCheckedAfresh) {
  auto o = options();
  o.clock_check_interval = 500ms;  // a 10 s window: recovery is not what clears it
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(wait_sampled(kOdd, 3));
  ASSERT_TRUE(clock_.set_offset(5s));
  ASSERT_TRUE(wait_clock(*client, kOdd, true, "clock jumped +5.0 s"));
  // The restarted server keeps the offset (no step any more); the client
  // starts its samples over for the new run_id.
  const auto restarted_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(cluster().restart(kOdd).has_value());
  ASSERT_TRUE(wait_clock(*client, kOdd, false, "", 5s));
  if (scaled(1000ms) == 1000ms) {
    // Well within the 10 s window (only checked when not slowed down).
    EXPECT_LT(std::chrono::steady_clock::now() - restarted_at, 8s);
  }
  EXPECT_NE(log_->find({"info", cluster().address(kOdd), "checked afresh"}), "");
  // And it is sampled again.
  ASSERT_TRUE(eventually(
      [&]() -> bool { return node_metrics(*client, kOdd).clock_rate.has_value(); }, scaled(5s)));
  EXPECT_FALSE(node_metrics(*client, kOdd).clock_suspect);
}

class PlainClusterTest : public ClusterTest {};

TEST_F(PlainClusterTest, SamplingTimeDoesNotDisturbLocking) {
  auto o = client_options(addresses());
  o.clock_check_interval = 10ms;  // the shortest allowed: TIME all the time
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  std::atomic<int> granted{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  // Locks for a second, so that a hundred TIME commands or so are pipelined
  // among them on every connection.
  const auto until = Clock::now() + 1s;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; Clock::now() < until; ++k) {
        const std::string resource =
            "res:clock:busy:" + std::to_string(t) + ":" + std::to_string(k);
        auto lock = client->acquire(resource, 10s);
        if (!lock) {
          ++failed;
          continue;
        }
        auto extended = client->extend(*lock, 10s);
        if (!extended) ++failed;
        auto released = client->release(extended ? *extended : *lock);
        if (!released || released->deleted != 5) ++failed;
        ++granted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(granted.load(), 0);
  // TIME went to every node meanwhile, and no clock looked wrong.
  const auto m = client->metrics();
  for (std::size_t i = 0; i < 5; ++i) {
    auto stats = cluster().command(i, {"INFO", "commandstats"});
    ASSERT_TRUE(stats) << stats.error();
    const auto at = stats->find("cmdstat_time:calls=");
    ASSERT_NE(at, std::string::npos) << i;
    EXPECT_GE(std::stoi(stats->substr(at + 19)), 10) << i;
    EXPECT_FALSE(m.nodes[i].clock_suspect) << i << ": " << m.nodes[i].clock_reason;
    EXPECT_EQ(m.nodes[i].clock_alarms, 0u) << i;
  }
}

TEST_F(PlainClusterTest, ClockCheckOffSendsNoTime) {
  auto o = client_options(addresses());
  o.clock_check_interval = 0ms;
  o.fencing = false;  // the fenced acquire script reads TIME itself
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  auto lock = client->acquire("res:clock:off", 10s);
  ASSERT_TRUE(lock) << lock.error();
  ASSERT_TRUE(client->release(*lock));
  std::this_thread::sleep_for(100ms);
  for (std::size_t i = 0; i < 5; ++i) {
    auto stats = cluster().command(i, {"INFO", "commandstats"});
    ASSERT_TRUE(stats) << stats.error();
    EXPECT_THAT(*stats, ::testing::Not(HasSubstr("cmdstat_time:"))) << i;
    EXPECT_FALSE(client->metrics().nodes[i].clock_rate.has_value());
  }
}

// Without fencing, TIME is the clock check's alone: an ACL that refuses it
// costs the check and nothing else.
TEST_F(PlainClusterTest, AnAclWithoutTimeOnlyLosesTheClockCheck) {
  for (std::size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(cluster().command(
        i, {"ACL", "SETUSER", "notime", "on", ">pw", "~*", "resetchannels", "-@all", "+set", "+get",
            "+del", "+exists", "+evalsha", "+eval", "+script|load", "+info"}));
  }
  auto o = client_options(addresses());
  o.username = "notime";
  o.password = "pw";
  o.fencing = false;  // the fenced acquire script needs +time too
  o.clock_check_interval = 20ms;
  auto log = std::make_shared<LogLines>();
  o.logger = std::make_shared<spdlog::logger>("clock", log);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually([&]() -> bool { return log->find({"TIME refused"}) != ""; }, scaled(5s)))
      << ::testing::PrintToString(log->lines());
  EXPECT_THAT(log->find({"TIME refused"}), HasSubstr("grant +time"));
  auto lock = client->acquire("res:clock:acl", 10s);
  ASSERT_TRUE(lock) << lock.error();
  auto released = client->release(*lock);
  ASSERT_TRUE(released) << released.error();
  EXPECT_EQ(released->deleted, 5);
  // Refused once per connection, not asked again: one warning per node.
  std::this_thread::sleep_for(200ms);
  std::size_t warnings = 0;
  for (const auto& line : log->lines()) warnings += line.find("TIME refused") != std::string::npos;
  EXPECT_EQ(warnings, 5u);
  for (const auto& n : client->metrics().nodes) EXPECT_FALSE(n.clock_rate.has_value());
}

// ---------------------------------------------------------------------------
// The safe default: suspect clocks do not vote.

// Nodes 4 and 5 run their clocks 4x fast, from before the client starts.
class TwoFastClocksTest : public ClusterTest {
 protected:
  TwoFastClocksTest() : dir_(make_dir()), clock_(dir_ / "clock") {}
  ~TwoFastClocksTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ClusterOptions cluster_options() const override {
    ClusterOptions o;
    o.node_env = {{}, {}, {}, clock_.env(4.0), clock_.env(4.0)};
    return o;
  }
  void SetUp() override {
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(clock_.ok());
    ClusterTest::SetUp();
  }

  // Nodes 2 and 3 are down; a lock on "res:overlap" is taken at once (one
  // round), then nodes 2 and 3 come back empty and, once the fast nodes'
  // keys ran out (a quarter of the ttl), a second client tries the same
  // resource while the first lock is still valid. Returns whether both
  // held it at once.
  bool second_holder_overlaps(const ClientOptions& options, std::string& story) {
    auto first = connect_or_fail(options);
    if (first == nullptr) return false;
    for (std::size_t i : {1u, 2u}) EXPECT_TRUE(cluster().kill(i));
    EXPECT_TRUE(eventually(
        [&]() -> bool { return !first->connected()[1] && !first->connected()[2]; }, scaled(2s)));
    auto a = first->acquire("res:overlap", 4000ms);
    if (!a) {
      story = "the first acquire was refused: " + to_string(a.error());
      skip_leftover_check_ = true;  // nodes were killed
      return false;
    }
    for (std::size_t i : {1u, 2u}) EXPECT_TRUE(cluster().restart(i));
    std::this_thread::sleep_for(1500ms);  // the 4x nodes dropped the key after 1 s
    auto second = connect_or_fail(options);
    if (second == nullptr) return false;
    auto b = second->acquire("res:overlap", 4000ms);
    const bool overlap = b && !a->expired();
    story = b ? "the second client was granted too" : "the second client was refused";
    if (b) (void)second->release(*b);
    (void)first->release(*a);
    skip_leftover_check_ = true;  // nodes were killed and restarted
    return overlap;
  }

  fs::path dir_;
  FakeClock clock_;
};

TEST_F(TwoFastClocksTest, WithTheDefaultsTwoHoldersNeverOverlap) {
  auto o = client_options(addresses());  // exclude_suspect_clocks: the default
  // Right after connect() the fast nodes are already left out.
  auto probe = connect_or_fail(o);
  ASSERT_NE(probe, nullptr);
  auto health = probe->health(scaled(2s));
  ASSERT_TRUE(health) << health.error();
  for (std::size_t i : {3u, 4u}) {
    // Seen at the first short interval (as a jump; a rate from the next one).
    EXPECT_FALSE(health->nodes[i].voting) << i;
    EXPECT_TRUE(health->nodes[i].clock_suspect) << i;
    EXPECT_THAT(health->nodes[i].not_voting_reason, StartsWith("clock "));
  }
  for (std::size_t i : {0u, 1u, 2u}) EXPECT_TRUE(health->nodes[i].voting) << i;
  probe.reset();
  std::string story;
  EXPECT_FALSE(second_holder_overlaps(o, story)) << story;
  EXPECT_THAT(story, HasSubstr("first acquire was refused"));
}

TEST_F(TwoFastClocksTest, WithoutExclusionTheHazardIsReal) {
  auto o = client_options(addresses());
  o.exclude_suspect_clocks = false;
  std::string story;
  EXPECT_TRUE(second_holder_overlaps(o, story)) << story;
}

// Healthy nodes are not excluded by the default: far away (150 ms each way),
// ...
TEST_F(PlainClusterTest, DistantHealthyNodesVote) {
  std::vector<redlock::delayproxy::Route> routes;
  for (std::size_t i = 0; i < 5; ++i) {
    redlock::delayproxy::Route r;
    r.target_port = cluster().port(i);
    r.delay = 150ms;
    routes.push_back(r);
  }
  auto proxy = redlock::delayproxy::DelayProxy::start(routes);
  ASSERT_TRUE(proxy) << proxy.error();
  std::vector<std::string> nodes;
  for (std::size_t i = 0; i < 5; ++i)
    nodes.push_back("127.0.0.1:" + std::to_string((*proxy)->port(i)));
  auto o = client_options(nodes);
  o.clock_check_interval = 200ms;
  o.node_timeout = scaled(1000ms);
  o.connect_timeout = scaled(3000ms);
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(eventually([&]() -> bool { return client->quorum_available(); }, scaled(5s)));
  for (int round = 0; round < 3; ++round) {
    auto lock = client->acquire("res:far", 10s);
    ASSERT_TRUE(lock) << lock.error();
    EXPECT_EQ(count_status(lock->votes(), NodeStatus::kNotVoting), 0u);
    ASSERT_TRUE(client->release(*lock));
  }
  std::this_thread::sleep_for(2s);  // ten more samples each
  for (const auto& n : client->metrics().nodes) {
    EXPECT_TRUE(n.voting) << n.node;
    EXPECT_EQ(n.clock_alarms, 0u) << n.node << ": " << n.clock_reason;
  }
}

// ... and when the client's own process is stopped for seconds (a VM
// pause, a debugger): its samples straddle the pause, which only widens
// their error bars.
TEST_F(PlainClusterTest, AClientStoppedForSecondsDoesNotExcludeHealthyNodes) {
  int to_parent[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child: a client that keeps locking, reports, then checks itself.
    ::close(to_parent[0]);
    auto o = client_options(addresses());
    o.clock_check_interval = 100ms;
    auto c = Client::connect(o);
    int code = c ? 0 : 10;
    if (code == 0) {
      (void)!::write(to_parent[1], "r", 1);
      for (int k = 0; k < 60 && code == 0; ++k) {  // ~6 s of locking, the stop included
        auto lock = (*c)->acquire("res:stopped:" + std::to_string(k), 10s);
        if (!lock) {
          code = 11;
          break;
        }
        if (count_status(lock->votes(), NodeStatus::kNotVoting) != 0) code = 12;
        (void)(*c)->release(*lock);
        std::this_thread::sleep_for(100ms);
      }
      for (const auto& n : (*c)->metrics().nodes) {
        if (n.clock_alarms != 0 || !n.voting) code = 13;
      }
    }
    (*c).reset();
    ::_exit(code);
  }
  ::close(to_parent[1]);
  char ready = 0;
  ASSERT_EQ(::read(to_parent[0], &ready, 1), 1);
  ::close(to_parent[0]);
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(::kill(child, SIGSTOP), 0);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(::kill(child, SIGCONT), 0);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + scaled(30s);
  while (::waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      FAIL() << "the child client did not finish";
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: no client, 11: an acquire failed, 12: a node did not vote, 13: a clock alarm";
}

}  // namespace
}  // namespace redlock::testing
