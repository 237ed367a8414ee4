// The event loop on its own: posted tasks, the scheduler's timers, deferred
// flushes and shutdown, on a real libuv loop with no sockets.
#include "loop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;

TEST(Loop, ALoopThatNeverRanClosesEverythingItOpened) {
  auto loop = Loop::create(0us);
  ASSERT_TRUE(loop) << loop.error();
  // Work handed to it before it runs is dropped with it.
  (void)(*loop)->schedule(Clock::now() + 1h, [] { FAIL() << "never runs"; });
  ASSERT_TRUE((*loop)->post([] { FAIL() << "never runs"; }));
  auto closed = (*loop)->close();
  EXPECT_TRUE(closed) << closed.error();
}

TEST(Loop, RunsPostedTasksInOrderAndStopsCleanly) {
  auto created = Loop::create(100us);
  ASSERT_TRUE(created) << created.error();
  auto& loop = **created;
  std::vector<int> seen;
  std::promise<void> stopped;
  std::atomic<bool> exited{false};
  ASSERT_TRUE(loop.start([] {}, [&] { stopped.set_value(); }, [&] { exited = true; }, nullptr));
  std::promise<void> done;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(loop.post([&seen, i] { seen.push_back(i); }));
  ASSERT_TRUE(loop.post([&] { done.set_value(); }));
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  loop.stop();
  EXPECT_EQ(stopped.get_future().wait_for(0s), std::future_status::ready);
  EXPECT_TRUE(exited);
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
  auto refused = loop.post([] {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kShuttingDown);
  auto closed = loop.close();
  EXPECT_TRUE(closed) << closed.error();
}

TEST(Loop, TimersFireInTheirOrderAndCancelledOnesNever) {
  auto created = Loop::create(0us);
  ASSERT_TRUE(created) << created.error();
  auto& loop = **created;
  std::vector<int> fired;
  std::promise<void> done;
  ASSERT_TRUE(loop.start(
      [&] {
        const auto now = loop.now();
        loop.schedule(now + 30ms, [&] { fired.push_back(3); });
        const auto never = loop.schedule(now + 20ms, [&] { fired.push_back(-1); });
        loop.schedule(now + 10ms, [&] { fired.push_back(1); });
        loop.schedule(now + 10ms, [&] { fired.push_back(2); });  // same instant: in order
        loop.schedule(now + 40ms, [&] { done.set_value(); });
        loop.cancel(never);
        loop.cancel(0);  // no timer: nothing
      },
      [] {}, nullptr, nullptr));
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  loop.stop();
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
}

TEST(Loop, BlockingCallersCanTellTheLoopThread) {
  auto created = Loop::create(0us);
  ASSERT_TRUE(created) << created.error();
  auto& loop = **created;
  EXPECT_FALSE(loop.on_loop_thread());
  std::promise<bool> on_loop;
  ASSERT_TRUE(loop.start([] {}, [] {}, nullptr, nullptr));
  ASSERT_TRUE(loop.post([&] { on_loop.set_value(loop.on_loop_thread()); }));
  EXPECT_TRUE(on_loop.get_future().get());
  EXPECT_FALSE(loop.on_loop_thread());
  loop.stop();
}

struct CountingFlush final : Flushable {
  int flushes = 0;
  void flush() override { ++flushes; }
};

TEST(Loop, DeferredFlushesRunOncePerIteration) {
  auto created = Loop::create(0us);
  ASSERT_TRUE(created) << created.error();
  auto& loop = **created;
  CountingFlush f;
  std::promise<int> after;
  ASSERT_TRUE(loop.start([] {}, [] {}, nullptr, nullptr));
  ASSERT_TRUE(loop.post([&] {
    for (int i = 0; i < 10; ++i) loop.defer_flush(f);
  }));
  ASSERT_TRUE(loop.post([&] { after.set_value(f.flushes); }));
  // Both tasks may run in one wake-up (then the check phase comes after the
  // second): either way ten requests make at most one flush.
  EXPECT_LE(after.get_future().get(), 1);
  std::promise<int> later;
  ASSERT_TRUE(loop.post([&] { later.set_value(f.flushes); }));
  EXPECT_EQ(later.get_future().get(), 1);
  loop.stop();
}

}  // namespace
}  // namespace redlock::detail
