// GetContext with the engagement state, over real gRPC against a real redis-server: facts in
// their reading order (verifications, promises, collected values, steps tried) and gone once
// expired, effort signals (contacts per window and channel, sentiment counts, ratio and streak,
// repeat contacts and channel switches over open cases, time since a case was opened), audiences
// (an agent's internal note or fact never reaches the bot or the customer, in GetContext, List
// and Watch; the requested number of visible events however many hidden ones are newer), and a
// bot chat that the phone agent sees when the customer calls.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/services/engagement/engagement_fixture.h"

namespace onestory::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAreArray;

class ContextEngagementTest : public EngagementFixture {
 protected:
  std::vector<std::string> FactNames(const v1::GetContextResponse& ctx) {
    std::vector<std::string> names;
    for (const auto& f : ctx.facts()) names.push_back(f.name());
    return names;
  }
};

// --- Facts -----------------------------------------------------------------------------------

TEST_F(ContextEngagementTest, FactsComeVerificationsFirstThenPromisesCollectedAndSteps) {
  std::string c = NewCustomer();
  RecordFactsOk(FactsReq(
      c, {StepTried("restart_router", "no change"), Collected("order_number", "1234"),
          PromiseFact("refund", "refund by Friday"), Verification("identity", "one_time_code")}));
  absl::SleepFor(absl::Milliseconds(10));
  RecordFactsOk(FactsReq(c, {Collected("address", "1 Main St"), StepTried("reset_password", "done"),
                             Verification("account_owner", "app_login")}));

  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_THAT(FactKeys(ctx.facts()),
              ElementsAre("FACT_TYPE_VERIFICATION:account_owner", "FACT_TYPE_VERIFICATION:identity",
                          "FACT_TYPE_PROMISE:refund", "FACT_TYPE_COLLECTED:address",
                          "FACT_TYPE_COLLECTED:order_number", "FACT_TYPE_STEP_TRIED:reset_password",
                          "FACT_TYPE_STEP_TRIED:restart_router"));
  const v1::Fact* refund = FindFact(ctx.facts(), v1::FACT_TYPE_PROMISE, "refund");
  ASSERT_NE(refund, nullptr);
  EXPECT_EQ(refund->value(), "refund by Friday");
  EXPECT_TRUE(refund->has_due_at());
  const v1::Fact* identity = FindFact(ctx.facts(), v1::FACT_TYPE_VERIFICATION, "identity");
  ASSERT_NE(identity, nullptr);
  EXPECT_TRUE(identity->has_expires_at());
  EXPECT_TRUE(SameActor(identity->recorded_by(), Bot("bot-1")));
  EXPECT_EQ(identity->channel(), v1::CHANNEL_CHATBOT);

  // Restated, order_number is the latest collected value.
  absl::SleepFor(absl::Milliseconds(10));
  RecordFactsOk(
      FactsReq(c, {Collected("order_number", "1234")}, Agent("agent-7"), v1::CHANNEL_VOICE));
  ctx = ContextOk(c);
  EXPECT_THAT(FactKeys(ctx.facts()),
              ElementsAre("FACT_TYPE_VERIFICATION:account_owner", "FACT_TYPE_VERIFICATION:identity",
                          "FACT_TYPE_PROMISE:refund", "FACT_TYPE_COLLECTED:order_number",
                          "FACT_TYPE_COLLECTED:address", "FACT_TYPE_STEP_TRIED:reset_password",
                          "FACT_TYPE_STEP_TRIED:restart_router"));
}

TEST_F(ContextEngagementTest, AnExpiredFactIsNeitherShownNorCounted) {
  std::string c = NewCustomer();
  v1::Fact hint = Collected("otp_hint", "last digits 42");
  *hint.mutable_expires_at() = FromNow(absl::Seconds(2));
  v1::Fact verified = Verification("identity", "one_time_code", absl::Seconds(2));
  v1::RecordFactsResponse short_lived =
      RecordFactsOk(FactsReq(c, {hint, verified, Collected("order_number", "1234")}));
  absl::Time expiry = absl::Now();
  for (const auto& f : short_lived.facts()) {
    if (f.has_expires_at()) expiry = std::max(expiry, ToTime(f.expires_at()));
  }
  EXPECT_EQ(ContextOk(c).facts_size(), 3);

  // 197 more: 200 current facts, the limit.
  for (int batch = 0; batch < 7; ++batch) {
    std::vector<v1::Fact> facts;
    for (int i = batch * 32; i < std::min(197, batch * 32 + 32); ++i) {
      facts.push_back(Collected(absl::StrCat("field_", i), "v"));
    }
    if (!facts.empty()) RecordFactsOk(FactsReq(c, facts));
  }
  v1::RecordFactsResponse refused;
  grpc::Status st = RecordFacts(FactsReq(c, {Collected("extra_1", "v")}), &refused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(st);
  ASSERT_LT(absl::Now(), expiry) << "too slow: the facts expired before the limit was checked";

  absl::SleepFor(expiry - absl::Now() + absl::Milliseconds(200));
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.facts_size(), 198);
  EXPECT_EQ(FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "otp_hint"), nullptr);
  EXPECT_EQ(FindFact(ctx.facts(), v1::FACT_TYPE_VERIFICATION, "identity"), nullptr);
  EXPECT_NE(FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "order_number"), nullptr);

  // The expired two no longer count against the limit.
  RecordFactsOk(FactsReq(c, {Collected("extra_1", "v"), Collected("extra_2", "v")}));
  EXPECT_EQ(ContextOk(c).facts_size(), 200);
}

