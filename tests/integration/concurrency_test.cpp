// Many threads through one client, many processes on one resource, and
// shutdown with operations in flight.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "test_util.hpp"

namespace redlock::testing {
namespace {

using ::testing::HasSubstr;

class ConcurrencyTest : public ClusterTest {};

TEST_F(ConcurrencyTest, ManyThreadsShareOneClientAndExcludeEachOther) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  constexpr int kThreads = 8;
  constexpr int kRounds = 25;
  std::atomic<int> inside{0};
  std::atomic<int> violations{0};
  std::atomic<int> granted{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AcquireOptions how;
      how.max_wait = scaled(20s);
      how.retry_delay = 5ms;
      how.retry_jitter = 5ms;
      for (int i = 0; i < kRounds; ++i) {
        // Alternate between a shared resource and one of the thread's own.
        const bool shared = i % 2 == 0;
        const std::string resource = shared ? "res:shared" : "res:own:" + std::to_string(t);
        auto lock = client->acquire(resource, 5s, how);
        if (!lock) {
          std::lock_guard lk(errors_mutex);
          errors.push_back(to_string(lock.error()));
          continue;
        }
        ++granted;
        if (shared) {
          if (inside.fetch_add(1) != 0) ++violations;
          std::this_thread::sleep_for(1ms);
          inside.fetch_sub(1);
        }
        auto released = client->release(*lock);
        if (!released) {
          std::lock_guard lk(errors_mutex);
          errors.push_back(to_string(released.error()));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(errors, ::testing::IsEmpty());
  EXPECT_EQ(granted.load(), kThreads * kRounds);
  EXPECT_EQ(violations.load(), 0);
}

TEST_F(ConcurrencyTest, EightProcessesContendingOnOneResourceAllMakeProgress) {
  constexpr int kProcesses = 8;
  constexpr int kCount = 10;
  std::string nodes;
  for (const auto& a : addresses()) nodes += (nodes.empty() ? "" : ",") + a;
  const auto marker = cluster().dir() / "critical-section";
  std::vector<FILE*> procs;
  for (int p = 0; p < kProcesses; ++p) {
    const std::string cmd = std::string(REDLOCK_CONTENDER_PATH) + " --nodes " + nodes +
                            " --resource res:contended --marker " + marker.string() + " --count " +
                            std::to_string(kCount) + " --max-wait-ms " +
                            std::to_string(scaled(30s).count());
    FILE* f = ::popen(cmd.c_str(), "r");
    ASSERT_NE(f, nullptr) << "cannot start " << cmd;
    procs.push_back(f);
  }
  int total = 0;
  for (int p = 0; p < kProcesses; ++p) {
    char line[256] = {};
    const bool got = std::fgets(line, sizeof line, procs[static_cast<std::size_t>(p)]) != nullptr;
    const int status = ::pclose(procs[static_cast<std::size_t>(p)]);
    ASSERT_TRUE(got) << "contender " << p << " printed nothing";
    EXPECT_EQ(status, 0) << "contender " << p << ": " << line;
    EXPECT_THAT(std::string(line),
                HasSubstr("acquired=" + std::to_string(kCount) + " violations=0 failures=0"))
        << "contender " << p;
    int acquired = 0;
    std::sscanf(line, "acquired=%d", &acquired);
    total += acquired;
  }
  EXPECT_EQ(total, kProcesses * kCount);
}

TEST_F(ConcurrencyTest, ShutdownCompletesEveryOperationInFlightAndLeavesNoKey) {
  auto o = client_options(addresses());
  o.node_timeout = scaled(5s);  // rounds stay open until the shutdown
  auto client = connect_or_fail(o);
  ASSERT_NE(client, nullptr);
  // With three nodes stopped, every acquire waits on them.
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().pause(i));
  constexpr int kOps = 20;
  std::atomic<int> calls{0};
  std::atomic<int> shutting_down{0};
  for (int i = 0; i < kOps; ++i) {
    auto posted =
        client->async_acquire("res:shutdown:" + std::to_string(i), 60s, {}, [&](Result<Lock> r) {
          ++calls;
          if (!r && r.error().code() == ErrorCode::kShuttingDown) {
            ++shutting_down;
          }
        });
    ASSERT_TRUE(posted) << posted.error();
  }
  std::this_thread::sleep_for(100ms);  // let the two live nodes answer OK
  const auto t0 = std::chrono::steady_clock::now();
  client.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, scaled(5s));
  EXPECT_EQ(calls.load(), kOps);
  EXPECT_EQ(shutting_down.load(), kOps);
  // The live nodes' keys were released before the connections closed; the
  // stopped ones run SET then release when they resume.
  for (std::size_t i : {0u, 1u, 2u}) ASSERT_TRUE(cluster().resume(i));
}

TEST_F(ConcurrencyTest, AGuardOutlivingItsClientReportsShuttingDown) {
  auto client = connect_or_fail(client_options(addresses()));
  ASSERT_NE(client, nullptr);
  AcquireOptions how;
  how.node_timeout = 100ms;  // below the ttl, whatever REDLOCK_TIME_SCALE says
  auto guard = client->acquire_guard("res:orphan", 400ms, how);
  ASSERT_TRUE(guard) << guard.error();
  client.reset();
  auto released = guard->release();
  ASSERT_FALSE(released);
  EXPECT_EQ(released.error().code(), ErrorCode::kShuttingDown);
  // Nothing released it: it expires with its ttl.
  EXPECT_TRUE(
      eventually([&]() -> bool { return count_lock_keys().value_or(-1) == 0; }, scaled(3s)));
}

}  // namespace
}  // namespace redlock::testing
