// Wake-on-release, the pure parts: channel names, the reference-counted
// channel table, subscribed-mode replies, and when a failed round retries.
#include "wake.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(ReleaseChannel, IsThePrefixAndTheKeyVerbatim) {
  EXPECT_EQ(release_channel("res:a"), "redlock:released:res:a");
  EXPECT_EQ(release_channel(""), "redlock:released:");
  const std::string binary("a\0b\r\n", 5);
  EXPECT_EQ(release_channel(binary), "redlock:released:" + binary);
}

TEST(ReleaseChannel, TheReleaseScriptPublishesOnTheSamePrefix) {
  EXPECT_NE(kReleaseScript.body.find("\"" + std::string(kReleaseChannelPrefix) + "\" .. key"),
            std::string_view::npos);
  // pcall: a denied PUBLISH must not fail the release.
  EXPECT_NE(kReleaseScript.body.find("redis.pcall(\"publish\""), std::string_view::npos);
  EXPECT_EQ(kReleaseScript.body.find("redis.call(\"publish\""), std::string_view::npos);
}

// ---------------------------------------------------------------- ChannelTable

TEST(ChannelTable, FirstListenerSubscribesLastOneUnsubscribes) {
  ChannelTable t;
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(t.add("c", 1));   // SUBSCRIBE
  EXPECT_FALSE(t.add("c", 2));  // already subscribed
  EXPECT_FALSE(t.add("c", 3));
  EXPECT_THAT(t.listeners("c"), ElementsAre(1u, 2u, 3u));
  EXPECT_FALSE(t.remove("c", 2));
  EXPECT_FALSE(t.remove("c", 1));
  EXPECT_TRUE(t.contains("c"));
  EXPECT_TRUE(t.remove("c", 3));  // UNSUBSCRIBE
  EXPECT_FALSE(t.contains("c"));
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(t.add("c", 4));  // and again after that
}

TEST(ChannelTable, DuplicatesAndUnknownPairsAreNoOps) {
  ChannelTable t;
  EXPECT_TRUE(t.add("c", 1));
  EXPECT_FALSE(t.add("c", 1));
  EXPECT_THAT(t.listeners("c"), ElementsAre(1u));
  EXPECT_FALSE(t.remove("c", 2));
  EXPECT_FALSE(t.remove("other", 1));
  EXPECT_TRUE(t.remove("c", 1));  // one add of the pair counted once
  EXPECT_FALSE(t.remove("c", 1));
  EXPECT_THAT(t.listeners("c"), IsEmpty());
}

TEST(ChannelTable, OneListenerOnSeveralChannels) {
  ChannelTable t;
  EXPECT_TRUE(t.add("b", 7));
  EXPECT_TRUE(t.add("a", 7));
  EXPECT_TRUE(t.add("a", 8) == false);
  EXPECT_THAT(t.channels(), ElementsAre("a", "b"));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.remove("b", 7));
  EXPECT_FALSE(t.remove("a", 7));
  EXPECT_THAT(t.channels(), ElementsAre("a"));
  EXPECT_THAT(t.listeners("a"), ElementsAre(8u));
}

// ------------------------------------------------------------------ read_push

Reply bulk(std::string s) {
  Reply r;
  r.type = Reply::Type::kString;
  r.str = std::move(s);
  return r;
}

Reply array(std::vector<Reply> e) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements = std::move(e);
  return r;
}

Reply integer(long long v) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = v;
  return r;
}

TEST(ReadPush, MessageSubscribeUnsubscribe) {
  auto e = read_push(array({bulk("message"), bulk("redlock:released:x"), bulk("")}));
  EXPECT_EQ(e.kind, PushEvent::Kind::kMessage);
  EXPECT_EQ(e.channel, "redlock:released:x");
  e = read_push(array({bulk("subscribe"), bulk("ch"), integer(1)}));
  EXPECT_EQ(e.kind, PushEvent::Kind::kSubscribe);
  EXPECT_EQ(e.channel, "ch");
  e = read_push(array({bulk("unsubscribe"), bulk("ch"), integer(0)}));
  EXPECT_EQ(e.kind, PushEvent::Kind::kUnsubscribe);
}

