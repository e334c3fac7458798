// ConversationService over real gRPC against a real redis-server: starting a conversation (a
// contact, counted once; a retry changes nothing; a repeat contact about an open or recently
// resolved case, and none after the repeat window), handoffs (the transcript and the facts the
// bot collected travel with it; a chat that becomes a call; refusals that change nothing; retries
// by request_id), ending (twice is a duplicate; a CALL_ENDED event ends it too), and facts
// (restating supersedes, validation, retries, the per-customer limit). Every result is also
// read back through GetContext, GetCase or the timeline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/services/engagement/engagement_fixture.h"

namespace onestory::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ConversationServiceTest : public EngagementFixture {
 protected:
  const v1::OpenConversation* FindOpen(const v1::GetContextResponse& ctx, const std::string& id) {
    for (const auto& oc : ctx.open_conversations()) {
      if (oc.conversation_id() == id) return &oc;
    }
    return nullptr;
  }
};

// --- StartConversation -----------------------------------------------------------------------

TEST_F(ConversationServiceTest, StartIsOneContactAndARetryChangesNothing) {
  std::string c = NewCustomer();
  v1::StartConversationRequest req = StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  req.set_summary("where is my order");

  v1::StartConversationResponse first = StartOk(req);
  EXPECT_FALSE(first.already_started());
  EXPECT_EQ(first.customer_id(), c);
  EXPECT_EQ(first.conversation().conversation_id(), "chat-1");
  EXPECT_EQ(first.conversation().customer_id(), c);
  EXPECT_EQ(first.conversation().channel(), v1::CHANNEL_CHATBOT);
  EXPECT_TRUE(SameActor(first.conversation().served_by(), Bot("bot-1")));
  EXPECT_EQ(first.conversation().state(), v1::CONVERSATION_STATE_OPEN);
  EXPECT_EQ(first.conversation().handoffs(), 0);
  EXPECT_TRUE(first.conversation().has_started_at());
  EXPECT_FALSE(first.conversation().repeat_contact());
  EXPECT_FALSE(first.has_repeat_contact());  // no case: nothing to repeat
  EXPECT_EQ(first.event().kind(), v1::EVENT_KIND_CONVERSATION_STARTED);
  EXPECT_EQ(first.event().conversation_id(), "chat-1");
  EXPECT_EQ(first.event().customer_id(), c);
  EXPECT_FALSE(first.event().cursor().empty());

  auto before = TenantSnapshot();
  v1::StartConversationResponse retry = StartOk(req);
  EXPECT_TRUE(retry.already_started());
  EXPECT_EQ(retry.conversation().conversation_id(), "chat-1");
  EXPECT_EQ(ToMillis(retry.conversation().started_at()),
            ToMillis(first.conversation().started_at()));
  EXPECT_EQ(TenantSnapshot(), before) << "a retried StartConversation wrote something";

  std::vector<v1::Event> events = Timeline(c);
  ASSERT_EQ(CountKind(events, v1::EVENT_KIND_CONVERSATION_STARTED), 1);
  for (const auto& e : events) {
    if (e.kind() != v1::EVENT_KIND_CONVERSATION_STARTED) continue;
    EXPECT_EQ(e.event_id(), first.event().event_id());
    EXPECT_EQ(e.conversation_id(), "chat-1");
    EXPECT_EQ(e.channel(), v1::CHANNEL_CHATBOT);
  }

  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().contacts_7d(), 1);
  EXPECT_EQ(ctx.signals().contacts_30d(), 1);
  EXPECT_EQ(ctx.signals().distinct_channels_30d(), 1);
  EXPECT_FALSE(ctx.has_repeat_contact());
  const v1::OpenConversation* open = FindOpen(ctx, "chat-1");
  ASSERT_NE(open, nullptr);
  EXPECT_TRUE(SameActor(open->served_by(), Bot("bot-1")));
  EXPECT_EQ(open->handoffs(), 0);
  EXPECT_EQ(open->channel(), v1::CHANNEL_CHATBOT);
}

