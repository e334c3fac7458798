// The start-up steps that move alerts and audit entries of the layout before buckets into their
// buckets (libs/engagement/alert_upgrade.h with engagement_alert_upgrade, libs/audit/
// audit_upgrade.h with audit_upgrade), on a single Redis holding what the earlier version wrote:
// every alert and entry moved once, with its stream id, acknowledgement and open state, even
// after a move interrupted half way; a second run moves nothing; and the readers then answer as
// before, page tokens and cursors issued before the upgrade included.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/audit_upgrade.h"
#include "libs/engagement/alert_store.h"
#include "libs/engagement/alert_upgrade.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/audit_upgrade.h"
#include "libs/lua/engagement_alert_upgrade.h"
#include "libs/lua/outbox_alerts.h"
#include "libs/timeline/cursor.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;

class UpgradeFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  static std::string Customer(int i) { return absl::StrCat("cus_", i % 10); }
  static std::string AlertId(int i) {
    return absl::StrCat("negative_streak:", Customer(i), ":", i);
  }
  static std::string Sid(int i) { return absl::StrCat(1000 + i, "-0"); }

  // What the earlier version left: 30 alerts of 10 customers in the tenant's one log, every
  // fourth acknowledged, the others open; and the id of an alert trimmed from the log.
  void WriteEarlierAlerts() {
    const keys::TenantKeys old("acme");
    for (int i = 0; i < 30; ++i) {
      Run({"XADD", old.alert_log(), Sid(i), "id", AlertId(i), "k", "2", "c", Customer(i), "ca", "",
           "msg", absl::StrCat("m", i), "at", absl::StrCat(1000 + i)});
      Run({"HSET", old.alert_ids(), AlertId(i), Sid(i)});
      if (i % 4 == 0) {
        Run({"HSET", old.alert_acks(), AlertId(i), R"({"bt":3,"bi":"sup","at":5})"});
      } else {
        Run({"ZADD", old.alert_open(), absl::StrCat(1000 + i), AlertId(i)});
      }
    }
    Run({"HSET", old.alert_ids(), kTrimmed, "500-0"});
    Run({"ZADD", old.alert_open(), "500", kTrimmed});
  }

  std::vector<v1::Alert> ListAll(engagement::AlertStore& store, int page_size, bool all,
                                 std::string token = "") {
    std::vector<v1::Alert> out;
    v1::ListAlertsRequest req;
    req.set_tenant("acme");
    req.set_page_size(page_size);
    req.set_include_acknowledged(all);
    req.set_page_token(token);
    for (int pages = 0; pages < 100; ++pages) {
      auto r = Await<v1::ListAlertsResponse>(
          [&](auto done) { store.List(req, Deadline(), std::move(done)); });
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      for (const v1::Alert& a : r->alerts()) out.push_back(a);
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    return out;
  }
  static std::vector<std::string> Ids(const std::vector<v1::Alert>& alerts) {
    std::vector<std::string> out;
    for (const v1::Alert& a : alerts) out.push_back(a.alert_id());
    return out;
  }

  static constexpr char kTrimmed[] = "repeat_contact:cus_3:case_9";
};

TEST_F(UpgradeFunctionsTest, AlertsMoveIntoTheirBucketsOnceAndReadAsBefore) {
  WriteEarlierAlerts();
  const keys::TenantKeys old("acme");
  // A move interrupted after the first alert reached its bucket, before it left the old keys.
  {
    const keys::TenantKeys tk("acme", keys::TenantBucket(Customer(0)));
    EngagementAlertUpgrade call;
    call.alert_log = tk.alert_log();
    call.alert_ids = tk.alert_ids();
    call.alert_open = tk.alert_open();
    call.alert_acks = tk.alert_acks();
    call.alert_id = AlertId(0);
    call.stream_id = Sid(0);
    call.open = "";
    call.ack = R"({"bt":3,"bi":"sup","at":5})";
    redis::Reply e = Run({"XRANGE", old.alert_log(), Sid(0), Sid(0)});
    for (const redis::Reply& f : e.elements[0].elements[1].elements) call.fields.push_back(f.str);
    absl::StatusOr<redis::Reply> r = Call(call);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->integer, 1);
    r = Call(call);  // again: the bucket holds it
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->integer, 0);
  }
  absl::StatusOr<int> moved = engagement::UpgradeAlertKeys(client_.get());
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 30);  // 29 alerts and the trimmed one's id
  EXPECT_EQ(
      Run({"EXISTS", old.alert_log(), old.alert_ids(), old.alert_open(), old.alert_acks()}).integer,
      0);
  moved = engagement::UpgradeAlertKeys(client_.get());
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 0);

  // Each alert in its customer's bucket, with its stream id, fields, ack or open score.
  int in_buckets = 0;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    in_buckets += Run({"XLEN", keys::TenantKeys("acme", b).alert_log()}).integer;
  }
  EXPECT_EQ(in_buckets, 30);
  for (int i = 0; i < 30; ++i) {
    const keys::TenantKeys tk("acme", keys::TenantBucket(Customer(i)));
    EXPECT_EQ(Run({"HGET", tk.alert_ids(), AlertId(i)}).str, Sid(i));
    redis::Reply e = Run({"XRANGE", tk.alert_log(), Sid(i), Sid(i)});
    ASSERT_EQ(e.elements.size(), 1u) << i;
    EXPECT_EQ(e.elements[0].elements[1].elements[9].str, absl::StrCat("m", i));
    if (i % 4 == 0) {
      EXPECT_FALSE(Run({"HGET", tk.alert_acks(), AlertId(i)}).is_nil()) << i;
      EXPECT_TRUE(Run({"ZSCORE", tk.alert_open(), AlertId(i)}).is_nil()) << i;
    } else {
      EXPECT_EQ(Run({"ZSCORE", tk.alert_open(), AlertId(i)}).str, absl::StrCat(1000 + i));
    }
  }
  const keys::TenantKeys trimmed("acme", keys::TenantBucket("cus_3"));
  EXPECT_EQ(Run({"HGET", trimmed.alert_ids(), kTrimmed}).str, "500-0");
  // A moved id is never raised again.
  OutboxAlerts raise;
  raise.alert_log = trimmed.alert_log();
  raise.alert_ids = trimmed.alert_ids();
  raise.alert_open = trimmed.alert_open();
  raise.customer_id = "cus_3";
  raise.alert_channel = trimmed.alert_channel();
  raise.alerts = {kTrimmed, "2", "case_9", "again", "9000"};
  absl::StatusOr<redis::Reply> r = Call(raise);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);

  // The readers: every alert newest first, the open ones without the acknowledged.
  engagement::AlertStore store({client_.get(), nullptr, {}, nullptr});
  std::vector<std::string> all, open;
  for (int i = 29; i >= 0; --i) {
    all.push_back(AlertId(i));
    if (i % 4 != 0) open.push_back(AlertId(i));
  }
  EXPECT_EQ(Ids(ListAll(store, 4, true)), all);
  EXPECT_EQ(Ids(ListAll(store, 3, false)), open);
  // A page token the earlier version issued (after alert 20) goes on with alert 19.
  std::vector<std::string> after_20(all.begin() + 10, all.end());
  EXPECT_EQ(Ids(ListAll(store, 4, true, timeline::EncodeCursor("alerts:acme:all", Sid(20)))),
            after_20);
  // So does a WatchAlerts cursor of the earlier version: alerts 10 to 29, oldest first.
  v1::WatchAlertsRequest watch;
  watch.set_tenant("acme");
  watch.set_after_cursor(timeline::EncodeCursor("alerts:acme", Sid(9)));
  absl::StatusOr<std::optional<timeline::BucketPositions>> start =
      engagement::AlertStore::StartAfter(watch);
  ASSERT_TRUE(start.ok()) << start.status();
  ASSERT_TRUE(start->has_value());
  auto batch = Await<engagement::AlertStore::Batch>(
      [&](auto done) { store.ReadAfter("acme", **start, 100, Deadline(), std::move(done)); });
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> watched = Ids(batch->alerts);
  std::vector<std::string> expected;
  for (int i = 10; i < 30; ++i) expected.push_back(AlertId(i));
  EXPECT_EQ(watched, expected);
  EXPECT_FALSE(batch->more);
}

