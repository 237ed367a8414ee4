// Tests of LocalCluster (real redis-server processes) and of the ClusterTest
// fixture. Every wait is bounded; bounds are scaled by REDLOCK_TIME_SCALE.
#include "redlock/cluster/local_cluster.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.hpp"
#include "fake_clock.hpp"
#include "redlock/cluster/redis_cluster.hpp"
#include "redlock/cluster/tls_certs.hpp"

namespace {

namespace fs = std::filesystem;
using redlock::cluster::ClusterOptions;
using redlock::cluster::LocalCluster;
using redlock::cluster::scaled;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// True once /proc shows no live process `pid` (absent, or a zombie left to
// someone else), within `timeout`.
bool process_gone(int pid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!stat || !std::getline(stat, text)) return true;
    const auto close = text.rfind(')');
    if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z') {
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

std::unique_ptr<LocalCluster> start_or_fail(std::size_t n, ClusterOptions options = {}) {
  auto started = LocalCluster::start(n, std::move(options));
  EXPECT_TRUE(started.has_value()) << started.error();
  return started.has_value() ? std::move(*started) : nullptr;
}

fs::path make_test_dir() {
  std::string templ = (fs::temp_directory_path() / "redlock-cluster-test-XXXXXX").string();
  EXPECT_NE(::mkdtemp(templ.data()), nullptr);
  return templ;
}

// Restores an environment variable when the test ends.
class EnvGuard {
 public:
  explicit EnvGuard(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  ~EnvGuard() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(LocalClusterTest, StartsNodesThatAnswerPing) {
  auto cluster = start_or_fail(3);
  ASSERT_TRUE(cluster);
  ASSERT_EQ(cluster->size(), 3u);
  std::set<int> ports;
  for (std::size_t i = 0; i < cluster->size(); ++i) {
    auto pong = cluster->command(i, {"PING"});
    ASSERT_TRUE(pong.has_value()) << pong.error();
    EXPECT_EQ(*pong, "PONG");
    const auto info = cluster->info(i);
    EXPECT_EQ(info.index, static_cast<int>(i));
    EXPECT_TRUE(info.running);
    EXPECT_FALSE(info.paused);
    EXPECT_GT(info.pid, 0);
    EXPECT_EQ(info.port, cluster->port(i));
    EXPECT_TRUE(fs::exists(info.dir / "redis.log"));
    EXPECT_EQ(cluster->address(i), "127.0.0.1:" + std::to_string(cluster->port(i)));
    ports.insert(cluster->port(i));
  }
  EXPECT_EQ(ports.size(), 3u) << "every node has its own port";
  EXPECT_EQ(cluster->addresses().size(), 3u);
  // DEBUG is enabled and persistence is off.
  auto save = cluster->command(0, {"CONFIG", "GET", "save"});
  ASSERT_TRUE(save.has_value()) << save.error();
  EXPECT_EQ(*save, "save\n");
  auto aof = cluster->command(0, {"CONFIG", "GET", "appendonly"});
  ASSERT_TRUE(aof.has_value()) << aof.error();
  EXPECT_EQ(*aof, "appendonly\nno");
}

TEST(LocalClusterTest, RendersReplies) {
  auto cluster = start_or_fail(1);
  ASSERT_TRUE(cluster);
  EXPECT_EQ(cluster->command(0, {"INCR", "n"}).value_or("?"), "1");
  EXPECT_EQ(cluster->command(0, {"GET", "missing"}).value_or("?"), "(nil)");
  EXPECT_EQ(cluster->command(0, {"RPUSH", "l", "a", "b"}).value_or("?"), "2");
  EXPECT_EQ(cluster->command(0, {"LRANGE", "l", "0", "-1"}).value_or("?"), "a\nb");
  EXPECT_EQ(cluster->command(0, {"SET", "k", "v w"}).value_or("?"), "OK");
  auto k = cluster->get(0, "k");
  ASSERT_TRUE(k.has_value()) << k.error();
  EXPECT_EQ(*k, std::optional<std::string>("v w"));
  auto missing = cluster->get(0, "missing");
  ASSERT_TRUE(missing.has_value()) << missing.error();
  EXPECT_EQ(*missing, std::nullopt);
  EXPECT_EQ(cluster->dbsize(0).value_or(-1), 3);

  auto unknown = cluster->command(0, {"NOSUCHCOMMAND"});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().rfind("ERR unknown command", 0), 0u) << unknown.error();
  auto wrongtype = cluster->get(0, "l");
  ASSERT_FALSE(wrongtype.has_value());
  EXPECT_EQ(wrongtype.error().rfind("WRONGTYPE", 0), 0u) << wrongtype.error();

  auto bad_index = cluster->command(5, {"PING"});
  ASSERT_FALSE(bad_index.has_value());
  EXPECT_NE(bad_index.error().find("no node with index 5"), std::string::npos) << bad_index.error();
}

TEST(LocalClusterTest, CountsKeysOnRunningUnpausedNodes) {
  auto cluster = start_or_fail(3);
  ASSERT_TRUE(cluster);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster->command(i, {"SET", "lock:" + std::to_string(i), "x"}).has_value());
  }
  ASSERT_TRUE(cluster->command(0, {"SET", "other", "x"}).has_value());
  EXPECT_EQ(cluster->count_keys("lock:*").value_or(-1), 3);
  EXPECT_EQ(cluster->count_keys("*").value_or(-1), 4);
  ASSERT_TRUE(cluster->pause(1).has_value());
  EXPECT_EQ(cluster->count_keys("lock:*").value_or(-1), 2) << "a paused node is skipped";
  ASSERT_TRUE(cluster->kill(2).has_value());
  EXPECT_EQ(cluster->count_keys("lock:*").value_or(-1), 1) << "a stopped node is skipped";
  ASSERT_TRUE(cluster->resume(1).has_value());
  EXPECT_EQ(cluster->count_keys("lock:*").value_or(-1), 2);
}

