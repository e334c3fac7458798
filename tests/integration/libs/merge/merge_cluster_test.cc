// MergeEngine on a local Redis Cluster (3 primaries, 3 replicas): the source's and the target's
// keys on different primaries, the tenant's open-case index and the due-promise index in slots
// of their own. A merge moving an open case with a due promise completes, each step in one
// slot; after its outbox is settled the journey's open-case index and the due index name the
// target; a crash between the staging and the swap is finished by a retry; an Unmerge gives
// the case, its journey entry and its promise back.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/time_util.h"
#include "libs/engagement/case_store.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/merge/merge_engine.h"
#include "libs/redis/slot.h"
#include "libs/timeline/timeline_store.h"
#include "tests/testing/await.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_cluster_for_test.h"

namespace onestory::merge {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;

class MergeClusterTest : public ::testing::Test {
 protected:
  MergeClusterTest()
      : client_(cluster_.ClientOptions()),
        identity_(&client_),
        timeline_(&client_, &identity_, timeline::EngagementPolicy()),
        cases_(engagement::StoreContext{&client_, &identity_, {}, nullptr}),
        engine_(&client_, [this](const std::string& step) { return step == failpoint_; }) {
    agent_.set_type(v1::Actor::TYPE_AGENT);
    agent_.set_id("agent-1");
  }