TEST_F(ConversationServiceTest, StartByIdentifierCreatesTheCustomerOnlyWhenAsked) {
  v1::StartConversationRequest req = StartReq("", "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  *req.mutable_customer()->mutable_identifier() = Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "sess-42");
  v1::StartConversationResponse resp;
  grpc::Status st = Start(req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_TRUE(TenantSnapshot().empty()) << "a refused StartConversation created keys";

  req.set_create_if_missing(true);
  resp = StartOk(req);
  ASSERT_FALSE(resp.customer_id().empty());
  EXPECT_EQ(resp.conversation().customer_id(), resp.customer_id());
  v1::GetContextResponse ctx = ContextOk(resp.customer_id());
  EXPECT_EQ(ctx.profile().customer_id(), resp.customer_id());
  EXPECT_EQ(ctx.signals().contacts_7d(), 1);
  EXPECT_NE(FindOpen(ctx, "chat-1"), nullptr);
}

TEST_F(ConversationServiceTest, StartRefusesBadRequestsAndChangesNothing) {
  std::string c = NewCustomer();
  auto before = TenantSnapshot();
  v1::StartConversationResponse resp;

  v1::StartConversationRequest no_channel =
      StartReq(c, "chat-1", v1::CHANNEL_UNSPECIFIED, Bot("bot-1"));
  grpc::Status st = Start(no_channel, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("channel"));

  v1::StartConversationRequest no_actor = StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, {});
  st = Start(no_actor, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("served_by"));

  v1::StartConversationRequest bad_id = StartReq(c, "has space", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  st = Start(bad_id, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("conversation_id"));

  v1::StartConversationRequest long_id =
      StartReq(c, std::string(129, 'x'), v1::CHANNEL_CHATBOT, Bot("bot-1"));
  st = Start(long_id, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("conversation_id"));

  v1::StartConversationRequest long_summary =
      StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  long_summary.set_summary(std::string(1025, 's'));
  st = Start(long_summary, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("summary"));

  v1::StartConversationRequest unknown_case =
      StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  unknown_case.set_case_id("no-such-case");
  st = Start(unknown_case, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);

  v1::StartConversationRequest unknown_customer =
      StartReq("cus_nobody", "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  st = Start(unknown_customer, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);

  EXPECT_EQ(TenantSnapshot(), before) << "a refused StartConversation wrote something";
  EXPECT_EQ(ContextOk(c).signals().contacts_30d(), 0);
}

TEST_F(ConversationServiceTest, AContactAboutAnOpenCaseIsARepeatContact) {
  std::string c = NewCustomer();
  v1::StartConversationResponse chat =
      StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  EXPECT_FALSE(chat.has_repeat_contact());
  // The bot opens a case in the chat: the chat is the case's first contact.
  v1::OpenCaseRequest open = OpenReq(c, "case-1", "order 1234 not delivered", v1::CHANNEL_CHATBOT);
  *open.mutable_actor() = Bot("bot-1");
  open.set_conversation_id("chat-1");
  v1::OpenCaseResponse opened = OpenCaseOk(open);
  EXPECT_EQ(opened.case_().contacts(), 1);
  EXPECT_EQ(opened.case_().repeat_contacts(), 0);
  v1::GetContextResponse during_chat = ContextOk(c);
  const v1::OpenConversation* chat_open = FindOpen(during_chat, "chat-1");
  ASSERT_NE(chat_open, nullptr);
  EXPECT_EQ(chat_open->case_id(), "case-1") << "the chat the case was opened in is about it";
  EXPECT_FALSE(during_chat.has_repeat_contact()) << "the first contact is no repeat";
  EndOk(EndReq(c, "chat-1", Bot("bot-1")));

  // The customer calls: "contacting again about order 1234 not delivered".
  v1::StartConversationResponse call =
      StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));
  ASSERT_TRUE(call.has_repeat_contact());
  EXPECT_EQ(call.repeat_contact().case_id(), "case-1");
  EXPECT_EQ(call.repeat_contact().topic(), "order 1234 not delivered");
  EXPECT_EQ(call.repeat_contact().message(), "contacting again about order 1234 not delivered");
  EXPECT_EQ(call.repeat_contact().contacts(), 2);
  EXPECT_TRUE(call.repeat_contact().case_open());
  EXPECT_EQ(call.repeat_contact().conversation_id(), "call-1");
  EXPECT_TRUE(call.conversation().repeat_contact());
  EXPECT_EQ(call.conversation().case_id(), "case-1");

  v1::Case kase = GetCaseOk(c, "case-1");
  EXPECT_EQ(kase.contacts(), 2);
  EXPECT_EQ(kase.repeat_contacts(), 1);
  EXPECT_EQ(kase.channel_switches(), 1);  // chat, then voice
  EXPECT_EQ(kase.last_channel(), v1::CHANNEL_VOICE);

  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_TRUE(ctx.has_repeat_contact());
  EXPECT_EQ(ctx.repeat_contact().case_id(), "case-1");
  EXPECT_EQ(ctx.repeat_contact().message(), "contacting again about order 1234 not delivered");
  EXPECT_EQ(ctx.repeat_contact().conversation_id(), "call-1");
  EXPECT_TRUE(ctx.repeat_contact().case_open());
  EXPECT_EQ(ctx.signals().contacts_7d(), 2);
  EXPECT_EQ(ctx.signals().distinct_channels_30d(), 2);
  EXPECT_EQ(ctx.signals().repeat_contacts(), 1);
  EXPECT_EQ(ctx.signals().channel_switches(), 1);
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_EQ(ctx.open_cases(0).case_id(), "case-1");
  EXPECT_EQ(ctx.open_cases(0).contacts(), 2);
}

TEST_F(ConversationServiceTest, AContactSoonAfterTheCaseWasResolvedIsARepeatContact) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "router keeps rebooting"));  // the first contact
  ResolveCaseOk(ResolveReq(c, "case-1"));

  v1::StartConversationResponse call =
      StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));
  ASSERT_TRUE(call.has_repeat_contact());
  EXPECT_EQ(call.repeat_contact().case_id(), "case-1");
  EXPECT_FALSE(call.repeat_contact().case_open());
  EXPECT_EQ(call.repeat_contact().contacts(), 2);
  EXPECT_EQ(call.repeat_contact().message(), "contacting again about router keeps rebooting");
  EXPECT_TRUE(call.conversation().repeat_contact());

  v1::Case kase = GetCaseOk(c, "case-1");
  EXPECT_EQ(kase.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_EQ(kase.contacts(), 2);
  EXPECT_EQ(kase.repeat_contacts(), 1);
  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_TRUE(ctx.has_repeat_contact());
  EXPECT_EQ(ctx.repeat_contact().case_id(), "case-1");
  EXPECT_FALSE(ctx.repeat_contact().case_open());
  EXPECT_EQ(ctx.open_cases_size(), 0);
}

TEST_F(ConversationServiceTest, NoRepeatContactOnceTheRepeatWindowHasPassed) {
  constexpr absl::Duration kWindow = absl::Milliseconds(400);
  ServerForTest short_window(*redis(), [&](service::ServerOptions* o) {
    Configure(o);
    o->engagement_policy.repeat_window = kWindow;
  });
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "router keeps rebooting"));
  v1::StartConversationResponse while_open =
      StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")), &short_window);
  ASSERT_TRUE(while_open.has_repeat_contact());  // the window only starts at the resolve
  EXPECT_TRUE(while_open.repeat_contact().case_open());
  EndOk(EndReq(c, "call-1", Agent("agent-7")));
  v1::ResolveCaseResponse resolved = ResolveCaseOk(ResolveReq(c, "case-1"));

  absl::Time past_window =
      ToTime(resolved.case_().resolved_at()) + kWindow + absl::Milliseconds(200);
  absl::SleepFor(past_window - absl::Now());

  v1::GetContextResponse ctx = ContextOk(c, v1::AUDIENCE_AGENT, 0, &short_window);
  EXPECT_FALSE(ctx.has_repeat_contact()) << ctx.repeat_contact().DebugString();
  v1::StartConversationResponse later =
      StartOk(StartReq(c, "call-2", v1::CHANNEL_VOICE, Agent("agent-7")), &short_window);
  EXPECT_FALSE(later.has_repeat_contact()) << later.repeat_contact().DebugString();
  EXPECT_FALSE(later.conversation().repeat_contact());
  EXPECT_TRUE(later.conversation().case_id().empty());

  v1::Case kase = GetCaseOk(c, "case-1");
  EXPECT_EQ(kase.contacts(), 2);
  EXPECT_EQ(kase.repeat_contacts(), 1);
  ctx = ContextOk(c, v1::AUDIENCE_AGENT, 0, &short_window);
  EXPECT_FALSE(ctx.has_repeat_contact());
  EXPECT_EQ(ctx.signals().contacts_7d(), 2);  // still contacts, just not about the case
}