TEST(LocalClusterTest, PausedNodeTimesOutAndResumes) {
  auto cluster = start_or_fail(3);
  ASSERT_TRUE(cluster);
  ASSERT_TRUE(cluster->command(1, {"SET", "k", "v"}).has_value());

  auto paused = cluster->pause(1);
  ASSERT_TRUE(paused.has_value()) << paused.error();
  EXPECT_TRUE(cluster->info(1).paused);
  EXPECT_TRUE(cluster->info(1).running);
  EXPECT_TRUE(cluster->pause(1).has_value()) << "pausing twice is fine";

  const auto before = Clock::now();
  auto stalled = cluster->get(1, "k");
  const auto took = Clock::now() - before;
  ASSERT_FALSE(stalled.has_value());
  EXPECT_NE(stalled.error().find("timed out"), std::string::npos) << stalled.error();
  EXPECT_NE(stalled.error().find(cluster->address(1)), std::string::npos) << stalled.error();
  EXPECT_GE(took, milliseconds(1500));
  EXPECT_LT(took, scaled(milliseconds(10000)));
  // The other nodes do not care.
  EXPECT_EQ(cluster->command(0, {"PING"}).value_or("?"), "PONG");

  auto resumed = cluster->resume(1);
  ASSERT_TRUE(resumed.has_value()) << resumed.error();
  EXPECT_FALSE(cluster->info(1).paused);
  auto value = cluster->get(1, "k");
  ASSERT_TRUE(value.has_value()) << value.error();
  EXPECT_EQ(*value, std::optional<std::string>("v"));
}

TEST(LocalClusterTest, KilledNodeRefusesConnections) {
  auto cluster = start_or_fail(3);
  ASSERT_TRUE(cluster);
  const int pid = cluster->info(2).pid;
  ASSERT_TRUE(cluster->pause(2).has_value());

  auto killed = cluster->kill(2);
  ASSERT_TRUE(killed.has_value()) << killed.error();
  EXPECT_TRUE(process_gone(pid, milliseconds(0))) << "kill() returns once the process is gone";
  const auto info = cluster->info(2);
  EXPECT_FALSE(info.running);
  EXPECT_FALSE(info.paused);
  EXPECT_EQ(info.pid, 0);

  auto refused = cluster->command(2, {"PING"});
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().find("Connection refused"), std::string::npos) << refused.error();

  EXPECT_TRUE(cluster->kill(2).has_value()) << "killing a stopped node is fine";
  auto pause = cluster->pause(2);
  ASSERT_FALSE(pause.has_value());
  EXPECT_NE(pause.error().find("is not running"), std::string::npos) << pause.error();
  auto resume = cluster->resume(2);
  ASSERT_FALSE(resume.has_value());
  EXPECT_EQ(cluster->count_keys("*").value_or(-1), 0);
}

