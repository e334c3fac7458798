// The bad-input catalogue of ConversationService.StartConversation, Handoff, EndConversation and
// RecordFacts. Each case is its own tenant; bad_input_test.cc runs them all (see
// bad_input_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {
namespace {

std::vector<BadInputCase> StartConversationCases() {
  // Otherwise valid starts of a new conversation: one let through would count a contact.
  auto start = [](std::function<void(v1::StartConversationRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::StartConversationRequest r = StartOf(s, "chat-new");
      spoil(r, s);
      return api.StartConversation(r);
    };
  };
  using Request = v1::StartConversationRequest;
  return {
      {.name = "StartConversationTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = start([](Request& r, const State&) { r.clear_tenant(); })},
      // The customer is s.tenant's: another tenant has no such customer.
      {.name = "StartConversationUnknownTenant",
       .code = kNotFound,
       .message_names = {"$customer"},
       .send =
           start([](Request& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); })},
      {.name = "StartConversationCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send = start([](Request& r, const State&) { r.clear_customer(); })},
      {.name = "StartConversationUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send = start(
           [](Request& r, const State&) { *r.mutable_customer() = RefId(kUnknownCustomer); })},
      {.name = "StartConversationCreateWithCustomerId",
       .code = kInvalid,
       .message_names = {"create_if_missing"},
       .send = start([](Request& r, const State&) { r.set_create_if_missing(true); })},
      // Checked before the identifier is resolved: no customer may be created.
      {.name = "StartConversationCreateUnownedIdentifierBadChannel",
       .code = kInvalid,
       .message_names = {"channel"},
       .send = start([](Request& r, const State&) {
         *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
         r.set_create_if_missing(true);
         r.clear_channel();
       })},
      {.name = "StartConversationIdWithSpace",
       .code = kInvalid,
       .message_names = {"conversation_id"},
       .send = start([](Request& r, const State&) { r.set_conversation_id("chat 2"); })},
      {.name = "StartConversationIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"conversation_id"},
       .send =
           start([](Request& r, const State&) { r.set_conversation_id(std::string(129, 'c')); })},
      {.name = "StartConversationChannelMissing",
       .code = kInvalid,
       .message_names = {"channel"},
       .send = start([](Request& r, const State&) { r.clear_channel(); })},
      {.name = "StartConversationChannelOutOfRange",
       .code = kInvalid,
       .message_names = {"channel"},
       .send =
           start([](Request& r, const State&) { r.set_channel(static_cast<v1::Channel>(99)); })},
      {.name = "StartConversationServedByMissing",
       .code = kInvalid,
       .message_names = {"served_by.type"},
       .send = start([](Request& r, const State&) { r.clear_served_by(); })},
      {.name = "StartConversationServedByTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"served_by.type"},
       .send = start([](Request& r, const State&) {
         r.mutable_served_by()->set_type(static_cast<v1::Actor::Type>(9));
       })},
      {.name = "StartConversationServedByAgentWithoutId",
       .code = kInvalid,
       .message_names = {"served_by.id"},
       .send = start([](Request& r, const State&) {
         *r.mutable_served_by() = ActorOf(v1::Actor::TYPE_AGENT, "");
       })},
      {.name = "StartConversationServedByIdWithSpace",
       .code = kInvalid,
       .message_names = {"served_by.id"},
       .send = start([](Request& r, const State&) { r.mutable_served_by()->set_id("bot 1"); })},
      {.name = "StartConversationCaseIdWithSpace",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = start([](Request& r, const State&) { r.set_case_id("case 1"); })},
      {.name = "StartConversationSummaryOver1KiB",
       .code = kInvalid,
       .message_names = {"summary"},
       .send = start([](Request& r, const State&) { r.set_summary(std::string(1025, 's')); })},
      {.name = "StartConversationOccurredTwoHoursAhead",
       .code = kInvalid,
       .message_names = {"occurred_at"},
       .send = start([](Request& r, const State&) {
         *r.mutable_occurred_at() = At(absl::Now() + absl::Hours(2));
       })},
      {.name = "StartConversationVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"visibility"},
       .send =
           start([](Request& r, const State&) { r.set_visibility(static_cast<v1::Audience>(9)); })},
      {.name = "StartConversationUnknownCase",
       .code = kNotFound,
       .message_names = {"case_id", kUnknownCase},
       .send = start([](Request& r, const State&) { r.set_case_id(kUnknownCase); })},
      // Refused after the identifier was resolved: the customer must not be created either.
      {.name = "StartConversationCreateUnownedIdentifierUnknownCase",
       .code = kNotFound,
       .message_names = {"case_id", kUnknownCase},
       .send = start([](Request& r, const State&) {
         *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
         r.set_create_if_missing(true);
         r.set_case_id(kUnknownCase);
       })},
      {.name = "StartConversationAboutResolvedCase",
       .code = kPrecondition,
       .message_names = {"case_id", kCase},
       .send = start([](Request& r, const State&) { r.set_case_id(kCase); }),
       .prepare = ResolvedCaseForSetup},
      // An ended conversation's id cannot start another one.
      {.name = "StartConversationEndedId",
       .code = kPrecondition,
       .message_names = {"conversation_id", kConversation},
       .send = start([](Request& r, const State&) { r.set_conversation_id(kConversation); }),
       .prepare = EndedConversationForSetup},
  };
}

std::vector<BadInputCase> HandoffCases() {
  // Otherwise valid handoffs of kConversation, started by `prepare`: one let through would
  // append an event, record a fact and move the conversation.
  auto handoff = [](std::function<void(v1::HandoffRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::HandoffRequest r = HandoffOf(s);
      spoil(r, s);
      return api.Handoff(r);
    };
  };
  auto started = [](Api& api, const State& s) { StartForSetup(api, s, kConversation); };
  using Request = v1::HandoffRequest;
  return {
      {.name = "HandoffTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = handoff([](Request& r, const State&) { r.clear_tenant(); }),
       .prepare = started},
      {.name = "HandoffUnknownTenant",
       .code = kNotFound,
       .message_names = {"$customer"},
       .send =
           handoff([](Request& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); }),
       .prepare = started},
      {.name = "HandoffUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send = handoff(
           [](Request& r, const State&) { *r.mutable_customer() = RefId(kUnknownCustomer); }),
       .prepare = started},
      {.name = "HandoffConversationIdEmpty",
       .code = kInvalid,
       .message_names = {"conversation_id"},
       .send = handoff([](Request& r, const State&) { r.clear_conversation_id(); }),
       .prepare = started},
      {.name = "HandoffConversationIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"conversation_id"},
       .send =
           handoff([](Request& r, const State&) { r.set_conversation_id(std::string(129, 'c')); }),
       .prepare = started},
      {.name = "HandoffFromMissing",
       .code = kInvalid,
       .message_names = {"from.type"},
       .send = handoff([](Request& r, const State&) { r.clear_from(); }),
       .prepare = started},
      {.name = "HandoffFromBotWithoutId",
       .code = kInvalid,
       .message_names = {"from.id"},
       .send = handoff([](Request& r, const State&) { r.mutable_from()->clear_id(); }),
       .prepare = started},
      {.name = "HandoffToMissing",
       .code = kInvalid,
       .message_names = {"to.type"},
       .send = handoff([](Request& r, const State&) { r.clear_to(); }),
       .prepare = started},
      {.name = "HandoffToTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"to.type"},
       .send = handoff([](Request& r, const State&) {
         r.mutable_to()->set_type(static_cast<v1::Actor::Type>(99));
       }),
       .prepare = started},
      {.name = "HandoffToAgentWithoutId",
       .code = kInvalid,
       .message_names = {"to.id"},
       .send = handoff([](Request& r, const State&) { r.mutable_to()->clear_id(); }),
       .prepare = started},
      {.name = "HandoffToChannelOutOfRange",
       .code = kInvalid,
       .message_names = {"to_channel"},
       .send = handoff(
           [](Request& r, const State&) { r.set_to_channel(static_cast<v1::Channel>(99)); }),
       .prepare = started},
      {.name = "HandoffReasonMissing",
       .code = kInvalid,
       .message_names = {"reason"},
       .send = handoff([](Request& r, const State&) { r.clear_reason(); }),
       .prepare = started},
      {.name = "HandoffReasonOver1KiB",
       .code = kInvalid,
       .message_names = {"reason"},
       .send = handoff([](Request& r, const State&) { r.set_reason(std::string(1025, 'r')); }),
       .prepare = started},
      {.name = "HandoffSummaryOver1KiB",
       .code = kInvalid,
       .message_names = {"summary"},
       .send = handoff([](Request& r, const State&) { r.set_summary(std::string(1025, 's')); }),
       .prepare = started},
      {.name = "HandoffTranscriptOver64KiB",
       .code = kInvalid,
       .message_names = {"transcript"},
       .send = handoff(
           [](Request& r, const State&) { r.set_transcript(std::string(64 * 1024 + 1, 't')); }),
       .prepare = started},
      {.name = "HandoffVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"visibility"},
       .send = handoff(
           [](Request& r, const State&) { r.set_visibility(static_cast<v1::Audience>(9)); }),
       .prepare = started},
      {.name = "HandoffRequestIdWithSpace",
       .code = kInvalid,
       .message_names = {"request_id"},
       .send = handoff([](Request& r, const State&) { r.set_request_id("ho 1"); }),
       .prepare = started},
      {.name = "HandoffRequestIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"request_id"},
       .send = handoff([](Request& r, const State&) { r.set_request_id(std::string(129, 'h')); }),
       .prepare = started},
      {.name = "HandoffCollectedVerificationWithoutExpiry",
       .code = kInvalid,
       .message_names = {"collected[0].expires_at"},
       .send = handoff([](Request& r, const State&) {
         r.mutable_collected(0)->set_type(v1::FACT_TYPE_VERIFICATION);
       }),
       .prepare = started},
      {.name = "HandoffCollected33Facts",
       .code = kInvalid,
       .message_names = {"collected"},
       .send = handoff([](Request& r, const State&) {
         r.clear_collected();
         for (int i = 0; i < 33; ++i) *r.add_collected() = CollectedFact(absl::StrCat("f", i), "v");
       }),
       .prepare = started},
      // Fact.case_id "must exist", as in RecordFacts; the field is named as in this request.
      {.name = "HandoffCollectedUnknownCase",
       .code = kNotFound,
       .message_names = {"collected[0].case_id", kUnknownCase},
       .send = handoff(
           [](Request& r, const State&) { r.mutable_collected(0)->set_case_id(kUnknownCase); }),
       .prepare = started},
      // State conflicts.
      {.name = "HandoffUnknownConversation",
       .code = kNotFound,
       .message_names = {"conversation_id", kUnknownConversation},
       .send =
           handoff([](Request& r, const State&) { r.set_conversation_id(kUnknownConversation); }),
       .prepare = started},
      {.name = "HandoffEndedConversation",
       .code = kPrecondition,
       .message_names = {"conversation_id", kConversation},
       .send = handoff([](Request&, const State&) {}),
       .prepare = EndedConversationForSetup},
      {.name = "HandoffFromNotServing",
       .code = kPrecondition,
       .message_names = {"from:", kConversation},
       .send = handoff([](Request& r, const State&) { r.mutable_from()->set_id("bot-2"); }),
       .prepare = started},
      // After kBot handed off to agent-7, kBot no longer serves it.
      {.name = "HandoffFromPreviousServer",
       .code = kPrecondition,
       .message_names = {"from:", kConversation},
       .send = handoff([](Request& r, const State&) { r.set_request_id("ho-2"); }),
       .prepare =
           [](Api& api, const State& s) {
             ASSERT_NO_FATAL_FAILURE(StartForSetup(api, s, kConversation));
             grpc::Status st = api.Handoff(HandoffOf(s));
             ASSERT_TRUE(st.ok()) << Describe(st);
           }},
  };
}

