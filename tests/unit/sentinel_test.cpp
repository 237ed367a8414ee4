// Reading +switch-master announcements: only a well-formed one about our
// master moves the node.
#include "sentinel.hpp"

#include <gtest/gtest.h>

namespace redlock::detail {
namespace {

TEST(SwitchMaster, AWellFormedAnnouncementGivesTheNewAddress) {
  auto moved = parse_switch_master("mymaster 127.0.0.1 6379 127.0.0.2 6380", "mymaster");
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->host, "127.0.0.2");
  EXPECT_EQ(moved->port, 6380);
  auto v6 = parse_switch_master("m ::1 6379 ::2 7000", "m");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::2");
}

TEST(SwitchMaster, AnotherMastersAnnouncementIsIgnored) {
  EXPECT_FALSE(parse_switch_master("other 127.0.0.1 6379 127.0.0.2 6380", "mymaster"));
  EXPECT_FALSE(parse_switch_master("mymaster2 127.0.0.1 6379 127.0.0.2 6380", "mymaster"));
}

TEST(SwitchMaster, AMalformedPortOrAddressMovesNothing) {
  for (const char* text : {
           "mymaster 127.0.0.1 6379 127.0.0.2 notaport",
           "mymaster 127.0.0.1 6379 127.0.0.2 0",
           "mymaster 127.0.0.1 6379 127.0.0.2 65536",
           "mymaster 127.0.0.1 6379 127.0.0.2 6380x",
           "mymaster 127.0.0.1 6379 127.0.0.2 -1",
           "mymaster 127.0.0.1 6379 not-an-ip 6380",
           "mymaster 127.0.0.1 6379 127.0.0.2",
           "mymaster 127.0.0.1 6379 127.0.0.2 6380 extra",
           "",
       }) {
    EXPECT_FALSE(parse_switch_master(text, "mymaster")) << text;
  }
}

}  // namespace
}  // namespace redlock::detail
