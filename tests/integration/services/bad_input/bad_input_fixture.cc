#include "tests/integration/services/bad_input/bad_input_fixture.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace onestory::testing::bad_input {

std::string Describe(const grpc::Status& st) {
  return absl::StrCat("code ", st.error_code(), ": ", st.error_message());
}

// Request builders -------------------------------------------------------------------------------

v1::CustomerRef RefId(const std::string& customer_id) {
  v1::CustomerRef ref;
  ref.set_customer_id(customer_id);
  return ref;
}

v1::CustomerRef RefIdent(v1::IdentifierType type, const std::string& value) {
  v1::CustomerRef ref;
  *ref.mutable_identifier() = Ident(type, value);
  return ref;
}

google::protobuf::Timestamp At(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

v1::Event ValidEvent(const std::string& event_id) {
  v1::Event e;
  e.set_event_id(event_id);
  e.set_channel(v1::CHANNEL_WEB_CHAT);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  e.set_summary("hello");
  return e;
}

v1::ResolveRequest ResolveOf(const std::string& tenant, v1::IdentifierType type,
                             const std::string& value, bool create) {
  v1::ResolveRequest r;
  r.set_tenant(tenant);
  *r.mutable_identifier() = Ident(type, value);
  r.set_create_if_missing(create);
  return r;
}

v1::LinkRequest LinkOf(const State& s, v1::IdentifierType type, const std::string& value) {
  v1::LinkRequest r;
  r.set_tenant(s.tenant);
  r.set_customer_id(s.customer);
  *r.mutable_identifier() = Ident(type, value);
  return r;
}

v1::UnlinkRequest UnlinkOf(const State& s, v1::IdentifierType type, const std::string& value) {
  v1::UnlinkRequest r;
  r.set_tenant(s.tenant);
  r.set_customer_id(s.customer);
  *r.mutable_identifier() = Ident(type, value);
  return r;
}

v1::GetProfileRequest ProfileOf(const State& s, v1::CustomerRef ref) {
  v1::GetProfileRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = std::move(ref);
  return r;
}

v1::UpdateProfileRequest UpdateOf(const State& s, const std::vector<std::string>& paths) {
  v1::UpdateProfileRequest r;
  r.set_tenant(s.tenant);
  r.set_customer_id(s.customer);
  for (const std::string& p : paths) r.mutable_update_mask()->add_paths(p);
  return r;
}

v1::AppendRequest AppendOf(const State& s, int count) {
  v1::AppendRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  for (int i = 0; i < count; ++i) *r.add_events() = ValidEvent(absl::StrCat("new-", i));
  return r;
}

v1::AppendRequest AppendWith(const State& s, const std::function<void(v1::Event&)>& spoil) {
  v1::AppendRequest r = AppendOf(s);
  spoil(*r.mutable_events(0));
  return r;
}

v1::ListRequest ListOf(const State& s) {
  v1::ListRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  return r;
}

v1::WatchRequest WatchOf(const State& s) {
  v1::WatchRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  return r;
}

v1::GetContextRequest ContextOf(const State& s) {
  v1::GetContextRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  return r;
}

v1::Actor ActorOf(v1::Actor::Type type, const std::string& id) {
  v1::Actor a;
  a.set_type(type);
  a.set_id(id);
  return a;
}

v1::MergeRequest MergeOf(const State& s) {
  v1::MergeRequest r;
  r.set_tenant(s.tenant);
  r.set_source_customer_id(s.customer);
  r.set_target_customer_id(s.other);
  r.set_reason("same person: verified by phone");
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  return r;
}

v1::MergeRequest MergeOf(const std::string& tenant, const std::string& source,
                         const std::string& target) {
  v1::MergeRequest r;
  r.set_tenant(tenant);
  r.set_source_customer_id(source);
  r.set_target_customer_id(target);
  r.set_reason("same person: verified by phone");
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  return r;
}

v1::UnmergeRequest UnmergeOf(const State& s, const std::string& merge_id) {
  v1::UnmergeRequest r;
  r.set_tenant(s.tenant);
  r.set_merge_id(merge_id);
  r.set_reason("two different people");
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  return r;
}

v1::GetMergeHistoryRequest HistoryOf(const State& s, const std::string& customer_id) {
  v1::GetMergeHistoryRequest r;
  r.set_tenant(s.tenant);
  r.set_customer_id(customer_id);
  return r;
}

v1::SuggestMergesRequest SuggestOf(const State& s) {
  v1::SuggestMergesRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  return r;
}

// Set-up steps for the merge cases (in `prepare`) and read-only look-ups (in `send`).

std::string MergeForSetup(Api& api, const std::string& tenant, const std::string& source,
                          const std::string& target) {
  v1::MergeResponse merged;
  grpc::Status st = api.Merge(MergeOf(tenant, source, target), &merged);
  EXPECT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(merged.merge().state(), v1::MergeRecord::STATE_MERGED);
  return merged.merge().merge_id();
}

void CreateCrmCustomer(Api& api, const std::string& tenant, const std::string& value) {
  v1::ResolveResponse resolved;
  grpc::Status st =
      api.Resolve(ResolveOf(tenant, v1::IDENTIFIER_TYPE_CRM_ID, value, true), &resolved);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_TRUE(resolved.created());
}

std::string CrmCustomer(Api& api, const std::string& tenant, const std::string& value) {
  v1::ResolveResponse resolved;
  grpc::Status st =
      api.Resolve(ResolveOf(tenant, v1::IDENTIFIER_TYPE_CRM_ID, value, false), &resolved);
  EXPECT_TRUE(st.ok()) << Describe(st);
  return resolved.customer_id();
}

void EraseForSetup(Api& api, const State& s, const std::string& customer_id) {
  v1::EraseCustomerRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(customer_id);
  r.set_reason("ticket 42");
  grpc::Status st = api.EraseCustomer(r);
  ASSERT_TRUE(st.ok()) << Describe(st);
}

std::string NewestMergeId(Api& api, const State& s, const std::string& customer_id) {
  v1::GetMergeHistoryResponse history;
  grpc::Status st = api.GetMergeHistory(HistoryOf(s, customer_id), &history);
  EXPECT_TRUE(st.ok()) << Describe(st);
  EXPECT_GT(history.merges_size(), 0);
  return history.merges_size() > 0 ? history.merges(0).merge_id() : "";
}

// Engagement requests: each is valid as built (BadInputTest.EngagementRequestsAsBuiltAreValid
// proves it) once the state it names was set up, and each case spoils one thing.

std::vector<std::string> JourneyStages() { return {"ordered", "shipped", "delivered"}; }

// A collected value, with nothing else to check.
v1::Fact CollectedFact(const std::string& name, const std::string& value) {
  v1::Fact f;
  f.set_type(v1::FACT_TYPE_COLLECTED);
  f.set_name(name);
  f.set_value(value);
  return f;
}

v1::StartConversationRequest StartOf(const State& s, const std::string& conversation_id) {
  v1::StartConversationRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  r.set_conversation_id(conversation_id);
  r.set_channel(v1::CHANNEL_CHATBOT);
  *r.mutable_served_by() = ActorOf(v1::Actor::TYPE_BOT, kBot);
  r.set_summary("where is my order");
  return r;
}

v1::HandoffRequest HandoffOf(const State& s) {
  v1::HandoffRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  r.set_conversation_id(kConversation);
  *r.mutable_from() = ActorOf(v1::Actor::TYPE_BOT, kBot);
  *r.mutable_to() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  r.set_to_channel(v1::CHANNEL_VOICE);
  r.set_reason("customer asked for a human");
  r.set_summary("order 1234 late; customer upset");
  r.set_transcript("customer: where is my order?\nbot: let me check");
  *r.add_collected() = CollectedFact("order_number", "1234");
  r.set_request_id("ho-1");
  return r;
}

v1::EndConversationRequest EndOf(const State& s) {
  v1::EndConversationRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  r.set_conversation_id(kConversation);
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  r.set_outcome("resolved");
  r.set_wrap_up_code("WRAP-1");
  return r;
}

v1::RecordFactsRequest FactsOf(const State& s, int count) {
  v1::RecordFactsRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_BOT, kBot);
  r.set_channel(v1::CHANNEL_CHATBOT);
  for (int i = 0; i < count; ++i) *r.add_facts() = CollectedFact(absl::StrCat("fact-", i), "v");
  r.set_request_id("rf-1");
  return r;
}

