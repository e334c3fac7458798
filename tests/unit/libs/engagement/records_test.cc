#include "libs/engagement/records.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/time_util.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

constexpr int64_t kNowMs = 1700000000000;  // 2023-11-14T22:13:20Z

MATCHER_P(InvalidArgumentStartingWith, prefix, "") {
  *result_listener << "status is " << arg;
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(arg.message(), absl::string_view(prefix));
}

v1::Fact Collected(const std::string& name, const std::string& value) {
  v1::Fact f;
  f.set_type(v1::FACT_TYPE_COLLECTED);
  f.set_name(name);
  f.set_value(value);
  return f;
}

TEST(RecordsTest, ParsesACaseAsTheScriptsStoreIt) {
  // As kOpen and kUpdate write it (cjson: numbers as plain digits, an empty list as {}).
  absl::StatusOr<Record> r = ParseRecord(
      R"({"tp":"order 1234 not delivered","sg":"shipped","s":"o","ot":2,"oi":"ana",)"
      R"("op":1700000000000,"se":1700000001000,"up":1700000002000,"rs":0,"rn":"",)"
      R"("pt":"refund by Friday","pb":1700300000000,"pm":1700000002000,"mt":2,"mi":"ana",)"
      R"("nc":3,"rc":2,"sw":1,"lc":3,"rct":[1700000000000],"ohn":1,"ln":"called back","lv":3,)"
      R"("oh":[{"ft":0,"fi":"","tt":2,"ti":"ana","r":"first owner","bt":3,"bi":"helpbot",)"
      R"("at":1700000000000}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  v1::Case c = CaseFromRecord("case-1", "cus_1", *r);
  EXPECT_EQ(c.case_id(), "case-1");
  EXPECT_EQ(c.customer_id(), "cus_1");
  EXPECT_EQ(c.topic(), "order 1234 not delivered");
  EXPECT_EQ(c.stage(), "shipped");
  EXPECT_EQ(c.state(), v1::CASE_STATE_OPEN);
  EXPECT_EQ(c.owner().type(), v1::Actor::TYPE_AGENT);
  EXPECT_EQ(c.owner().id(), "ana");
  EXPECT_EQ(ToMillis(c.opened_at()), 1700000000000);
  EXPECT_EQ(ToMillis(c.stage_entered_at()), 1700000001000);
  EXPECT_FALSE(c.has_resolved_at());
  EXPECT_EQ(c.promise().text(), "refund by Friday");
  EXPECT_EQ(ToMillis(c.promise().promised_by()), 1700300000000);
  EXPECT_EQ(c.promise().made_by().id(), "ana");
  EXPECT_EQ(c.contacts(), 3);
  EXPECT_EQ(c.repeat_contacts(), 2);
  EXPECT_EQ(c.channel_switches(), 1);
  EXPECT_EQ(c.last_channel(), v1::CHANNEL_VOICE);
  ASSERT_EQ(c.owner_history_size(), 1);
  EXPECT_FALSE(c.owner_history(0).has_from());
  EXPECT_EQ(c.owner_history(0).to().id(), "ana");
  EXPECT_EQ(c.owner_history(0).by().type(), v1::Actor::TYPE_BOT);
  EXPECT_EQ(c.last_note(), "called back");
  EXPECT_EQ(c.last_note_visibility(), v1::AUDIENCE_AGENT);
}

TEST(RecordsTest, AnEmptyOwnerHistoryStoredAsAnObjectIsNoHistory) {
  absl::StatusOr<Record> r =
      ParseRecord(R"({"tp":"t","sg":"","s":"r","ot":0,"oi":"","op":1,"rs":5,"oh":{},"pb":0})");
  ASSERT_TRUE(r.ok());
  v1::Case c = CaseFromRecord("c", "cus", *r);
  EXPECT_EQ(c.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_FALSE(c.has_owner());
  EXPECT_FALSE(c.has_promise());
  EXPECT_EQ(c.owner_history_size(), 0);
}

TEST(RecordsTest, ParsesAFactWithItsProvenance) {
  absl::StatusOr<Record> r =
      ParseRecord(R"({"t":1,"n":"identity","v":"one_time_code","ex":1700000600000,"du":0,"ca":"",)"
                  R"("cv":"chat-1","vi":2,"rt":3,"ri":"helpbot","ch":2,"ra":1700000000000,)"
                  R"("fa":1699990000000,"ts":2,"pv":"app_login"})");
  ASSERT_TRUE(r.ok());
  v1::Fact f = FactFromRecord(*r);
  EXPECT_EQ(f.type(), v1::FACT_TYPE_VERIFICATION);
  EXPECT_EQ(f.name(), "identity");
  EXPECT_EQ(ToMillis(f.expires_at()), 1700000600000);
  EXPECT_FALSE(f.has_due_at());
  EXPECT_EQ(f.conversation_id(), "chat-1");
  EXPECT_EQ(f.visibility(), v1::AUDIENCE_BOT);
  EXPECT_EQ(f.recorded_by().id(), "helpbot");
  EXPECT_EQ(f.channel(), v1::CHANNEL_CHATBOT);
  EXPECT_EQ(ToMillis(f.first_recorded_at()), 1699990000000);
  EXPECT_EQ(f.times_stated(), 2);
  EXPECT_EQ(f.previous_value(), "app_login");
}

// A damaged record: members of the wrong type, or numbers no int64 holds, read as absent.
TEST(RecordsTest, MembersOfAnotherTypeOrOutOfRangeReadAsAbsent) {
  absl::StatusOr<Record> r = ParseRecord(
      R"({"ch":"2","bt":true,"bi":7,"s":1,"ca":{},"st":1e300,"en":-1e300,"h":9.3e18,"rp":"yes"})");
  ASSERT_TRUE(r.ok()) << r.status();
  v1::Conversation c = ConversationFromRecord("conv", "cus", *r);
  EXPECT_EQ(c.channel(), v1::CHANNEL_UNSPECIFIED);
  EXPECT_FALSE(c.has_served_by());
  EXPECT_EQ(c.state(), v1::CONVERSATION_STATE_OPEN);
  EXPECT_EQ(c.case_id(), "");
  EXPECT_EQ(ToMillis(c.started_at()), 0);
  EXPECT_FALSE(c.has_ended_at());
  EXPECT_EQ(c.handoffs(), 0);
  EXPECT_FALSE(c.repeat_contact());
}

TEST(RecordsTest, RepeatContactSaysWhatItIsAbout) {
  absl::StatusOr<Record> r = ParseRecord(
      R"({"ca":"case-1","tp":"order 1234 not delivered","n":3,"o":true,"cv":"call-2","at":5})");
  ASSERT_TRUE(r.ok());
  v1::RepeatContact rc = RepeatFromRecord(*r);
  EXPECT_EQ(rc.message(), "contacting again about order 1234 not delivered");
  EXPECT_EQ(rc.contacts(), 3);
  EXPECT_TRUE(rc.case_open());
  EXPECT_EQ(rc.conversation_id(), "call-2");
}

TEST(RecordsTest, AMalformedRecordIsInternal) {
  EXPECT_EQ(ParseRecord("not json").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ParseRecord("[1,2]").status().code(), absl::StatusCode::kInternal);
}

TEST(RecordsTest, FactsAreShownVerificationsFirstThenPromisesCollectedSteps) {
  EXPECT_LT(FactRank(v1::FACT_TYPE_VERIFICATION), FactRank(v1::FACT_TYPE_PROMISE));
  EXPECT_LT(FactRank(v1::FACT_TYPE_PROMISE), FactRank(v1::FACT_TYPE_COLLECTED));
  EXPECT_LT(FactRank(v1::FACT_TYPE_COLLECTED), FactRank(v1::FACT_TYPE_STEP_TRIED));
}

TEST(RecordsTest, AudiencesAreOrdered) {
  using timeline::VisibleTo;
  // An agent's internal note (AGENT, or unset) never reaches the bot or the customer's app.
  for (v1::Audience note : {v1::AUDIENCE_AGENT, v1::AUDIENCE_UNSPECIFIED}) {
    EXPECT_FALSE(VisibleTo(note, v1::AUDIENCE_CUSTOMER));
    EXPECT_FALSE(VisibleTo(note, v1::AUDIENCE_BOT));
    EXPECT_TRUE(VisibleTo(note, v1::AUDIENCE_AGENT));
    EXPECT_TRUE(VisibleTo(note, v1::AUDIENCE_UNSPECIFIED));
    EXPECT_TRUE(VisibleTo(note, v1::AUDIENCE_SUPERVISOR));
  }
  EXPECT_TRUE(VisibleTo(v1::AUDIENCE_CUSTOMER, v1::AUDIENCE_CUSTOMER));
  EXPECT_TRUE(VisibleTo(v1::AUDIENCE_BOT, v1::AUDIENCE_BOT));
  EXPECT_FALSE(VisibleTo(v1::AUDIENCE_BOT, v1::AUDIENCE_CUSTOMER));
  EXPECT_FALSE(VisibleTo(v1::AUDIENCE_SUPERVISOR, v1::AUDIENCE_AGENT));
  EXPECT_EQ(*timeline::ReaderAudience("audience", 0), v1::AUDIENCE_AGENT);
  EXPECT_THAT(timeline::ReaderAudience("audience", 9).status(),
              InvalidArgumentStartingWith("audience"));
}

TEST(RecordsTest, FactRules) {
  EXPECT_TRUE(ValidateFact("facts[0]", Collected("order_number", "A-1"), kNowMs).ok());

  v1::Fact f = Collected("order_number", "A-1");
  f.set_type(v1::FACT_TYPE_UNSPECIFIED);
  EXPECT_THAT(ValidateFact("facts[0]", f, kNowMs), InvalidArgumentStartingWith("facts[0].type"));
  f.set_type(static_cast<v1::FactType>(42));
  EXPECT_THAT(ValidateFact("facts[0]", f, kNowMs), InvalidArgumentStartingWith("facts[0].type"));

  for (const char* bad : {"", "Order", "order number", "ä"}) {
    EXPECT_THAT(ValidateFact("facts[1]", Collected(bad, "x"), kNowMs),
                InvalidArgumentStartingWith("facts[1].name"))
        << bad;
  }
  EXPECT_THAT(ValidateFact("facts[0]", Collected("n", std::string(1025, 'x')), kNowMs),
              InvalidArgumentStartingWith("facts[0].value"));

  v1::Fact verified = Collected("identity", "one_time_code");
  verified.set_type(v1::FACT_TYPE_VERIFICATION);
  EXPECT_THAT(ValidateFact("facts[0]", verified, kNowMs),
              InvalidArgumentStartingWith("facts[0].expires_at"));
  *verified.mutable_expires_at() = FromMillis(kNowMs - 1);
  EXPECT_THAT(ValidateFact("facts[0]", verified, kNowMs),
              InvalidArgumentStartingWith("facts[0].expires_at"));
  *verified.mutable_expires_at() = FromMillis(kNowMs + 600000);
  EXPECT_TRUE(ValidateFact("facts[0]", verified, kNowMs).ok());

  v1::Fact promise = Collected("refund", "refund by Friday");
  promise.set_type(v1::FACT_TYPE_PROMISE);
  EXPECT_THAT(ValidateFact("facts[0]", promise, kNowMs),
              InvalidArgumentStartingWith("facts[0].due_at"));
  *promise.mutable_due_at() = FromMillis(kNowMs);
  EXPECT_THAT(ValidateFact("facts[0]", promise, kNowMs),
              InvalidArgumentStartingWith("facts[0].due_at"));
  *promise.mutable_due_at() = FromMillis(kNowMs + 86400000);
  EXPECT_TRUE(ValidateFact("facts[0]", promise, kNowMs).ok());

  v1::Fact step = Collected("restart_router", "no change");
  step.set_type(v1::FACT_TYPE_STEP_TRIED);
  *step.mutable_due_at() = FromMillis(kNowMs + 1000);
  EXPECT_THAT(ValidateFact("facts[0]", step, kNowMs),
              InvalidArgumentStartingWith("facts[0].due_at"));

  v1::Fact hidden = Collected("address", "1 Main St");
  hidden.set_visibility(static_cast<v1::Audience>(7));
  EXPECT_THAT(ValidateFact("facts[0]", hidden, kNowMs),
              InvalidArgumentStartingWith("facts[0].visibility"));
}

TEST(RecordsTest, StagesAndActors) {
  EXPECT_TRUE(ValidateStage("stage", "return_requested").ok());
  EXPECT_TRUE(ValidateStage("stage", "step-2").ok());
  for (const char* bad : {"", "Shipped", "in transit", "a:b", "x{y}"}) {
    EXPECT_THAT(ValidateStage("stages[0]", bad), InvalidArgumentStartingWith("stages[0]")) << bad;
  }
  EXPECT_THAT(ValidateStage("stage", std::string(65, 'a')), InvalidArgumentStartingWith("stage"));

  v1::Actor none;
  EXPECT_TRUE(ValidateActor("owner", none, /*required=*/false).ok());
  EXPECT_THAT(ValidateActor("actor", none, /*required=*/true),
              InvalidArgumentStartingWith("actor.type"));
  v1::Actor agent;
  agent.set_type(v1::Actor::TYPE_AGENT);
  EXPECT_THAT(ValidateActor("from", agent, true), InvalidArgumentStartingWith("from.id"));
  agent.set_id("ana");
  EXPECT_TRUE(ValidateActor("from", agent, true).ok());
  v1::Actor system;
  system.set_type(v1::Actor::TYPE_SYSTEM);
  EXPECT_TRUE(ValidateActor("actor", system, true).ok());
}

}  // namespace
}  // namespace onestory::engagement
