// The tenant-wide aggregates spread over buckets, on a Redis Cluster (3 primaries): one
// tenant's journey buckets, due-promise buckets and activity buckets land on different primaries;
// GetJourneyStats merges the journey buckets exactly; the overdue-promise scan reads every due
// bucket; the retention Sweeper finds its tenants through the registry (SCAN would see one node).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/time_util.h"
#include "libs/engagement/alert_store.h"
#include "libs/engagement/case_store.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/redis/slot.h"
#include "libs/retention/sweeper.h"
#include "libs/timeline/timeline_store.h"
#include "tests/testing/await.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_cluster_for_test.h"

namespace onestory::engagement {
namespace {

using google::protobuf::util::TimeUtil;
using onestory::testing::Await;
using onestory::testing::Deadline;

// The stores a server wires, over one cluster client.
class JourneyClusterTest : public ::testing::Test {
 protected:
  JourneyClusterTest()
      : client_(cluster_.ClientOptions()),
        identity_(&client_),
        timeline_(&client_, &identity_, timeline::EngagementPolicy()),
        cases_({&client_, &identity_, {}, nullptr}),
        alerts_({&client_, &identity_, {}, nullptr}) {}

  std::string NewCustomer(const std::string& tenant, const std::string& phone) {
    auto r = Await<identity::IdentityStore::Resolved>([&](auto done) {
      identity_.Resolve(tenant, onestory::testing::Id(v1::IDENTIFIER_TYPE_PHONE, phone), true,
                        Deadline(), std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->customer_id : "";
  }
  int PrimaryOf(const std::string& key) { return cluster_.PrimaryOf(redis::KeySlot(key)); }
  v1::Actor Agent() {
    v1::Actor a;
    a.set_type(v1::Actor::TYPE_AGENT);
    a.set_id("agent-1");
    return a;
  }
  void SetJourney(const std::vector<std::string>& stages) {
    v1::SetJourneyRequest req;
    req.set_tenant("acme");
    for (const auto& s : stages) req.add_stages(s);
    auto r =
        Await<v1::Journey>([&](auto done) { cases_.SetJourney(req, Deadline(), std::move(done)); });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void Open(const std::string& customer, const std::string& case_id, const std::string& stage) {
    v1::OpenCaseRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer);
    req.set_case_id(case_id);
    req.set_topic("late parcel");
    req.set_stage(stage);
    *req.mutable_actor() = Agent();
    req.set_channel(v1::CHANNEL_VOICE);
    auto r = Await<v1::OpenCaseResponse>(
        [&](auto done) { cases_.Open(req, Deadline(), std::move(done)); });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  absl::StatusOr<v1::GetJourneyStatsResponse> Stats() {
    v1::GetJourneyStatsRequest req;
    req.set_tenant("acme");
    return Await<v1::GetJourneyStatsResponse>(
        [&](auto done) { cases_.GetJourneyStats(req, Deadline(), std::move(done)); });
  }
  // The entry time (ms) of a case, from its record on the customer's primary.
  int64_t Entered(const std::string& customer, const std::string& case_id) {
    const std::string key = keys::CustomerKeys("acme", customer).cases();
    redis::Reply r = cluster_.Run(PrimaryOf(key), {"HGET", key, case_id});
    size_t at = r.str.find("\"se\":");
    EXPECT_NE(at, std::string::npos) << r.str;
    return std::stoll(r.str.substr(at + 5));
  }

  onestory::testing::RedisClusterForTest cluster_;
  redis::Client client_;
  identity::IdentityStore identity_;
  timeline::TimelineStore timeline_;
  CaseStore cases_;
  AlertStore alerts_;
};

TEST_F(JourneyClusterTest, JourneyBucketsSpreadOverPrimariesAndStatsAreExact) {
  SetJourney({"ordered", "shipped"});
  std::vector<std::string> customers;
  std::set<int> primaries;
  std::vector<int64_t> ordered;
  for (int i = 0; i < 12; ++i) {
    std::string c = NewCustomer("acme", absl::StrCat("141555501", 10 + i));
    customers.push_back(c);
    primaries.insert(PrimaryOf(keys::TenantKeys("acme", keys::TenantBucket(c)).journey_open()));
    Open(c, "case-1", "ordered");
    ordered.push_back(Entered(c, "case-1"));
    if (i % 3 == 0) Open(c, "case-2", "shipped");
    absl::SleepFor(absl::Milliseconds(3));  // distinct entry times
  }
  ASSERT_GE(primaries.size(), 2u) << "the customers' journey buckets on one primary";
  // The outboxes drain right after each answer; wait until every entry is applied.
  absl::StatusOr<v1::GetJourneyStatsResponse> s;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  int64_t before = 0;
  do {
    before = NowMillis();
    s = Stats();
    ASSERT_TRUE(s.ok()) << s.status();
  } while ((s->stages(0).open_cases() != 12 || s->stages(1).open_cases() != 4) &&
           absl::Now() < until);
  const int64_t read = NowMillis();
  ASSERT_EQ(s->stages_size(), 2);
  EXPECT_EQ(s->stages(0).open_cases(), 12);
  EXPECT_EQ(s->stages(0).entered(), 12);
  EXPECT_EQ(s->stages(1).open_cases(), 4);
  EXPECT_EQ(s->stages(1).entered(), 4);
  // Each bucket holds its own customers' entries, on its own primary.
  int64_t members = 0;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    const std::string key = keys::TenantKeys("acme", b).journey_open();
    for (const auto& m : cluster_.Run(PrimaryOf(key), {"ZRANGE", key, "0", "-1"}).elements) {
      ++members;
      bool in_bucket = false;
      for (const auto& c : customers) {
        if (m.str.find(absl::StrCat("|", c, "|")) != std::string::npos) {
          in_bucket = keys::TenantBucket(c) == b;
        }
      }
      EXPECT_TRUE(in_bucket) << m.str << " in bucket " << b;
    }
  }
  EXPECT_EQ(members, 16);
  // The median of "ordered" as one index gave it: the mean of the two middle entry times' ages,
  // measured when the read ran (between `before` and `read`).
  std::sort(ordered.begin(), ordered.end());
  const int64_t a = ordered[5], b = ordered[6];
  const int64_t got = TimeUtil::DurationToMilliseconds(s->stages(0).median_time_in_stage());
  EXPECT_LE(got, ((read - a) + (read - b)) / 2);
  EXPECT_GE(got, ((before - a) + (before - b)) / 2);

  // Resolving moves the stays into the resolving customers' buckets; the stats merge them.
  for (int i = 0; i < 3; ++i) {
    v1::ResolveCaseRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customers[i]);
    req.set_case_id("case-1");
    *req.mutable_actor() = Agent();
    req.set_channel(v1::CHANNEL_VOICE);
    ASSERT_TRUE(Await<v1::ResolveCaseResponse>([&](auto done) {
                  cases_.Resolve(req, Deadline(), std::move(done));
                }).ok());
  }
  const absl::Time until2 = absl::Now() + absl::Seconds(10);
  do {
    s = Stats();
    ASSERT_TRUE(s.ok()) << s.status();
  } while (s->stages(0).open_cases() != 9 && absl::Now() < until2);
  EXPECT_EQ(s->stages(0).open_cases(), 9);
  EXPECT_TRUE(s->stages(0).has_median_completed_time_in_stage());
}

TEST_F(JourneyClusterTest, ThePromiseScanRaisesOverdueInEveryBucket) {
  SetJourney({"ordered"});
  std::vector<std::string> customers;
  std::set<int> primaries;
  // At least 8 customers, more until their due buckets are on two primaries (the 16 due
  // buckets' slots are fixed, and on this cluster's slot ranges most are on one primary).
  for (int i = 0; i < 40 && (i < 8 || primaries.size() < 2); ++i) {
    std::string c = NewCustomer("acme", absl::StrCat("14155550", 200 + i));
    customers.push_back(c);
    primaries.insert(PrimaryOf(keys::DuePromisesKey(keys::DueBucket("acme", c))));
    Open(c, "case-1", "ordered");
    v1::UpdateCaseRequest update;
    update.set_tenant("acme");
    update.mutable_customer()->set_customer_id(c);
    update.set_case_id("case-1");
    *update.mutable_actor() = Agent();
    update.set_channel(v1::CHANNEL_VOICE);
    update.set_promise("a call back");
    *update.mutable_promised_by() = FromMillis(NowMillis() + 1500);
    auto r = Await<v1::UpdateCaseResponse>(
        [&](auto done) { cases_.Update(update, Deadline(), std::move(done)); });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  ASSERT_GE(primaries.size(), 2u) << "the customers' due buckets on one primary";
  absl::SleepFor(absl::Milliseconds(1600));
  // Every promise is in its bucket (applied after the answers), then one scan raises them all.
  auto raised = [&] {
    v1::ListAlertsRequest req;
    req.set_tenant("acme");
    req.set_page_size(100);
    req.set_include_acknowledged(true);
    auto r = Await<v1::ListAlertsResponse>(
        [&](auto done) { alerts_.List(req, Deadline(), std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    std::set<std::string> out;
    if (!r.ok()) return out;
    for (const auto& a : r->alerts()) {
      if (a.kind() == v1::ALERT_KIND_PROMISE_OVERDUE) out.insert(a.customer_id());
    }
    return out;
  };
  int checked = 0;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  std::set<std::string> got;
  while (got.size() < customers.size() && absl::Now() < until) {
    auto n = Await<int>([&](auto done) { alerts_.ScanDuePromises(Deadline(), std::move(done)); });
    ASSERT_TRUE(n.ok()) << n.status();
    checked += *n;
    absl::SleepFor(absl::Milliseconds(20));
    got = raised();
  }
  EXPECT_EQ(got, std::set<std::string>(customers.begin(), customers.end()));
  EXPECT_GE(checked, static_cast<int>(customers.size()));
  // Each promise left its bucket (the removal went through the customer's outbox).
  const absl::Time until2 = absl::Now() + absl::Seconds(10);
  int64_t left = 0;
  do {
    left = 0;
    for (int b = 0; b < keys::kDueBuckets; ++b) {
      left += cluster_.Run(PrimaryOf(keys::DuePromisesKey(b)), {"ZCARD", keys::DuePromisesKey(b)})
                  .integer;
    }
  } while (left > 0 && absl::Now() < until2);
  EXPECT_EQ(left, 0);
}

TEST_F(JourneyClusterTest, TheRetentionSweepFindsEveryTenantOnACluster) {
  std::map<std::string, std::set<std::string>> appended;  // tenant -> customers
  std::set<int> primaries;
  for (const std::string tenant : {"acme", "beta", "gamma"}) {
    for (int i = 0; i < 4; ++i) {
      std::string c = NewCustomer(tenant, absl::StrCat("141555503", 10 + i));
      v1::AppendRequest req;
      req.set_tenant(tenant);
      req.mutable_customer()->set_customer_id(c);
      v1::Event* e = req.add_events();
      e->set_event_id("e1");
      e->set_channel(v1::CHANNEL_VOICE);
      e->set_kind(v1::EVENT_KIND_MESSAGE);
      e->mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
      e->set_summary("hello");
      ASSERT_TRUE(Await<v1::AppendResponse>([&](auto done) {
                    timeline_.Append(req, Deadline(), std::move(done));
                  }).ok());
      appended[tenant].insert(c);
      primaries.insert(PrimaryOf(keys::TenantKeys(tenant, keys::TenantBucket(c)).activity()));
    }
  }
  ASSERT_GE(primaries.size(), 2u);
  absl::StatusOr<retention::Rules> rules = retention::ParseRules("* inactive_after=1d\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  retention::Policy policy(*rules);
  absl::Mutex mu;
  std::map<std::string, std::set<std::string>> erased;
  retention::Sweeper::Options options;
  options.clock = [] { return absl::Now() + absl::Hours(48); };
  retention::Sweeper sweeper(
      &client_, &policy,
      [&](std::string tenant, std::string id, Callback<bool> done) {
        {
          absl::MutexLock l(&mu);
          erased[tenant].insert(id);
        }
        done(false);
      },
      options);
  // The activity follows the answers (the drain): sweep until every customer was seen.
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until) {
    retention::Sweeper::Stats s = sweeper.RunOnce(Deadline());
    EXPECT_EQ(s.errors, 0);
    absl::MutexLock l(&mu);
    if (erased == appended) break;
  }
  absl::MutexLock l(&mu);
  EXPECT_EQ(erased, appended);
}

}  // namespace
}  // namespace onestory::engagement
