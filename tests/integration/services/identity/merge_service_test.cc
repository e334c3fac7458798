// IdentityService merges over real gRPC against a real redis-server: a Watch open on the source
// follows the merge, a trusted verified login merges on its own (and a deny-listed shared
// identifier never does), a merge suggestion leads to a one-step merge, and the source's
// engagement state (conversations, facts, cases, journey stages, due promises, contacts and
// sentiment) follows a merge and goes back on unmerge.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/server_for_test.h"

namespace onestory {
namespace {

using onestory::testing::Id;

using testing::RedisForTest;
using testing::ServerForTest;

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

v1::Event Ev(const std::string& id) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_MOBILE_APP);
  e.set_kind(v1::EVENT_KIND_APP_VIEW);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  return e;
}

class MergeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisForTest>();
    server_ = std::make_unique<ServerForTest>(*redis_, [](service::ServerOptions* o) {
      o->identity_policy.auto_merge_types["acme"] = {v1::IDENTIFIER_TYPE_APP_USER_ID,
                                                     v1::IDENTIFIER_TYPE_DEVICE_ID};
      o->identity_policy.deny_list = *identity::MergeDenyList::Parse("device_id:kiosk-*");
    });
  }

  std::string Customer(const v1::Identifier& id) {
    v1::ResolveRequest req;
    req.set_tenant("acme");
    *req.mutable_identifier() = id;
    req.set_create_if_missing(true);
    v1::ResolveResponse resp;
    grpc::Status st = server_->identity()->Resolve(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.customer_id();
  }

  grpc::Status Link(const std::string& customer, const v1::Identifier& id,
                    v1::Verification verification, v1::LinkResponse* resp) {
    v1::LinkRequest req;
    req.set_tenant("acme");
    req.set_customer_id(customer);
    *req.mutable_identifier() = id;
    req.set_verification(verification);
    req.set_channel(v1::CHANNEL_MOBILE_APP);
    req.mutable_actor()->set_type(v1::Actor::TYPE_SYSTEM);
    return server_->identity()->Link(Ctx().get(), req, resp);
  }

  v1::AppendResponse Append(v1::CustomerRef ref, v1::Event e) {
    v1::AppendRequest req;
    req.set_tenant("acme");
    *req.mutable_customer() = std::move(ref);
    *req.add_events() = std::move(e);
    v1::AppendResponse resp;
    grpc::Status st = server_->timeline()->Append(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
  v1::AppendResponse Append(const std::string& customer, v1::Event e) {
    v1::CustomerRef ref;
    ref.set_customer_id(customer);
    return Append(std::move(ref), std::move(e));
  }

  v1::Profile Profile(const std::string& customer) {
    v1::GetProfileRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer);
    v1::GetProfileResponse resp;
    grpc::Status st = server_->identity()->GetProfile(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.profile();
  }

  std::unique_ptr<RedisForTest> redis_;
  std::unique_ptr<ServerForTest> server_;
};

TEST_F(MergeServiceTest, AWatchOnTheSourceContinuesWithTheTargetsEvents) {
  std::string a = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  std::string b = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  Append(b, Ev("b1"));
  v1::WatchRequest wreq;
  wreq.set_tenant("acme");
  wreq.mutable_customer()->set_customer_id(b);
  auto wctx = Ctx(absl::Seconds(20));
  auto reader = server_->timeline()->Watch(wctx.get(), wreq);
  absl::SleepFor(absl::Seconds(1));  // the watch subscribes, then starts at the head

  v1::MergeRequest mreq;
  mreq.set_tenant("acme");
  mreq.set_source_customer_id(b);
  mreq.set_target_customer_id(a);
  mreq.set_reason("caller verified both");
  mreq.mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  mreq.mutable_actor()->set_id("agent-7");
  v1::MergeResponse mresp;
  grpc::Status st = server_->identity()->Merge(Ctx().get(), mreq, &mresp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  Append(a, Ev("on-target"));
  v1::CustomerRef email;
  *email.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com");
  Append(email, Ev("via-source-email"));
  v1::WatchResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.event().event_id(), "on-target");
  EXPECT_EQ(msg.event().customer_id(), a);
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.event().event_id(), "via-source-email");
  wctx->TryCancel();

  v1::GetMergeHistoryRequest hreq;
  hreq.set_tenant("acme");
  hreq.set_customer_id(b);
  v1::GetMergeHistoryResponse hresp;
  ASSERT_TRUE(server_->identity()->GetMergeHistory(Ctx().get(), hreq, &hresp).ok());
  ASSERT_EQ(hresp.merges_size(), 1);
  EXPECT_EQ(hresp.merges(0).actor().id(), "agent-7");
  EXPECT_EQ(hresp.merges(0).state(), v1::MergeRecord::STATE_MERGED);
}

TEST_F(MergeServiceTest, AnUnmergeEndsAWatchThatFollowedTheMerge) {
  std::string a = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  std::string b = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  v1::MergeRequest mreq;
  mreq.set_tenant("acme");
  mreq.set_source_customer_id(b);
  mreq.set_target_customer_id(a);
  mreq.set_reason("looked alike");
  mreq.mutable_actor()->set_type(v1::Actor::TYPE_SYSTEM);
  v1::MergeResponse mresp;
  ASSERT_TRUE(server_->identity()->Merge(Ctx().get(), mreq, &mresp).ok());

  // An agent serving b watches through b's id: that is a's timeline now.
  v1::WatchRequest wreq;
  wreq.set_tenant("acme");
  wreq.mutable_customer()->set_customer_id(b);
  wreq.set_from_start(true);
  auto wctx = Ctx(absl::Seconds(20));
  auto reader = server_->timeline()->Watch(wctx.get(), wreq);
  Append(a, Ev("a-1"));
  v1::WatchResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.event().event_id(), "a-1");

  // They were two people after all: the watch must not go on showing a's events.
  v1::UnmergeRequest ureq;
  ureq.set_tenant("acme");
  ureq.set_merge_id(mresp.merge().merge_id());
  ureq.set_reason("different people");
  ureq.mutable_actor()->set_type(v1::Actor::TYPE_SYSTEM);
  v1::UnmergeResponse uresp;
  ASSERT_TRUE(server_->identity()->Unmerge(Ctx().get(), ureq, &uresp).ok());
  Append(a, Ev("a-2"));
  while (reader->Read(&msg)) EXPECT_NE(msg.event().event_id(), "a-2");
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
}

