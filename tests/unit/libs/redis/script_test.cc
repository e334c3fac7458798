#include "libs/redis/script.h"

#include <string>

#include "gtest/gtest.h"

namespace onestory::redis {
namespace {

// Vectors from FIPS 180-2 appendix A and the NIST SHA-1 examples.
TEST(Sha1HexTest, EmptyString) {
  EXPECT_EQ(Sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST(Sha1HexTest, Abc) { EXPECT_EQ(Sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d"); }

TEST(Sha1HexTest, FiftySixByteTwoBlockMessage) {
  EXPECT_EQ(Sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(Sha1HexTest, OneMillionA) {
  EXPECT_EQ(Sha1Hex(std::string(1000000, 'a')), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

// Lengths around the padding boundaries (55 bytes fits one block; 56 needs two), checked against
// coreutils sha1sum.
TEST(Sha1HexTest, PaddingBoundaries) {
  EXPECT_EQ(Sha1Hex(std::string(55, 'a')), "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  EXPECT_EQ(Sha1Hex(std::string(56, 'a')), "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  EXPECT_EQ(Sha1Hex(std::string(63, 'a')), "03f09f5b158a7a8cdad920bddc29b81c18a551f5");
  EXPECT_EQ(Sha1Hex(std::string(64, 'a')), "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

TEST(Sha1HexTest, HighBytesAndNul) {
  // printf '\x00\xff\x80' | sha1sum
  EXPECT_EQ(Sha1Hex(std::string("\x00\xff\x80", 3)), "e4bc8a01806054986edd720593bc12f760eca5b9");
}

TEST(Sha1HexTest, IsFortyLowerCaseHexDigits) {
  std::string h = Sha1Hex("return redis.call('GET', KEYS[1])");
  ASSERT_EQ(h.size(), 40u);
  for (char c : h) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << h;
}

TEST(ScriptTest, KeepsNameAndBodyAndHashesTheBody) {
  Script s("test.get", "return redis.call('GET', KEYS[1])");
  EXPECT_EQ(s.name(), "test.get");
  EXPECT_EQ(s.body(), "return redis.call('GET', KEYS[1])");
  EXPECT_EQ(s.sha1(), Sha1Hex("return redis.call('GET', KEYS[1])"));
}

TEST(ScriptTest, Sha1IsWhatScriptLoadReturns) {
  // The SHA-1 of "return 1", as redis-cli SCRIPT LOAD "return 1" prints it.
  EXPECT_EQ(Script("one", "return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

}  // namespace
}  // namespace onestory::redis
