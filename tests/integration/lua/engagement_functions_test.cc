// The functions of libs/engagement/lua/ called directly on hand-built keys: cases entering,
// moving through and leaving the tenant's journey (the open-case index and the stays ring,
// wrapping past 1,000), SetJourney refusing a stage with open cases, the limits passed by name,
// contacts and repeat contacts across the repeat window, journey counts and alerts written to the
// customer's outbox (counted and raised once when applied), the guard on merged and held customers,
// facts, alerts listed, read and acknowledged, and the upgrade of journey data an earlier version
// wrote (GetJourneyStats and ResolveCase answer as before).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/time_util.h"
#include "libs/engagement/case_store.h"
#include "libs/engagement/customer_script.h"
#include "libs/engagement/journey_stats.h"
#include "libs/engagement/journey_upgrade.h"
#include "libs/engagement/records.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/engagement_alert_ack.h"
#include "libs/lua/engagement_alert_list.h"
#include "libs/lua/engagement_alert_promise.h"
#include "libs/lua/engagement_alert_read.h"
#include "libs/lua/engagement_case_get.h"
#include "libs/lua/engagement_case_open.h"
#include "libs/lua/engagement_case_resolve.h"
#include "libs/lua/engagement_case_update.h"
#include "libs/lua/engagement_conversation_end.h"
#include "libs/lua/engagement_conversation_facts.h"
#include "libs/lua/engagement_conversation_handoff.h"
#include "libs/lua/engagement_conversation_start.h"
#include "libs/lua/engagement_journey_set.h"
#include "libs/lua/engagement_journey_stats.h"
#include "libs/lua/engagement_journey_upgrade.h"
#include "onestory/v1/alert.pb.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

constexpr int64_t kNow = 1700000000000;
constexpr int64_t kDay = 86400000;

std::string Ms15(int64_t ms) {
  std::string s = absl::StrCat(ms);
  return std::string(15 - s.size(), '0') + s;
}

class EngagementFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  void Create(const std::string& customer = "cus_1") {
    Run({"HSET", keys::CustomerKeys("acme", customer).profile(), "created_at", "1"});
  }
  template <typename Call>
  Call With(Call call, int64_t now = kNow, const std::string& customer = "cus_1") {
    engagement::SetEffects("acme", customer, now, "", "", policy_, &call);
    if constexpr (requires(Call & c) { c.stages = std::string(); }) {
      // As CaseStore does: the journey lives in another slot, the function is given it.
      redis::Reply stages = Run({"GET", tk_.journey_stages()});
      call.stages = stages.is_nil() ? std::string() : stages.str;
    }
    return call;
  }
  // A case call, then its outbox applied (as the drain after the answer does), so the
  // journey and due-promise index show it.
  absl::StatusOr<redis::Reply> Applied(absl::StatusOr<redis::Reply> r, int64_t now) {
    ApplyOutbox("cus_1", now);
    return r;
  }
  static v1::Event Event(const std::string& id, v1::EventKind kind, int64_t at,
                         const std::string& conversation = "", const std::string& case_id = "") {
    v1::Event e;
    e.set_event_id(id);
    e.set_channel(v1::CHANNEL_VOICE);
    e.set_kind(kind);
    *e.mutable_occurred_at() = FromMillis(at);
    e.set_conversation_id(conversation);
    e.set_case_id(case_id);
    return e;
  }
  // CaseStore::SetJourney: it counts the open cases of dropped stages in every bucket, then
  // calls engagement_journey_set.
  absl::Status SetJourney(const std::vector<std::string>& stages) {
    identity::IdentityStore identity(client_.get());
    engagement::CaseStore cases({client_.get(), &identity, policy_});
    v1::SetJourneyRequest req;
    req.set_tenant("acme");
    for (const std::string& s : stages) req.add_stages(s);
    return onestory::testing::Await<v1::Journey>([&](Callback<v1::Journey> done) {
             cases.SetJourney(req, onestory::testing::Deadline(), std::move(done));
           })
        .status();
  }
  // engagement_case_open as CaseStore::OpenCase fills it, with the limits of records.h.
  static EngagementCaseOpen OpenCall(const std::string& id, const std::string& stage, int64_t now,
                                     int64_t max_open) {
    EngagementCaseOpen call;
    call.case_id = id;
    call.topic = absl::StrCat("topic of ", id);
    call.stage = stage;
    call.actor_type = v1::Actor::TYPE_AGENT;
    call.actor_id = "agent-1";
    call.max_open_cases = max_open;
    call.forget_resolved_ms = engagement::kResolvedCaseKeepMs;
    call.forget_over_cases = engagement::kCasesBeforeForget;
    engagement::SetEvent(Event(absl::StrCat("co:", id), v1::EVENT_KIND_CASE_OPENED, now, "", id),
                         &call);
    return call;
  }
  absl::StatusOr<redis::Reply> Open(const std::string& id, const std::string& stage = "",
                                    int64_t now = kNow, int64_t max_open = 100) {
    return Applied(Call(With(OpenCall(id, stage, now, max_open), now)), now);
  }
  absl::StatusOr<redis::Reply> Move(const std::string& id, const std::string& stage, int64_t now,
                                    const std::string& request) {
    EngagementCaseUpdate call;
    call.case_id = id;
    call.stage = stage;
    call.actor_type = v1::Actor::TYPE_AGENT;
    call.actor_id = "agent-1";
    call.tenant = "acme";
    call.max_owner_history = engagement::kMaxOwnerHistory;
    engagement::SetEvent(Event(absl::StrCat("cu:", request), v1::EVENT_KIND_CASE_UPDATE, now),
                         &call);
    return Applied(Call(With(call, now)), now);
  }
  absl::StatusOr<redis::Reply> Resolve(const std::string& id, int64_t now) {
    EngagementCaseResolve call;
    call.case_id = id;
    call.resolution = "done";
    call.tenant = "acme";
    engagement::SetEvent(Event(absl::StrCat("cr:", id), v1::EVENT_KIND_CASE_RESOLVED, now), &call);
    return Applied(Call(With(call, now)), now);
  }
  absl::StatusOr<redis::Reply> Start(const std::string& conv, int64_t now,
                                     const std::string& case_id = "") {
    EngagementConversationStart call;
    call.conversation_id = conv;
    call.served_by_type = v1::Actor::TYPE_BOT;
    call.served_by_id = "bot-1";
    call.case_id = case_id;
    engagement::SetEvent(
        Event(absl::StrCat("cs:", conv), v1::EVENT_KIND_CONVERSATION_STARTED, now, conv, case_id),
        &call);
    return Call(With(call, now));
  }
  // Per stage of engagement_journey_stats' reply for cus_1's bucket: {open, earliest and latest
  // entry, entries (listed up to 64), stays (sorted), counters}.
  struct Row {
    int64_t open = 0;
    std::string first, last;
    std::vector<std::string> entries, stays, counters;
  };
  std::map<std::string, Row> Stats() {
    EngagementJourneyStats call;
    call.journey_counters = jk_.journey_counters();
    call.journey_open = jk_.journey_open();
    call.journey_stays = jk_.journey_stays();
    call.listed = engagement::kListedPerBucket;
    redis::Reply stages = Run({"GET", tk_.journey_stages()});
    call.stages = absl::StrSplit(stages.str, '\n', absl::SkipEmpty());
    absl::StatusOr<redis::Reply> r = Call(call);
    EXPECT_TRUE(r.ok()) << r.status();
    std::map<std::string, Row> out;
    if (!r.ok()) return out;
    for (size_t s = 0; s < r->elements.size(); ++s) {
      const redis::Reply& row = r->elements[s];
      Row& x = out[call.stages[s]];
      x.open = row.elements[0].integer;
      x.first = row.elements[1].str;
      x.last = row.elements[2].str;
      size_t i = 3;
      for (; row.elements[i].str != "|"; ++i) x.entries.push_back(row.elements[i].str);
      for (++i; row.elements[i].str != "|"; ++i) x.stays.push_back(row.elements[i].str);
      for (++i; i < row.elements.size(); ++i) x.counters.push_back(row.elements[i].str);
      std::sort(x.stays.begin(), x.stays.end());
    }
    return out;
  }
  // The open-case index of cus_1's bucket (or another key of the index).
  std::vector<std::string> OpenIndex(const std::string& key = "") {
    std::vector<std::string> out;
    for (const auto& m :
         Run({"ZRANGE", key.empty() ? jk_.journey_open() : key, "0", "-1"}).elements) {
      out.push_back(m.str);
    }
    return out;
  }

  timeline::EngagementPolicy policy_;
  const keys::CustomerKeys ck_{"acme", "cus_1"};
  const keys::TenantKeys tk_{"acme"};
  // The bucket of cus_1's alerts, journey entries and activity (keys::TenantBucket); the
  // due-promise bucket of its promises.
  const keys::TenantKeys ak_{"acme", keys::TenantBucket("cus_1")};
  const keys::TenantKeys& jk_ = ak_;
  const std::string due_ = keys::DuePromisesKey(keys::DueBucket("acme", "cus_1"));
};

