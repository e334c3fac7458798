// EngagementFixture: what the engagement integration tests (conversations, handoffs, facts,
// cases, journeys, alerts, audiences) share: one real redis-server and one in-process server per
// test binary, a tenant of its own for each test (named after the test), request builders, and
// blocking calls with deadlines. The `...Ok` calls add a test failure naming the RPC and the
// status when a call that must succeed does not, and return the (then empty) response.
//
//   class CaseServiceTest : public onestory::testing::EngagementFixture {};
//   TEST_F(CaseServiceTest, ResolvingTwiceIsADuplicate) {
//     std::string c = NewCustomer();
//     OpenCaseOk(OpenReq(c, "case-1", "order 1234 not delivered"));
//     EXPECT_EQ(GetCaseOk(c, "case-1").state(), v1::CASE_STATE_OPEN);
//   }
//
// The suite's server scans for overdue promises every 200 ms (kPromiseScanInterval) and keeps
// every other engagement default (repeat window 7 days, alerts at 3). Tests that need other
// rules start a ServerForTest of their own on redis() with Configure() and their changes.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/server_for_test.h"

namespace onestory::testing {

inline constexpr absl::Duration kPromiseScanInterval = absl::Milliseconds(200);

inline std::string Describe(const grpc::Status& st) {
  return absl::StrCat("code ", st.error_code(), ": ", st.error_message());
}

inline std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

// A timestamp `d` from now (negative: in the past).
inline google::protobuf::Timestamp FromNow(absl::Duration d) {
  google::protobuf::Timestamp ts;
  int64_t ms = absl::ToUnixMillis(absl::Now() + d);
  ts.set_seconds(ms / 1000);
  ts.set_nanos(static_cast<int32_t>(ms % 1000) * 1000000);
  return ts;
}
inline absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}
inline int64_t ToMillis(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000 + ts.nanos() / 1000000;
}
inline absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

inline v1::Actor Bot(const std::string& id) {
  v1::Actor a;
  a.set_type(v1::Actor::TYPE_BOT);
  a.set_id(id);
  return a;
}
inline v1::Actor Agent(const std::string& id) {
  v1::Actor a;
  a.set_type(v1::Actor::TYPE_AGENT);
  a.set_id(id);
  return a;
}
inline v1::Actor SystemActor() {
  v1::Actor a;
  a.set_type(v1::Actor::TYPE_SYSTEM);
  return a;
}
inline v1::Actor CustomerActor() {
  v1::Actor a;
  a.set_type(v1::Actor::TYPE_CUSTOMER);
  return a;
}
inline bool SameActor(const v1::Actor& a, const v1::Actor& b) {
  return a.type() == b.type() && a.id() == b.id();
}

inline v1::Fact MakeFact(v1::FactType type, const std::string& name, const std::string& value) {
  v1::Fact f;
  f.set_type(type);
  f.set_name(name);
  f.set_value(value);
  return f;
}
inline v1::Fact Collected(const std::string& name, const std::string& value) {
  return MakeFact(v1::FACT_TYPE_COLLECTED, name, value);
}
inline v1::Fact StepTried(const std::string& name, const std::string& value) {
  return MakeFact(v1::FACT_TYPE_STEP_TRIED, name, value);
}
inline v1::Fact Verification(const std::string& name, const std::string& value,
                             absl::Duration lasts = absl::Hours(1)) {
  v1::Fact f = MakeFact(v1::FACT_TYPE_VERIFICATION, name, value);
  *f.mutable_expires_at() = FromNow(lasts);
  return f;
}
inline v1::Fact PromiseFact(const std::string& name, const std::string& value,
                            absl::Duration due_in = absl::Hours(48)) {
  v1::Fact f = MakeFact(v1::FACT_TYPE_PROMISE, name, value);
  *f.mutable_due_at() = FromNow(due_in);
  return f;
}