TEST(ReadPush, ErrorsAndAnythingElse) {
  Reply err;
  err.type = Reply::Type::kError;
  err.str = "NOPERM this user has no permissions to access one of the channels";
  auto e = read_push(err);
  EXPECT_EQ(e.kind, PushEvent::Kind::kError);
  EXPECT_EQ(e.error, err.str);
  // A pattern message has four elements; a PONG is two; a status is no array.
  EXPECT_EQ(read_push(array({bulk("pmessage"), bulk("p*"), bulk("p1"), bulk("")})).kind,
            PushEvent::Kind::kOther);
  EXPECT_EQ(read_push(array({bulk("pong"), bulk("")})).kind, PushEvent::Kind::kOther);
  Reply ok;
  ok.type = Reply::Type::kStatus;
  ok.str = "OK";
  EXPECT_EQ(read_push(ok).kind, PushEvent::Kind::kOther);
  EXPECT_EQ(read_push(array({integer(1), bulk("c"), bulk("")})).kind, PushEvent::Kind::kOther);
  EXPECT_EQ(read_push(array({bulk("whatever"), bulk("c"), bulk("")})).kind,
            PushEvent::Kind::kOther);
}

TEST(SubscriptionCommands, ChunksChannelsIntoCommands) {
  EXPECT_THAT(subscription_commands("SUBSCRIBE", {}), IsEmpty());
  EXPECT_THAT(subscription_commands("SUBSCRIBE", {"a"}),
              ElementsAre("*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n"));
  const auto cmds = subscription_commands("UNSUBSCRIBE", {"a", "b", "c"}, 2);
  EXPECT_THAT(cmds, ElementsAre("*3\r\n$11\r\nUNSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n",
                                "*2\r\n$11\r\nUNSUBSCRIBE\r\n$1\r\nc\r\n"));
}

// ----------------------------------------------------------------- plan_retry

const Clock::time_point kNow = Clock::time_point() + std::chrono::hours(1);

RetryDecision retry_after(milliseconds d) { return {d, false}; }
RetryDecision exhausted() { return {std::nullopt, true}; }
RetryDecision stop() { return {std::nullopt, false}; }

const FailedRound kHeld{};                     // every node refused, nothing announced
const FailedRound kWoken{true, false, 1ms};    // an announcement during the round
const FailedRound kSawFree{false, true, 1ms};  // a node granted it (a split vote)

TEST(PlanRetry, OutsideAContestTheJitteredDelayStands) {
  for (const auto& round : {kHeld, kWoken, kSawFree}) {
    const auto p = plan_retry(retry_after(250ms), true, 0, round, 250ms, 0.5, kNow, kNow + 10s);
    ASSERT_TRUE(p.retry_at);
    EXPECT_EQ(*p.retry_at, kNow + 250ms);
    EXPECT_FALSE(p.give_up_at);
    EXPECT_FALSE(p.contest);
  }
}

TEST(PlanRetry, InAContestAWokenOrSplitRoundRetriesAfterAShortRandomPause) {
  for (const auto& round : {kWoken, kSawFree}) {
    auto p = plan_retry(retry_after(10s), true, kContestRetries, round, 10s, 0.0, kNow, kNow + 60s);
    ASSERT_TRUE(p.retry_at);
    EXPECT_EQ(*p.retry_at, kNow);
    EXPECT_TRUE(p.contest);
    // Half of the first window, max(2 ms, 4 x the round's 1 ms).
    p = plan_retry(retry_after(10s), true, kContestRetries, round, 10s, 0.5, kNow, kNow + 60s);
    ASSERT_TRUE(p.retry_at);
    EXPECT_EQ(*p.retry_at, kNow + 2ms);
  }
  // A round that found the lock held on every node ends the contest.
  const auto p = plan_retry(retry_after(10s), true, 3, kHeld, 10s, 0.5, kNow, kNow + 60s);
  EXPECT_FALSE(p.contest);
  EXPECT_EQ(*p.retry_at, kNow + 10s);
}

TEST(PlanRetry, ContestWindowsDoubleAndStayWithinTheRetryDelay) {
  EXPECT_EQ(contest_window(0, 100us, 10s), 2ms);  // at least 2 ms
  EXPECT_EQ(contest_window(0, 3ms, 10s), 12ms);   // 4 x the round
  EXPECT_EQ(contest_window(1, 3ms, 10s), 24ms);
  EXPECT_EQ(contest_window(4, 3ms, 10s), 192ms);
  EXPECT_EQ(contest_window(4, 3ms, 50ms), 50ms);
  EXPECT_EQ(contest_window(0, 3ms, 0ms), 0ms);
  EXPECT_EQ(contest_window(30, 1s, std::chrono::hours(1)), std::chrono::hours(1));
  // The k-th retry of a contest: kContestRetries left is the first (k = 0).
  const auto last = plan_retry(retry_after(10s), true, 1, kSawFree, 10s, 0.999, kNow, kNow + 60s);
  ASSERT_TRUE(last.retry_at);
  EXPECT_LE(*last.retry_at, kNow + contest_window(kContestRetries - 1, 1ms, 10s));
  EXPECT_GT(*last.retry_at, kNow + contest_window(kContestRetries - 2, 1ms, 10s));
}