TEST_F(ConversationServiceTest, AContactIsAboutTheCaseItNamesElseTheOpenCaseUpdatedLast) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));
  OpenCaseOk(OpenReq(c, "case-2", "broken screen"));
  absl::SleepFor(absl::Milliseconds(5));
  v1::UpdateCaseRequest touch = UpdateReq(c, "case-1");
  touch.set_note("waiting for the warehouse");
  UpdateCaseOk(touch);  // case-1 is now the open case updated last

  v1::StartConversationResponse unnamed =
      StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));
  EXPECT_EQ(unnamed.conversation().case_id(), "case-1");
  EXPECT_EQ(unnamed.repeat_contact().case_id(), "case-1");
  EXPECT_EQ(unnamed.repeat_contact().topic(), "refund");

  v1::StartConversationRequest named = StartReq(c, "call-2", v1::CHANNEL_VOICE, Agent("agent-7"));
  named.set_case_id("case-2");
  v1::StartConversationResponse about_2 = StartOk(named);
  EXPECT_EQ(about_2.conversation().case_id(), "case-2");
  EXPECT_EQ(about_2.repeat_contact().case_id(), "case-2");
  EXPECT_EQ(about_2.repeat_contact().message(), "contacting again about broken screen");

  // A conversation first seen on an appended event, naming its case, is a contact about it.
  v1::Event sms = Message("sms-1", v1::CHANNEL_SMS, std::nullopt, "sms-conv-1");
  sms.set_case_id("case-2");
  AppendOk(c, {sms});

  v1::Case one = GetCaseOk(c, "case-1");
  v1::Case two = GetCaseOk(c, "case-2");
  EXPECT_EQ(one.contacts(), 2);
  EXPECT_EQ(one.repeat_contacts(), 1);
  EXPECT_EQ(two.contacts(), 3);
  EXPECT_EQ(two.repeat_contacts(), 2);
  EXPECT_EQ(two.last_channel(), v1::CHANNEL_SMS);
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().contacts_7d(), 3);
  EXPECT_EQ(ctx.signals().repeat_contacts(), 3);
  ASSERT_TRUE(ctx.has_repeat_contact());
  EXPECT_EQ(ctx.repeat_contact().case_id(), "case-2");
  EXPECT_EQ(ctx.repeat_contact().conversation_id(), "sms-conv-1");
}

TEST_F(ConversationServiceTest, StartingAConversationAboutAResolvedCaseIsRefused) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));
  ResolveCaseOk(ResolveReq(c, "case-1"));
  auto before = TenantSnapshot();
  v1::StartConversationRequest req = StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7"));
  req.set_case_id("case-1");
  v1::StartConversationResponse resp;
  grpc::Status st = Start(req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before);
}

TEST_F(ConversationServiceTest, EmptyIdsAreGenerated) {
  std::string c = NewCustomer();
  v1::StartConversationResponse a = StartOk(StartReq(c, "", v1::CHANNEL_WEB_CHAT, Agent("a-1")));
  v1::StartConversationResponse b = StartOk(StartReq(c, "", v1::CHANNEL_WEB_CHAT, Agent("a-1")));
  ASSERT_FALSE(a.conversation().conversation_id().empty());
  ASSERT_FALSE(b.conversation().conversation_id().empty());
  EXPECT_NE(a.conversation().conversation_id(), b.conversation().conversation_id());
  EXPECT_FALSE(b.already_started());
  v1::OpenCaseResponse k = OpenCaseOk(OpenReq(c, "", "refund"));
  ASSERT_FALSE(k.case_().case_id().empty());
  EXPECT_EQ(GetCaseOk(c, k.case_().case_id()).topic(), "refund");
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().contacts_7d(), 2);
  EXPECT_EQ(ctx.open_conversations_size(), 2);
  // The generated ids work like given ones.
  v1::EndConversationResponse ended =
      EndOk(EndReq(c, a.conversation().conversation_id(), Agent("a-1")));
  EXPECT_EQ(ended.conversation().state(), v1::CONVERSATION_STATE_ENDED);
}

TEST_F(ConversationServiceTest, RecordFactsCreatesTheCustomerOnlyWhenAsked) {
  v1::RecordFactsRequest req = FactsReq("", {Collected("order_number", "1234")});
  *req.mutable_customer()->mutable_identifier() = Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "sess-7");
  v1::RecordFactsResponse resp;
  grpc::Status st = RecordFacts(req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_TRUE(TenantSnapshot().empty());
  req.set_create_if_missing(true);
  resp = RecordFactsOk(req);
  ASSERT_FALSE(resp.customer_id().empty());
  v1::GetContextResponse ctx = ContextOk(resp.customer_id());
  ASSERT_EQ(ctx.facts_size(), 1);
  EXPECT_EQ(ctx.facts(0).value(), "1234");
}

