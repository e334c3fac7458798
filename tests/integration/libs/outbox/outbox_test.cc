// libs/outbox over real Redis: what an Append leaves in the customer's outbox is applied to the
// tenant's keys exactly once, by the drain after the answer, by two drains at once, or by the
// Sweeper after a crash left it marked; and on a Redis Cluster, where the customer's keys, the
// tenant's alert log and the pending marks live on different primaries, Append works at all.
#include "libs/outbox/outbox.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/clock.h"
#include "libs/common/time_util.h"
#include "libs/engagement/case_store.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/outbox/sweeper.h"
#include "libs/redis/slot.h"
#include "libs/timeline/timeline_store.h"
#include "tests/testing/await.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_cluster_for_test.h"
#include "tests/testing/redis_test.h"

namespace onestory::outbox {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;

v1::Event Negative(const std::string& id) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_VOICE);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  e.set_summary("unhappy " + id);
  e.set_sentiment(-0.9f);
  return e;
}

// A customer's stores over one client: identity and timeline, as the server wires them.
struct Stores {
  explicit Stores(redis::Client* client)
      : identity(client), timeline(client, &identity, timeline::EngagementPolicy()) {}

  std::string NewCustomer(const std::string& phone) {
    auto r = Await<identity::IdentityStore::Resolved>([&](auto done) {
      identity.Resolve("acme", onestory::testing::Id(v1::IDENTIFIER_TYPE_PHONE, phone), true,
                       Deadline(), std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->customer_id : "";
  }
  absl::Status Append(const std::string& customer, const std::vector<std::string>& ids) {
    v1::AppendRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer);
    for (const std::string& id : ids) *req.add_events() = Negative(id);
    return Await<v1::AppendResponse>(
               [&](auto done) { timeline.Append(req, Deadline(), std::move(done)); })
        .status();
  }

  identity::IdentityStore identity;
  timeline::TimelineStore timeline;
};

class OutboxTest : public onestory::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    stores_ = std::make_unique<Stores>(client_.get());
  }
  // The tenant's alerts, over every bucket.
  int64_t Alerts() {
    int64_t n = 0;
    for (int b = 0; b < keys::kTenantBuckets; ++b) {
      n += redis_->Run({"XLEN", keys::TenantKeys("acme", b).alert_log()}).integer;
    }
    return n;
  }
  int64_t OutboxLength(const std::string& customer) {
    return redis_->Run({"XLEN", keys::CustomerKeys("acme", customer).outbox()}).integer;
  }
  // Writes what an Append writes, as an instance killed before its drain leaves it: the
  // events and their outbox entries, and the mark (Settle's ZINCRBY), nothing applied.
  void AppendThenCrash(const std::string& customer, int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      v1::AppendRequest req;
      // The stores' own client drains; this one only writes.
      redis_->Run({"ZINCRBY", keys::PendingOutboxKey("acme", customer), "1",
                   absl::StrCat("acme|", customer)});
      ASSERT_TRUE(stores_->Append(customer, {absl::StrCat(prefix, i)}).ok());
    }
  }

  // The bucket of customer c's journey entries and activity.
  static keys::TenantKeys Bucket(const std::string& c) {
    return keys::TenantKeys("acme", keys::TenantBucket(c));
  }

  const keys::TenantKeys tk_{"acme"};
  std::unique_ptr<Stores> stores_;
};

TEST_F(OutboxTest, AnAppendsAlertAndActivityAreAppliedOnceRightAfterItAnswers) {
  std::string c = stores_->NewCustomer("14155550100");
  // Three negative events in a row: NEGATIVE_STREAK (the default threshold is 3).
  ASSERT_TRUE(stores_->Append(c, {"e1", "e2", "e3"}).ok());
  ASSERT_TRUE(redis_->AwaitOutboxesDrained());
  EXPECT_EQ(Alerts(), 1);
  EXPECT_EQ(OutboxLength(c), 0);
  EXPECT_EQ(redis_->Run({"EXISTS", keys::CustomerKeys("acme", c).outbox()}).integer, 0)
      << "a drained outbox is deleted";
  EXPECT_FALSE(redis_->Run({"ZSCORE", Bucket(c).activity(), c}).is_nil());
  // A retry of the same events: nothing stored twice, no second alert.
  ASSERT_TRUE(stores_->Append(c, {"e1", "e2", "e3"}).ok());
  ASSERT_TRUE(redis_->AwaitOutboxesDrained());
  EXPECT_EQ(Alerts(), 1);
}

