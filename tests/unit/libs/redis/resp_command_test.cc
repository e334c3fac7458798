#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/redis/resp_connection.h"

namespace onestory::redis {
namespace {

// What hiredis writes for argv: the format Redis reads, and the one AppendCommand replaced.
std::string HiredisFormat(const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  int len = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  std::string out(cmd, static_cast<size_t>(len));
  redisFreeCommand(cmd);
  return out;
}

TEST(AppendCommandTest, WritesAnArrayOfBulkStrings) {
  std::string out;
  AppendCommand({"HGET", "os:{t:c:cus_1}:p", "n"}, &out);
  EXPECT_EQ(out, "*3\r\n$4\r\nHGET\r\n$16\r\nos:{t:c:cus_1}:p\r\n$1\r\nn\r\n");
}

TEST(AppendCommandTest, MatchesHiredisForEmptyBinaryAndLongArguments) {
  std::string binary("a\0b\r\n\xff", 6);
  std::vector<std::vector<std::string>> commands = {
      {"PING"},
      {"SET", "k", ""},
      {"XADD", "s", "*", "e", binary},
      {"SET", "big", std::string(100000, 'x')},
      std::vector<std::string>(1000, "arg"),
  };
  for (const auto& argv : commands) {
    std::string out;
    AppendCommand(argv, &out);
    EXPECT_EQ(out, HiredisFormat(argv)) << argv[0] << " with " << argv.size() << " arguments";
  }
}

TEST(AppendCommandTest, AppendsAfterWhatTheBufferHolds) {
  std::string out = "*1\r\n$4\r\nPING\r\n";
  AppendCommand({"MULTI"}, &out);
  AppendCommand({"EXEC"}, &out);
  EXPECT_EQ(out, "*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nEXEC\r\n");
}

}  // namespace
}  // namespace onestory::redis