std::vector<BadInputCase> EndConversationCases() {
  // Otherwise valid ends of kConversation, started by `prepare`.
  auto end = [](std::function<void(v1::EndConversationRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::EndConversationRequest r = EndOf(s);
      spoil(r, s);
      return api.EndConversation(r);
    };
  };
  auto started = [](Api& api, const State& s) { StartForSetup(api, s, kConversation); };
  using Request = v1::EndConversationRequest;
  return {
      {.name = "EndConversationTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = end([](Request& r, const State&) { r.clear_tenant(); }),
       .prepare = started},
      {.name = "EndConversationUnknownTenant",
       .code = kNotFound,
       .message_names = {"$customer"},
       .send = end([](Request& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); }),
       .prepare = started},
      {.name = "EndConversationUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           end([](Request& r, const State&) { *r.mutable_customer() = RefId(kUnknownCustomer); }),
       .prepare = started},
      {.name = "EndConversationIdEmpty",
       .code = kInvalid,
       .message_names = {"conversation_id"},
       .send = end([](Request& r, const State&) { r.clear_conversation_id(); }),
       .prepare = started},
      {.name = "EndConversationIdWithTab",
       .code = kInvalid,
       .message_names = {"conversation_id"},
       .send = end([](Request& r, const State&) { r.set_conversation_id("chat\t9"); }),
       .prepare = started},
      {.name = "EndConversationActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = end([](Request& r, const State&) { r.clear_actor(); }),
       .prepare = started},
      {.name = "EndConversationAgentWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = end([](Request& r, const State&) { r.mutable_actor()->clear_id(); }),
       .prepare = started},
      {.name = "EndConversationOutcomeOver256Bytes",
       .code = kInvalid,
       .message_names = {"outcome"},
       .send = end([](Request& r, const State&) { r.set_outcome(std::string(257, 'o')); }),
       .prepare = started},
      {.name = "EndConversationWrapUpCodeOver64Bytes",
       .code = kInvalid,
       .message_names = {"wrap_up_code"},
       .send = end([](Request& r, const State&) { r.set_wrap_up_code(std::string(65, 'w')); }),
       .prepare = started},
      {.name = "EndConversationSummaryOver1KiB",
       .code = kInvalid,
       .message_names = {"summary"},
       .send = end([](Request& r, const State&) { r.set_summary(std::string(1025, 's')); }),
       .prepare = started},
      {.name = "EndConversationVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"visibility"},
       .send =
           end([](Request& r, const State&) { r.set_visibility(static_cast<v1::Audience>(-1)); }),
       .prepare = started},
      {.name = "EndConversationUnknownConversation",
       .code = kNotFound,
       .message_names = {"conversation_id", kUnknownConversation},
       .send = end([](Request& r, const State&) { r.set_conversation_id(kUnknownConversation); }),
       .prepare = started},
  };
}

