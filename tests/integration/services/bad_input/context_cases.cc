// The bad-input catalogue of ContextService.GetContext: tenants, customer refs, identifiers,
// recent_events and audiences. Each case is its own tenant; bad_input_test.cc runs them all (see
// bad_input_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {
namespace {

std::vector<BadInputCase> TenantCases() {
  return {
      {.name = "GetContextTenantNewline",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             r.set_tenant(absl::StrCat(s.tenant, "\n"));
             return api.GetContext(r);
           }},
  };
}

std::vector<BadInputCase> CustomerCases() {
  return {
      // No customer_id nor identifier.
      {.name = "GetContextCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             r.clear_customer();
             return api.GetContext(r);
           }},
      // Malformed customer ids.
      {.name = "GetContextCustomerIdSpace",
       .code = kInvalid,
       .message_names = {"customer.customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             *r.mutable_customer() = RefId(absl::StrCat(s.customer, " "));
             return api.GetContext(r);
           }},
      // Well-formed ids of nobody.
      {.name = "GetContextUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             *r.mutable_customer() = RefId(kUnknownCustomer);
             return api.GetContext(r);
           }},
      // Identifiers nobody owns, without create_if_missing.
      {.name = "GetContextUnownedIdentifier",
       .code = kNotFound,
       .message_names = {kUnownedPhoneNormalized},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             return api.GetContext(r);
           }},
  };
}

std::vector<BadInputCase> IdentifierCases() {
  return {
      {.name = "GetContextTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"customer.identifier.type"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             *r.mutable_customer() = RefIdent(static_cast<v1::IdentifierType>(77), "x");
             return api.GetContext(r);
           }},
      {.name = "GetContextPhoneNationalWithoutCountry",
       .code = kInvalid,
       .message_names = {"customer.identifier.value", "default country"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, "(415) 555-0100");
             return api.GetContext(r);
           }},
  };
}

std::vector<BadInputCase> RecentEventsCases() {
  return {
      {.name = "GetContextRecentEventsNegative",
       .code = kInvalid,
       .message_names = {"recent_events"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             r.set_recent_events(-1);
             return api.GetContext(r);
           }},
      {.name = "GetContextRecentEvents201",
       .code = kInvalid,
       .message_names = {"recent_events"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             r.set_recent_events(201);
             return api.GetContext(r);
           }},
  };
}

std::vector<BadInputCase> AudienceCases() {
  return {
      {.name = "GetContextAudienceOutOfRange",
       .code = kInvalid,
       .message_names = {"audience"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             r.set_audience(static_cast<v1::Audience>(5));
             return api.GetContext(r);
           }},
      {.name = "GetContextAudienceNegative",
       .code = kInvalid,
       .message_names = {"audience"},
       .send =
           [](Api& api, const State& s) {
             v1::GetContextRequest r = ContextOf(s);
             r.set_audience(static_cast<v1::Audience>(-1));
             return api.GetContext(r);
           }},
  };
}

}  // namespace

std::vector<BadInputCase> ContextCases() {
  return Concat(
      {TenantCases(), CustomerCases(), IdentifierCases(), RecentEventsCases(), AudienceCases()});
}

}  // namespace onestory::testing::bad_input
