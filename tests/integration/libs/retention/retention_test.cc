// Retention against a real redis-server: trimming at append (libs/retention/trim_lua.h through
// TimelineStore) and the Sweeper.
#include "libs/retention/retention.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/retention/sweeper.h"
#include "libs/retention/trim_lua.h"
#include "libs/timeline/timeline_store.h"
#include "tests/testing/await.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_test.h"

namespace onestory::retention {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;

v1::Event MakeEvent(const std::string& id) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_CHATBOT);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  e.set_summary("summary of " + id);
  return e;
}

Rules TenantRules(const std::string& tenant, const std::string& line) {
  absl::StatusOr<Rules> r = ParseRules(absl::StrCat(tenant, " ", line, "\n"));
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

// Records the erase calls and answers them with `answer`.
struct FakeErase {
  absl::Mutex mu;
  std::vector<std::string> calls;  // "<tenant>/<customer>"
  absl::StatusOr<bool> answer = true;

  Sweeper::EraseFn Fn() {
    return [this](std::string tenant, std::string id, Callback<bool> done) {
      absl::StatusOr<bool> a = true;
      {
        absl::MutexLock l(&mu);
        calls.push_back(absl::StrCat(tenant, "/", id));
        a = answer;
      }
      done(a);
    };
  }
  std::vector<std::string> Calls() {
    absl::MutexLock l(&mu);
    return calls;
  }
};

class RetentionTest : public onestory::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    identity_ = std::make_unique<identity::IdentityStore>(client_.get());
    timeline::EngagementPolicy engagement;
    engagement.retention = &policy_;
    timeline_ =
        std::make_unique<timeline::TimelineStore>(client_.get(), identity_.get(), engagement);
  }

  std::string NewCustomer(const std::string& tenant, const std::string& phone) {
    auto r = Await<identity::IdentityStore::Resolved>([&](auto done) {
      identity_->Resolve(tenant, onestory::testing::Id(v1::IDENTIFIER_TYPE_PHONE, phone), true,
                         Deadline(), std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->customer_id : "";
  }

  absl::StatusOr<v1::AppendResponse> Append(const std::string& tenant, const std::string& id,
                                            const std::vector<std::string>& event_ids) {
    v1::AppendRequest req;
    req.set_tenant(tenant);
    req.mutable_customer()->set_customer_id(id);
    for (const std::string& e : event_ids) *req.add_events() = MakeEvent(e);
    auto r = Await<v1::AppendResponse>(
        [&](auto done) { timeline_->Append(req, Deadline(), std::move(done)); });
    // The activity index is written right after the answer (libs/outbox).
    EXPECT_TRUE(redis_->AwaitOutboxesDrained());
    return r;
  }

  // The event ids in the customer's timeline, oldest first (from the dedup hash's view too).
  std::vector<std::string> StoredIds(const std::string& tenant, const std::string& id) {
    keys::CustomerKeys ck(tenant, id);
    redis::Reply r = redis_->Run({"XRANGE", ck.timeline(), "-", "+"});
    std::vector<std::string> ids;
    for (const redis::Reply& entry : r.elements) {
      v1::Event e;
      EXPECT_TRUE(e.ParseFromString(entry.elements[1].elements[1].str));
      ids.push_back(e.event_id());
    }
    EXPECT_EQ(redis_->Run({"HLEN", ck.dedup()}).integer, static_cast<int64_t>(ids.size()))
        << "the dedup hash holds exactly the stored events";
    return ids;
  }

  std::vector<std::string> Range(int from, int to) {  // "e<from>" .. "e<to>"
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i) out.push_back(absl::StrCat("e", i));
    return out;
  }

  // As the outbox applies an activity: into the bucket of the customer (or `bucket`), the tenant
  // in the tenant registry.
  void SetActivity(const std::string& tenant, const std::string& id, int64_t ms, int bucket = -1) {
    redis_->Run({"SADD", keys::TenantRegistryKey(), tenant});
    redis_->Run({"ZADD", Index(tenant, bucket < 0 ? keys::TenantBucket(id) : bucket),
                 absl::StrCat(ms), id});
  }
  static std::string Index(const std::string& tenant, int bucket) {
    return keys::TenantKeys(tenant, bucket).activity();
  }
  bool Indexed(const std::string& tenant, const std::string& id) {
    return !redis_->Run({"ZSCORE", Index(tenant, keys::TenantBucket(id)), id}).is_nil();
  }

  Policy policy_;
  std::unique_ptr<identity::IdentityStore> identity_;
  std::unique_ptr<timeline::TimelineStore> timeline_;
};

TEST_F(RetentionTest, AppendsKeepExactlyTheNewestMaxEventsUnder200) {
  policy_.Set(TenantRules("acme", "max_events=10"));
  std::string id = NewCustomer("acme", "14155550100");
  int next = 1;
  for (int batch : {7, 8, 10, 1}) {
    ASSERT_TRUE(Append("acme", id, Range(next, next + batch - 1)).ok());
    next += batch;
    EXPECT_LE(StoredIds("acme", id).size(), 10u);
  }
  EXPECT_EQ(StoredIds("acme", id), Range(17, 26));
  // A trimmed event's id left the dedup hash with it: sent again, it is stored again.
  auto again = Append("acme", id, {"e1", "e26"});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->results(0).duplicate());
  EXPECT_TRUE(again->results(1).duplicate());
  std::vector<std::string> want = Range(18, 26);
  want.push_back("e1");
  EXPECT_EQ(StoredIds("acme", id), want);
}

