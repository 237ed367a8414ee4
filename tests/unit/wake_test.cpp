// Wake-on-release, the pure parts: the reference-counted channel table and
// subscribed-mode replies.
#include "wake.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace redlock::detail {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

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

TEST(ChannelTable, ListenersComeAndGoInAnyOrderAndAreListedInIdOrder) {
  ChannelTable t;
  EXPECT_TRUE(t.add("c", 5));
  EXPECT_FALSE(t.add("c", 2));
  EXPECT_FALSE(t.add("c", 9));
  EXPECT_FALSE(t.remove("c", 5));  // the first one goes while others stay
  EXPECT_THAT(t.listeners("c"), ElementsAre(2u, 9u));
  EXPECT_FALSE(t.add("c", 5));
  EXPECT_FALSE(t.add("c", 9));  // still there once
  EXPECT_THAT(t.listeners("c"), ElementsAre(2u, 5u, 9u));
  EXPECT_FALSE(t.remove("c", 9));
  EXPECT_FALSE(t.remove("c", 2));
  EXPECT_THAT(t.listeners("c"), ElementsAre(5u));
  // A second listener once the others all went, then the first goes.
  EXPECT_FALSE(t.add("c", 7));
  EXPECT_THAT(t.listeners("c"), ElementsAre(5u, 7u));
  EXPECT_FALSE(t.remove("c", 5));
  EXPECT_FALSE(t.remove("c", 5));  // not there any more
  EXPECT_THAT(t.listeners("c"), ElementsAre(7u));
  EXPECT_FALSE(t.add("c", 5));
  EXPECT_FALSE(t.remove("c", 7));
  EXPECT_THAT(t.listeners("c"), ElementsAre(5u));
  EXPECT_TRUE(t.remove("c", 5));
  EXPECT_FALSE(t.add("c", 0));  // 0 is no listener
  EXPECT_FALSE(t.contains("c"));
}

TEST(ChannelTable, AKeptChannelStaysSubscribedIdleUntilItExpires) {
  const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);
  ChannelTable t;
  EXPECT_TRUE(t.add("c", 1));
  EXPECT_FALSE(t.remove("c", 1, t0, true));  // kept: no UNSUBSCRIBE
  EXPECT_TRUE(t.contains("c"));
  EXPECT_EQ(t.idle(), 1u);
  EXPECT_THAT(t.listeners("c"), IsEmpty());
  EXPECT_THAT(t.channels(), ElementsAre("c"));  // subscribed again after a reconnect
  EXPECT_FALSE(t.add("c", 2));                  // a new listener needs no SUBSCRIBE
  EXPECT_EQ(t.idle(), 0u);
  EXPECT_THAT(t.expire(t0 + std::chrono::hours(1)), IsEmpty());  // listened to: stays
  EXPECT_FALSE(t.remove("c", 2, t0 + 10ms, true));
  EXPECT_THAT(t.expire(t0 + 9ms), IsEmpty());
  EXPECT_THAT(t.expire(t0 + 10ms), ElementsAre("c"));  // UNSUBSCRIBE now
  EXPECT_FALSE(t.contains("c"));
  EXPECT_EQ(t.idle(), 0u);
  EXPECT_TRUE(t.add("c", 3));
}

TEST(ChannelTable, AnnouncementsAreRememberedWhileTheChannelIsSubscribed) {
  const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);
  ChannelTable t;
  t.heard("c", t0);  // not subscribed: nothing to remember
  EXPECT_FALSE(t.heard_since("c", t0 - 1s));
  EXPECT_TRUE(t.add("c", 1));
  EXPECT_FALSE(t.heard_since("c", t0));
  EXPECT_FALSE(t.remove("c", 1, t0, true));
  t.heard("c", t0 + 5ms);  // idle, still subscribed
  EXPECT_TRUE(t.heard_since("c", t0 + 5ms));
  EXPECT_TRUE(t.heard_since("c", t0));
  EXPECT_FALSE(t.heard_since("c", t0 + 6ms));
  EXPECT_THAT(t.expire(t0), ElementsAre("c"));
  EXPECT_FALSE(t.heard_since("c", t0));
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

}  // namespace
}  // namespace redlock::detail
