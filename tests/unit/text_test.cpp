// Bytes made printable: names in messages survive any byte.
#include "text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace redlock::detail {
namespace {

TEST(QuoteBytes, KeepsValidUtf8AndEscapesTheRest) {
  EXPECT_EQ(quote_bytes("chatroom:general"), "\"chatroom:general\"");
  EXPECT_EQ(quote_bytes("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");
  EXPECT_EQ(quote_bytes("z\xff"), "\"z\\xff\"");
  EXPECT_EQ(quote_bytes(std::string("a\0b", 3)), "\"a\\x00b\"");
  EXPECT_EQ(quote_bytes("q\"b\\n\n\t\r"), "\"q\\\"b\\\\n\\n\\t\\r\"");
  EXPECT_EQ(quote_bytes("\x7f\x1b"), "\"\\x7f\\x1b\"");
  EXPECT_EQ(quote_bytes(""), "\"\"");
}

TEST(QuoteBytes, InvalidSequencesAreEscapedByteByByte) {
  EXPECT_EQ(quote_bytes("\xc3"), "\"\\xc3\"");                             // truncated
  EXPECT_EQ(quote_bytes("\xc0\xaf"), "\"\\xc0\\xaf\"");                    // overlong
  EXPECT_EQ(quote_bytes("\xed\xa0\x80"), "\"\\xed\\xa0\\x80\"");           // a surrogate
  EXPECT_EQ(quote_bytes("\xf4\x90\x80\x80"), "\"\\xf4\\x90\\x80\\x80\"");  // past U+10FFFF
}

TEST(QuoteBytes, TheOutputIsAlwaysValidUtf8) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_TRUE(valid_utf8(quote_bytes(all)));
  EXPECT_FALSE(valid_utf8(all));
  EXPECT_TRUE(valid_utf8("plain"));
}

}  // namespace
}  // namespace redlock::detail