v1::OpenCaseRequest OpenCaseOf(const State& s, const std::string& case_id) {
  v1::OpenCaseRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  r.set_case_id(case_id);
  r.set_topic("order 1234 not delivered");
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  r.set_channel(v1::CHANNEL_VOICE);
  *r.mutable_owner() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  return r;
}

v1::UpdateCaseRequest UpdateCaseOf(const State& s) {
  v1::UpdateCaseRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  r.set_case_id(kCase);
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  r.set_channel(v1::CHANNEL_VOICE);
  r.set_note("called the courier");
  r.set_request_id("cu-1");
  return r;
}

v1::ResolveCaseRequest ResolveCaseOf(const State& s) {
  v1::ResolveCaseRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  r.set_case_id(kCase);
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
  r.set_channel(v1::CHANNEL_VOICE);
  r.set_resolution("refunded");
  return r;
}

v1::GetCaseRequest GetCaseOf(const State& s) {
  v1::GetCaseRequest r;
  r.set_tenant(s.tenant);
  *r.mutable_customer() = RefId(s.customer);
  r.set_case_id(kCase);
  return r;
}

v1::SetJourneyRequest JourneyOf(const State& s, const std::vector<std::string>& stages) {
  v1::SetJourneyRequest r;
  r.set_tenant(s.tenant);
  for (const std::string& stage : stages) r.add_stages(stage);
  return r;
}