TEST_F(OutboxTest, TwoDrainsAtOnceApplyEachEntryOnce) {
  std::string c = stores_->NewCustomer("14155550100");
  const keys::CustomerKeys ck("acme", c);
  // Entries as the functions write them (libs/outbox/lua/write.lua): two counts and an alert.
  for (const auto& [s, fields] : std::vector<std::pair<int, std::vector<std::string>>>{
           {1, {"t", "n", "f", "shipped:repeats"}},
           {2, {"t", "a", "id", "x:1", "k", "2", "ca", "", "msg", "m", "at", "5"}},
           {3, {"t", "n", "f", "shipped:repeats"}}}) {
    std::vector<std::string> argv = {"XADD", ck.outbox(), "*", "s", absl::StrCat(s)};
    argv.insert(argv.end(), fields.begin(), fields.end());
    redis_->Run(argv);
  }
  std::vector<absl::StatusOr<int64_t>> results(2, absl::UnknownError("no answer"));
  absl::BlockingCounter both(2);
  for (int i = 0; i < 2; ++i) {
    Drain(client_.get(), "acme", c, 0, Deadline(), [&, i](absl::StatusOr<int64_t> n) {
      results[i] = n;
      both.DecrementCount();
    });
  }
  both.Wait();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(redis_->Run({"HGET", Bucket(c).journey_counters(), "shipped:repeats"}).str, "2");
  EXPECT_EQ(Alerts(), 1);
  // In the bucket of the customer whose outbox raised it.
  EXPECT_EQ(
      redis_->Run({"ZSCORE", keys::TenantKeys("acme", keys::TenantBucket(c)).alert_open(), "x:1"})
          .str,
      "5");
  EXPECT_EQ(OutboxLength(c), 0);
  // The same entries once more (a drain that read them before they were deleted): skipped.
  redis_->Run({"XADD", ck.outbox(), "*", "s", "3", "t", "n", "f", "shipped:repeats"});
  ASSERT_TRUE(Await<int64_t>([&](auto done) {
                Drain(client_.get(), "acme", c, 0, Deadline(), std::move(done));
              }).ok());
  EXPECT_EQ(redis_->Run({"HGET", Bucket(c).journey_counters(), "shipped:repeats"}).str, "2");
}

TEST_F(OutboxTest, AnEntryOfAnUnknownKindStopsTheDrainThere) {
  std::string c = stores_->NewCustomer("14155550100");
  const keys::CustomerKeys ck("acme", c);
  redis_->Run({"XADD", ck.outbox(), "*", "s", "1", "t", "n", "f", "a:b"});
  redis_->Run({"XADD", ck.outbox(), "*", "s", "2", "t", "z"});
  redis_->Run({"XADD", ck.outbox(), "*", "s", "3", "t", "n", "f", "a:b"});
  auto n = Await<int64_t>(
      [&](auto done) { Drain(client_.get(), "acme", c, 0, Deadline(), std::move(done)); });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(redis_->Run({"HGET", Bucket(c).journey_counters(), "a:b"}).str, "1");
  EXPECT_EQ(OutboxLength(c), 2) << "the unknown entry and what follows wait for a newer version";
  n = Await<int64_t>(
      [&](auto done) { Drain(client_.get(), "acme", c, 0, Deadline(), std::move(done)); });
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition) << n.status();
}