TEST_F(EngagementFunctionsTest, CasesEnterMoveAndLeaveTheJourney) {
  Create();
  ASSERT_TRUE(SetJourney({"ship", "ship_late", "done"}).ok());
  absl::StatusOr<redis::Reply> r = Open("case_1");  // the journey's first stage
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 0);
  ASSERT_TRUE(Open("case_2", "ship_late", kNow + 10).ok());
  ASSERT_TRUE(Open("case_3", "ship", kNow + 20).ok());
  EXPECT_EQ(OpenIndex(),
            (std::vector<std::string>{absl::StrCat("ship_late|", Ms15(kNow + 10), "|cus_1|case_2"),
                                      absl::StrCat("ship|", Ms15(kNow), "|cus_1|case_1"),
                                      absl::StrCat("ship|", Ms15(kNow + 20), "|cus_1|case_3")}));
  // A retry answers the stored case and enters nothing again.
  r = Open("case_1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 1);
  // Counted through the outbox (applied after each call here), each entry once.
  EXPECT_TRUE(OutboxEntries("cus_1").empty());
  EXPECT_EQ(Run({"HGET", jk_.journey_counters(), "ship:entered"}).str, "2");
  EXPECT_EQ(Run({"HGET", jk_.journey_counters(), "ship_late:entered"}).str, "1");
  auto stats = Stats();
  // "ship" is not confused with "ship_late": its range holds its own two cases only.
  EXPECT_EQ(stats["ship"].open, 2);
  EXPECT_EQ(stats["ship"].entries, (std::vector<std::string>{Ms15(kNow), Ms15(kNow + 20)}));
  EXPECT_EQ(stats["ship_late"].open, 1);
  EXPECT_EQ(stats["ship_late"].entries, std::vector<std::string>{Ms15(kNow + 10)});
  EXPECT_EQ(stats["ship"].counters, (std::vector<std::string>{"2", "0", "0"}));

  // Moving: its stay in "ship" is recorded, it enters "done" now.
  ASSERT_TRUE(Move("case_1", "done", kNow + 500, "m1").ok());
  // Resolving: its stay in "ship_late" is recorded, it leaves the index.
  ASSERT_TRUE(Resolve("case_2", kNow + 1010).ok());
  ApplyOutbox("cus_1", kNow + 1010);
  EXPECT_EQ(OpenIndex(),
            (std::vector<std::string>{absl::StrCat("done|", Ms15(kNow + 500), "|cus_1|case_1"),
                                      absl::StrCat("ship|", Ms15(kNow + 20), "|cus_1|case_3")}));
  stats = Stats();
  EXPECT_EQ(stats["ship"].stays, std::vector<std::string>{"500"});
  EXPECT_EQ(stats["ship_late"].stays, std::vector<std::string>{"1000"});
  EXPECT_EQ(stats["done"].open, 1);
  EXPECT_EQ(stats["done"].counters[0], "1");

  // GetCase reads it (FCALL_RO), with its stage.
  EngagementCaseGet get;
  get.profile = ck_.profile();
  get.cases = ck_.cases();
  get.customer_id = "cus_1";
  get.case_id = "case_1";
  r = Call(get);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(absl::StrContains(r->str, "\"sg\":\"done\"")) << r->str;
  get.case_id = "case_9";
  EXPECT_EQ(Call(get).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngagementFunctionsTest, SetJourneyRefusesToDropAStageWithOpenCases) {
  Create();
  ASSERT_TRUE(SetJourney({"a", "b"}).ok());
  ASSERT_TRUE(Open("case_1", "b").ok());
  absl::Status st = SetJourney({"a"});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "stage \"b\" still has 1 open cases")) << st;
  EXPECT_EQ(Run({"GET", tk_.journey_stages()}).str, "a\nb");
  ASSERT_TRUE(SetJourney({"b", "c"}).ok());  // "a" has none: it may go
  EXPECT_EQ(Run({"GET", tk_.journey_stages()}).str, "b\nc");
  ASSERT_TRUE(Resolve("case_1", kNow + 1).ok());
  EXPECT_TRUE(SetJourney({"c"}).ok());
}