TEST(LocalClusterTest, RestartGivesAnEmptyNodeOnTheSamePort) {
  auto cluster = start_or_fail(2);
  ASSERT_TRUE(cluster);
  const int port = cluster->port(1);
  const int pid = cluster->info(1).pid;
  ASSERT_TRUE(cluster->command(1, {"SET", "k", "v"}).has_value());
  ASSERT_EQ(cluster->dbsize(1).value_or(-1), 1);

  auto restarted = cluster->restart(1);
  ASSERT_TRUE(restarted.has_value()) << restarted.error();
  EXPECT_EQ(cluster->port(1), port);
  EXPECT_NE(cluster->info(1).pid, pid);
  EXPECT_TRUE(process_gone(pid, milliseconds(0)));
  EXPECT_EQ(cluster->dbsize(1).value_or(-1), 0);
  auto value = cluster->get(1, "k");
  ASSERT_TRUE(value.has_value()) << value.error();
  EXPECT_EQ(*value, std::nullopt);

  // Restarting a killed (and a paused) node works too.
  ASSERT_TRUE(cluster->kill(0).has_value());
  auto again = cluster->restart(0);
  ASSERT_TRUE(again.has_value()) << again.error();
  EXPECT_EQ(cluster->command(0, {"PING"}).value_or("?"), "PONG");
  ASSERT_TRUE(cluster->pause(0).has_value());
  ASSERT_TRUE(cluster->restart(0).has_value());
  EXPECT_FALSE(cluster->info(0).paused);
  EXPECT_EQ(cluster->command(0, {"PING"}).value_or("?"), "PONG");
}

// Whether the process has the shared library `path` mapped. (Its
// environment cannot be read back: redis-server writes its process title
// over it.)
bool maps_library(int pid, const std::string& path) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    if (line.ends_with(" " + path)) return true;
  }
  return false;
}

TEST(LocalClusterTest, NodeEnvGoesToThatNodeOnlyAndSurvivesRestart) {
  const std::string shim = redlock::testing::FakeClock::library();
  ClusterOptions options;
  options.node_env = {{}, {"LD_PRELOAD=" + shim}};
  auto cluster = start_or_fail(3, options);
  ASSERT_TRUE(cluster);
  EXPECT_FALSE(maps_library(cluster->info(0).pid, shim));
  EXPECT_TRUE(maps_library(cluster->info(1).pid, shim));
  EXPECT_FALSE(maps_library(cluster->info(2).pid, shim));
  ASSERT_TRUE(cluster->restart(1).has_value());
  EXPECT_TRUE(maps_library(cluster->info(1).pid, shim));
  ASSERT_TRUE(cluster->restart(2).has_value());
  EXPECT_FALSE(maps_library(cluster->info(2).pid, shim));
}

// The node's TIME in microseconds, or -1.
long long node_time_us(LocalCluster& cluster, std::size_t i) {
  auto text = cluster.command(i, {"TIME"});
  if (!text) return -1;
  const auto nl = text->find('\n');
  if (nl == std::string::npos) return -1;
  return std::stoll(text->substr(0, nl)) * 1000000 + std::stoll(text->substr(nl + 1));
}