TEST_F(ConversationServiceTest, AMergedCustomerIsFollowedToItsTarget) {
  std::string target = NewCustomer("14155550100");
  std::string source = NewCustomer("14155550101");
  v1::MergeRequest mreq;
  mreq.set_tenant(tenant());
  mreq.set_source_customer_id(source);
  mreq.set_target_customer_id(target);
  mreq.set_reason("same person");
  *mreq.mutable_actor() = Agent("agent-1");
  v1::MergeResponse mresp;
  grpc::Status st = server()->identity()->Merge(Ctx().get(), mreq, &mresp);
  ASSERT_TRUE(st.ok()) << Describe(st);

  // Everything sent through the source's id or number lands on the target.
  v1::StartConversationResponse started =
      StartOk(StartReq(source, "chat-1", v1::CHANNEL_WEB_CHAT, Agent("agent-7")));
  EXPECT_EQ(started.customer_id(), target);
  EXPECT_EQ(started.conversation().customer_id(), target);
  v1::RecordFactsRequest facts = FactsReq("", {Collected("order_number", "1234")});
  *facts.mutable_customer()->mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, "14155550101");
  EXPECT_EQ(RecordFactsOk(facts).customer_id(), target);
  v1::OpenCaseResponse opened = OpenCaseOk(OpenReq(source, "case-1", "refund"));
  EXPECT_EQ(opened.case_().customer_id(), target);
  HandoffOk(HandoffReq(source, "chat-1", Agent("agent-7"), Agent("agent-8")));
  EndOk(EndReq(source, "chat-1", Agent("agent-8")));

  v1::GetContextResponse ctx = ContextOk(target);
  EXPECT_EQ(ctx.signals().contacts_7d(), 1);
  ASSERT_EQ(ctx.facts_size(), 1);
  EXPECT_EQ(ctx.facts(0).value(), "1234");
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_EQ(ctx.open_cases(0).case_id(), "case-1");
  EXPECT_EQ(GetCaseOk(source, "case-1").customer_id(), target);
  std::vector<v1::Event> events = Timeline(target);
  EXPECT_EQ(CountKind(events, v1::EVENT_KIND_CONVERSATION_STARTED), 1);
  EXPECT_EQ(CountKind(events, v1::EVENT_KIND_HANDOFF), 1);
  EXPECT_EQ(CountKind(events, v1::EVENT_KIND_CONVERSATION_ENDED), 1);
  EXPECT_EQ(CountKind(events, v1::EVENT_KIND_FACTS_RECORDED), 1);
  EXPECT_EQ(CountKind(events, v1::EVENT_KIND_CASE_OPENED), 1);
}

TEST_F(ConversationServiceTest, ConcurrentRetriesStartOneConversationAndOneHandoffWins) {
  std::string c = NewCustomer();
  constexpr int kThreads = 8;
  std::atomic<int> fresh{0}, retried{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      v1::StartConversationResponse resp;
      grpc::Status st = Start(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")), &resp);
      if (!st.ok()) {
        ++failed;
      } else if (resp.already_started()) {
        ++retried;
      } else {
        ++fresh;
      }
    });
  }
  for (auto& t : threads) t.join();
  threads.clear();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_EQ(retried.load(), kThreads - 1);
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_CONVERSATION_STARTED), 1);
  EXPECT_EQ(ContextOk(c).signals().contacts_7d(), 1);

  // Eight agents grab the chat from the bot at once: one gets it.
  std::atomic<int> won{0}, refused{0}, other{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      v1::HandoffRequest req =
          HandoffReq(c, "chat-1", Bot("bot-1"), Agent(absl::StrCat("agent-", i)));
      req.set_request_id(absl::StrCat("grab-", i));
      v1::HandoffResponse resp;
      grpc::Status st = Handoff(req, &resp);
      if (st.ok()) {
        ++won;
      } else if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        ++refused;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_HANDOFF), 1);
  v1::GetContextResponse ctx = ContextOk(c);
  const v1::OpenConversation* oc = FindOpen(ctx, "chat-1");
  ASSERT_NE(oc, nullptr);
  EXPECT_EQ(oc->handoffs(), 1);
  EXPECT_EQ(oc->served_by().type(), v1::Actor::TYPE_AGENT);
}

TEST_F(ConversationServiceTest, IdsAndTextsWithAwkwardCharactersRoundTrip) {
  std::string c = NewCustomer();
  const std::string conv = "conv\\\"1\":{x}|y[]/%";  // printable ASCII, no spaces
  const std::string kase = "case|7:{\\\"q\"}";
  const std::string topic = "Bestellung 1234 \"nicht\" geliefert \\ 📦 — été";
  v1::OpenCaseRequest open = OpenReq(c, kase, topic);
  EXPECT_EQ(OpenCaseOk(open).case_().topic(), topic);
  v1::StartConversationResponse started =
      StartOk(StartReq(c, conv, v1::CHANNEL_WEB_CHAT, Agent("agent-7")));
  EXPECT_EQ(started.conversation().conversation_id(), conv);
  EXPECT_EQ(started.repeat_contact().case_id(), kase);
  EXPECT_EQ(started.repeat_contact().message(), "contacting again about " + topic);
  v1::Fact fact = Collected("device.model-x", "Fritz!Box \"7590\" \\ ü 📶 {}[]");
  fact.set_conversation_id(conv);
  fact.set_case_id(kase);
  RecordFactsOk(FactsReq(c, {fact}));
  HandoffOk(HandoffReq(c, conv, Agent("agent-7"), Agent("agent-8")));

  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.open_conversations_size(), 1);
  EXPECT_EQ(ctx.open_conversations(0).conversation_id(), conv);
  EXPECT_EQ(ctx.open_conversations(0).case_id(), kase);
  ASSERT_EQ(ctx.facts_size(), 1);
  EXPECT_EQ(ctx.facts(0).value(), fact.value());
  EXPECT_EQ(ctx.facts(0).conversation_id(), conv);
  EXPECT_EQ(ctx.facts(0).case_id(), kase);
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_EQ(ctx.open_cases(0).case_id(), kase);
  EXPECT_EQ(ctx.open_cases(0).topic(), topic);
  EXPECT_EQ(ctx.repeat_contact().message(), "contacting again about " + topic);
  v1::EndConversationResponse ended = EndOk(EndReq(c, conv, Agent("agent-8")));
  EXPECT_EQ(ended.conversation().conversation_id(), conv);
  EXPECT_EQ(ended.conversation().handoffs(), 1);
  EXPECT_EQ(ResolveCaseOk(ResolveReq(c, kase)).case_().case_id(), kase);
}

