// Hash slots against the Redis Cluster specification's vectors and its hash-tag rules.
#include "libs/redis/slot.h"

#include <gtest/gtest.h>

namespace onestory::redis {
namespace {

TEST(Crc16Test, SpecificationVector) {
  // The specification's check value for CRC16-XMODEM.
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
  EXPECT_EQ(Crc16(""), 0);
}

TEST(KeySlotTest, KnownSlots) {
  // Slots as CLUSTER KEYSLOT answers them on Redis 7.0.
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("123456789"), 12739);
  EXPECT_EQ(KeySlot(""), 0);
  EXPECT_EQ(KeySlot("{user1000}.following"), 3443);
  EXPECT_EQ(KeySlot("foo{}{bar}"), 8363);
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), 4015);
}

TEST(KeySlotTest, HashTagPicksTheSlot) {
  EXPECT_EQ(HashTag("{user1000}.following"), "user1000");
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("os:{acme:c:cus_1}:tl"), KeySlot("os:{acme:c:cus_1}:p"));
}

TEST(KeySlotTest, OnlyTheFirstTagCounts) {
  // The first '{' and the first '}' after it.
  EXPECT_EQ(HashTag("foo{bar}{zap}"), "bar");
  EXPECT_EQ(HashTag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
}

TEST(KeySlotTest, EmptyOrUnclosedTagHashesTheWholeKey) {
  EXPECT_EQ(HashTag("foo{}{bar}"), "foo{}{bar}");
  EXPECT_EQ(KeySlot("foo{}{bar}"), Crc16("foo{}{bar}") % kClusterSlots);
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(HashTag("foo{bar"), "foo{bar");
  EXPECT_EQ(HashTag("foo}bar{"), "foo}bar{");
}

}  // namespace
}  // namespace onestory::redis