TEST_F(MergeServiceTest, ATrustedVerifiedLoginMergesOnItsOwn) {
  std::string member = Customer(Id(v1::IDENTIFIER_TYPE_APP_USER_ID, "u-1"));
  std::string visitor = Customer(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat-9"));
  Append(visitor, Ev("asked-the-bot"));

  // Typed into chat: not proof enough.
  v1::LinkResponse resp;
  grpc::Status st =
      Link(visitor, Id(v1::IDENTIFIER_TYPE_APP_USER_ID, "u-1"), v1::VERIFICATION_ASSERTED, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(st.error_message(), member)) << st.error_message();
  EXPECT_EQ(Profile(visitor).customer_id(), visitor);

  // The visitor logs in: one person.
  st = Link(visitor, Id(v1::IDENTIFIER_TYPE_APP_USER_ID, "u-1"), v1::VERIFICATION_AUTHENTICATED,
            &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(resp.merge().automatic());
  EXPECT_EQ(resp.merge().source_customer_id(), visitor);
  EXPECT_EQ(resp.merge().target_customer_id(), member);
  v1::Profile p = Profile(visitor);
  EXPECT_EQ(p.customer_id(), member);
  for (const auto& li : p.identifiers()) {
    if (li.identifier().type() == v1::IDENTIFIER_TYPE_APP_USER_ID) {
      EXPECT_EQ(li.evidence().verification(), v1::VERIFICATION_AUTHENTICATED);
    }
  }
  EXPECT_EQ(p.identifiers_size(), 2);
}

TEST_F(MergeServiceTest, ASharedKioskDeviceNeverMerges) {
  std::string a = Customer(Id(v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk-7"));
  std::string b = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  v1::LinkResponse resp;
  grpc::Status st =
      Link(b, Id(v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk-7"), v1::VERIFICATION_AUTHENTICATED, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_FALSE(resp.has_merge());
  EXPECT_EQ(Profile(b).customer_id(), b);
  EXPECT_EQ(Profile(a).customer_id(), a);
}

TEST_F(MergeServiceTest, ASuggestionLeadsToAOneStepMerge) {
  std::string known = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  std::string caller = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  v1::UpdateProfileRequest ureq;
  ureq.set_tenant("acme");
  ureq.set_customer_id(caller);
  (*ureq.mutable_profile()->mutable_attributes())["email"] = "Ann@Example.com";
  ureq.mutable_update_mask()->add_paths("attributes.email");
  v1::UpdateProfileResponse uresp;
  ASSERT_TRUE(server_->identity()->UpdateProfile(Ctx().get(), ureq, &uresp).ok());

  v1::SuggestMergesRequest sreq;
  sreq.set_tenant("acme");
  sreq.mutable_customer()->set_customer_id(caller);
  v1::SuggestMergesResponse sresp;
  grpc::Status st = server_->identity()->SuggestMerges(Ctx().get(), sreq, &sresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(sresp.suggestions_size(), 1);
  EXPECT_EQ(sresp.suggestions(0).customer_id(), known);
  ASSERT_GE(sresp.suggestions(0).reasons_size(), 1);
  EXPECT_EQ(sresp.suggestions(0).reasons(0).code(), "same_email");
  EXPECT_EQ(sresp.suggestions(0).reasons(0).detail(), "ann@example.com");

  v1::MergeRequest mreq;
  mreq.set_tenant("acme");
  mreq.set_source_customer_id(sresp.suggestions(0).customer_id());
  mreq.set_target_customer_id(caller);
  mreq.set_reason("suggested: same_email");
  mreq.mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  mreq.mutable_actor()->set_id("agent-1");
  v1::MergeResponse mresp;
  ASSERT_TRUE(server_->identity()->Merge(Ctx().get(), mreq, &mresp).ok());
  // Once merged, it is no longer suggested.
  sresp.Clear();
  ASSERT_TRUE(server_->identity()->SuggestMerges(Ctx().get(), sreq, &sresp).ok());
  EXPECT_EQ(sresp.suggestions_size(), 0);
}

// Engagement state across Merge and Unmerge ---------------------------------------------------
//
// Source S: a bot conversation on CHATBOT with facts (order_number S-1234, a verification, a step
// tried), a negative message, and an open case in stage "shipped" with a promise. Target T: a
// call on VOICE with order_number T-999, a positive message, and an open case in "ordered".

constexpr char kTenant[] = "acme";

v1::Actor Bot(const std::string& id) {
  v1::Actor a;
  a.set_type(v1::Actor::TYPE_BOT);
  a.set_id(id);
  return a;
}
v1::Actor Agent(const std::string& id) {
  v1::Actor a;
  a.set_type(v1::Actor::TYPE_AGENT);
  a.set_id(id);
  return a;
}

v1::Fact MakeFact(v1::FactType type, const std::string& name, const std::string& value) {
  v1::Fact f;
  f.set_type(type);
  f.set_name(name);
  f.set_value(value);
  return f;
}

template <typename Facts>
const v1::Fact* FindFact(const Facts& facts, v1::FactType type, const std::string& name) {
  for (const auto& f : facts) {
    if (f.type() == type && f.name() == name) return &f;
  }
  return nullptr;
}
template <typename Facts>
int CountFacts(const Facts& facts, v1::FactType type, const std::string& name) {
  int n = 0;
  for (const auto& f : facts) n += f.type() == type && f.name() == name ? 1 : 0;
  return n;
}

std::set<std::string> CaseIds(const v1::GetContextResponse& c) {
  std::set<std::string> ids;
  for (const auto& k : c.open_cases()) ids.insert(k.case_id());
  return ids;
}
const v1::Case* FindCase(const v1::GetContextResponse& c, const std::string& id) {
  for (const auto& k : c.open_cases()) {
    if (k.case_id() == id) return &k;
  }
  return nullptr;
}

class MergeEngagementTest : public ::testing::Test {
 protected:
  static constexpr absl::Duration kScanInterval = absl::Milliseconds(100);

  void SetUp() override {
    redis_ = std::make_unique<RedisForTest>();
    server_ = std::make_unique<ServerForTest>(*redis_, [](service::ServerOptions* o) {
      o->engagement_policy.promise_scan_interval = kScanInterval;
    });
  }

  std::string Customer(const v1::Identifier& id) {
    v1::ResolveRequest req;
    req.set_tenant(kTenant);
    *req.mutable_identifier() = id;
    req.set_create_if_missing(true);
    v1::ResolveResponse resp;
    grpc::Status st = server_->identity()->Resolve(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "Resolve: " << st.error_message();
    return resp.customer_id();
  }

  void SetJourney(const std::vector<std::string>& stages) {
    v1::SetJourneyRequest req;
    req.set_tenant(kTenant);
    for (const auto& s : stages) req.add_stages(s);
    v1::Journey j;
    grpc::Status st = server_->cases()->SetJourney(Ctx().get(), req, &j);
    ASSERT_TRUE(st.ok()) << "SetJourney: " << st.error_message();
  }

  void StartConversation(const std::string& customer, const std::string& id, v1::Channel channel,
                         const v1::Actor& served_by) {
    v1::StartConversationRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customer);
    req.set_conversation_id(id);
    req.set_channel(channel);
    *req.mutable_served_by() = served_by;
    v1::StartConversationResponse resp;
    grpc::Status st = server_->conversations()->StartConversation(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "StartConversation " << id << ": " << st.error_message();
  }

  void RecordFacts(const std::string& customer, const v1::Actor& actor, v1::Channel channel,
                   const std::string& conversation, std::vector<v1::Fact> facts) {
    v1::RecordFactsRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customer);
    *req.mutable_actor() = actor;
    req.set_channel(channel);
    for (auto& f : facts) {
      f.set_conversation_id(conversation);
      *req.add_facts() = std::move(f);
    }
    v1::RecordFactsResponse resp;
    grpc::Status st = server_->conversations()->RecordFacts(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "RecordFacts: " << st.error_message();
  }

  // A customer message in `conversation` with a sentiment.
  void Say(const std::string& customer, const std::string& event_id, v1::Channel channel,
           const std::string& conversation, float sentiment) {
    v1::Event e = Ev(event_id);
    e.set_channel(channel);
    e.set_kind(v1::EVENT_KIND_MESSAGE);
    e.set_conversation_id(conversation);
    e.set_sentiment(sentiment);
    v1::AppendRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customer);
    *req.add_events() = std::move(e);
    v1::AppendResponse resp;
    grpc::Status st = server_->timeline()->Append(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "Append " << event_id << ": " << st.error_message();
  }

  void OpenCase(const std::string& customer, const std::string& id, const std::string& topic,
                const std::string& stage, v1::Channel channel, const std::string& conversation) {
    v1::OpenCaseRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customer);
    req.set_case_id(id);
    req.set_topic(topic);
    req.set_stage(stage);
    *req.mutable_actor() = Agent("agent-1");
    req.set_channel(channel);
    req.set_conversation_id(conversation);
    v1::OpenCaseResponse resp;
    grpc::Status st = server_->cases()->OpenCase(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "OpenCase " << id << ": " << st.error_message();
  }

  v1::UpdateCaseRequest UpdateReq(const std::string& customer, const std::string& case_id) {
    v1::UpdateCaseRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customer);
    req.set_case_id(case_id);
    *req.mutable_actor() = Agent("agent-1");
    req.set_channel(v1::CHANNEL_VOICE);
    return req;
  }
  grpc::Status UpdateCase(const v1::UpdateCaseRequest& req, v1::UpdateCaseResponse* resp) {
    return server_->cases()->UpdateCase(Ctx().get(), req, resp);
  }

  v1::GetContextResponse Context(const std::string& customer) {
    v1::GetContextRequest req;
    req.set_tenant(kTenant);
    req.mutable_customer()->set_customer_id(customer);
    req.set_audience(v1::AUDIENCE_SUPERVISOR);
    v1::GetContextResponse resp;
    grpc::Status st = server_->context()->GetContext(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "GetContext " << customer << ": " << st.error_message();
    return resp;
  }

  // Open cases per stage (every stage of the journey listed).
  // Once the calls' outboxes are applied (the journey follows them, libs/outbox).
  std::map<std::string, int64_t> OpenPerStage() {
    EXPECT_TRUE(redis_->AwaitOutboxesDrained());
    v1::GetJourneyStatsRequest req;
    req.set_tenant(kTenant);
    v1::GetJourneyStatsResponse resp;
    grpc::Status st = server_->cases()->GetJourneyStats(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "GetJourneyStats: " << st.error_message();
    std::map<std::string, int64_t> out;
    for (const auto& s : resp.stages()) out[s.stage()] = s.open_cases();
    return out;
  }

  std::vector<v1::Alert> PromiseAlerts() {
    v1::ListAlertsRequest req;
    req.set_tenant(kTenant);
    req.set_page_size(500);
    req.set_include_acknowledged(true);
    v1::ListAlertsResponse resp;
    grpc::Status st = server_->alerts()->ListAlerts(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "ListAlerts: " << st.error_message();
    std::vector<v1::Alert> out;
    for (const auto& a : resp.alerts()) {
      if (a.kind() == v1::ALERT_KIND_PROMISE_OVERDUE) out.push_back(a);
    }
    return out;
  }

  // Whether the tenant-wide due-promise index holds `customer`'s promise on `case_id`.
  bool PromiseIndexed(const std::string& customer, const std::string& case_id) {
    EXPECT_TRUE(redis_->AwaitOutboxesDrained());
    redis::Reply r =
        redis_->Run({"ZSCORE", keys::DuePromisesKey(keys::DueBucket(kTenant, customer)),
                     absl::StrCat(kTenant, "|", customer, "|", case_id)});
    return !r.is_nil();
  }

  // S and T as described above; S's promise on s-case is due `promise_in` from now. Returns
  // when promised_by is.
  absl::Time Seed(absl::Duration promise_in) {
    SetJourney({"ordered", "shipped", "delivered"});
    s_ = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
    t_ = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));

    StartConversation(s_, "s-bot", v1::CHANNEL_CHATBOT, Bot("bot-1"));
    v1::Fact verified = MakeFact(v1::FACT_TYPE_VERIFICATION, "identity", "one_time_code");
    *verified.mutable_expires_at() = FromMillis(NowMillis() + 3600 * 1000);
    RecordFacts(s_, Bot("bot-1"), v1::CHANNEL_CHATBOT, "s-bot",
                {MakeFact(v1::FACT_TYPE_COLLECTED, "order_number", "S-1234"), verified,
                 MakeFact(v1::FACT_TYPE_STEP_TRIED, "track_parcel", "no updates")});
    Say(s_, "s-angry", v1::CHANNEL_CHATBOT, "s-bot", -0.75f);
    OpenCase(s_, "s-case", "order S-1234 not delivered", "shipped", v1::CHANNEL_CHATBOT, "s-bot");

    StartConversation(t_, "t-call", v1::CHANNEL_VOICE, Agent("agent-2"));
    RecordFacts(t_, Agent("agent-2"), v1::CHANNEL_VOICE, "t-call",
                {MakeFact(v1::FACT_TYPE_COLLECTED, "order_number", "T-999")});
    Say(t_, "t-happy", v1::CHANNEL_VOICE, "t-call", 0.8f);
    OpenCase(t_, "t-case", "router arrives broken", "ordered", v1::CHANNEL_VOICE, "t-call");

    absl::Time due = absl::FromUnixMillis(NowMillis()) + promise_in;
    v1::UpdateCaseRequest promise = UpdateReq(s_, "s-case");
    promise.set_promise("refund by Friday");
    *promise.mutable_promised_by() = FromMillis(absl::ToUnixMillis(due));
    v1::UpdateCaseResponse presp;
    grpc::Status st = UpdateCase(promise, &presp);
    EXPECT_TRUE(st.ok()) << "UpdateCase (promise): " << st.error_message();

    // The starting point the later checks compare with.
    v1::GetContextResponse sc = Context(s_), tc = Context(t_);
    EXPECT_EQ(sc.signals().contacts_30d(), 1);
    EXPECT_EQ(sc.signals().distinct_channels_30d(), 1);
    EXPECT_EQ(sc.signals().negative_30d(), 1);
    EXPECT_EQ(sc.signals().positive_30d(), 0);
    EXPECT_EQ(tc.signals().contacts_30d(), 1);
    EXPECT_EQ(tc.signals().distinct_channels_30d(), 1);
    EXPECT_EQ(tc.signals().negative_30d(), 0);
    EXPECT_EQ(tc.signals().positive_30d(), 1);
    EXPECT_EQ(CaseIds(sc), std::set<std::string>{"s-case"});
    EXPECT_EQ(CaseIds(tc), std::set<std::string>{"t-case"});
    std::map<std::string, int64_t> want = {{"ordered", 1}, {"shipped", 1}, {"delivered", 0}};
    EXPECT_EQ(OpenPerStage(), want);
    EXPECT_TRUE(PromiseIndexed(s_, "s-case"));
    return due;
  }

  std::string MergeSIntoT() {
    v1::MergeRequest req;
    req.set_tenant(kTenant);
    req.set_source_customer_id(s_);
    req.set_target_customer_id(t_);
    req.set_reason("caller verified both");
    *req.mutable_actor() = Agent("agent-7");
    v1::MergeResponse resp;
    grpc::Status st = server_->identity()->Merge(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "Merge: " << st.error_message();
    return resp.merge().merge_id();
  }

  std::unique_ptr<RedisForTest> redis_;
  std::unique_ptr<ServerForTest> server_;
  std::string s_, t_;
};

TEST_F(MergeEngagementTest, TheSourcesConversationsFactsCasesAndPromisesFollowAMerge) {
  absl::Time due = Seed(absl::Milliseconds(800));
  std::string merge_id = MergeSIntoT();
  ASSERT_FALSE(merge_id.empty());
  // The promise must still be pending when the merge is done, or its alert names S.
  ASSERT_LT(absl::Now(), due) << "the merge took longer than the promise's lead time";

  for (const std::string& who : {t_, s_}) {
    SCOPED_TRACE("GetContext of " + who + (who == s_ ? " (the source)" : " (the target)"));
    v1::GetContextResponse c = Context(who);
    EXPECT_EQ(c.profile().customer_id(), t_);
    EXPECT_EQ(CaseIds(c), (std::set<std::string>{"s-case", "t-case"}));
    const v1::Case* sc = FindCase(c, "s-case");
    ASSERT_NE(sc, nullptr);
    EXPECT_EQ(sc->customer_id(), t_);
    EXPECT_EQ(sc->stage(), "shipped");
    EXPECT_EQ(sc->promise().text(), "refund by Friday");
    // The target's own fact wins; the source's others join it.
    EXPECT_EQ(CountFacts(c.facts(), v1::FACT_TYPE_COLLECTED, "order_number"), 1);
    const v1::Fact* order = FindFact(c.facts(), v1::FACT_TYPE_COLLECTED, "order_number");
    ASSERT_NE(order, nullptr);
    EXPECT_EQ(order->value(), "T-999");
    const v1::Fact* verified = FindFact(c.facts(), v1::FACT_TYPE_VERIFICATION, "identity");
    ASSERT_NE(verified, nullptr);
    EXPECT_EQ(verified->value(), "one_time_code");
    EXPECT_TRUE(verified->has_expires_at());
    const v1::Fact* tried = FindFact(c.facts(), v1::FACT_TYPE_STEP_TRIED, "track_parcel");
    ASSERT_NE(tried, nullptr);
    EXPECT_EQ(tried->value(), "no updates");
    EXPECT_EQ(c.facts_size(), 3);
    EXPECT_EQ(c.signals().contacts_30d(), 2);
    EXPECT_EQ(c.signals().contacts_7d(), 2);
    EXPECT_EQ(c.signals().distinct_channels_30d(), 2);
    EXPECT_EQ(c.signals().positive_30d(), 1);
    EXPECT_EQ(c.signals().negative_30d(), 1);
  }

  // Both open cases stay counted in their stages, once each (no S|s-case left behind).
  std::map<std::string, int64_t> merged = {{"ordered", 1}, {"shipped", 1}, {"delivered", 0}};
  EXPECT_EQ(OpenPerStage(), merged);
  EXPECT_FALSE(PromiseIndexed(s_, "s-case"));
  EXPECT_TRUE(PromiseIndexed(t_, "s-case"));

  // S's promise passes: one PROMISE_OVERDUE, naming T (whose case it is now).
  std::vector<v1::Alert> alerts;
  absl::Time give_up = due + absl::Seconds(2);
  while (absl::Now() < give_up) {
    alerts = PromiseAlerts();
    if (!alerts.empty()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE(alerts.empty()) << "no PROMISE_OVERDUE within 2 s of promised_by";
  absl::SleepFor(3 * kScanInterval);  // later scans must not raise it again
  alerts = PromiseAlerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].customer_id(), t_);
  EXPECT_EQ(alerts[0].case_id(), "s-case");
  EXPECT_TRUE(absl::StrContains(alerts[0].message(), t_)) << alerts[0].message();

  // S's case is changed through T's id.
  v1::UpdateCaseRequest ureq = UpdateReq(t_, "s-case");
  ureq.set_stage("delivered");
  ureq.set_note("courier confirmed delivery to the neighbour");
  v1::UpdateCaseResponse uresp;
  grpc::Status st = UpdateCase(ureq, &uresp);
  ASSERT_TRUE(st.ok()) << "UpdateCase through the target: " << st.error_message();
  EXPECT_EQ(uresp.case_().customer_id(), t_);
  EXPECT_EQ(uresp.case_().stage(), "delivered");
  std::map<std::string, int64_t> moved = {{"ordered", 1}, {"shipped", 0}, {"delivered", 1}};
  EXPECT_EQ(OpenPerStage(), moved);
}

TEST_F(MergeEngagementTest, AnUnmergeGivesTheSourceItsEngagementBackWithChangesMadeWhileMerged) {
  Seed(absl::Hours(48));
  std::string merge_id = MergeSIntoT();
  ASSERT_FALSE(merge_id.empty());

  // While merged, S's case moves on through T's id.
  v1::UpdateCaseRequest ureq = UpdateReq(t_, "s-case");
  ureq.set_stage("delivered");
  ureq.set_note("courier confirmed delivery to the neighbour");
  v1::UpdateCaseResponse uresp;
  grpc::Status st = UpdateCase(ureq, &uresp);
  ASSERT_TRUE(st.ok()) << "UpdateCase through the target: " << st.error_message();
  std::map<std::string, int64_t> before = OpenPerStage();
  std::map<std::string, int64_t> want = {{"ordered", 1}, {"shipped", 0}, {"delivered", 1}};
  EXPECT_EQ(before, want);

  v1::UnmergeRequest req;
  req.set_tenant(kTenant);
  req.set_merge_id(merge_id);
  req.set_reason("different people");
  *req.mutable_actor() = Agent("agent-7");
  v1::UnmergeResponse resp;
  st = server_->identity()->Unmerge(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << "Unmerge: " << st.error_message();

  {
    SCOPED_TRACE("GetContext of the source after the unmerge");
    v1::GetContextResponse c = Context(s_);
    EXPECT_EQ(c.profile().customer_id(), s_);
    EXPECT_EQ(CaseIds(c), std::set<std::string>{"s-case"});
    const v1::Case* sc = FindCase(c, "s-case");
    ASSERT_NE(sc, nullptr);
    EXPECT_EQ(sc->customer_id(), s_);
    EXPECT_EQ(sc->stage(), "delivered");
    EXPECT_EQ(sc->last_note(), "courier confirmed delivery to the neighbour");
    EXPECT_EQ(sc->promise().text(), "refund by Friday");
    const v1::Fact* order = FindFact(c.facts(), v1::FACT_TYPE_COLLECTED, "order_number");
    ASSERT_NE(order, nullptr);
    EXPECT_EQ(order->value(), "S-1234");
    EXPECT_NE(FindFact(c.facts(), v1::FACT_TYPE_VERIFICATION, "identity"), nullptr);
    EXPECT_NE(FindFact(c.facts(), v1::FACT_TYPE_STEP_TRIED, "track_parcel"), nullptr);
    EXPECT_EQ(c.facts_size(), 3);
    EXPECT_EQ(c.signals().contacts_30d(), 1);
    EXPECT_EQ(c.signals().distinct_channels_30d(), 1);
    EXPECT_EQ(c.signals().negative_30d(), 1);
    EXPECT_EQ(c.signals().positive_30d(), 0);
  }
  {
    SCOPED_TRACE("GetContext of the target after the unmerge");
    v1::GetContextResponse c = Context(t_);
    EXPECT_EQ(c.profile().customer_id(), t_);
    EXPECT_EQ(CaseIds(c), std::set<std::string>{"t-case"});
    const v1::Fact* order = FindFact(c.facts(), v1::FACT_TYPE_COLLECTED, "order_number");
    ASSERT_NE(order, nullptr);
    EXPECT_EQ(order->value(), "T-999");
    EXPECT_EQ(FindFact(c.facts(), v1::FACT_TYPE_VERIFICATION, "identity"), nullptr);
    EXPECT_EQ(FindFact(c.facts(), v1::FACT_TYPE_STEP_TRIED, "track_parcel"), nullptr);
    EXPECT_EQ(c.facts_size(), 1);
    EXPECT_EQ(c.signals().contacts_30d(), 1);
    EXPECT_EQ(c.signals().contacts_7d(), 1);
    EXPECT_EQ(c.signals().distinct_channels_30d(), 1);
    EXPECT_EQ(c.signals().positive_30d(), 1);
    EXPECT_EQ(c.signals().negative_30d(), 0);
  }

  // The stage index and the due promise name S again: same totals, and S's own changes keep
  // them right.
  EXPECT_EQ(OpenPerStage(), before);
  EXPECT_TRUE(PromiseIndexed(s_, "s-case"));
  EXPECT_FALSE(PromiseIndexed(t_, "s-case"));
  uresp.Clear();
  v1::UpdateCaseRequest stale = UpdateReq(t_, "s-case");
  stale.set_note("written to the wrong customer");
  st = UpdateCase(stale, &uresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  v1::ResolveCaseRequest rreq;
  rreq.set_tenant(kTenant);
  rreq.mutable_customer()->set_customer_id(s_);
  rreq.set_case_id("s-case");
  *rreq.mutable_actor() = Agent("agent-1");
  rreq.set_channel(v1::CHANNEL_VOICE);
  rreq.set_resolution("refund issued");
  v1::ResolveCaseResponse rresp;
  st = server_->cases()->ResolveCase(Ctx().get(), rreq, &rresp);
  ASSERT_TRUE(st.ok()) << "ResolveCase on the source: " << st.error_message();
  std::map<std::string, int64_t> resolved = {{"ordered", 1}, {"shipped", 0}, {"delivered", 0}};
  EXPECT_EQ(OpenPerStage(), resolved);
}

TEST_F(MergeEngagementTest, AFactOfTheSourceRestatedWhileMergedGoesBackWithTheSource) {
  Seed(absl::Hours(48));
  std::string merge_id = MergeSIntoT();
  ASSERT_FALSE(merge_id.empty());
  // S's step, restated through T's id while merged: a change to S's record, like a case update.
  RecordFacts(t_, Agent("agent-1"), v1::CHANNEL_VOICE, "",
              {MakeFact(v1::FACT_TYPE_STEP_TRIED, "track_parcel", "carrier says lost")});
  v1::GetContextResponse merged = Context(t_);
  ASSERT_NE(FindFact(merged.facts(), v1::FACT_TYPE_STEP_TRIED, "track_parcel"), nullptr);

  v1::UnmergeRequest req;
  req.set_tenant(kTenant);
  req.set_merge_id(merge_id);
  req.set_reason("different people");
  *req.mutable_actor() = Agent("agent-7");
  v1::UnmergeResponse resp;
  grpc::Status st = server_->identity()->Unmerge(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << "Unmerge: " << st.error_message();

  v1::GetContextResponse sc = Context(s_);
  const v1::Fact* back = FindFact(sc.facts(), v1::FACT_TYPE_STEP_TRIED, "track_parcel");
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->value(), "carrier says lost");
  EXPECT_EQ(back->times_stated(), 2);
  v1::GetContextResponse tc = Context(t_);
  EXPECT_EQ(FindFact(tc.facts(), v1::FACT_TYPE_STEP_TRIED, "track_parcel"), nullptr);
}

}  // namespace
}  // namespace onestory