TEST_F(EngagementFunctionsTest, TheStaysRingKeepsTheLatestThousand) {
  Create();
  ASSERT_TRUE(SetJourney({"a", "b"}).ok());
  // 998 stays recorded already (by hand: 1..998 ms, at ring slots 0..997).
  std::vector<std::string> hset = {"HSET", jk_.journey_stays(), "a:n", "998"};
  for (int i = 0; i < 998; ++i) {
    hset.push_back(absl::StrCat("a:", i));
    hset.push_back(absl::StrCat(i + 1));
  }
  Run(hset);
  // Four more, through the functions: stays of 100000..100003 ms fill slots 998, 999, 0, 1.
  for (int i = 0; i < 4; ++i) {
    std::string id = absl::StrCat("case_", i);
    ASSERT_TRUE(Open(id, "a", kNow).ok());
    ASSERT_TRUE(Move(id, "b", kNow + 100000 + i, id).ok());
  }
  EXPECT_EQ(Run({"HGET", jk_.journey_stays(), "a:n"}).str, "1002");
  EXPECT_EQ(Run({"HGET", jk_.journey_stays(), "a:0"}).str, "100002");
  EXPECT_EQ(Run({"HGET", jk_.journey_stays(), "a:1"}).str, "100003");
  EXPECT_EQ(Run({"HGET", jk_.journey_stays(), "a:999"}).str, "100001");
  EXPECT_EQ(Run({"HEXISTS", jk_.journey_stays(), "a:1000"}).integer, 0);
  std::vector<std::string> stays = Stats()["a"].stays;
  ASSERT_EQ(stays.size(), 1000u);
  // The two oldest (1 and 2 ms) were overwritten; 3 .. 998 and the four new ones are kept.
  EXPECT_EQ(std::count(stays.begin(), stays.end(), "1"), 0);
  EXPECT_EQ(std::count(stays.begin(), stays.end(), "2"), 0);
  EXPECT_EQ(std::count(stays.begin(), stays.end(), "3"), 1);
  EXPECT_EQ(std::count(stays.begin(), stays.end(), "100003"), 1);
}

TEST_F(EngagementFunctionsTest, LimitsAreTheOnesPassed) {
  Create();
  ASSERT_TRUE(Open("case_1", "", kNow, 2).ok());
  ASSERT_TRUE(Open("case_2", "", kNow, 2).ok());
  absl::StatusOr<redis::Reply> r = Open("case_3", "", kNow, 2);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_EQ(r.status().message(), "case_id: customer cus_1 has 2 open cases; resolve some first");
  EXPECT_EQ(Run({"HEXISTS", ck_.cases(), "case_3"}).integer, 0);

  // Facts: at most max_facts current ones.
  EngagementConversationFacts facts;
  facts.actor_type = v1::Actor::TYPE_AGENT;
  facts.actor_id = "agent-1";
  facts.channel = v1::CHANNEL_VOICE;
  facts.max_facts = 2;
  for (const char* name : {"order", "email", "phone"}) {
    facts.new_facts.insert(facts.new_facts.end(), {"2", name, "x", "0", "0", "", "", "0"});
  }
  engagement::SetEvent(Event("fr:1", v1::EVENT_KIND_FACTS_RECORDED, kNow), &facts);
  r = Call(With(facts));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "would have 3 current facts; at most 2"))
      << r.status();
  EXPECT_EQ(Run({"EXISTS", ck_.facts()}).integer, 0);
  facts.max_facts = 3;
  r = Call(With(facts));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements.size(), 7u);  // {0, '', stream id, '', 3 facts}
  EXPECT_EQ(Run({"HLEN", ck_.facts()}).integer, 3);
  r = Call(With(facts));  // a retry: the stored facts
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 1);
  EXPECT_EQ(r->elements.size(), 7u);

  // Owner history: at most max_owner_history changes kept.
  EngagementCaseUpdate owner;
  owner.case_id = "case_1";
  owner.owner_type = v1::Actor::TYPE_AGENT;
  owner.reason = "shift change";
  owner.actor_type = v1::Actor::TYPE_AGENT;
  owner.actor_id = "agent-1";
  owner.tenant = "acme";
  owner.max_owner_history = 2;
  for (int i = 0; i < 3; ++i) {
    owner.owner_id = absl::StrCat("agent-", 10 + i);
    engagement::SetEvent(Event(absl::StrCat("cu:o", i), v1::EVENT_KIND_CASE_UPDATE, kNow), &owner);
    ASSERT_TRUE(Call(With(owner)).ok());
  }
  absl::StatusOr<engagement::Record> rec =
      engagement::ParseRecord(Run({"HGET", ck_.cases(), "case_1"}).str);
  ASSERT_TRUE(rec.ok());
  v1::Case c = engagement::CaseFromRecord("case_1", "cus_1", *rec);
  ASSERT_EQ(c.owner_history_size(), 2);
  EXPECT_EQ(c.owner_history(1).to().id(), "agent-12");
  EXPECT_EQ(c.owner_changes(), 3);

  // Resolved cases: forgotten forget_resolved_ms after they were resolved, once the customer
  // has more than forget_over_cases cases.
  ASSERT_TRUE(Resolve("case_1", kNow).ok());
  ASSERT_TRUE(Resolve("case_2", kNow + 5 * kDay).ok());
  EngagementCaseOpen open = OpenCall("case_3", "", kNow + 10 * kDay, 2);
  open.forget_resolved_ms = 7 * kDay;
  open.forget_over_cases = 1;
  r = Applied(Call(With(open, kNow + 10 * kDay)), kNow + 10 * kDay);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Run({"HEXISTS", ck_.cases(), "case_1"}).integer, 0) << "resolved 10 days ago";
  EXPECT_EQ(Run({"HEXISTS", ck_.cases(), "case_2"}).integer, 1) << "resolved 5 days ago";
  EXPECT_EQ(Run({"HEXISTS", ck_.cases(), "case_3"}).integer, 1);

  // ListAlerts: the log is read batch entries at a time, at most max_examined per call.
  for (int i = 1; i <= 5; ++i) {
    Run({"XADD", ak_.alert_log(), absl::StrCat(i, "-0"), "id", absl::StrCat("alert_", i)});
  }
  EngagementAlertList list;
  list.alert_log = ak_.alert_log();
  list.alert_open = ak_.alert_open();
  list.alert_acks = ak_.alert_acks();
  list.all = 1;
  list.page_size = 10;
  list.start = "+";
  list.batch = 2;
  list.max_examined = 3;
  r = Call(list);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 1);  // more
  EXPECT_EQ(r->elements[1].str, "3-0");  // the last examined
  EXPECT_EQ(r->elements[2].elements.size(), 3u);
  list.max_examined = 10;
  r = Call(list);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 0);
  EXPECT_EQ(r->elements[2].elements.size(), 5u);
}