TEST(PlanRetry, AContestPauseIsNeverLaterThanTheJitteredDelay) {
  const auto p =
      plan_retry(retry_after(1ms), true, kContestRetries, kWoken, 1ms, 0.99, kNow, kNow + 60s);
  ASSERT_TRUE(p.retry_at);
  EXPECT_LE(*p.retry_at, kNow + 1ms);
}

TEST(PlanRetry, NotListeningNeverContestsNorWaitsForAnnouncements) {
  auto p =
      plan_retry(retry_after(250ms), false, kContestRetries, kWoken, 250ms, 0.0, kNow, kNow + 10s);
  ASSERT_TRUE(p.retry_at);
  EXPECT_EQ(*p.retry_at, kNow + 250ms);
  EXPECT_FALSE(p.contest);
  p = plan_retry(exhausted(), false, 0, kHeld, 10s, 0.5, kNow, kNow + 10s);
  EXPECT_FALSE(p.retry_at);
  EXPECT_FALSE(p.give_up_at);
}

TEST(PlanRetry, WhenTheDelayWouldPassMaxWaitItWaitsForAnAnnouncementUntilTheDeadline) {
  auto p = plan_retry(exhausted(), true, 0, kHeld, 10s, 0.5, kNow, kNow + 3s);
  EXPECT_FALSE(p.retry_at);
  ASSERT_TRUE(p.give_up_at);
  EXPECT_EQ(*p.give_up_at, kNow + 3s);
  // In a contest it still contests, within the deadline.
  p = plan_retry(exhausted(), true, kContestRetries, kWoken, 10s, 0.5, kNow, kNow + 3s);
  ASSERT_TRUE(p.retry_at);
  EXPECT_EQ(*p.retry_at, kNow + 2ms);  // half of max(2 ms, 4 x 1 ms)
  EXPECT_TRUE(p.contest);
  // A pause that would end past the deadline: wait for an announcement.
  p = plan_retry(exhausted(), true, kContestRetries, kWoken, 10s, 0.5, kNow, kNow + 1ms);
  EXPECT_FALSE(p.retry_at);
  ASSERT_TRUE(p.give_up_at);
  EXPECT_EQ(*p.give_up_at, kNow + 1ms);
}

TEST(PlanRetry, NothingAfterTheDeadlineOrTheLastAttempt) {
  for (const auto& round : {kHeld, kWoken, kSawFree}) {
    for (int contest : {0, kContestRetries}) {
      auto p = plan_retry(exhausted(), true, contest, round, 10s, 0.5, kNow, kNow);
      EXPECT_FALSE(p.retry_at);
      EXPECT_FALSE(p.give_up_at);
      p = plan_retry(exhausted(), true, contest, round, 10s, 0.5, kNow + 1s, kNow);
      EXPECT_FALSE(p.retry_at);
      EXPECT_FALSE(p.give_up_at);
      // max_attempts reached, or a try-lock: next_retry said stop.
      p = plan_retry(stop(), true, contest, round, 10s, 0.5, kNow, kNow + 10s);
      EXPECT_FALSE(p.retry_at);
      EXPECT_FALSE(p.give_up_at);
    }
  }
}

TEST(WaitDeadline, StartPlusMaxWaitOrNone) {
  EXPECT_EQ(wait_deadline(kNow, 1500ms), kNow + 1500ms);
  EXPECT_EQ(wait_deadline(kNow, 0ms), Clock::time_point::max());
  EXPECT_EQ(wait_deadline(kNow, milliseconds::max()), Clock::time_point::max());
  // Larger than what is left of the clock's range: no overflow.
  EXPECT_EQ(wait_deadline(
                kNow, std::chrono::duration_cast<milliseconds>(std::chrono::hours(24 * 365 * 300))),
            Clock::time_point::max());
}

}  // namespace
}  // namespace redlock::detail
