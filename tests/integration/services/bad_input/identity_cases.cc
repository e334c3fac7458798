// The bad-input catalogue of IdentityService.Resolve, Link and Unlink: tenants, customer refs,
// identifier values (each type's normalization), ownership conflicts and a Link's evidence. Each
// case is its own tenant; bad_input_test.cc runs them all (see bad_input_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {
namespace {

std::vector<BadInputCase> TenantCases() {
  return {
      {.name = "ResolveTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State&) {
             return api.Resolve(ResolveOf("", v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone, true));
           }},
      {.name = "LinkTenantOpenBrace",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::LinkRequest r = LinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             r.set_tenant(absl::StrCat(s.tenant, "{x"));
             return api.Link(r);
           }},
      {.name = "UnlinkTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::UnlinkRequest r = UnlinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kCustomerPhone);
             r.set_tenant("");
             return api.Unlink(r);
           }},
  };
}

std::vector<BadInputCase> CustomerCases() {
  return {
      // Malformed customer ids.
      {.name = "LinkCustomerIdEmpty",
       .code = kInvalid,
       .message_names = {"customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::LinkRequest r = LinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             r.clear_customer_id();
             return api.Link(r);
           }},
      {.name = "UnlinkCustomerIdOpenBrace",
       .code = kInvalid,
       .message_names = {"customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::UnlinkRequest r = UnlinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kCustomerPhone);
             r.set_customer_id(absl::StrCat("{", s.customer));
             return api.Unlink(r);
           }},
      // Well-formed ids of nobody.
      {.name = "LinkUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::LinkRequest r = LinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             r.set_customer_id(kUnknownCustomer);
             return api.Link(r);
           }},
      {.name = "UnlinkUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::UnlinkRequest r = UnlinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             r.set_customer_id(kUnknownCustomer);
             return api.Unlink(r);
           }},
      // Identifiers nobody owns, without create_if_missing.
      {.name = "ResolveUnownedWithoutCreate",
       .code = kNotFound,
       .message_names = {kUnownedPhoneNormalized},
       .send =
           [](Api& api, const State& s) {
             return api.Resolve(
                 ResolveOf(s.tenant, v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone, false));
           }},
  };
}