TEST_F(RetentionTest, AppendsTrimLargeLimitsInBatchesKeepingTheNewest) {
  policy_.Set(TenantRules("acme", "max_events=1000"));  // slack: min(100, 1000 / 100) = 10
  std::string id = NewCustomer("acme", "14155550100");
  int appended = 0;
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(Append("acme", id, Range(appended + 1, appended + 50)).ok());
    appended += 50;
    std::vector<std::string> stored = StoredIds("acme", id);
    ASSERT_LE(stored.size(), 1010u) << "after " << appended;
    ASSERT_GE(stored.size(), std::min<size_t>(appended, 1000u));
    // Whatever is kept is the newest: the stored ids end at the last appended, in order.
    EXPECT_EQ(stored, Range(appended - static_cast<int>(stored.size()) + 1, appended));
  }
}

TEST_F(RetentionTest, AppendsRemoveEventsOlderThanMaxAge) {
  policy_.Set(TenantRules("acme", "max_age=1s"));
  std::string id = NewCustomer("acme", "14155550100");
  ASSERT_TRUE(Append("acme", id, {"e1", "e2"}).ok());
  absl::SleepFor(absl::Milliseconds(1100));
  ASSERT_TRUE(Append("acme", id, {"e3"}).ok());
  EXPECT_EQ(StoredIds("acme", id), std::vector<std::string>{"e3"});
}

TEST_F(RetentionTest, AppendsIndexTheLatestActivity) {
  std::string id = NewCustomer("acme", "14155550100");
  int64_t before = absl::ToUnixMillis(absl::Now());
  ASSERT_TRUE(Append("acme", id, {"e1"}).ok());
  redis::Reply score = redis_->Run({"ZSCORE", Index("acme", keys::TenantBucket(id)), id});
  ASSERT_FALSE(score.is_nil());
  EXPECT_GE(std::stoll(score.str), before);
  EXPECT_LE(std::stoll(score.str), absl::ToUnixMillis(absl::Now()));
}