// --- Handoff ---------------------------------------------------------------------------------

TEST_F(ConversationServiceTest, ABotHandsOffToAnAgentWithTheTranscriptAndWhatItCollected) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  const std::string transcript =
      "customer: where is my order 1234?\nbot: it left the depot on Monday\n"
      "customer: I want a human";
  v1::HandoffRequest req = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  req.set_summary("order 1234 late, wants a refund");
  req.set_transcript(transcript);
  req.set_request_id("handoff-1");
  *req.add_collected() = Collected("order_number", "1234");
  *req.add_collected() = StepTried("track_order", "stuck at depot");

  v1::HandoffResponse resp = HandoffOk(req);
  EXPECT_FALSE(resp.duplicate());
  EXPECT_EQ(resp.customer_id(), c);
  EXPECT_TRUE(SameActor(resp.conversation().served_by(), Agent("agent-7")));
  EXPECT_EQ(resp.conversation().handoffs(), 1);
  EXPECT_EQ(resp.conversation().channel(), v1::CHANNEL_CHATBOT);
  EXPECT_EQ(resp.conversation().state(), v1::CONVERSATION_STATE_OPEN);
  EXPECT_EQ(resp.event().kind(), v1::EVENT_KIND_HANDOFF);
  EXPECT_EQ(resp.event().body(), transcript);
  EXPECT_THAT(resp.event().summary(), HasSubstr("order 1234 late, wants a refund"));
  EXPECT_EQ(resp.event().conversation_id(), "chat-1");

  std::vector<v1::Event> events = Timeline(c, v1::AUDIENCE_AGENT);
  ASSERT_EQ(CountKind(events, v1::EVENT_KIND_HANDOFF), 1);
  for (const auto& e : events) {
    if (e.kind() == v1::EVENT_KIND_HANDOFF) {
      EXPECT_EQ(e.body(), transcript);
      EXPECT_EQ(e.event_id(), resp.event().event_id());
    }
  }

  v1::GetContextResponse ctx = ContextOk(c, v1::AUDIENCE_AGENT);
  const v1::Fact* order = FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "order_number");
  ASSERT_NE(order, nullptr) << ctx.DebugString();
  EXPECT_EQ(order->value(), "1234");
  EXPECT_TRUE(SameActor(order->recorded_by(), Bot("bot-1")));
  EXPECT_EQ(order->channel(), v1::CHANNEL_CHATBOT);
  EXPECT_EQ(order->conversation_id(), "chat-1");
  EXPECT_EQ(order->times_stated(), 1);
  const v1::Fact* step = FindFact(ctx.facts(), v1::FACT_TYPE_STEP_TRIED, "track_order");
  ASSERT_NE(step, nullptr);
  EXPECT_EQ(step->value(), "stuck at depot");
  const v1::OpenConversation* open = FindOpen(ctx, "chat-1");
  ASSERT_NE(open, nullptr);
  EXPECT_TRUE(SameActor(open->served_by(), Agent("agent-7")));
  EXPECT_EQ(open->handoffs(), 1);
}

TEST_F(ConversationServiceTest, AChatHandedOffToAPhoneCallContinuesOnVoice) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  v1::OpenCaseRequest open = OpenReq(c, "case-1", "internet down", v1::CHANNEL_CHATBOT);
  open.set_conversation_id("chat-1");
  OpenCaseOk(open);

  v1::HandoffRequest req = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  req.set_to_channel(v1::CHANNEL_VOICE);
  v1::HandoffResponse resp = HandoffOk(req);
  EXPECT_EQ(resp.conversation().channel(), v1::CHANNEL_VOICE);
  EXPECT_EQ(resp.conversation().case_id(), "case-1");

  v1::Case kase = GetCaseOk(c, "case-1");
  EXPECT_EQ(kase.channel_switches(), 1);
  EXPECT_EQ(kase.last_channel(), v1::CHANNEL_VOICE);
  EXPECT_EQ(kase.contacts(), 1);  // a handoff is not a new contact
  EXPECT_EQ(kase.repeat_contacts(), 0);
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().channel_switches(), 1);
  EXPECT_EQ(ctx.signals().contacts_7d(), 1);
  const v1::OpenConversation* oc = FindOpen(ctx, "chat-1");
  ASSERT_NE(oc, nullptr);
  EXPECT_TRUE(SameActor(oc->served_by(), Agent("agent-7")));

  // The conversation's record says voice from now on.
  v1::EndConversationResponse ended = EndOk(EndReq(c, "chat-1", Agent("agent-7")));
  EXPECT_EQ(ended.conversation().channel(), v1::CHANNEL_VOICE);
  EXPECT_EQ(ended.conversation().handoffs(), 1);
}

