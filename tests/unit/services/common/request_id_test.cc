#include "services/common/request_id.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace onestory::service {
namespace {

TEST(RequestIdTest, TakesTheCallersIdWhenItIsSafeToLog) {
  EXPECT_EQ(RequestIdFromHeaders("ticket-123", ""), "ticket-123");
  EXPECT_EQ(
      RequestIdFromHeaders("a.b_c:d-E9", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
      "a.b_c:d-E9");
  // Spaces, quotes, newlines (log injection) or over 128 characters: not used.
  EXPECT_EQ(RequestIdFromHeaders("two words", ""), "");
  EXPECT_EQ(RequestIdFromHeaders("x\nlevel=error", ""), "");
  EXPECT_EQ(RequestIdFromHeaders(std::string(129, 'a'), ""), "");
  EXPECT_EQ(RequestIdFromHeaders(std::string(128, 'a'), ""), std::string(128, 'a'));
}

TEST(RequestIdTest, TakesTheTraceIdOfAW3cTraceparent) {
  EXPECT_EQ(RequestIdFromHeaders("", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  // A bad x-request-id falls back to the traceparent.
  EXPECT_EQ(
      RequestIdFromHeaders("bad id", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
      "4bf92f3577b34da6a3ce929d0e0e4736");
  // All-zero trace id, upper case, wrong lengths, version ff: invalid per the spec.
  EXPECT_EQ(RequestIdFromHeaders("", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            "");
  EXPECT_EQ(RequestIdFromHeaders("", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            "");
  EXPECT_EQ(RequestIdFromHeaders("", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"), "");
  EXPECT_EQ(RequestIdFromHeaders("", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "");
  EXPECT_EQ(RequestIdFromHeaders("", "garbage"), "");
}

TEST(RequestIdTest, GeneratesDistinctHexIds) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 32u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace onestory::service