TEST_F(RetentionTest, SweeperTrimsCustomersNotWrittenRecently) {
  policy_.Set(TenantRules("acme", "max_age=1h"));
  std::string idle = NewCustomer("acme", "14155550100");
  ASSERT_TRUE(Append("acme", idle, Range(1, 5)).ok());
  absl::Time now = absl::Now();
  FakeErase erase;
  Sweeper::Options options;
  options.skip_recent = absl::Minutes(10);
  // 5 minutes on: the append was recent, it did the trimming (nothing old then).
  options.clock = [now] { return now + absl::Minutes(5); };
  {
    Sweeper sweeper(client_.get(), &policy_, erase.Fn(), options);
    Sweeper::Stats s = sweeper.RunOnce(Deadline());
    EXPECT_TRUE(s.finished);
    EXPECT_EQ(s.customers_checked, 0);
    EXPECT_EQ(StoredIds("acme", idle).size(), 5u);
  }
  // 2 hours on, with no append since: every event is past max_age.
  options.clock = [now] { return now + absl::Hours(2); };
  Sweeper sweeper(client_.get(), &policy_, erase.Fn(), options);
  Sweeper::Stats s = sweeper.RunOnce(Deadline());
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(s.tenants, 1);
  EXPECT_EQ(s.customers_checked, 1);
  EXPECT_EQ(s.events_trimmed, 5);
  EXPECT_EQ(s.customers_expired, 0);
  EXPECT_TRUE(StoredIds("acme", idle).empty());
  EXPECT_TRUE(Indexed("acme", idle)) << "no inactive_after: the customer stays";
  EXPECT_TRUE(erase.Calls().empty());
}

TEST_F(RetentionTest, SweeperTrimsOnlyWhatIsOld) {
  policy_.Set(TenantRules("acme", "max_age=1h"));
  std::string id = NewCustomer("acme", "14155550100");
  ASSERT_TRUE(Append("acme", id, {"e1", "e2"}).ok());
  FakeErase erase;
  Sweeper::Options options;
  options.skip_recent = absl::ZeroDuration();
  Sweeper sweeper(client_.get(), &policy_, erase.Fn(), options);
  Sweeper::Stats s = sweeper.RunOnce(Deadline());
  EXPECT_EQ(s.customers_checked, 1);
  EXPECT_EQ(s.events_trimmed, 0);
  EXPECT_EQ(StoredIds("acme", id), (std::vector<std::string>{"e1", "e2"}));
}

TEST_F(RetentionTest, SweeperAppliesALoweredMaxEventsToIdleCustomers) {
  std::string id = NewCustomer("acme", "14155550100");
  ASSERT_TRUE(Append("acme", id, Range(1, 30)).ok());
  policy_.Set(TenantRules("acme", "max_age=365d max_events=10"));
  FakeErase erase;
  Sweeper::Options options;
  options.skip_recent = absl::ZeroDuration();
  options.max_trim_per_customer = 15;  // two passes to get there
  Sweeper sweeper(client_.get(), &policy_, erase.Fn(), options);
  EXPECT_EQ(sweeper.RunOnce(Deadline()).events_trimmed, 15);
  EXPECT_EQ(sweeper.RunOnce(Deadline()).events_trimmed, 5);
  EXPECT_EQ(StoredIds("acme", id), Range(21, 30));
}

TEST_F(RetentionTest, SweeperExpiresInactiveCustomersOnly) {
  policy_.Set(TenantRules("acme", "inactive_after=1d"));
  std::string gone = NewCustomer("acme", "14155550100");
  std::string active = NewCustomer("acme", "14155550101");
  ASSERT_TRUE(Append("acme", gone, {"e1"}).ok());
  ASSERT_TRUE(Append("acme", active, {"e1"}).ok());
  int64_t now = absl::ToUnixMillis(absl::Now());
  SetActivity("acme", gone, now - 25 * 3600 * 1000);  // last stored an event 25 hours ago
  SetActivity("acme", active, now - 23 * 3600 * 1000);
  FakeErase erase;
  Sweeper sweeper(client_.get(), &policy_, erase.Fn());
  Sweeper::Stats s = sweeper.RunOnce(Deadline());
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(s.customers_checked, 1);
  EXPECT_EQ(s.customers_expired, 1);
  EXPECT_EQ(erase.Calls(), std::vector<std::string>{"acme/" + gone});
  EXPECT_FALSE(Indexed("acme", gone));
  EXPECT_TRUE(Indexed("acme", active));
  EXPECT_EQ(sweeper.RunOnce(Deadline()).customers_checked, 0);
  EXPECT_EQ(erase.Calls().size(), 1u);
}