TEST_F(EngagementFunctionsTest, RepeatContactsCountWithinTheRepeatWindowAndAlertOnce) {
  Create();
  ASSERT_TRUE(Open("case_1", "", kNow).ok());
  // A new conversation about the open case: a repeat contact (the case's second).
  absl::StatusOr<redis::Reply> r = Start("conv_1", kNow + 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(absl::StrContains(r->elements[3].str, "\"ca\":\"case_1\"")) << r->elements[3].str;
  EXPECT_EQ(Run({"ZCARD", ck_.contacts()}).integer, 1);
  // A retry counts nothing again.
  r = Start("conv_1", kNow + 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 1);
  EXPECT_EQ(Run({"ZCARD", ck_.contacts()}).integer, 1);
  EXPECT_TRUE(OutboxEntries("cus_1", "a").empty());
  // The third contact in 7 days raises REPEAT_CONTACT (an entry of the outbox, applied once);
  // the fourth raises nothing more.
  ASSERT_TRUE(Start("conv_2", kNow + 2000).ok());
  std::vector<OutboxEntry> a = OutboxEntries("cus_1", "a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].fields["id"], "repeat_contact:cus_1:case_1");
  EXPECT_EQ(a[0].fields["k"], absl::StrCat(v1::ALERT_KIND_REPEAT_CONTACT));
  EXPECT_EQ(a[0].fields["ca"], "case_1");
  EXPECT_EQ(a[0].fields["msg"],
            "customer cus_1 contacted us 3 times in 7 days about \"topic of case_1\"");
  EXPECT_EQ(a[0].fields["at"], absl::StrCat(kNow + 2000));
  EXPECT_EQ(Run({"EXISTS", ak_.alert_log()}).integer, 0);
  ApplyOutbox("cus_1", kNow + 2000);
  EXPECT_EQ(Run({"XLEN", ak_.alert_log()}).integer, 1);
  ASSERT_TRUE(Start("conv_3", kNow + 3000).ok());
  ApplyOutbox("cus_1", kNow + 3000);
  EXPECT_EQ(Run({"XLEN", ak_.alert_log()}).integer, 1);
  EXPECT_EQ(Run({"HEXISTS", ak_.alert_ids(), "repeat_contact:cus_1:case_1"}).integer, 1);

  // Resolved: a contact within the repeat window is still about it; one after it is not.
  ASSERT_TRUE(Resolve("case_1", kNow + 4000).ok());
  policy_.repeat_window = absl::Milliseconds(10000);
  r = Start("conv_4", kNow + 13000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(absl::StrContains(r->elements[3].str, "\"o\":false")) << r->elements[3].str;
  r = Start("conv_5", kNow + 15000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[3].str, "");
  EXPECT_EQ(Run({"ZCARD", ck_.contacts()}).integer, 5);
}

TEST_F(EngagementFunctionsTest, GuardRefusesMergedAndHeldCustomersAndWritesNothing) {
  Run({"HSET", ck_.profile(), "created_at", "1", "merged_into", "cus_2", "merge_id", "mg_1"});
  absl::StatusOr<redis::Reply> r = Open("case_1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "moved:cus_2:mg_1")) << r.status();
  EngagementCaseGet get;
  get.profile = ck_.profile();
  get.cases = ck_.cases();
  get.customer_id = "cus_1";
  get.case_id = "case_1";
  EXPECT_TRUE(absl::StrContains(Call(get).status().message(), "moved:cus_2")) << r.status();

  Run({"DEL", ck_.profile()});
  Run({"HSET", ck_.profile(), "created_at", "1", "merge_lock", "mg_2"});
  r = Open("case_1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  r = Start("conv_1", kNow);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  EXPECT_EQ(Run({"EXISTS", ck_.timeline(), ck_.cases(), ck_.conversation_records(),
                 tk_.journey_open(), ck_.outbox()})
                .integer,
            0);
  // A held customer may still be read.
  get.case_id = "case_9";
  EXPECT_EQ(Call(get).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngagementFunctionsTest, HandoffAndEndKeepTheConversationsRecord) {
  Create();
  ASSERT_TRUE(Open("case_1").ok());
  ASSERT_TRUE(Start("conv_1", kNow + 1, "case_1").ok());
  EngagementConversationHandoff h;
  h.conversation_id = "conv_1";
  h.from_type = v1::Actor::TYPE_AGENT;  // not who serves it
  h.from_id = "agent-9";
  h.to_type = v1::Actor::TYPE_AGENT;
  h.to_id = "agent-2";
  h.to_channel = v1::CHANNEL_SMS;
  h.max_facts = engagement::kMaxFactsPerCustomer;
  h.new_facts = {"2", "order", "A-1", "0", "0", "", "", "0"};
  v1::Event e = Event("ho:1", v1::EVENT_KIND_HANDOFF, kNow + 2, "conv_1");
  e.set_channel(v1::CHANNEL_SMS);  // as the store builds it with to_channel; no case id
  engagement::SetEvent(e, &h);
  absl::StatusOr<redis::Reply> r = Call(With(h));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  h.from_type = v1::Actor::TYPE_BOT;
  h.from_id = "bot-1";
  r = Call(With(h));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 5u);
  absl::StatusOr<engagement::Record> rec = engagement::ParseRecord(r->elements[1].str);
  ASSERT_TRUE(rec.ok());
  v1::Conversation c = engagement::ConversationFromRecord("conv_1", "cus_1", *rec);
  EXPECT_EQ(c.handoffs(), 1);
  EXPECT_EQ(c.channel(), v1::CHANNEL_SMS);
  EXPECT_EQ(c.served_by().id(), "agent-2");
  // The case's channel switched (VOICE to SMS); the stored event names the case.
  rec = engagement::ParseRecord(Run({"HGET", ck_.cases(), "case_1"}).str);
  EXPECT_EQ(engagement::CaseFromRecord("case_1", "cus_1", *rec).channel_switches(), 1);
  v1::Event stored;
  ASSERT_TRUE(
      stored.ParseFromString(Run({"XRANGE", ck_.timeline(), r->elements[2].str, r->elements[2].str})
                                 .elements[0]
                                 .elements[1]
                                 .elements[1]
                                 .str));
  EXPECT_EQ(stored.case_id(), "case_1");
  EXPECT_EQ(stored.channel(), v1::CHANNEL_SMS);

  EngagementConversationEnd end;
  end.conversation_id = "conv_1";
  end.outcome = "sorted";
  end.wrap_up_code = "W1";
  v1::Event ended = Event("ce:conv_1", v1::EVENT_KIND_CONVERSATION_ENDED, kNow + 3, "conv_1");
  ended.clear_channel();
  engagement::SetEvent(ended, &end);
  r = Call(With(end));
  ASSERT_TRUE(r.ok()) << r.status();
  rec = engagement::ParseRecord(r->elements[1].str);
  c = engagement::ConversationFromRecord("conv_1", "cus_1", *rec);
  EXPECT_EQ(c.state(), v1::CONVERSATION_STATE_ENDED);
  EXPECT_EQ(c.outcome(), "sorted");
  EXPECT_EQ(c.wrap_up_code(), "W1");
  r = Call(With(end));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 1);
}

TEST_F(EngagementFunctionsTest, AnOverduePromiseIsRaisedOnceAndAlertsAreListedReadAndAcked) {
  Create();
  ASSERT_TRUE(Open("case_1").ok());
  EngagementCaseUpdate promise;
  promise.case_id = "case_1";
  promise.promise = "refund";
  promise.promised_by_ms = kNow + 1000;
  promise.actor_type = v1::Actor::TYPE_AGENT;
  promise.actor_id = "agent-1";
  promise.tenant = "acme";
  promise.max_owner_history = engagement::kMaxOwnerHistory;
  engagement::SetEvent(Event("cu:p", v1::EVENT_KIND_CASE_UPDATE, kNow), &promise);
  // The promise reaches the due index through the outbox (entry t=da).
  ASSERT_TRUE(Call(With(promise)).ok());
  const std::string member = "acme|cus_1|case_1";
  EXPECT_TRUE(Run({"ZSCORE", due_, member}).is_nil());
  ApplyOutbox("cus_1", kNow);
  EXPECT_EQ(Run({"ZSCORE", due_, member}).str, absl::StrCat(kNow + 1000));

  EngagementAlertPromise check;
  check.member = member;
  check.case_id = "case_1";
  check.due_text = "2023-11-14T22:13:21Z";
  // A due time that is not the case's promise any more (moved since the scan read it):
  // nothing, the entries that moved it keep the index.
  check.due_ms = kNow + 500;
  absl::StatusOr<redis::Reply> r = Call(With(check, kNow + 1001));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_TRUE(OutboxEntries("cus_1").empty());
  // A case the customer does not have (erased, merged away): 2, the scan removes the member.
  check.case_id = "case_9";
  r = Call(With(check, kNow + 1001));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 2);
  check.case_id = "case_1";
  check.due_ms = kNow + 1000;
  r = Call(With(check, kNow + 1001));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(OutboxEntries("cus_1", "dr").size(), 1u) << "the promise is forgotten once applied";
  const std::string id = absl::StrCat("promise_overdue:cus_1:case_1:", kNow + 1000);
  std::vector<OutboxEntry> raised = OutboxEntries("cus_1", "a");
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].fields["id"], id);
  EXPECT_EQ(raised[0].fields["k"], absl::StrCat(v1::ALERT_KIND_PROMISE_OVERDUE));
  EXPECT_EQ(raised[0].fields["ca"], "case_1");
  EXPECT_EQ(raised[0].fields["at"], absl::StrCat(kNow + 1001));
  EXPECT_TRUE(absl::StrContains(raised[0].fields["msg"], "was due 2023-11-14T22:13:21Z"))
      << raised[0].fields["msg"];
  ApplyOutbox("cus_1", kNow + 1001);
  EXPECT_EQ(Run({"ZCARD", due_}).integer, 0);
  // The same promise seen again (another instance's scan put it back): the alert's id is held,
  // nothing is raised twice.
  Run({"ZADD", due_, absl::StrCat(kNow + 1000), member});
  r = Call(With(check, kNow + 1002));
  ASSERT_TRUE(r.ok()) << r.status();
  ApplyOutbox("cus_1", kNow + 1002);
  EXPECT_EQ(Run({"XLEN", ak_.alert_log()}).integer, 1);
  EXPECT_EQ(Run({"ZCARD", ak_.alert_open()}).integer, 1);
  EXPECT_EQ(Run({"ZSCORE", ak_.alert_open(), id}).str, absl::StrCat(kNow + 1001));

  EngagementAlertList list;
  list.alert_log = ak_.alert_log();
  list.alert_open = ak_.alert_open();
  list.alert_acks = ak_.alert_acks();
  list.page_size = 10;
  list.start = "+";
  list.batch = engagement::kAlertListBatch;
  list.max_examined = engagement::kAlertListMaxExamined;
  r = Call(list);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements[2].elements.size(), 1u);
  EXPECT_EQ(r->elements[2].elements[0].elements[1].elements[1].str, id);

  EngagementAlertAck ack;
  ack.alert_ids = ak_.alert_ids();
  ack.alert_open = ak_.alert_open();
  ack.alert_acks = ak_.alert_acks();
  ack.alert_log = ak_.alert_log();
  ack.alert_id = id;
  ack.actor_type = v1::Actor::TYPE_AGENT;
  ack.actor_id = "agent-3";
  ack.now_ms = kNow + 5000;
  r = Call(ack);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<engagement::Record> a = engagement::ParseRecord(r->elements[2].str);
  ASSERT_TRUE(a.ok());
  v1::Alert alert;
  engagement::AckFromRecord(*a, &alert);
  EXPECT_EQ(alert.acknowledged_by().id(), "agent-3");
  EXPECT_EQ(ToMillis(alert.acknowledged_at()), kNow + 5000);
  ack.alert_id = "nope";
  EXPECT_EQ(Call(ack).status().code(), absl::StatusCode::kNotFound);

  r = Call(list);  // open alerts only: none left
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->elements[2].elements.empty());
  list.all = 1;
  r = Call(list);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[2].elements.size(), 1u);

  EngagementAlertRead read;
  read.alert_log = ak_.alert_log();
  read.alert_acks = ak_.alert_acks();
  read.after = "0-0";
  read.count = 10;
  r = Call(read);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 1u);
  EXPECT_FALSE(r->elements[0].elements[2].str.empty());  // with its acknowledgement
}