TEST(FakeClockTest, NodeClockRunsFastAndJumpsWhileTheServerWorks) {
  const fs::path dir = make_test_dir();
  redlock::testing::FakeClock clock(dir / "clock");
  ASSERT_TRUE(clock.ok());
  ClusterOptions options;
  options.node_env = {{}, clock.env(2.0)};
  auto cluster = start_or_fail(2, options);
  ASSERT_TRUE(cluster);

  // Over half a second of ours, node 2's clock moves about twice as far
  // (wide bounds: each TIME takes a connection of its own).
  const long long a0 = node_time_us(*cluster, 0);
  const long long b0 = node_time_us(*cluster, 1);
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(milliseconds(500));
  const long long a1 = node_time_us(*cluster, 0);
  const long long b1 = node_time_us(*cluster, 1);
  const double local_us = static_cast<double>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
  ASSERT_TRUE(a0 > 0 && a1 > 0 && b0 > 0 && b1 > 0);
  EXPECT_NEAR(static_cast<double>(a1 - a0) / local_us, 1.0, 0.25);
  EXPECT_NEAR(static_cast<double>(b1 - b0) / local_us, 2.0, 0.5);

  // A step of the offset moves node 2's wall clock at once, by that much.
  const long long before = node_time_us(*cluster, 1);
  ASSERT_TRUE(clock.set_offset(std::chrono::seconds(30)));
  const long long after = node_time_us(*cluster, 1);
  EXPECT_GT(after - before, 29'000'000);
  EXPECT_LT(after - before, 31'000'000);
  ASSERT_TRUE(clock.set_offset(std::chrono::seconds(-30)));
  EXPECT_LT(node_time_us(*cluster, 1) - after, -59'000'000);

  // The server works as usual, timers included: a key with a ttl expires
  // (twice as fast), DEBUG SLEEP returns.
  EXPECT_EQ(cluster->command(1, {"SET", "k", "v", "PX", "200"}).value_or("?"), "OK");
  EXPECT_EQ(cluster->command(1, {"DEBUG", "SLEEP", "0.05"}).value_or("?"), "OK");
  const auto deadline = Clock::now() + scaled(milliseconds(5000));
  while (cluster->get(1, "k").value_or(std::nullopt).has_value() && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(cluster->get(1, "k").value_or("?"), std::nullopt);
  cluster->stop();
  fs::remove_all(dir);
}

TEST(LocalClusterTest, StopLeavesNoProcessAndRemovesTheTempDir) {
  auto cluster = start_or_fail(3);
  ASSERT_TRUE(cluster);
  std::vector<int> pids;
  for (std::size_t i = 0; i < cluster->size(); ++i) pids.push_back(cluster->info(i).pid);
  const fs::path dir = cluster->dir();
  ASSERT_TRUE(fs::is_directory(dir));
  ASSERT_TRUE(cluster->pause(0).has_value());
  // A node in DEBUG SLEEP answers SIGTERM only when it wakes up: stop() must
  // still finish in bounded time (SIGKILL).
  ASSERT_TRUE(cluster->debug_sleep(1, 30).has_value());

  const auto before = Clock::now();
  cluster->stop();
  EXPECT_LT(Clock::now() - before, scaled(milliseconds(15000)));
  for (int pid : pids) {
    EXPECT_TRUE(process_gone(pid, milliseconds(0))) << "pid " << pid;
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1) << "pid " << pid << " was reaped";
  }
  EXPECT_FALSE(fs::exists(dir));
  for (std::size_t i = 0; i < cluster->size(); ++i) EXPECT_FALSE(cluster->info(i).running);
  cluster->stop();  // idempotent
  cluster.reset();  // and so is the destructor after it
}

TEST(LocalClusterTest, DestructorStopsTheServers) {
  std::vector<int> pids;
  fs::path dir;
  {
    auto cluster = start_or_fail(2);
    ASSERT_TRUE(cluster);
    for (std::size_t i = 0; i < cluster->size(); ++i) pids.push_back(cluster->info(i).pid);
    dir = cluster->dir();
  }
  for (int pid : pids) EXPECT_TRUE(process_gone(pid, milliseconds(0))) << "pid " << pid;
  EXPECT_FALSE(fs::exists(dir));
}

TEST(LocalClusterTest, DebugSleepStallsTheServer) {
  auto cluster = start_or_fail(1);
  ASSERT_TRUE(cluster);
  const auto before = Clock::now();
  auto sent = cluster->debug_sleep(0, 1.0);
  ASSERT_TRUE(sent.has_value()) << sent.error();
  EXPECT_LT(Clock::now() - before, milliseconds(500)) << "debug_sleep does not wait";
  auto pong = cluster->command(0, {"PING"});
  const auto took = Clock::now() - before;
  ASSERT_TRUE(pong.has_value()) << pong.error();
  EXPECT_GE(took, milliseconds(900));
}

TEST(LocalClusterTest, ServersDoNotInheritOurDescriptors) {
  // hiredis and other code open sockets without CLOEXEC; a server holding a
  // copy would keep such a connection open after we close it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const std::string ours = fs::read_symlink("/proc/self/fd/" + std::to_string(fd)).string();
  auto cluster = start_or_fail(1);
  ::close(fd);
  ASSERT_TRUE(cluster);
  const fs::path fds = "/proc/" + std::to_string(cluster->info(0).pid) + "/fd";
  for (const auto& entry : fs::directory_iterator(fds)) {
    std::error_code ec;
    EXPECT_NE(fs::read_symlink(entry.path(), ec).string(), ours) << entry.path();
  }
}

