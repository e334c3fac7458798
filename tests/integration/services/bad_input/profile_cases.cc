// The bad-input catalogue of IdentityService.GetProfile and UpdateProfile: tenants, customer refs,
// the update mask and every profile field's limit. Each case is its own tenant; bad_input_test.cc
// runs them all (see bad_input_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {
namespace {

std::vector<BadInputCase> TenantCases() {
  return {
      {.name = "GetProfileTenantCloseBrace",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::GetProfileRequest r = ProfileOf(s, RefId(s.customer));
             r.set_tenant(absl::StrCat(s.tenant, "}"));
             return api.GetProfile(r);
           }},
      {.name = "UpdateProfileTenantStar",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"display_name"});
             r.mutable_profile()->set_display_name("Ann");
             r.set_tenant("*");
             return api.UpdateProfile(r);
           }},
  };
}

std::vector<BadInputCase> CustomerCases() {
  const std::string id65(65, 'c');
  return {
      // No customer_id nor identifier.
      {.name = "GetProfileCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send = [](Api& api,
                  const State& s) { return api.GetProfile(ProfileOf(s, v1::CustomerRef())); }},
      // Malformed customer ids.
      {.name = "GetProfileCustomerIdOpenBrace",
       .code = kInvalid,
       .message_names = {"customer.customer_id"},
       .send = [](Api& api,
                  const State& s) { return api.GetProfile(ProfileOf(s, RefId("cus_{x"))); }},
      {.name = "UpdateProfileCustomerIdColon",
       .code = kInvalid,
       .message_names = {"customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"display_name"});
             r.mutable_profile()->set_display_name("Ann");
             r.set_customer_id(absl::StrCat(s.customer, ":p"));
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileCustomerId65Chars",
       .code = kInvalid,
       .message_names = {"customer_id"},
       .send =
           [id65](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"tier"});
             r.mutable_profile()->set_tier("gold");
             r.set_customer_id(id65);
             return api.UpdateProfile(r);
           }},
      // Well-formed ids of nobody.
      {.name = "GetProfileUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             return api.GetProfile(ProfileOf(s, RefId(kUnknownCustomer)));
           }},
      {.name = "UpdateProfileUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"display_name"});
             r.mutable_profile()->set_display_name("Ann");
             r.set_customer_id(kUnknownCustomer);
             return api.UpdateProfile(r);
           }},
      // Identifiers nobody owns, without create_if_missing.
      {.name = "GetProfileUnownedIdentifier",
       .code = kNotFound,
       .message_names = {kUnownedPhoneNormalized},
       .send =
           [](Api& api, const State& s) {
             return api.GetProfile(
                 ProfileOf(s, RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone)));
           }},
  };
}

std::vector<BadInputCase> IdentifierCases() {
  return {
      {.name = "GetProfileEmailWithoutDomainDot",
       .code = kInvalid,
       .message_names = {"customer.identifier.value"},
       .send =
           [](Api& api, const State& s) {
             return api.GetProfile(ProfileOf(s, RefIdent(v1::IDENTIFIER_TYPE_EMAIL, "a@b")));
           }},
  };
}

