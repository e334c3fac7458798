// The bad-input catalogue of CaseService.OpenCase, UpdateCase, ResolveCase, GetCase and the journey
// (SetJourney, GetJourney, GetJourneyStats). Each case is its own tenant; bad_input_test.cc runs
// them all (see bad_input_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {
namespace {

std::vector<BadInputCase> OpenCaseCases() {
  // Otherwise valid opens of a new case: one let through would store the case.
  auto open = [](std::function<void(v1::OpenCaseRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::OpenCaseRequest r = OpenCaseOf(s, "case-new");
      spoil(r, s);
      return api.OpenCase(r);
    };
  };
  using Request = v1::OpenCaseRequest;
  return {
      {.name = "OpenCaseTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = open([](Request& r, const State&) { r.clear_tenant(); })},
      {.name = "OpenCaseTenantOpenBrace",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           open([](Request& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "{x")); })},
      {.name = "OpenCaseUnknownTenant",
       .code = kNotFound,
       .message_names = {"$customer"},
       .send = open([](Request& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); })},
      {.name = "OpenCaseUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           open([](Request& r, const State&) { *r.mutable_customer() = RefId(kUnknownCustomer); })},
      {.name = "OpenCaseCaseIdWithSpace",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = open([](Request& r, const State&) { r.set_case_id("case new"); })},
      {.name = "OpenCaseCaseIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = open([](Request& r, const State&) { r.set_case_id(std::string(129, 'k')); })},
      {.name = "OpenCaseTopicMissing",
       .code = kInvalid,
       .message_names = {"topic"},
       .send = open([](Request& r, const State&) { r.clear_topic(); })},
      {.name = "OpenCaseTopicOver256Bytes",
       .code = kInvalid,
       .message_names = {"topic"},
       .send = open([](Request& r, const State&) { r.set_topic(std::string(257, 't')); })},
      {.name = "OpenCaseTopicControlCharacter",
       .code = kInvalid,
       .message_names = {"topic"},
       .send = open([](Request& r, const State&) { r.set_topic("order\x01 1234"); })},
      {.name = "OpenCaseStageUpperCase",
       .code = kInvalid,
       .message_names = {"stage"},
       .send = open([](Request& r, const State&) { r.set_stage("Shipped"); }),
       .prepare = JourneyForSetup},
      {.name = "OpenCaseActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = open([](Request& r, const State&) { r.clear_actor(); })},
      {.name = "OpenCaseAgentWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = open([](Request& r, const State&) { r.mutable_actor()->clear_id(); })},
      {.name = "OpenCaseChannelMissing",
       .code = kInvalid,
       .message_names = {"channel"},
       .send = open([](Request& r, const State&) { r.clear_channel(); })},
      {.name = "OpenCaseOwnerTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"owner.type"},
       .send = open([](Request& r, const State&) {
         r.mutable_owner()->set_type(static_cast<v1::Actor::Type>(99));
       })},
      {.name = "OpenCaseOwnerBotWithoutId",
       .code = kInvalid,
       .message_names = {"owner.id"},
       .send = open([](Request& r, const State&) {
         *r.mutable_owner() = ActorOf(v1::Actor::TYPE_BOT, "");
       })},
      {.name = "OpenCaseConversationIdWithSpace",
       .code = kInvalid,
       .message_names = {"conversation_id"},
       .send = open([](Request& r, const State&) { r.set_conversation_id("chat 9"); })},
      {.name = "OpenCaseVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"visibility"},
       .send =
           open([](Request& r, const State&) { r.set_visibility(static_cast<v1::Audience>(5)); })},
      // Stages and the journey.
      {.name = "OpenCaseStageNotInJourney",
       .code = kInvalid,
       .message_names = {"stage", "refunded"},
       .send = open([](Request& r, const State&) { r.set_stage("refunded"); }),
       .prepare = JourneyForSetup},
      {.name = "OpenCaseStageWithoutJourney",
       .code = kPrecondition,
       .message_names = {"stage"},
       .send = open([](Request& r, const State&) { r.set_stage("shipped"); })},
      // Refused after the identifier was resolved: the customer must not be created either.
      {.name = "OpenCaseCreateUnownedIdentifierStageNotInJourney",
       .code = kInvalid,
       .message_names = {"stage", "refunded"},
       .send = open([](Request& r, const State&) {
         *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
         r.set_create_if_missing(true);
         r.set_stage("refunded");
       }),
       .prepare = JourneyForSetup},
      {.name = "OpenCaseResolvedCaseId",
       .code = kPrecondition,
       .message_names = {"case_id", kCase},
       .send = open([](Request& r, const State&) { r.set_case_id(kCase); }),
       .prepare = ResolvedCaseForSetup},
      {.name = "OpenCaseOver100Open",
       .code = grpc::StatusCode::RESOURCE_EXHAUSTED,
       .message_names = {"100 open cases"},
       .send = open([](Request&, const State&) {}),
       .prepare =
           [](Api& api, const State& s) {
             for (int i = 0; i < 100; ++i) {
               ASSERT_NO_FATAL_FAILURE(OpenCaseForSetup(api, s, absl::StrCat("case-", i)));
             }
           }},
  };
}

std::vector<BadInputCase> UpdateCaseCases() {
  // Otherwise valid updates of kCase, opened by `prepare` (owned by agent-7).
  auto update = [](std::function<void(v1::UpdateCaseRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::UpdateCaseRequest r = UpdateCaseOf(s);
      spoil(r, s);
      return api.UpdateCase(r);
    };
  };
  auto opened = [](Api& api, const State& s) { OpenCaseForSetup(api, s, kCase); };
  auto opened_in_journey = [](Api& api, const State& s) {
    ASSERT_NO_FATAL_FAILURE(JourneyForSetup(api, s));
    OpenCaseForSetup(api, s, kCase);
  };
  using Request = v1::UpdateCaseRequest;
  const absl::Time past = absl::Now() - absl::Minutes(1);
  return {
      {.name = "UpdateCaseTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = update([](Request& r, const State&) { r.clear_tenant(); }),
       .prepare = opened},
      {.name = "UpdateCaseUnknownTenant",
       .code = kNotFound,
       .message_names = {"$customer"},
       .send =
           update([](Request& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); }),
       .prepare = opened},
      {.name = "UpdateCaseCaseIdEmpty",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = update([](Request& r, const State&) { r.clear_case_id(); }),
       .prepare = opened},
      {.name = "UpdateCaseCaseIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = update([](Request& r, const State&) { r.set_case_id(std::string(129, 'k')); }),
       .prepare = opened},
      {.name = "UpdateCaseActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = update([](Request& r, const State&) { r.clear_actor(); }),
       .prepare = opened},
      {.name = "UpdateCaseChannelOutOfRange",
       .code = kInvalid,
       .message_names = {"channel"},
       .send =
           update([](Request& r, const State&) { r.set_channel(static_cast<v1::Channel>(99)); }),
       .prepare = opened},
      {.name = "UpdateCaseOwnerBotWithoutId",
       .code = kInvalid,
       .message_names = {"owner.id"},
       .send = update([](Request& r, const State&) {
         *r.mutable_owner() = ActorOf(v1::Actor::TYPE_BOT, "");
         r.set_reassign_reason("night shift");
       }),
       .prepare = opened},
      {.name = "UpdateCaseNoteOver4KiB",
       .code = kInvalid,
       .message_names = {"note"},
       .send = update([](Request& r, const State&) { r.set_note(std::string(4097, 'n')); }),
       .prepare = opened},
      {.name = "UpdateCaseRequestIdWithSpace",
       .code = kInvalid,
       .message_names = {"request_id"},
       .send = update([](Request& r, const State&) { r.set_request_id("cu 1"); }),
       .prepare = opened},
      {.name = "UpdateCaseVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"visibility"},
       .send =
           update([](Request& r, const State&) { r.set_visibility(static_cast<v1::Audience>(9)); }),
       .prepare = opened},
      {.name = "UpdateCaseNothingToChange",
       .code = kInvalid,
       .message_names = {"nothing to change"},
       .send = update([](Request& r, const State&) { r.clear_note(); }),
       .prepare = opened},
      // An owner of no type is no owner (Actor.TYPE_UNSPECIFIED is rejected): either way the
      // request asks for no change.
      {.name = "UpdateCaseOwnerWithoutType",
       .code = kInvalid,
       .message_names = {"owner"},
       .send = update([](Request& r, const State&) {
         r.clear_note();
         r.mutable_owner();
       }),
       .prepare = opened},
      {.name = "UpdateCasePromisedByInThePast",
       .code = kInvalid,
       .message_names = {"promised_by"},
       .send = update([past](Request& r, const State&) {
         r.set_promise("refund by Friday");
         *r.mutable_promised_by() = At(past);
       }),
       .prepare = opened},
      {.name = "UpdateCasePromiseWithoutPromisedBy",
       .code = kInvalid,
       .message_names = {"promised_by"},
       .send = update([](Request& r, const State&) { r.set_promise("refund by Friday"); }),
       .prepare = opened},
      {.name = "UpdateCasePromisedByWithoutPromise",
       .code = kInvalid,
       .message_names = {"promise"},
       .send = update([](Request& r, const State&) {
         *r.mutable_promised_by() = At(absl::Now() + absl::Hours(48));
       }),
       .prepare = opened},
      {.name = "UpdateCaseStageUpperCase",
       .code = kInvalid,
       .message_names = {"stage"},
       .send = update([](Request& r, const State&) { r.set_stage("SHIPPED"); }),
       .prepare = opened_in_journey},
      // State conflicts.
      {.name = "UpdateCaseStageNotInJourney",
       .code = kInvalid,
       .message_names = {"stage", "refunded"},
       .send = update([](Request& r, const State&) { r.set_stage("refunded"); }),
       .prepare = opened_in_journey},
      {.name = "UpdateCaseStageWithoutJourney",
       .code = kPrecondition,
       .message_names = {"stage"},
       .send = update([](Request& r, const State&) { r.set_stage("shipped"); }),
       .prepare = opened},
      {.name = "UpdateCaseReassignWithoutReason",
       .code = kInvalid,
       .message_names = {"reassign_reason"},
       .send = update([](Request& r, const State&) {
         *r.mutable_owner() = ActorOf(v1::Actor::TYPE_AGENT, "agent-8");
       }),
       .prepare = opened},
      {.name = "UpdateCaseUnknownCase",
       .code = kNotFound,
       .message_names = {"case_id", kUnknownCase},
       .send = update([](Request& r, const State&) { r.set_case_id(kUnknownCase); }),
       .prepare = opened},
      // kCase is s.customer's, not s.other's.
      {.name = "UpdateCaseOfAnotherCustomer",
       .code = kNotFound,
       .message_names = {"case_id", kCase},
       .send = update([](Request& r, const State& s) { *r.mutable_customer() = RefId(s.other); }),
       .prepare = opened},
      {.name = "UpdateCaseResolved",
       .code = kPrecondition,
       .message_names = {"case_id", kCase},
       .send = update([](Request&, const State&) {}),
       .prepare = ResolvedCaseForSetup},
  };
}

std::vector<BadInputCase> ResolveAndGetCaseCases() {
  auto resolve = [](std::function<void(v1::ResolveCaseRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::ResolveCaseRequest r = ResolveCaseOf(s);
      spoil(r, s);
      return api.ResolveCase(r);
    };
  };
  auto get = [](std::function<void(v1::GetCaseRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::GetCaseRequest r = GetCaseOf(s);
      spoil(r, s);
      return api.GetCase(r);
    };
  };
  auto opened = [](Api& api, const State& s) { OpenCaseForSetup(api, s, kCase); };
  using Resolve = v1::ResolveCaseRequest;
  using Get = v1::GetCaseRequest;
  return {
      {.name = "ResolveCaseTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = resolve([](Resolve& r, const State&) { r.clear_tenant(); }),
       .prepare = opened},
      {.name = "ResolveCaseUnknownTenant",
       .code = kNotFound,
       .message_names = {"$customer"},
       .send =
           resolve([](Resolve& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); }),
       .prepare = opened},
      {.name = "ResolveCaseCaseIdEmpty",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = resolve([](Resolve& r, const State&) { r.clear_case_id(); }),
       .prepare = opened},
      {.name = "ResolveCaseCaseIdWithSpace",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = resolve([](Resolve& r, const State&) { r.set_case_id("case 1"); }),
       .prepare = opened},
      {.name = "ResolveCaseActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = resolve([](Resolve& r, const State&) { r.clear_actor(); }),
       .prepare = opened},
      {.name = "ResolveCaseBotWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = resolve(
           [](Resolve& r, const State&) { *r.mutable_actor() = ActorOf(v1::Actor::TYPE_BOT, ""); }),
       .prepare = opened},
      {.name = "ResolveCaseChannelMissing",
       .code = kInvalid,
       .message_names = {"channel"},
       .send = resolve([](Resolve& r, const State&) { r.clear_channel(); }),
       .prepare = opened},
      {.name = "ResolveCaseResolutionOver1KiB",
       .code = kInvalid,
       .message_names = {"resolution"},
       .send = resolve([](Resolve& r, const State&) { r.set_resolution(std::string(1025, 'r')); }),
       .prepare = opened},
      {.name = "ResolveCaseVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"visibility"},
       .send = resolve(
           [](Resolve& r, const State&) { r.set_visibility(static_cast<v1::Audience>(9)); }),
       .prepare = opened},
      {.name = "ResolveCaseUnknownCase",
       .code = kNotFound,
       .message_names = {"case_id", kUnknownCase},
       .send = resolve([](Resolve& r, const State&) { r.set_case_id(kUnknownCase); }),
       .prepare = opened},
      {.name = "GetCaseTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = get([](Get& r, const State&) { r.clear_tenant(); }),
       .prepare = opened},
      {.name = "GetCaseCaseIdEmpty",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = get([](Get& r, const State&) { r.clear_case_id(); }),
       .prepare = opened},
      {.name = "GetCaseCaseIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"case_id"},
       .send = get([](Get& r, const State&) { r.set_case_id(std::string(129, 'k')); }),
       .prepare = opened},
      {.name = "GetCaseCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send = get([](Get& r, const State&) { r.clear_customer(); }),
       .prepare = opened},
      {.name = "GetCaseUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send = get([](Get& r, const State&) { *r.mutable_customer() = RefId(kUnknownCustomer); }),
       .prepare = opened},
      {.name = "GetCaseUnknownCase",
       .code = kNotFound,
       .message_names = {"case_id", kUnknownCase},
       .send = get([](Get& r, const State&) { r.set_case_id(kUnknownCase); }),
       .prepare = opened},
      {.name = "GetCaseOfAnotherCustomer",
       .code = kNotFound,
       .message_names = {"case_id", kCase},
       .send = get([](Get& r, const State& s) { *r.mutable_customer() = RefId(s.other); }),
       .prepare = opened},
  };
}