TEST(LocalClusterTest, ServersDieWithTheProcessThatStartedThem) {
  // A child process starts a cluster and exits without stopping it, as a
  // crashed test would: PR_SET_PDEATHSIG must take the servers down.
  // The child cannot clean up: it works in a directory we remove.
  const fs::path dir = make_test_dir();
  ASSERT_FALSE(dir.empty());
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    ClusterOptions options;
    options.dir = dir;
    auto started = LocalCluster::start(2, options);
    int pids[2] = {0, 0};
    if (started.has_value()) {
      pids[0] = (*started)->info(0).pid;
      pids[1] = (*started)->info(1).pid;
    }
    [[maybe_unused]] auto n = ::write(pipe_fds[1], pids, sizeof pids);
    ::_exit(0);  // no destructor, no stop()
  }
  ::close(pipe_fds[1]);
  int pids[2] = {0, 0};
  const auto got = ::read(pipe_fds[0], pids, sizeof pids);
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof pids));
  ASSERT_GT(pids[0], 0);
  ASSERT_GT(pids[1], 0);
  for (int pid : pids) {
    EXPECT_TRUE(process_gone(pid, scaled(milliseconds(5000)))) << "pid " << pid;
  }
  fs::remove_all(dir);
}

TEST(LocalClusterTest, ReportsAPortInUse) {
  auto first = start_or_fail(1);
  ASSERT_TRUE(first);
  ClusterOptions options;
  options.base_port = first->port(0);
  auto clash = LocalCluster::start(1, options);
  ASSERT_FALSE(clash.has_value());
  EXPECT_NE(clash.error().find("node 1 (" + first->address(0) + ")"), std::string::npos)
      << clash.error();
  EXPECT_NE(clash.error().find("Address already in use"), std::string::npos) << clash.error();
  EXPECT_EQ(first->command(0, {"PING"}).value_or("?"), "PONG") << "the first server is untouched";
}

// A port in the listening state on 127.0.0.1, held until destruction.
class HeldPort {
 public:
  HeldPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(fd_, 1) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  ~HeldPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// Whether something accepts TCP connections on 127.0.0.1:port.
bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A node's second port (here its TLS port) that another process takes
// between the pick and the server's bind: the node is started again, on
// other ports, and keeps them across a restart and in the state file.
TEST(LocalClusterTest, ANodeWhoseExtraPortIsTakenIsStartedOnOthers) {
  auto files = redlock::testing::tls_files();
  ASSERT_TRUE(files.has_value()) << files.error();
  const HeldPort taken;
  ASSERT_NE(taken.port(), 0);
  const fs::path dir = make_test_dir();
  ASSERT_FALSE(dir.empty());
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      if (auto c = LocalCluster::attach(dir / "cluster")) (*c)->stop();
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  // The first start gets the taken port as its TLS port (the last
  // --tls-port wins); a real redis-server refuses it.
  const fs::path server = dir / "redis-server";
  std::ofstream(server) << "#!/bin/sh\n"
                        << "if [ ! -e \"$0.tried\" ]; then\n"
                        << "  : > \"$0.tried\"\n"
                        << "  exec redis-server \"$@\" --tls-port " << taken.port() << "\n"
                        << "fi\n"
                        << "exec redis-server \"$@\"\n";
  fs::permissions(server, fs::perms::owner_all);

  ClusterOptions options;
  options.redis_server = server.string();
  options.dir = dir / "cluster";
  options.detach = true;
  options.node_args = {redlock::testing::tls_server_args(**files, ClusterOptions::kExtraPort)};
  auto cluster = start_or_fail(1, options);
  ASSERT_TRUE(cluster);
  ASSERT_TRUE(fs::exists(dir / "redis-server.tried")) << "the first start was the failing one";
  std::ifstream log(cluster->info(0).dir / "redis.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Failed listening on port " + std::to_string(taken.port()) + " (TLS)"),
            std::string::npos)
      << text;

  const int extra = cluster->info(0).extra_port;
  EXPECT_NE(extra, 0);
  EXPECT_NE(extra, taken.port());
  EXPECT_NE(extra, cluster->port(0));
  EXPECT_TRUE(accepts(extra)) << "the TLS port " << extra << " listens";
  EXPECT_EQ(cluster->command(0, {"PING"}).value_or("?"), "PONG");