v1::ListAlertsRequest ListAlertsOf(const State& s) {
  v1::ListAlertsRequest r;
  r.set_tenant(s.tenant);
  return r;
}

v1::AckAlertRequest AckOf(const State& s, const std::string& alert_id) {
  v1::AckAlertRequest r;
  r.set_tenant(s.tenant);
  r.set_alert_id(alert_id);
  *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "supervisor-1");
  return r;
}

v1::WatchAlertsRequest WatchAlertsOf(const State& s) {
  v1::WatchAlertsRequest r;
  r.set_tenant(s.tenant);
  return r;
}

// Set-up steps for the engagement cases (in `prepare`) and read-only look-ups (in `send`).

void StartForSetup(Api& api, const State& s, const std::string& conversation_id) {
  grpc::Status st = api.StartConversation(StartOf(s, conversation_id));
  ASSERT_TRUE(st.ok()) << Describe(st);
}

void EndedConversationForSetup(Api& api, const State& s) {
  ASSERT_NO_FATAL_FAILURE(StartForSetup(api, s, kConversation));
  grpc::Status st = api.EndConversation(EndOf(s));
  ASSERT_TRUE(st.ok()) << Describe(st);
}

void JourneyForSetup(Api& api, const State& s) {
  grpc::Status st = api.SetJourney(JourneyOf(s, JourneyStages()));
  ASSERT_TRUE(st.ok()) << Describe(st);
}

void OpenCaseForSetup(Api& api, const State& s, const std::string& case_id,
                      const std::string& stage) {
  v1::OpenCaseRequest r = OpenCaseOf(s, case_id);
  r.set_stage(stage);
  grpc::Status st = api.OpenCase(r);
  ASSERT_TRUE(st.ok()) << Describe(st);
}

void ResolvedCaseForSetup(Api& api, const State& s) {
  ASSERT_NO_FATAL_FAILURE(OpenCaseForSetup(api, s, kCase));
  grpc::Status st = api.ResolveCase(ResolveCaseOf(s));
  ASSERT_TRUE(st.ok()) << Describe(st);
}

void AlertsForSetup(Api& api, const State& s) {
  for (const std::string& customer : {s.customer, s.other}) {
    v1::AppendRequest r = AppendOf(s, 3);
    *r.mutable_customer() = RefId(customer);
    for (v1::Event& e : *r.mutable_events()) e.set_sentiment(-0.9f);
    grpc::Status st = api.Append(r);
    ASSERT_TRUE(st.ok()) << Describe(st);
  }
  // Alerts are raised once the appends' outboxes are applied (libs/outbox), right after they
  // answered.
  v1::ListAlertsResponse alerts;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  do {
    grpc::Status st = api.ListAlerts(ListAlertsOf(s), &alerts);
    ASSERT_TRUE(st.ok()) << Describe(st);
  } while (alerts.alerts_size() < 2 && absl::Now() < until);
  ASSERT_EQ(alerts.alerts_size(), 2);
}

