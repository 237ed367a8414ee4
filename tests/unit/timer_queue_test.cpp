// The loop's deadlines (TimerQueue): order, cancellation, reuse of slots.
// Fed with values: a fixed instant plus offsets, never a sleep.
#include "timer_queue.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "time_values.hpp"

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;

// Pops everything due at `now`, running each function.
std::size_t run_due(TimerQueue& q, Clock::time_point now) {
  std::size_t ran = 0;
  while (auto fn = q.pop_due(now)) {
    fn();
    ++ran;
  }
  return ran;
}

TEST(TimerQueueTest, TimersComeOutByDeadlineAndInAdditionOrderWhenDueTogether) {
  TimerQueue q;
  std::vector<int> order;
  q.add(t0 + 30ms, [&] { order.push_back(3); });
  q.add(t0 + 10ms, [&] { order.push_back(1); });
  q.add(t0 + 20ms, [&] { order.push_back(21); });
  q.add(t0 + 20ms, [&] { order.push_back(22); });
  q.add(t0 + 20ms, [&] { order.push_back(23); });
  EXPECT_EQ(q.size(), 5U);
  EXPECT_EQ(at(q.next_when()), at(t0 + 10ms));

  EXPECT_EQ(run_due(q, t0 + 9ms), 0U);
  EXPECT_EQ(run_due(q, t0 + 20ms), 4U);
  EXPECT_EQ(order, (std::vector<int>{1, 21, 22, 23}));
  EXPECT_EQ(run_due(q, t0 + 30ms), 1U);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.pop_due(t0 + 1h));
}

// An owned timer (an operation's) runs only while its owner lives, and
// holds the owner while it runs: the function may drop the last other
// reference and still use its object.
TEST(TimerQueueTest, AnOwnedTimerRunsOnlyWhileItsOwnerLivesAndHoldsItMeanwhile) {
  struct Owner {
    int ran = 0;
  };
  TimerQueue q;
  auto kept = std::make_shared<Owner>();
  auto gone = std::make_shared<Owner>();
  int gone_ran = 0;
  long held_during_call = 0;
  Owner* raw = kept.get();
  q.add(t0 + 10ms, std::weak_ptr<const void>(kept), [&, raw] {
    held_during_call = kept.use_count();
    kept.reset();  // the last reference but the timer's own
    ++raw->ran;    // still alive here
    held_during_call += raw->ran;
  });
  q.add(t0 + 10ms, std::weak_ptr<const void>(gone), [&] { ++gone_ran; });
  int plain = 0;
  q.add(t0 + 10ms, [&] { ++plain; });
  gone.reset();
  EXPECT_EQ(run_due(q, t0 + 10ms), 3U);  // handed out, whether they run or not
  EXPECT_EQ(held_during_call, 3);        // the caller's and the timer's, then ran once
  EXPECT_FALSE(kept);
  EXPECT_EQ(gone_ran, 0);
  EXPECT_EQ(plain, 1);
  EXPECT_TRUE(q.empty());
}

TEST(TimerQueueTest, ACancelledTimerNeverRunsAndCancellingAgainDoesNothing) {
  TimerQueue q;
  int ran = 0;
  const auto a = q.add(t0 + 10ms, [&] { ran += 1; });
  const auto b = q.add(t0 + 20ms, [&] { ran += 10; });
  EXPECT_NE(a, 0U);
  EXPECT_NE(a, b);
  EXPECT_TRUE(q.cancel(a));
  EXPECT_FALSE(q.cancel(a));
  EXPECT_FALSE(q.cancel(0));
  EXPECT_EQ(at(q.next_when()), at(t0 + 20ms));
  EXPECT_EQ(run_due(q, t0 + 1s), 1U);
  EXPECT_EQ(ran, 10);
  // b ran: cancelling it now does nothing either.
  EXPECT_FALSE(q.cancel(b));
}

TEST(TimerQueueTest, AnIdOfATimerThatRanDoesNotCancelTheTimerThatReusedItsSlot) {
  TimerQueue q;
  const auto old_id = q.add(t0, [] {});
  ASSERT_EQ(run_due(q, t0), 1U);
  bool ran = false;
  const auto new_id = q.add(t0 + 5ms, [&] { ran = true; });
  EXPECT_NE(new_id, old_id);
  EXPECT_FALSE(q.cancel(old_id));
  EXPECT_EQ(q.size(), 1U);
  EXPECT_EQ(run_due(q, t0 + 5ms), 1U);
  EXPECT_TRUE(ran);
}