// Journey data as an earlier version wrote it: "open:<stage>" zsets of "<customer>|<case>"
// scored by entry ms, "dur:<stage>" lists of stays, newest first.
TEST_F(EngagementFunctionsTest, JourneyDataOfAnEarlierVersionIsFoldedOnce) {
  const std::string old_open = absl::StrCat(tk_.journey_prefix(), "open:ship");
  const std::string old_dur = absl::StrCat(tk_.journey_prefix(), "dur:ship");
  Run({"ZADD", old_open, absl::StrCat(kNow), "cus_1|case_1", absl::StrCat(kNow - 5000),
       "cus_2|case_7"});
  Run({"RPUSH", old_dur, "300", "100", "200"});
  EngagementJourneyUpgrade call;
  call.old = old_open;
  call.journey_open = tk_.journey_open();
  call.journey_stays = tk_.journey_stays();
  call.stage = "ship";
  call.kind = "open";
  call.max = engagement::kUpgradeChunk;
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 2u);
  EXPECT_EQ(r->elements[0].integer, 2);
  EXPECT_EQ(r->elements[1].integer, 0);  // nothing more
  EXPECT_EQ(OpenIndex(tk_.journey_open()),
            (std::vector<std::string>{absl::StrCat("ship|", Ms15(kNow - 5000), "|cus_2|case_7"),
                                      absl::StrCat("ship|", Ms15(kNow), "|cus_1|case_1")}));
  EXPECT_EQ(Run({"EXISTS", old_open}).integer, 0);
  r = Call(call);  // again: the old key is gone, nothing changes
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 0);
  EXPECT_EQ(r->elements[1].integer, 0);
  EXPECT_EQ(OpenIndex(tk_.journey_open()).size(), 2u);

  // A stay recorded in the new layout already (by an upgraded server meanwhile) is kept, as
  // the newest.
  Run({"HSET", tk_.journey_stays(), "ship:n", "1", "ship:0", "400"});
  call.old = old_dur;
  call.kind = "dur";
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, 3);
  EXPECT_EQ(r->elements[1].integer, 0);
  EXPECT_EQ(Run({"HGET", tk_.journey_stays(), "ship:n"}).str, "4");
  // Oldest first in ring order: 200, 100, 300, then 400.
  for (auto [slot, ms] :
       std::vector<std::pair<int, const char*>>{{0, "200"}, {1, "100"}, {2, "300"}, {3, "400"}}) {
    EXPECT_EQ(Run({"HGET", tk_.journey_stays(), absl::StrCat("ship:", slot)}).str, ms) << slot;
  }
  EXPECT_EQ(Run({"EXISTS", old_dur}).integer, 0);
  call.kind = "both";
  EXPECT_EQ(Call(call).status().code(), absl::StatusCode::kInvalidArgument);
  call.kind = "open";
  call.max = 0;
  EXPECT_EQ(Call(call).status().code(), absl::StatusCode::kInvalidArgument);
}

