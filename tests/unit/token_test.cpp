// Lock tokens: format, uniqueness and a loose look at randomness. The bounds
// are many standard deviations wide: a failure means broken randomness, not
// bad luck.
#include "token.hpp"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace redlock::detail {
namespace {

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

unsigned hex_value(char c) {
  return c <= '9' ? static_cast<unsigned>(c - '0') : static_cast<unsigned>(c - 'a' + 10);
}

TEST(MakeToken, ThirtyTwoLowercaseHexCharacters) {
  for (int i = 0; i < 1000; ++i) {
    const auto token = make_token();
    ASSERT_TRUE(token) << token.error();
    ASSERT_EQ(token->size(), 2 * kTokenBytes);
    ASSERT_EQ(token->size(), 32u);
    for (const char c : *token) {
      ASSERT_TRUE(is_lower_hex(c)) << "token \"" << *token << "\" has '" << c << "'";
    }
  }
}

// What a waiting acquire keeps: the same bytes, in place; a token longer
// than make_token's is refused rather than cut.
TEST(InlineToken, KeepsATokenOfUpToThirtyTwoBytesAndRefusesALongerOne) {
  const auto token = make_token();
  ASSERT_TRUE(token) << token.error();
  const InlineToken kept(*token);
  EXPECT_EQ(kept.view(), *token);
  EXPECT_EQ(kept.str(), *token);
  EXPECT_EQ(InlineToken("tok").view(), "tok");
  EXPECT_EQ(InlineToken("").view(), "");
  const std::string bytes("a\0\xff", 3);
  EXPECT_EQ(InlineToken(bytes).str(), bytes);
  EXPECT_THROW(InlineToken(std::string(2 * kTokenBytes + 1, 'a')), std::length_error);
}

TEST(MakeToken, HundredThousandTokensAreDistinct) {
  constexpr std::size_t kCount = 100000;
  std::unordered_set<std::string> seen;
  seen.reserve(kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    auto token = make_token();
    ASSERT_TRUE(token) << token.error();
    ASSERT_TRUE(seen.insert(std::move(*token)).second) << "duplicate token after " << i;
  }
  EXPECT_EQ(seen.size(), kCount);
}

TEST(MakeToken, BitsLookRandom) {
  constexpr int kTokens = 10000;
  constexpr int kBits = 128;
  std::array<int, 16> digit_count{};  // how often each hex digit appears
  std::array<int, kBits> ones_at{};   // how often each bit position is 1
  long long ones = 0;
  for (int i = 0; i < kTokens; ++i) {
    const auto token = make_token();
    ASSERT_TRUE(token) << token.error();
    for (std::size_t pos = 0; pos < token->size(); ++pos) {
      const unsigned v = hex_value((*token)[pos]);
      ++digit_count[v];
      ones += std::popcount(v);
      for (unsigned b = 0; b < 4; ++b) {
        if ((v >> b) & 1u) ++ones_at[pos * 4 + b];
      }
    }
  }

  // Every digit appears: expected 320000 / 16 = 20000 each (sd ~137).
  for (std::size_t d = 0; d < digit_count.size(); ++d) {
    EXPECT_GT(digit_count[d], 18000) << "hex digit " << d;
    EXPECT_LT(digit_count[d], 22000) << "hex digit " << d;
  }
  // Overall: 1.28M bits, expected half ones (sd ~566); allow 1%.
  constexpr long long kTotal = static_cast<long long>(kTokens) * kBits;
  EXPECT_GT(ones, kTotal / 2 - kTotal / 100) << "of " << kTotal;
  EXPECT_LT(ones, kTotal / 2 + kTotal / 100) << "of " << kTotal;
  // Per position: 10000 samples, expected 5000 (sd 50); allow 10 sd. A stuck
  // bit (always 0 or 1) lands far outside.
  for (std::size_t b = 0; b < ones_at.size(); ++b) {
    EXPECT_GT(ones_at[b], 4500) << "bit " << b;
    EXPECT_LT(ones_at[b], 5500) << "bit " << b;
  }
}

TEST(MakeToken, ConsecutiveTokensShareNoLongRun) {
  // Two CSPRNG outputs agree position by position with chance 1/16; a shared
  // prefix of 8 or more characters (a counter, a clock) would be suspicious.
  auto prev = make_token();
  ASSERT_TRUE(prev) << prev.error();
  for (int i = 0; i < 1000; ++i) {
    auto next = make_token();
    ASSERT_TRUE(next) << next.error();
    std::size_t same = 0;
    while (same < next->size() && (*next)[same] == (*prev)[same]) ++same;
    EXPECT_LT(same, 8u) << *prev << " then " << *next;
    prev = std::move(next);
  }
}

}  // namespace
}  // namespace redlock::detail
