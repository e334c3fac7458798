// Which arguments of a command are keys, and the slot a call goes to on Redis Cluster.
#include "libs/redis/command_keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "libs/redis/slot.h"

namespace onestory::redis {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CommandKeysTest, Rules) {
  EXPECT_THAT(*CommandKeys({"HGET", "h", "f"}), ElementsAre("h"));
  EXPECT_THAT(*CommandKeys({"hget", "h", "f"}), ElementsAre("h"));
  EXPECT_THAT(*CommandKeys({"DEL", "a", "b"}), ElementsAre("a", "b"));
  EXPECT_THAT(*CommandKeys({"MSET", "a", "1", "b", "2"}), ElementsAre("a", "b"));
  EXPECT_THAT(*CommandKeys({"FCALL", "f_v1", "2", "k1", "k2", "arg"}), ElementsAre("k1", "k2"));
  EXPECT_THAT(*CommandKeys({"FCALL_RO", "f_v1", "0", "arg"}), ElementsAre());
  EXPECT_THAT(*CommandKeys({"XREAD", "COUNT", "5", "STREAMS", "s1", "s2", "0", "0"}),
              ElementsAre("s1", "s2"));
  EXPECT_THAT(*CommandKeys({"PING"}), ElementsAre());
  EXPECT_THAT(*CommandKeys({"SLOWLOG", "GET", "10"}), ElementsAre());
  EXPECT_THAT(*CommandKeys({"FUNCTION", "LOAD", "code"}), ElementsAre());
}

TEST(CommandKeysTest, RefusesWhatItCannotRoute) {
  absl::StatusOr<std::vector<std::string>> unknown = CommandKeys({"OBJECT", "ENCODING", "k"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("OBJECT"));
  EXPECT_EQ(CommandKeys({"FCALL", "f", "3", "k1"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommandKeys({"FCALL", "f", "x"}).status().code(), absl::StatusCode::kInvalidArgument);
  // All Lua is the function library: a script sent with EVAL has no route.
  for (const char* eval : {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"}) {
    EXPECT_EQ(CommandKeys({eval, "script", "1", "k"}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << eval;
  }
  EXPECT_EQ(CommandKeys({"GET"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommandKeys({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommandKeys({"XREAD", "STREAMS", "s1"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IsWriteCommandTest, ReadsAndServerCommandsAreNamedEverythingElseWrites) {
  for (const char* write :
       {"FCALL", "fcall", "XADD",   "HSET",  "HSETNX",  "ZADD",       "DEL",  "UNLINK", "ZINCRBY",
        "ZREM",  "XDEL",  "XTRIM",  "SET",   "HDEL",    "SADD",       "SREM", "EXPIRE", "PEXPIRE",
        "INCR",  "RPUSH", "GETDEL", "GETEX", "RESTORE", "XREADGROUP", "MSET"}) {
    EXPECT_TRUE(IsWriteCommand({write, "k"})) << write;
  }
  for (const char* read : {"FCALL_RO", "fcall_ro", "GET", "HGETALL", "XRANGE", "XREAD", "ZRANGE",
                           "EXISTS", "MGET", "TTL", "PING", "INFO", "CLUSTER", "FUNCTION", "ASKING",
                           "WAIT", "READONLY", "FLUSHALL", "SCAN"}) {
    EXPECT_FALSE(IsWriteCommand({read, "k"})) << read;
  }
  // Never guessed: a command outside the list is confirmed as a write.
  EXPECT_TRUE(IsWriteCommand({"OBJECT", "ENCODING", "k"}));
  EXPECT_TRUE(IsWriteCommand({}));
}

TEST(CommandSlotTest, OneSlotPerCall) {
  EXPECT_EQ(*CommandSlot({"GET", "foo"}), 12182);
  EXPECT_EQ(*CommandSlot({"PING"}), kAnySlot);
  EXPECT_EQ(*CommandSlot({"FCALL", "f", "2", "os:{t:c:1}:a", "os:{t:c:1}:b"}), KeySlot("t:c:1"));
}

TEST(CommandSlotTest, KeysOfTwoSlotsAreRefusedByName) {
  absl::StatusOr<int> slot = CommandSlot({"FCALL", "f", "2", "os:{t:c:1}:a", "os:{t:c:2}:a"});
  ASSERT_EQ(slot.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(slot.status().message(), HasSubstr("os:{t:c:1}:a"));
  EXPECT_THAT(slot.status().message(), HasSubstr("os:{t:c:2}:a"));
  EXPECT_EQ(CommandSlot({"DEL", "foo", "bar"}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace onestory::redis
