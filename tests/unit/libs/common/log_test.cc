#include "libs/common/log.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"

namespace onestory {
namespace {

// What one Log call writes to stderr.
std::string Captured(LogFormat format, absl::string_view event,
                     std::initializer_list<LogField> fields) {
  SetLogFormat(format);
  ::testing::internal::CaptureStderr();
  Log(LogLevel::kWarning, event, fields);
  std::string out = ::testing::internal::GetCapturedStderr();
  SetLogFormat(LogFormat::kText);
  return out;
}

TEST(LogTest, TextQuotesValuesThatNeedIt) {
  std::string line = Captured(LogFormat::kText, "redis.disconnected",
                              {{"addr", "127.0.0.1:6379"}, {"reason", "connection \"reset\""}});
  EXPECT_TRUE(absl::StartsWith(line, "ts=")) << line;
  EXPECT_TRUE(absl::EndsWith(line,
                             " level=warning event=redis.disconnected addr=127.0.0.1:6379 "
                             "reason=\"connection \\\"reset\\\"\"\n"))
      << line;
}

TEST(LogTest, JsonIsOneObjectPerLineWithEveryByteEscaped) {
  std::string line =
      Captured(LogFormat::kJson, "grpc.log",
               {{"message", "a \"quoted\"\\ line\nnext\ttab\x01 é \xff end"}, {"n", "3"}});
  EXPECT_TRUE(absl::StartsWith(line, "{\"ts\":\"")) << line;
  EXPECT_TRUE(absl::EndsWith(
      line,
      "\",\"level\":\"warning\",\"event\":\"grpc.log\",\"message\":\"a \\\"quoted\\\"\\\\ "
      "line\\nnext\\ttab\\u0001 é \\ufffd end\",\"n\":\"3\"}\n"))
      << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LogTest, ParsesFormats) {
  LogFormat f = LogFormat::kText;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_TRUE(ParseLogFormat("text", &f));
  EXPECT_EQ(f, LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("JSON", &f));
  EXPECT_FALSE(ParseLogFormat("", &f));
}

}  // namespace
}  // namespace onestory