  ASSERT_TRUE(cluster->restart(0).has_value());
  EXPECT_EQ(cluster->info(0).extra_port, extra);
  EXPECT_TRUE(accepts(extra));
  auto attached = LocalCluster::attach(dir / "cluster");
  ASSERT_TRUE(attached.has_value()) << attached.error();
  EXPECT_EQ((*attached)->info(0).extra_port, extra) << "the state file keeps it";
}

TEST(LocalClusterTest, ReportsAMissingBinary) {
  ClusterOptions options;
  options.redis_server = "/nonexistent/redis-server";
  auto started = LocalCluster::start(2, options);
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().find("cannot execute '/nonexistent/redis-server'"), std::string::npos)
      << started.error();
}

TEST(LocalClusterTest, ReportsABadServerArgument) {
  ClusterOptions options;
  options.extra_args = {"--no-such-directive", "1"};
  auto started = LocalCluster::start(1, options);
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().find("exited with status 1"), std::string::npos) << started.error();
  EXPECT_NE(started.error().find("no-such-directive"), std::string::npos)
      << "the log tail is in the message: " << started.error();
}

TEST(LocalClusterTest, DetachedClusterCanBeAttachedAndStopped) {
  const fs::path dir = make_test_dir();
  ASSERT_FALSE(dir.empty());
  // Detached servers survive us: whatever happens, stop them at the end.
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      if (auto c = LocalCluster::attach(dir)) (*c)->stop();
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};

  ClusterOptions options;
  options.dir = dir;
  options.detach = true;
  std::vector<int> pids;
  std::vector<int> ports;
  {
    auto cluster = start_or_fail(2, options);
    ASSERT_TRUE(cluster);
    for (std::size_t i = 0; i < 2; ++i) {
      pids.push_back(cluster->info(i).pid);
      ports.push_back(cluster->port(i));
    }
    ASSERT_TRUE(fs::exists(dir / "cluster.json"));
  }  // detached: the destructor leaves the servers running

  auto attached = LocalCluster::attach(dir);
  ASSERT_TRUE(attached.has_value()) << attached.error();
  auto& cluster = **attached;
  ASSERT_EQ(cluster.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(cluster.port(i), ports[i]);
    EXPECT_EQ(cluster.info(i).pid, pids[i]);
    EXPECT_TRUE(cluster.info(i).running);
    EXPECT_EQ(cluster.command(i, {"PING"}).value_or("?"), "PONG");
  }

  // Starting again in the same directory is refused while it runs.
  auto twice = LocalCluster::start(2, options);
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().find("already running"), std::string::npos) << twice.error();

  // State changes made through one handle are seen through another.
  ASSERT_TRUE(cluster.pause(0).has_value());
  {
    auto other = LocalCluster::attach(dir);
    ASSERT_TRUE(other.has_value()) << other.error();
    EXPECT_TRUE((*other)->info(0).paused);
    ASSERT_TRUE((*other)->restart(1).has_value());
  }
  auto reread = LocalCluster::attach(dir);
  ASSERT_TRUE(reread.has_value()) << reread.error();
  EXPECT_NE((*reread)->info(1).pid, pids[1]) << "restart recorded the new pid";
  EXPECT_EQ((*reread)->port(1), ports[1]);

  (*reread)->stop();
  for (int pid : pids) EXPECT_TRUE(process_gone(pid, scaled(milliseconds(5000)))) << pid;
  EXPECT_TRUE(fs::exists(dir)) << "a directory we were given is kept";
  auto after = LocalCluster::attach(dir);
  ASSERT_TRUE(after.has_value()) << after.error();
  EXPECT_FALSE((*after)->info(0).running);
  EXPECT_FALSE((*after)->info(1).running);
}