// A stage of more open cases than one call folds: folded in chunks, each taken from the old key
// as it is folded, so a start stopped between two chunks and run again ends as one fold would.
TEST_F(EngagementFunctionsTest, AStageOfManyOpenCasesIsFoldedInChunks) {
  const std::string old_open = absl::StrCat(tk_.journey_prefix(), "open:ship");
  const int n = 2 * engagement::kUpgradeChunk + 234;
  std::vector<std::string> zadd = {"ZADD", old_open};
  for (int i = 0; i < n; ++i) {
    zadd.insert(zadd.end(),
                {absl::StrCat(kNow - i * 1000), absl::StrCat("cus_", i % 37, "|case_", i)});
  }
  zadd.insert(zadd.end(), {"1", "no separator"});  // dropped, as before
  Run(zadd);
  EngagementJourneyUpgrade call;
  call.old = old_open;
  call.journey_open = tk_.journey_open();
  call.journey_stays = tk_.journey_stays();
  call.stage = "ship";
  call.kind = "open";
  // The whole stage in one call: the result the chunks must reach.
  call.max = n + 1;
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, n);
  EXPECT_EQ(r->elements[1].integer, 0);
  const std::vector<std::string> whole = OpenIndex(tk_.journey_open());
  ASSERT_EQ(whole.size(), static_cast<size_t>(n));
  EXPECT_EQ(Run({"EXISTS", old_open}).integer, 0);

  // Again from the earlier layout, in chunks: the first one, then the start stops.
  Run({"DEL", tk_.journey_open()});
  Run(zadd);
  call.max = engagement::kUpgradeChunk;
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].integer, engagement::kUpgradeChunk - 1);  // with the one dropped
  EXPECT_EQ(r->elements[1].integer, 1);                              // more to fold
  EXPECT_EQ(Run({"ZCARD", old_open}).integer, n + 1 - engagement::kUpgradeChunk);
  EXPECT_EQ(Run({"ZCARD", tk_.journey_open()}).integer, engagement::kUpgradeChunk - 1);
  // The next start folds the rest, chunk by chunk, then moves the journey into its buckets:
  // every bucket's entries together are the one-call fold, each once.
  absl::StatusOr<int> upgraded = engagement::UpgradeJourneyKeys(client_.get());
  ASSERT_TRUE(upgraded.ok()) << upgraded.status();
  EXPECT_EQ(*upgraded, 2);  // the per-stage key, then the tenant's journey into buckets
  EXPECT_EQ(Run({"EXISTS", old_open, tk_.journey_open()}).integer, 0);
  std::vector<std::string> chunked;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    for (const std::string& m : OpenIndex(keys::TenantKeys("acme", b).journey_open())) {
      chunked.push_back(m);
    }
  }
  std::sort(chunked.begin(), chunked.end());
  EXPECT_EQ(chunked, whole);
}

// The start-up step over a whole Redis, then the stores: GetJourneyStats answers as the
// earlier version did for the same history, and resolving an upgraded case takes it out.
TEST_F(EngagementFunctionsTest, UpgradeJourneyKeysThenTheStoresAnswerAsBefore) {
  ASSERT_TRUE(SetJourney({"ship", "done"}).ok());
  Create();
  // Three open cases in "ship" (entered 30, 20 and 10 s ago), as the earlier version left them:
  // the case records and its index; stays 4, 1, 2 and 3 s, newest first.
  int64_t now = NowMillis();
  std::vector<int64_t> entered = {now - 30000, now - 20000, now - 10000};
  for (int i = 0; i < 3; ++i) {
    std::string id = absl::StrCat("case_", i);
    Run({"HSET", ck_.cases(), id,
         absl::StrCat(R"({"tp":"t","sg":"ship","se":)", entered[i],
                      R"(,"s":"o","ot":0,"oi":"","op":1,"up":1,"rs":0,"rn":"","pt":"","pb":0,)",
                      R"("pm":0,"mt":0,"mi":"","nc":1,"rc":0,"sw":0,"lc":3,"rct":[],"oh":{},)",
                      R"("ohn":0,"ln":""})")});
    Run({"ZADD", absl::StrCat(tk_.journey_prefix(), "open:ship"), absl::StrCat(entered[i]),
         absl::StrCat("cus_1|", id)});
  }
  Run({"RPUSH", absl::StrCat(tk_.journey_prefix(), "dur:ship"), "4000", "1000", "2000", "3000"});
  Run({"HSET", tk_.journey_counters(), "ship:entered", "7"});
  Run({"SET", "os:{other}:open:x", "not a journey key"});

  absl::StatusOr<int> folded = engagement::UpgradeJourneyKeys(client_.get());
  ASSERT_TRUE(folded.ok()) << folded.status();
  EXPECT_EQ(*folded, 3);  // the two per-stage keys, then the tenant's journey into buckets
  EXPECT_EQ(Run({"EXISTS", absl::StrCat(tk_.journey_prefix(), "open:ship"),
                 absl::StrCat(tk_.journey_prefix(), "dur:ship"), tk_.journey_open(),
                 tk_.journey_stays(), tk_.journey_counters()})
                .integer,
            0);
  EXPECT_EQ(OpenIndex().size(), 3u) << "in cus_1's bucket";
  folded = engagement::UpgradeJourneyKeys(client_.get());
  ASSERT_TRUE(folded.ok()) << folded.status();
  EXPECT_EQ(*folded, 0);

  identity::IdentityStore identity(client_.get());
  engagement::CaseStore cases({client_.get(), &identity, policy_});
  auto stats = [&] {
    v1::GetJourneyStatsRequest req;
    req.set_tenant("acme");
    absl::StatusOr<v1::GetJourneyStatsResponse> r =
        onestory::testing::Await<v1::GetJourneyStatsResponse>(
            [&](Callback<v1::GetJourneyStatsResponse> done) {
              cases.GetJourneyStats(req, onestory::testing::Deadline(), std::move(done));
            });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::GetJourneyStatsResponse();
  };
  v1::GetJourneyStatsResponse s = stats();
  ASSERT_EQ(s.stages_size(), 2);
  EXPECT_EQ(s.stages(0).stage(), "ship");
  EXPECT_EQ(s.stages(0).open_cases(), 3);
  // The median entry is 20 s ago (read a little later than `now`).
  int64_t median =
      google::protobuf::util::TimeUtil::DurationToMilliseconds(s.stages(0).median_time_in_stage());
  EXPECT_GE(median, 20000);
  EXPECT_LT(median, 25000);
  EXPECT_EQ(google::protobuf::util::TimeUtil::DurationToMilliseconds(
                s.stages(0).median_completed_time_in_stage()),
            2500);  // of 1, 2, 3, 4 s
  EXPECT_EQ(s.stages(0).entered(), 7);
  EXPECT_EQ(s.stages(1).open_cases(), 0);

  v1::ResolveCaseRequest resolve;
  resolve.set_tenant("acme");
  resolve.mutable_customer()->set_customer_id("cus_1");
  resolve.set_case_id("case_0");
  resolve.mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  resolve.mutable_actor()->set_id("agent-1");
  resolve.set_channel(v1::CHANNEL_VOICE);
  absl::StatusOr<v1::ResolveCaseResponse> resolved =
      onestory::testing::Await<v1::ResolveCaseResponse>(
          [&](Callback<v1::ResolveCaseResponse> done) {
            cases.Resolve(resolve, onestory::testing::Deadline(), std::move(done));
          });
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  // Its stay is recorded once the outbox is applied, right after the answer.
  ASSERT_TRUE(redis_->AwaitOutboxesDrained());
  s = stats();
  EXPECT_EQ(s.stages(0).open_cases(), 2);
  // Its stay of about 30 s joins 1, 2, 3 and 4 s: the median is 3 s.
  EXPECT_EQ(google::protobuf::util::TimeUtil::DurationToMilliseconds(
                s.stages(0).median_completed_time_in_stage()),
            3000);
  EXPECT_EQ(OpenIndex().size(), 2u);
}

}  // namespace
}  // namespace onestory::lua

