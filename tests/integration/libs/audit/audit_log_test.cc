// The audit log against a real redis-server: the per-tenant cap by count, entries held while
// Redis is down and written when it is back, RecordBefore's verdict, and a full retry buffer.
#include "libs/audit/audit_log.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/keys/key_schema.h"
#include "tests/testing/redis_test.h"

namespace onestory::audit {
namespace {

using onestory::testing::RedisTest;

v1::AuditEntry Entry(int i) {
  v1::AuditEntry e;
  e.set_key_id("console");
  e.set_method("onestory.v1.TimelineService/Append");
  e.set_customer_id(absl::StrCat("cus_", i));
  e.set_code("OK");
  return e;
}

// Polls `pred` for up to `limit`.
template <typename Pred>
bool Eventually(Pred pred, absl::Duration limit = absl::Seconds(10)) {
  absl::Time give_up = absl::Now() + limit;
  while (!pred()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class AuditLogTest : public RedisTest {
 protected:
  int64_t Length(const std::string& tenant) {
    return redis_->Run({"XLEN", keys::TenantKeys(tenant).audit_log()}).integer;
  }
};

TEST_F(AuditLogTest, ATenantsLogKeepsAboutItsNewestMaxEntries) {
  AuditLog::Options opts;
  opts.max_entries = 100;
  AuditLog log(client_.get(), opts);
  // In batches of 100, each written before the next is sent: the writes of one batch may
  // overtake each other (two pipelined connections), those of two batches may not.
  for (int batch = 0; batch < 10; ++batch) {
    for (int i = 0; i < 100; ++i) log.Record("acme", Entry(batch * 100 + i));
    ASSERT_TRUE(Eventually([&] { return log.recorded() == 100u * (batch + 1); }));
  }
  log.Record("other", Entry(0));
  ASSERT_TRUE(Eventually([&] { return log.recorded() == 1001; })) << log.recorded();
  // MAXLEN ~ drops whole stream nodes (100 entries each by default), never the newest 100.
  EXPECT_GE(Length("acme"), 100);
  EXPECT_LE(Length("acme"), 200);
  EXPECT_EQ(Length("other"), 1);
  // The newest are kept: only the last two batches.
  redis::Reply kept = redis_->Run({"XRANGE", keys::TenantKeys("acme").audit_log(), "-", "+"});
  int last_batch = 0;
  for (const redis::Reply& e : kept.elements) {
    const std::string& customer = e.elements[1].elements[1].str;
    int n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(absl::string_view(customer).substr(4), &n)) << customer;
    EXPECT_GE(n, 800) << "an old entry kept";
    if (n >= 900) ++last_batch;
  }
  EXPECT_EQ(last_batch, 100);
}

TEST_F(AuditLogTest, AgeTrimmingStillApplies) {
  // Entries from "long ago" (stream ids of 1970), then one written with a 1-day retention.
  for (int i = 0; i < 300; ++i) {
    redis_->Run({"XADD", keys::TenantKeys("acme").audit_log(), absl::StrCat(i + 1, "-1"), "c", "",
                 "e", ""});
  }
  AuditLog::Options opts;
  opts.retention = absl::Hours(24);
  AuditLog log(client_.get(), opts);
  log.Record("acme", Entry(1));
  ASSERT_TRUE(Eventually([&] { return log.recorded() == 1; }));
  // MINID ~ drops whole nodes: the old entries of full nodes are gone.
  EXPECT_LT(Length("acme"), 150);
}

TEST_F(AuditLogTest, EntriesRefusedWhileRedisIsDownAreWrittenWhenItIsBack) {
  if (redis_->cluster()) GTEST_SKIP() << "a single Redis killed";
  AuditLog::Options opts;
  opts.retry_interval = absl::Milliseconds(100);
  AuditLog log(client_.get(), opts);
  redis_->Kill();
  for (int i = 0; i < 20; ++i) log.Record("acme", Entry(i));
  ASSERT_TRUE(Eventually([&] { return log.pending() == 20; })) << log.pending();
  EXPECT_GE(log.failures(), 20u);
  EXPECT_EQ(log.recorded(), 0u);
  redis_->Restart();
  ASSERT_TRUE(Eventually([&] { return log.recorded() == 20 && log.pending() == 0; }))
      << log.recorded() << " " << log.pending();
  EXPECT_EQ(Length("acme"), 20);
  EXPECT_EQ(log.dropped(), 0u);
}

TEST_F(AuditLogTest, RecordBeforeReportsAFailureAndHoldsNothing) {
  if (redis_->cluster()) GTEST_SKIP() << "a single Redis killed";
  AuditLog log(client_.get(), AuditLog::Options{});
  absl::Notification ok_done;
  absl::Status ok_status = absl::UnknownError("not called");
  log.RecordBefore("acme", Entry(1), absl::Now() + absl::Seconds(5), [&](absl::Status st) {
    ok_status = st;
    ok_done.Notify();
  });
  ok_done.WaitForNotification();
  EXPECT_TRUE(ok_status.ok()) << ok_status;
  EXPECT_EQ(Length("acme"), 1);

  redis_->Kill();
  absl::Notification done;
  absl::Status status;
  log.RecordBefore("acme", Entry(2), absl::Now() + absl::Seconds(5), [&](absl::Status st) {
    status = st;
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(log.pending(), 0u);
  redis_->Restart();
}

TEST_F(AuditLogTest, AFullRetryBufferDropsTheOldestAndCountsThem) {
  if (redis_->cluster()) GTEST_SKIP() << "a single Redis killed";
  AuditLog::Options opts;
  opts.retry_buffer = 5;
  opts.retry_interval = absl::Seconds(60);  // no retry during the test
  AuditLog log(client_.get(), opts);
  redis_->Kill();
  for (int i = 0; i < 8; ++i) log.Record("acme", Entry(i));
  ASSERT_TRUE(Eventually([&] { return log.pending() + log.dropped() == 8; }));
  EXPECT_EQ(log.pending(), 5u);
  EXPECT_EQ(log.dropped(), 3u);
  redis_->Restart();
}

}  // namespace
}  // namespace onestory::audit