// A customer message on `channel`, optionally with a sentiment and a conversation.
inline v1::Event Message(const std::string& id, v1::Channel channel = v1::CHANNEL_WEB_CHAT,
                         std::optional<float> sentiment = std::nullopt,
                         const std::string& conversation_id = "") {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(channel);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  e.set_summary(absl::StrCat("message ", id));
  if (sentiment.has_value()) e.set_sentiment(*sentiment);
  e.set_conversation_id(conversation_id);
  e.set_visibility(v1::AUDIENCE_CUSTOMER);
  return e;
}
// An agent's note with the given visibility (UNSPECIFIED: AGENT).
inline v1::Event Note(const std::string& id, v1::Audience visibility) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_VOICE);
  e.set_kind(v1::EVENT_KIND_NOTE);
  *e.mutable_actor() = Agent("agent-7");
  e.set_summary(absl::StrCat("note ", id));
  e.set_visibility(visibility);
  return e;
}

inline int CountKind(const std::vector<v1::Event>& events, v1::EventKind kind) {
  int n = 0;
  for (const auto& e : events) n += e.kind() == kind ? 1 : 0;
  return n;
}
template <typename Events>
inline std::vector<std::string> EventIds(const Events& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.event_id());
  return ids;
}
// "type:name" of each fact, in order.
template <typename Facts>
inline std::vector<std::string> FactKeys(const Facts& facts) {
  std::vector<std::string> keys;
  for (const auto& f : facts)
    keys.push_back(absl::StrCat(v1::FactType_Name(f.type()), ":", f.name()));
  return keys;
}
template <typename Facts>
inline const v1::Fact* FindFact(const Facts& facts, v1::FactType type, const std::string& name) {
  for (const auto& f : facts) {
    if (f.type() == type && f.name() == name) return &f;
  }
  return nullptr;
}