TEST_F(ConversationServiceTest, AHandoffFromSomeoneWhoDoesNotServeItIsRefused) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  auto before = TenantSnapshot();
  v1::HandoffResponse resp;

  v1::HandoffRequest wrong_from = HandoffReq(c, "chat-1", Bot("bot-2"), Agent("agent-7"));
  *wrong_from.add_collected() = Collected("order_number", "1234");
  grpc::Status st = Handoff(wrong_from, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);

  v1::HandoffRequest unknown = HandoffReq(c, "chat-9", Bot("bot-1"), Agent("agent-7"));
  st = Handoff(unknown, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);

  v1::HandoffRequest no_reason = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  no_reason.clear_reason();
  st = Handoff(no_reason, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("reason"));

  v1::HandoffRequest huge = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  huge.set_transcript(std::string(64 * 1024 + 1, 't'));
  st = Handoff(huge, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("transcript"));

  v1::HandoffRequest too_many = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  for (int i = 0; i < 33; ++i) *too_many.add_collected() = Collected(absl::StrCat("f", i), "v");
  st = Handoff(too_many, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("collected"));

  v1::HandoffRequest bad_fact = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  *bad_fact.add_collected() = Collected("order_number", "1234");
  *bad_fact.add_collected() = MakeFact(v1::FACT_TYPE_VERIFICATION, "identity", "otp");
  st = Handoff(bad_fact, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("collected[1]"));
  EXPECT_THAT(st.error_message(), HasSubstr("expires_at"));

  v1::HandoffRequest unknown_case = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  v1::Fact about_nothing = Collected("order_number", "1234");
  about_nothing.set_case_id("no-such-case");
  *unknown_case.add_collected() = about_nothing;
  st = Handoff(unknown_case, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);

  v1::HandoffRequest no_to = HandoffReq(c, "chat-1", Bot("bot-1"), {});
  st = Handoff(no_to, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);

  EXPECT_EQ(TenantSnapshot(), before) << "a refused Handoff wrote something";
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.facts_size(), 0);
  const v1::OpenConversation* oc = FindOpen(ctx, "chat-1");
  ASSERT_NE(oc, nullptr);
  EXPECT_TRUE(SameActor(oc->served_by(), Bot("bot-1")));
  EXPECT_EQ(oc->handoffs(), 0);
}

TEST_F(ConversationServiceTest, AnEndedConversationCannotBeHandedOff) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  EndOk(EndReq(c, "chat-1", Bot("bot-1")));
  auto before = TenantSnapshot();

  v1::HandoffRequest req = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  req.set_transcript("too late");
  *req.add_collected() = Collected("order_number", "1234");
  v1::HandoffResponse resp;
  grpc::Status st = Handoff(req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);

  EXPECT_EQ(TenantSnapshot(), before) << "a refused Handoff wrote something";
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_HANDOFF), 0);
  EXPECT_EQ(ContextOk(c).facts_size(), 0);
}

TEST_F(ConversationServiceTest, ARetriedHandoffIsADuplicate) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  v1::HandoffRequest req = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  req.set_request_id("handoff-1");
  req.set_transcript("customer: help");
  *req.add_collected() = Collected("order_number", "1234");
  v1::HandoffResponse first = HandoffOk(req);
  ASSERT_FALSE(first.duplicate());

  // The bot did not hear back and sends it again (from is no longer who serves it: the retry
  // must still be recognised by its request_id).
  auto before = TenantSnapshot();
  v1::HandoffResponse retry = HandoffOk(req);
  EXPECT_TRUE(retry.duplicate());
  EXPECT_EQ(retry.event().event_id(), first.event().event_id());
  EXPECT_EQ(retry.conversation().handoffs(), 1);
  EXPECT_TRUE(SameActor(retry.conversation().served_by(), Agent("agent-7")));
  EXPECT_EQ(TenantSnapshot(), before) << "a retried Handoff wrote something";

  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_HANDOFF), 1);
  v1::GetContextResponse ctx = ContextOk(c);
  const v1::OpenConversation* oc = FindOpen(ctx, "chat-1");
  ASSERT_NE(oc, nullptr);
  EXPECT_EQ(oc->handoffs(), 1);
  const v1::Fact* order = FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "order_number");
  ASSERT_NE(order, nullptr);
  EXPECT_EQ(order->times_stated(), 1);
}

// --- EndConversation -------------------------------------------------------------------------

TEST_F(ConversationServiceTest, EndingTwiceIsADuplicate) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));
  v1::EndConversationRequest req = EndReq(c, "call-1", Agent("agent-7"));
  req.set_outcome("callback scheduled");
  req.set_wrap_up_code("CB-1");
  v1::EndConversationResponse first = EndOk(req);
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(first.conversation().state(), v1::CONVERSATION_STATE_ENDED);
  EXPECT_EQ(first.conversation().outcome(), "callback scheduled");
  EXPECT_EQ(first.conversation().wrap_up_code(), "CB-1");
  EXPECT_TRUE(first.conversation().has_ended_at());
  EXPECT_EQ(first.event().kind(), v1::EVENT_KIND_CONVERSATION_ENDED);
  EXPECT_EQ(first.event().conversation_id(), "call-1");
  EXPECT_EQ(FindOpen(ContextOk(c), "call-1"), nullptr);

  auto before = TenantSnapshot();
  req.set_outcome("something else");
  v1::EndConversationResponse again = EndOk(req);
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.conversation().state(), v1::CONVERSATION_STATE_ENDED);
  EXPECT_EQ(again.conversation().outcome(), "callback scheduled");
  EXPECT_EQ(ToMillis(again.conversation().ended_at()), ToMillis(first.conversation().ended_at()));
  EXPECT_EQ(TenantSnapshot(), before) << "a second EndConversation wrote something";
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_CONVERSATION_ENDED), 1);

  // The id of an ended conversation cannot start a new one.
  v1::StartConversationResponse resp;
  grpc::Status st = Start(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before);

  v1::EndConversationResponse unknown;
  st = End(EndReq(c, "call-9", Agent("agent-7")), &unknown);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  st = End(EndReq(c, "call-1", {}), &unknown);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  v1::EndConversationRequest long_outcome = EndReq(c, "call-1", Agent("agent-7"));
  long_outcome.set_outcome(std::string(257, 'o'));
  st = End(long_outcome, &unknown);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("outcome"));
}