// A detached cluster is found again only through its state file, whose JSON
// strings are UTF-8. A directory whose name is not is refused before any
// server starts, instead of servers that run where no command finds them. A
// cluster that is not detached keeps no state file and starts there.
TEST(LocalClusterTest, ADetachedClusterWhoseStateCannotBeRecordedIsRefusedBeforeAnyServerStarts) {
  const fs::path base = make_test_dir();
  ASSERT_FALSE(base.empty());
  const fs::path dir = base / "a\xff\x01b";
  ClusterOptions options;
  options.dir = dir;
  options.detach = true;
  auto refused = LocalCluster::start(2, options);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().find("cannot record the cluster in cluster.json"), std::string::npos)
      << refused.error();
  EXPECT_NE(refused.error().find("invalid UTF-8"), std::string::npos) << refused.error();
  EXPECT_FALSE(fs::exists(dir / "node1" / "redis.log")) << "no server was started";
  EXPECT_FALSE(fs::exists(dir / "node2" / "redis.log")) << "no server was started";
  EXPECT_FALSE(fs::exists(dir / "cluster.json"));
  EXPECT_FALSE(fs::exists(dir / "cluster.json.tmp"));

  options.detach = false;
  auto attached_to_us = start_or_fail(2, options);
  ASSERT_TRUE(attached_to_us);
  EXPECT_EQ(attached_to_us->command(1, {"PING"}).value_or("?"), "PONG");
  attached_to_us->stop();
  fs::remove_all(base);
}

TEST(LocalClusterTest, AttachWithoutStateFails) {
  const fs::path dir = make_test_dir();
  auto attached = LocalCluster::attach(dir);
  ASSERT_FALSE(attached.has_value());
  EXPECT_NE(attached.error().find("no cluster in"), std::string::npos) << attached.error();
  std::ofstream(dir / "cluster.json") << "{not json";
  auto corrupt = LocalCluster::attach(dir);
  ASSERT_FALSE(corrupt.has_value());
  EXPECT_NE(corrupt.error().find("cluster.json"), std::string::npos) << corrupt.error();
  fs::remove_all(dir);
}

TEST(LocalClusterTest, AttachForgetsAPidThatIsNotOurServer) {
  const fs::path dir = make_test_dir();
  // Our own pid in the state file: it is not a redis-server, so attach must
  // report the node as stopped and stop() must not signal it.
  std::ofstream(dir / "cluster.json")
      << R"({"version": 1, "redis_server": "redis-server", "extra_args": [], "nodes": [)"
      << R"({"index": 0, "port": 1, "pid": )" << ::getpid() << R"(, "dir": "/nonexistent"}]})";
  auto attached = LocalCluster::attach(dir);
  ASSERT_TRUE(attached.has_value()) << attached.error();
  EXPECT_FALSE((*attached)->info(0).running);
  EXPECT_TRUE((*attached)->kill(0).has_value());
  (*attached)->stop();
  fs::remove_all(dir);
}

// Redis Clusters made of a LocalCluster's servers (redis_cluster.hpp).

TEST(StartRedisClusterTest, SplitsTheSlotsLikeRedisCli) {
  using redlock::cluster::kClusterSlots;
  using redlock::cluster::shard_of_slot;
  using redlock::cluster::shard_slot_range;
  using Range = std::pair<unsigned, unsigned>;
  EXPECT_EQ(shard_slot_range(0, 1), Range(0, 16383));
  EXPECT_EQ(shard_slot_range(0, 2), Range(0, 8191));
  EXPECT_EQ(shard_slot_range(1, 2), Range(8192, 16383));
  // What redis-cli --cluster create gives three masters.
  EXPECT_EQ(shard_slot_range(0, 3), Range(0, 5460));
  EXPECT_EQ(shard_slot_range(1, 3), Range(5461, 10922));
  EXPECT_EQ(shard_slot_range(2, 3), Range(10923, 16383));
  for (std::size_t shards = 1; shards <= 16; ++shards) {
    unsigned next = 0;
    for (std::size_t m = 0; m < shards; ++m) {
      const auto [first, last] = shard_slot_range(m, shards);
      EXPECT_EQ(first, next) << m << " of " << shards;
      EXPECT_LE(first, last) << m << " of " << shards;
      EXPECT_EQ(shard_of_slot(first, shards), m);
      EXPECT_EQ(shard_of_slot(last, shards), m);
      next = last + 1;
    }
    EXPECT_EQ(next, kClusterSlots) << shards << " shards";
  }
}