// Polls `done` every 50 ms until it holds or `limit` passes; returns whether it held. For
// things that happen in the background (the promise scanner); never a timing assertion.
inline bool Eventually(const std::function<bool()>& done,
                       absl::Duration limit = absl::Seconds(15)) {
  absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

class EngagementFixture : public ::testing::Test {
 protected:
  // The suite server's options; tests starting servers of their own start from these.
  static void Configure(service::ServerOptions* o) {
    o->engagement_policy.promise_scan_interval = kPromiseScanInterval;
  }

  static void SetUpTestSuite() {
    redis_ = new RedisForTest();
    server_ = new ServerForTest(*redis_, &EngagementFixture::Configure);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete redis_;
    redis_ = nullptr;
  }

  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    tenant_ = name.substr(0, 64);
  }

  static RedisForTest* redis() { return redis_; }
  static ServerForTest* server() { return server_; }
  const std::string& tenant() const { return tenant_; }

  // Every key of this test's tenant with its DUMP: proves a rejected call changed nothing.
  std::map<std::string, std::string> TenantSnapshot() {
    std::map<std::string, std::string> all = redis_->Snapshot();
    std::map<std::string, std::string> mine;
    std::string prefix = absl::StrCat("os:{", tenant_, ":");
    for (auto& [k, v] : all) {
      if (absl::StartsWith(k, prefix)) mine.emplace(k, v);
    }
    return mine;
  }

  // A new customer of this tenant, created by resolving a phone number.
  std::string NewCustomer(const std::string& phone = "14155550100") {
    v1::ResolveRequest req;
    req.set_tenant(tenant_);
    *req.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, phone);
    req.set_create_if_missing(true);
    v1::ResolveResponse resp;
    grpc::Status st = server_->identity()->Resolve(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "Resolve: " << Describe(st);
    return resp.customer_id();
  }
  v1::CustomerRef Ref(const std::string& customer) const {
    v1::CustomerRef ref;
    ref.set_customer_id(customer);
    return ref;
  }

  // ConversationService ---------------------------------------------------------------------

  v1::StartConversationRequest StartReq(const std::string& customer,
                                        const std::string& conversation_id, v1::Channel channel,
                                        const v1::Actor& served_by) const {
    v1::StartConversationRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_conversation_id(conversation_id);
    req.set_channel(channel);
    *req.mutable_served_by() = served_by;
    return req;
  }
  grpc::Status Start(const v1::StartConversationRequest& req, v1::StartConversationResponse* resp,
                     ServerForTest* via = nullptr) {
    return (via ? via : server_)->conversations()->StartConversation(Ctx().get(), req, resp);
  }
  v1::StartConversationResponse StartOk(const v1::StartConversationRequest& req,
                                        ServerForTest* via = nullptr) {
    v1::StartConversationResponse resp;
    grpc::Status st = Start(req, &resp, via);
    EXPECT_TRUE(st.ok()) << "StartConversation " << req.conversation_id() << ": " << Describe(st);
    return resp;
  }

  v1::HandoffRequest HandoffReq(const std::string& customer, const std::string& conversation_id,
                                const v1::Actor& from, const v1::Actor& to) const {
    v1::HandoffRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_conversation_id(conversation_id);
    *req.mutable_from() = from;
    *req.mutable_to() = to;
    req.set_reason("customer asked for a human");
    return req;
  }
  grpc::Status Handoff(const v1::HandoffRequest& req, v1::HandoffResponse* resp) {
    return server_->conversations()->Handoff(Ctx().get(), req, resp);
  }
  v1::HandoffResponse HandoffOk(const v1::HandoffRequest& req) {
    v1::HandoffResponse resp;
    grpc::Status st = Handoff(req, &resp);
    EXPECT_TRUE(st.ok()) << "Handoff " << req.conversation_id() << ": " << Describe(st);
    return resp;
  }

  v1::EndConversationRequest EndReq(const std::string& customer, const std::string& conversation_id,
                                    const v1::Actor& actor) const {
    v1::EndConversationRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_conversation_id(conversation_id);
    *req.mutable_actor() = actor;
    req.set_outcome("resolved");
    req.set_wrap_up_code("WRAP-OK");
    return req;
  }
  grpc::Status End(const v1::EndConversationRequest& req, v1::EndConversationResponse* resp) {
    return server_->conversations()->EndConversation(Ctx().get(), req, resp);
  }
  v1::EndConversationResponse EndOk(const v1::EndConversationRequest& req) {
    v1::EndConversationResponse resp;
    grpc::Status st = End(req, &resp);
    EXPECT_TRUE(st.ok()) << "EndConversation " << req.conversation_id() << ": " << Describe(st);
    return resp;
  }

  v1::RecordFactsRequest FactsReq(const std::string& customer, std::vector<v1::Fact> facts,
                                  const v1::Actor& actor = Bot("bot-1"),
                                  v1::Channel channel = v1::CHANNEL_CHATBOT) const {
    v1::RecordFactsRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    *req.mutable_actor() = actor;
    req.set_channel(channel);
    for (auto& f : facts) *req.add_facts() = std::move(f);
    return req;
  }
  grpc::Status RecordFacts(const v1::RecordFactsRequest& req, v1::RecordFactsResponse* resp) {
    return server_->conversations()->RecordFacts(Ctx().get(), req, resp);
  }
  v1::RecordFactsResponse RecordFactsOk(const v1::RecordFactsRequest& req) {
    v1::RecordFactsResponse resp;
    grpc::Status st = RecordFacts(req, &resp);
    EXPECT_TRUE(st.ok()) << "RecordFacts: " << Describe(st);
    return resp;
  }

  // CaseService -----------------------------------------------------------------------------

  v1::OpenCaseRequest OpenReq(const std::string& customer, const std::string& case_id,
                              const std::string& topic,
                              v1::Channel channel = v1::CHANNEL_WEB_CHAT) const {
    v1::OpenCaseRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_case_id(case_id);
    req.set_topic(topic);
    *req.mutable_actor() = Agent("agent-1");
    req.set_channel(channel);
    return req;
  }
  grpc::Status OpenCase(const v1::OpenCaseRequest& req, v1::OpenCaseResponse* resp) {
    return server_->cases()->OpenCase(Ctx().get(), req, resp);
  }
  v1::OpenCaseResponse OpenCaseOk(const v1::OpenCaseRequest& req) {
    v1::OpenCaseResponse resp;
    grpc::Status st = OpenCase(req, &resp);
    EXPECT_TRUE(st.ok()) << "OpenCase " << req.case_id() << ": " << Describe(st);
    return resp;
  }

  v1::UpdateCaseRequest UpdateReq(const std::string& customer, const std::string& case_id) const {
    v1::UpdateCaseRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_case_id(case_id);
    *req.mutable_actor() = Agent("agent-1");
    req.set_channel(v1::CHANNEL_VOICE);
    return req;
  }
  grpc::Status UpdateCase(const v1::UpdateCaseRequest& req, v1::UpdateCaseResponse* resp) {
    return server_->cases()->UpdateCase(Ctx().get(), req, resp);
  }
  v1::UpdateCaseResponse UpdateCaseOk(const v1::UpdateCaseRequest& req) {
    v1::UpdateCaseResponse resp;
    grpc::Status st = UpdateCase(req, &resp);
    EXPECT_TRUE(st.ok()) << "UpdateCase " << req.case_id() << ": " << Describe(st);
    return resp;
  }

  v1::ResolveCaseRequest ResolveReq(const std::string& customer, const std::string& case_id) const {
    v1::ResolveCaseRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_case_id(case_id);
    *req.mutable_actor() = Agent("agent-1");
    req.set_channel(v1::CHANNEL_VOICE);
    req.set_resolution("refund issued");
    return req;
  }
  grpc::Status ResolveCase(const v1::ResolveCaseRequest& req, v1::ResolveCaseResponse* resp) {
    return server_->cases()->ResolveCase(Ctx().get(), req, resp);
  }
  v1::ResolveCaseResponse ResolveCaseOk(const v1::ResolveCaseRequest& req) {
    v1::ResolveCaseResponse resp;
    grpc::Status st = ResolveCase(req, &resp);
    EXPECT_TRUE(st.ok()) << "ResolveCase " << req.case_id() << ": " << Describe(st);
    return resp;
  }

  grpc::Status GetCase(const std::string& customer, const std::string& case_id, v1::Case* out) {
    v1::GetCaseRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_case_id(case_id);
    return server_->cases()->GetCase(Ctx().get(), req, out);
  }
  v1::Case GetCaseOk(const std::string& customer, const std::string& case_id) {
    v1::Case c;
    grpc::Status st = GetCase(customer, case_id, &c);
    EXPECT_TRUE(st.ok()) << "GetCase " << case_id << ": " << Describe(st);
    return c;
  }

  grpc::Status SetJourney(const std::vector<std::string>& stages, v1::Journey* out = nullptr) {
    v1::SetJourneyRequest req;
    req.set_tenant(tenant_);
    for (const auto& s : stages) req.add_stages(s);
    v1::Journey ignored;
    return server_->cases()->SetJourney(Ctx().get(), req, out ? out : &ignored);
  }
  std::vector<std::string> JourneyStages() {
    v1::GetJourneyRequest req;
    req.set_tenant(tenant_);
    v1::Journey j;
    grpc::Status st = server_->cases()->GetJourney(Ctx().get(), req, &j);
    EXPECT_TRUE(st.ok()) << "GetJourney: " << Describe(st);
    return {j.stages().begin(), j.stages().end()};
  }
  v1::GetJourneyStatsResponse JourneyStats() {
    v1::GetJourneyStatsRequest req;
    req.set_tenant(tenant_);
    v1::GetJourneyStatsResponse resp;
    grpc::Status st = server_->cases()->GetJourneyStats(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "GetJourneyStats: " << Describe(st);
    return resp;
  }

  // Timeline and context --------------------------------------------------------------------

  v1::AppendResponse AppendOk(const std::string& customer, std::vector<v1::Event> events) {
    v1::AppendRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    for (auto& e : events) *req.add_events() = std::move(e);
    v1::AppendResponse resp;
    grpc::Status st = server_->timeline()->Append(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << "Append: " << Describe(st);
    return resp;
  }

  // The whole timeline, oldest first, as `audience` sees it (every page).
  std::vector<v1::Event> Timeline(const std::string& customer,
                                  v1::Audience audience = v1::AUDIENCE_UNSPECIFIED) {
    std::vector<v1::Event> out;
    v1::ListRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_order(v1::ORDER_OLDEST_FIRST);
    req.set_page_size(500);
    req.set_audience(audience);
    for (int page = 0; page < 100; ++page) {
      v1::ListResponse resp;
      grpc::Status st = server_->timeline()->List(Ctx().get(), req, &resp);
      EXPECT_TRUE(st.ok()) << "List: " << Describe(st);
      if (!st.ok()) break;
      for (const auto& e : resp.events()) out.push_back(e);
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }

  grpc::Status GetContext(const std::string& customer, v1::Audience audience, int recent_events,
                          v1::GetContextResponse* out, ServerForTest* via = nullptr) {
    v1::GetContextRequest req;
    req.set_tenant(tenant_);
    *req.mutable_customer() = Ref(customer);
    req.set_audience(audience);
    req.set_recent_events(recent_events);
    return (via ? via : server_)->context()->GetContext(Ctx().get(), req, out);
  }
  v1::GetContextResponse ContextOk(const std::string& customer,
                                   v1::Audience audience = v1::AUDIENCE_UNSPECIFIED,
                                   int recent_events = 0, ServerForTest* via = nullptr) {
    v1::GetContextResponse resp;
    grpc::Status st = GetContext(customer, audience, recent_events, &resp, via);
    EXPECT_TRUE(st.ok()) << "GetContext: " << Describe(st);
    return resp;
  }

  // AlertService ----------------------------------------------------------------------------

  grpc::Status ListAlerts(const v1::ListAlertsRequest& req, v1::ListAlertsResponse* resp) {
    return server_->alerts()->ListAlerts(Ctx().get(), req, resp);
  }
  // Every alert of the tenant, newest first (every page).
  grpc::Status AllAlerts(bool include_acknowledged, std::vector<v1::Alert>* out) {
    v1::ListAlertsRequest req;
    req.set_tenant(tenant_);
    req.set_page_size(500);
    req.set_include_acknowledged(include_acknowledged);
    for (int page = 0; page < 100; ++page) {
      v1::ListAlertsResponse resp;
      grpc::Status st = ListAlerts(req, &resp);
      if (!st.ok()) return st;
      for (const auto& a : resp.alerts()) out->push_back(a);
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return grpc::Status::OK;
  }
  std::vector<v1::Alert> Alerts(bool include_acknowledged = true) {
    std::vector<v1::Alert> out;
    grpc::Status st = AllAlerts(include_acknowledged, &out);
    EXPECT_TRUE(st.ok()) << "ListAlerts: " << Describe(st);
    return out;
  }
  // Waits (bounded) until the tenant holds at least `n` alerts of `kind`; false when it never
  // does or ListAlerts fails.
  bool WaitForAlerts(v1::AlertKind kind, size_t n) {
    grpc::Status st;
    size_t have = 0;
    Eventually([&] {
      std::vector<v1::Alert> all;
      st = AllAlerts(true, &all);
      have = 0;
      for (const auto& a : all) have += a.kind() == kind ? 1 : 0;
      return !st.ok() || have >= n;
    });
    EXPECT_TRUE(st.ok()) << "ListAlerts: " << Describe(st);
    return st.ok() && have >= n;
  }
  std::vector<v1::Alert> AlertsOfKind(v1::AlertKind kind, bool include_acknowledged = true) {
    std::vector<v1::Alert> out;
    for (auto& a : Alerts(include_acknowledged)) {
      if (a.kind() == kind) out.push_back(std::move(a));
    }
    return out;
  }
  grpc::Status AckAlert(const std::string& alert_id, const v1::Actor& actor, v1::Alert* out) {
    v1::AckAlertRequest req;
    req.set_tenant(tenant_);
    req.set_alert_id(alert_id);
    *req.mutable_actor() = actor;
    return server_->alerts()->AckAlert(Ctx().get(), req, out);
  }

  static inline RedisForTest* redis_ = nullptr;
  static inline ServerForTest* server_ = nullptr;
  std::string tenant_;
};

}  // namespace onestory::testing
