// AofRewriteScheduler against a real redis-server with an append-only file: a request starts a
// rewrite at once, requests within the interval are coalesced into one more at its end, and
// nothing runs without a request (Redis's INFO persistence counts the rewrites).
#include "services/common/aof_rewrite.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/redis_test.h"

namespace onestory::service {
namespace {

using onestory::testing::RedisTest;

class AofRewriteTest : public RedisTest {
 protected:
  // Redis's own count of rewrites (started and finished) since it started, minus the start's.
  int Rewrites() {
    redis::Reply info = redis_->Run({"INFO", "persistence"});
    for (absl::string_view line : absl::StrSplit(info.str, "\r\n")) {
      if (absl::ConsumePrefix(&line, "aof_rewrites:")) {
        int n = 0;
        EXPECT_TRUE(absl::SimpleAtoi(line, &n)) << line;
        return n - base_;
      }
    }
    ADD_FAILURE() << "no aof_rewrites in INFO persistence";
    return -1;
  }
  bool InProgress() {
    redis::Reply info = redis_->Run({"INFO", "persistence"});
    return info.str.find("aof_rewrite_in_progress:1") != std::string::npos;
  }
  void SetUp() override {
    RedisTest::SetUp();
    base_ = 0;
    base_ = Rewrites();
  }
  // Waits for `n` rewrites (and none running), up to `limit`.
  bool WaitFor(int n, absl::Duration limit) {
    absl::Time give_up = absl::Now() + limit;
    while (Rewrites() < n || InProgress()) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }
  int base_ = 0;
};

TEST_F(AofRewriteTest, RequestsAreCoalescedToOnePerInterval) {
  AofRewriteScheduler rewrites(client_.get(), absl::Seconds(2));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(Rewrites(), 0) << "a rewrite without a request";

  absl::Time first = absl::Now();
  rewrites.Request();
  ASSERT_TRUE(WaitFor(1, absl::Seconds(1))) << Rewrites();
  EXPECT_EQ(rewrites.started(), 1u);

  // Within the interval: five requests make one more rewrite, at the interval's end.
  for (int i = 0; i < 5; ++i) rewrites.Request();
  absl::SleepFor(first + absl::Milliseconds(1500) - absl::Now());
  EXPECT_EQ(Rewrites(), 1) << "a second rewrite before the interval was over";
  ASSERT_TRUE(WaitFor(2, absl::Seconds(3))) << Rewrites();
  EXPECT_GE(absl::Now() - first, absl::Seconds(2));
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_EQ(Rewrites(), 2) << "more rewrites than requests needed";
  EXPECT_EQ(rewrites.started(), 2u);
}

TEST_F(AofRewriteTest, ARewriteRedisRefusesIsTriedAgain) {
  // One already running (started by someone else): Redis refuses ours, which follows it.
  redis_->Run({"CONFIG", "SET", "rdb-key-save-delay", "500000"});  // the rewrite takes a while
  redis_->Run({"SET", "k", "v"});
  redis_->Run({"BGREWRITEAOF"});
  ASSERT_TRUE(InProgress());
  AofRewriteScheduler rewrites(client_.get(), absl::Seconds(1));
  rewrites.Request();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(rewrites.started(), 0u);
  redis_->Run({"CONFIG", "SET", "rdb-key-save-delay", "0"});
  ASSERT_TRUE(WaitFor(2, absl::Seconds(5))) << Rewrites();
  EXPECT_EQ(rewrites.started(), 1u);
}

}  // namespace
}  // namespace onestory::service
