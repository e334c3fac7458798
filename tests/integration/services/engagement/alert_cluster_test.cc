// AlertService on a Redis Cluster (3 primaries, 3 replicas) over real gRPC: one tenant's alerts
// are spread over its buckets, which live on different primaries, and ListAlerts (small pages,
// open only or all), AckAlert (the bucket found from the id) and WatchAlerts (from the start,
// resumed from any alert's cursor, listed or watched, and live) give every alert once, in the
// merged order read back from the buckets themselves.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/keys/key_schema.h"
#include "libs/redis/slot.h"
#include "tests/integration/services/engagement/engagement_fixture.h"
#include "tests/testing/redis_cluster_for_test.h"

namespace onestory::testing {
namespace {

constexpr char kTenant[] = "acme";

class AlertClusterTest : public ::testing::Test {
 protected:
  // As the server's flags set it up for --redis_cluster: the seeds, and the first one as the
  // address the logs name.
  AlertClusterTest()
      : server_(unused_, [this](service::ServerOptions* o) {
          o->redis = cluster_.ClientOptions();
          o->redis.address = o->redis.cluster_seeds.front();
        }) {}

  std::string NewCustomer(const std::string& phone) {
    v1::ResolveRequest req;
    req.set_tenant(kTenant);
    *req.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, phone);
    req.set_create_if_missing(true);
    v1::ResolveResponse resp;
    grpc::Status st = server_.identity()->Resolve(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    return resp.customer_id();
  }
  // Three negative messages: one NEGATIVE_STREAK alert, in the customer's bucket.
  void RaiseAlert(const std::string& customer) {
    v1::AppendRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customer);
    for (int i = 0; i < 3; ++i) {
      *req.add_events() = Message(absl::StrCat("angry-", i), v1::CHANNEL_WEB_CHAT, -0.8f);
    }
    v1::AppendResponse resp;
    grpc::Status st = server_.timeline()->Append(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
  }