TEST_F(UpgradeFunctionsTest, AuditEntriesMoveIntoTheirBucketsOnceAndListAsBefore) {
  const std::string old = keys::TenantKeys("acme").audit_log();
  auto customer = [](int i) { return i % 5 == 0 ? std::string() : absl::StrCat("cus_", i % 8); };
  auto sid = [](int i) { return absl::StrCat(2000 + i, "-0"); };
  auto bucket = [&](int i) {
    return keys::TenantBucket(customer(i).empty() ? sid(i) : customer(i));
  };
  std::vector<std::string> blobs;
  for (int i = 0; i < 40; ++i) {
    v1::AuditEntry e;
    e.set_key_id(absl::StrCat("key_", i));
    e.set_customer_id(customer(i));
    e.mutable_at()->set_seconds(2 + i);
    blobs.push_back(e.SerializeAsString());
    Run({"XADD", old, sid(i), "c", customer(i), "e", blobs.back()});
  }
  // A move interrupted after its first three entries reached their buckets.
  for (int i = 0; i < 3; ++i) {
    AuditUpgrade call;
    call.log = keys::TenantKeys("acme", bucket(i)).audit_log();
    call.entries = {sid(i), customer(i), blobs[i]};
    absl::StatusOr<redis::Reply> r = Call(call);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->integer, 1);
  }
  absl::StatusOr<int> moved = audit::UpgradeAuditKeys(client_.get());
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 37);
  EXPECT_EQ(Run({"EXISTS", old}).integer, 0);
  moved = audit::UpgradeAuditKeys(client_.get());
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 0);
  int total = 0;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    total += Run({"XLEN", keys::TenantKeys("acme", b).audit_log()}).integer;
  }
  EXPECT_EQ(total, 40);
  for (int i = 0; i < 40; ++i) {
    redis::Reply e =
        Run({"XRANGE", keys::TenantKeys("acme", bucket(i)).audit_log(), sid(i), sid(i)});
    ASSERT_EQ(e.elements.size(), 1u) << i;
    EXPECT_EQ(e.elements[0].elements[1].elements[3].str, blobs[i]) << i;
  }

  // List: newest first over small pages; a page token of the earlier version goes on after it.
  audit::AuditLog log(client_.get(), audit::AuditLog::Options{});
  auto list = [&](const std::string& token) {
    std::vector<std::string> keys;
    v1::ListAuditEntriesRequest req;
    req.set_tenant("acme");
    req.set_page_size(3);
    req.set_page_token(token);
    for (int pages = 0; pages < 100; ++pages) {
      auto r = Await<v1::ListAuditEntriesResponse>(
          [&](auto done) { log.List(req, Deadline(), std::move(done)); });
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      for (const v1::AuditEntry& e : r->entries()) keys.push_back(e.key_id());
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    return keys;
  };
  std::vector<std::string> newest_first;
  for (int i = 39; i >= 0; --i) newest_first.push_back(absl::StrCat("key_", i));
  EXPECT_EQ(list(""), newest_first);
  EXPECT_EQ(list(timeline::EncodeCursor("audit:acme:", sid(10))),
            std::vector<std::string>(newest_first.begin() + 30, newest_first.end()));
}

}  // namespace
}  // namespace onestory::lua