std::vector<BadInputCase> RecordFactsCases() {
  // Otherwise valid statements of one collected value: one let through would store a fact.
  auto facts = [](std::function<void(v1::RecordFactsRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::RecordFactsRequest r = FactsOf(s);
      spoil(r, s);
      return api.RecordFacts(r);
    };
  };
  // Spoils the request's only fact.
  auto fact = [facts](std::function<void(v1::Fact&)> spoil) {
    return facts([spoil](v1::RecordFactsRequest& r, const State&) { spoil(*r.mutable_facts(0)); });
  };
  using Request = v1::RecordFactsRequest;
  const absl::Time past = absl::Now() - absl::Minutes(1);
  return {
      {.name = "RecordFactsTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = facts([](Request& r, const State&) { r.clear_tenant(); })},
      {.name = "RecordFactsUnknownTenant",
       .code = kNotFound,
       .message_names = {"$customer"},
       .send =
           facts([](Request& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); })},
      {.name = "RecordFactsUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send = facts(
           [](Request& r, const State&) { *r.mutable_customer() = RefId(kUnknownCustomer); })},
      {.name = "RecordFactsCreateWithCustomerId",
       .code = kInvalid,
       .message_names = {"create_if_missing"},
       .send = facts([](Request& r, const State&) { r.set_create_if_missing(true); })},
      {.name = "RecordFactsActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = facts([](Request& r, const State&) { r.clear_actor(); })},
      {.name = "RecordFactsBotWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = facts([](Request& r, const State&) { r.mutable_actor()->clear_id(); })},
      {.name = "RecordFactsChannelMissing",
       .code = kInvalid,
       .message_names = {"channel"},
       .send = facts([](Request& r, const State&) { r.clear_channel(); })},
      {.name = "RecordFactsChannelOutOfRange",
       .code = kInvalid,
       .message_names = {"channel"},
       .send =
           facts([](Request& r, const State&) { r.set_channel(static_cast<v1::Channel>(99)); })},
      {.name = "RecordFactsRequestIdWithSpace",
       .code = kInvalid,
       .message_names = {"request_id"},
       .send = facts([](Request& r, const State&) { r.set_request_id("rf 1"); })},
      {.name = "RecordFactsNoFacts",
       .code = kInvalid,
       .message_names = {"facts"},
       .send = facts([](Request& r, const State&) { r.clear_facts(); })},
      {.name = "RecordFacts33Facts",
       .code = kInvalid,
       .message_names = {"facts"},
       .send = [](Api& api, const State& s) { return api.RecordFacts(FactsOf(s, 33)); }},
      {.name = "RecordFactsTypeMissing",
       .code = kInvalid,
       .message_names = {"facts[0].type"},
       .send = fact([](v1::Fact& f) { f.clear_type(); })},
      {.name = "RecordFactsTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"facts[0].type"},
       .send = fact([](v1::Fact& f) { f.set_type(static_cast<v1::FactType>(99)); })},
      {.name = "RecordFactsNameEmpty",
       .code = kInvalid,
       .message_names = {"facts[0].name"},
       .send = fact([](v1::Fact& f) { f.clear_name(); })},
      {.name = "RecordFactsNameUpperCase",
       .code = kInvalid,
       .message_names = {"facts[0].name"},
       .send = fact([](v1::Fact& f) { f.set_name("Order_Number"); })},
      {.name = "RecordFactsNameWithSpace",
       .code = kInvalid,
       .message_names = {"facts[0].name"},
       .send = fact([](v1::Fact& f) { f.set_name("order number"); })},
      {.name = "RecordFactsName65Chars",
       .code = kInvalid,
       .message_names = {"facts[0].name"},
       .send = fact([](v1::Fact& f) { f.set_name(std::string(65, 'n')); })},
      {.name = "RecordFactsValueOver1KiB",
       .code = kInvalid,
       .message_names = {"facts[0].value"},
       .send = fact([](v1::Fact& f) { f.set_value(std::string(1025, 'v')); })},
      {.name = "RecordFactsVerificationWithoutExpiry",
       .code = kInvalid,
       .message_names = {"facts[0].expires_at"},
       .send = fact([](v1::Fact& f) {
         f.set_type(v1::FACT_TYPE_VERIFICATION);
         f.set_name("identity");
         f.set_value("one_time_code");
       })},
      {.name = "RecordFactsVerificationExpiredAlready",
       .code = kInvalid,
       .message_names = {"facts[0].expires_at"},
       .send = fact([past](v1::Fact& f) {
         f.set_type(v1::FACT_TYPE_VERIFICATION);
         f.set_name("identity");
         *f.mutable_expires_at() = At(past);
       })},
      {.name = "RecordFactsCollectedExpiresInThePast",
       .code = kInvalid,
       .message_names = {"facts[0].expires_at"},
       .send = fact([past](v1::Fact& f) { *f.mutable_expires_at() = At(past); })},
      {.name = "RecordFactsPromiseWithoutDueAt",
       .code = kInvalid,
       .message_names = {"facts[0].due_at"},
       .send = fact([](v1::Fact& f) {
         f.set_type(v1::FACT_TYPE_PROMISE);
         f.set_name("refund");
         f.set_value("refund by Friday");
       })},
      {.name = "RecordFactsPromiseDueInThePast",
       .code = kInvalid,
       .message_names = {"facts[0].due_at"},
       .send = fact([past](v1::Fact& f) {
         f.set_type(v1::FACT_TYPE_PROMISE);
         f.set_name("refund");
         *f.mutable_due_at() = At(past);
       })},
      {.name = "RecordFactsDueAtOnStepTried",
       .code = kInvalid,
       .message_names = {"facts[0].due_at"},
       .send = fact([](v1::Fact& f) {
         f.set_type(v1::FACT_TYPE_STEP_TRIED);
         f.set_name("restart_router");
         *f.mutable_due_at() = At(absl::Now() + absl::Hours(24));
       })},
      {.name = "RecordFactsCaseIdWithSpace",
       .code = kInvalid,
       .message_names = {"facts[0].case_id"},
       .send = fact([](v1::Fact& f) { f.set_case_id("case 1"); })},
      {.name = "RecordFactsConversationIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"facts[0].conversation_id"},
       .send = fact([](v1::Fact& f) { f.set_conversation_id(std::string(129, 'c')); })},
      {.name = "RecordFactsVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"facts[0].visibility"},
       .send = fact([](v1::Fact& f) { f.set_visibility(static_cast<v1::Audience>(9)); })},
      // Same type and name twice: the second is named. The same name with another type is fine.
      {.name = "RecordFactsSameTypeAndNameTwice",
       .code = kInvalid,
       .message_names = {"facts[2]"},
       .send = facts([](Request& r, const State&) {
         v1::Fact step = CollectedFact("fact-0", "tried");
         step.set_type(v1::FACT_TYPE_STEP_TRIED);
         *r.add_facts() = step;
         *r.add_facts() = CollectedFact("fact-0", "again");
       })},
      // All or nothing: facts 0 and 1 are valid and neither may be stored.
      {.name = "RecordFactsThirdOfThreeBad",
       .code = kInvalid,
       .message_names = {"facts[2].name"},
       .send =
           [](Api& api, const State& s) {
             v1::RecordFactsRequest r = FactsOf(s, 3);
             r.mutable_facts(2)->set_name("Fact-2");
             return api.RecordFacts(r);
           }},
      {.name = "RecordFactsUnknownCase",
       .code = kNotFound,
       .message_names = {"facts[0].case_id", kUnknownCase},
       .send = fact([](v1::Fact& f) { f.set_case_id(kUnknownCase); })},
      // Refused after the identifier was resolved: the customer must not be created either.
      {.name = "RecordFactsCreateUnownedIdentifierUnknownCase",
       .code = kNotFound,
       .message_names = {"facts[0].case_id", kUnknownCase},
       .send = facts([](Request& r, const State&) {
         *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
         r.set_create_if_missing(true);
         r.mutable_facts(0)->set_case_id(kUnknownCase);
       })},
      // 200 current facts, then one more.
      {.name = "RecordFactsOver200Current",
       .code = grpc::StatusCode::RESOURCE_EXHAUSTED,
       .message_names = {"facts", "200"},
       .send = fact([](v1::Fact& f) { f.set_name("one-too-many"); }),
       .prepare =
           [](Api& api, const State& s) {
             for (int done = 0, batch = 0; done < 200; ++batch) {
               v1::RecordFactsRequest r = FactsOf(s, 0);
               r.set_request_id(absl::StrCat("rf-setup-", batch));
               for (; done < 200 && r.facts_size() < 32; ++done) {
                 *r.add_facts() = CollectedFact(absl::StrCat("setup-", done), "v");
               }
               grpc::Status st = api.RecordFacts(r);
               ASSERT_TRUE(st.ok()) << Describe(st);
             }
           }},
  };
}

}  // namespace

std::vector<BadInputCase> ConversationCases() {
  return Concat(
      {StartConversationCases(), HandoffCases(), EndConversationCases(), RecordFactsCases()});
}

}  // namespace onestory::testing::bad_input