TEST_F(ConversationServiceTest, AnAppendedCallEndedOrConversationEndedEventEndsIt) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_WEB_CHAT, Agent("agent-8")));
  v1::Event hangup;
  hangup.set_event_id("hangup-1");
  hangup.set_channel(v1::CHANNEL_VOICE);
  hangup.set_kind(v1::EVENT_KIND_CALL_ENDED);
  hangup.set_conversation_id("call-1");
  *hangup.mutable_actor() = SystemActor();
  v1::Event closed = hangup;
  closed.set_event_id("closed-1");
  closed.set_channel(v1::CHANNEL_WEB_CHAT);
  closed.set_kind(v1::EVENT_KIND_CONVERSATION_ENDED);
  closed.set_conversation_id("chat-1");
  AppendOk(c, {hangup, closed});

  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(FindOpen(ctx, "call-1"), nullptr);
  EXPECT_EQ(FindOpen(ctx, "chat-1"), nullptr);

  auto before = TenantSnapshot();
  v1::HandoffResponse hresp;
  grpc::Status st = Handoff(HandoffReq(c, "call-1", Agent("agent-7"), Agent("agent-9")), &hresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  st = Handoff(HandoffReq(c, "chat-1", Agent("agent-8"), Agent("agent-9")), &hresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before);

  v1::EndConversationResponse ended = EndOk(EndReq(c, "call-1", Agent("agent-7")));
  EXPECT_TRUE(ended.duplicate());
  EXPECT_EQ(ended.conversation().state(), v1::CONVERSATION_STATE_ENDED);
  EXPECT_EQ(TenantSnapshot(), before);
}

TEST_F(ConversationServiceTest, ALateEventDoesNotReopenAnEndedConversation) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_WEB_CHAT, Agent("agent-7")));
  EndOk(EndReq(c, "chat-1", Agent("agent-7")));
  // The survey answer arrives after the chat ended, tagged with its conversation.
  v1::Event survey = Message("survey-1", v1::CHANNEL_WEB_CHAT, 0.8f, "chat-1");
  survey.set_kind(v1::EVENT_KIND_SURVEY);
  AppendOk(c, {survey});

  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(FindOpen(ctx, "chat-1"), nullptr)
      << "an ended conversation is listed as open: " << ctx.DebugString();
  EXPECT_EQ(ctx.signals().contacts_7d(), 1) << "the late event is no new contact";
  v1::HandoffResponse hresp;
  grpc::Status st = Handoff(HandoffReq(c, "chat-1", Agent("agent-7"), Agent("agent-8")), &hresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  v1::EndConversationResponse again = EndOk(EndReq(c, "chat-1", Agent("agent-7")));
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.conversation().state(), v1::CONVERSATION_STATE_ENDED);
}

// --- RecordFacts -----------------------------------------------------------------------------

TEST_F(ConversationServiceTest, RestatingAFactSupersedesIt) {
  std::string c = NewCustomer();
  v1::RecordFactsResponse first = RecordFactsOk(
      FactsReq(c, {Collected("order_number", "1234")}, Bot("bot-1"), v1::CHANNEL_CHATBOT));
  ASSERT_EQ(first.facts_size(), 1);
  EXPECT_EQ(first.facts(0).times_stated(), 1);
  EXPECT_TRUE(first.facts(0).previous_value().empty());
  EXPECT_TRUE(SameActor(first.facts(0).recorded_by(), Bot("bot-1")));
  EXPECT_EQ(first.facts(0).channel(), v1::CHANNEL_CHATBOT);
  EXPECT_EQ(first.event().kind(), v1::EVENT_KIND_FACTS_RECORDED);
  absl::SleepFor(absl::Milliseconds(5));  // recorded_at moves on

  v1::RecordFactsResponse second = RecordFactsOk(
      FactsReq(c, {Collected("order_number", "1243")}, Agent("agent-7"), v1::CHANNEL_VOICE));
  ASSERT_EQ(second.facts_size(), 1);
  const v1::Fact& f = second.facts(0);
  EXPECT_EQ(f.value(), "1243");
  EXPECT_EQ(f.times_stated(), 2);
  EXPECT_EQ(f.previous_value(), "1234");
  EXPECT_TRUE(SameActor(f.recorded_by(), Agent("agent-7")));
  EXPECT_EQ(f.channel(), v1::CHANNEL_VOICE);
  EXPECT_EQ(ToMillis(f.first_recorded_at()), ToMillis(first.facts(0).recorded_at()));
  EXPECT_GT(ToMillis(f.recorded_at()), ToMillis(f.first_recorded_at()));

  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.facts_size(), 1) << "a restated fact is listed once";
  EXPECT_EQ(ctx.facts(0).name(), "order_number");
  EXPECT_EQ(ctx.facts(0).value(), "1243");
  EXPECT_EQ(ctx.facts(0).times_stated(), 2);
  EXPECT_EQ(ctx.facts(0).previous_value(), "1234");
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_FACTS_RECORDED), 2);

  // The same name under another type is another fact.
  RecordFactsOk(FactsReq(c, {StepTried("order_number", "looked it up")}));
  EXPECT_EQ(ContextOk(c).facts_size(), 2);
}