namespace onestory::lua {
namespace {

// GetJourneyStats over buckets: 1,500 open cases of 1,500 customers in one stage (so buckets
// hold more than kListedPerBucket and the median is found by narrowing), 7 in another (listed),
// stays and counters in several buckets. Every figure is checked against one computed from the
// whole set, as the single index before buckets gave it.
TEST_F(EngagementFunctionsTest, JourneyStatsAreExactAcrossBuckets) {
  ASSERT_TRUE(SetJourney({"ship", "wait", "done"}).ok());
  const int64_t now = NowMillis();
  std::vector<int64_t> ship, wait;
  std::map<int, std::vector<std::string>> open;  // bucket -> members
  std::set<int> used;
  for (int i = 0; i < 1500; ++i) {
    const std::string c = absl::StrCat("cus_", i);
    // Entry times spread unevenly (many close together, a few far back), some repeated.
    const int64_t t = now - (i % 10 == 0 ? 86400000LL * (i + 1) : 1000LL * ((i * 7919) % 500));
    ship.push_back(t);
    open[keys::TenantBucket(c)].push_back(absl::StrCat("ship|", Ms15(t), "|", c, "|case_", i));
    used.insert(keys::TenantBucket(c));
  }
  for (int i = 0; i < 7; ++i) {
    const std::string c = absl::StrCat("cus_w", i);
    const int64_t t = now - 60000LL * (i + 1);
    wait.push_back(t);
    open[keys::TenantBucket(c)].push_back(absl::StrCat("wait|", Ms15(t), "|", c, "|case_w"));
  }
  size_t largest = 0;
  for (auto& [b, members] : open) {
    std::vector<std::string> zadd = {"ZADD", keys::TenantKeys("acme", b).journey_open()};
    for (const std::string& m : members) zadd.insert(zadd.end(), {"0", m});
    Run(zadd);
    largest = std::max(largest, members.size());
  }
  ASSERT_GT(largest, static_cast<size_t>(engagement::kListedPerBucket));
  ASSERT_GE(used.size(), 10u);
  // Stays: 1..40 s over 4 buckets; counters in 3.
  for (int i = 0; i < 40; ++i) {
    const keys::TenantKeys b("acme", i % 4);
    Run({"HSET", b.journey_stays(), absl::StrCat("done:", i / 4), absl::StrCat(1000 * (i + 1))});
    Run({"HSET", b.journey_stays(), "done:n", absl::StrCat(i / 4 + 1)});
  }
  for (int b = 5; b < 8; ++b) {
    Run({"HSET", keys::TenantKeys("acme", b).journey_counters(), "ship:entered", "100",
         "ship:repeats", absl::StrCat(b), "done:switches", "2"});
  }

  identity::IdentityStore identity(client_.get());
  engagement::CaseStore cases({client_.get(), &identity, policy_});
  v1::GetJourneyStatsRequest req;
  req.set_tenant("acme");
  absl::StatusOr<v1::GetJourneyStatsResponse> s =
      onestory::testing::Await<v1::GetJourneyStatsResponse>(
          [&](Callback<v1::GetJourneyStatsResponse> done) {
            cases.GetJourneyStats(req, onestory::testing::Deadline(), std::move(done));
          });
  const int64_t after = NowMillis();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->stages_size(), 3);
  // The median as the single index gave it: the middle entry, or the mean of the two middle
  // ones, measured from the time of the read (between now and after).
  auto median_of = [](std::vector<int64_t> t) {
    std::sort(t.begin(), t.end());
    const size_t n = t.size();
    return std::make_pair(t[(n - 1) / 2], t[n / 2]);
  };
  auto expect_median = [&](const v1::StageStats& st, const std::vector<int64_t>& entries) {
    auto [a, b] = median_of(entries);
    const int64_t got =
        google::protobuf::util::TimeUtil::DurationToMilliseconds(st.median_time_in_stage());
    // got = ((read - a) + (read - b)) / 2 for a read time in [now, after].
    EXPECT_GE(got, ((now - a) + (now - b)) / 2) << st.stage();
    EXPECT_LE(got, ((after - a) + (after - b)) / 2) << st.stage();
  };
  EXPECT_EQ(s->stages(0).stage(), "ship");
  EXPECT_EQ(s->stages(0).open_cases(), 1500);
  expect_median(s->stages(0), ship);
  EXPECT_EQ(s->stages(0).entered(), 300);
  EXPECT_EQ(s->stages(0).repeat_contacts(), 5 + 6 + 7);
  EXPECT_EQ(s->stages(1).open_cases(), 7);
  expect_median(s->stages(1), wait);
  EXPECT_EQ(s->stages(2).open_cases(), 0);
  EXPECT_FALSE(s->stages(2).has_median_time_in_stage());
  EXPECT_EQ(google::protobuf::util::TimeUtil::DurationToMilliseconds(
                s->stages(2).median_completed_time_in_stage()),
            20500);  // of 1..40 s
  EXPECT_EQ(s->stages(2).channel_switches(), 6);

  // The same read with one more case in the middle of "ship": the median moves to it exactly.
  std::vector<int64_t> more = ship;
  auto [a, b] = median_of(ship);
  const int64_t t = (a + b) / 2;
  more.push_back(t);
  Run({"ZADD", keys::TenantKeys("acme", 0).journey_open(), "0",
       absl::StrCat("ship|", Ms15(t), "|cus_x|case_x")});
  s = onestory::testing::Await<v1::GetJourneyStatsResponse>(
      [&](Callback<v1::GetJourneyStatsResponse> done) {
        cases.GetJourneyStats(req, onestory::testing::Deadline(), std::move(done));
      });
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stages(0).open_cases(), 1501);
  const int64_t got =
      google::protobuf::util::TimeUtil::DurationToMilliseconds(s->stages(0).median_time_in_stage());
  EXPECT_GE(got, now - t);
  EXPECT_LE(got, NowMillis() - t);
}