// --- Signals ---------------------------------------------------------------------------------

TEST_F(ContextEngagementTest, ContactsAreCountedOncePerConversationPerWindow) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  v1::StartConversationRequest call = StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7"));
  *call.mutable_occurred_at() = FromNow(-absl::Hours(48));
  StartOk(call);
  v1::StartConversationRequest six = StartReq(c, "call-6d", v1::CHANNEL_VOICE, Agent("agent-7"));
  *six.mutable_occurred_at() = FromNow(-absl::Hours(24 * 6));
  StartOk(six);
  v1::StartConversationRequest eight = StartReq(c, "call-8d", v1::CHANNEL_VOICE, Agent("agent-7"));
  *eight.mutable_occurred_at() = FromNow(-absl::Hours(24 * 8));
  StartOk(eight);
  v1::StartConversationRequest mail = StartReq(c, "mail-1", v1::CHANNEL_EMAIL, Agent("agent-8"));
  *mail.mutable_occurred_at() = FromNow(-absl::Hours(24 * 10));
  StartOk(mail);
  v1::StartConversationRequest sms = StartReq(c, "sms-1", v1::CHANNEL_SMS, Agent("agent-9"));
  *sms.mutable_occurred_at() = FromNow(-absl::Hours(24 * 40));
  StartOk(sms);
  // A conversation first seen on appended events: one contact however many events.
  AppendOk(c, {Message("app-a", v1::CHANNEL_MOBILE_APP, std::nullopt, "app-1"),
               Message("app-b", v1::CHANNEL_MOBILE_APP, std::nullopt, "app-1")});
  AppendOk(c, {Message("app-c", v1::CHANNEL_MOBILE_APP, std::nullopt, "app-1")});
  // Events of a started conversation are not new contacts.
  AppendOk(c, {Message("chat-a", v1::CHANNEL_CHATBOT, std::nullopt, "chat-1")});
  // CONVERSATION_STARTED appended directly counts like any first event.
  v1::Event web;
  web.set_event_id("web-start");
  web.set_channel(v1::CHANNEL_WEB);
  web.set_kind(v1::EVENT_KIND_CONVERSATION_STARTED);
  web.set_conversation_id("web-1");
  *web.mutable_actor() = CustomerActor();
  AppendOk(c, {web});
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));  // a retry

  v1::EffortSignals s = ContextOk(c).signals();
  EXPECT_EQ(s.contacts_7d(), 5) << "chat-1, call-1, call-6d, app-1, web-1";
  EXPECT_EQ(s.contacts_30d(), 7) << "and call-8d, mail-1";
  EXPECT_EQ(s.distinct_channels_30d(), 5) << "chatbot, voice, mobile app, web, email";
}