  // Every page of ListAlerts at `page_size`.
  std::vector<v1::Alert> List(int page_size, bool all) {
    std::vector<v1::Alert> out;
    v1::ListAlertsRequest req;
    req.set_tenant(kTenant);
    req.set_page_size(page_size);
    req.set_include_acknowledged(all);
    for (int pages = 0; pages < 1000; ++pages) {
      v1::ListAlertsResponse resp;
      grpc::Status st = server_.alerts()->ListAlerts(Ctx().get(), req, &resp);
      EXPECT_TRUE(st.ok()) << Describe(st);
      if (!st.ok()) break;
      EXPECT_LE(resp.alerts_size(), page_size);
      for (const v1::Alert& a : resp.alerts()) out.push_back(a);
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }
  static std::vector<std::string> Ids(const std::vector<v1::Alert>& alerts) {
    std::vector<std::string> ids;
    for (const v1::Alert& a : alerts) ids.push_back(a.alert_id());
    return ids;
  }

  // The tenant's alert ids in the merged order (ms of the stream id, bucket, stream id),
  // oldest first, read from each bucket's log on the primary that holds it.
  std::vector<std::string> MergedOrder() {
    std::vector<std::tuple<uint64_t, int, uint64_t, std::string>> all;
    for (int b = 0; b < keys::kTenantBuckets; ++b) {
      const std::string log = keys::TenantKeys(kTenant, b).alert_log();
      redis::Reply r =
          cluster_.Run(cluster_.PrimaryOf(redis::KeySlot(log)), {"XRANGE", log, "-", "+"});
      for (const redis::Reply& e : r.elements) {
        std::pair<std::string, std::string> sid = absl::StrSplit(e.elements[0].str, '-');
        uint64_t ms = 0, seq = 0;
        EXPECT_TRUE(absl::SimpleAtoi(sid.first, &ms) && absl::SimpleAtoi(sid.second, &seq));
        std::string id;
        const auto& f = e.elements[1].elements;
        for (size_t i = 0; i + 1 < f.size(); i += 2) {
          if (f[i].str == "id") id = f[i + 1].str;
        }
        all.emplace_back(ms, b, seq, id);
      }
    }
    std::sort(all.begin(), all.end());
    std::vector<std::string> ids;
    for (const auto& t : all) ids.push_back(std::get<3>(t));
    return ids;
  }

  struct Watch {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::Alert>> reader;
    std::vector<v1::Alert> Read(size_t n) {
      std::vector<v1::Alert> out;
      v1::Alert a;
      while (out.size() < n && reader->Read(&a)) out.push_back(a);
      return out;
    }
    ~Watch() {
      ctx->TryCancel();
      v1::Alert ignored;
      while (reader->Read(&ignored)) {
      }
      reader->Finish();
    }
  };
  std::unique_ptr<Watch> WatchAfter(const std::string& cursor, bool from_start = false) {
    v1::WatchAlertsRequest req;
    req.set_tenant(kTenant);
    req.set_after_cursor(cursor);
    req.set_from_start(from_start);
    auto w = std::make_unique<Watch>();
    w->ctx = Ctx(absl::Seconds(30));
    w->reader = server_.alerts()->WatchAlerts(w->ctx.get(), req);
    return w;
  }

  bool WaitForAlerts(size_t n) {
    const absl::Time until = absl::Now() + absl::Seconds(20);
    while (absl::Now() < until) {
      if (List(500, true).size() >= n) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  RedisClusterForTest cluster_;
  RedisForTest unused_;  // ServerForTest's signature; the server talks to the cluster
  ServerForTest server_;
};

TEST_F(AlertClusterTest, ListAckAndWatchGiveEveryAlertOnceInOrderAcrossBuckets) {
  // Customers in several buckets, some sharing one; two alert rounds so that buckets interleave.
  std::vector<std::string> customers;
  std::set<int> buckets, primaries;
  for (int i = 0; i < 20; ++i) {
    customers.push_back(NewCustomer(absl::StrCat("141555501", 10 + i)));
    const int b = keys::TenantBucket(customers.back());
    buckets.insert(b);
    primaries.insert(cluster_.PrimaryOf(redis::KeySlot(keys::TenantKeys(kTenant, b).alert_log())));
  }
  ASSERT_GE(buckets.size(), 6u);
  ASSERT_GE(primaries.size(), 2u) << "the tenant's alert buckets are all on one primary";
  for (const std::string& c : customers) RaiseAlert(c);
  ASSERT_TRUE(WaitForAlerts(customers.size()));
  const std::vector<std::string> order = MergedOrder();  // oldest first
  ASSERT_EQ(order.size(), customers.size());
  std::vector<std::string> newest_first(order.rbegin(), order.rend());

  // ListAlerts: every page size gives every alert once, newest first in the merged order.
  for (int size : {1, 2, 3, 7, 500}) EXPECT_EQ(Ids(List(size, false)), newest_first) << size;

  // AckAlert finds each alert's bucket from its id; open-only pages skip exactly those.
  std::set<std::string> acked;
  for (size_t i = 0; i < order.size(); i += 3) {
    v1::AckAlertRequest req;
    req.set_tenant(kTenant);
    req.set_alert_id(order[i]);
    *req.mutable_actor() = Agent("supervisor-1");
    v1::Alert a;
    grpc::Status st = server_.alerts()->AckAlert(Ctx().get(), req, &a);
    ASSERT_TRUE(st.ok()) << Describe(st);
    EXPECT_TRUE(a.acknowledged());
    acked.insert(order[i]);
  }
  std::vector<std::string> open;
  for (const std::string& id : newest_first) {
    if (!acked.count(id)) open.push_back(id);
  }
  for (int size : {1, 2, 4}) EXPECT_EQ(Ids(List(size, false)), open) << size;
  std::vector<v1::Alert> all = List(3, true);
  EXPECT_EQ(Ids(all), newest_first);
  for (const v1::Alert& a : all) EXPECT_EQ(a.acknowledged(), acked.count(a.alert_id()) > 0);

  // WatchAlerts from the start: every alert once, oldest first.
  std::vector<v1::Alert> watched;
  {
    auto w = WatchAfter("", /*from_start=*/true);
    watched = w->Read(order.size());
  }
  ASSERT_EQ(Ids(watched), order);
  // Resumed from any watched alert's cursor, or any listed alert's: exactly the ones after it.
  std::map<std::string, std::string> listed_cursor;
  for (const v1::Alert& a : all) listed_cursor[a.alert_id()] = a.cursor();
  for (size_t k : {size_t{0}, order.size() / 3, order.size() / 2, order.size() - 2}) {
    std::vector<std::string> rest(order.begin() + k + 1, order.end());
    for (const std::string& cursor : {watched[k].cursor(), listed_cursor[order[k]]}) {
      auto w = WatchAfter(cursor);
      EXPECT_EQ(Ids(w->Read(rest.size())), rest) << "after " << k;
    }
  }

  // Live: a watch after the last alert gets the next round, from every bucket, each once and
  // in the merged order.
  auto live = WatchAfter(watched.back().cursor());
  for (size_t i = 0; i < customers.size(); i += 2) {
    // A second streak needs a message that is not negative in between.
    v1::AppendRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customers[i]);
    *req.add_events() = Message("calm", v1::CHANNEL_WEB_CHAT, 0.0f);
    for (int j = 0; j < 3; ++j) {
      *req.add_events() = Message(absl::StrCat("again-", j), v1::CHANNEL_WEB_CHAT, -0.8f);
    }
    v1::AppendResponse resp;
    grpc::Status st = server_.timeline()->Append(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
  }
  const size_t more = (customers.size() + 1) / 2;
  std::vector<v1::Alert> got = live->Read(more);
  ASSERT_EQ(got.size(), more);
  std::vector<std::string> now = MergedOrder();
  ASSERT_EQ(now.size(), order.size() + more);
  // Every new alert once (live, each read delivers what has reached the buckets so far, in
  // the merged order).
  std::vector<std::string> got_sorted = Ids(got);
  std::sort(got_sorted.begin(), got_sorted.end());
  EXPECT_EQ(std::unique(got_sorted.begin(), got_sorted.end()), got_sorted.end())
      << "an alert came twice";
  std::vector<std::string> expected(now.begin() + order.size(), now.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got_sorted, expected);
  // ListAlerts agrees: both rounds, newest first.
  EXPECT_EQ(Ids(List(500, true)), std::vector<std::string>(now.rbegin(), now.rend()));
}

}  // namespace
}  // namespace onestory::testing