// A single Redis an earlier version wrote: the journey, activity index and due-promise index
// without buckets move into buckets at start, nothing lost or counted twice, once.
TEST_F(EngagementFunctionsTest, UpgradeMovesTheUnbucketedKeysIntoBuckets) {
  ASSERT_TRUE(SetJourney({"ship"}).ok());
  std::vector<std::string> zadd_open = {"ZADD", tk_.journey_open()};
  std::vector<std::string> zadd_active = {"ZADD", tk_.activity()};
  std::vector<std::string> zadd_due = {"ZADD", keys::DuePromisesKey()};
  std::vector<std::string> marks = {"HSET", tk_.journey_applied()};
  std::vector<std::string> due_marks = {"HSET", keys::DuePromisesAppliedKey()};
  for (int i = 0; i < 1200; ++i) {  // more than one chunk
    const std::string c = absl::StrCat("cus_", i);
    zadd_open.insert(zadd_open.end(),
                     {"0", absl::StrCat("ship|", Ms15(kNow + i), "|", c, "|case_1")});
    zadd_active.insert(zadd_active.end(), {absl::StrCat(kNow + i), c});
    zadd_due.insert(zadd_due.end(), {absl::StrCat(kNow + i), absl::StrCat("acme|", c, "|case_1")});
    marks.insert(marks.end(), {c, absl::StrCat(i + 1)});
    due_marks.insert(due_marks.end(), {absl::StrCat("acme|", c), absl::StrCat(i + 2)});
  }
  Run(zadd_open);
  Run(zadd_active);
  Run(zadd_due);
  Run(marks);
  Run(due_marks);
  Run({"ZADD", tk_.journey_applied_at(), absl::StrCat(kNow), "cus_1"});
  Run({"ZADD", keys::DuePromisesAppliedAtKey(), absl::StrCat(kNow), "acme|cus_1"});
  Run({"HSET", tk_.journey_counters(), "ship:entered", "1200", "ship:repeats", "3"});
  Run({"HSET", tk_.journey_stays(), "ship:n", "2", "ship:0", "100", "ship:1", "300"});
  // Written by an upgraded server meanwhile: counts add up, a later activity and mark stay.
  const keys::TenantKeys b0("acme", 0);
  Run({"HSET", b0.journey_counters(), "ship:entered", "5"});
  Run({"HSET", b0.journey_stays(), "ship:n", "1", "ship:0", "200"});
  const keys::TenantKeys b1("acme", keys::TenantBucket("cus_1"));
  Run({"ZADD", b1.activity(), absl::StrCat(kNow + 99999), "cus_1"});
  Run({"HSET", b1.journey_applied(), "cus_1", "50"});

  absl::StatusOr<int> upgraded = engagement::UpgradeJourneyKeys(client_.get());
  ASSERT_TRUE(upgraded.ok()) << upgraded.status();
  EXPECT_EQ(*upgraded, 3);  // the journey, the activity index, the due index
  EXPECT_EQ(
      Run({"EXISTS", tk_.journey_open(), tk_.journey_counters(), tk_.journey_stays(),
           tk_.journey_applied(), tk_.journey_applied_at(), tk_.activity(), keys::DuePromisesKey(),
           keys::DuePromisesAppliedKey(), keys::DuePromisesAppliedAtKey()})
          .integer,
      0);
  EXPECT_FALSE(Run({"GET", keys::BucketUpgradeKey()}).is_nil());
  EXPECT_EQ(Run({"SISMEMBER", keys::TenantRegistryKey(), "acme"}).integer, 1);
  int64_t open = 0, active = 0, due = 0;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    const keys::TenantKeys k("acme", b);
    open += Run({"ZCARD", k.journey_open()}).integer;
    active += Run({"ZCARD", k.activity()}).integer;
    due += Run({"ZCARD", keys::DuePromisesKey(b)}).integer;
  }
  EXPECT_EQ(open, 1200);
  EXPECT_EQ(active, 1200);
  EXPECT_EQ(due, 1200);
  for (const std::string c : {"cus_7", "cus_1111"}) {
    const keys::TenantKeys k("acme", keys::TenantBucket(c));
    EXPECT_FALSE(Run({"ZSCORE", k.activity(), c}).is_nil()) << c;
    EXPECT_FALSE(Run({"HGET", k.journey_applied(), c}).is_nil()) << c;
    const std::string due_member = absl::StrCat("acme|", c, "|case_1");
    EXPECT_FALSE(
        Run({"ZSCORE", keys::DuePromisesKey(keys::DueBucket("acme", c)), due_member}).is_nil());
    EXPECT_FALSE(Run({"HGET", keys::DuePromisesAppliedKey(keys::DueBucket("acme", c)),
                      absl::StrCat("acme|", c)})
                     .is_nil());
  }
  EXPECT_EQ(Run({"ZSCORE", b1.activity(), "cus_1"}).str, absl::StrCat(kNow + 99999));
  EXPECT_EQ(Run({"HGET", b1.journey_applied(), "cus_1"}).str, "50");  // the greater mark
  EXPECT_EQ(Run({"HGET", b0.journey_counters(), "ship:entered"}).str, "1205");
  EXPECT_EQ(Run({"HGET", b0.journey_stays(), "ship:n"}).str, "3");  // 100, 300, then 200
  EXPECT_EQ(Run({"HGET", b0.journey_stays(), "ship:2"}).str, "200");

  // Once: a second start does nothing (not even a SCAN); forced to run again, it finds nothing
  // to move and changes nothing.
  std::map<std::string, std::string> before;
  for (const auto& k : Run({"KEYS", "*"}).elements) before[k.str] = Run({"DUMP", k.str}).str;
  upgraded = engagement::UpgradeJourneyKeys(client_.get());
  ASSERT_TRUE(upgraded.ok()) << upgraded.status();
  EXPECT_EQ(*upgraded, 0);
  Run({"DEL", keys::BucketUpgradeKey()});
  before.erase(keys::BucketUpgradeKey());
  upgraded = engagement::UpgradeJourneyKeys(client_.get());
  ASSERT_TRUE(upgraded.ok()) << upgraded.status();
  EXPECT_EQ(*upgraded, 0);
  std::map<std::string, std::string> after;
  for (const auto& k : Run({"KEYS", "*"}).elements) {
    if (k.str != keys::BucketUpgradeKey()) after[k.str] = Run({"DUMP", k.str}).str;
  }
  EXPECT_EQ(after, before);

  identity::IdentityStore identity(client_.get());
  engagement::CaseStore cases({client_.get(), &identity, policy_});
  v1::GetJourneyStatsRequest req;
  req.set_tenant("acme");
  absl::StatusOr<v1::GetJourneyStatsResponse> s =
      onestory::testing::Await<v1::GetJourneyStatsResponse>(
          [&](Callback<v1::GetJourneyStatsResponse> done) {
            cases.GetJourneyStats(req, onestory::testing::Deadline(), std::move(done));
          });
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stages(0).open_cases(), 1200);
  EXPECT_EQ(s->stages(0).entered(), 1205);
  EXPECT_EQ(s->stages(0).repeat_contacts(), 3);
  EXPECT_EQ(google::protobuf::util::TimeUtil::DurationToMilliseconds(
                s->stages(0).median_completed_time_in_stage()),
            200);
}

}  // namespace
}  // namespace onestory::lua