TEST_F(OutboxTest, TheSweeperFinishesWhatAKilledInstanceLeftMarked) {
  std::string c = stores_->NewCustomer("14155550100");
  const keys::CustomerKeys ck("acme", c);
  // As if the instance died after the function and its mark, before any drain.
  redis_->Run({"XADD", ck.outbox(), "*", "s", "1", "t", "a", "id", "k:1", "k", "3", "ca", "", "msg",
               "m", "at", "7"});
  redis_->Run({"XADD", ck.outbox(), "*", "s", "2", "t", "x", "at", "9"});
  redis_->Run({"ZINCRBY", keys::PendingOutboxKey("acme", c), "1", absl::StrCat("acme|", c)});
  Sweeper sweeper(client_.get());
  Sweeper::Stats first = sweeper.RunOnce(Deadline());
  EXPECT_EQ(first.marked, 1);
  EXPECT_EQ(first.drained, 0) << "a mark seen once may belong to a call settling right now";
  Sweeper::Stats second = sweeper.RunOnce(Deadline());
  EXPECT_EQ(second.drained, 1);
  EXPECT_EQ(second.entries, 2);
  EXPECT_EQ(Alerts(), 1);
  EXPECT_EQ(redis_->Run({"ZSCORE", Bucket(c).activity(), c}).str, "9");
  EXPECT_EQ(redis_->Run({"EXISTS", keys::PendingOutboxKey("acme", c)}).integer, 0);
  // A mark that names no customer (written by hand) is removed, not drained.
  redis_->Run({"ZADD", keys::PendingOutboxKey(3), "1", "not a member"});
  sweeper.RunOnce(Deadline());
  EXPECT_EQ(redis_->Run({"EXISTS", keys::PendingOutboxKey(3)}).integer, 0);
  // A mark that moves between passes is left to the call that moved it.
  redis_->Run({"ZINCRBY", keys::PendingOutboxKey("acme", c), "1", absl::StrCat("acme|", c)});
  sweeper.RunOnce(Deadline());
  redis_->Run({"ZINCRBY", keys::PendingOutboxKey("acme", c), "1", absl::StrCat("acme|", c)});
  EXPECT_EQ(sweeper.RunOnce(Deadline()).drained, 0);
}