TEST_F(ContextEngagementTest, SentimentCountsRatioAndStreak) {
  std::string c = NewCustomer();
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().positive_30d(), 0);
  EXPECT_EQ(ctx.signals().negative_30d(), 0);
  EXPECT_FALSE(ctx.signals().has_positive_to_negative());
  EXPECT_EQ(ctx.signals().negative_streak(), 0);

  v1::Event too_old = Message("old-40d", v1::CHANNEL_EMAIL, 0.5f);
  *too_old.mutable_occurred_at() = FromNow(-absl::Hours(24 * 40));
  v1::Event recent = Message("old-10d", v1::CHANNEL_EMAIL, 0.5f);
  *recent.mutable_occurred_at() = FromNow(-absl::Hours(24 * 10));
  AppendOk(c, {too_old, recent});
  ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().positive_30d(), 1) << "40 days ago is out of the window";
  EXPECT_FALSE(ctx.signals().has_positive_to_negative()) << "no negative yet";

  AppendOk(c, {Message("s1", v1::CHANNEL_WEB_CHAT, 0.25f)});  // positive (the threshold)
  AppendOk(c, {Message("s2", v1::CHANNEL_WEB_CHAT, 0.9f)});   // positive
  AppendOk(c, {Message("s3", v1::CHANNEL_WEB_CHAT, 0.24f)});  // neither
  AppendOk(c, {Message("s4", v1::CHANNEL_VOICE, -0.25f)});    // negative (the threshold)
  AppendOk(c, {Message("s5", v1::CHANNEL_VOICE)});            // no sentiment: changes nothing
  AppendOk(c, {Message("s6", v1::CHANNEL_VOICE, -0.7f)});     // negative
  ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().positive_30d(), 3);
  EXPECT_EQ(ctx.signals().negative_30d(), 2);
  ASSERT_TRUE(ctx.signals().has_positive_to_negative());
  EXPECT_DOUBLE_EQ(ctx.signals().positive_to_negative(), 1.5);
  EXPECT_EQ(ctx.signals().negative_streak(), 2);

  AppendOk(c, {Message("s7", v1::CHANNEL_SMS, 0.1f)});  // neutral: ends the streak
  EXPECT_EQ(ContextOk(c).signals().negative_streak(), 0);
  AppendOk(c, {Message("s8", v1::CHANNEL_SMS, -0.5f)});
  ctx = ContextOk(c);
  EXPECT_EQ(ctx.signals().negative_streak(), 1);
  EXPECT_EQ(ctx.signals().negative_30d(), 3);
  EXPECT_EQ(ctx.signals().positive_30d(), 3);
  EXPECT_DOUBLE_EQ(ctx.signals().positive_to_negative(), 1.0);
}

TEST_F(ContextEngagementTest, CaseSignalsCoverTheOpenCases) {
  std::string c = NewCustomer();
  v1::EffortSignals s = ContextOk(c).signals();
  EXPECT_FALSE(s.has_since_case_opened());
  EXPECT_EQ(s.repeat_contacts(), 0);
  EXPECT_EQ(s.channel_switches(), 0);

  v1::OpenCaseResponse first = OpenCaseOk(OpenReq(c, "case-1", "refund", v1::CHANNEL_WEB_CHAT));
  StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));  // repeat, and a switch
  absl::SleepFor(absl::Milliseconds(300));
  v1::OpenCaseResponse second =
      OpenCaseOk(OpenReq(c, "case-2", "broken screen", v1::CHANNEL_EMAIL));

  absl::Time before = absl::Now();
  s = ContextOk(c).signals();
  absl::Time after = absl::Now();
  ASSERT_TRUE(s.has_since_case_opened());
  absl::Duration since = ToDuration(s.since_case_opened());
  absl::Time opened = ToTime(first.case_().opened_at());
  // Since the oldest open case (case-1), not the newest.
  EXPECT_GE(since, before - opened - absl::Milliseconds(5));
  EXPECT_LE(since, after - opened + absl::Milliseconds(5));
  EXPECT_EQ(s.repeat_contacts(), 1);
  EXPECT_EQ(s.channel_switches(), 1);

  ResolveCaseOk(ResolveReq(c, "case-1"));
  s = ContextOk(c).signals();
  EXPECT_EQ(s.repeat_contacts(), 0) << "case-1 is no longer open";
  EXPECT_EQ(s.channel_switches(), 0);
  ASSERT_TRUE(s.has_since_case_opened());
  EXPECT_LE(ToDuration(s.since_case_opened()),
            absl::Now() - ToTime(second.case_().opened_at()) + absl::Milliseconds(5));
  ResolveCaseOk(ResolveReq(c, "case-2"));
  EXPECT_FALSE(ContextOk(c).signals().has_since_case_opened());
}

// --- Audiences -------------------------------------------------------------------------------

