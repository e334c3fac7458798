// The audit log against a real redis-server: entries spread over the tenant's buckets (a
// customer's in its bucket, the others in turn), the per-bucket cap by count, List merging the
// buckets newest first over pages of any size, entries held while Redis is down and written when
// it is back, RecordBefore's verdict, and a full retry buffer.
#include "libs/audit/audit_log.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/keys/key_schema.h"
#include "tests/testing/await.h"
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
  // The tenant's entries, over every bucket.
  int64_t Length(const std::string& tenant) {
    int64_t n = 0;
    for (int b = 0; b < keys::kTenantBuckets; ++b) n += BucketLength(tenant, b);
    return n;
  }
  int64_t BucketLength(const std::string& tenant, int b) {
    return redis_->Run({"XLEN", keys::TenantKeys(tenant, b).audit_log()}).integer;
  }
  // Every page of List at `page_size` (of one customer's entries when `customer` is set).
  std::vector<v1::AuditEntry> ListAll(AuditLog& log, int page_size, const std::string& customer,
                                      std::string token = "") {
    std::vector<v1::AuditEntry> out;
    v1::ListAuditEntriesRequest req;
    req.set_tenant("acme");
    req.set_customer_id(customer);
    req.set_page_size(page_size);
    req.set_page_token(token);
    for (int pages = 0; pages < 2000; ++pages) {
      absl::StatusOr<v1::ListAuditEntriesResponse> r =
          onestory::testing::Await<v1::ListAuditEntriesResponse>(
              [&](auto done) { log.List(req, onestory::testing::Deadline(), std::move(done)); });
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      EXPECT_LE(r->entries_size(), page_size);
      for (const v1::AuditEntry& e : r->entries()) out.push_back(e);
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    return out;
  }
};

// One customer's entries: all in its bucket, which keeps about its share of max_entries.
TEST_F(AuditLogTest, ABucketKeepsAboutItsNewestShareOfMaxEntries) {
  AuditLog::Options opts;
  opts.max_entries = 100 * keys::kTenantBuckets;  // 100 per bucket
  AuditLog log(client_.get(), opts);
  const int bucket = keys::TenantBucket("cus_1");
  // In batches of 100, each written before the next is sent: the writes of one batch may
  // overtake each other (two pipelined connections), those of two batches may not.
  for (int batch = 0; batch < 10; ++batch) {
    for (int i = 0; i < 100; ++i) {
      v1::AuditEntry e = Entry(1);
      e.set_key_id(absl::StrCat("key_", batch * 100 + i));
      log.Record("acme", std::move(e));
    }
    ASSERT_TRUE(Eventually([&] { return log.recorded() == 100u * (batch + 1); }));
  }
  log.Record("other", Entry(0));
  ASSERT_TRUE(Eventually([&] { return log.recorded() == 1001; })) << log.recorded();
  // MAXLEN ~ drops whole stream nodes (100 entries each by default), never the newest 100.
  EXPECT_GE(BucketLength("acme", bucket), 100);
  EXPECT_LE(BucketLength("acme", bucket), 200);
  EXPECT_EQ(Length("acme"), BucketLength("acme", bucket)) << "an entry outside its bucket";
  EXPECT_EQ(Length("other"), 1);
  // The newest are kept: only the last two batches.
  redis::Reply kept =
      redis_->Run({"XRANGE", keys::TenantKeys("acme", bucket).audit_log(), "-", "+"});
  int last_batch = 0;
  for (const redis::Reply& e : kept.elements) {
    v1::AuditEntry entry;
    ASSERT_TRUE(entry.ParseFromString(e.elements[1].elements[3].str));
    int n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(absl::string_view(entry.key_id()).substr(4), &n));
    EXPECT_GE(n, 800) << "an old entry kept";
    if (n >= 900) ++last_batch;
  }
  EXPECT_EQ(last_batch, 100);
}