TEST_F(RetentionTest, SweeperRetriesAFailedEraseOnTheNextPass) {
  policy_.Set(TenantRules("acme", "inactive_after=1d"));
  std::string id = NewCustomer("acme", "14155550100");
  ASSERT_TRUE(Append("acme", id, {"e1"}).ok());
  SetActivity("acme", id, absl::ToUnixMillis(absl::Now() - absl::Hours(48)));
  FakeErase erase;
  erase.answer = absl::UnavailableError("privacy store down");
  Sweeper sweeper(client_.get(), &policy_, erase.Fn());
  Sweeper::Stats s = sweeper.RunOnce(Deadline());
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.customers_expired, 0);
  EXPECT_TRUE(Indexed("acme", id));
  {
    absl::MutexLock l(&erase.mu);
    erase.answer = false;  // nothing to erase (any more)
  }
  s = sweeper.RunOnce(Deadline());
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(s.customers_expired, 0);
  EXPECT_FALSE(Indexed("acme", id));
  EXPECT_EQ(erase.Calls().size(), 2u);
}

TEST_F(RetentionTest, SweeperDropsMergedAndUnknownCustomersWithoutErasing) {
  policy_.Set(TenantRules("acme", "inactive_after=1d"));
  std::string merged = NewCustomer("acme", "14155550100");
  std::string locked = NewCustomer("acme", "14155550101");
  redis_->Run({"HSET", keys::CustomerKeys("acme", merged).profile(), "merged_into", "cus_x"});
  redis_->Run({"HSET", keys::CustomerKeys("acme", locked).profile(), "merge_lock", "mrg_1"});
  int64_t old = absl::ToUnixMillis(absl::Now() - absl::Hours(48));
  SetActivity("acme", merged, old);
  SetActivity("acme", locked, old);
  SetActivity("acme", "cus_unknown", old);
  SetActivity("acme", "bad}id", old);
  FakeErase erase;
  Sweeper sweeper(client_.get(), &policy_, erase.Fn());
  Sweeper::Stats s = sweeper.RunOnce(Deadline());
  EXPECT_EQ(s.customers_checked, 4);
  EXPECT_TRUE(erase.Calls().empty());
  EXPECT_FALSE(Indexed("acme", merged));
  EXPECT_FALSE(Indexed("acme", "cus_unknown"));
  EXPECT_FALSE(Indexed("acme", "bad}id"));
  EXPECT_TRUE(Indexed("acme", locked)) << "a merge in progress: left for the next pass";
}

