// The blocking calls' hand-off from the loop thread, and when they spin.
#include "handoff.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;

TEST(SpinGate, SpinsWhileRecentWaitsTookAtMostHalfTheBudget) {
  SpinGate gate(100us);
  EXPECT_EQ(gate.spin(), 100us);  // nothing seen yet
  for (int i = 0; i < 30; ++i) gate.record(40us);
  EXPECT_EQ(gate.spin(), 100us);
  for (int i = 0; i < 30; ++i) gate.record(70us);  // would mostly end past the budget
  EXPECT_EQ(gate.spin(), 0us);
}

TEST(SpinGate, SleepsAtOnceWhenWaitsAreLongerAndSpinsAgainWhenTheyShorten) {
  SpinGate gate(100us);
  for (int i = 0; i < 30; ++i) gate.record(300us);
  EXPECT_EQ(gate.spin(), 0us);
  // One short wait does not reopen it; a run of them does.
  gate.record(10us);
  EXPECT_EQ(gate.spin(), 0us);
  for (int i = 0; i < 30; ++i) gate.record(10us);
  EXPECT_EQ(gate.spin(), 100us);
}

TEST(SpinGate, AZeroBudgetNeverSpins) {
  SpinGate gate(0us);
  EXPECT_EQ(gate.spin(), 0us);
  gate.record(1us);
  EXPECT_EQ(gate.spin(), 0us);
}

TEST(SpinGate, ANegativeWaitCountsAsNone) {
  SpinGate gate(100us);
  for (int i = 0; i < 30; ++i) gate.record(-5ms);
  EXPECT_EQ(gate.spin(), 100us);
}

TEST(Handoff, AResultPutBeforeTheWaitIsReturnedWithoutSpinning) {
  Handoff<std::string> handoff;
  handoff.callback()(std::string("seven"));
  const auto got = handoff.wait(10ms);
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(*got, "seven");
}

TEST(Handoff, AResultFromAnotherThreadWakesASpinningOrSleepingWaiter) {
  for (const auto spin : {0us, 50us, 10000us}) {
    Handoff<std::string> handoff;
    std::thread producer([put = handoff.callback()] {
      std::this_thread::sleep_for(2ms);
      put(std::string("forty-two"));
    });
    const auto got = handoff.wait(spin);
    producer.join();
    ASSERT_TRUE(got) << spin.count();
    EXPECT_EQ(*got, "forty-two") << spin.count();
  }
}

}  // namespace
}  // namespace redlock::detail