TEST_F(ContextEngagementTest, EachAudienceSeesOnlyWhatItMay) {
  std::string c = NewCustomer();
  v1::Event super_note = Note("n-super", v1::AUDIENCE_SUPERVISOR);
  super_note.set_body("supervisor-secret: coaching needed");
  v1::Event agent_note = Note("n-agent", v1::AUDIENCE_AGENT);
  agent_note.set_body("agent-secret: customer sounded drunk");
  v1::Event unset_note = Note("n-unset", v1::AUDIENCE_UNSPECIFIED);
  unset_note.set_body("agent-secret: internal by default");
  AppendOk(c, {Message("m-cust", v1::CHANNEL_WEB_CHAT), Note("n-bot", v1::AUDIENCE_BOT), agent_note,
               unset_note, super_note});
  auto fact = [](const std::string& name, v1::Audience a, const std::string& value) {
    v1::Fact f = Collected(name, value);
    f.set_visibility(a);
    return f;
  };
  RecordFactsOk(FactsReq(c,
                         {fact("f_customer", v1::AUDIENCE_CUSTOMER, "shared"),
                          fact("f_bot", v1::AUDIENCE_BOT, "for bots"),
                          fact("f_agent", v1::AUDIENCE_AGENT, "agent-secret-fact"),
                          fact("f_unset", v1::AUDIENCE_UNSPECIFIED, "agent-secret-default"),
                          fact("f_super", v1::AUDIENCE_SUPERVISOR, "supervisor-secret-fact")},
                         Agent("agent-7"), v1::CHANNEL_VOICE));

  struct Expect {
    v1::Audience audience;
    std::vector<std::string> events;  // newest first
    std::vector<std::string> facts;
  };
  std::vector<Expect> expected = {
      {v1::AUDIENCE_CUSTOMER, {"m-cust"}, {"f_customer"}},
      {v1::AUDIENCE_BOT, {"n-bot", "m-cust"}, {"f_customer", "f_bot"}},
      {v1::AUDIENCE_AGENT,
       {"n-unset", "n-agent", "n-bot", "m-cust"},
       {"f_customer", "f_bot", "f_agent", "f_unset"}},
      {v1::AUDIENCE_UNSPECIFIED,  // an unset reader is an agent
       {"n-unset", "n-agent", "n-bot", "m-cust"},
       {"f_customer", "f_bot", "f_agent", "f_unset"}},
      {v1::AUDIENCE_SUPERVISOR,
       {"n-super", "n-unset", "n-agent", "n-bot", "m-cust"},
       {"f_customer", "f_bot", "f_agent", "f_unset", "f_super"}},
  };
  for (const Expect& x : expected) {
    SCOPED_TRACE(v1::Audience_Name(x.audience));
    v1::GetContextResponse ctx = ContextOk(c, x.audience);
    std::vector<std::string> own;
    for (const auto& e : ctx.recent_events()) {
      if (absl::StartsWith(e.event_id(), "m-") || absl::StartsWith(e.event_id(), "n-")) {
        own.push_back(e.event_id());
      }
    }
    EXPECT_EQ(own, x.events);
    EXPECT_THAT(FactNames(ctx), UnorderedElementsAreArray(x.facts));

    std::vector<v1::Event> listed = Timeline(c, x.audience);
    std::vector<std::string> listed_own;
    for (auto it = listed.rbegin(); it != listed.rend(); ++it) {
      if (absl::StartsWith(it->event_id(), "m-") || absl::StartsWith(it->event_id(), "n-")) {
        listed_own.push_back(it->event_id());
      }
    }
    EXPECT_EQ(listed_own, x.events) << "List";

    // Nothing the audience may not see leaks through any event or fact text (the services'
    // own FACTS_RECORDED event included).
    if (x.audience == v1::AUDIENCE_CUSTOMER || x.audience == v1::AUDIENCE_BOT) {
      for (const auto& e : listed) {
        EXPECT_FALSE(absl::StrContains(e.summary(), "secret") ||
                     absl::StrContains(e.body(), "secret"))
            << e.DebugString();
        for (const auto& [k, v] : e.attributes()) {
          EXPECT_FALSE(absl::StrContains(v, "secret")) << e.DebugString();
        }
      }
      for (const auto& f : ctx.facts()) EXPECT_FALSE(absl::StrContains(f.value(), "secret"));
    }
  }

  // Watch too: a bot watching from the start skips what it may not see.
  v1::WatchRequest wreq;
  wreq.set_tenant(tenant());
  wreq.mutable_customer()->set_customer_id(c);
  wreq.set_from_start(true);
  wreq.set_audience(v1::AUDIENCE_BOT);
  auto wctx = Ctx(absl::Seconds(10));
  auto reader = server()->timeline()->Watch(wctx.get(), wreq);
  AppendOk(c, {Message("m-last", v1::CHANNEL_WEB_CHAT)});
  std::vector<std::string> watched;
  v1::WatchResponse msg;
  while (reader->Read(&msg)) {
    if (absl::StartsWith(msg.event().event_id(), "m-") ||
        absl::StartsWith(msg.event().event_id(), "n-")) {
      watched.push_back(msg.event().event_id());
    }
    EXPECT_FALSE(absl::StrContains(msg.event().body(), "secret")) << msg.event().DebugString();
    if (msg.event().event_id() == "m-last") break;
  }
  wctx->TryCancel();
  EXPECT_EQ(watched, (std::vector<std::string>{"m-cust", "n-bot", "m-last"}));
}