// On a cluster: the customer's keys, its bucket of the tenant's alert log and the customer's
// pending mark on different primaries (a function touching a key of another slot would be
// refused), and Append with its alert works end to end.
TEST(OutboxClusterTest, AppendAndItsAlertWorkAcrossPrimaries) {
  onestory::testing::RedisClusterForTest cluster;
  redis::Client client(cluster.ClientOptions());
  Stores stores(&client);
  const keys::TenantKeys tk("acme");
  std::string c;
  int alerts_primary = 0;
  std::string alert_log;
  for (int i = 0; i < 20 && c.empty(); ++i) {
    std::string id = stores.NewCustomer(absl::StrCat("1415555010", i));
    const int customer_primary =
        cluster.PrimaryOf(redis::KeySlot(keys::CustomerKeys("acme", id).profile()));
    alert_log = keys::TenantKeys("acme", keys::TenantBucket(id)).alert_log();
    alerts_primary = cluster.PrimaryOf(redis::KeySlot(alert_log));
    if (customer_primary != alerts_primary) c = id;
  }
  ASSERT_FALSE(c.empty()) << "no customer landed on another primary than the alert log";
  ASSERT_TRUE(stores.Append(c, {"e1", "e2", "e3"}).ok());
  std::set<int> primaries = {
      alerts_primary, cluster.PrimaryOf(redis::KeySlot(keys::CustomerKeys("acme", c).timeline())),
      cluster.PrimaryOf(redis::KeySlot(keys::PendingOutboxKey("acme", c))),
      cluster.PrimaryOf(
          redis::KeySlot(keys::TenantKeys("acme", keys::TenantBucket(c)).activity()))};
  EXPECT_GE(primaries.size(), 2u);
  const absl::Time until = absl::Now() + absl::Seconds(10);
  int64_t alerts = 0;
  while (absl::Now() < until) {
    alerts = cluster.Run(alerts_primary, {"XLEN", alert_log}).integer;
    if (alerts > 0) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(alerts, 1);
  const int customer_primary =
      cluster.PrimaryOf(redis::KeySlot(keys::CustomerKeys("acme", c).timeline()));
  EXPECT_EQ(
      cluster.Run(customer_primary, {"XLEN", keys::CustomerKeys("acme", c).timeline()}).integer, 3);
}

// The case calls on a cluster: the customer's keys, the tenant's journey and the due-promise
// index in other slots, each changed in its own; journey stats and the due index follow.
TEST(OutboxClusterTest, CasesMoveTheJourneyAndTheDueIndexAcrossPrimaries) {
  onestory::testing::RedisClusterForTest cluster;
  redis::Client client(cluster.ClientOptions());
  Stores stores(&client);
  engagement::CaseStore cases(engagement::StoreContext{&client, &stores.identity, {}, nullptr});
  v1::SetJourneyRequest journey;
  journey.set_tenant("acme");
  journey.add_stages("ordered");
  journey.add_stages("shipped");
  ASSERT_TRUE(Await<v1::Journey>([&](auto done) {
                cases.SetJourney(journey, Deadline(), std::move(done));
              }).ok());
  // The customer's journey bucket and due-promise bucket.
  std::string c, due_key;
  int due_primary = -1;
  for (int i = 0; i < 20 && c.empty(); ++i) {
    std::string id = stores.NewCustomer(absl::StrCat("1415555020", i));
    const int p = cluster.PrimaryOf(redis::KeySlot(keys::CustomerKeys("acme", id).cases()));
    const int journey_primary = cluster.PrimaryOf(
        redis::KeySlot(keys::TenantKeys("acme", keys::TenantBucket(id)).journey_open()));
    const std::string due = keys::DuePromisesKey(keys::DueBucket("acme", id));
    if (p != journey_primary && p != cluster.PrimaryOf(redis::KeySlot(due))) {
      c = id;
      due_key = due;
      due_primary = cluster.PrimaryOf(redis::KeySlot(due));
    }
  }
  ASSERT_FALSE(c.empty()) << "no customer landed away from its journey and due buckets";

  v1::Actor agent;
  agent.set_type(v1::Actor::TYPE_AGENT);
  agent.set_id("agent-1");
  v1::OpenCaseRequest open;
  open.set_tenant("acme");
  open.mutable_customer()->set_customer_id(c);
  open.set_case_id("case-1");
  open.set_topic("late parcel");
  *open.mutable_actor() = agent;
  open.set_channel(v1::CHANNEL_VOICE);
  auto opened = Await<v1::OpenCaseResponse>(
      [&](auto done) { cases.Open(open, Deadline(), std::move(done)); });
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->case_().stage(), "ordered");

  v1::UpdateCaseRequest update;
  update.set_tenant("acme");
  update.mutable_customer()->set_customer_id(c);
  update.set_case_id("case-1");
  *update.mutable_actor() = agent;
  update.set_channel(v1::CHANNEL_VOICE);
  update.set_stage("shipped");
  update.set_promise("a call back");
  *update.mutable_promised_by() = FromMillis(NowMillis() + 3600000);
  auto updated = Await<v1::UpdateCaseResponse>(
      [&](auto done) { cases.Update(update, Deadline(), std::move(done)); });
  ASSERT_TRUE(updated.ok()) << updated.status();

  auto stats = [&] {
    return Await<v1::GetJourneyStatsResponse>([&](auto done) {
      v1::GetJourneyStatsRequest req;
      req.set_tenant("acme");
      cases.GetJourneyStats(req, Deadline(), std::move(done));
    });
  };
  const std::string member = absl::StrCat("acme|", c, "|case-1");
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until && cluster.Run(due_primary, {"ZSCORE", due_key, member}).is_nil()) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_FALSE(cluster.Run(due_primary, {"ZSCORE", due_key, member}).is_nil());
  // The journey entries go to another bucket by drains of their own: the due entry being there
  // says nothing of them (seen under load), so wait for the stage to count the case.
  auto s = stats();
  while (absl::Now() < until && s.ok() && s->stages_size() == 2 && s->stages(1).open_cases() != 1) {
    absl::SleepFor(absl::Milliseconds(5));
    s = stats();
  }
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->stages_size(), 2);
  EXPECT_EQ(s->stages(0).open_cases(), 0);
  EXPECT_EQ(s->stages(1).open_cases(), 1);
  EXPECT_EQ(s->stages(0).entered(), 1);
  EXPECT_EQ(s->stages(1).entered(), 1);

  v1::ResolveCaseRequest resolve;
  resolve.set_tenant("acme");
  resolve.mutable_customer()->set_customer_id(c);
  resolve.set_case_id("case-1");
  *resolve.mutable_actor() = agent;
  resolve.set_channel(v1::CHANNEL_VOICE);
  ASSERT_TRUE(Await<v1::ResolveCaseResponse>([&](auto done) {
                cases.Resolve(resolve, Deadline(), std::move(done));
              }).ok());
  const absl::Time until2 = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until2 && !cluster.Run(due_primary, {"ZSCORE", due_key, member}).is_nil()) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(cluster.Run(due_primary, {"ZSCORE", due_key, member}).is_nil());
  s = stats();
  while (absl::Now() < until2 && s.ok() && s->stages_size() == 2 &&
         s->stages(1).open_cases() != 0) {
    absl::SleepFor(absl::Milliseconds(5));
    s = stats();
  }
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stages(1).open_cases(), 0);
}

}  // namespace
}  // namespace onestory::outbox