TEST_F(RetentionTest, SweeperWalksEveryCustomerOnceInSmallBatches) {
  policy_.Set(TenantRules("acme", "inactive_after=1d"));
  // Scores with ties, across batch boundaries and filling whole batches.
  std::vector<int64_t> scores = {1, 2, 2, 2, 2, 2, 3, 4, 4, 5};
  std::set<std::string> ids;
  for (size_t i = 0; i < scores.size(); ++i) {
    std::string id = NewCustomer("acme", absl::StrCat("1415555010", i));
    ids.insert(id);
    SetActivity("acme", id, 1000000 + scores[i], /*bucket=*/5);  // ties within one bucket
  }
  FakeErase erase;
  erase.answer = absl::UnavailableError("keep them");
  Sweeper::Options options;
  options.batch = 2;
  Sweeper sweeper(client_.get(), &policy_, erase.Fn(), options);
  Sweeper::Stats s = sweeper.RunOnce(Deadline());
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(s.customers_checked, 10);
  std::vector<std::string> calls = erase.Calls();
  EXPECT_EQ(std::multiset<std::string>(calls.begin(), calls.end()).size(), 10u);
  EXPECT_EQ(std::set<std::string>(calls.begin(), calls.end()).size(), 10u);

  // The same when each step drops what it looked at from the index.
  {
    absl::MutexLock l(&erase.mu);
    erase.answer = true;
    erase.calls.clear();
  }
  s = sweeper.RunOnce(Deadline());
  EXPECT_EQ(s.customers_checked, 10);
  EXPECT_EQ(s.customers_expired, 10);
  calls = erase.Calls();
  EXPECT_EQ(std::set<std::string>(calls.begin(), calls.end()).size(), 10u);
  EXPECT_EQ(redis_->Run({"ZCARD", Index("acme", 5)}).integer, 0);
}

TEST_F(RetentionTest, SweeperFindsEveryTenantAndResumesAfterTheDeadline) {
  absl::StatusOr<Rules> rules = ParseRules("* inactive_after=1d\n");
  ASSERT_TRUE(rules.ok());
  policy_.Set(*rules);
  int64_t old = absl::ToUnixMillis(absl::Now() - absl::Hours(48));
  std::string a = NewCustomer("acme", "14155550100");
  std::string b = NewCustomer("beta", "14155550100");
  SetActivity("acme", a, old);
  SetActivity("beta", b, old);
  FakeErase erase;
  Sweeper::Options options;
  options.scan_count = 1;  // discovery over several SSCAN calls
  Sweeper sweeper(client_.get(), &policy_, erase.Fn(), options);
  Sweeper::Stats s = sweeper.RunOnce(absl::Now() - absl::Seconds(1));  // no time at all
  EXPECT_EQ(s.customers_checked, 0);
  s = sweeper.RunOnce(Deadline());
  EXPECT_TRUE(s.finished);
  EXPECT_EQ(s.tenants, 2);
  EXPECT_EQ(s.customers_expired, 2);
  std::vector<std::string> calls = erase.Calls();
  EXPECT_EQ(std::set<std::string>(calls.begin(), calls.end()),
            (std::set<std::string>{"acme/" + a, "beta/" + b}));
}

TEST_F(RetentionTest, TrimKeepsAMergedTimelineByTheTimeEventsWereFirstStored) {
  // A merge renumbers entries (into the target, from "0-1" when it was empty) and keeps when
  // each was first stored in 'a': age follows 'a', not the id.
  keys::CustomerKeys ck("acme", "cus_t");
  int64_t now = absl::ToUnixMillis(absl::Now());
  for (int i = 1; i <= 3; ++i) {
    v1::Event e = MakeEvent(absl::StrCat("m", i));
    int64_t stored = i == 1 ? now - 7200 * 1000 : now - 60 * 1000;
    redis_->Run({"XADD", ck.timeline(), absl::StrCat("0-", i), "e", e.SerializeAsString(), "a",
                 absl::StrCat(stored)});
    redis_->Run({"HSET", ck.dedup(), e.event_id(), absl::StrCat("0-", i)});
  }
  redis_->Run({"HSET", ck.profile(), "created_at", "1"});
  SetActivity("acme", "cus_t", now - 3600 * 1000);
  policy_.Set(TenantRules("acme", "max_age=1h"));
  FakeErase erase;
  Sweeper sweeper(client_.get(), &policy_, erase.Fn());
  EXPECT_EQ(sweeper.RunOnce(Deadline()).events_trimmed, 1);
  EXPECT_EQ(StoredIds("acme", "cus_t"), (std::vector<std::string>{"m2", "m3"}));
}

}  // namespace
}  // namespace onestory::retention