std::vector<BadInputCase> JourneyCases() {
  // Each replaces the journey `prepare` set, when it sets one: one let through would change it.
  auto set = [](std::vector<std::string> stages) {
    return [stages](Api& api, const State& s) { return api.SetJourney(JourneyOf(s, stages)); };
  };
  std::vector<std::string> stages33;
  for (int i = 0; i < 33; ++i) stages33.push_back(absl::StrCat("stage-", i));
  return {
      {.name = "SetJourneyTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::SetJourneyRequest r = JourneyOf(s, {"ordered", "shipped"});
             r.clear_tenant();
             return api.SetJourney(r);
           }},
      {.name = "SetJourneyTenantColon",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::SetJourneyRequest r = JourneyOf(s, {"ordered", "shipped"});
             r.set_tenant(absl::StrCat(s.tenant, ":j"));
             return api.SetJourney(r);
           }},
      {.name = "SetJourneyNoStages",
       .code = kInvalid,
       .message_names = {"stages"},
       .send = set({}),
       .prepare = JourneyForSetup},
      {.name = "SetJourney33Stages",
       .code = kInvalid,
       .message_names = {"stages"},
       .send = set(stages33)},
      {.name = "SetJourneyRepeatedStage",
       .code = kInvalid,
       .message_names = {"stages[2]"},
       .send = set({"ordered", "shipped", "ordered"}),
       .prepare = JourneyForSetup},
      {.name = "SetJourneyStageUpperCase",
       .code = kInvalid,
       .message_names = {"stages[1]"},
       .send = set({"ordered", "Shipped"}),
       .prepare = JourneyForSetup},
      {.name = "SetJourneyStageWithSpace",
       .code = kInvalid,
       .message_names = {"stages[0]"},
       .send = set({"return requested"})},
      // The stored journey is one stage per line: a newline would split a stage in two.
      {.name = "SetJourneyStageWithNewline",
       .code = kInvalid,
       .message_names = {"stages[1]"},
       .send = set({"ordered", "shipped\ndelivered"})},
      {.name = "SetJourneyStageWithDot",
       .code = kInvalid,
       .message_names = {"stages[0]"},
       .send = set({"v1.ordered"})},
      {.name = "SetJourneyStageEmpty",
       .code = kInvalid,
       .message_names = {"stages[1]"},
       .send = set({"ordered", ""})},
      {.name = "SetJourneyStage65Chars",
       .code = kInvalid,
       .message_names = {"stages[0]"},
       .send = set({std::string(65, 's')})},
      {.name = "SetJourneyDropsStageWithOpenCase",
       .code = kPrecondition,
       .message_names = {"stages", "shipped"},
       .send = set({"ordered", "delivered"}),
       .prepare =
           [](Api& api, const State& s) {
             ASSERT_NO_FATAL_FAILURE(JourneyForSetup(api, s));
             OpenCaseForSetup(api, s, kCase, "shipped");
           }},
      {.name = "GetJourneyTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = [](Api& api, const State&) { return api.GetJourney(v1::GetJourneyRequest()); }},
      {.name = "GetJourneyTenantCloseBrace",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::GetJourneyRequest r;
             r.set_tenant(absl::StrCat(s.tenant, "}"));
             return api.GetJourney(r);
           }},
      {.name = "GetJourneyStatsTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = [](Api& api,
                  const State&) { return api.GetJourneyStats(v1::GetJourneyStatsRequest()); }},
      {.name = "GetJourneyStatsTenant65Chars",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State&) {
             v1::GetJourneyStatsRequest r;
             r.set_tenant(std::string(65, 't'));
             return api.GetJourneyStats(r);
           }},
  };
}

std::vector<BadInputCase> AudienceCases() {
  return {
      {.name = "GetCaseAudienceOutOfRange",
       .code = kInvalid,
       .message_names = {"audience"},
       .send =
           [](Api& api, const State& s) {
             v1::GetCaseRequest r = GetCaseOf(s);
             r.set_audience(static_cast<v1::Audience>(7));
             return api.GetCase(r);
           },
       .prepare = [](Api& api, const State& s) { OpenCaseForSetup(api, s, kCase); }},
  };
}

}  // namespace

std::vector<BadInputCase> CaseCases() {
  return Concat({OpenCaseCases(), UpdateCaseCases(), ResolveAndGetCaseCases(), JourneyCases(),
                 AudienceCases()});
}

}  // namespace onestory::testing::bad_input