  std::string NewCustomer(const std::string& phone) {
    auto r = Await<identity::IdentityStore::Resolved>([&](auto done) {
      identity_.Resolve("acme", onestory::testing::Id(v1::IDENTIFIER_TYPE_PHONE, phone), true,
                        Deadline(), std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->customer_id : "";
  }
  int PrimaryOf(const std::string& key) { return cluster_.PrimaryOf(redis::KeySlot(key)); }

  // Opens case `id` of `customer` (it enters the journey's first stage).
  void OpenCase(const std::string& customer, const std::string& id) {
    v1::OpenCaseRequest open;
    open.set_tenant("acme");
    open.mutable_customer()->set_customer_id(customer);
    open.set_case_id(id);
    open.set_topic("late parcel");
    *open.mutable_actor() = agent_;
    open.set_channel(v1::CHANNEL_VOICE);
    auto r = Await<v1::OpenCaseResponse>(
        [&](auto done) { cases_.Open(open, Deadline(), std::move(done)); });
    ASSERT_TRUE(r.ok()) << r.status();
  }
  absl::StatusOr<v1::Case> GetCase(const std::string& customer, const std::string& id) {
    v1::GetCaseRequest get;
    get.set_tenant("acme");
    get.mutable_customer()->set_customer_id(customer);
    get.set_case_id(id);
    return Await<v1::Case>([&](auto done) { cases_.Get(get, Deadline(), std::move(done)); });
  }
  // The open-case index's members, over the tenant's journey buckets.
  std::vector<std::string> OpenIndex() {
    std::vector<std::string> out;
    for (int b = 0; b < keys::kTenantBuckets; ++b) {
      const std::string key = keys::TenantKeys("acme", b).journey_open();
      for (const auto& m : cluster_.Run(PrimaryOf(key), {"ZRANGE", key, "0", "-1"}).elements) {
        out.push_back(m.str);
      }
    }
    return out;
  }
  // The due time the index holds for a customer's case (in the customer's due bucket).
  std::string Due(const std::string& customer, const std::string& case_id) {
    const std::string key = keys::DuePromisesKey(keys::DueBucket("acme", customer));
    redis::Reply r = cluster_.Run(PrimaryOf(key),
                                  {"ZSCORE", key, absl::StrCat("acme|", customer, "|", case_id)});
    return r.is_string() ? r.str : "";
  }
  // Waits up to 10 s for `ok` (the outbox drained after the step that settled it).
  template <typename F>
  bool WaitFor(F ok) {
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (absl::Now() < until) {
      if (ok()) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return ok();
  }
  static std::vector<std::string> Naming(const std::vector<std::string>& members,
                                         const std::string& customer_case) {
    std::vector<std::string> out;
    for (const auto& m : members) {
      if (absl::EndsWith(m, customer_case)) out.push_back(m.substr(0, m.find('|')));
    }
    return out;
  }

  onestory::testing::RedisClusterForTest cluster_;
  redis::Client client_;
  identity::IdentityStore identity_;
  timeline::TimelineStore timeline_;
  engagement::CaseStore cases_;
  std::string failpoint_;
  MergeEngine engine_;
  v1::Actor agent_;
};

TEST_F(MergeClusterTest, AMergeMovesAnOpenCaseAndItsPromiseAndAnUnmergeGivesThemBack) {
  v1::SetJourneyRequest journey;
  journey.set_tenant("acme");
  journey.add_stages("ordered");
  journey.add_stages("shipped");
  ASSERT_TRUE(Await<v1::Journey>([&](auto done) {
                cases_.SetJourney(journey, Deadline(), std::move(done));
              }).ok());

  // A source and a target on different primaries.
  const std::string src = NewCustomer("14155550300");
  std::string tgt;
  for (int i = 1; i < 30 && tgt.empty(); ++i) {
    std::string id = NewCustomer(absl::StrCat("1415555030", i));
    if (PrimaryOf(keys::CustomerKeys("acme", id).profile()) !=
        PrimaryOf(keys::CustomerKeys("acme", src).profile())) {
      tgt = id;
    }
  }
  ASSERT_FALSE(tgt.empty()) << "no customer landed on another primary than the source";
  const keys::CustomerKeys sk("acme", src), tk("acme", tgt);
  ASSERT_NE(PrimaryOf(sk.cases()), PrimaryOf(tk.cases()));

  // The source's open case, moved on to "shipped" with a promise; the target's own in "ordered".
  OpenCase(src, "case-s");
  v1::UpdateCaseRequest update;
  update.set_tenant("acme");
  update.mutable_customer()->set_customer_id(src);
  update.set_case_id("case-s");
  *update.mutable_actor() = agent_;
  update.set_channel(v1::CHANNEL_VOICE);
  update.set_stage("shipped");
  update.set_promise("a call back");
  const int64_t due_ms = (NowMillis() / 1000 + 3600) * 1000;
  *update.mutable_promised_by() = FromMillis(due_ms);
  ASSERT_TRUE(Await<v1::UpdateCaseResponse>([&](auto done) {
                cases_.Update(update, Deadline(), std::move(done));
              }).ok());
  OpenCase(tgt, "case-t");
  ASSERT_TRUE(WaitFor([&] { return !Due(src, "case-s").empty() && OpenIndex().size() == 2; }));
  EXPECT_EQ(Naming(OpenIndex(), absl::StrCat("|", src, "|case-s")),
            std::vector<std::string>{"shipped"});

  // The merge dies before its swap: the staged copies are in the target's slot, nothing moved.
  MergeInput in{"acme", src, tgt, "same person: verified by phone", agent_, {}};
  failpoint_ = "merge.swap";
  auto crashed = Await<MergeEngine::Result>(
      [&](auto done) { engine_.Merge(in, Deadline(), std::move(done)); });
  EXPECT_EQ(crashed.status().code(), absl::StatusCode::kUnavailable) << crashed.status();
  const std::string merge_id =
      cluster_.Run(PrimaryOf(sk.profile()), {"HGET", sk.profile(), "merge_lock"}).str;
  ASSERT_FALSE(merge_id.empty());
  EXPECT_GT(cluster_.Run(PrimaryOf(tk.profile()), {"HLEN", tk.merge_staging_engagement(merge_id)})
                .integer,
            0);
  EXPECT_EQ(cluster_.Run(PrimaryOf(tk.cases()), {"HEXISTS", tk.cases(), "case-s"}).integer, 0);

  // A retry goes on from the swap.
  failpoint_.clear();
  auto merged = Await<MergeEngine::Result>(
      [&](auto done) { engine_.Merge(in, Deadline(), std::move(done)); });
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->record.merge_id(), merge_id);
  EXPECT_EQ(merged->record.state(), v1::MergeRecord::STATE_MERGED);
  EXPECT_EQ(cluster_.Run(PrimaryOf(tk.profile()), {"EXISTS", tk.merge_staging_engagement(merge_id)})
                .integer,
            0);
  auto moved = GetCase(tgt, "case-s");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->stage(), "shipped");
  // The index entries follow once the target's outbox is drained.
  EXPECT_TRUE(WaitFor([&] {
    return Due(src, "case-s").empty() && !Due(tgt, "case-s").empty() &&
           Naming(OpenIndex(), absl::StrCat("|", src, "|case-s")).empty();
  }));
  EXPECT_EQ(Due(tgt, "case-s"), absl::StrCat(due_ms));
  EXPECT_EQ(Naming(OpenIndex(), absl::StrCat("|", tgt, "|case-s")),
            std::vector<std::string>{"shipped"});
  EXPECT_EQ(Naming(OpenIndex(), absl::StrCat("|", tgt, "|case-t")),
            std::vector<std::string>{"ordered"});
  EXPECT_EQ(OpenIndex().size(), 2u);

  // The Unmerge gives the case, its journey entry and its promise back.
  auto unmerged = Await<v1::MergeRecord>([&](auto done) {
    engine_.Unmerge("acme", merge_id, "two people", agent_, Deadline(), std::move(done));
  });
  ASSERT_TRUE(unmerged.ok()) << unmerged.status();
  EXPECT_EQ(unmerged->state(), v1::MergeRecord::STATE_UNMERGED);
  auto back = GetCase(src, "case-s");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->stage(), "shipped");
  EXPECT_EQ(GetCase(tgt, "case-s").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(GetCase(tgt, "case-t").ok());
  EXPECT_TRUE(WaitFor([&] {
    return !Due(src, "case-s").empty() && Due(tgt, "case-s").empty() &&
           Naming(OpenIndex(), absl::StrCat("|", tgt, "|case-s")).empty();
  }));
  EXPECT_EQ(Due(src, "case-s"), absl::StrCat(due_ms));
  EXPECT_EQ(Naming(OpenIndex(), absl::StrCat("|", src, "|case-s")),
            std::vector<std::string>{"shipped"});
  EXPECT_EQ(OpenIndex().size(), 2u);
  // No staging is left on either side.
  EXPECT_EQ(cluster_.Run(PrimaryOf(sk.profile()), {"EXISTS", sk.merge_staging_engagement(merge_id)})
                .integer,
            0);
  EXPECT_EQ(cluster_.Run(PrimaryOf(tk.profile()), {"EXISTS", tk.merge_staging_engagement(merge_id)})
                .integer,
            0);
}

}  // namespace
}  // namespace onestory::merge