TEST_F(ConversationServiceTest, BadFactsAreRefusedAndChangeNothing) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));
  auto before = TenantSnapshot();
  struct Bad {
    std::string what;
    v1::Fact fact;
    grpc::StatusCode code;
    std::vector<std::string> mentions;
  };
  v1::Fact unknown_type = Collected("order_number", "1");
  unknown_type.set_type(static_cast<v1::FactType>(99));
  v1::Fact unspecified = Collected("order_number", "1");
  unspecified.set_type(v1::FACT_TYPE_UNSPECIFIED);
  v1::Fact verification_forever = MakeFact(v1::FACT_TYPE_VERIFICATION, "identity", "otp");
  v1::Fact promise_undated = MakeFact(v1::FACT_TYPE_PROMISE, "refund", "refund by Friday");
  v1::Fact promise_past = PromiseFact("refund", "refund by Friday", -absl::Minutes(1));
  v1::Fact expired = Collected("address", "1 Main St");
  *expired.mutable_expires_at() = FromNow(-absl::Minutes(1));
  v1::Fact bad_name = Collected("Order Number", "1");
  v1::Fact long_value = Collected("address", std::string(1025, 'v'));
  v1::Fact long_name = Collected(std::string(65, 'n'), "1");
  v1::Fact unknown_case = Collected("order_number", "1");
  unknown_case.set_case_id("no-such-case");
  std::vector<Bad> cases = {
      {"unknown type", unknown_type, grpc::StatusCode::INVALID_ARGUMENT, {"facts[1]", "type"}},
      {"unspecified type", unspecified, grpc::StatusCode::INVALID_ARGUMENT, {"facts[1]", "type"}},
      {"verification without expires_at",
       verification_forever,
       grpc::StatusCode::INVALID_ARGUMENT,
       {"facts[1]", "expires_at"}},
      {"promise without due_at",
       promise_undated,
       grpc::StatusCode::INVALID_ARGUMENT,
       {"facts[1]", "due_at"}},
      {"promise due in the past",
       promise_past,
       grpc::StatusCode::INVALID_ARGUMENT,
       {"facts[1]", "due_at"}},
      {"expires_at in the past",
       expired,
       grpc::StatusCode::INVALID_ARGUMENT,
       {"facts[1]", "expires_at"}},
      {"bad name", bad_name, grpc::StatusCode::INVALID_ARGUMENT, {"facts[1]", "name"}},
      {"long name", long_name, grpc::StatusCode::INVALID_ARGUMENT, {"facts[1]", "name"}},
      {"long value", long_value, grpc::StatusCode::INVALID_ARGUMENT, {"facts[1]", "value"}},
      {"unknown case", unknown_case, grpc::StatusCode::NOT_FOUND, {}},
  };
  for (const Bad& bad : cases) {
    SCOPED_TRACE(bad.what);
    // A good fact first: the whole request is refused, not just the bad fact.
    v1::RecordFactsRequest req = FactsReq(c, {StepTried("restart_router", "no change"), bad.fact});
    v1::RecordFactsResponse resp;
    grpc::Status st = RecordFacts(req, &resp);
    EXPECT_EQ(st.error_code(), bad.code) << Describe(st);
    for (const auto& m : bad.mentions) EXPECT_THAT(st.error_message(), HasSubstr(m));
  }

  v1::RecordFactsResponse resp;
  grpc::Status st = RecordFacts(FactsReq(c, {}), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "no facts: " << Describe(st);
  std::vector<v1::Fact> thirty_three;
  for (int i = 0; i < 33; ++i) thirty_three.push_back(Collected(absl::StrCat("f", i), "v"));
  st = RecordFacts(FactsReq(c, thirty_three), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "33 facts: " << Describe(st);
  st = RecordFacts(FactsReq(c, {Collected("order_number", "1"), Collected("order_number", "2")}),
                   &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << "the same fact twice: " << Describe(st);
  st = RecordFacts(FactsReq(c, {Collected("order_number", "1")}, {}), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "no actor: " << Describe(st);
  st = RecordFacts(
      FactsReq(c, {Collected("order_number", "1")}, Bot("bot-1"), v1::CHANNEL_UNSPECIFIED), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "no channel: " << Describe(st);
  st = RecordFacts(FactsReq("cus_nobody", {Collected("order_number", "1")}), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);

  EXPECT_EQ(TenantSnapshot(), before) << "a refused RecordFacts wrote something";
  EXPECT_EQ(ContextOk(c).facts_size(), 0);

  // The case exists: a fact may belong to it.
  v1::Fact about_case = Collected("order_number", "1234");
  about_case.set_case_id("case-1");
  v1::RecordFactsResponse ok = RecordFactsOk(FactsReq(c, {about_case}));
  ASSERT_EQ(ok.facts_size(), 1);
  EXPECT_EQ(ok.facts(0).case_id(), "case-1");
  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.facts_size(), 1);
  EXPECT_EQ(ctx.facts(0).case_id(), "case-1");
}

TEST_F(ConversationServiceTest, ARetriedRecordFactsIsADuplicate) {
  std::string c = NewCustomer();
  v1::RecordFactsRequest req =
      FactsReq(c, {Collected("order_number", "1234"), StepTried("restart_router", "no change")});
  req.set_request_id("facts-1");
  v1::RecordFactsResponse first = RecordFactsOk(req);
  EXPECT_FALSE(first.duplicate());
  ASSERT_EQ(first.facts_size(), 2);
  EXPECT_EQ(first.facts(0).name(), "order_number");  // request order
  EXPECT_EQ(first.facts(1).name(), "restart_router");

  auto before = TenantSnapshot();
  v1::RecordFactsResponse retry = RecordFactsOk(req);
  EXPECT_TRUE(retry.duplicate());
  EXPECT_EQ(retry.event().event_id(), first.event().event_id());
  ASSERT_EQ(retry.facts_size(), 2);
  EXPECT_EQ(retry.facts(0).times_stated(), 1);
  EXPECT_EQ(TenantSnapshot(), before) << "a retried RecordFacts wrote something";

  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_FACTS_RECORDED), 1);
  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.facts_size(), 2);
  for (const auto& f : ctx.facts()) EXPECT_EQ(f.times_stated(), 1) << f.name();
}

TEST_F(ConversationServiceTest, AtMost200CurrentFactsPerCustomer) {
  std::string c = NewCustomer();
  for (int batch = 0; batch < 7; ++batch) {  // 32 * 6 + 8 = 200
    std::vector<v1::Fact> facts;
    for (int i = 0; i < (batch < 6 ? 32 : 8); ++i) {
      facts.push_back(Collected(absl::StrCat("field_", batch * 32 + i), "v"));
    }
    RecordFactsOk(FactsReq(c, facts));
  }
  ASSERT_EQ(ContextOk(c).facts_size(), 200);

  auto before = TenantSnapshot();
  v1::RecordFactsResponse resp;
  grpc::Status st = RecordFacts(FactsReq(c, {Collected("one_too_many", "v")}), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before);

  // Restating a fact it holds adds none.
  v1::RecordFactsResponse restated = RecordFactsOk(FactsReq(c, {Collected("field_7", "w")}));
  ASSERT_EQ(restated.facts_size(), 1);
  EXPECT_EQ(restated.facts(0).times_stated(), 2);
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.facts_size(), 200);
  EXPECT_EQ(FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "one_too_many"), nullptr);
}

}  // namespace
}  // namespace onestory::testing