v1::Alert NewestAlert(Api& api, const State& s) {
  v1::ListAlertsResponse alerts;
  grpc::Status st = api.ListAlerts(ListAlertsOf(s), &alerts);
  EXPECT_TRUE(st.ok()) << Describe(st);
  EXPECT_GT(alerts.alerts_size(), 0);
  return alerts.alerts_size() > 0 ? alerts.alerts(0) : v1::Alert();
}

std::string AlertsPageToken(Api& api, const State& s) {
  v1::ListAlertsRequest r = ListAlertsOf(s);
  r.set_page_size(1);
  v1::ListAlertsResponse page;
  grpc::Status st = api.ListAlerts(r, &page);
  EXPECT_TRUE(st.ok()) << Describe(st);
  EXPECT_FALSE(page.next_page_token().empty());
  return page.next_page_token();
}

void MakeState(Api& api, const std::string& tenant, State* s) {
  s->tenant = tenant;
  v1::ResolveResponse resolved;
  grpc::Status st =
      api.Resolve(ResolveOf(tenant, v1::IDENTIFIER_TYPE_PHONE, kCustomerPhone, true), &resolved);
  ASSERT_TRUE(st.ok()) << Describe(st);
  s->customer = resolved.customer_id();
  st = api.Resolve(ResolveOf(tenant, v1::IDENTIFIER_TYPE_EMAIL, kOtherEmail, true), &resolved);
  ASSERT_TRUE(st.ok()) << Describe(st);
  s->other = resolved.customer_id();

  v1::AppendRequest append;
  append.set_tenant(tenant);
  *append.mutable_customer() = RefId(s->customer);
  v1::Event* e = append.add_events();
  *e = ValidEvent("ev-1");
  e->set_conversation_id("chat-1");
  e = append.add_events();
  *e = ValidEvent("ev-2");
  e->set_channel(v1::CHANNEL_VOICE);
  e->set_kind(v1::EVENT_KIND_CALL_STARTED);
  e = append.add_events();
  *e = ValidEvent("ev-3");
  e->set_channel(v1::CHANNEL_EMAIL);
  e->set_kind(v1::EVENT_KIND_NOTE);
  e->mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  e->mutable_actor()->set_id("agent-7");
  v1::AppendResponse appended;
  st = api.Append(append, &appended);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(appended.results_size(), 3);
  s->cursor = appended.results(0).event().cursor();

  append.clear_events();
  *append.mutable_customer() = RefId(s->other);
  *append.add_events() = ValidEvent("ev-1");
  st = api.Append(append);
  ASSERT_TRUE(st.ok()) << Describe(st);

  v1::ListRequest list = ListOf(*s);
  list.set_page_size(1);
  v1::ListResponse page;
  st = api.List(list, &page);
  ASSERT_TRUE(st.ok()) << Describe(st);
  s->page_token = page.next_page_token();
  ASSERT_FALSE(s->page_token.empty());
}

std::string DescribeChanges(const std::map<std::string, std::string>& before,
                            const std::map<std::string, std::string>& after) {
  std::string out;
  for (const auto& [key, dump] : after) {
    auto it = before.find(key);
    if (it == before.end()) {
      absl::StrAppend(&out, "\n  added: ", key);
    } else if (it->second != dump) {
      absl::StrAppend(&out, "\n  changed: ", key);
    }
  }
  for (const auto& [key, dump] : before) {
    if (!after.contains(key)) absl::StrAppend(&out, "\n  removed: ", key);
  }
  return out;
}

void PrintTo(const BadInputCase& c, std::ostream* os) { *os << c.name; }

std::vector<BadInputCase> Concat(const std::vector<std::vector<BadInputCase>>& parts) {
  std::vector<BadInputCase> all;
  for (const std::vector<BadInputCase>& part : parts)
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

RedisForTest* ServicesTest::redis_ = nullptr;
ServerForTest* ServicesTest::server_ = nullptr;

}  // namespace onestory::testing::bad_input