// Entries naming no customer go to the buckets in turn.
TEST_F(AuditLogTest, EntriesNamingNoCustomerSpreadOverEveryBucket) {
  AuditLog log(client_.get(), AuditLog::Options{});
  for (int i = 0; i < 10 * keys::kTenantBuckets; ++i) {
    v1::AuditEntry e = Entry(i);
    e.clear_customer_id();
    log.Record("acme", std::move(e));
  }
  ASSERT_TRUE(Eventually([&] { return log.recorded() == 10u * keys::kTenantBuckets; }));
  for (int b = 0; b < keys::kTenantBuckets; ++b) EXPECT_EQ(BucketLength("acme", b), 10) << b;
}

// List merges the buckets newest first (by write time, the stream ids): pages of every size
// give every entry once, in that order; one customer's pages read its bucket only.
TEST_F(AuditLogTest, ListMergesTheBucketsOverPagesOfAnySize) {
  AuditLog log(client_.get(), AuditLog::Options{});
  // One at a time, so that the write order is known: customers over many buckets, and none.
  const int n = 120;
  for (int i = 0; i < n; ++i) {
    v1::AuditEntry e = Entry(i % 30);
    if (i % 7 == 0) e.clear_customer_id();
    e.set_key_id(absl::StrCat("key_", i));
    int64_t micros = 1700000000000000 + i * 1000;
    e.mutable_at()->set_seconds(micros / 1000000);
    e.mutable_at()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
    log.Record("acme", std::move(e));
    ASSERT_TRUE(Eventually([&] { return log.recorded() == static_cast<uint64_t>(i + 1); }));
    // Entries of one millisecond in two buckets are merged by bucket: one per millisecond here.
    absl::SleepFor(absl::Milliseconds(2));
  }
  std::set<int> used;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    if (BucketLength("acme", b) > 0) used.insert(b);
  }
  EXPECT_EQ(used.size(), static_cast<size_t>(keys::kTenantBuckets));
  auto keys_of = [](const std::vector<v1::AuditEntry>& entries) {
    std::vector<std::string> out;
    for (const v1::AuditEntry& e : entries) out.push_back(e.key_id());
    return out;
  };
  std::vector<std::string> newest_first;
  for (int i = n - 1; i >= 0; --i) newest_first.push_back(absl::StrCat("key_", i));
  for (int size : {1, 2, 3, 7, 1000}) EXPECT_EQ(keys_of(ListAll(log, size, "")), newest_first);
  std::vector<std::string> cus_4;
  for (int i = n - 1; i >= 0; --i) {
    if (i % 30 == 4 && i % 7 != 0) cus_4.push_back(absl::StrCat("key_", i));
  }
  for (int size : {1, 2, 100}) EXPECT_EQ(keys_of(ListAll(log, size, "cus_4")), cus_4);
  // A token of another customer's pages, or a malformed one: INVALID_ARGUMENT naming it.
  v1::ListAuditEntriesRequest req;
  req.set_tenant("acme");
  req.set_page_size(1);
  req.set_customer_id("cus_4");
  auto first = onestory::testing::Await<v1::ListAuditEntriesResponse>(
      [&](auto done) { log.List(req, onestory::testing::Deadline(), std::move(done)); });
  ASSERT_TRUE(first.ok()) << first.status();
  req.set_customer_id("cus_5");
  req.set_page_token(first->next_page_token());
  auto other = onestory::testing::Await<v1::ListAuditEntriesResponse>(
      [&](auto done) { log.List(req, onestory::testing::Deadline(), std::move(done)); });
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(other.status().message(), "page_token")) << other.status();
}

TEST_F(AuditLogTest, AgeTrimmingStillApplies) {
  // Entries from "long ago" (stream ids of 1970), then one written with a 1-day retention.
  for (int i = 0; i < 300; ++i) {
    redis_->Run({"XADD", keys::TenantKeys("acme", keys::TenantBucket("cus_1")).audit_log(),
                 absl::StrCat(i + 1, "-1"), "c", "", "e", ""});
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