std::vector<BadInputCase> IdentifierCases() {
  // Resolve with create_if_missing: a request that slipped through would create a customer.
  auto resolve = [](v1::IdentifierType type, std::string value) {
    return [type, value](Api& api, const State& s) {
      return api.Resolve(ResolveOf(s.tenant, type, value, true));
    };
  };
  return {
      {.name = "ResolveTypeUnspecified",
       .code = kInvalid,
       .message_names = {"identifier.type"},
       .send = resolve(v1::IDENTIFIER_TYPE_UNSPECIFIED, "14155550199")},
      {.name = "LinkTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"identifier.type"},
       .send =
           [](Api& api, const State& s) {
             return api.Link(LinkOf(s, static_cast<v1::IdentifierType>(77), "14155550199"));
           }},
      {.name = "ResolveValueEmpty",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_CRM_ID, "")},
      {.name = "ResolveValueWhitespace",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_CHAT_SESSION, " \t\n ")},
      {.name = "ResolvePhoneLetters",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_PHONE, "abc")},
      {.name = "LinkPhoneTooShort",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = [](Api& api,
                  const State& s) { return api.Link(LinkOf(s, v1::IDENTIFIER_TYPE_PHONE, "12")); }},
      {.name = "ResolvePhoneTooLong",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_PHONE, "+1234567890123456")},
      // National formats, in a tenant without a default country (--default_country): each
      // would be a second customer next to the owner of the same number written with '+'.
      {.name = "ResolvePhoneNorthAmericanNationalWithoutCountry",
       .code = kInvalid,
       .message_names = {"identifier.value", "default country"},
       .send = resolve(v1::IDENTIFIER_TYPE_PHONE, "(415) 555-0100")},
      {.name = "ResolvePhoneTrunkPrefixWithoutCountry",
       .code = kInvalid,
       .message_names = {"identifier.value", "default country"},
       .send = resolve(v1::IDENTIFIER_TYPE_PHONE, "020 7946 0958")},
      {.name = "ResolvePhoneCountryCodeZero",
       .code = kInvalid,
       .message_names = {"identifier.value", "country code"},
       .send = resolve(v1::IDENTIFIER_TYPE_PHONE, "+0 20 7946 0958")},
      {.name = "LinkPhoneNationalWithoutCountry",
       .code = kInvalid,
       .message_names = {"identifier.value", "default country"},
       .send =
           [](Api& api, const State& s) {
             return api.Link(LinkOf(s, v1::IDENTIFIER_TYPE_PHONE, "415 555 0199"));
           }},
      {.name = "UnlinkPhoneNationalWithoutCountry",
       .code = kInvalid,
       .message_names = {"identifier.value", "default country"},
       .send =
           [](Api& api, const State& s) {
             return api.Unlink(UnlinkOf(s, v1::IDENTIFIER_TYPE_PHONE, "(415) 555-0100"));
           }},
      {.name = "ResolveEmailWithoutAt",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_EMAIL, "ann")},
      {.name = "UnlinkEmailTwoAts",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send =
           [](Api& api, const State& s) {
             return api.Unlink(UnlinkOf(s, v1::IDENTIFIER_TYPE_EMAIL, "a@@b.com"));
           }},
      {.name = "ResolveEmailOver254Bytes",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_EMAIL, std::string(245, 'a') + "@example.com")},
      {.name = "ResolveValueOver256Bytes",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_CRM_ID, std::string(257, 'x'))},
      {.name = "LinkValueOver256Bytes",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send =
           [](Api& api, const State& s) {
             return api.Link(LinkOf(s, v1::IDENTIFIER_TYPE_APP_USER_ID, std::string(300, 'u')));
           }},
      {.name = "ResolveValueControlCharacter",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_CRM_ID, "crm\x01id")},
      // Edge newlines are trimmed; one inside the value is a control character.
      {.name = "ResolveValueInnerNewline",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send = resolve(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat\nsession")},
      {.name = "LinkValueDelete",
       .code = kInvalid,
       .message_names = {"identifier.value"},
       .send =
           [](Api& api, const State& s) {
             return api.Link(LinkOf(s, v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat\x7fsession"));
           }},
      // Ownership conflicts.
      {.name = "LinkIdentifierOfAnotherCustomer",
       .code = kPrecondition,
       .message_names = {"other@example.com", "$other"},
       .send =
           [](Api& api, const State& s) {
             return api.Link(LinkOf(s, v1::IDENTIFIER_TYPE_EMAIL, kOtherEmail));
           }},
      {.name = "UnlinkIdentifierNobodyOwns",
       .code = kNotFound,
       .message_names = {kUnownedPhoneNormalized, "$customer"},
       .send =
           [](Api& api, const State& s) {
             return api.Unlink(UnlinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone));
           }},
      {.name = "UnlinkIdentifierOfAnotherCustomer",
       .code = kPrecondition,
       .message_names = {"other@example.com", "$other"},
       .send =
           [](Api& api, const State& s) {
             return api.Unlink(UnlinkOf(s, v1::IDENTIFIER_TYPE_EMAIL, kOtherEmail));
           }},
  };
}

std::vector<BadInputCase> LinkEvidenceCases() {
  // Otherwise valid links of an identifier nobody owns: one let through would claim it.
  auto link = [](std::function<void(v1::LinkRequest&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::LinkRequest r = LinkOf(s, v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
      r.set_channel(v1::CHANNEL_VOICE);
      r.set_verification(v1::VERIFICATION_ONE_TIME_CODE);
      *r.mutable_actor() = ActorOf(v1::Actor::TYPE_AGENT, "agent-7");
      spoil(r);
      return api.Link(r);
    };
  };
  return {
      {.name = "LinkVerificationOutOfRange",
       .code = kInvalid,
       .message_names = {"verification"},
       .send =
           link([](v1::LinkRequest& r) { r.set_verification(static_cast<v1::Verification>(99)); })},
      {.name = "LinkChannelOutOfRange",
       .code = kInvalid,
       .message_names = {"channel"},
       .send = link([](v1::LinkRequest& r) { r.set_channel(static_cast<v1::Channel>(99)); })},
      {.name = "LinkActorTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = link([](v1::LinkRequest& r) {
         r.mutable_actor()->set_type(static_cast<v1::Actor::Type>(99));
       })},
      {.name = "LinkAgentWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = link([](v1::LinkRequest& r) { r.mutable_actor()->clear_id(); })},
      {.name = "LinkBotWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send =
           link([](v1::LinkRequest& r) { *r.mutable_actor() = ActorOf(v1::Actor::TYPE_BOT, ""); })},
      // Agent and bot ids are "1-128 bytes of printable ASCII without spaces" (README), as in
      // events[].actor.id.
      {.name = "LinkActorIdWithSpace",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = link([](v1::LinkRequest& r) { r.mutable_actor()->set_id("agent 7"); })},
      {.name = "LinkActorIdWithNewline",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = link([](v1::LinkRequest& r) { r.mutable_actor()->set_id("agent\n7"); })},
  };
}

}  // namespace

std::vector<BadInputCase> IdentityCases() {
  return Concat({TenantCases(), CustomerCases(), IdentifierCases(), LinkEvidenceCases()});
}

}  // namespace onestory::testing::bad_input