std::vector<BadInputCase> ProfileFieldCases() {
  return {
      {.name = "UpdateProfileEmptyMask",
       .code = kInvalid,
       .message_names = {"update_mask"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {});
             r.mutable_profile()->set_display_name("Ann");
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileUnknownPath",
       .code = kInvalid,
       .message_names = {"update_mask", "nickname"},
       .send = [](Api& api,
                  const State& s) { return api.UpdateProfile(UpdateOf(s, {"nickname"})); }},
      // A valid path before the bad one must not be applied either.
      {.name = "UpdateProfileValidPathThenUnknownPath",
       .code = kInvalid,
       .message_names = {"update_mask", "customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"display_name", "customer_id"});
             r.mutable_profile()->set_display_name("Ann");
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileAttributesPathEmptyKey",
       .code = kInvalid,
       .message_names = {"update_mask"},
       .send = [](Api& api,
                  const State& s) { return api.UpdateProfile(UpdateOf(s, {"attributes."})); }},
      {.name = "UpdateProfileDisplayNameOver256Bytes",
       .code = kInvalid,
       .message_names = {"profile.display_name"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"display_name"});
             r.mutable_profile()->set_display_name(std::string(257, 'n'));
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileLanguageWithSpace",
       .code = kInvalid,
       .message_names = {"profile.language"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"language"});
             r.mutable_profile()->set_language("pt BR");
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileTierOver64Bytes",
       .code = kInvalid,
       .message_names = {"profile.tier"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"tier"});
             r.mutable_profile()->set_tier(std::string(65, 't'));
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileConsentChannelUnspecified",
       .code = kInvalid,
       .message_names = {"profile.consents[0].channel"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"consents"});
             r.mutable_profile()->add_consents()->set_state(v1::CONSENT_STATE_GRANTED);
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileConsentChannelOutOfRange",
       .code = kInvalid,
       .message_names = {"profile.consents[0].channel"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"consents"});
             v1::ChannelConsent* c = r.mutable_profile()->add_consents();
             c->set_channel(static_cast<v1::Channel>(99));
             c->set_state(v1::CONSENT_STATE_GRANTED);
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileConsentStateUnspecified",
       .code = kInvalid,
       .message_names = {"profile.consents[0].state"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"consents"});
             r.mutable_profile()->add_consents()->set_channel(v1::CHANNEL_SMS);
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileConsentChannelTwice",
       .code = kInvalid,
       .message_names = {"profile.consents[1].channel"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"consents"});
             for (auto state : {v1::CONSENT_STATE_GRANTED, v1::CONSENT_STATE_DENIED}) {
               v1::ChannelConsent* c = r.mutable_profile()->add_consents();
               c->set_channel(v1::CHANNEL_SMS);
               c->set_state(state);
             }
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfile129Attributes",
       .code = kInvalid,
       .message_names = {"profile.attributes"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"attributes"});
             for (int i = 0; i < 129; ++i) {
               (*r.mutable_profile()->mutable_attributes())[absl::StrCat("k", i)] = "v";
             }
             return api.UpdateProfile(r);
           }},
      // Each path costs a validation and a Redis op: 400,000 of them took 3.4 s of CPU.
      {.name = "UpdateProfile65Paths",
       .code = kInvalid,
       .message_names = {"update_mask", "64"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, std::vector<std::string>(65, "display_name"));
             r.mutable_profile()->set_display_name("Ann");
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfile65AttributePaths",
       .code = kInvalid,
       .message_names = {"update_mask", "64"},
       .send =
           [](Api& api, const State& s) {
             std::vector<std::string> paths;
             for (int i = 0; i < 65; ++i) paths.push_back(absl::StrCat("attributes.k", i));
             v1::UpdateProfileRequest r = UpdateOf(s, paths);
             for (int i = 0; i < 65; ++i) {
               (*r.mutable_profile()->mutable_attributes())[absl::StrCat("k", i)] = "v";
             }
             return api.UpdateProfile(r);
           }},
      {.name = "UpdateProfileAttributeValueOver4KiB",
       .code = kInvalid,
       .message_names = {"profile.attributes[note]"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"attributes.note"});
             (*r.mutable_profile()->mutable_attributes())["note"] = std::string(4097, 'v');
             return api.UpdateProfile(r);
           }},
      // The 129th attribute through an "attributes.<key>" path: the same limit as above, so
      // the same documented INVALID_ARGUMENT.
      {.name = "UpdateProfile129thAttributeByKeyPath",
       .code = kInvalid,
       .message_names = {"profile.attributes"},
       .send =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"attributes.extra"});
             (*r.mutable_profile()->mutable_attributes())["extra"] = "v";
             return api.UpdateProfile(r);
           },
       .prepare =
           [](Api& api, const State& s) {
             v1::UpdateProfileRequest r = UpdateOf(s, {"attributes"});
             for (int i = 0; i < 128; ++i) {
               (*r.mutable_profile()->mutable_attributes())[absl::StrCat("k", i)] = "v";
             }
             grpc::Status st = api.UpdateProfile(r);
             ASSERT_TRUE(st.ok()) << Describe(st);
           }},
  };
}

}  // namespace

std::vector<BadInputCase> ProfileCases() {
  return Concat({TenantCases(), CustomerCases(), IdentifierCases(), ProfileFieldCases()});
}

}  // namespace onestory::testing::bad_input
