// The key layout: every key of one resource in one hash slot, and no name,
// whatever its bytes, reaching a key of another purpose or resource.
#include "keys.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

namespace redlock::detail {
namespace {

TEST(Keys, TheDocumentedForms) {
  EXPECT_EQ(lock_key("orders:42"), "redlock:{orders:42}:lock:orders:42");
  EXPECT_EQ(fence_key("orders:42"), "redlock:{orders:42}:fence:orders:42");
  EXPECT_EQ(release_channel("orders:42"), "redlock:{orders:42}:released:orders:42");
  // A name's own hash tag is kept: its lock lies with the user's own keys.
  EXPECT_EQ(lock_key("{user42}:cart"), "redlock:{user42}:lock:{user42}:cart");
  // "%" and "}" cannot end the tag early.
  EXPECT_EQ(lock_key("a}b%c"), "redlock:{a%7Db%25c}:lock:a}b%c");
  EXPECT_EQ(hash_tag("x{}y"), "x{%7Dy");  // an empty {} is no tag
  EXPECT_EQ(hash_tag("a{b"), "a{b");
}

TEST(Keys, InternalNamesCannotReachInternalKeys) {
  // A lock named like another resource's fence counter or channel is a lock.
  EXPECT_NE(lock_key("redlock:{w}:fence:w"), fence_key("w"));
  EXPECT_NE(lock_key("redlock:fence:w"), fence_key("w"));
  EXPECT_NE(fence_key("q"), lock_key(fence_key("q")));
  EXPECT_NE(lock_key("q"), release_channel("q"));
}

TEST(Keys, RandomNamesNeverCollideAcrossPurposesOrResources) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> len(0, 12);
  // Few distinct bytes, rich in the layout's own characters.
  const std::string alphabet = "{}:%ab\\\xff";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::set<std::string> names;
  std::set<std::string> keys;
  for (int i = 0; i < 20000; ++i) {
    std::string name;
    for (int n = len(rng); n > 0; --n) name += alphabet[pick(rng)];
    if (!names.insert(name).second) continue;
    for (const auto& key : {lock_key(name), fence_key(name), release_channel(name)}) {
      EXPECT_TRUE(keys.insert(key).second) << "collision on " << key;
    }
  }
}

TEST(Keys, EveryKeyOfAResourceIsInOneSlot) {
  for (const std::string name : {"orders:42", "{user42}:cart", "a}b", "x{}y", "", "z\xff"}) {
    const auto slot = key_slot(lock_key(name));
    EXPECT_EQ(key_slot(fence_key(name)), slot) << name;
    EXPECT_EQ(key_slot(release_channel(name)), slot) << name;
  }
  // A shared tag: one slot, the user's own keys' slot.
  EXPECT_EQ(key_slot(lock_key("{user42}:cart")), key_slot(lock_key("{user42}:wishlist")));
  EXPECT_EQ(key_slot(lock_key("{user42}:cart")), key_slot("{user42}:anything"));
}

TEST(Keys, SlotsAreRedisClusters) {
  // The examples of the Redis Cluster specification.
  EXPECT_EQ(key_slot("123456789"), 0x31C3u % 16384u);
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));  // {} is empty: the whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
}

}  // namespace
}  // namespace redlock::detail