// One and two masters (below redis-cli's minimum of three), on free ports,
// answer for every slot; stop() leaves nothing behind.
TEST(StartRedisClusterTest, StartsOneAndTwoShardClustersAndStopsThem) {
  for (std::size_t shards : {1U, 2U}) {
    redlock::cluster::RedisClusterOptions options;
    options.shards = shards;
    options.form_timeout = scaled(milliseconds(30000));
    auto started = redlock::cluster::start_redis_cluster(options);
    ASSERT_TRUE(started.has_value()) << started.error();
    auto& cluster = **started;
    ASSERT_EQ(cluster.size(), shards);
    std::vector<int> pids;
    for (std::size_t i = 0; i < shards; ++i) {
      pids.push_back(cluster.info(i).pid);
      auto info = cluster.command(i, {"CLUSTER", "INFO"});
      ASSERT_TRUE(info.has_value()) << info.error();
      EXPECT_NE(info->find("cluster_state:ok"), std::string::npos) << *info;
      EXPECT_NE(info->find("cluster_size:" + std::to_string(shards)), std::string::npos) << *info;
    }
    // The last master takes a key of its own slots and redirects one of the
    // first master's.
    auto own = cluster.command(shards - 1, {"SET", "{a}", "1"});  // slot 15495
    EXPECT_TRUE(own.has_value()) << own.error();
    auto other = cluster.command(shards - 1, {"SET", "{b}", "1"});  // slot 3300
    if (shards == 1) {
      EXPECT_TRUE(other.has_value()) << other.error();
    } else {
      ASSERT_FALSE(other.has_value());
      EXPECT_NE(other.error().find("MOVED 3300"), std::string::npos) << other.error();
    }
    EXPECT_EQ(redlock::cluster::cluster_url(cluster, 1), "cluster://" + cluster.address(0));
    const fs::path dir = cluster.dir();
    cluster.stop();
    for (int pid : pids) EXPECT_TRUE(process_gone(pid, milliseconds(0))) << "pid " << pid;
    EXPECT_FALSE(fs::exists(dir));
  }
}

TEST(ScaledTest, MultipliesByTheEnvironment) {
  EnvGuard guard("REDLOCK_TIME_SCALE");
  ::unsetenv("REDLOCK_TIME_SCALE");
  EXPECT_EQ(scaled(milliseconds(100)), milliseconds(100));
  ::setenv("REDLOCK_TIME_SCALE", "3", 1);
  EXPECT_EQ(scaled(milliseconds(100)), milliseconds(300));
  ::setenv("REDLOCK_TIME_SCALE", "0.5", 1);
  EXPECT_EQ(scaled(milliseconds(100)), milliseconds(50));
  for (const char* bad : {"", "0", "-2", "abc", "2x", "nan", "inf"}) {
    ::setenv("REDLOCK_TIME_SCALE", bad, 1);
    EXPECT_EQ(scaled(milliseconds(100)), milliseconds(100)) << "'" << bad << "'";
  }
}

// The fixture itself.
class FixtureTest : public redlock::testing::ClusterTest {
 public:
  static FixtureTest* current;
  void quick_leftover_check() { expect_no_keys(milliseconds(100)); }

 protected:
  std::size_t nodes_count() const override { return 3; }
};
FixtureTest* FixtureTest::current = nullptr;

TEST_F(FixtureTest, GivesAFreshClusterPerTest) {
  ASSERT_EQ(addresses().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(cluster().dbsize(i).value_or(-1), 0);
    EXPECT_EQ(cluster().command(i, {"PING"}).value_or("?"), "PONG");
  }
}

TEST_F(FixtureTest, WaitsForKeysThatExpireSoon) {
  ASSERT_TRUE(cluster().command(0, {"SET", "lock:soon", "x", "PX", "200"}).has_value());
  expect_no_keys();
}

TEST_F(FixtureTest, ReportsKeysLeftBehind) {
  ASSERT_TRUE(cluster().command(1, {"SET", "lock:stale", "x"}).has_value());
  current = this;
  EXPECT_NONFATAL_FAILURE(current->quick_leftover_check(), "1 key(s) left behind");
  EXPECT_NONFATAL_FAILURE(current->quick_leftover_check(), "lock:stale");
  ASSERT_TRUE(cluster().command(1, {"DEL", "lock:stale"}).has_value());
}

TEST_F(FixtureTest, ResumesPausedNodesInTearDown) {
  ASSERT_TRUE(cluster().command(2, {"SET", "lock:paused", "x", "PX", "300"}).has_value());
  ASSERT_TRUE(cluster().pause(2).has_value());
  // TearDown resumes node 3; the key expires while the leftover check polls.
}

TEST_F(FixtureTest, CanSkipTheLeftoverCheck) {
  ASSERT_TRUE(cluster().command(0, {"SET", "lock:kept", "x"}).has_value());
  skip_leftover_check_ = true;
}

}  // namespace