TEST(TimerQueueTest, CancelAndClearDestroyTheFunctionAndWhatItHolds) {
  TimerQueue q;
  auto held = std::make_shared<int>(1);
  const auto id = q.add(t0, [held] {});
  q.add(t0, [held] {});
  EXPECT_EQ(held.use_count(), 3);
  q.cancel(id);
  EXPECT_EQ(held.use_count(), 2);
  q.clear();
  EXPECT_EQ(held.use_count(), 1);
  EXPECT_TRUE(q.empty());
}

// What a function holds may touch the queue while it is destroyed (an
// operation's last reference going with its timer): the queue is consistent
// by then.
TEST(TimerQueueTest, AFunctionDestroyedOnCancelMayCancelAndAddTimers) {
  struct OnDestroy {
    std::function<void()> fn;
    ~OnDestroy() {
      if (fn) fn();
    }
  };
  TimerQueue q;
  const auto other = q.add(t0 + 1s, [] {});
  auto hook = std::make_shared<OnDestroy>();
  TimerQueue::Id added = 0;
  hook->fn = [&] {
    q.cancel(other);
    added = q.add(t0 + 2s, [] {});
  };
  const auto id = q.add(t0, [hook] {});
  hook.reset();
  EXPECT_TRUE(q.cancel(id));
  EXPECT_NE(added, 0U);
  EXPECT_EQ(q.size(), 1U);
  EXPECT_EQ(q.next_id(), added);

  auto hook2 = std::make_shared<OnDestroy>();
  hook2->fn = [&] { added = q.add(t0, [] {}); };
  q.add(t0, [hook2] {});
  hook2.reset();
  q.clear();  // the hook's new timer lands in the emptied queue
  EXPECT_EQ(q.size(), 1U);
  EXPECT_EQ(q.next_id(), added);
}

// Against a reference model (a map ordered by deadline and addition), under
// a long random mix of adds, cancels (of live, run and cancelled ids) and
// pops: the same timers run, in the same order.
TEST(TimerQueueTest, ARandomMixMatchesAnOrderedMap) {
  TimerQueue q;
  std::map<std::pair<Clock::time_point, std::uint64_t>, int> model;
  std::map<TimerQueue::Id, std::pair<Clock::time_point, std::uint64_t>> live;
  std::vector<TimerQueue::Id> ever;
  std::mt19937_64 rng(12345);
  std::vector<int> ran;
  std::vector<int> expected;
  std::uint64_t order = 0;
  int next_value = 0;
  Clock::time_point now = t0;
  for (int step = 0; step < 20000; ++step) {
    const auto dice = rng() % 10;
    if (dice < 5) {
      const auto when = now + std::chrono::milliseconds(rng() % 50);
      const int value = next_value++;
      const auto id = q.add(when, [&ran, value] { ran.push_back(value); });
      model.emplace(std::make_pair(when, order), value);
      live.emplace(id, std::make_pair(when, order));
      ++order;
      ever.push_back(id);
    } else if (dice < 8 && !ever.empty()) {
      const auto id = ever[rng() % ever.size()];
      const auto it = live.find(id);
      EXPECT_EQ(q.cancel(id), it != live.end());
      if (it != live.end()) {
        model.erase(it->second);
        live.erase(it);
      }
    } else {
      now += std::chrono::milliseconds(rng() % 20);
      run_due(q, now);
      while (!model.empty() && model.begin()->first.first <= now) {
        expected.push_back(model.begin()->second);
        model.erase(model.begin());
      }
      for (auto it = live.begin(); it != live.end();) {
        it = it->second.first <= now ? live.erase(it) : std::next(it);
      }
    }
    ASSERT_EQ(q.size(), model.size()) << "step " << step;
    if (!model.empty()) {
      ASSERT_EQ(at(q.next_when()), at(model.begin()->first.first));
    }
  }
  EXPECT_EQ(ran, expected);
  EXPECT_GT(ran.size(), 1000U);
}

}  // namespace
}  // namespace redlock::detail