TEST_F(ContextEngagementTest, AHandoffTranscriptIsForAgentsUnlessMarkedOtherwise) {
  std::string c = NewCustomer();
  StartOk(StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  v1::HandoffRequest internal = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  internal.set_transcript("customer: my card number is 4111");
  v1::Fact for_bots = Collected("order_number", "1234");
  for_bots.set_visibility(v1::AUDIENCE_BOT);
  *internal.add_collected() = for_bots;
  *internal.add_collected() = Collected("card_last4", "4111");  // AGENT by default
  v1::HandoffResponse h = HandoffOk(internal);

  v1::GetContextResponse bot = ContextOk(c, v1::AUDIENCE_BOT);
  for (const auto& e : bot.recent_events()) {
    EXPECT_NE(e.event_id(), h.event().event_id()) << "the bot sees the agent-only transcript";
    EXPECT_FALSE(absl::StrContains(e.body(), "4111")) << e.DebugString();
  }
  EXPECT_THAT(FactNames(bot), ElementsAre("order_number"));
  v1::GetContextResponse agent = ContextOk(c, v1::AUDIENCE_AGENT);
  bool found = false;
  for (const auto& e : agent.recent_events()) {
    if (e.event_id() == h.event().event_id()) {
      found = true;
      EXPECT_EQ(e.body(), "customer: my card number is 4111");
    }
  }
  EXPECT_TRUE(found) << "the agent does not see the handoff";
  EXPECT_THAT(FactNames(agent), UnorderedElementsAreArray({"order_number", "card_last4"}));

  // Marked for bots, a transcript reaches the next bot.
  StartOk(StartReq(c, "chat-2", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  v1::HandoffRequest shared = HandoffReq(c, "chat-2", Bot("bot-1"), Bot("billing-bot"));
  shared.set_transcript("customer: billing question");
  shared.set_visibility(v1::AUDIENCE_BOT);
  v1::HandoffResponse h2 = HandoffOk(shared);
  std::vector<v1::Event> bot_view = Timeline(c, v1::AUDIENCE_BOT);
  std::vector<std::string> ids = EventIds(bot_view);
  EXPECT_THAT(ids, ::testing::Contains(h2.event().event_id()));
  EXPECT_THAT(ids, ::testing::Not(::testing::Contains(h.event().event_id())));
}

TEST_F(ContextEngagementTest, ServiceEventsCarryTheVisibilityAskedFor) {
  std::string c = NewCustomer();
  v1::StartConversationRequest start = StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  start.set_visibility(v1::AUDIENCE_BOT);
  std::string started = StartOk(start).event().event_id();
  v1::OpenCaseRequest open = OpenReq(c, "case-1", "refund", v1::CHANNEL_CHATBOT);
  open.set_visibility(v1::AUDIENCE_CUSTOMER);
  std::string opened = OpenCaseOk(open).event().event_id();
  v1::UpdateCaseRequest note = UpdateReq(c, "case-1");
  note.set_note("agent-secret: suspect fraud");  // visibility unset: AGENT
  std::string noted = UpdateCaseOk(note).event().event_id();
  v1::EndConversationRequest end = EndReq(c, "chat-1", Bot("bot-1"));
  end.set_visibility(v1::AUDIENCE_SUPERVISOR);
  std::string ended = EndOk(end).event().event_id();

  EXPECT_THAT(EventIds(Timeline(c, v1::AUDIENCE_CUSTOMER)), ElementsAre(opened));
  EXPECT_THAT(EventIds(Timeline(c, v1::AUDIENCE_BOT)), ElementsAre(started, opened));
  EXPECT_THAT(EventIds(Timeline(c, v1::AUDIENCE_AGENT)), ElementsAre(started, opened, noted));
  EXPECT_THAT(EventIds(Timeline(c, v1::AUDIENCE_SUPERVISOR)),
              ElementsAre(started, opened, noted, ended));

  // The agent's note does not reach the bot through the case either.
  v1::GetContextResponse bot = ContextOk(c, v1::AUDIENCE_BOT);
  ASSERT_EQ(bot.open_cases_size(), 1);
  EXPECT_FALSE(absl::StrContains(bot.open_cases(0).last_note(), "secret"))
      << "an AGENT note reached a BOT reader as the case's last_note";
  for (const auto& e : bot.recent_events()) {
    EXPECT_FALSE(absl::StrContains(e.summary(), "secret") || absl::StrContains(e.body(), "secret"))
        << e.DebugString();
  }
  v1::GetContextResponse agent = ContextOk(c, v1::AUDIENCE_AGENT);
  ASSERT_EQ(agent.open_cases_size(), 1);
  EXPECT_EQ(agent.open_cases(0).last_note(), "agent-secret: suspect fraud");
}

TEST_F(ContextEngagementTest, EveryEngagementRpcChecksTheTenant) {
  auto check = [](const char* rpc, const grpc::Status& st) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << rpc << ": " << Describe(st);
    EXPECT_THAT(st.error_message(), ::testing::HasSubstr("tenant")) << rpc;
  };
  std::string c = NewCustomer();
  const std::string bad = "no spaces allowed";
  v1::StartConversationRequest start = StartReq(c, "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  start.set_tenant(bad);
  v1::StartConversationResponse sresp;
  check("StartConversation", Start(start, &sresp));
  v1::HandoffRequest handoff = HandoffReq(c, "chat-1", Bot("bot-1"), Agent("agent-7"));
  handoff.set_tenant(bad);
  v1::HandoffResponse hresp;
  check("Handoff", Handoff(handoff, &hresp));
  v1::EndConversationRequest end = EndReq(c, "chat-1", Bot("bot-1"));
  end.set_tenant("");
  v1::EndConversationResponse eresp;
  check("EndConversation", End(end, &eresp));
  v1::RecordFactsRequest facts = FactsReq(c, {Collected("order_number", "1")});
  facts.set_tenant(bad);
  v1::RecordFactsResponse fresp;
  check("RecordFacts", RecordFacts(facts, &fresp));
  v1::OpenCaseRequest open = OpenReq(c, "case-1", "refund");
  open.set_tenant(std::string(65, 't'));
  v1::OpenCaseResponse oresp;
  check("OpenCase", OpenCase(open, &oresp));
  v1::UpdateCaseRequest update = UpdateReq(c, "case-1");
  update.set_note("n");
  update.set_tenant(bad);
  v1::UpdateCaseResponse uresp;
  check("UpdateCase", UpdateCase(update, &uresp));
  v1::ResolveCaseRequest resolve = ResolveReq(c, "case-1");
  resolve.set_tenant(bad);
  v1::ResolveCaseResponse rresp;
  check("ResolveCase", ResolveCase(resolve, &rresp));
  v1::GetCaseRequest get;
  get.set_tenant(bad);
  get.mutable_customer()->set_customer_id(c);
  get.set_case_id("case-1");
  v1::Case k;
  check("GetCase", server()->cases()->GetCase(Ctx().get(), get, &k));
  v1::SetJourneyRequest set;
  set.set_tenant(bad);
  set.add_stages("ordered");
  v1::Journey j;
  check("SetJourney", server()->cases()->SetJourney(Ctx().get(), set, &j));
  v1::GetJourneyRequest getj;
  getj.set_tenant(bad);
  check("GetJourney", server()->cases()->GetJourney(Ctx().get(), getj, &j));
  v1::GetJourneyStatsRequest stats;
  stats.set_tenant(bad);
  v1::GetJourneyStatsResponse stresp;
  check("GetJourneyStats", server()->cases()->GetJourneyStats(Ctx().get(), stats, &stresp));
  v1::ListAlertsRequest list;
  list.set_tenant(bad);
  v1::ListAlertsResponse lresp;
  check("ListAlerts", ListAlerts(list, &lresp));
  v1::AckAlertRequest ack;
  ack.set_tenant(bad);
  ack.set_alert_id("negative_streak:x:1-0");
  *ack.mutable_actor() = Agent("supervisor-1");
  v1::Alert alert;
  check("AckAlert", server()->alerts()->AckAlert(Ctx().get(), ack, &alert));
  v1::WatchAlertsRequest watch;
  watch.set_tenant(bad);
  auto wctx = Ctx();
  auto reader = server()->alerts()->WatchAlerts(wctx.get(), watch);
  while (reader->Read(&alert)) {
  }
  check("WatchAlerts", reader->Finish());
}

TEST_F(ContextEngagementTest, RecentEventsAreTheLatestVisibleOnes) {
  std::string c = NewCustomer();
  std::vector<v1::Event> visible;
  for (int i = 0; i < 5; ++i) visible.push_back(Message(absl::StrCat("m-", i)));
  AppendOk(c, visible);
  std::vector<v1::Event> hidden;
  for (int i = 0; i < 300; ++i) hidden.push_back(Note(absl::StrCat("n-", i), v1::AUDIENCE_AGENT));
  AppendOk(c, hidden);

  v1::GetContextResponse customer = ContextOk(c, v1::AUDIENCE_CUSTOMER, 5);
  EXPECT_THAT(EventIds(customer.recent_events()), ElementsAre("m-4", "m-3", "m-2", "m-1", "m-0"));
  EXPECT_THAT(EventIds(ContextOk(c, v1::AUDIENCE_BOT, 3).recent_events()),
              ElementsAre("m-4", "m-3", "m-2"));
  EXPECT_THAT(EventIds(ContextOk(c, v1::AUDIENCE_CUSTOMER, 0).recent_events()),
              ElementsAre("m-4", "m-3", "m-2", "m-1", "m-0"))
      << "the default of 20, of which 5 are visible";
  EXPECT_THAT(EventIds(ContextOk(c, v1::AUDIENCE_AGENT, 3).recent_events()),
              ElementsAre("n-299", "n-298", "n-297"));
  // An agent reads exactly the count asked for, and older events when supervisor-only ones
  // were among them.
  AppendOk(c, {Note("s-0", v1::AUDIENCE_SUPERVISOR), Note("s-1", v1::AUDIENCE_SUPERVISOR)});
  EXPECT_THAT(EventIds(ContextOk(c, v1::AUDIENCE_AGENT, 3).recent_events()),
              ElementsAre("n-299", "n-298", "n-297"));
  EXPECT_THAT(EventIds(ContextOk(c, v1::AUDIENCE_SUPERVISOR, 3).recent_events()),
              ElementsAre("s-1", "s-0", "n-299"));
  EXPECT_THAT(EventIds(Timeline(c, v1::AUDIENCE_CUSTOMER)),
              ElementsAre("m-0", "m-1", "m-2", "m-3", "m-4"));

  // Small pages, newest first: every visible event once, none hidden.
  v1::ListRequest req;
  req.set_tenant(tenant());
  req.mutable_customer()->set_customer_id(c);
  req.set_page_size(2);
  req.set_audience(v1::AUDIENCE_CUSTOMER);
  std::vector<std::string> paged;
  for (int page = 0; page < 50; ++page) {
    v1::ListResponse resp;
    grpc::Status st = server()->timeline()->List(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
    EXPECT_LE(resp.events_size(), 2);
    for (const auto& e : resp.events()) paged.push_back(e.event_id());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_THAT(paged, ElementsAre("m-4", "m-3", "m-2", "m-1", "m-0"));
}

// GetContext documents no limit on how far it looks for visible events (unlike List, whose
// pages may come back short): a customer's app asking for its 5 latest events gets 5 however
// many internal notes agents wrote since.
TEST_F(ContextEngagementTest, RecentEventsFindVisibleOnesBehindHiddenOnesUpToTheLimit) {
  std::string c = NewCustomer();
  std::vector<v1::Event> visible;
  for (int i = 0; i < 5; ++i) visible.push_back(Message(absl::StrCat("m-", i)));
  AppendOk(c, visible);
  auto hide = [&](int from, int n) {
    std::vector<v1::Event> hidden;
    for (int i = from; i < from + n; ++i) {
      hidden.push_back(Note(absl::StrCat("n-", i), v1::AUDIENCE_AGENT));
    }
    AppendOk(c, hidden);
  };
  for (int batch = 0; batch < 3; ++batch) hide(batch * 500, 500);
  // 1,500 newer events are hidden from the customer's app: still found (more reads follow).
  v1::GetContextResponse ctx = ContextOk(c, v1::AUDIENCE_CUSTOMER, 5);
  EXPECT_THAT(EventIds(ctx.recent_events()), ElementsAre("m-4", "m-3", "m-2", "m-1", "m-0"))
      << "1,500 hidden events are newer";
  EXPECT_EQ(ctx.total_events(), 1505);

  // Past 2,000 hidden ones, GetContext stops looking (documented in context.proto): the app
  // gets fewer events, never an agent's.
  hide(1500, 500);
  hide(2000, 500);
  ctx = ContextOk(c, v1::AUDIENCE_CUSTOMER, 5);
  EXPECT_THAT(EventIds(ctx.recent_events()), ::testing::IsEmpty());
  EXPECT_EQ(ctx.total_events(), 2505);
  ctx = ContextOk(c, v1::AUDIENCE_AGENT, 5);
  EXPECT_EQ(ctx.recent_events_size(), 5);
}

// --- Across channels -------------------------------------------------------------------------

TEST_F(ContextEngagementTest, ThePhoneAgentSeesWhatTheCustomerToldTheBot) {
  // The customer chats with the bot, giving a phone number it does not know yet.
  v1::StartConversationRequest chat = StartReq("", "chat-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  *chat.mutable_customer()->mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100");
  chat.set_create_if_missing(true);
  chat.set_summary("order 1234 not delivered");
  std::string c = StartOk(chat).customer_id();
  ASSERT_FALSE(c.empty());
  AppendOk(c, {Message("chat-msg", v1::CHANNEL_CHATBOT, -0.4f, "chat-1")});
  v1::Fact order = Collected("order_number", "1234");
  order.set_conversation_id("chat-1");
  RecordFactsOk(FactsReq(c, {Verification("identity", "one_time_code"), order,
                             StepTried("track_order", "stuck at depot")}));
  v1::OpenCaseRequest open = OpenReq(c, "case-1", "order 1234 not delivered", v1::CHANNEL_CHATBOT);
  *open.mutable_actor() = Bot("bot-1");
  open.set_conversation_id("chat-1");
  OpenCaseOk(open);
  v1::EndConversationRequest end = EndReq(c, "chat-1", Bot("bot-1"));
  end.set_outcome("escalated");
  EndOk(end);

  // Later the customer calls (later: last_activity goes by occurred_at, in ms); the agent knows
  // only the calling number, formatted differently.
  absl::SleepFor(absl::Milliseconds(5));
  v1::StartConversationRequest call = StartReq("", "call-1", v1::CHANNEL_VOICE, Agent("agent-7"));
  *call.mutable_customer()->mutable_identifier() =
      Id(v1::IDENTIFIER_TYPE_PHONE, "+1 (415) 555-0100");
  v1::StartConversationResponse called = StartOk(call);
  EXPECT_EQ(called.customer_id(), c);
  ASSERT_TRUE(called.has_repeat_contact());
  EXPECT_EQ(called.repeat_contact().message(), "contacting again about order 1234 not delivered");

  v1::GetContextRequest req;
  req.set_tenant(tenant());
  *req.mutable_customer()->mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, "+14155550100");
  req.set_audience(v1::AUDIENCE_AGENT);
  v1::GetContextResponse ctx;
  grpc::Status st = server()->context()->GetContext(Ctx().get(), req, &ctx);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(ctx.profile().customer_id(), c);
  ASSERT_TRUE(ctx.has_repeat_contact());
  EXPECT_EQ(ctx.repeat_contact().case_id(), "case-1");
  EXPECT_EQ(ctx.repeat_contact().conversation_id(), "call-1");
  EXPECT_EQ(ctx.repeat_contact().contacts(), 2);
  EXPECT_THAT(FactKeys(ctx.facts()),
              ElementsAre("FACT_TYPE_VERIFICATION:identity", "FACT_TYPE_COLLECTED:order_number",
                          "FACT_TYPE_STEP_TRIED:track_order"));
  const v1::Fact* told = FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "order_number");
  ASSERT_NE(told, nullptr);
  EXPECT_EQ(told->value(), "1234");
  EXPECT_TRUE(SameActor(told->recorded_by(), Bot("bot-1")));
  EXPECT_EQ(told->channel(), v1::CHANNEL_CHATBOT);
  EXPECT_EQ(told->conversation_id(), "chat-1");
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_EQ(ctx.open_cases(0).case_id(), "case-1");
  EXPECT_EQ(ctx.open_cases(0).channel_switches(), 1);
  EXPECT_EQ(ctx.open_cases(0).last_channel(), v1::CHANNEL_VOICE);
  std::set<std::string> open_ids;
  for (const auto& oc : ctx.open_conversations()) open_ids.insert(oc.conversation_id());
  EXPECT_EQ(open_ids, std::set<std::string>{"call-1"});
  std::set<std::string> recent = {};
  for (const auto& e : ctx.recent_events()) recent.insert(e.event_id());
  EXPECT_TRUE(recent.count("chat-msg")) << "the chat is in the phone agent's recent events";
  EXPECT_EQ(ctx.last_activity().channel(), v1::CHANNEL_VOICE);
  EXPECT_EQ(ctx.signals().contacts_7d(), 2);
  EXPECT_EQ(ctx.signals().distinct_channels_30d(), 2);
  EXPECT_EQ(ctx.signals().negative_30d(), 1);
  EXPECT_EQ(ctx.signals().repeat_contacts(), 1);
  EXPECT_EQ(ctx.signals().channel_switches(), 1);
}

}  // namespace
}  // namespace onestory::testing
